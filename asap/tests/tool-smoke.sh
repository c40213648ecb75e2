#!/usr/bin/env bash
# Smoke test of the `rserpool` tool against the real registrar over loopback.
#
# Goal: every subcommand works end to end, and fails with its one-line error where it should:
# no registrar, unknown pool, PE registration and deregistration (SIGINT, --run-seconds),
# resolution as a table and as JSON, the terminal's echo and its failover to another PE when
# one is killed, watch (live pool updates: each registration and removal, and the pool's end),
# dump (the handlespace over ENRP, and through the admin API), status, connect and the
# tcp_pool example (TCP PEs, failover on a refused connect), a PE's move to another
# registrar when its home is killed, and two peered registrars where the home of a PE and a
# terminal is killed -9; SCTP PEs with the control channel, whose terminal fails over with
# the cookie echoed when its PE is killed -9.
# Method: registrars in userspace SCTP in UDP on $NET.1:9899 and $NET.2:9899 (no ENRP between
# them), then $NET.3 and $NET.4 peered over ENRP; PEs, watchers and terminals as separate
# processes, every wait bounded. Prints one line per check and ends with "N passed, M failed";
# exits non-zero when anything failed.
#
# Usage: asap/tests/tool-smoke.sh   (from anywhere; builds nothing when SMOKE_NO_BUILD=1;
# SMOKE_KEEP=1 keeps the outputs; SMOKE_ENRP_HEARTBEAT_MS and SMOKE_ENRP_LAST_HEARD_MS shorten
# the peered registrars' ENRP timers, so that D's takeover races the PEs' own hunt)
# Needs target/debug/registrar (cargo build -p registrar) and target/debug/rserpool.

set -u
cd "$(dirname "$0")/../.." || exit 2
NET=${SMOKE_NET:-127.0.0}
R=target/debug/rserpool
REGISTRAR=target/debug/registrar
WORK=$(mktemp -d /tmp/rserpool-smoke.XXXXXX)
passed=0
failed=0

if [ "${SMOKE_NO_BUILD:-0}" != 1 ]; then
    cargo build -q -p asap --bin rserpool --example tcp_pool || exit 2
    cargo build -q -p registrar --bin registrar ||
        echo "warning: registrar did not build; using the existing binary"
fi
[ -x "$R" ] && [ -x "$REGISTRAR" ] || { echo "missing $R or $REGISTRAR"; exit 2; }

