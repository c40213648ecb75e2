#!/bin/bash
# guest-memory.sh BIN_DIR OUTDIR - runs INSIDE the lab VM. Resident memory per PE the way an
# operator measures it (issue 14): the registrar process's VmRSS before and after N PEs that
# register and stay, on associations of their own (MEM_PER_ASSOC to each), for RSPLIB 3.4.4's rspregistrar and for
# ours (kernel SCTP backend with 1 and 2 workers, userspace SCTP in UDP with 1), in one boot.
#   - one association per PE: loadgen's one-to-one kernel SCTP sockets to the kernel-SCTP
#     registrars (as RSPLIB's PEs open them), loadgen's own SCTP in UDP to our userspace
#     backend; the registrar's side of each association is in the guest kernel for RSPLIB and
#     our kernel backend, and in our process for the userspace backend (counted: it is ours).
#     (loadgen's own SCTP through the guest kernel's encapsulation lost most answers at this
#     scale: 20 000 associations, 33 715 registration timeouts against 3 656 answers at 667/s);
#   - keep-alives every MEM_KEEPALIVE_MS (300 000) ms, re-registration every 30 min (the life
#     loadgen asks, 3 x that, is cut to the registrars' 1 h maximum: renewals come at half of
#     it): the PEs stay and the registrar is quiet while it is measured. At 1 000 000 PEs a
#     fill outlasts 300 s, and every PE's keep-alive would then add one more message to each
#     registration: MEM_KEEPALIVE_MS=3600000 keeps both registrars to the fill alone;
#   - VmRSS idle (the registrar up, nothing registered, 5 s after start), then the largest
#     reading (every 2 s) while loadgen holds the PEs: registrations spread over MEM_RAMP_US
#     (4 000) µs each, held MEM_HOLD_S (20) s after the last was due; the count stored is
#     loadgen's successful registrations (lifetime forever: none leaves), checked against the
#     registrar's own count at that reading where it has one (our metrics).
# MEM_PES: the sizes (default "20000"); MEM_WHO: which registrars (default all four; also
# ours-2w-norep: 2 workers without read replicas, `--no-replicas`);
# MEM_PER_ASSOC: PEs sharing each association (default 1, at most the asap endpoint's 64; RFC
# 5352 lets a PE's registrations share its association with others'): what makes 200 000 and
# 1 000 000 PEs possible under emulation, where 20 000 associations already overwhelm the guest.
# Writes OUTDIR/memory.txt, one line per (registrar, N):
#   who=W pes=N stored=S failed=E registrar_count=C idle_kb=I filled_kb=F bytes_per_pe=B
# Ends with 'N passed, M failed' (a pass: every PE of the fill stored and measured).
set -u
BIN=$1
OUT=${2:-memory-out}
mkdir -p "$OUT" && OUT=$(cd "$OUT" && pwd)
HERE=$(cd "$(dirname "$0")" && pwd)
cd "$OUT" || exit 1   # loadgen writes its reports under the working directory
TAG=memory
# shellcheck source=guest-lib.sh
source "$(dirname "$0")/guest-lib.sh"
PES_LIST=${MEM_PES:-20000}
WHO_LIST=${MEM_WHO:-rsplib ours ours-2w ours-userspace}
HOLD_S=${MEM_HOLD_S:-20}
RAMP_US=${MEM_RAMP_US:-4000}
PER_ASSOC=${MEM_PER_ASSOC:-1}
KEEPALIVE_MS=${MEM_KEEPALIVE_MS:-300000}
MTU=65507
ulimit -n 1048576 2>/dev/null || ulimit -n 65536
# Socket buffers of 4 MiB by default: what ours asks for on its one-to-many socket, and RSPLIB's
# (which sets none) gets the same. At the kernel's 208 KiB, shared by every association of the
# socket, both refused sends (EAGAIN) and dropped received chunks at 20 000 associations.
sysctl -qw net.core.rmem_default=4194304 net.core.wmem_default=4194304 \
  net.core.rmem_max=4194304 net.core.wmem_max=4194304
