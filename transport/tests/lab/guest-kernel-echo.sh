#!/usr/bin/env bash
# Runs inside the lab VM (see transport/lab/kernel-sctp-echo.sh). $1: the sctp_echo binary.
# Case 1: kernel backend against itself in one process (multi-address server when possible).
# Case 2: a kernel echo server process and a kernel client process, over 127.0.0.1.
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
"$bin" kernel-server 127.0.0.1:9911 240 & server=$!
sleep 2
run "kernel client -> kernel server process" timeout 240 "$bin" kernel-client 127.0.0.1:9911
kill "$server" 2>/dev/null; wait "$server" 2>/dev/null
echo "$passed passed, $failed failed"
[[ $failed == 0 ]]
