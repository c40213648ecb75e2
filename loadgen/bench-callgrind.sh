#!/usr/bin/env bash
# bench-callgrind.sh: instructions loadgen executes per operation, for two loadgen binaries,
# counted by valgrind's callgrind (deterministic where wall time on a shared host is not).
# Each binary runs each load twice, for a short and a long duration, against a fresh native
# registrar process; the figure is the marginal cost, (Ir_long - Ir_short) / (ops_long -
# ops_short), so that start-up (associations, registrations) cancels out. One worker, since
# valgrind runs one thread at a time. Kernel time is not counted.
#
#   loadgen/bench-callgrind.sh OLD_LOADGEN NEW_LOADGEN REGISTRAR
#
# Loads as in bench-ab.sh: resolve (quickstart.toml, PUs from 2 s, 4 s and 7 s runs) and
# churn (churn.toml without PUs, 2 000 PEs living 20 ms on average, 3 s and 5 s runs).
set -euo pipefail
cd "$(dirname "$0")/.."
old=$1 new=$2 registrar=$3
port=${BENCH_PORT:-19897}
out=${BENCH_OUT:-target/bench-callgrind}
mkdir -p "$out"

# ops of the named kinds (ok + errors) in a loadgen summary table.
ops() {
  awk -v kinds="$2" 'BEGIN { n = split(kinds, k, ",") }
    NF >= 9 { for (i = 1; i <= n; i++) if ($1 == k[i]) s += $2 + $3 } END { print s }' "$1"
}

# measure BIN LOAD DURATION_MS LOG: prints "instructions ops".
measure() {
  local bin=$1 load=$2 ms=$3 log=$4
  "$registrar" --udp "127.0.0.1:$port" --workers 1 >"$log.registrar" 2>&1 &
  local pid=$!
  sleep 0.7
  local args=(--target registrar --address "127.0.0.1:$port" --workers 1 --no-report)
  case $load in
    resolve) args+=(--scenario loadgen/scenarios/quickstart.toml --warmup-ms 2000) ;;
    churn) args+=(--scenario loadgen/scenarios/churn.toml --associations 0 --pe-count 2000
      --lifetime-mean-ms 20 --rejoin-ms 1 --ramp-ms 100 --warmup-ms 0) ;;
  esac
  timeout 300 valgrind --tool=callgrind --callgrind-out-file="$log.callgrind" \
    "$bin" run "${args[@]}" --duration-ms "$ms" >"$log" 2>&1 || true
  kill -INT "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  local kinds=resolve
  [[ $load == churn ]] && kinds=register,deregister
  echo "$(awk '/Collected/ { gsub(",", "", $4); print $4 }' "$log") $(ops "$log" "$kinds")"
}

for load in resolve churn; do
  short=4000 long=7000
  [[ $load == churn ]] && short=3000 long=5000
  declare -A per_op
  for side in old new; do
    bin=$old; [[ $side == new ]] && bin=$new
    read -r i1 o1 < <(measure "$bin" "$load" "$short" "$out/$load-$side-$short.txt")
    read -r i2 o2 < <(measure "$bin" "$load" "$long" "$out/$load-$side-$long.txt")
    per_op[$side]=$(awk -v a="$i1" -v b="$i2" -v x="$o1" -v y="$o2" \
      'BEGIN { printf "%.0f", (b - a) / (y - x) }')
    echo "$load $side: $i1 instructions / $o1 ops, $i2 / $o2: ${per_op[$side]} per op"
  done
  awk -v n="${per_op[new]}" -v o="${per_op[old]}" -v load="$load" \
    'BEGIN { printf "%s instructions per op new/old: %.3f\n", load, n / o }'
done
