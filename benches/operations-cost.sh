#!/usr/bin/env bash
# operations-cost.sh - what watching a registrar costs it, counted in instructions by
# valgrind's callgrind (repeatable on a shared host, where wall-clock ratios are not; see
# operations-overhead.sh for those). Two figures, both for a release registrar with 1 worker:
#
#  A. Observers' instructions per second. The registrar under callgrind for 30 s holding 100
#     PEs in 10 pools (loadgen's PEs re-registering every 2 s, no PUs), plain and observed:
#     `/metrics` scraped, the admin API's pool list and stats read, and the whole
#     RSERPOOL-MIB walked with snmpwalk through snmpd and our AgentX subagent, all once a
#     second. Counted per thread: the worker (registrar-core-0, which answers the mailboxes)
#     and all threads. Difference / 30 s.
#  B. Instructions per resolution on the worker: the marginal cost between a 4 s and an 8 s
#     run of loadgen's quickstart PUs (the registrar under callgrind, plain).
#
# Then the loss at a resolution rate R (the worker's native rate, measured alongside, plain):
# A_worker / (R * B + A_worker): the share of the worker's instructions that watching takes
# at that rate. Prints every figure. Needs valgrind, snmpd and snmpwalk, curl.
set -u
cd "$(dirname "$0")/.."
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

# callgrind MODE SECONDS LOADGEN-ARGS...: runs the registrar under callgrind; prints
# "worker-instructions all-instructions ops".
callgrind() {
  local mode=$1 seconds=$2; shift 2
  local extra=() snmpd_pid= reader=
  rm -f "$OUT/cg-$mode-$seconds".*
  if [ "$mode" = observed ]; then
    rm -f "$OUT/agentx-master"
    SNMP_PERSISTENT_DIR="$OUT/snmp-persist" snmpd -f -Lo -C -c "$OUT/snmpd.conf" \
      >"$OUT/snmpd.log" 2>&1 & snmpd_pid=$!
    for _ in $(seq 50); do [ -S "$OUT/agentx-master" ] && break; sleep 0.1; done
    extra=(--metrics 127.0.0.1:19465 --admin 127.0.0.1:18081 --admin-token-file "$OUT/token"
      --snmp-agentx "$OUT/agentx-master")
  fi
  valgrind --tool=callgrind --separate-threads=yes --callgrind-out-file="$OUT/cg-$mode-$seconds.%p" \
    $BIN/registrar --udp 127.0.0.1:$PORT --workers 1 --no-announce --no-enrp --mesh-spin-us 0 \
    "${extra[@]}" --run-seconds $((seconds + 12)) >"$OUT/registrar-$mode-$seconds.log" 2>&1 &
  local pid=$!
  sleep 4
  if [ "$mode" = observed ]; then
    ( auth="Authorization: Bearer $(head -1 "$OUT/token")"
      while kill -0 "$pid" 2>/dev/null; do
        curl -s -m 5 -o /dev/null 127.0.0.1:19465/metrics
        curl -s -m 5 -o /dev/null -H "$auth" 127.0.0.1:18081/api/v1/pools
        curl -s -m 5 -o /dev/null -H "$auth" 127.0.0.1:18081/api/v1/stats
        snmpwalk -v2c -c cost -t 5 -r 0 -On udp:127.0.0.1:19162 1.3.6.1.3.125.1 >>"$OUT/walk.txt" 2>&1
        sleep 1
      done ) & reader=$!
  fi
  $BIN/loadgen run --target registrar --address 127.0.0.1:$PORT --workers 1 --no-report \
    --duration-ms $((seconds * 1000)) "$@" >"$OUT/loadgen-$mode-$seconds.log" 2>&1
  wait "$pid" 2>/dev/null
  [ -n "$reader" ] && { kill "$reader" 2>/dev/null; wait "$reader" 2>/dev/null; }
  [ -n "$snmpd_pid" ] && { kill "$snmpd_pid" 2>/dev/null; wait "$snmpd_pid" 2>/dev/null; }
  local ops
  ops=$(awk '$1 == "resolve" && NF >= 9 { print $2 + $3 }' "$OUT/loadgen-$mode-$seconds.log")
  echo "$(python3 - "$OUT/cg-$mode-$seconds" <<'PY'
import glob, re, sys
worker = total = 0
for path in glob.glob(sys.argv[1] + ".*"):
    text = open(path, errors="replace").read()
    m = re.search(r"^(?:summary|totals): (\d+)", text, re.M)
    n = int(m.group(1)) if m else 0
    total += n
    if re.search(r"core::worker::Worker.*::run", text):
        worker += n
print(worker, total)
PY
) ${ops:-0}"
}

PES=(--scenario loadgen/scenarios/quickstart.toml --associations 0 --warmup-ms 0)
read -r pw pa _ < <(callgrind plain 30 "${PES[@]}")
read -r ow oa _ < <(callgrind observed 30 "${PES[@]}")
rows=$(grep -c '^\.1\.3\.6\.1\.3\.125\.1\.' "$OUT/walk.txt" 2>/dev/null || echo 0)
echo "A. 30 s holding 100 PEs: plain $pw worker / $pa all instructions; observed $ow / $oa ($rows MIB rows walked)"
RES=(--scenario loadgen/scenarios/quickstart.toml --warmup-ms 2000)
read -r s_w _ s_ops < <(callgrind plain 4 "${RES[@]}")
read -r l_w _ l_ops < <(callgrind plain 8 "${RES[@]}")
echo "B. resolutions under callgrind: 4 s: $s_w worker instructions, $s_ops resolutions; 8 s: $l_w, $l_ops"

# The native rate R: the plain worker's resolutions/s under the same quickstart load.
$BIN/registrar --udp 127.0.0.1:$PORT --workers 1 --no-announce --no-enrp --mesh-spin-us 0 \
  --run-seconds 20 >"$OUT/registrar-native.log" 2>&1 & npid=$!
sleep 1
rm -rf "$OUT/native"
$BIN/loadgen run --target registrar --address 127.0.0.1:$PORT --report-dir "$OUT/native" \
  "${RES[@]}" --duration-ms 8000 >"$OUT/loadgen-native.log" 2>&1
kill "$npid" 2>/dev/null; wait "$npid" 2>/dev/null
rate=$(python3 -c 'import glob, json, sys
r = json.load(open(glob.glob(sys.argv[1] + "/*.json")[0]))
print([o["throughput_per_s"] for o in r["ops"] if o["kind"].lower().startswith("resol")][0])' "$OUT/native")
python3 - "$pw" "$ow" "$pa" "$oa" "$s_w" "$l_w" "$s_ops" "$l_ops" "${rate:-0}" <<'PY'
import sys
pw, ow, pa, oa, sw, lw, so, lo, rate = (float(x) for x in sys.argv[1:10])
worker_s = (ow - pw) / 30
all_s = (oa - pa) / 30
per_op = (lw - sw) / (lo - so)
print(f"observers: {worker_s:,.0f} worker instructions/s, {all_s:,.0f} instructions/s in all threads")
print(f"a resolution: {per_op:,.0f} worker instructions (marginal)")
print(f"native plain rate: {rate:,.0f} resolutions/s")
for r in (rate, 100_000, 1_000_000):
    if r > 0:
        loss = worker_s / (r * per_op + worker_s)
        print(f"at {r:,.0f} resolutions/s watching takes {loss * 100:.3f} % of the worker's instructions")
PY
