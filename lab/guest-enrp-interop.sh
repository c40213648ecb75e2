#!/bin/bash
# guest-enrp-interop.sh REGISTRAR_BIN RSERPOOL_BIN OUTDIR - runs INSIDE the lab VM. Our
# registrar (its own SCTP in UDP, RFC 6951, at 192.0.2.2 UDP 9900) and RSPLIB 3.4.4's
# rspregistrar (kernel SCTP at 192.0.2.1, which also accepts SCTP in UDP on 9899) as ENRP
# peers, each the other's mentor:
#  1. ours starts alone, RSPLIB's joins with ours as its mentor; a PE registered at either is
#     in the other's handlespace; RSPLIB's hsdump reads ours;
#  2. kill -9 ours: RSPLIB's registrar takes it over;
#  3. ours restarts with a new id and rejoins through RSPLIB's as mentor (table download);
#  4. kill -9 RSPLIB's: ours takes over its PE.
# Phases 1 and 3-4 are captured (not the kill of ours: RSPLIB's kernel then retransmits to a
# dead peer, which tshark rightly notes); both captures need zero tshark expert infos.
# Ends with 'N passed, M failed'; exit status 0 only if every check passed.
set -u
BIN=$1
TOOL=$2
OUT=${3:-enrp-interop-out}
mkdir -p "$OUT" && OUT=$(cd "$OUT" && pwd)
rm -f "$OUT"/*.log "$OUT"/*.pcap "$OUT"/*.txt
RSP=192.0.2.1 OURS=192.0.2.2
LOG="-logcolor=off -loglevel=3"
TAG=enrp
# shellcheck source=guest-lib.sh
source "$(dirname "$0")/guest-lib.sh"
DECODE="-d udp.port==9899,sctp -d udp.port==9900,sctp"
pes_at() { timeout -k 5 20 hsdump "$1:9901" -logcolor=off 2>/dev/null | sed -n 's/.*(\([0-9]*\) Pools, \([0-9]*\) PoolElements.*/\2/p' | head -1; }
pes_at_is() { [ "$(pes_at "$1")" = "$2" ]; }
# hsdump speaks kernel SCTP; ours is reached in UDP, so its new association is encapsulated.
hsdump_ours() { sysctl -qw net.sctp.encap_port=9900; timeout -k 5 20 hsdump $OURS:9901 -logcolor=off >"$OUT/$1" 2>&1; sysctl -qw net.sctp.encap_port=0; }
ours() {
  start "$1" "$BIN" --backend userspace --udp $OURS:9900 --workers 1 --no-announce --registrar-id "$2" \
    --peer $RSP:9901 --enrp-heartbeat-ms 2000 --enrp-max-time-last-heard-ms 5000 \
    --enrp-max-time-no-response-ms 2000 --enrp-mentor-hunt-timeout-ms 8000 \
    --keep-alive-interval-ms 2000 --keep-alive-timeout-ms 4000 --run-seconds 200 --log registrar=debug,info
}
capture() { start "tshark-$1" tshark -i lo -q -w "$OUT/$1.pcap" -f 'sctp or udp port 9899 or udp port 9900'
  wait_for 30 log_has "tshark-$1" 'Capture started' || say "tshark did not report 'Capture started'"; }
experts_in() {
  tshark -r "$OUT/$1.pcap" $DECODE -q -z expert >"$OUT/$1-expert.txt" 2>&1
  local n; n=$(tshark -r "$OUT/$1.pcap" $DECODE -Y '_ws.expert' 2>/dev/null | wc -l)
  say "$1: frames with expert infos: $n"; [ "$n" = 0 ] || cat "$OUT/$1-expert.txt"; [ "$n" = 0 ]
}

say "kernel $(uname -r); rsplib $(dpkg-query -W -f='${Version}' rsplib-registrar)"
# The kernel accepts SCTP in UDP on 9899 (ours sends there) and answers to the port it came
# from; its own new associations stay plain SCTP (encap_port 0), so RSPLIB's PE and registrar
# talk natively.
sysctl -qw net.sctp.udp_port=9899 net.sctp.encap_port=0

say "== 1: ours and RSPLIB's as peers"
capture one
ours ours 0x2222
check "our registrar is up" wait_for 20 log_has ours 'registrar ready'
check "ours found no mentor and serves alone" wait_for 30 log_has ours 'serving alone'
# RSPLIB's association to ours must be SCTP in UDP: new associations are encapsulated while
# it starts (its PE, started after, talks to it natively again).
sysctl -qw net.sctp.encap_port=9900
start rsp rspregistrar $LOG -asapannounce=off -enrpannounce=off -asap=$RSP:3863 -enrp=$RSP:9901 -peer=$OURS:9901
check "RSPLIB's registrar took ours as its mentor and downloaded our handlespace" \
  wait_for 30 log_has rsp 'obtaining handlespace from mentor'