cleanup() {
    for pid in $(cat "$WORK"/*.pid 2>/dev/null); do kill -9 "$pid" 2>/dev/null; done
    wait 2>/dev/null
    if [ "${SMOKE_KEEP:-0}" = 1 ]; then echo "outputs kept in $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

check() { # check NAME COMMAND...: passes when COMMAND succeeds.
    local name=$1
    shift
    if "$@"; then
        passed=$((passed + 1))
        echo "ok   $name"
    else
        failed=$((failed + 1))
        echo "FAIL $name"
    fi
}

wait_for() { # wait_for FILE PATTERN SECONDS: until a line of FILE matches.
    local deadline=$((SECONDS + $3))
    while [ $SECONDS -lt $deadline ]; do
        grep -q -- "$2" "$1" 2>/dev/null && return 0
        sleep 0.1
    done
    echo "  (no '$2' in $1 after $3 s:)" && sed 's/^/  | /' "$1"
    return 1
}

contains() { # contains FILE PATTERN
    grep -q -- "$2" "$1" && return 0
    echo "  (no '$2' in $1:)" && sed 's/^/  | /' "$1"
    return 1
}

wait_for_cmd() { # wait_for_cmd NAME SECONDS COMMAND... -- WORD...: until COMMAND prints each WORD
    local name=$1 deadline=$((SECONDS + $2))
    shift 2
    local cmd=()
    while [ "$1" != -- ]; do cmd+=("$1"); shift; done
    shift
    local out="$WORK/cmd.out"
    while [ $SECONDS -lt $deadline ]; do
        "${cmd[@]}" >"$out" 2>&1
        local all=1
        for word in "$@"; do grep -q -- "$word" "$out" || all=0; done
        [ $all = 1 ] && return 0
        sleep 0.3
    done
    echo "  ($name: not all of $* after $2 s:)" && sed 's/^/  | /' "$out"
    return 1
}

lacks() { # lacks FILE PATTERN
    grep -q -- "$2" "$1" || return 0
    echo "  ('$2' in $1:)" && sed 's/^/  | /' "$1"
    return 1
}

spawn() { # spawn NAME COMMAND...: in the background; output, pid and exit status in $WORK.
    # The process runs under a subshell that writes its exit status, so that the test can
    # check it and bash prints no "Killed" notice when the test kills it.
    local name=$1
    shift
    rm -f "$WORK/$name.rc"
    # fd 7 is the terminal's stdin FIFO of the two-registrar case: not to be inherited.
    ("$@" >"$WORK/$name.out" 2>&1 &
     echo $! >"$WORK/$name.pid"
     wait $!
     echo $? >"$WORK/$name.rc") </dev/null >/dev/null 2>&1 7>&- &
    local deadline=$((SECONDS + 5))
    until [ -s "$WORK/$name.pid" ] || [ $SECONDS -ge $deadline ]; do sleep 0.05; done
}

start_registrar() { # start_registrar NAME IP [REGISTRAR ARGS...] (no ENRP unless ARGS say)
    local name=$1 ip=$2
    shift 2
    local enrp=(--no-enrp)
    [ $# -gt 0 ] && enrp=()
    # Keep-alives every second, so that a killed PE leaves its pool within a few seconds.
    spawn "$name" "$REGISTRAR" --udp "$ip:9899" --workers 1 --no-announce --log warn \
        --keep-alive-interval-ms 1000 --keep-alive-timeout-ms 1000 "${enrp[@]}" "$@"
    wait_for "$WORK/$name.out" "registrar ready" 10
}

start_pe() { # start_pe NAME ARGS...: rserpool ARGS in the background
    local name=$1
    shift
    spawn "$name" "$R" "$@"
}

exited() { # exited NAME STATUS: the process NAME ended with STATUS within 10 s.
    wait_for "$WORK/$1.rc" "^$2$" 10
}

A="$NET.1"
B="$NET.2"

# Bad command lines are clap's errors, naming the flag, with exit status 2.
"$R" resolve p --timeout-ms 0 >"$WORK/bad.out" 2>&1
check "bad --timeout-ms exits 2" [ $? -eq 2 ]
check "bad --timeout-ms is named" contains "$WORK/bad.out" "--timeout-ms"
"$R" pe --pool p --policy rr --weight 3 >"$WORK/bad2.out" 2>&1
check "--weight with rr exits 2" [ $? -eq 2 ]
check "--weight with rr is named" contains "$WORK/bad2.out" "--weight applies only"

# No registrar yet.
"$R" --registrar "$A" --timeout-ms 700 resolve nothing >"$WORK/none.out" 2>&1
check "no registrar exits 1" [ $? -eq 1 ]
check "no registrar says so" contains "$WORK/none.out" \
    "^rserpool: no registrar reachable (tried $A:3863)$"

# A speaks ENRP (no peers), so that `dump` can read its handlespace.
# ... and has the admin API on, for `dump --admin` and `status`.
ADMIN_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
head -c 18 /dev/urandom | base64 >"$WORK/admin.token"
ADMIN=(--admin "127.0.0.1:$ADMIN_PORT" --admin-token-file "$WORK/admin.token")
check "registrar A starts" start_registrar a "$A" --enrp-port 9901 "${ADMIN[@]}"
G=(--registrar "$A" --timeout-ms 1000)

"$R" --registrar "$A" resolve nopool >"$WORK/unknown.out" 2>&1
check "unknown pool exits 1" [ $? -eq 1 ]
check "unknown pool names pool and registrar" contains "$WORK/unknown.out" \
    "^rserpool: pool \"nopool\" is unknown at $A:3863$"

# Two echo PEs, fixed ids.
start_pe pe1 pe --pool echo --id 1 "${G[@]}"
check "pe1 serves" wait_for "$WORK/pe1.out" "^serving echo on tcp+udp 127.0.0.1:" 5
check "pe1 registers" wait_for "$WORK/pe1.out" \
    "^registered PE 0x00000001 in pool \"echo\" at $A:3863$" 10

"$R" --registrar "$A" resolve echo >"$WORK/table.out" 2>&1
check "resolve prints a header" contains "$WORK/table.out" \
    "^ID  *TRANSPORT  *ADDRESS  *POLICY  *HOME$"
check "resolve lists pe1" contains "$WORK/table.out" \
    "^0x00000001  *tcp  *127.0.0.1:[0-9]*  *rr  *0x"

# The terminal: one line to pe1, then pe2 comes, pe1 is killed, and the next lines fail over.
{
    echo one
    sleep 1
    start_pe pe2 pe --pool echo --id 2 "${G[@]}"
    wait_for "$WORK/pe2.out" "^registered PE 0x00000002" 10 >/dev/null
    kill -9 "$(cat "$WORK/pe1.pid")"
    sleep 0.3
    echo two
    echo three
} | timeout 60 "$R" "${G[@]}" terminal echo >"$WORK/terminal.out" 2>"$WORK/terminal.err"
terminal_rc=$?
check "terminal exits 0 at the end of stdin" [ $terminal_rc -eq 0 ]
cp "$WORK/terminal.err" /tmp/rserpool-smoke-terminal.err
check "terminal echoes every line" diff <(printf 'one\ntwo\nthree\n') "$WORK/terminal.out"
check "terminal reports the dead PE" contains "$WORK/terminal.err" \
    "^PE 0x00000001 at 127.0.0.1:[0-9]* unreachable"
check "terminal fails over" contains "$WORK/terminal.err" \
    "^failover: PE 0x00000001 -> PE 0x00000002$"

"$R" --registrar "$A" resolve echo --json >"$WORK/json.out" 2>&1
check "resolve --json parses and lists pe2" python3 -c '
import json, sys
doc = json.load(open(sys.argv[1]))
assert doc["pool"] == "echo", doc
assert "0x00000002" in [e["id"] for e in doc["pool_elements"]], doc
' "$WORK/json.out"

# SIGINT deregisters pe2 and exits 0.
kill -INT "$(cat "$WORK/pe2.pid")"
check "pe2 exits 0 on SIGINT" exited pe2 0
check "pe2 says deregistered" contains "$WORK/pe2.out" \
    "^deregistered PE 0x00000002 from pool \"echo\"$"
"$R" --registrar "$A" resolve echo >"$WORK/after.out" 2>&1
check "pe2 is gone from the pool" lacks "$WORK/after.out" "^0x00000002"

# A terminal on an unknown pool fails with the resolution's error.
echo hello | "$R" --registrar "$A" terminal nopool >"$WORK/tu.out" 2>&1
check "terminal on an unknown pool exits 1" [ $? -eq 1 ]
check "terminal on an unknown pool says so" contains "$WORK/tu.out" \
    "^rserpool: pool \"nopool\" is unknown at $A:3863$"

# register: a registration without a service, ended by --run-seconds.
start_pe reg register --pool reg --port 7777 --id 0x10 --run-seconds 2 "${G[@]}"
check "register registers" wait_for "$WORK/reg.out" \
    "^registered PE 0x00000010 in pool \"reg\"" 10
"$R" --registrar "$A" resolve reg >"$WORK/reg-table.out" 2>&1
check "register is resolved" contains "$WORK/reg-table.out" "^0x00000010  *tcp  *127.0.0.1:7777 "
check "register exits 0 after --run-seconds" exited reg 0
check "register says deregistered" contains "$WORK/reg.out" "^deregistered PE 0x00000010"

# A UDP echo PE (least used), and a daytime PE whose TCP server closes after each answer.
start_pe udp pe --pool udp --transport udp --policy lu --load 25% --run-seconds 20 "${G[@]}"
start_pe day pe --pool day --service daytime --run-seconds 20 "${G[@]}"
check "udp PE registers" wait_for "$WORK/udp.out" "^registered PE" 10
check "daytime PE registers" wait_for "$WORK/day.out" "^registered PE" 10
"$R" --registrar "$A" resolve udp >"$WORK/udp-table.out" 2>&1
check "udp PE is listed with its load" contains "$WORK/udp-table.out" \
    "  udp  *127.0.0.1:[0-9]*  *lu load=1073741824  "
printf 'x\ny\n' | timeout 30 "$R" "${G[@]}" terminal udp >"$WORK/udp-term.out" 2>&1
check "terminal speaks UDP" diff <(printf 'x\ny\n') "$WORK/udp-term.out"
printf 'a\nb\n' | timeout 30 "$R" "${G[@]}" terminal day >"$WORK/day-term.out" 2>&1
check "terminal reads daytime twice" [ "$(grep -c ' UTC$' "$WORK/day-term.out")" -eq 2 ]
check "daytime's closes are no failover" lacks "$WORK/day-term.out" "failover"
kill -INT "$(cat "$WORK/udp.pid")" "$(cat "$WORK/day.pid")"
check "udp PE exits 0" exited udp 0
check "daytime PE exits 0" exited day 0

# SCTP PEs with the ASAP control channel: three echo PEs and a terminal. Each echo sends a
# cookie (its PE id and a line count) after each reply; when the PE serving the terminal is
# killed -9, the next line is answered by another PE, which got that cookie echoed first.
for i in 1 2 3; do start_pe "sctp$i" pe --pool sctp --transport sctp --id "0x5$i" "${G[@]}"; done
for i in 1 2 3; do
    check "sctp$i serves SCTP" wait_for "$WORK/sctp$i.out" \
        "^serving echo on sctp 127.0.0.1:[0-9]* with the ASAP control channel$" 5
    check "sctp$i registers" wait_for "$WORK/sctp$i.out" "^registered PE 0x0000005$i " 10
done
"$R" --registrar "$A" resolve sctp >"$WORK/sctp-table.out" 2>&1
check "resolve lists the SCTP PEs" contains "$WORK/sctp-table.out" "^0x00000052  *sctp  *127.0.0.1:"
mkfifo "$WORK/sctp.in"
("$R" "${G[@]}" terminal sctp <"$WORK/sctp.in" >"$WORK/sctp-term.out" 2>"$WORK/sctp-term.err" &
 echo $! >"$WORK/sctpterm.pid"
 wait $!
 echo $? >"$WORK/sctpterm.rc") >/dev/null 2>&1 &
exec 8>"$WORK/sctp.in"
echo s-one >&8
echo s-two >&8
check "the SCTP terminal is answered" wait_for "$WORK/sctp-term.out" "^s-two$" 10
serving=$(grep -l "^association from PU at " "$WORK"/sctp[123].out | head -1)
serving=${serving##*/sctp}
serving=${serving%.out}
check "one SCTP PE serves the terminal" [ -n "$serving" ]
kill -9 "$(cat "$WORK/sctp$serving.pid")"
echo s-three >&8
check "the next line is answered by another PE" wait_for "$WORK/sctp-term.out" "^s-three$" 15
others=()
for i in 1 2 3; do [ "$i" != "$serving" ] && others+=("$WORK/sctp$i.out"); done
check "the new PE got the killed PE's cookie echoed" bash -c \
    "grep -q '^cookie echo from PU at .*: pe=0x0000005$serving;lines=[12]$' ${others[*]}"
check "the terminal sent the cookie echo" contains "$WORK/sctp-term.err" "^cookie echo sent to PE 0x0000005"
check "the terminal fails over from the killed PE" contains "$WORK/sctp-term.err" \
    "^failover: PE 0x0000005$serving -> PE 0x0000005"
check "the killed PE is reported once" \
    [ "$(grep -c "^PE 0x0000005$serving at .* unreachable" "$WORK/sctp-term.err")" -eq 1 ]
exec 8>&-
check "the SCTP terminal exits 0 at the end of stdin" exited sctpterm 0
for i in 1 2 3; do [ "$i" != "$serving" ] && kill -INT "$(cat "$WORK/sctp$i.pid")"; done
for i in 1 2 3; do
    if [ "$i" != "$serving" ]; then check "sctp$i exits 0" exited "sctp$i" 0; fi
done

# watch: the PEs present at the start, each registration and removal (deregistered, and
# killed -9: removed when its keep-alives go unanswered), then the pool's end.
start_pe w1 pe --pool watched --id 0x21 "${G[@]}"
check "w1 registers" wait_for "$WORK/w1.out" "^registered PE 0x00000021" 10
spawn watch "$R" "${G[@]}" watch watched --duration-ms 60000
spawn watchjson "$R" "${G[@]}" watch watched --json --count 2 --duration-ms 60000
check "watch lists the PE present" wait_for "$WORK/watch.out" \
    "^added 0x00000021 tcp 127.0.0.1:[0-9]* rr home 0x" 10
start_pe w2 pe --pool watched --id 0x22 "${G[@]}"
check "w2 registers" wait_for "$WORK/w2.out" "^registered PE 0x00000022" 10
check "watch sees w2 added" wait_for "$WORK/watch.out" "^added 0x00000022 " 5

# dump, while the pool has both PEs: A's handlespace over ENRP, as a table and as JSON.
"$R" --registrar "$A" --timeout-ms 3000 dump >"$WORK/dump.out" 2>&1
check "dump exits 0" [ $? -eq 0 ]
check "dump prints a header" contains "$WORK/dump.out" "^POOL  *ID  *TRANSPORT  *ADDRESS"
check "dump lists w1 and w2" [ "$(grep -c '^watched  *0x0000002[12]  *tcp ' "$WORK/dump.out")" -eq 2 ]
"$R" --registrar "$A" --timeout-ms 3000 dump --json >"$WORK/dump.json" 2>&1
check "dump --json lists the pool" python3 -c '
import json, sys
doc = json.load(open(sys.argv[1]))
pools = {p["pool"]: [e["id"] for e in p["pool_elements"]] for p in doc["pools"]}
assert sorted(pools["watched"]) == ["0x00000021", "0x00000022"], pools
assert doc["registrar_id"].startswith("0x"), doc
' "$WORK/dump.json"
"$R" --registrar "$B" --timeout-ms 500 dump >"$WORK/dump-none.out" 2>&1
check "dump without a registrar fails naming it" contains "$WORK/dump-none.out" \
    "^rserpool: no ENRP association to registrar $B:9901 within 500 ms"

# The same handlespace through A's admin API, and A's status.
"$R" dump "${ADMIN[@]}" >"$WORK/dump-admin.out" 2>&1
check "dump --admin lists w1 and w2 homed here" \
    [ "$(grep -c '^watched  *0x0000002[12]  *tcp  .* (here)$' "$WORK/dump-admin.out")" -eq 2 ]
"$R" status "${ADMIN[@]}" >"$WORK/status.out" 2>&1
check "status says serving" contains "$WORK/status.out" "^registrar 0x[0-9a-f]*  serving  up "
check "status counts the PEs" contains "$WORK/status.out" "^PEs 2  pools 1 "
# The two dumps above read A over ENRP as peers do, so A lists them as peers for a while.
check "status lists the dumps' ENRP peers" contains "$WORK/status.out" "^PEER  *ADDRESS  *STATE"
echo wrong >"$WORK/wrong.token"
"$R" status --admin "127.0.0.1:$ADMIN_PORT" --admin-token-file "$WORK/wrong.token" \
    >"$WORK/status-401.out" 2>&1
check "status with a wrong token fails naming it" contains "$WORK/status-401.out" \
    "^rserpool: admin API 127.0.0.1:$ADMIN_PORT/api/v1/stats: 401, the token was refused"
"$R" status >"$WORK/status-none.out" 2>&1
check "status without --admin names it" contains "$WORK/status-none.out" "^rserpool: --admin"

kill -INT "$(cat "$WORK/w2.pid")"
check "watch sees w2 deregistered" wait_for "$WORK/watch.out" "^removed 0x00000022 " 5
kill -9 "$(cat "$WORK/w1.pid")"
check "watch sees killed w1 removed" wait_for "$WORK/watch.out" "^removed 0x00000021 " 15
check "watch lists each change once" [ "$(grep -c '^added\|^removed' "$WORK/watch.out")" -eq 4 ]
check "watch sees the pool gone" wait_for "$WORK/watch.out" '^gone pool "watched"$' 5
check "watch exits 0 when the pool is gone" exited watch 0
check "watch --json --count 2 exits 0" exited watchjson 0
check "watch --json lines parse" python3 -c '
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
assert [(l["event"], l["pe"]["id"]) for l in lines] == \
    [("added", "0x00000021"), ("added", "0x00000022")], lines
' "$WORK/watchjson.out"
"$R" "${G[@]}" watch nopool >"$WORK/watch-unknown.out" 2>&1
check "watch of an unknown pool fails naming it" contains "$WORK/watch-unknown.out" \
    "^rserpool: pool \"nopool\" is unknown at $A:3863$"

# TCP pools: connect pipes stdin to a TCP PE; a PE whose port refuses is reported and skipped.
start_pe deadtcp register --pool tcp --port "$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')" --id 0x31 "${G[@]}"
check "refusing TCP PE registers" wait_for "$WORK/deadtcp.out" "^registered PE 0x00000031" 10
printf 'x\n' | timeout 20 "$R" "${G[@]}" connect tcp >"$WORK/conn-dead.out" 2>&1
check "connect to a refusing pool exits 1" [ $? -eq 1 ]
check "connect names the refusal" contains "$WORK/conn-dead.out" \
    "^rserpool: no PE of pool \"tcp\" took a TCP connection (1 tried, last: "
start_pe tcpecho pe --pool tcp --id 0x32 "${G[@]}"
check "TCP echo PE registers" wait_for "$WORK/tcpecho.out" "^registered PE 0x00000032" 10
printf 'one\ntwo\n' | timeout 20 "$R" "${G[@]}" connect tcp >"$WORK/conn.out" 2>"$WORK/conn.err"
check "connect exits 0" [ $? -eq 0 ]
check "connect pipes both lines" diff <(printf 'one\ntwo\n') "$WORK/conn.out"
check "connect reaches the echo PE" contains "$WORK/conn.err" "^connected to PE 0x00000032 at "
kill -INT "$(cat "$WORK/deadtcp.pid")" "$(cat "$WORK/tcpecho.pid")"
timeout 30 target/debug/examples/tcp_pool "$A" >"$WORK/example.out" 2>&1
check "tcp_pool example exits 0" [ $? -eq 0 ]
check "tcp_pool example gets its reply" contains "$WORK/example.out" "^reply: hello from the PU$"

# A PE whose home registrar dies moves to the other one.
# It knows both; B starts only after it registered, so its first hunt finds A.
start_pe mover pe --pool mover --id 3 --lifetime-ms 3000 --run-seconds 60 \
    --registrar "$A" --registrar "$B" --timeout-ms 1000
check "mover registers at A" wait_for "$WORK/mover.out" \
    "^registered PE 0x00000003 in pool \"mover\" at $A:3863$" 10
check "registrar B starts" start_registrar b "$B"
kill -9 "$(cat "$WORK/a.pid")"
check "mover loses A" wait_for "$WORK/mover.out" "^registrar lost: $A:3863" 15
check "mover re-registers at B" wait_for "$WORK/mover.out" \
    "^registered PE 0x00000003 in pool \"mover\" at $B:3863$" 15
"$R" --registrar "$B" resolve mover >"$WORK/mover-table.out" 2>&1
check "B resolves mover" contains "$WORK/mover-table.out" "^0x00000003 "
kill -TERM "$(cat "$WORK/mover.pid")"
check "mover exits 0 on SIGTERM" exited mover 0
check "mover deregisters at B" contains "$WORK/mover.out" "^deregistered PE 0x00000003"

# Two registrars peered over ENRP: C, then D with C as its mentor. Two PEs, a watch and a
# terminal know both, in the order C, D (hunting one at a time, so C is home); then C is
# killed -9. The PEs re-register at D (or D takes them over, when its ENRP timers find C
# dead first), the watch moves its subscription to D and sees the changes made there, and
# the terminal's next line is answered.
C="$NET.3"
D="$NET.4"
ENRP_TIMERS=(--enrp-heartbeat-ms "${SMOKE_ENRP_HEARTBEAT_MS:-30000}" \
    --enrp-max-time-last-heard-ms "${SMOKE_ENRP_LAST_HEARD_MS:-61000}" \
    --enrp-max-time-no-response-ms 1000)
check "registrar C starts" start_registrar c "$C" --registrar-id 0xc "${ENRP_TIMERS[@]}"
check "registrar D starts, peered with C" start_registrar d "$D" --registrar-id 0xd \
    --peer "$C:9901" "${ENRP_TIMERS[@]}"
CD=(--registrar "$C" --registrar "$D" --hunt-parallel 1 --timeout-ms 1000)
# Default registration life (90 s, T4 70 s): what "a PE hunting A and B didn't re-register
# at B within 15 s after A was killed" was about. two1 keeps the default home silence (15 s),
# two2 waits 3 s.
start_pe two1 pe --pool two --id 0x41 "${CD[@]}"
start_pe two2 pe --pool two --id 0x42 --home-silence-ms 3000 "${CD[@]}"
check "two1 registers at C" wait_for "$WORK/two1.out" \
    "^registered PE 0x00000041 in pool \"two\" at $C:3863$" 10
check "two2 registers at C" wait_for "$WORK/two2.out" \
    "^registered PE 0x00000042 in pool \"two\" at $C:3863$" 10
check "D learns both PEs from C" wait_for_cmd "resolve two at D" 10 \
    "$R" --registrar "$D" --timeout-ms 500 resolve two --items 10 -- 0x00000041 0x00000042
spawn twowatch "$R" "${CD[@]}" watch two --duration-ms 90000
check "the watch starts at C" wait_for "$WORK/twowatch.out" "^added 0x00000042 " 10
mkfifo "$WORK/term.in"
("$R" "${CD[@]}" terminal two <"$WORK/term.in" >"$WORK/term.out" 2>"$WORK/term.err" &
 echo $! >"$WORK/term.pid"
 wait $!
 echo $? >"$WORK/term.rc") >/dev/null 2>&1 &
exec 7>"$WORK/term.in"
echo before >&7
check "the terminal is answered through C" wait_for "$WORK/term.out" "^before$" 10

kill -9 "$(cat "$WORK/c.pid")"
killed_at=$SECONDS
moved="^registered PE 0x0000004[12] in pool \"two\" at $D:3863$\|^home changed to registrar 0x0000000d"
check "two2 carries on at D within 15 s of C's kill -9" wait_for "$WORK/two2.out" "$moved" 15
check "two1 carries on at D within 15 s + 1 s + hunt" wait_for "$WORK/two1.out" "$moved" 20
echo "  (PEs moved to D $((SECONDS - killed_at)) s after the kill)"
check "the watch loses C" wait_for "$WORK/twowatch.out" "^registrar lost: $C:3863" 15
check "the watch moves to D" wait_for "$WORK/twowatch.out" "^home changed to $D:3863" 15
echo after >&7
check "the terminal's next line is answered" wait_for "$WORK/term.out" "^after$" 15
check "D resolves both PEs" wait_for_cmd "resolve two at D" 10 \
    "$R" --registrar "$D" --timeout-ms 500 resolve two --items 10 -- 0x00000041 0x00000042
start_pe two3 pe --pool two --id 0x43 --registrar "$D" --timeout-ms 1000
check "a PE registers at D" wait_for "$WORK/two3.out" "^registered PE 0x00000043 .* at $D:3863$" 10
check "the watch sees it through D" wait_for "$WORK/twowatch.out" "^added 0x00000043 " 10
kill -INT "$(cat "$WORK/two2.pid")"
check "the watch sees a deregistration at D" wait_for "$WORK/twowatch.out" "^removed 0x00000042 " 10
exec 7>&-
check "the terminal exits 0 at the end of stdin" exited term 0
check "the watch saw no PE twice" [ "$(grep -c '^added 0x00000041 ' "$WORK/twowatch.out")" -eq 1 ]
kill -INT "$(cat "$WORK/twowatch.pid")"
check "the watch exits 0 on SIGINT" exited twowatch 0
kill -INT "$(cat "$WORK/two1.pid")" "$(cat "$WORK/two3.pid")"

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
