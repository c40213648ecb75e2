#!/usr/bin/env bash
# operations-cost.sh [ROUNDS] - what watching a registrar costs its worker, in CPU time (a
# figure a shared host moves far less than throughput; see operations-overhead.sh for the
# throughput ratio). A release registrar with 1 worker holds 100 PEs in 10 pools (loadgen's
# quickstart PEs, re-registering every 2 s, no PUs) for 30 s, plain and observed: `/metrics`
# scraped, the admin API's pool list and stats read, and the whole RSERPOOL-MIB walked with
# snmpwalk through net-snmp's snmpd and our AgentX subagent, all once a second. The CPU time
# (user + system, /proc/PID/task/TID/stat) of the worker thread (registrar-core-0, which
# answers the management mailboxes) and of the whole process is read before and after.
#
# The difference, observed - plain, per second, is what watching takes: of the worker's time,
# the share a saturated worker would lose to it (its core is then 100 % busy), and of the
# process's. Rounds alternate plain and observed; medians are printed.
# Needs snmpd and snmpwalk (Debian: snmpd, snmp) and curl.
set -u
cd "$(dirname "$0")/.."
ROUNDS=${1:-3}
BIN=target/release
OUT=target/operations-cost
mkdir -p "$OUT"
[ -x $BIN/registrar ] && [ -x $BIN/loadgen ] || cargo build --release -p registrar -p loadgen >/dev/null
head -c 24 /dev/urandom | base64 >"$OUT/token"
cat >"$OUT/snmpd.conf" <<EOF
master agentx
agentXSocket $PWD/$OUT/agentx-master
agentaddress udp:127.0.0.1:19162
rocommunity cost 127.0.0.1
EOF
PORT=19898
SECONDS_HELD=30
HZ=$(getconf CLK_TCK)

ticks() { awk '{ print $14 + $15 }' "$1" 2>/dev/null || echo 0; }
worker_stat() { # the stat file of the worker thread of process $1
  local t
  for t in /proc/"$1"/task/*; do
    [ "$(cat "$t/comm" 2>/dev/null)" = registrar-core- ] && { echo "$t/stat"; return; }
  done
}

run() { # mode round: prints "worker-ticks process-ticks walked-rows"
  local mode=$1 extra=() snmpd_pid= reader=
  if [ "$mode" = observed ]; then
    rm -f "$OUT/agentx-master"
    SNMP_PERSISTENT_DIR="$OUT/snmp-persist" snmpd -f -Lo -C -c "$OUT/snmpd.conf" \
      >"$OUT/snmpd.log" 2>&1 & snmpd_pid=$!
    for _ in $(seq 50); do [ -S "$OUT/agentx-master" ] && break; sleep 0.1; done
    extra=(--metrics 127.0.0.1:19465 --admin 127.0.0.1:18081 --admin-token-file "$OUT/token"
      --snmp-agentx "$OUT/agentx-master")
  fi
  $BIN/registrar --udp 127.0.0.1:$PORT --workers 1 --no-announce --no-enrp --mesh-spin-us 0 \
    "${extra[@]}" --run-seconds $((SECONDS_HELD + 10)) >"$OUT/registrar-$mode-$2.log" 2>&1 &
  local pid=$!
  sleep 1
  $BIN/loadgen run --target registrar --address 127.0.0.1:$PORT --workers 1 --no-report \
    --scenario loadgen/scenarios/quickstart.toml --associations 0 --warmup-ms 0 \
    --duration-ms $((SECONDS_HELD * 1000 + 4000)) >"$OUT/loadgen-$mode-$2.log" 2>&1 &
  local lg=$!
  sleep 2 # the PEs registered
  rm -f "$OUT/walk-$2.txt"
  if [ "$mode" = observed ]; then
    ( auth="Authorization: Bearer $(head -1 "$OUT/token")"
      while kill -0 "$pid" 2>/dev/null; do
        curl -s -m 5 -o /dev/null 127.0.0.1:19465/metrics
        curl -s -m 5 -o /dev/null -H "$auth" 127.0.0.1:18081/api/v1/pools
        curl -s -m 5 -o /dev/null -H "$auth" 127.0.0.1:18081/api/v1/stats
        snmpwalk -v2c -c cost -t 5 -r 0 -On udp:127.0.0.1:19162 1.3.6.1.3.125.1 \
          >>"$OUT/walk-$2.txt" 2>&1
        sleep 1
      done ) & reader=$!
  fi
  local stat w0 p0 w1 p1
  stat=$(worker_stat "$pid")
  w0=$(ticks "$stat"); p0=$(ticks "/proc/$pid/stat")
  sleep "$SECONDS_HELD"
  w1=$(ticks "$stat"); p1=$(ticks "/proc/$pid/stat")
  kill "$lg" "$pid" 2>/dev/null; wait "$lg" "$pid" 2>/dev/null
  [ -n "$reader" ] && { kill "$reader" 2>/dev/null; wait "$reader" 2>/dev/null; }
  [ -n "$snmpd_pid" ] && { kill "$snmpd_pid" 2>/dev/null; wait "$snmpd_pid" 2>/dev/null; }
  local rows
  rows=$(grep -c '^\.1\.3\.6\.1\.3\.125\.1\.' "$OUT/walk-$2.txt" 2>/dev/null)
  echo "$((w1 - w0)) $((p1 - p0)) ${rows:-0}"
}

pw=() pp=() ow=() op=()
for r in $(seq 1 "$ROUNDS"); do
  read -r a b _ < <(run plain "$r")
  read -r c d rows < <(run observed "$r")
  echo "round $r: plain worker $a ticks, process $b; observed worker $c, process $d ($rows MIB rows walked); $HZ ticks/s, $SECONDS_HELD s"
  pw+=("$a"); pp+=("$b"); ow+=("$c"); op+=("$d")
done
python3 - "${pw[*]}" "${pp[*]}" "${ow[*]}" "${op[*]}" "$HZ" "$SECONDS_HELD" <<'PY'
import statistics as st, sys
pw, pp, ow, op = ([float(x) for x in a.split()] for a in sys.argv[1:5])
hz, held = float(sys.argv[5]), float(sys.argv[6])
ms = lambda ticks: ticks / hz / held * 1000
print(f"worker CPU: plain {ms(st.median(pw)):.2f} ms/s, observed {ms(st.median(ow)):.2f} ms/s: "
      f"watching takes {(ms(st.median(ow)) - ms(st.median(pw))) / 10:.2f} % of a saturated worker")
print(f"process CPU: plain {ms(st.median(pp)):.2f} ms/s, observed {ms(st.median(op)):.2f} ms/s "
      f"(+{ms(st.median(op)) - ms(st.median(pp)):.2f} ms/s in all its threads)")
PY
