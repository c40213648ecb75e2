#!/bin/bash
# guest-sctp-interop.sh RSERPOOL_BIN OUTDIR - runs INSIDE the lab VM (kernel SCTP, RSPLIB).
# Our `rserpool` tool on the kernel SCTP backend (--backend kernel) meets RSPLIB 3.4.4 on
# user transports, with the PE-PU ASAP control channel:
#  1. our echo PE (--transport sctp) registers at RSPLIB's rspregistrar, and RSPLIB's
#     rspterminal gets its lines echoed by it (our PE sends an ASAP Cookie after each);
#  2. our terminal PU resolves at RSPLIB's registrar and talks to RSPLIB's rspserver -echo.
# All plain kernel SCTP on lo (no SCTP in UDP: the kernel backend needs no sysctl), all
# captured; the capture must dissect with zero tshark expert infos.
# Ends with 'N passed, M failed'; exit status 0 only if every check passed.
set -u
TOOL=$1
OUT=${2:-sctp-interop-out}
mkdir -p "$OUT" && OUT=$(cd "$OUT" && pwd)
rm -f "$OUT"/*.log "$OUT"/*.pcap "$OUT"/*.txt
# Addresses of its own: in the full run the scripts before it leave 192.0.2.1's SCTP and UDP
# ports busy for a while (rspregistrar then fails: "Unable to find suitable SCTP/UDP socket
# pair: Address already in use").
RSP=192.0.2.31 OURS=192.0.2.32
for ip in 31 32; do ip addr add 192.0.2.$ip/32 dev lo 2>/dev/null; done
LOG="-logcolor=off -loglevel=2"
TAG=sctp
# shellcheck source=guest-lib.sh
source "$(dirname "$0")/guest-lib.sh"
lines_in() { [ "$(grep -c "$2" "$OUT/$1.log")" -ge "$3" ]; }
KERNEL=(--backend kernel --registrar $RSP:3863 --udp $OURS:0)

say "kernel $(uname -r); rsplib $(dpkg-query -W -f='${Version}' rsplib-registrar)"
start tshark tshark -i lo -q -w "$OUT/sctp.pcap" -f 'sctp'
wait_for 30 log_has tshark 'Capture started' || say "tshark did not report 'Capture started'"
start rsp rspregistrar $LOG -asapannounce=off -enrpannounce=off -asap=$RSP:3863 -enrp=$RSP:9901
# Its banner comes once its sockets are bound (ss does not list them while it binds with bindx).
wait_for 20 log_has rsp 'ASAP Address' || say "rspregistrar printed no banner"
sleep 1

say "== 1: our SCTP echo PE at RSPLIB's registrar, RSPLIB's rspterminal as its PU"
start pe "$TOOL" "${KERNEL[@]}" pe --pool EchoPool --service echo --transport sctp \
  --address $OURS --port 7000 --id 0x5151 --run-seconds 200
check "our PE serves echo on kernel SCTP" wait_for 20 log_has pe "^serving echo on sctp $OURS:7000"
check "our PE registered at RSPLIB's registrar" \
  wait_for 30 log_has pe "^registered PE 0x00005151 in pool \"EchoPool\" at $RSP:3863"
( for i in 1 2 3; do echo "sctp-line-$i"; sleep 1; done; sleep 3 ) |
  timeout -k 5 30 stdbuf -oL rspterminal $LOG -registrar=$RSP:3863 >"$OUT/rspterminal.log" 2>&1
check "rspterminal got 3 lines echoed by our PE" lines_in rspterminal 'from PE .*> sctp-line-[123]' 3
check "rspterminal's lines came from our PE" grep -q 'from PE \$00005151' "$OUT/rspterminal.log"
check "our PE took rspterminal's association" log_has pe '^association from PU at '
check "our PE dropped no control message" bash -c "! grep -q 'dropped a control message' '$OUT/pe.log'"
say "stopping our PE (SIGTERM -> ASAP Deregistration)"
stop pe
check "our PE deregistered from RSPLIB's registrar" log_has pe '^deregistered PE 0x00005151'

say "== 2: our terminal PU at RSPLIB's registrar, RSPLIB's rspserver -echo as its PE"
start rspserver rspserver -echo $LOG -registrar=$RSP:3863
check "RSPLIB's PE registered" wait_for 40 log_has rspserver 'Identifier'
sleep 2
"$TOOL" "${KERNEL[@]}" resolve EchoPool >"$OUT/resolve.log" 2>&1
check "our PU resolves RSPLIB's SCTP PE" grep -q '  sctp  ' "$OUT/resolve.log"
( for i in 1 2 3; do echo "pu-line-$i"; sleep 0.5; done ) |
  timeout 60 "$TOOL" "${KERNEL[@]}" terminal EchoPool >"$OUT/terminal.log" 2>"$OUT/terminal-err.log"
check "our terminal exits 0" test $? = 0
check "our terminal got 3 lines echoed by rspserver" \
  diff <(printf 'pu-line-1\npu-line-2\npu-line-3\n') "$OUT/terminal.log"
check "our terminal reported nothing unreachable" \
  bash -c "! grep -q unreachable '$OUT/terminal-err.log'"
stop rspserver
stop rsp

sleep 1; stop tshark
check "capture written" test -s "$OUT/sctp.pcap"
tshark -r "$OUT/sctp.pcap" -q -z expert >"$OUT/expert.txt" 2>&1
tshark -r "$OUT/sctp.pcap" -Y 'asap' >"$OUT/asap.txt" 2>&1
say "ASAP messages in the capture: $(wc -l <"$OUT/asap.txt")"
check "capture has ASAP Cookies on a user association" grep -q 'Cookie' "$OUT/asap.txt"
experts=$(tshark -r "$OUT/sctp.pcap" -Y '_ws.expert' 2>/dev/null | wc -l)
say "frames with expert infos: $experts"; [ "$experts" = 0 ] || cat "$OUT/expert.txt"
check "zero tshark expert infos" test "$experts" = 0
finish
