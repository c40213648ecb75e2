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
TAG=steering
# shellcheck source=guest-lib.sh
source "$(dirname "$0")/guest-lib.sh"

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
finish
