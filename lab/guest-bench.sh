#!/bin/bash
# guest-bench.sh BIN_DIR OUTDIR - runs INSIDE the lab VM. The same loadgen, with the same
# scenarios and settings, drives RSPLIB 3.4.4's rspregistrar, then our registrar with the
# kernel SCTP backend, then ours with its own userspace SCTP in UDP, then that again with UDP
# segmentation offload on its sends (1 worker each). Kernel SCTP accepts SCTP in UDP (RFC 6951)
# on port 9899, so
# loadgen's userspace SCTP reaches both through the kernel's encapsulation. Writes one JSON
# result per (registrar, scenario) into OUTDIR; the host computes the ratios.
set -u
BIN=$1
OUT=${2:-bench-out}
mkdir -p "$OUT" && OUT=$(cd "$OUT" && pwd)
HERE=$(cd "$(dirname "$0")" && pwd)
sysctl -qw net.sctp.udp_port=9899 net.sctp.encap_port=9899
say() { printf '[bench %6.2fs] %s\n' "$(awk '{print $1}' /proc/uptime)" "$*"; }

# CPU time (user + system, clock ticks) of a process so far.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
# System time alone (the kernel's share: syscalls, UDP or SCTP, wake-ups).
sys_ticks() { awk '{print $15}' "/proc/$1/stat"; }

run_load() { # NAME SCENARIO IP:UDP-PORT PID
  say "loadgen $2 against $1 at $3"
  local before sys_before; before=$(cpu_ticks "$4"); sys_before=$(sys_ticks "$4")
  (cd "$OUT" && timeout 120 "$BIN/loadgen" run --scenario "$HERE/scenarios/$2.toml" \
      --address $3 --name "$1-$2" >"$OUT/$1-$2.txt" 2>&1)
  # The registrar's own CPU time over the run: with the load generator sharing the VM's
  # CPUs, CPU per operation is the fairer capacity signal than throughput alone.
  echo "registrar_cpu_ticks=$(( $(cpu_ticks "$4") - before )) ticks_per_s=$(getconf CLK_TCK)" \
    "registrar_sys_ticks=$(( $(sys_ticks "$4") - sys_before ))" \
    >>"$OUT/$1-$2.txt"
  say "exit $? ; $(grep -E '^(register|resolve|deregister) ' "$OUT/$1-$2.txt" | tr -s ' ' | tr '\n' ';')"
}

# Each run gets its own address (lab-init puts 192.0.2.1-4 on lo; we add more): a killed
# registrar's SCTP port stays busy while the kernel shuts its associations down, and RSPLIB
# cannot reuse it.
# Each registrar sends packets as large as its path allows: kernel SCTP uses lo's 64 KiB MTU
# by itself; ours is told (the scenarios set the same for loadgen's SCTP).
MTU=65507
ip=0
for scenario in ${BENCH_SCENARIOS:-resolve churn}; do
  ip=$((ip + 1)); PR=192.0.2.$ip
  ip addr add $PR/32 dev lo 2>/dev/null
  say "start rspregistrar"
  rspregistrar -logcolor=off -loglevel=1 -asap=$PR:3863 -enrp=$PR:9901 \
    -asapannounce=off -enrpannounce=off >"$OUT/rspregistrar-$scenario.log" 2>&1 &
  pid=$!
  sleep 7   # RSPLIB spends its first ~5 s in mentor discovery
  run_load rsplib $scenario $PR:9899 $pid
  kill $pid; wait $pid 2>/dev/null

  ip=$((ip + 1)); PR=192.0.2.$ip
  ip addr add $PR/32 dev lo 2>/dev/null
  say "start our registrar"
  "$BIN/registrar" --backend kernel --kernel-address $PR --no-announce --run-seconds 100 \
    --log warn >"$OUT/ours-$scenario.log" 2>&1 &
  pid=$!
  sleep 2
  run_load ours $scenario $PR:9899 $pid
  kill $pid; wait $pid 2>/dev/null

  # Ours as designed: its own SCTP in UDP (no kernel SCTP in the path), one worker.
  say "start our registrar (userspace SCTP over UDP)"
  "$BIN/registrar" --backend userspace --udp $PR:9900 --workers 1 --sctp-mtu $MTU --no-announce \
    --run-seconds 100 --log warn >"$OUT/ours-userspace-$scenario.log" 2>&1 &
  pid=$!
  sleep 2
  run_load ours-userspace $scenario $PR:9900 $pid
  kill $pid; wait $pid 2>/dev/null

  # The same with UDP segmentation offload on its sends (--udp-gso: safe here, since its only
  # peer is loadgen's userspace SCTP; the load is unchanged).
  say "start our registrar (userspace SCTP over UDP, segmentation offload)"
  "$BIN/registrar" --backend userspace --udp $PR:9902 --workers 1 --sctp-mtu $MTU --no-announce \
    --udp-gso --run-seconds 100 --log warn >"$OUT/ours-userspace-gso-$scenario.log" 2>&1 &
  pid=$!
  sleep 2
  run_load ours-userspace-gso $scenario $PR:9902 $pid
  kill $pid; wait $pid 2>/dev/null
done
# The floor under any UDP server in this VM: a plain echo server (recvmmsg/sendmmsg, batched,
# no protocol work at all) in its own process, driven by the same loadgen with one datagram per
# request. Its CPU per round trip is what the guest kernel alone charges a server for one
# datagram in and one out; a registrar that answers one message per datagram cannot cost less
# per message. BENCH_FLOOR lists FLOWSxWINDOW shapes (e.g. "64x1 4x8"); empty skips it.
for shape in ${BENCH_FLOOR:-}; do
  flows=${shape%x*}; window=${shape#*x}
  ip=$((ip + 1)); PR=192.0.2.$ip
  ip addr add $PR/32 dev lo 2>/dev/null
  say "start udp echo server (floor $shape)"
  "$BIN/loadgen" udp-echo --serve $PR:7777 --seconds 60 >"$OUT/echo-$shape.log" 2>&1 &
  pid=$!
  sleep 1
  before=$(cpu_ticks $pid); sys_before=$(sys_ticks $pid)
  (cd "$OUT" && timeout 60 "$BIN/loadgen" udp-echo --address $PR:7777 --flows "$flows" \
      --window "$window" --seconds 10 --no-report >"$OUT/floor-$shape.txt" 2>&1)
  echo "registrar_cpu_ticks=$(( $(cpu_ticks $pid) - before )) ticks_per_s=$(getconf CLK_TCK)" \
    "registrar_sys_ticks=$(( $(sys_ticks $pid) - sys_before ))" >>"$OUT/floor-$shape.txt"
  say "floor $shape: $(grep -E '^resolve ' "$OUT/floor-$shape.txt" | tr -s ' ')"
  kill $pid; wait $pid 2>/dev/null
done
ls "$OUT"/loadgen-report/*.json
