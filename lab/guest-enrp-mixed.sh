#!/bin/bash
# guest-enrp-mixed.sh BIN_DIR OUTDIR - runs INSIDE the lab VM. ENRP in mixed deployments of
# ours (the kernel SCTP backend, native kernel SCTP to RSPLIB: no encapsulation between
# registrars) and RSPLIB 3.4.4's rspregistrar:
#  1. discovery on the ENRP multicast channel (239.0.0.51:9901): ours with --enrp-multicast
#     and RSPLIB's with -enrpannounce, neither told of the other, become peers and share PEs;
#  2. handle table download to a joining registrar (ours, the same flags each time) from
#     RSPLIB's registrar and from ours holding the same PEs (loadgen fills both): the time from
#     the joiner's first Handle Table Request to the last page on the wire, in the same boot
#     (300 PEs: with more, RSPLIB's registrar under emulation fails its own sends with EAGAIN
#     and drops answers, the List Response among them);
#  3. three registrars, two of ours (A, B) and RSPLIB's (C), a PE at each of B and C; kill -9
#     B: A and C both detect it, exactly one of them wins the takeover;
#  4. a new B joins; kill -9 C (RSPLIB's): A and B detect it at once, exactly one wins.
# Phases 1 and 3 (until the kill) are captured; zero tshark expert infos.
# Ends with 'N passed, M failed'; exit status 0 only if every check passed.
set -u
BIN=$1
OUT=${2:-enrp-mixed-out}
mkdir -p "$OUT" && OUT=$(cd "$OUT" && pwd)
rm -f "$OUT"/*.log "$OUT"/*.pcap "$OUT"/*.txt
HERE=$(cd "$(dirname "$0")" && pwd)
LOG="-logcolor=off -loglevel=3"
TAG=mixed
# shellcheck source=guest-lib.sh
source "$(dirname "$0")/guest-lib.sh"
DECODE="-d udp.port==9899,sctp"
PES_FILL=${PES_FILL:-300}
TIMERS=(--enrp-heartbeat-ms 2000 --enrp-max-time-last-heard-ms 5000
  --enrp-mentor-hunt-timeout-ms 8000 --keep-alive-interval-ms 2000 --keep-alive-timeout-ms 4000)
# The PEs in a registrar's handlespace, as RSPLIB's hsdump reads it (its output kept).
pes_at() { timeout -k 5 60 hsdump "$1:9901" -logcolor=off >"$OUT/hsdump-$1.txt" 2>&1
  sed -n 's/.*(\([0-9]*\) Pools, \([0-9]*\) PoolElements.*/\2/p' "$OUT/hsdump-$1.txt" | head -1; }
