#!/usr/bin/env bash
# faults/lab.sh SCENARIO.scn - one fault-lab run (issue #16): three registrars, four PEs, one
# PU and one probe, each a real process in its own network namespace, joined by veth pairs to
# a bridge in a hub namespace (10.77.0.0/24, nothing else). The scenario's timeline injects
# faults with real kernel mechanisms (nftables in the node's namespace; kill -9, SIGSTOP,
# SIGCONT, SIGTERM, restarts). Every client and every fault appends JSON lines to a history
# under $OUT; registrar takeovers are read from the registrars' logs. At the end `faultcheck`
# judges the history against the scenario's bounds. Exit 0 iff the verdict is the scenario's
# `expect` (pass unless it says `expect fail`). Needs root (namespaces, nftables).
#
# Scenario file: one directive a line, '#' comments.
#   bounds converge=MS,depart=MS,failover=MS
#   duration SECONDS                the timeline's length (the run adds setup and a tail)
#   expect pass|fail
#   expect-log NODE REGEX           the run also fails unless a log of NODE (any incarnation)
#                                   has a line matching REGEX (grep -E), e.g. that it happened
#   env NAME=VALUE                  sets a timer of the lab for this scenario: ENRP_NO_RESPONSE_MS
#                                   (600), KA_TIMEOUT_MS (2000), PE_TIMEOUT_MS (1000),
#                                   PE_HOME_SILENCE_MS (3000), REG_RTO_MAX_MS (1000),
#                                   PE_RTO_MAX_MS (the PEs' SCTP RTO.Max; unset: the stack's 60 s)
#   at SECONDS ACTION NODE [ARG]    ACTION: kill stop cont term restart partition heal loss
#                                   loss-end; NODE: r1..r3, pe1..pe4, or `pes`/`registrars`;
#                                   partition ARG: `oneway` drops only what the peers send,
#                                   `from=rN` cuts the node from that registrar only (the
#                                   others still reach both: a non-transitive partition);
#                                   both as `oneway,from=r2`;
#                                   loss ARG: percent dropped (numgen random), both ways, or
#                                   one way as PERCENT/in or PERCENT/out;
#                                   delay ARG: what the NFQUEUE shim (faultq) does to the node's
#                                   outgoing packets, e.g. delay=40,jitter=30,reorder=10,duplicate=5
#                                   (ms, ms, %, %; any subset); delay-end removes it.
set -u
# Read whole before it runs (a brace group): editing the script during a run cannot change it.
{
cd "$(dirname "$0")/.."
SCEN=${1:?usage: faults/lab.sh SCENARIO.scn}
NAME=$(basename "$SCEN" .scn)
BIN=${BIN_DIR:-target/release}
OUT=${OUT:-target/faults/$NAME}
TAG=fl$$
HUB=$TAG-hub
mkdir -p "$OUT"; rm -f "$OUT"/*.log "$OUT"/*.jsonl "$OUT/pids"
for b in registrar faultlab faultcheck faultq; do
  [ -x "$BIN/$b" ] || { echo "missing $BIN/$b (cargo build --release -p registrar -p faults)"; exit 2; }
done
command -v nft >/dev/null || { echo "nft missing (apt-get install -y nftables)"; exit 2; }
# NFQUEUE is reached through the xtables target (this kernel has no nft `queue` expression).
IPT=$(command -v iptables-legacy || command -v iptables)
if grep -q '^at .* delay ' "$SCEN" && [ -z "$IPT" ]; then
  echo "iptables missing (apt-get install -y iptables)"; exit 2
fi

BOUNDS="" DURATION=30 EXPECT=pass TIMELINE=() SHIM_FAILED=() EXPECT_LOGS=()
while read -r word rest; do
  case "$word" in
    ''|'#'*) ;;
    bounds) BOUNDS=$rest ;;
    duration) DURATION=$rest ;;
    expect) EXPECT=$rest ;;
    expect-log) EXPECT_LOGS+=("$rest") ;;
    env) case ${rest%%=*} in
           ENRP_NO_RESPONSE_MS|KA_TIMEOUT_MS|PE_TIMEOUT_MS|PE_HOME_SILENCE_MS|REG_RTO_MAX_MS|PE_RTO_MAX_MS)
             export "${rest?}" ;;
           *) echo "$SCEN: env: unknown timer ${rest%%=*}"; exit 2 ;;
         esac ;;
    at) TIMELINE+=("$rest") ;;
    *) echo "$SCEN: unknown directive $word"; exit 2 ;;
  esac
done <"$SCEN"
[ -n "$BOUNDS" ] || { echo "$SCEN: no bounds"; exit 2; }

say() { printf '[lab %s %s] %s\n' "$NAME" "$(date +%T.%2N)" "$*"; }
declare -A PID IP ID INCARNATION SHIM
REGISTRARS=(r1 r2 r3) PES=(pe1 pe2 pe3 pe4)
IP=([r1]=10.77.0.11 [r2]=10.77.0.12 [r3]=10.77.0.13 [pe1]=10.77.0.21 [pe2]=10.77.0.22
    [pe3]=10.77.0.23 [pe4]=10.77.0.24 [probe]=10.77.0.31 [pu1]=10.77.0.41)
ID=([pe1]=0x101 [pe2]=0x102 [pe3]=0x103 [pe4]=0x104)
INCARNATION=([r1]=0 [r2]=0 [r3]=0)
NODES=("${REGISTRARS[@]}" "${PES[@]}" probe pu1)

cleanup() {
  exec 2>/dev/null   # no job-status noise for the processes killed here
  for n in "${!PID[@]}"; do kill -CONT "${PID[$n]}" 2>/dev/null; kill -9 "${PID[$n]}" 2>/dev/null; done
  for n in "${!SHIM[@]}"; do kill -9 "${SHIM[$n]}" 2>/dev/null; done
  # Anything still inside our namespaces (nothing, unless a start went wrong).
  for n in "${NODES[@]}"; do
    for p in $(ip netns pids "$TAG-$n" 2>/dev/null); do kill -9 "$p" 2>/dev/null; done
  done
  wait 2>/dev/null
  for n in "${NODES[@]}"; do ip netns del "$TAG-$n" 2>/dev/null; done
  ip netns del "$HUB" 2>/dev/null
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- the network: a bridge in the hub, one veth pair per node ---
ip netns add "$HUB" && ip -n "$HUB" link add br0 type bridge && ip -n "$HUB" link set br0 up &&
  ip -n "$HUB" link set lo up || { echo "cannot create namespaces"; exit 2; }
for n in "${NODES[@]}"; do
  ns=$TAG-$n
  ip netns add "$ns" &&
    ip -n "$HUB" link add "v$n" type veth peer name eth0 netns "$ns" &&
    ip -n "$HUB" link set "v$n" master br0 up &&
    ip -n "$ns" addr add "${IP[$n]}/24" dev eth0 && ip -n "$ns" link set eth0 up &&
    ip -n "$ns" link set lo up || { echo "cannot set up node $n"; exit 2; }
done

now_us() { date +%s%6N; }
fault() { # NODE FAULT [REGISTRAR_ID] [DETAIL]
  printf '{"t_us":%s,"process":"%s","kind":"fault","outcome":"ok","fault":"%s"%s%s}\n' \
    "$(now_us)" "$1" "$2" "${3:+,\"registrar\":\"$3\"}" "${4:+,\"detail\":\"$4\"}" >>"$OUT/faults.jsonl"
}
inside() { local n=$1; shift; ip netns exec "$TAG-$n" "$@"; }
# Background processes are started with `ip netns exec` itself, never through a function:
# `f &` forks a subshell, and $! would be the subshell, not the process we signal.
RUN_SECONDS=$((DURATION + 60))   # every process also stops by itself

registrar_id() { printf '0x%x' $((0x1001 + ${1#r} - 1 + 16 * INCARNATION[$1])); }
start_registrar() {
  local n=$1 peers=() id; id=$(registrar_id "$n")
  for p in "${REGISTRARS[@]}"; do [ "$p" = "$n" ] || peers+=(--peer "${IP[$p]}:9901"); done
  fault "$n" start "$id"
  ip netns exec "$TAG-$n" "$BIN/registrar" --udp "${IP[$n]}:9899" --workers 1 --mesh-spin-us 0 --no-announce \
    --registrar-id "$id" "${peers[@]}" --sctp-rto-max-ms "${REG_RTO_MAX_MS:-1000}" \
    --enrp-heartbeat-ms 500 --enrp-max-time-last-heard-ms 1200 --enrp-max-time-no-response-ms "${ENRP_NO_RESPONSE_MS:-600}" \
    --enrp-mentor-hunt-timeout-ms 1500 --keep-alive-interval-ms 1000 --keep-alive-timeout-ms "${KA_TIMEOUT_MS:-2000}" \
    --run-seconds "$RUN_SECONDS" --log registrar=debug,info >"$OUT/$n.$id.log" 2>&1 &
  PID[$n]=$!; echo "$n ${PID[$n]}" >>"$OUT/pids"
}
start_pe() {
  local n=$1 k=${1#pe} regs=()
  # SCTP in UDP on port 9899 at the PE's own address (RFC 6951's port at both ends): that is
  # where a registrar that took the PE over sends its keep-alives (KA2.4).
  # Each PE lists the registrars starting from its own: pe1 homes at r1, pe2 at r2, ...
  for j in 0 1 2; do regs+=(--registrar "${IP[r$(( (k - 1 + j) % 3 + 1 ))]}:3863"); done
  fault "$n" start
  ip netns exec "$TAG-$n" "$BIN/faultlab" pe --history "$OUT/$n.jsonl" --name "$n" --pool P \
    --udp "${IP[$n]}:9899" "${regs[@]}" --id "${ID[$n]}" --echo-port 7000 --lifetime-ms 6000 \
    --home-silence-ms "${PE_HOME_SILENCE_MS:-3000}" --timeout-ms "${PE_TIMEOUT_MS:-1000}" \
    ${PE_RTO_MAX_MS:+--rto-max-ms "$PE_RTO_MAX_MS"} --run-seconds "$RUN_SECONDS" >>"$OUT/$n.log" 2>&1 &
  PID[$n]=$!; echo "$n ${PID[$n]}" >>"$OUT/pids"
}
expand() { case $1 in pes) echo "${PES[@]}" ;; registrars) echo "${REGISTRARS[@]}" ;; *) echo "$1" ;; esac; }
is_registrar() { [[ $1 == r[0-9] ]]; }
act() { # ACTION NODE [ARG]
  local action=$1 node=$2 arg=${3:-} n
  for n in $(expand "$node"); do
    case $action in
      kill) fault "$n" kill "" "SIGKILL"; kill -9 "${PID[$n]}"; wait "${PID[$n]}" 2>/dev/null ;;
      term) # a registrar's orderly stop is a fault; a PE's deregistration logs itself
        is_registrar "$n" && fault "$n" kill "" "SIGTERM"
        kill -TERM "${PID[$n]}"; wait "${PID[$n]}" 2>/dev/null ;;
      stop) fault "$n" stop; kill -STOP "${PID[$n]}" ;;
      cont) fault "$n" cont; kill -CONT "${PID[$n]}" ;;
      restart)
        if is_registrar "$n"; then INCARNATION[$n]=$((INCARNATION[$n] + 1)); start_registrar "$n"
        else start_pe "$n"; fi ;;
      partition)
        local rules="add table inet flpart
add chain inet flpart in { type filter hook input priority 0; }
add chain inet flpart out { type filter hook output priority 0; }" p oneway="" peers=() word
        for word in ${arg//,/ }; do
          case $word in
            oneway) oneway=1 ;;
            from=r[0-9]) peers+=("${word#from=}") ;;
            *) say "partition: unknown setting $word"; exit 2 ;;
          esac
        done
        ((${#peers[@]})) || peers=("${REGISTRARS[@]}")
        for p in "${peers[@]}"; do
          [ "$p" = "$n" ] && continue
          rules+=$'\n'"add rule inet flpart in ip saddr ${IP[$p]} drop"
          [ -n "$oneway" ] || rules+=$'\n'"add rule inet flpart out ip daddr ${IP[$p]} drop"
        done
        local how="both ways"; [ -n "$oneway" ] && how="one way (what they send is dropped)"
        fault "$n" partition "" "$how from ${peers[*]/$n}"
        inside "$n" nft -f - <<<"$rules" || say "nft failed" ;;
      heal) fault "$n" heal; inside "$n" nft delete table inet flpart ;;
      loss)
        # ARG: PERCENT (both ways), PERCENT/in or PERCENT/out (one way: what the node
        # receives, or what it sends).
        local pct=${arg%%/*} way=both rules
        [[ $arg == */* ]] && way=${arg#*/}
        [[ $pct =~ ^[0-9]+$ && $way =~ ^(both|in|out)$ ]] || { say "loss: bad argument $arg"; exit 2; }
        rules="add table inet flloss
add chain inet flloss in { type filter hook input priority 0; }
add chain inet flloss out { type filter hook output priority 0; }"
        [ "$way" = out ] || rules+=$'\n'"add rule inet flloss in numgen random mod 100 < $pct drop"
        [ "$way" = in ] || rules+=$'\n'"add rule inet flloss out numgen random mod 100 < $pct drop"
        fault "$n" loss "" "$pct% $( [ "$way" = both ] && echo "both ways" || echo "$way only")"
        inside "$n" nft -f - <<<"$rules" || say "nft failed" ;;
      loss-end) fault "$n" loss_end; inside "$n" nft delete table inet flloss ;;
      delay)
        [ -z "${SHIM[$n]:-}" ] || { say "$n already has a delay"; exit 2; }
        local shim_args=() kv
        for kv in ${arg//,/ }; do
          case ${kv%%=*} in
            delay|jitter) shim_args+=("--${kv%%=*}-ms" "${kv#*=}") ;;
            reorder|duplicate) shim_args+=("--${kv%%=*}-pct" "${kv#*=}") ;;
            *) say "delay: unknown setting $kv"; exit 2 ;;
          esac
        done
        fault "$n" delay "" "$arg"
        # The shim first, so that no packet waits on an unbound queue (--queue-bypass lets
        # them through meanwhile anyway); duplicates carry mark 7 and are not queued again.
        ip netns exec "$TAG-$n" "$BIN/faultq" --queue 0 --mark 7 "${shim_args[@]}" \
          --run-seconds "$RUN_SECONDS" >>"$OUT/$n.faultq.log" 2>&1 &
        SHIM[$n]=$!
        sleep 0.2
        inside "$n" "$IPT" -t mangle -A OUTPUT -o eth0 -m mark ! --mark 7 \
          -j NFQUEUE --queue-num 0 --queue-bypass || say "iptables failed" ;;
      delay-end)
        fault "$n" delay_end
        inside "$n" "$IPT" -t mangle -F OUTPUT
        kill -TERM "${SHIM[$n]}" 2>/dev/null; wait "${SHIM[$n]}" 2>/dev/null; unset "SHIM[$n]"
        local counts; counts=$(grep 'packets=' "$OUT/$n.faultq.log" | tail -1)
        say "$n shim: ${counts:-no counts}"
        # A shim that saw nothing injected nothing: the run proves nothing about delay.
        [[ $counts == *"packets="[1-9]* ]] || SHIM_FAILED+=("$n") ;;
      *) say "unknown action $action"; exit 2 ;;
    esac
  done
}

