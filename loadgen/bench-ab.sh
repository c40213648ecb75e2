#!/usr/bin/env bash
# bench-ab.sh: one loadgen binary against another on the same registrar binary, alternating
# runs in one session, each run against a fresh registrar process (so no run inherits another's
# PEs or associations). Prints each run's ops/s and the new/old ratio of each pair, then
# min / median / max of the ratios (BENCHMARKS.md, "loadgen on the asap core (issue 13)").
#
#   loadgen/bench-ab.sh OLD_LOADGEN NEW_LOADGEN REGISTRAR [ROUNDS]
#
# BENCH_LOADS="resolve churn" picks the loads; the same binary as OLD and NEW is the A/A
# control, which shows how far from 1.000 the machine's noise alone moves the median.
#
# Two loads, both from the committed scenarios:
#   resolve  quickstart.toml: 100 PEs in 10 pools, 8 PU associations closed loop (window 4),
#            4.5 s; the figure is resolutions/s.
#   churn    churn.toml with no PUs, 2 000 PEs living 20 ms on average (exponential) and
#            rejoining after 1 ms, 4 s; the figure is registrations + deregistrations per s.
# The pair order flips every round (old first, then new first), so a drift of the machine's
# speed during a round does not favour one side. Bounded: ~12 s per pair and load.
set -euo pipefail
cd "$(dirname "$0")/.."
old=$1 new=$2 registrar=$3 rounds=${4:-5}
port=${BENCH_PORT:-19899}
out=${BENCH_OUT:-target/bench-ab}
mkdir -p "$out"

# ops/s of the named op kinds in a loadgen summary table ("201.9k" -> 201900), summed.
rate() {
  awk -v kinds="$2" 'BEGIN { n = split(kinds, k, ",") }
    NF >= 9 { for (i = 1; i <= n; i++) if ($1 == k[i]) {
        v = $4; m = 1
        if (v ~ /k$/) { m = 1e3; sub(/k$/, "", v) }
        if (v ~ /M$/) { m = 1e6; sub(/M$/, "", v) }
        s += v * m } }
    END { printf "%.0f\n", s }' "$1"
}

# run LOADGEN LOAD LOG: one run against a fresh registrar.
run() {
  local loadgen=$1 load=$2 log=$3
  "$registrar" --udp "127.0.0.1:$port" --workers 1 >"$log.registrar" 2>&1 &
  local pid=$!
  for _ in $(seq 100); do grep -q "registrar ready" "$log.registrar" && break; sleep 0.05; done
  case $load in
    resolve) timeout 60 "$loadgen" run --scenario loadgen/scenarios/quickstart.toml \
      --target registrar --address "127.0.0.1:$port" --duration-ms 4500 --no-report \
      >"$log" 2>&1 || true ;;
    churn) timeout 60 "$loadgen" run --scenario loadgen/scenarios/churn.toml \
      --target registrar --address "127.0.0.1:$port" --associations 0 --pe-count 2000 \
      --lifetime-mean-ms 20 --rejoin-ms 1 --ramp-ms 100 --duration-ms 4000 --no-report \
      >"$log" 2>&1 || true ;;
  esac
  kill -INT "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

for load in ${BENCH_LOADS:-resolve churn}; do
  kinds=resolve
  [[ $load == churn ]] && kinds=register,deregister
  ratios=()
  excluded=0
  for r in $(seq "$rounds"); do
    if ((r % 2)); then order="old new"; else order="new old"; fi
    failed=""
    for side in $order; do
      bin=$old; [[ $side == new ]] && bin=$new
      log=$out/$load-$r-$side.txt
      run "$bin" "$load" "$log"
      # A run that did not start (an association that never came up) or saw errors says
      # nothing about speed: its pair is left out, and counted.
      if ! grep -q " errors " "$log" ||
        awk 'NF >= 9 && $1 ~ /^(resolve|register|deregister)$/ && $3 != 0 { bad = 1 }
          END { exit !bad }' "$log"; then
        failed="$failed $side"
      fi
    done
    o=$(rate "$out/$load-$r-old.txt" "$kinds")
    n=$(rate "$out/$load-$r-new.txt" "$kinds")
    if [[ -n $failed ]]; then
      excluded=$((excluded + 1))
      echo "$load round $r ($order): old $o/s  new $n/s  left out (failed:$failed)"
      continue
    fi
    ratio=$(awk -v n="$n" -v o="$o" 'BEGIN { printf "%.3f", n / o }')
    ratios+=("$ratio")
    echo "$load round $r ($order): old $o/s  new $n/s  new/old $ratio"
  done
  printf '%s\n' "${ratios[@]}" | sort -n | awk -v load="$load" -v left="$excluded" '
    { r[NR] = $1 } END {
      med = (NR % 2) ? r[(NR + 1) / 2] : (r[NR / 2] + r[NR / 2 + 1]) / 2
      printf "%s new/old over %d pairs (%d left out): min %.3f  median %.3f  max %.3f\n",
        load, NR, left, r[1], med, r[NR] }'
done
