#!/usr/bin/env bash
# Runs inside the lab VM (see transport/lab/kernel-sctp-echo.sh). $1: the sctp_echo binary.
# 1. kernel backend against itself in one process (multi-address server via sctp_bindx);
# 2. a kernel client process against a kernel echo server process;
# then with kernel SCTP over UDP (RFC 6951: net.sctp.udp_port=9899, encap_port=9900):
# 3. our userspace client (UDP 9900) against the kernel echo server;
# 4. the kernel client against our userspace echo server (UDP 9900).
set -uo pipefail
bin=$1
passed=0 failed=0
run() { # name, command...
  local name=$1; shift
  echo "== $name"
  if "$@"; then passed=$((passed + 1)); echo "PASS case: $name"; else failed=$((failed + 1)); echo "FAIL case: $name"; fi
}
modprobe sctp 2>/dev/null || true
run "kernel selftest" timeout 300 "$bin" kernel-selftest
"$bin" kernel-server 127.0.0.1:9911 120 & server=$!
sleep 2
run "kernel client -> kernel server" timeout 120 "$bin" kernel-client 127.0.0.1:9911
kill "$server" 2>/dev/null; wait "$server" 2>/dev/null

sysctl -w net.sctp.udp_port=9899 net.sctp.encap_port=9900
"$bin" kernel-server 127.0.0.1:9913 120 & server=$!
sleep 2
run "userspace client (UDP) -> kernel server" timeout 120 "$bin" udp-client 127.0.0.1:9913 127.0.0.1:9900 9899
kill "$server" 2>/dev/null; wait "$server" 2>/dev/null

"$bin" udp-server 9914 127.0.0.1:9900 120 & server=$!
sleep 2
run "kernel client -> userspace server (UDP)" timeout 120 "$bin" kernel-client 127.0.0.1:9914
kill "$server" 2>/dev/null; wait "$server" 2>/dev/null
echo "$passed passed, $failed failed"
[[ $failed == 0 ]]
