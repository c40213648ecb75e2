# guest-lib.sh - helpers the lab's guest scripts source (INSIDE the VM). Before sourcing, set
# TAG (the log prefix) and OUT (the output folder). Keeps PASS/FAIL counts and the PIDs of
# what `start` launched; the EXIT trap stops whatever is still running.
PASS=0 FAIL=0
declare -A PID
say()   { printf '[%s %6.2fs] %s\n' "$TAG" "$(awk '{print $1}' /proc/uptime)" "$*"; }
check() { local d=$1; shift; if "$@"; then PASS=$((PASS+1)); say "PASS: $d"; else FAIL=$((FAIL+1)); say "FAIL: $d"; fi; }
start() { local name=$1; shift; say "start $name: $*"; stdbuf -oL -eL "$@" >"$OUT/$name.log" 2>&1 & PID[$name]=$!; }
stop()  { local name=$1; [[ -n ${PID[$name]:-} ]] || return 0; kill "${PID[$name]}" 2>/dev/null; wait "${PID[$name]}" 2>/dev/null; unset "PID[$name]"; }
wait_for() { local end=$(( $(date +%s) + $1 )); shift; until "$@"; do (( $(date +%s) >= end )) && return 1; sleep 0.5; done; }
log_has()  { grep -q "$2" "$OUT/$1.log"; }
cleanup() { for n in "${!PID[@]}"; do kill "${PID[$n]}" 2>/dev/null; done; wait 2>/dev/null; }
trap cleanup EXIT
# Ends the script: the summary line, and status 0 only if every check passed.
finish() { echo "$PASS passed, $FAIL failed"; [ "$FAIL" = 0 ]; }