say "bounds $BOUNDS, timeline ${DURATION}s, expect $EXPECT"
for r in "${REGISTRARS[@]}"; do start_registrar "$r"; done
sleep 2
for p in "${PES[@]}"; do start_pe "$p"; done
targets=(); for r in "${REGISTRARS[@]}"; do targets+=(--target "$r=${IP[$r]}:3863"); done
ip netns exec "$TAG-probe" "$BIN/faultlab" probe --history "$OUT/probe.jsonl" --name probe --pool P \
  --udp "${IP[probe]}:0" "${targets[@]}" --interval-ms 250 --timeout-ms 500 \
  --run-seconds "$RUN_SECONDS" >"$OUT/probe.log" 2>&1 &
PID[probe]=$!
ip netns exec "$TAG-pu1" "$BIN/faultlab" pu --history "$OUT/pu1.jsonl" --name pu1 --pool P \
  --udp "${IP[pu1]}:0" --registrar "${IP[r1]}:3863" --registrar "${IP[r2]}:3863" \
  --registrar "${IP[r3]}:3863" --interval-ms 200 --timeout-ms 1000 \
  --run-seconds "$RUN_SECONDS" >"$OUT/pu1.log" 2>&1 &
PID[pu1]=$!
sleep 3
say "setup done; timeline starts"
t0=$(date +%s%N)
for line in "${TIMELINE[@]}"; do
  read -r at action node arg <<<"$line"
  wait_ns=$(( t0 + ${at%.*} * 1000000000 - $(date +%s%N) ))
  (( wait_ns > 0 )) && sleep "$(printf '%d.%09d' $((wait_ns / 1000000000)) $((wait_ns % 1000000000)))"
  say "t+${at}s $action $node ${arg:-}"
  act "$action" "$node" "$arg"