sysctl -qw net.sctp.encap_port=0
start pe-rsp rspserver -echo $LOG -registrar=$RSP:3863
check "RSPLIB's PE registered at RSPLIB's registrar" wait_for 40 log_has pe-rsp 'Identifier'
check "ours applied RSPLIB's PE from its Handle Update" wait_for 30 log_has ours 'peer PE applied'
start pe-ours "$TOOL" --registrar $OURS:3863 --registrar-udp-port 9900 --udp $OURS:0 \
  register --pool OursPool --port 7 --id 0x7777 --address 192.0.2.3 --run-seconds 150
check "our PE registered at ours" wait_for 30 log_has pe-ours 'registered'
check "RSPLIB's registrar holds both PEs (hsdump)" wait_for 30 pes_at_is $RSP 2
timeout -k 5 20 hsdump $RSP:9901 -logcolor=off >"$OUT/hsdump-rsp.log" 2>&1
check "RSPLIB's registrar lists ours as a peer (hsdump)" grep -q '\$00002222' "$OUT/hsdump-rsp.log"
hsdump_ours hsdump-ours.log
check "RSPLIB's hsdump reads our handlespace: both PEs" grep -q '2 PoolElements' "$OUT/hsdump-ours.log"
"$TOOL" --registrar $OURS:3863 --registrar-udp-port 9900 --udp $OURS:0 resolve EchoPool --json >"$OUT/resolve-ours.json" 2>&1
check "a PU resolves RSPLIB's PE at ours" grep -q '"id"' "$OUT/resolve-ours.json"
"$TOOL" --registrar $RSP:3863 --registrar-udp-port 9899 --udp $OURS:0 resolve OursPool --json >"$OUT/resolve-rsp.json" 2>&1
check "a PU resolves our PE at RSPLIB's registrar" grep -q '30583\|0x00007777\|7777' "$OUT/resolve-rsp.json"
sleep 1; stop tshark-one

say "== 2: kill -9 ours; RSPLIB's registrar is the only survivor"
kill -9 "${PID[ours]}"; unset "PID[ours]"
# RSPLIB departs from RFC 5353 §3.5.1 here: with nobody left to acknowledge, its arbitration
# never completes (it expires), so our PE keeps our id as home there until it re-registers
# or its registration life ends; it is not lost (README, "Interoperability notes").
check "RSPLIB's registrar arbitrated for ours (and, alone, let it expire)" \
  wait_for 40 log_has rsp 'Takeover of peer \$00002222 \(completed\|has expired\)'
"$TOOL" --registrar $RSP:3863 --registrar-udp-port 9899 --udp $OURS:0 resolve OursPool --json >"$OUT/resolve-rsp-after.json" 2>&1
check "our PE is still resolvable at RSPLIB's registrar" grep -q '7777' "$OUT/resolve-rsp-after.json"

say "== 3: ours restarts with a new id and rejoins through RSPLIB's"
stop pe-ours
capture two
ours ours2 0x3333
check "ours downloaded RSPLIB's handlespace from it as mentor" wait_for 30 log_has ours2 'handlespace download complete'
check "the download brought RSPLIB's PE" wait_for 10 log_has ours2 'peer PE applied'

say "== 4: kill -9 RSPLIB's; ours takes over its PE"
kill -9 "${PID[rsp]}"; unset "PID[rsp]"
check "ours declared RSPLIB's registrar failed" wait_for 30 log_has ours2 'peer failed'
check "ours won the takeover" wait_for 20 log_has ours2 'takeover won'
check "ours re-homed RSPLIB's PE" wait_for 10 grep -qE 'PEs re-homed.*moved=[1-9]' "$OUT/ours2.log"
# RFC 5353 §3.5.2: ours then opens an association to the PE's ASAP Transport for the
# H-flagged keep-alive; RSPLIB's PE does not accept it (its kernel answers the INIT with an
# ABORT), so the PE stays only if it re-registers in time (README, "Interoperability notes").

sleep 2
stop pe-rsp
stop ours2
sleep 1; stop tshark-two
for c in one two; do
  tshark -r "$OUT/$c.pcap" $DECODE -Y enrp >"$OUT/$c-enrp.txt" 2>&1
  say "$c: ENRP messages in the capture: $(wc -l <"$OUT/$c-enrp.txt")"
  check "$c: capture has ENRP traffic" test -s "$OUT/$c-enrp.txt"
  check "$c: zero tshark expert infos" experts_in $c
done
sysctl -qw net.sctp.udp_port=0 net.sctp.encap_port=0
finish
