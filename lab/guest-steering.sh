#!/bin/bash
# guest-steering.sh REGISTRAR_BIN OUTDIR - runs INSIDE the lab VM. Our registrar on its own SCTP
# over UDP with 2 workers serves 4 RSPLIB echo PEs whose kernel SCTP encapsulates in UDP
# (RFC 6951): every PE association arrives from the kernel's one UDP port, so the kernel's
# 4-tuple hash alone would put all of them on one core. Checks that the registrations succeed,
# that both workers hold sessions (steering by SCTP verification tag), that keep-alives keep
# the PEs registered, and that stopping them deregisters them.
# Ends with 'N passed, M failed'; exit status 0 only if every check passed.
set -u
BIN=$1
OUT=${2:-steering-out}
mkdir -p "$OUT" && OUT=$(cd "$OUT" && pwd)
rm -f "$OUT"/*.log
PR=192.0.2.2
PES=4
PASS=0 FAIL=0
declare -A PID
say()   { printf '[steering %6.2fs] %s\n' "$(awk '{print $1}' /proc/uptime)" "$*"; }
check() { local d=$1; shift; if "$@"; then PASS=$((PASS+1)); say "PASS: $d"; else FAIL=$((FAIL+1)); say "FAIL: $d"; fi; }
start() { local name=$1; shift; say "start $name: $*"; stdbuf -oL -eL "$@" >"$OUT/$name.log" 2>&1 & PID[$name]=$!; }
stop()  { local name=$1; [[ -n ${PID[$name]:-} ]] || return 0; kill "${PID[$name]}" 2>/dev/null; wait "${PID[$name]}" 2>/dev/null; unset "PID[$name]"; }
wait_for() { local end=$(( $(date +%s) + $1 )); shift; until "$@"; do (( $(date +%s) >= end )) && return 1; sleep 0.5; done; }
count_in() { grep -c "$2" "$OUT/$1.log"; }
cleanup() { for n in "${!PID[@]}"; do kill "${PID[$n]}" 2>/dev/null; done; wait 2>/dev/null; }
trap cleanup EXIT

# The kernel listens for encapsulated SCTP on UDP 9899 and sends to UDP 9900, where ours is.
sysctl -qw net.sctp.udp_port=9899 net.sctp.encap_port=9900
start registrar "$BIN" --backend userspace --udp $PR:9900 --workers 2 --no-announce \
  --keep-alive-interval-ms 1000 --keep-alive-timeout-ms 3000 --run-seconds 120 \
  --log registrar=debug,info
check "our registrar is up with 2 workers" wait_for 20 grep -q 'registrar ready.*workers=2' "$OUT/registrar.log"

for i in $(seq 1 $PES); do
  start pe$i rspserver -echo -logcolor=off -loglevel=2 -registrar=$PR:3863
done
check "all $PES RSPLIB PEs registered over kernel SCTP in UDP" \
  wait_for 60 bash -c "[ \$(grep -c 'registered' '$OUT/registrar.log') -ge $PES ]"
sleep 6
check "keep-alives kept every PE registered across both cores" \
  bash -c "! grep -q 'keep-alive timeout' '$OUT/registrar.log'"

for i in $(seq 1 $PES); do stop pe$i; done
check "stopping the PEs removed all $PES" wait_for 30 bash -c \
  "[ \$(grep -cE 'deregistered|removed with its session' '$OUT/registrar.log') -ge $PES ]"

stop registrar
sessions=$(grep 'worker stopped' "$OUT/registrar.log" | sed -E 's/.*sessions=([0-9]+).*/\1/' | tr '\n' ' ')
say "sessions per worker: $sessions"
check "both workers held PE sessions (steered by SCTP tag, not by the one UDP 4-tuple)" \
  bash -c "set -- $sessions; [ \$# = 2 ] && [ \$1 -ge 1 ] && [ \$2 -ge 1 ]"
sysctl -qw net.sctp.udp_port=0 net.sctp.encap_port=0
echo "$PASS passed, $FAIL failed"
[ "$FAIL" = 0 ]
