#!/usr/bin/env bash
# Runs inside the lab VM (see transport/lab/kernel-sctp-echo.sh). $1: the sctp_echo binary.
# 1. kernel backend against itself in one process (multi-address server via sctp_bindx);
# 2. a kernel client process against a kernel echo server process;
# 2a. one-to-one client sockets (loadgen's kernel clients) against the one-to-many server, in
#     one process and from another process;
# 2b. our userspace SCTP against itself;
# then with kernel SCTP over UDP (RFC 6951: net.sctp.udp_port=9899, encap_port=9900):
# 3. our userspace client (UDP 9900) against the kernel echo server;
# 4. the kernel client against our userspace echo server (UDP 9900);
# 5. our userspace client against a wildcard-bound kernel server (INIT ACK lists every address);
# 6. INIT collision: kernel SCTP and ours connect to each other at once;
# and a capture of 3-6 must dissect as SCTP over UDP with no malformed or error-level packets.
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
run "one-to-one selftest" timeout 300 "$bin" one-to-one-selftest
"$bin" kernel-server 127.0.0.1:9918 120 & server=$!
sleep 2
run "one-to-one client -> kernel server" timeout 120 "$bin" one-to-one-client 127.0.0.1:9918
kill "$server" 2>/dev/null; wait "$server" 2>/dev/null

run "userspace selftest (UDP)" timeout 120 "$bin" udp-selftest
sysctl -w net.sctp.udp_port=9899 net.sctp.encap_port=9900
pcap=/tmp/sctp-udp.pcap
tshark -q -i lo -f "udp port 9899 or udp port 9900" -w "$pcap" 2>/tmp/tshark.err & capture=$!
# tshark starts slowly under emulation: wait until it has written its file header.
for _ in $(seq 60); do [[ -s $pcap ]] && break; sleep 0.5; done
sleep 1
"$bin" kernel-server 127.0.0.1:9913 120 & server=$!
sleep 2
run "userspace client (UDP) -> kernel server" timeout 120 "$bin" udp-client 127.0.0.1:9913 127.0.0.1:9900 9899
kill "$server" 2>/dev/null; wait "$server" 2>/dev/null

"$bin" udp-server 9914 127.0.0.1:9900 120 & server=$!
sleep 2
run "kernel client -> userspace server (UDP)" timeout 120 "$bin" kernel-client 127.0.0.1:9914
kill "$server" 2>/dev/null; wait "$server" 2>/dev/null

"$bin" kernel-server 0.0.0.0:9915 120 & server=$!
sleep 2
run "userspace client (UDP) -> wildcard kernel server" timeout 120 "$bin" udp-client 127.0.0.1:9915 127.0.0.1:9900 9899
kill "$server" 2>/dev/null; wait "$server" 2>/dev/null

run "INIT collision: kernel <-> userspace (UDP)" timeout 120 "$bin" collide

sleep 1; kill -INT "$capture" 2>/dev/null; wait "$capture" 2>/dev/null
# LAB_PCAP_OUT=/host/...: keep the capture for a look on the host.
[[ -n ${LAB_PCAP_OUT:-} ]] && cp "$pcap" "$LAB_PCAP_OUT"
# The echo payloads are not real ASAP/ENRP messages, and 9900 is IUA's port: judge only the SCTP
# layer, with CRC32c verified.
decode=(-d udp.port==9899,sctp -d udp.port==9900,sctp -o sctp.checksum:CRC-32C
        --disable-protocol asap --disable-protocol enrp --disable-protocol iua)
dissect() { tshark -r "$pcap" "${decode[@]}" "$@" 2>/dev/null | wc -l; }
total=$(dissect -Y sctp) good=$(dissect -Y "sctp.checksum.status == 1")
bad=$(dissect -Y "_ws.malformed || _ws.expert.severity >= error")
echo "capture: $total SCTP packets, $good with a good CRC32c, $bad malformed or error-level"
tshark -r "$pcap" "${decode[@]}" \
  -Y "_ws.malformed || _ws.expert.severity >= error" -T fields -e frame.number -e udp.srcport \
  -e udp.dstport -e sctp.chunk_type -e _ws.expert.message 2>/dev/null | head -5
run "capture dissects cleanly" test "$total" -gt 0 -a "$good" -eq "$total" -a "$bad" -eq 0
echo "$passed passed, $failed failed"
[[ $failed == 0 ]]
