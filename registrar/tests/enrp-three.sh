#!/usr/bin/env bash
# enrp-three.sh [--short] - three real `registrar` processes on 127.0.0.1-3 peer over our SCTP
# in UDP (ENRP, RFC 5353), with real PEs (`rserpool register`) and a resolution load (loadgen):
#   1. every registrar starts and finds its peers;
#   2. a PE registered at each registrar is resolvable at all three within one heartbeat cycle;
#   3. under resolution load, `kill -9` the registrar that homes the failover pool's PEs: its
#      PEs are taken over by exactly one survivor, stay resolvable at both survivors, and none
#      is lost; the load sees no error;
#   4. the killed registrar restarts (a new server id) and rejoins through a mentor;
#   5. two more registrars with no --peer find each other on the ENRP multicast channel (a
#      group port of their own) and share their PEs.
# Uses target/release binaries (built here if missing). Ends with 'N passed, M failed'; exit 0
# only if every check passed. --short (CI) shortens the load and the waits.
set -u
cd "$(dirname "$0")/../.."
SHORT=0; [ "${1:-}" = "--short" ] && SHORT=1
BIN=${BIN_DIR:-target/release}
OUT=${OUT:-target/enrp-three}
LOAD_SECONDS=$((SHORT ? 8 : 20))
mkdir -p "$OUT"; rm -f "$OUT"/*.log "$OUT"/*.json
if [ ! -x "$BIN/registrar" ] || [ ! -x "$BIN/rserpool" ] || [ ! -x "$BIN/loadgen" ]; then
  cargo build --release -p registrar -p asap -p loadgen >/dev/null 2>&1 || { echo "build failed"; exit 2; }
fi
PASS=0 FAIL=0
declare -A PID
say()   { printf '[three %s] %s\n' "$(date +%T.%2N)" "$*"; }
check() { local d=$1; shift; if "$@"; then PASS=$((PASS+1)); say "PASS: $d"; else FAIL=$((FAIL+1)); say "FAIL: $d"; fi; }
start() { local name=$1; shift; "$@" >"$OUT/$name.log" 2>&1 & PID[$name]=$!; }
stop()  { [[ -n ${PID[$1]:-} ]] || return 0; kill "${PID[$1]}" 2>/dev/null; wait "${PID[$1]}" 2>/dev/null; unset "PID[$1]"; }
wait_for() { local end=$(( $(date +%s%N) / 1000000 + $1 )); shift; until "$@"; do (( $(date +%s%N) / 1000000 >= end )) && return 1; sleep 0.1; done; }
log_has() { grep -q "$2" "$OUT/$1.log"; }
cleanup() { for n in "${!PID[@]}"; do kill -9 "${PID[$n]}" 2>/dev/null; done; wait 2>/dev/null; }
trap cleanup EXIT

# ENRP_RFC_TIMERS=1: RFC 5353 §4.2's thresholds (heartbeat 30 s, 61 s, 5 s) instead of short
# ones; the waits for detection and takeover grow to match.
if [ "${ENRP_RFC_TIMERS:-0}" = 1 ]; then
  HEARTBEAT_MS=30000 DETECT_MS=80000 ENRP_TIMERS=(--enrp-mentor-hunt-timeout-ms 1500)
else
  HEARTBEAT_MS=500 DETECT_MS=8000
  ENRP_TIMERS=(--enrp-heartbeat-ms 500 --enrp-max-time-last-heard-ms 1200
    --enrp-max-time-no-response-ms 600 --enrp-mentor-hunt-timeout-ms 1500)
fi
registrar() { # name index id [workers]
  local i=$2 peers=()
  for p in 1 2 3; do [ "$p" = "$i" ] || peers+=(--peer "127.0.0.$p:9901"); done
  start "$1" "$BIN/registrar" --udp "127.0.0.$i:9899" --workers "${4:-1}" --mesh-spin-us 0 \
    --no-announce --registrar-id "$3" "${peers[@]}" "${ENRP_TIMERS[@]}" \
    --keep-alive-interval-ms 1000 --keep-alive-timeout-ms 4000 \
    --run-seconds 240 --log registrar=debug,info
}
tool() { "$BIN/rserpool" --timeout-ms 1000 "$@"; }
# resolve_ids POOL REGISTRAR_INDEX: "id home" lines of the pool's PEs at that registrar.
resolve_ids() {
  tool --registrar "127.0.0.$2:3863" resolve "$1" --items 64 --json 2>/dev/null |
    python3 -c 'import json,sys; d=json.load(sys.stdin); [print(e["id"], e["home_registrar"]) for e in d["pool_elements"]]' 2>/dev/null
}
count_at() { [ "$(resolve_ids "$1" "$2" | wc -l)" = "$3" ]; }
# homed_at POOL REGISTRAR_INDEX HOME N: N PEs of the pool there, all homed at HOME.
homed_at() { local ids; ids=$(resolve_ids "$1" "$2"); [ "$(grep -c " $3\$" <<<"$ids")" = "$4" ] && [ "$(grep -c . <<<"$ids")" = "$4" ]; }
# none_homed_at POOL REGISTRAR_INDEX HOME N: N PEs of the pool there, none homed at HOME.
none_homed_at() { local ids; ids=$(resolve_ids "$1" "$2"); [ "$(grep -c . <<<"$ids")" = "$4" ] && ! grep -q " $3\$" <<<"$ids"; }
failed_seen() { grep -q 'peer failed.*peer=4097' "$OUT/r2.log" "$OUT/r3.log"; }
winners() { cat "$OUT/r2.log" "$OUT/r3.log" | grep -c 'takeover won.*target=4097'; }
some_winner() { [ "$(winners)" -ge 1 ]; }

say "== 1: three registrars"
registrar r1 1 0x1001
registrar r2 2 0x1002 2
registrar r3 3 0x1003
for r in r1 r2 r3; do check "$r is up" wait_for 5000 log_has $r 'registrar ready'; done
for r in r1 r2 r3; do
  check "$r found its peers (mentor download or served alone)" \
    wait_for 5000 bash -c "grep -qE 'handlespace download complete|serving alone' '$OUT/$r.log'"
done
sleep 1.5   # a heartbeat or three: every pair has exchanged Presence

say "== 2: a PE at each registrar is resolvable at all three within one heartbeat cycle"
for i in 1 2 3; do
  start pe$i "$BIN/rserpool" --hunt-parallel 1 --registrar 127.0.0.$i:3863 --timeout-ms 1000 \
    register --pool P$i --port 700$i --id 0x$i$i$i --lifetime-ms 30000 --run-seconds 200
done
for i in 1 2 3; do check "PE of P$i registered at registrar $i" wait_for 5000 log_has pe$i 'registered'; done
start_ms=$(( $(date +%s%N) / 1000000 ))
for i in 1 2 3; do for r in 1 2 3; do
  check "P$i resolvable at registrar $r" wait_for 500 count_at P$i $r 1
done; done
say "all nine resolutions succeeded $(( $(date +%s%N) / 1000000 - start_ms )) ms after the last registration"

say "== 3: kill -9 under resolution load"
# The failover pool: 4 PEs that know every registrar, registered at registrar 1 first.
for k in 1 2 3 4; do
  start fpe$k "$BIN/rserpool" --hunt-parallel 1 --registrar 127.0.0.1:3863 --registrar 127.0.0.2:3863 \
    --registrar 127.0.0.3:3863 --timeout-ms 1000 \
    register --pool F --port 710$k --id 0xf0$k --lifetime-ms 4000 --run-seconds 200
done
check "the 4 failover PEs are registered, all homed at registrar 1, seen at registrar 2" \
  wait_for 5000 homed_at F 2 0x00001001 4
cat >"$OUT/load.toml" <<EOF
name = "enrp-three"
[run]
duration_ms = $((LOAD_SECONDS * 1000))
warmup_ms = 500
drain_ms = 1_000
op_timeout_ms = 2_000
workers = 1
bucket_ms = 100
seed = 3
[target]
kind = "model"
[pools]
count = 4
choice = { dist = "uniform" }
[pe]
count = 8
reregister_ms = 2_000
lifetime = { dist = "forever" }
ramp_ms = 200
[pu]
associations = 4
mode = "closed"
window = 2
EOF
start load "$BIN/loadgen" run --scenario "$OUT/load.toml" --target registrar --address 127.0.0.2:9899 \
  --report-dir "$OUT/load-report"
sleep 2
say "kill -9 registrar 1"
kill -9 "${PID[r1]}"; unset "PID[r1]"
killed_ms=$(( $(date +%s%N) / 1000000 ))
check "registrar 2 or 3 declared registrar 1 failed" wait_for $DETECT_MS failed_seen
wait_for 8000 some_winner
sleep 2
check "exactly one survivor won the takeover of registrar 1 (found $(winners))" test "$(winners)" = 1
for r in 2 3; do
  check "all 4 failover PEs resolvable at registrar $r, none homed at the dead one" \
    wait_for 10000 none_homed_at F $r 0x00001001 4
done
rehomed_ms=$(( $(date +%s%N) / 1000000 - killed_ms ))
say "kill -9 to every failover PE re-homed and resolvable at both survivors: <= $rehomed_ms ms"
took_over_ms=$(( $(date -d "$(grep -h 'takeover won.*target=4097' "$OUT/r2.log" "$OUT/r3.log" | head -1 | cut -c1-26)" +%s%N) / 1000000 - killed_ms ))
say "kill -9 to the takeover won: $took_over_ms ms"
for i in 2 3; do for r in 2 3; do
  check "P$i still resolvable at registrar $r" count_at P$i $r 1
done; done
wait "${PID[load]}"; load_rc=$?; unset "PID[load]"
check "the resolution load at registrar 2 ended without errors (loadgen exit $load_rc)" test "$load_rc" = 0

say "== 4: registrar 1 restarts (new id) and rejoins through a mentor"
registrar r1b 1 0x1011
check "the restarted registrar downloaded the handlespace from a mentor" \
  wait_for 6000 log_has r1b 'handlespace download complete'
check "the restarted registrar resolves the failover pool (4 PEs)" wait_for 3000 count_at F 1 4
check "the restarted registrar resolves P2" count_at P2 1 1
check "the restarted registrar resolves P3" count_at P3 1 1

say "== 5: two registrars with no --peer find each other on the ENRP multicast channel"
# A group port of this run's own, so that no other registrar on the host joins in.
MCAST=239.0.0.51:$((20000 + $$ % 20000))
for i in 4 5; do
  start r$i "$BIN/registrar" --udp "127.0.0.$i:9899" --workers 1 --mesh-spin-us 0 \
    --no-announce --registrar-id 0x100$i "${ENRP_TIMERS[@]}" \
    --enrp-multicast --enrp-multicast-group "$MCAST" \
    --keep-alive-interval-ms 1000 --keep-alive-timeout-ms 4000 \
    --run-seconds 60 --log registrar=debug,info
done
for i in 4 5; do check "r$i is up" wait_for 5000 log_has r$i 'registrar ready'; done
# The first to start hears the second (the second's first Presence reaches a member); the
# second then has the association the first opened and has nothing to learn.
heard_either() { log_has r4 'registrar heard on the multicast channel.*peer=4101' ||
  log_has r5 'registrar heard on the multicast channel.*peer=4100'; }
check "one of them heard the other on the channel and connected" wait_for 5000 heard_either
start pe4 "$BIN/rserpool" --hunt-parallel 1 --registrar 127.0.0.4:3863 --timeout-ms 1000 \
  register --pool M4 --port 7004 --id 0x444 --lifetime-ms 30000 --run-seconds 60
check "a PE registered at registrar 4 is resolvable at registrar 5" wait_for 5000 count_at M4 5 1

for n in "${!PID[@]}"; do stop "$n"; done
echo "$PASS passed, $FAIL failed"
[ "$FAIL" = 0 ]