: >"$OUT/memory.txt"

rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }
# Our registrar's PEs (every core's shard) from its metrics.
our_pes() {
  python3 - "$1" <<'EOF'
import sys, urllib.request
text = urllib.request.urlopen(f"http://{sys.argv[1]}/metrics", timeout=10).read().decode()
print(int(sum(float(l.split()[-1]) for l in text.splitlines()
              if l.startswith("rserpool_registrar_pool_elements{"))))
EOF
}

# loadgen's workers, each on a local address of its own: one address carries at most the
# 16 384 ephemeral SCTP ports' worth of associations to one registrar.
PER_WORKER=15000
for k in $(seq 0 99); do ip addr add "192.0.2.$((100 + k))/32" dev lo 2>/dev/null; done
ip addr add 192.0.2.20/32 dev lo 2>/dev/null

# Idle: the registrar up, nothing registered; the userspace backend also with the 64 KiB
# packets of loopback (its datagram buffers are sized by the MTU and touched at start).
idle_only() { # NAME COMMAND...
  start "$1" "${@:2}"; sleep 5
  local kb; kb=$(rss_kb "${PID[$1]}")
  echo "who=$1 idle_kb=$kb" | tee -a "$OUT/memory.txt"
  check "$1 idle: VmRSS $kb kB" test -n "$kb"
  stop "$1"
}
idle_only idle-ours-userspace-64k "$BIN/registrar" --backend userspace --udp 192.0.2.20:9900 \
  --workers 1 --sctp-mtu $MTU --no-announce --no-enrp --run-seconds 60 --log warn

# The registrar's VmRSS every 2 s while loadgen runs, the largest kept (the PEs never leave,
# so it is the reading with all of them stored): prints "MAX_KB COUNT_AT_MAX".
watch_rss() { # PID LOADGEN_PID METRICS_OR_- N
  # The largest reading while the registrar holds all N PEs (where it can say so): once
  # loadgen ends, its associations close and the PEs go, and that work must not count. With
  # no reading at N (or no metrics), the largest reading at all.
  local max=0 count=- full=0 fullcount=- kb c
  while running "$2"; do
    kb=$(rss_kb "$1") || break
    c=-; [[ $3 != - ]] && c=$(our_pes "$3" 2>/dev/null || echo "?")
    (( kb > max )) && { max=$kb; count=$c; }
    [[ $c == "$4" ]] && (( kb > full )) && { full=$kb; fullcount=$c; }
    sleep 2
  done
  if (( full > 0 )); then echo "$full $fullcount"; else echo "$max $count"; fi
}

