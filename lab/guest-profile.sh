#!/bin/bash
# guest-profile.sh BIN_DIR OUTDIR - runs INSIDE the lab VM (see lab/run-profile.sh). For each
# PROFILE_POINTS point (guest-bench.sh's NAME=SCENARIO[,FLAG=VALUE...] syntax) it starts RSPLIB's
# rspregistrar, ours on the kernel backend and ours on SCTP in UDP, drives each with loadgen's
# kernel-SCTP clients, and samples the registrar with `perf record -e cpu-clock` (software
# clock: the emulator has no PMU) over the measured seconds. Writes, per (registrar, point):
# the loadgen result, `perf report` by shared object and by symbol (top 40), and the system
# calls per operation counted by perf's syscalls:sys_enter tracepoint total when the kernel has
# it (raw_syscalls), in OUTDIR/WHO-POINT.{txt,dso.txt,sym.txt}.
set -u
BIN=$1
OUT=${2:-profile-out}
mkdir -p "$OUT" && OUT=$(cd "$OUT" && pwd)
HERE=$(cd "$(dirname "$0")" && pwd)
PERF_DIR=${PERF:?PERF must name the directory holding perf and its libraries}
perf() { LD_LIBRARY_PATH=$PERF_DIR/lib "$PERF_DIR/perf" "$@"; }
say() { printf '[profile %6.2fs] %s\n' "$(awk '{print $1}' /proc/uptime)" "$*"; }
ulimit -n 65536
sysctl -qw kernel.perf_event_paranoid=-1 kernel.kptr_restrict=0

DEFAULT_POINTS="resolve-1x1=resolve,associations=1,window=1
resolve-16x8=resolve,associations=16,window=8
churn-1x1=churn-tight,pe-count=1"
POINTS=${PROFILE_POINTS:-}
[[ -z ${POINTS// /} ]] && POINTS=$DEFAULT_POINTS

# shellcheck source=bench-lib.sh
source "$(dirname "$0")/bench-lib.sh"

ip=100
for spec in $POINTS; do
  point=${spec%%=*}
  read -r scenario flags <<<"$(point_args "$spec")"
  # shellcheck disable=SC2206
  flags=($flags)
  for who in rsplib ours ours-userspace; do
    ip=$((ip + 1)); PR=192.0.2.$ip
    ip addr add "$PR/32" dev lo 2>/dev/null
    address=$PR:3863
    case $who in
      rsplib)
        sysctl -qw net.sctp.udp_port=0 net.sctp.encap_port=0
        rspregistrar -logcolor=off -loglevel=1 -asap="$PR:3863" -enrp="$PR:9901" \
          -asapannounce=off -enrpannounce=off >>"$OUT/rspregistrar.log" 2>&1 &
        pid=$!; sleep 7 ;;
      ours)
        sysctl -qw net.sctp.udp_port=0 net.sctp.encap_port=0
        "$BIN/registrar" --backend kernel --kernel-address "$PR" --workers 1 --no-announce \
          --run-seconds 300 --log warn >>"$OUT/ours.log" 2>&1 &
        pid=$!; sleep 2 ;;
      ours-userspace)
        sysctl -qw net.sctp.udp_port=9899 net.sctp.encap_port=9900
        "$BIN/registrar" --backend userspace --udp "$PR:9900" --workers 1 --sctp-mtu 65507 \
          --no-announce --run-seconds 300 --log warn >>"$OUT/ours-userspace.log" 2>&1 &
        pid=$!; sleep 2 ;;
    esac
    name=$who-$point
    say "profile $name"
    (cd "$OUT" && timeout 120 "$BIN/loadgen" run --scenario "$HERE/scenarios/$scenario.toml" \
        --address "$address" --client kernel --duration-ms 9000 --warmup-ms 1000 "${flags[@]}" \
        --name "$name" --no-report >"$OUT/$name.txt" 2>&1) &
    load=$!
    sleep 2
    perf record -q -e cpu-clock -F 2000 -g -p "$pid" -o "$OUT/$name.data" -- sleep 6 \
      >/dev/null 2>&1
    perf stat -e 'raw_syscalls:sys_enter' -p "$pid" -o "$OUT/$name.syscalls" -- sleep 1 \
      >/dev/null 2>&1
    wait $load
    perf report -q -i "$OUT/$name.data" --no-children --sort dso --stdio 2>/dev/null |
      grep -v '^$' | head -20 >"$OUT/$name.dso.txt"
    perf report -q -i "$OUT/$name.data" --no-children --sort dso,symbol --stdio -g none \
      2>/dev/null | grep -v '^$' | head -40 >"$OUT/$name.sym.txt"
    say "$name: $(grep -E '^(resolve|deregister) ' "$OUT/$name.txt" | tr -s ' ' | cut -d' ' -f1-4 | tr '\n' ';')"
    say "$name: $(head -3 "$OUT/$name.dso.txt" | tr -s ' ' | tr '\n' ';')"
    kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null
  done
done
sysctl -qw net.sctp.udp_port=9899 net.sctp.encap_port=9899
