#!/usr/bin/env bash
# faults/faultq-check.sh - the NFQUEUE shim measured on its own, so that the scenarios that use
# it stand on a shim known to do what it says. Two network namespaces joined by a veth pair;
# faultq in the first holds its outgoing packets; ping from the first measures the result:
#   1. delay 100 ms, jitter 20 ms: every echo's RTT is in [100, 100 + 20 + 40) ms (40 ms for the
#      shim's 0.5 ms tick and a busy host), and a plain ping before it is below 20 ms;
#   2. duplicate 50 %: ping reports duplicates (P(none of 20) = 1e-6), none lost;
#   3. reorder 100 % with a 500 ms delay: nothing is held (RTT < 100 ms);
#   4. the shim stopped (SIGTERM) with packets held: they are released, none lost.
# Needs root, iptables and ping (Debian: iptables, iputils-ping). Ends 'N passed, M failed'.
set -u
# Read whole before it runs (a brace group): editing the script during a run cannot change it.
{
cd "$(dirname "$0")/.."
BIN=${BIN_DIR:-target/release}
IPT=$(command -v iptables-legacy || command -v iptables) || { echo "iptables missing"; exit 2; }
command -v ping >/dev/null || { echo "ping missing (apt-get install -y iputils-ping)"; exit 2; }
[ -x "$BIN/faultq" ] || { echo "missing $BIN/faultq (cargo build --release -p faults)"; exit 2; }
A=fq$$a B=fq$$b PASS=0 FAIL=0 SHIM=
cleanup() { [ -n "$SHIM" ] && kill -9 "$SHIM" 2>/dev/null; ip netns del "$A" 2>/dev/null; ip netns del "$B" 2>/dev/null; }
trap cleanup EXIT
ip netns add "$A" && ip netns add "$B" &&
  ip -n "$A" link add eth0 type veth peer name eth0 netns "$B" &&
  ip -n "$A" addr add 10.78.0.1/24 dev eth0 && ip -n "$B" addr add 10.78.0.2/24 dev eth0 &&
  ip -n "$A" link set eth0 up && ip -n "$B" link set eth0 up && ip -n "$A" link set lo up ||
  { echo "cannot create namespaces"; exit 2; }
check() { # NAME CONDITION-TEXT RESULT(0/1)
  if [ "$3" = 0 ]; then PASS=$((PASS + 1)); echo "PASS $1: $2"; else FAIL=$((FAIL + 1)); echo "FAIL $1: $2"; fi
}
shim() { # faultq ARGS...: started, then the rule
  ip netns exec "$A" "$BIN/faultq" --queue 0 --mark 7 --run-seconds 60 "$@" >"/tmp/$A.log" 2>&1 &
  SHIM=$!
  sleep 0.3
  ip netns exec "$A" "$IPT" -t mangle -A OUTPUT -o eth0 -m mark ! --mark 7 -j NFQUEUE --queue-num 0 --queue-bypass
}
unshim() {
  ip netns exec "$A" "$IPT" -t mangle -F OUTPUT
  kill -TERM "$SHIM" 2>/dev/null; wait "$SHIM" 2>/dev/null; SHIM=
}
rtts() { grep -o 'time=[0-9.]*' | cut -d= -f2; }   # one RTT per reply, in ms
pinging() { ip netns exec "$A" ping -n -c "$1" -i "$2" -W 2 10.78.0.2; }

plain=$(pinging 5 0.05 | rtts | sort -n | tail -1)
check plain "the path without the shim answers within 20 ms (max ${plain:-none} ms)" \
  "$(awk -v m="${plain:-999}" 'BEGIN { print (m < 20) ? 0 : 1 }')"

shim --delay-ms 100 --jitter-ms 20
out=$(pinging 20 0.05)
unshim
read -r lo hi n <<<"$(rtts <<<"$out" | sort -n | awk 'NR == 1 { lo = $1 } { hi = $1; n++ } END { print lo, hi, n }')"
check delay "20 of 20 replies, RTT in [100, 160) ms (got ${n:-0}, ${lo:-?}-${hi:-?} ms)" \
  "$(awk -v lo="${lo:-0}" -v hi="${hi:-999}" -v n="${n:-0}" 'BEGIN { print (n == 20 && lo >= 100 && hi < 160) ? 0 : 1 }')"

shim --duplicate-pct 50
out=$(pinging 20 0.05)
unshim
dups=$(grep -o '+[0-9]* duplicates' <<<"$out" | tr -dc 0-9)
recv=$(grep -o '[0-9]* received' <<<"$out" | tr -dc 0-9)
check duplicate "20 received and some duplicates (got ${recv:-0} and ${dups:-0})" \
  "$([ "${recv:-0}" = 20 ] && [ "${dups:-0}" -gt 0 ] && echo 0 || echo 1)"

shim --delay-ms 500 --reorder-pct 100
hi=$(pinging 10 0.05 | rtts | sort -n | tail -1)
unshim
check reorder "reorder 100 % holds nothing back (max RTT ${hi:-none} ms < 100)" \
  "$(awk -v m="${hi:-999}" 'BEGIN { print (m < 100) ? 0 : 1 }')"

shim --delay-ms 3000
ip netns exec "$A" ping -n -c 3 -i 0.1 -W 5 10.78.0.2 >"/tmp/$A.ping" 2>&1 &
PING=$!
sleep 0.8
unshim                                   # SIGTERM with three echoes held
wait "$PING"
recv=$(grep -o '[0-9]* received' "/tmp/$A.ping" | tr -dc 0-9)
check release "packets held at SIGTERM go out (3 replies, got ${recv:-0})" "$([ "${recv:-0}" = 3 ] && echo 0 || echo 1)"
rm -f "/tmp/$A.log" "/tmp/$A.ping"

echo "$PASS passed, $FAIL failed"
[ "$FAIL" = 0 ]
exit
}