ip=20
for n in $PES_LIST; do
  # Registrations spread over RAMP_US µs each: RSPLIB's registrar under emulation drops
  # answers it cannot send at once when pressed (its socket's EAGAIN), and every timeout
  # makes a PE hunt again, so the fill is paced below what it answers.
  ramp_ms=$(( n * RAMP_US / 1000 ))
  associations=$(( (n + PER_ASSOC - 1) / PER_ASSOC ))
  workers=$(( (associations + PER_WORKER - 1) / PER_WORKER ))
  # The fill scenario with the PEs grouped PER_ASSOC to an association.
  scenario=$OUT/fill-$n.toml
  sed "/^\[pe\]/a per_association = $PER_ASSOC" "$HERE/scenarios/fill.toml" >"$scenario"
  clients=$(for k in $(seq 0 $((workers - 1))); do printf '192.0.2.%s,' $((100 + k)); done)
  clients=${clients%,}
  # Our userspace backend holds the SCTP associations: its table must fit them.
  printf '[limits]\nsessions_per_core_max = %s\n' $(( associations + 1024 > 65536 ? associations + 1024 : 65536 )) \
    >"$OUT/limits-$n.toml"
  duration_ms=$(( ramp_ms + HOLD_S * 1000 ))
  for who in $WHO_LIST; do
    ip=$((ip + 1)); addr=192.0.2.$ip
    ip addr add "$addr/32" dev lo 2>/dev/null
    metrics=127.0.0.1:$((9400 + ip))
    case $who in
      rsplib)
        start "$who-$n" rspregistrar -logcolor=off -loglevel=1 -asap="$addr:3863" -enrp="$addr:9901" \
          -asapannounce=off -enrpannounce=off -endpointkeepalivetransmissioninterval=$KEEPALIVE_MS \
          -endpointkeepalivetimeoutinterval=60000
        settle=7; metrics=- ;; # RSPLIB spends its first ~5 s in mentor discovery
      ours | ours-2w | ours-2w-norep)
        cores=1; extra=()
        [[ $who == ours-2w* ]] && cores=2
        [[ $who == ours-2w-norep ]] && extra=(--no-replicas)
        start "$who-$n" "$BIN/registrar" --backend kernel --kernel-address "$addr" --workers $cores \
          "${extra[@]}" \
          --no-announce --no-enrp --keep-alive-interval-ms "$KEEPALIVE_MS" --keep-alive-timeout-ms 60000 \
          --metrics "$metrics" --run-seconds 3600 --log warn
        settle=5 ;;
      ours-userspace)
        # The default packet size (1 200), as an operator runs it off loopback.
        start "$who-$n" "$BIN/registrar" --config "$OUT/limits-$n.toml" --backend userspace \
          --udp "$addr:9900" --workers 1 --no-announce --no-enrp --keep-alive-interval-ms "$KEEPALIVE_MS" \
          --keep-alive-timeout-ms 60000 --metrics "$metrics" --run-seconds 3600 --log warn
        settle=5 ;;
    esac
    # Kernel registrars meet one-to-one kernel SCTP sockets, as RSPLIB's PEs open them (plain
    # SCTP); ours on SCTP in UDP meets loadgen's own SCTP, straight to its UDP port.
    mtu=$MTU; client=kernel; port=3863; encap=0
    [[ $who == ours-userspace ]] && { mtu=1200; client=userspace; port=9900; encap=9899; }
    sysctl -qw net.sctp.udp_port=$encap net.sctp.encap_port=$encap
    pid=${PID[$who-$n]}
    sleep $settle
    idle=$(rss_kb "$pid")
    say "$who idle: VmRSS $idle kB; filling $n PEs over $ramp_ms ms, $PER_ASSOC to an association"
    start "fill-$who-$n" "$BIN/loadgen" run --scenario "$scenario" \
      --address "$addr:$port" --client $client --sctp-mtu "$mtu" --workers $workers \
      --client-addresses "$clients" \
      --pe-count "$n" --pools 100 --ramp-ms $ramp_ms \
      --reregister-ms 1800000 --op-timeout-ms 60000 --in-flight-max $(( n + 64 )) \
      --duration-ms $duration_ms --drain-ms 0 --name "mem-$who-$n"
    read -r filled count <<<"$(watch_rss "$pid" "${PID[fill-$who-$n]}" "$metrics" "$n")"
    wait "${PID[fill-$who-$n]}" 2>/dev/null; unset "PID[fill-$who-$n]"
    stored=$(awk '$1 == "register" { print $2 }' "$OUT/fill-$who-$n.log" | head -1)
    failed=$(awk '$1 == "register" { print $3 }' "$OUT/fill-$who-$n.log" | head -1)
    stored=${stored:-0}; failed=${failed:-?}
    per=$(python3 -c "print(round(($filled - $idle) * 1024 / $n))")
    say "$who with the fill: VmRSS at most $filled kB (registrar's own count then: $count)"
    echo "who=$who pes=$n per_association=$PER_ASSOC stored=$stored failed=$failed registrar_count=$count idle_kb=$idle filled_kb=$filled bytes_per_pe=$per" \
      | tee -a "$OUT/memory.txt"
    check "$who: all $n PEs stored (loadgen: $stored, $failed failed; registrar: $count), $per B per PE" \
      test "$stored" = "$n" -a "$failed" = 0 -a \( "$count" = - -o "$count" = "$n" \)
    stop "$who-$n"
  done
done
finish
