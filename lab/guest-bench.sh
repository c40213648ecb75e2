#!/bin/bash
# guest-bench.sh BIN_DIR OUTDIR - runs INSIDE the lab VM. The same loadgen, with the same
# scenarios and settings, drives RSPLIB 3.4.4's rspregistrar, then our registrar with the
# kernel SCTP backend, then ours with its own userspace SCTP in UDP, then that again with UDP
# segmentation offload on its sends (1 worker each; the kernel backend also with 2 workers,
# "ours-2w"), at every load point of BENCH_POINTS, with
# each client kind of BENCH_CLIENTS:
#  - userspace: loadgen's own SCTP in UDP. Kernel SCTP accepts SCTP in UDP (RFC 6951) on port
#    9899, so it reaches RSPLIB and our kernel backend through the kernel's encapsulation;
#  - kernel: loadgen's one-to-one kernel SCTP sockets, one per association, as RSPLIB's library
#    opens them: plain SCTP to RSPLIB and our kernel backend (encapsulation off), and through
#    the guest kernel's encapsulation (encap_port = our UDP port) to our userspace backend.
#    Segmentation offload is left out here: Debian's 6.1 kernel SCTP crashed on segmented
#    datagrams in an earlier run.
# Writes one result per (registrar, point, client) into OUTDIR as WHO-POINT@CLIENT.txt, plus
# the loadgen JSON reports; lab/bench-summary.sh computes the ratios against RSPLIB.
#
# BENCH_POINTS: NAME=SCENARIO[,FLAG=VALUE...] entries; SCENARIO is a file of lab/scenarios/,
# FLAG a loadgen override without its dashes (e.g. resolve-4x4=resolve,associations=4,window=4).
# A bare SCENARIO is NAME=SCENARIO. BENCH_SCENARIOS (the older knob) adds bare scenarios; given
# alone, it replaces the default points.
# BENCH_FLOOR: FLOWSxWINDOW shapes of the plain UDP echo floor (e.g. "1x1 16x8"); empty skips.
# BENCH_BASE_BIN: a directory with a baseline build of our registrar (e.g. the previous
# commit's), run at every point too as "base" and "base-userspace": a same-boot A/B.
# BENCH_WHO: the registrars to run, of rsplib ours ours-2w ours-userspace ours-userspace-gso
# base base-userspace (default: all that apply); points may repeat under other names (r1-...,
# r2-...) for an alternating A/B.
# BENCH_SYSCALLS=1: then also count the system calls per operation of each registrar at the
# 1 x 1 points (strace -c -f; the counts are exact, the run's speed under strace is not).
set -u
BIN=$1
OUT=${2:-bench-out}
BASE_BIN=${BENCH_BASE_BIN:-}
mkdir -p "$OUT" && OUT=$(cd "$OUT" && pwd)
HERE=$(cd "$(dirname "$0")" && pwd)
say() { printf '[bench %6.2fs] %s\n' "$(awk '{print $1}' /proc/uptime)" "$*"; }
# Every kernel-client association is one socket per PE or PU.
ulimit -n 65536
# The load generator runs on the last vCPU and a one-worker registrar on the first (ours pins
# its worker there itself; RSPLIB and the echo server are put there). Left to the scheduler,
# the load generator's thread was sometimes woken onto the registrar's vCPU and stayed: whole
# runs at half the speed (churn 1 x 1: median latency 1.5 ms against 0.75 in the next run of
# the same build, 2026-12-07). Two-worker registrars use both vCPUs. BENCH_PIN=0: no pinning.
NCPU=$(nproc)
if [[ ${BENCH_PIN:-1} == 1 && $NCPU -ge 2 ]]; then
  LOADGEN_PIN=(taskset -c $((NCPU - 1)))
  SERVER_PIN=(taskset -c 0)
else
  LOADGEN_PIN=()
  SERVER_PIN=()
fi