done
rest_ns=$(( t0 + DURATION * 1000000000 - $(date +%s%N) ))
(( rest_ns > 0 )) && sleep $((rest_ns / 1000000000))
say "timeline done; stopping the probe and the PU"
for n in probe pu1; do kill -TERM "${PID[$n]}" 2>/dev/null; wait "${PID[$n]}" 2>/dev/null; unset "PID[$n]"; done

# Takeovers and peers heard (again), from the registrars' logs (the line names the target or
# the peer; the file names the registrar).
python3 - "$OUT" <<'EOF_PY' >"$OUT/takeovers.jsonl"
import datetime, glob, json, os, re, sys
for path in sorted(glob.glob(os.path.join(sys.argv[1], "r*.0x*.log"))):
    node, winner = os.path.basename(path).split(".")[:2]
    for line in open(path, errors="replace"):
        line = re.sub(r"\x1b\[[0-9;]*m", "", line)
        if "takeover won" in line:
            kind, m = "takeover", re.search(r"target=(\d+)", line)
        elif "new peer" in line:
            kind, m = "peer_up", re.search(r"peer=(\d+)", line)
        else:
            continue
        t = datetime.datetime.fromisoformat(line.split()[0].replace("Z", "+00:00"))
        print(json.dumps({"t_us": int(t.timestamp() * 1e6), "process": node, "kind": kind,
                          "outcome": "ok", "registrar": winner, "target": hex(int(m.group(1)))}))
