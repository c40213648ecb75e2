# guest-lib.sh - helpers the lab's guest scripts source (INSIDE the VM). Before sourcing, set
# TAG (the log prefix) and OUT (the output folder). Keeps PASS/FAIL counts and the PIDs of
# what `start` launched; the EXIT trap stops whatever is still running.
PASS=0 FAIL=0
declare -A PID
say()   { printf '[%s %6.2fs] %s\n' "$TAG" "$(awk '{print $1}' /proc/uptime)" "$*"; }
check() { local d=$1; shift; if "$@"; then PASS=$((PASS+1)); say "PASS: $d"; else FAIL=$((FAIL+1)); say "FAIL: $d"; fi; }
start() { local name=$1; shift; say "start $name: $*"; stdbuf -oL -eL "$@" >"$OUT/$name.log" 2>&1 & PID[$name]=$!; }
# Alive and not a zombie (an exited child not yet waited for still answers kill -0).
running() { local state; state=$(awk '{ print $3 }' "/proc/$1/stat" 2>/dev/null) || return 1; [[ -n $state && $state != Z ]]; }
# SIGTERM, then SIGKILL after 10 s: a process that ignores SIGTERM must not hang the run.
stop()  { local name=$1 pid; [[ -n ${PID[$name]:-} ]] || return 0; pid=${PID[$name]}; kill "$pid" 2>/dev/null
          for _ in $(seq 20); do running "$pid" || break; sleep 0.5; done
          kill -9 "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; unset "PID[$name]"; }
wait_for() { local end=$(( $(date +%s) + $1 )); shift; until "$@"; do (( $(date +%s) >= end )) && return 1; sleep 0.5; done; }
log_has()  { grep -q "$2" "$OUT/$1.log"; }
cleanup() { for n in "${!PID[@]}"; do kill "${PID[$n]}" 2>/dev/null; done; wait 2>/dev/null; }
trap cleanup EXIT
# Ends the script: the summary line, and status 0 only if every check passed.
finish() { echo "$PASS passed, $FAIL failed"; [ "$FAIL" = 0 ]; }