pes_at_is() { [ "$(pes_at "$1")" = "$2" ]; }
# ours NAME IP ID [FLAGS...]: our registrar on the kernel backend at IP.
ours() {
  local name=$1 ip=$2 id=$3; shift 3
  start "$name" "$BIN/registrar" --backend kernel --kernel-address "$ip" --no-announce \
    --registrar-id "$id" "${TIMERS[@]}" --enrp-max-time-no-response-ms "${NO_RESPONSE_MS:-2000}" \
    --run-seconds 400 --log registrar=debug,info "$@"
}
# rsp NAME IP [FLAGS...]
rsp() { local name=$1 ip=$2; shift 2; start "$name" rspregistrar $LOG -asap=$ip:3863 -enrp=$ip:9901 "$@"; }
pe() { # NAME POOL ID REGISTRAR_IP...: the first registrar is its home, the others its hunt
  local name=$1 pool=$2 id=$3 registrars=(); shift 3
  for r in "$@"; do registrars+=(--registrar "$r:3863"); done
  start "$name" "$BIN/rserpool" "${registrars[@]}" --hunt-parallel 1 --registrar-udp-port 9899 \
    --udp 192.0.2.9:0 register --pool "$pool" --port 7 --id "$id" --address 192.0.2.9 --run-seconds 300
}
resolves() { # REGISTRAR_IP POOL: a PU resolves the pool there
  "$BIN/rserpool" --registrar "$1:3863" --registrar-udp-port 9899 --udp 192.0.2.9:0 \
    resolve "$2" --json 2>/dev/null | grep -q '"id"'
}
capture() { # NAME HOST...: SCTP (and SCTP in UDP) to or from these hosts only
  local hosts; hosts=$(printf ' or host %s' "${@:2}"); hosts=${hosts# or }
  start "tshark-$1" tshark -i lo -q -w "$OUT/$1.pcap" -f "(sctp or udp port 9899) and ($hosts)"
  wait_for 30 log_has "tshark-$1" 'Capture started' || say "tshark did not report 'Capture started'"; }
experts_in() {
  tshark -r "$OUT/$1.pcap" $DECODE -q -z expert >"$OUT/$1-expert.txt" 2>&1
  local n; n=$(tshark -r "$OUT/$1.pcap" $DECODE -Y '_ws.expert' 2>/dev/null | wc -l)
  say "$1: frames with expert infos: $n"; [ "$n" = 0 ] || cat "$OUT/$1-expert.txt"; [ "$n" = 0 ]
}
# Winners of the takeover of TARGET_HEX (8 hex digits) over our logs and RSPLIB's.
ours_won() { cat "${@:2}" /dev/null 2>/dev/null | grep -c "takeover won.*target=$((16#$1))"; }
rsp_won() { cat "${@:2}" /dev/null 2>/dev/null | grep -ci "Takeover of peer \\\$$1 completed"; }

say "kernel $(uname -r); rsplib $(dpkg-query -W -f='${Version}' rsplib-registrar)"
# Our userspace PEs and PUs and loadgen reach the kernel's SCTP in UDP on 9899; the kernel's
# own new associations (registrar to registrar) stay native SCTP.
sysctl -qw net.sctp.udp_port=9899 net.sctp.encap_port=0
# Addresses of this script's own: the scripts before it in the same boot used 192.0.2.1-4, and
# a kernel SCTP port stays busy while the kernel shuts its old associations down.
for ip in 5 6 7 8 9 10 11 21 22 23 24; do ip addr add 192.0.2.$ip/32 dev lo 2>/dev/null; done

say "== 1: discovery on the ENRP multicast channel"
capture one 192.0.2.5 192.0.2.6 192.0.2.9
ours m-ours 192.0.2.5 0x5555 --enrp-multicast --enrp-multicast-interface 192.0.2.5
check "ours (multicast) is up" wait_for 20 log_has m-ours 'registrar ready'
rsp m-rsp 192.0.2.6 -asapannounce=off -enrpannounce=239.0.0.51:9901
# Whichever hears the other first connects (RSPLIB's usually hears our first Presence, sent
# at start); the other then has nothing to learn.
peered() { log_has m-ours 'registrar heard on the multicast channel' ||
  timeout -k 5 20 hsdump 192.0.2.6:9901 -logcolor=off 2>/dev/null | grep -q '\$00005555'; }
check "ours and RSPLIB's became peers over the channel" wait_for 40 peered
pe m-pe-ours MOursPool 0x5001 192.0.2.5
check "our PE registered at ours" wait_for 30 log_has m-pe-ours 'registered'
check "RSPLIB's registrar, never told of ours, holds our PE" wait_for 40 pes_at_is 192.0.2.6 1
check "a PU resolves our PE at RSPLIB's registrar" wait_for 20 resolves 192.0.2.6 MOursPool
sleep 1; stop tshark-one
stop m-pe-ours; stop m-rsp; stop m-ours

say "== 2: table download of $PES_FILL PEs to a joining registrar: RSPLIB's vs ours as mentor"
download() { # NAME IP MENTOR_IP: our joiner at IP; prints the ms of the table transfer: on
  # the wire, from the joiner's first Handle Table Request to the mentor's last Handle Table
  # Response (M clear), with the same joiner (info logging) for either mentor. RSPLIB's
  # registrar, loaded, drops answers it cannot send at once (EAGAIN on its one-to-many
  # socket), the List Response among them; the joiner then waits MAX-TIME-NO-RESPONSE and takes
  # the table by the audit's W-flagged request instead: the transfer is timed, not the wait.
  capture "dl-$1" "$2" >&2
  start "$1" "$BIN/registrar" --backend kernel --kernel-address "$2" --no-announce \
    --registrar-id 0x7777 "${TIMERS[@]}" --enrp-max-time-no-response-ms 20000 \
    --run-seconds 400 --log info --peer "$3:9901" >&2
  wait_for 120 pes_at_is "$2" "$PES_FILL" || { stop "tshark-dl-$1"; return 1; }
  sleep 1; stop "tshark-dl-$1"
  local f="$OUT/dl-$1.pcap" a b
  a=$(tshark -r "$f" -Y "enrp.message_type == 2 && ip.dst == $3" -T fields -e frame.time_epoch 2>/dev/null | head -1)
  b=$(tshark -r "$f" -Y "enrp.message_type == 3 && ip.src == $3" -T fields -e frame.time_epoch 2>/dev/null | tail -1)
  [ -n "$a" ] && [ -n "$b" ] || return 1
  python3 -c "print(round(($b - $a) * 1000))"
}
fill() { # NAME REGISTRAR_IP: loadgen's PEs register there and stay
  (cd "$OUT" && exec timeout 400 "$BIN/loadgen" run --scenario "$HERE/scenarios/fill.toml" \
    --address "$2:9899" --pe-count "$PES_FILL" --name "$1" >"$OUT/$1.txt" 2>&1) &
  PID[$1]=$!
}
rsp d-rsp 192.0.2.8 -asapannounce=off -enrpannounce=off
sleep 7   # RSPLIB spends its first ~5 s in mentor discovery
fill d-fill-rsp 192.0.2.8
check "loadgen filled RSPLIB's registrar with $PES_FILL PEs" wait_for 120 pes_at_is 192.0.2.8 "$PES_FILL"
rsp_ms=$(download d-join-rsp 192.0.2.7 192.0.2.8)
check "our joiner took RSPLIB's whole handlespace (transfer ${rsp_ms:-?} ms)" test -n "$rsp_ms"
stop d-join-rsp; stop d-fill-rsp; stop d-rsp
sleep 2
ours d-ours 192.0.2.10 0xa0a0
check "our mentor is up" wait_for 20 log_has d-ours 'registrar ready'
fill d-fill-ours 192.0.2.10
check "loadgen filled our registrar with $PES_FILL PEs" wait_for 120 pes_at_is 192.0.2.10 "$PES_FILL"
ours_ms=$(download d-join-ours 192.0.2.11 192.0.2.10)
check "our joiner took our whole handlespace (transfer ${ours_ms:-?} ms)" test -n "$ours_ms"
stop d-join-ours; stop d-fill-ours; stop d-ours
if [ -n "$rsp_ms" ] && [ -n "$ours_ms" ]; then
  say "download of $PES_FILL PEs: from RSPLIB's registrar ${rsp_ms} ms, from ours ${ours_ms} ms"
  echo "download_pes=$PES_FILL rsplib_ms=$rsp_ms ours_ms=$ours_ms" >"$OUT/download.txt"
fi

say "== 3: two of ours (A, B) and RSPLIB's (C); kill -9 B"
capture three 192.0.2.21 192.0.2.22 192.0.2.23 192.0.2.24 192.0.2.9
# A also knows C and reaches out: under emulation RSPLIB's own start takes longer than its
# 5 s mentor hunt, so a Presence from A must reach it early for it to take A as mentor
# (RSPLIB 3.4.4 lists -mentorhuntinterval in its usage but refuses it).
ours a 192.0.2.21 0x0a0a --peer 192.0.2.22:9901
check "A is up" wait_for 20 log_has a 'registrar ready'
rsp c 192.0.2.22 -asapannounce=off -enrpannounce=off -peer=192.0.2.21:9901
# RSPLIB's own start under emulation outlasts its 5 s mentor hunt, so it may serve alone and
# then audit instead of downloading from A: either way they become peers.
check "A and C (RSPLIB's) became peers" wait_for 40 log_has a 'new peer'
ours b 192.0.2.23 0x0b0b --peer 192.0.2.21:9901 --peer 192.0.2.22:9901
check "B downloaded a handlespace from a mentor" wait_for 40 log_has b 'handlespace download complete'
start pe-c rspserver -echo $LOG -registrar=192.0.2.22:3863
check "RSPLIB's PE registered at C" wait_for 40 log_has pe-c 'Identifier'
# Our PE knows only B: with a second registrar it would re-register there as soon as B's
# kernel aborts its association, and B would die owning nothing (no takeover to arbitrate).
pe pe-b BPool 0xb001 192.0.2.23
check "our PE registered at B" wait_for 30 log_has pe-b 'registered'
for r in 21 22 23; do
  check "registrar 192.0.2.$r holds both PEs (hsdump)" wait_for 40 pes_at_is 192.0.2.$r 2
done
sleep 1; stop tshark-three
kill -9 "${PID[b]}"; unset "PID[b]"
b_won() { [ $(( $(ours_won 00000b0b "$OUT/a.log") + $(rsp_won 00000b0b "$OUT/c.log") )) -ge 1 ]; }
check "a survivor won the takeover of B" wait_for 60 b_won
sleep 6   # every arbitration that started has ended
a_b=$(ours_won 00000b0b "$OUT/a.log"); c_b=$(rsp_won 00000b0b "$OUT/c.log")
check "exactly one winner for B (A: $a_b, C: $c_b)" test $((a_b + c_b)) = 1
check "the winner re-homed B's PE" bash -c "grep -qE 'PEs re-homed source=2827 .*moved=1' '$OUT/a.log' ||
  grep -qi 'Takeover of peer .00000b0b completed' '$OUT/c.log'"

say "== 4: a new B joins; kill -9 C (RSPLIB's): A and B detect it at the same time"
ours b2 192.0.2.24 0x0b0c --peer 192.0.2.21:9901 --peer 192.0.2.22:9901
check "the new B downloaded a handlespace" wait_for 40 log_has b2 'handlespace download complete'
# B's PE may be gone by now: its winner's keep-alive cannot reach a userspace PE from the
# kernel (no encapsulation between them), so it times out (README, "Not implemented").
check "the new B holds RSPLIB's PE" wait_for 30 resolves 192.0.2.24 EchoPool
sleep 3   # every pair has exchanged Presence
rehomed() { cat "$OUT/a.log" "$OUT/b2.log" | grep -cE 'PEs re-homed.*moved=[1-9]'; }
rehomed_before=$(rehomed)
kill -9 "${PID[c]}"; unset "PID[c]"
won_since() { echo $(( $(cat "$OUT/a.log" "$OUT/b2.log" | grep -c 'takeover won') - a_b )); }
c_won() { [ "$(won_since)" -ge 1 ]; }
check "A or the new B won the takeover of C" wait_for 60 c_won
sleep 6
winners=$(won_since)
check "exactly one winner for C among A and the new B (found $winners)" test "$winners" = 1
# Each survivor found C failed itself, or acknowledged the other's takeover of it first (under
# emulation one survivor's Init Takeover can reach the other before its own timer fires).
knew() { grep -qE 'peer failed|takeover of a peer acknowledged' "$OUT/$1.log"; }
both_knew() { knew a && knew b2; }
check "both survivors learned of C's failure" both_knew
# RSPLIB's PE knows only C; the winner re-homes it (its keep-alive then goes unanswered:
# README, "Interoperability notes").
check "the winner re-homed C's PE" test "$(rehomed)" -gt "$rehomed_before"

stop pe-c; stop a; stop b2
for c in one three; do
  tshark -r "$OUT/$c.pcap" $DECODE -Y enrp >"$OUT/$c-enrp.txt" 2>&1
  say "$c: ENRP messages in the capture: $(wc -l <"$OUT/$c-enrp.txt")"
  check "$c: capture has ENRP traffic" test -s "$OUT/$c-enrp.txt"
  check "$c: zero tshark expert infos" experts_in $c
done
sysctl -qw net.sctp.udp_port=0 net.sctp.encap_port=0
finish
