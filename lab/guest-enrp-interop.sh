#!/bin/bash
# guest-enrp-interop.sh REGISTRAR_BIN OUTDIR - runs INSIDE the lab VM. Our registrar (its own
# SCTP in UDP, RFC 6951, at 192.0.2.2 UDP 9900) and RSPLIB 3.4.4's rspregistrar (kernel SCTP at
# 192.0.2.1, which also accepts SCTP in UDP on 9899) as ENRP peers, each the other's mentor:
# a PE registered at RSPLIB's is resolvable at ours; RSPLIB's hsdump reads our handlespace;
# when RSPLIB's registrar stops, ours takes over its PEs. Captured; zero tshark expert infos.
# Ends with 'N passed, M failed'; exit status 0 only if every check passed.
set -u
BIN=$1
OUT=${2:-enrp-interop-out}
mkdir -p "$OUT" && OUT=$(cd "$OUT" && pwd)
rm -f "$OUT"/*.log "$OUT"/enrp.pcap
RSP=192.0.2.1 OURS=192.0.2.2
LOG="-logcolor=off -loglevel=3"
TAG=enrp
# shellcheck source=guest-lib.sh
source "$(dirname "$0")/guest-lib.sh"
pes_at() { timeout 20 hsdump "$1:9901" -logcolor=off 2>/dev/null | sed -n 's/.*(\([0-9]*\) Pools, \([0-9]*\) PoolElements.*/\2/p' | head -1; }
pes_at_is() { [ "$(pes_at "$1")" = "$2" ]; }

say "kernel $(uname -r); rsplib $(dpkg-query -W -f='${Version}' rsplib-registrar)"
# The kernel accepts SCTP in UDP on 9899 (ours sends there) and answers to the port it came
# from; its own new associations stay plain SCTP (encap_port 0), so RSPLIB's PE and registrar
# still talk natively.
sysctl -qw net.sctp.udp_port=9899 net.sctp.encap_port=0
start tshark tshark -i lo -q -w "$OUT/enrp.pcap" -f 'sctp or udp port 9899 or udp port 9900'
wait_for 30 log_has tshark 'Capture started' || say "tshark did not report 'Capture started'"

start rsp rspregistrar $LOG -asapannounce=off -enrpannounce=off -asap=$RSP:3863 -enrp=$RSP:9901 -peer=$OURS:9901
start ours "$BIN" --backend userspace --udp $OURS:9900 --workers 1 --no-announce --registrar-id 0x2222 \
  --peer $RSP:9901 --enrp-heartbeat-ms 2000 --enrp-max-time-last-heard-ms 5000 \
  --enrp-max-time-no-response-ms 2000 --enrp-mentor-hunt-timeout-ms 8000 \
  --keep-alive-interval-ms 2000 --keep-alive-timeout-ms 4000 --run-seconds 200 --log registrar=debug,info
check "our registrar is up" wait_for 20 log_has ours 'registrar ready'
check "ours heard RSPLIB's registrar over ENRP" wait_for 30 log_has ours 'ENRP in'
sleep 8
start pe rspserver -echo $LOG -registrar=$RSP:3863
check "RSPLIB PE registered at RSPLIB's registrar" wait_for 40 log_has pe 'Identifier'
check "ours applied the PE from RSPLIB's Handle Update" wait_for 30 log_has ours 'peer PE applied'
check "RSPLIB's hsdump reads 1 PE at RSPLIB's registrar" wait_for 20 pes_at_is $RSP 1
sysctl -qw net.sctp.encap_port=9900
timeout 20 hsdump $OURS:9901 -logcolor=off >"$OUT/hsdump-ours.log" 2>&1
sysctl -qw net.sctp.encap_port=0
check "RSPLIB's hsdump reads our handlespace (1 PE)" grep -q '1 PoolElements' "$OUT/hsdump-ours.log"

say "stopping RSPLIB's registrar (kill -9)"
kill -9 "${PID[rsp]}"; unset "PID[rsp]"
check "ours declared RSPLIB's registrar failed" wait_for 30 log_has ours 'peer failed'
check "ours won the takeover" wait_for 20 log_has ours 'takeover won'
check "ours re-homed RSPLIB's PE" wait_for 10 log_has ours 'PEs re-homed.*moved=1'
sleep 2
stop pe
stop ours
sleep 1; stop tshark
check "capture written" test -s "$OUT/enrp.pcap"
DECODE="-d udp.port==9899,sctp -d udp.port==9900,sctp"
tshark -r "$OUT/enrp.pcap" $DECODE -Y enrp >"$OUT/enrp.txt" 2>&1
say "ENRP messages in the capture: $(wc -l <"$OUT/enrp.txt")"
check "capture has ENRP traffic" test -s "$OUT/enrp.txt"
tshark -r "$OUT/enrp.pcap" $DECODE -q -z expert >"$OUT/expert.txt" 2>&1
experts=$(tshark -r "$OUT/enrp.pcap" $DECODE -Y '_ws.expert' 2>/dev/null | wc -l)
say "frames with expert infos: $experts"; cat "$OUT/expert.txt"
check "zero tshark expert infos" test "$experts" = 0
finish
