#!/bin/bash
# guest-kernel-workers.sh BIN_DIR OUTDIR - runs INSIDE the lab VM. Our registrar on the kernel
# SCTP backend with 2 workers (one one-to-many socket per worker on each port, SO_REUSEPORT):
# 6 RSPLIB echo PEs register over plain kernel SCTP (each from its own port, so the kernel's
# reuseport hash spreads them), RSPLIB's rspterminal resolves the pool and talks to a PE, and
# loadgen's kernel-SCTP clients resolve from 8 associations with no error. Checks that
# keep-alives keep every PE registered whichever core holds its association, that stopping the
# PEs removes them, and that both workers held sessions.
# Ends with 'N passed, M failed'; exit status 0 only if every check passed.
set -u
BIN=$1
OUT=${2:-kernel-workers-out}
mkdir -p "$OUT" && OUT=$(cd "$OUT" && pwd)
rm -f "$OUT"/*.log "$OUT"/*.txt
# An address of its own: scripts before it leave 192.0.2.1-4's ports busy for a while.
PR=192.0.2.41
ip addr add $PR/32 dev lo 2>/dev/null
PES=6
TAG=kernel-workers
ulimit -n 65536
# shellcheck source=guest-lib.sh
source "$(dirname "$0")/guest-lib.sh"
sysctl -qw net.sctp.udp_port=0 net.sctp.encap_port=0

start registrar "$BIN/registrar" --backend kernel --kernel-address $PR --workers 2 \
  --no-announce --keep-alive-interval-ms 1000 --keep-alive-timeout-ms 3000 --run-seconds 200 \
  --log registrar=debug,info
check "our registrar is up on the kernel backend with 2 workers" \
  wait_for 20 grep -q 'registrar ready.*workers=2' "$OUT/registrar.log"

for i in $(seq 1 $PES); do
  start pe$i rspserver -echo -logcolor=off -loglevel=2 -registrar=$PR:3863
done
check "all $PES RSPLIB PEs registered over plain kernel SCTP" \
  wait_for 60 bash -c "[ \$(grep -c 'registered' '$OUT/registrar.log') -ge $PES ]"

( for i in 1 2; do echo "workers-line-$i"; sleep 1; done; sleep 3 ) |
  timeout -k 5 30 stdbuf -oL rspterminal -logcolor=off -loglevel=2 -registrar=$PR:3863 \
  >"$OUT/rspterminal.log" 2>&1
check "rspterminal resolved the pool and got its lines echoed" \
  bash -c "[ \$(grep -c 'from PE .*> workers-line-[12]' '$OUT/rspterminal.log') -ge 2 ]"

(cd "$OUT" && timeout 60 "$BIN/loadgen" run --scenario "$(dirname "$0")/scenarios/resolve.toml" \
    --client kernel --address $PR:3863 --associations 8 --window 2 --pe-count 4 \
    --duration-ms 5000 --warmup-ms 1000 --name kernel-workers --no-report \
    >"$OUT/loadgen.txt" 2>&1)
check "loadgen's kernel clients: resolutions, none failed (exit 0)" \
  bash -c "awk '\$1 == \"resolve\" && \$2 > 0 && \$3 == 0 { ok = 1 } END { exit !ok }' '$OUT/loadgen.txt'"

sleep 6
check "keep-alives kept every PE registered across both cores" \
  bash -c "! grep -q 'keep-alive timeout' '$OUT/registrar.log'"

# loadgen's PEs left already: count from here.
gone=$(grep -cE 'deregistered|removed with its session' "$OUT/registrar.log")
for i in $(seq 1 $PES); do stop pe$i; done
check "stopping the PEs removed all $PES" wait_for 30 bash -c \
  "[ \$(grep -cE 'deregistered|removed with its session' '$OUT/registrar.log') -ge $((gone + PES)) ]"

stop registrar
sessions=$(grep 'worker stopped' "$OUT/registrar.log" | sed -E 's/.*sessions=([0-9]+).*/\1/' | tr '\n' ' ')
say "sessions per worker: $sessions"
check "both workers held sessions (the kernel spread the associations over their sockets)" \
  bash -c "set -- $sessions; [ \$# = 2 ] && [ \$1 -ge 1 ] && [ \$2 -ge 1 ]"
sysctl -qw net.sctp.udp_port=9899 net.sctp.encap_port=9899
finish