# The load points of issue 14's table: C associations x W requests in flight. A PE has one
# operation in flight at a time on its own association, so C x W registrations in flight are
# C x W PEs.
DEFAULT_POINTS="resolve-1x1=resolve,associations=1,window=1
resolve-4x4=resolve,associations=4,window=4
resolve-16x8=resolve,associations=16,window=8
churn-1x1=churn-tight,pe-count=1
churn-8x4=churn-tight,pe-count=32"
# BENCH_SCENARIOS alone (the older knob) runs just those scenarios.
POINTS=${BENCH_POINTS:-}
SCENARIOS=${BENCH_SCENARIOS:-}
[[ -z ${POINTS// /} && -z ${SCENARIOS// /} ]] && POINTS=$DEFAULT_POINTS
for s in ${BENCH_SCENARIOS:-}; do POINTS="$POINTS $s"; done
CLIENTS=${BENCH_CLIENTS:-userspace kernel}
# Every point measures 8 s after 1 s of warm-up, whatever its scenario file says.
TIMING=(--duration-ms 9000 --warmup-ms 1000)

# CPU time (user + system, clock ticks) of a process so far.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
# System time alone (the kernel's share: syscalls, UDP or SCTP, wake-ups).
sys_ticks() { awk '{print $15}' "/proc/$1/stat"; }

# Encapsulation for the next run: UDP PORT the kernel listens on (0: off) and ENCAP the UDP
# port it sends to. Read by kernel sockets when they are created.
encap() { sysctl -qw net.sctp.udp_port="$1" net.sctp.encap_port="$2"; }

# The point's scenario file and its flags.
# shellcheck source=bench-lib.sh
source "$(dirname "$0")/bench-lib.sh"

run_load() { # WHO POINT CLIENT ADDRESS PID SCENARIO FLAGS...
  local who=$1 point=$2 client=$3 address=$4 pid=$5 scenario=$6; shift 6
  local name="$who-$point@$client" before sys_before
  say "loadgen $point ($client clients) against $who at $address"
  before=$(cpu_ticks "$pid"); sys_before=$(sys_ticks "$pid")
  (cd "$OUT" && timeout 120 "${LOADGEN_PIN[@]}" "$BIN/loadgen" run --scenario "$HERE/scenarios/$scenario.toml" \
      --address "$address" --client "$client" "${TIMING[@]}" "$@" --name "$name" \
      >"$OUT/$name.txt" 2>&1)
  local rc=$?
  # The registrar's own CPU time over the run: with the load generator sharing the VM's
  # CPUs, CPU per operation is the fairer capacity signal than throughput alone.
  echo "registrar_cpu_ticks=$(( $(cpu_ticks "$pid") - before )) ticks_per_s=$(getconf CLK_TCK)" \
    "registrar_sys_ticks=$(( $(sys_ticks "$pid") - sys_before ))" \
    >>"$OUT/$name.txt"
  say "exit $rc ; $(grep -E '^(register|resolve|deregister) ' "$OUT/$name.txt" | tr -s ' ' | tr '\n' ';')"
}

# Each registrar start gets its own address (lab-init puts 192.0.2.1-4 on lo; we add more): a
# killed registrar's SCTP port stays busy while the kernel shuts its associations down, and
# RSPLIB cannot reuse it.
# Each registrar sends packets as large as its path allows: kernel SCTP uses lo's 64 KiB MTU
# by itself; ours is told (the scenarios set the same for loadgen's SCTP).
MTU=65507
ip=0
next_ip() { ip=$((ip + 1)); PR=192.0.2.$ip; ip addr add "$PR/32" dev lo 2>/dev/null; }

# start WHO: starts registrar WHO on a fresh address; sets PR, PID and, for ours on UDP, UDP.
start() {
  next_ip
  case $1 in
    rsplib)
      "${SERVER_PIN[@]}" rspregistrar -logcolor=off -loglevel=1 -asap="$PR:3863" -enrp="$PR:9901" \
        -asapannounce=off -enrpannounce=off >>"$OUT/rspregistrar.log" 2>&1 &
      PID=$!
      sleep 7 ;; # RSPLIB spends its first ~5 s in mentor discovery
    ours | ours-2w)
      workers=1; [[ $1 == ours-2w ]] && workers=2
      "$BIN/registrar" --backend kernel --kernel-address "$PR" --workers $workers \
        --no-announce --run-seconds 300 --log warn >>"$OUT/$1.log" 2>&1 &
      PID=$!; sleep 2 ;;
    base)
      "$BASE_BIN/registrar" --backend kernel --kernel-address "$PR" --workers 1 --no-announce \
        --run-seconds 300 --log warn >>"$OUT/base.log" 2>&1 &
      PID=$!; sleep 2 ;;
    ours-userspace | ours-userspace-gso | base-userspace)
      UDP=9900; gso=(); bin=$BIN
      [[ $1 == ours-userspace-gso ]] && { UDP=9902; gso=(--udp-gso); }
      [[ $1 == base-userspace ]] && bin=$BASE_BIN
      "$bin/registrar" --backend userspace --udp "$PR:$UDP" --workers 1 --sctp-mtu $MTU \
        --no-announce "${gso[@]}" --run-seconds 300 --log warn >>"$OUT/$1.log" 2>&1 &
      PID=$!; sleep 2 ;;
  esac
}
stop() { kill "$PID" 2>/dev/null; wait "$PID" 2>/dev/null; }