EOF_PY
say "history: $(cat "$OUT"/*.jsonl | wc -l) entries ($(grep -c '"kind":"fault"' "$OUT/faults.jsonl") faults, $(grep -c '"takeover"' "$OUT/takeovers.jsonl") takeovers)"
"$BIN/faultcheck" "$OUT"/*.jsonl --bounds "$BOUNDS" | tee "$OUT/verdict.txt"
verdict=${PIPESTATUS[0]}
for want in "${EXPECT_LOGS[@]}"; do
  read -r node regex <<<"$want"
  if sed 's/\x1b\[[0-9;]*m//g' "$OUT/$node".*log 2>/dev/null | grep -qE "$regex"; then
    say "expect-log $node: found /$regex/"
  else
    say "RESULT unexpected: no log line of $node matches /$regex/"; exit 1
  fi
done
if ((${#SHIM_FAILED[@]})); then
  say "RESULT unexpected: the delay shim on ${SHIM_FAILED[*]} saw no packet"; exit 1
fi
case "$EXPECT:$verdict" in
  pass:0|fail:1) say "RESULT ok (expected $EXPECT)"; exit 0 ;;
  *) say "RESULT unexpected (expected $EXPECT, faultcheck exit $verdict)"; exit 1 ;;
esac
exit
}
