#!/bin/bash
# guest-rsplib-interop.sh REGISTRAR_BIN OUTDIR - runs INSIDE the lab VM (kernel SCTP, RSPLIB).
# Our registrar (kernel SCTP backend) serves RSPLIB 3.4.4's rspserver (echo PE) and
# rspterminal (PU): registration, handle resolution, echo through the PE, deregistration when
# the PE stops, all captured; the capture must dissect with zero tshark expert infos.
# Ends with 'N passed, M failed'; exit status 0 only if every check passed.
set -u
BIN=$1
OUT=${2:-interop-out}
mkdir -p "$OUT" && OUT=$(cd "$OUT" && pwd)
rm -f "$OUT"/*.log "$OUT"/interop.pcap
PR=192.0.2.1
LOG="-logcolor=off -loglevel=2"
TAG=interop
# shellcheck source=guest-lib.sh
source "$(dirname "$0")/guest-lib.sh"
lines_in() { [ "$(grep -c "$2" "$OUT/$1.log")" -ge "$3" ]; }
listening() { ss -Hln --sctp | grep -q "$PR\]*:3863 \|$PR:3863"; }

say "kernel $(uname -r); rsplib $(dpkg-query -W -f='${Version}' rsplib-registrar)"
start tshark tshark -i lo -q -w "$OUT/interop.pcap" -f 'sctp or udp port 3863'
wait_for 30 log_has tshark 'Capture started' || say "tshark did not report 'Capture started'"

start registrar "$BIN" --backend kernel --kernel-address $PR --asap-port 3863 \
  --announce-group 239.0.0.50:3863 --announce-interface 192.0.2.1 --keep-alive-interval-ms 2000 --keep-alive-timeout-ms 4000 \
  --run-seconds 240 --log registrar=debug,info
check "our registrar listens on SCTP $PR:3863 (kernel backend)" wait_for 30 listening

start pe rspserver -echo $LOG -registrar=$PR:3863
check "RSPLIB PE registered at our registrar (Registration Response)" wait_for 40 log_has pe 'Identifier'
check "our registrar logged the registration" wait_for 10 log_has registrar 'registered'
sleep 5
check "our registrar sent keep-alives and the PE kept its registration" \
  bash -c "! grep -q 'keep-alive timeout' '$OUT/registrar.log'"

say "PU: rspterminal -registrar=$PR:3863, 3 lines"
( for i in 1 2 3; do echo "interop-line-$i"; sleep 1; done; sleep 3 ) |
  timeout -k 5 20 stdbuf -oL rspterminal $LOG -registrar=$PR:3863 >"$OUT/pu.log" 2>&1
# rspterminal sends what it read while it was still resolving in one message, so under the
# lab's emulation two lines can come back in one reply: each line is counted once, wherever.
echoed() { grep 'from PE .*>' "$OUT/pu.log" | grep -o 'interop-line-[123]' | sort -u | wc -l; }
check "RSPLIB PU resolved EchoPool at our registrar and got 3 lines echoed" \
  test "$(echoed)" -eq 3

say "stopping the PE (SIGTERM -> ASAP Deregistration)"
stop pe
check "our registrar removed the PE (deregistration or session end)" \
  wait_for 20 bash -c "grep -qE 'deregistered|removed with its session' '$OUT/registrar.log'"

stop registrar
sleep 1; stop tshark
check "capture written" test -s "$OUT/interop.pcap"
tshark -r "$OUT/interop.pcap" -q -z expert >"$OUT/expert.txt" 2>&1
tshark -r "$OUT/interop.pcap" -Y 'asap' >"$OUT/asap.txt" 2>&1
say "ASAP messages in the capture: $(wc -l <"$OUT/asap.txt")"
check "capture has ASAP traffic" test -s "$OUT/asap.txt"
experts=$(tshark -r "$OUT/interop.pcap" -Y '_ws.expert' 2>/dev/null | wc -l)
say "frames with expert infos: $experts"; cat "$OUT/expert.txt"
check "zero tshark expert infos" test "$experts" = 0
finish