for spec in $POINTS; do
  point=${spec%%=*}
  read -r scenario flags <<<"$(point_args "$spec")"
  # shellcheck disable=SC2206
  flags=($flags)
  for client in $CLIENTS; do
    if [[ $client == userspace ]]; then
      registrars="rsplib ours ours-2w ours-userspace ours-userspace-gso"
    else
      registrars="rsplib ours ours-2w ours-userspace"
    fi
    # A baseline build of ours (BENCH_BASE_BIN): the same points, for a same-boot A/B.
    [[ -n $BASE_BIN ]] && registrars="$registrars base base-userspace"
    # BENCH_WHO: only these of them (e.g. "ours base" for an A/B of one backend).
    if [[ -n ${BENCH_WHO:-} ]]; then
      kept=""
      for who in $registrars; do [[ " $BENCH_WHO " == *" $who "* ]] && kept="$kept $who"; done
      registrars=$kept
    fi
    for who in $registrars; do
      # Userspace clients: the kernel decapsulates on 9899 and answers to the sender's port.
      # Kernel clients: plain SCTP to kernel registrars, encapsulated only toward ours on UDP.
      case $client/$who in
        userspace/*) encap 9899 9899 ;;
        kernel/ours-userspace* | kernel/base-userspace) encap 9899 9900 ;;
        kernel/*) encap 0 0 ;;
      esac
      start "$who"
      address=$PR:9899
      [[ $client == kernel ]] && address=$PR:3863
      [[ $client == userspace && $who == *-userspace* ]] && address=$PR:$UDP
      run_load "$who" "$point" "$client" "$address" "$PID" "$scenario" "${flags[@]}"
      stop
    done
  done
done

# System calls per operation at one request in flight (BENCH_SYSCALLS=1), kernel clients: the
# registrar runs under strace -c -f, which counts every call of every thread.
if [[ ${BENCH_SYSCALLS:-0} == 1 ]]; then
  for spec in $POINTS; do
    point=${spec%%=*}
    [[ $point == *-1x1 ]] || continue
    read -r scenario flags <<<"$(point_args "$spec")"
    # shellcheck disable=SC2206
    flags=($flags)
    for who in rsplib ours ours-userspace; do
      case $who in ours-userspace) encap 9899 9900 ;; *) encap 0 0 ;; esac
      next_ip
      case $who in
        rsplib) cmd=("${SERVER_PIN[@]}" rspregistrar -logcolor=off -loglevel=1 -asap="$PR:3863" -enrp="$PR:9901"
                     -asapannounce=off -enrpannounce=off); settle=9 ;;
        ours) cmd=("$BIN/registrar" --backend kernel --kernel-address "$PR" --workers 1
                   --no-announce --run-seconds 300 --log warn); settle=4 ;;
        # Under strace its io_uring set-up takes longer than the others' start.
        ours-userspace) cmd=("$BIN/registrar" --backend userspace --udp "$PR:9900" --workers 1
                             --sctp-mtu $MTU --no-announce --run-seconds 300 --log warn); settle=8 ;;
      esac
      strace -c -f -o "$OUT/strace-$who-$point.txt" "${cmd[@]}" >>"$OUT/strace-run.log" 2>&1 &
      PID=$!
      sleep $settle
      address=$PR:3863; [[ $who == ours-userspace ]] && address=$PR:9900
      # strace's own pid is $PID: CPU figures of this pass are not used, only the counts.
      run_load "strace-$who" "$point" kernel "$address" "$PID" "$scenario" "${flags[@]}"
      # Stop the traced registrar, not strace: strace writes its counts once its tracee exits.
      pkill -TERM -P "$PID"; wait "$PID" 2>/dev/null
    done
  done
fi
encap 9899 9899

# The floor under any UDP server in this VM: a plain echo server (recvmmsg/sendmmsg, batched,
# no protocol work at all) in its own process, driven by the same loadgen with one datagram per
# request. Its CPU per round trip is what the guest kernel alone charges a server for one
# datagram in and one out; a registrar that answers one message per datagram cannot cost less
# per message. BENCH_FLOOR lists FLOWSxWINDOW shapes (e.g. "64x1 4x8"); empty skips it.
for shape in ${BENCH_FLOOR:-}; do
  flows=${shape%x*}; window=${shape#*x}
  next_ip
  say "start udp echo server (floor $shape)"
  "${SERVER_PIN[@]}" "$BIN/loadgen" udp-echo --serve "$PR:7777" --seconds 60 >"$OUT/echo-$shape.log" 2>&1 &
  pid=$!
  sleep 1
  before=$(cpu_ticks $pid); sys_before=$(sys_ticks $pid)
  (cd "$OUT" && timeout 60 "${LOADGEN_PIN[@]}" "$BIN/loadgen" udp-echo --address "$PR:7777" --flows "$flows" \
      --window "$window" --seconds 10 --report-dir "$OUT/floor-$shape" >"$OUT/floor-$shape.txt" 2>&1)
  echo "registrar_cpu_ticks=$(( $(cpu_ticks $pid) - before )) ticks_per_s=$(getconf CLK_TCK)" \
    "registrar_sys_ticks=$(( $(sys_ticks $pid) - sys_before ))" >>"$OUT/floor-$shape.txt"
  say "floor $shape: $(grep -E '^resolve ' "$OUT/floor-$shape.txt" | tr -s ' ')"
  kill $pid; wait $pid 2>/dev/null
done
ls "$OUT"/loadgen-report/*.json
