#!/usr/bin/env bash
# The AgentX subagent under net-snmp's snmpd: RSERPOOL-MIB (RFC 5525) walked with snmpwalk.
#
# Goal: with the registrar's subagent attached to a real snmpd master, snmpwalk shows the ENRP
# server row, the pool table and the pool element table with the PEs registered here (their
# ids, ports, home registrar); and when snmpd is stopped and started again, the registrar
# keeps running and the subagent comes back by itself (a walk works again). Method: our own
# snmpd (temp config: `master agentx`, the AgentX socket in a temp dir, a read-only community,
# udp:127.0.0.1:free port, in the foreground), a registrar with --snmp-agentx on that socket,
# three PEs in two pools registered with `rserpool register`, then snmpwalk with our MIB
# directory (-M +registrar/mibs -m +RSERPOOL-MIB).
#
# Installs Debian's snmpd and snmp with apt-get when missing (needs root). Everything runs on
# 127.0.0.1 and is bounded in time; every process started here is stopped on exit.
# Usage: registrar/tests/snmp.sh
# Ends with "N passed, M failed"; exits non-zero when anything failed.
set -u
cd "$(dirname "$0")/../.."

passed=0
failed=0
pids=()
snmpd_pid=
work=$(mktemp -d)
cleanup() {
  [ -n "$snmpd_pid" ] && kill "$snmpd_pid" 2>/dev/null && wait "$snmpd_pid" 2>/dev/null
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null; done
  rm -rf "$work"
}
trap cleanup EXIT

check() { # check NAME CONDITION-EXIT-STATUS [DETAIL]
  if [ "$2" -eq 0 ]; then
    passed=$((passed + 1)); echo "ok   $1"
  else
    failed=$((failed + 1)); echo "FAIL $1${3:+: $3}"
  fi
}

finish() {
  echo "$passed passed, $failed failed"
  [ "$failed" -eq 0 ]
  exit $?
}

if ! command -v snmpd >/dev/null || ! command -v snmpwalk >/dev/null; then
  echo "snmpd or snmpwalk missing: installing Debian's snmpd and snmp packages"
  if ! (apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -qq --no-install-recommends snmpd snmp) >"$work/apt.log" 2>&1; then
    tail -5 "$work/apt.log"
    check "install snmpd and snmp" 1 "apt-get failed (see above)"
    finish
  fi
fi
check "snmpd and snmpwalk available" 0

if ! cargo build -q -p registrar -p asap 2>"$work/build.log"; then
  tail -20 "$work/build.log"
  check "build registrar and rserpool" 1
  finish
fi
target=${CARGO_TARGET_DIR:-target}/debug

free_port() { # free_port tcp|udp
  python3 -c "import socket,sys
s=socket.socket(socket.AF_INET, socket.SOCK_STREAM if sys.argv[1]=='tcp' else socket.SOCK_DGRAM)
s.bind(('127.0.0.1',0)); print(s.getsockname()[1])" "$1"
}
snmp_port=$(free_port udp)
udp_port=$(free_port udp)
community="rserpool-test-$$"
socket="$work/agentx-master"
cat >"$work/snmpd.conf" <<EOF
master agentx
agentXSocket $socket
agentaddress udp:127.0.0.1:$snmp_port
rocommunity $community 127.0.0.1
EOF

start_snmpd() { # its persistent files in the temp dir too, not /var/lib/snmp
  SNMP_PERSISTENT_DIR="$work/persist" snmpd -f -Lo -C -c "$work/snmpd.conf" -p "$work/snmpd.pid" >>"$work/snmpd.log" 2>&1 &
  snmpd_pid=$!
}

mibs=(-M +registrar/mibs -m +RSERPOOL-MIB)
walk() { # walk OBJECT: name = value lines, numeric indexes, stderr (MIB warnings) to a log
  timeout 10 snmpwalk -v2c -c "$community" -t 2 -r 1 "${mibs[@]}" -Os "udp:127.0.0.1:$snmp_port" "$1" \
    2>>"$work/snmpwalk.err"
}
# Waits up to $2 s until a walk of $1 gives at least one row; prints what the last one gave.
walk_until() {
  local out=
  for _ in $(seq $(($2 * 2))); do
    out=$(walk "$1")
    if [ -n "$out" ] && ! grep -q "No Such\|No more variables" <<<"$out"; then
      printf '%s\n' "$out"; return 0
    fi
    sleep 0.5
  done
  printf '%s\n' "$out"; return 1
}

start_snmpd
for _ in $(seq 40); do [ -S "$socket" ] && break; sleep 0.25; done
[ -S "$socket" ]
check "snmpd up with its AgentX socket" $? "$(tail -3 "$work/snmpd.log")"

"$target/registrar" --udp "127.0.0.1:$udp_port" --workers 2 --no-announce --no-enrp \
  --snmp-agentx "$socket" --run-seconds 150 --log info 2>"$work/registrar.log" &
registrar_pid=$!
pids+=($registrar_pid)

server=$(walk_until rserpoolENRPTable 20)
grep -q "^rserpoolENRPIdentifier.1 = " <<<"$server"
check "subagent registered: rserpoolENRPTable has the local row" $? "$server"
grep -q 'rserpoolENRPDescription.1 = STRING: "rserpool registrar"' <<<"$server"
check "rserpoolENRPDescription.1 served" $? "$server"

register() { # register POOL ID PORT
  "$target/rserpool" --registrar 127.0.0.1:3863 --registrar-udp-port "$udp_port" \
    register --pool "$1" --id "$2" --port "$3" --run-seconds 120 >>"$work/pe.log" 2>&1 &
  pids+=($!)
}
register alpha 0x11 7001
register alpha 0x12 7002
register beta 0x21 7003

# The pool table: two rows, handles in byte order, indexes 1 and 2 under rserpoolENRPIndex 1.
pools=
for _ in $(seq 40); do
  pools=$(walk rserpoolENRPPoolHandle)
  [ "$(grep -c "^rserpoolENRPPoolHandle\." <<<"$pools")" -eq 2 ] && break
  sleep 0.5
done
echo "$pools"
# (RSerPoolPoolHandleTC prints as text, without quotes: its DISPLAY-HINT.)
grep -q '^rserpoolENRPPoolHandle.1.1 = STRING: alpha$' <<<"$pools" &&
  grep -q '^rserpoolENRPPoolHandle.1.2 = STRING: beta$' <<<"$pools" &&
  [ "$(grep -c "^rserpoolENRPPoolHandle\." <<<"$pools")" -eq 2 ]
check "rserpoolENRPPoolTable: alpha (1.1) and beta (1.2)" $? "$pools"

# The PE table: the ids and ports we registered, at the right (server, pool, PE) indexes.
elements=
for _ in $(seq 20); do
  elements=$(walk rserpoolENRPPoolElementTable)
  [ "$(grep -c "^rserpoolENRPPoolElementID\." <<<"$elements")" -eq 3 ] && break
  sleep 0.5
done
echo "$elements" | grep -E "PoolElementID|UserTransportPort|HomeENRPServer|PolicyDescription"
id_of() { grep "^rserpoolENRPPoolElementID.$1 = " <<<"$elements" | sed 's/.*: //'; }
port_of() { grep "^rserpoolENRPUserTransportPort.$1 = " <<<"$elements" | sed 's/.*: //'; }
# RSerPool identifiers print in hex (the MIB's DISPLAY-HINT "x"); compare as numbers.
num() { [ -n "$1" ] && printf '%d' "0x${1#0x}" 2>/dev/null; }
[ "$(num "$(id_of 1.1.1)")" = 17 ] && [ "$(num "$(id_of 1.1.2)")" = 18 ] &&
  [ "$(num "$(id_of 1.2.1)")" = 33 ]
check "rserpoolENRPPoolElementID: 0x11, 0x12 in alpha, 0x21 in beta" $? \
  "$(grep PoolElementID <<<"$elements")"
[ "$(port_of 1.1.1)" = 7001 ] && [ "$(port_of 1.1.2)" = 7002 ] && [ "$(port_of 1.2.1)" = 7003 ]
check "rserpoolENRPUserTransportPort: 7001, 7002, 7003" $? \
  "$(grep UserTransportPort <<<"$elements")"
own=$(grep "^rserpoolENRPIdentifier.1 = " <<<"$server" | sed 's/.*: //')
homes=$(grep "^rserpoolENRPHomeENRPServer\." <<<"$elements" | sed 's/.*: //' | sort -u)
[ -n "$own" ] && [ "$homes" = "$own" ]
check "rserpoolENRPHomeENRPServer is this registrar ($own) for every PE" $? "homes: $homes"
# `rserpool register` registers a TCP user transport (its echo service's).
grep -q '^rserpoolENRPUserTransportProto.1.1.1 = Gauge32: 6$' <<<"$elements"
check "rserpoolENRPUserTransportProto: TCP (6)" $? "$(grep UserTransportProto <<<"$elements")"

# snmpd goes away: the registrar stays up; snmpd comes back: the subagent re-opens by itself.
kill "$snmpd_pid"; wait "$snmpd_pid" 2>/dev/null; snmpd_pid=
sleep 4
kill -0 "$registrar_pid" 2>/dev/null
check "registrar still running with snmpd stopped" $? "$(tail -5 "$work/registrar.log")"
start_snmpd
again=$(walk_until rserpoolENRPPoolHandle 20)
grep -q '^rserpoolENRPPoolHandle.1.1 = STRING: alpha$' <<<"$again"
check "after snmpd restarts, the subagent is back: the pool table walks again" $? "$again"
[ "$(grep -c "AgentX session open" "$work/registrar.log")" -ge 2 ]
check "the registrar's log shows a second AgentX session" $? \
  "$(grep -i agentx "$work/registrar.log" | tail -5)"

# Outside the registered subtree and past the last row: what SNMP says there.
missing=$(timeout 10 snmpget -v2c -c "$community" -t 2 -r 1 "${mibs[@]}" -Os \
  "udp:127.0.0.1:$snmp_port" rserpoolENRPPoolHandle.1.99 2>>"$work/snmpwalk.err")
grep -q "No Such Instance" <<<"$missing"
check "a pool index that does not exist: noSuchInstance" $? "$missing"

kill -0 "$registrar_pid" 2>/dev/null && ! grep -q "panicked" "$work/registrar.log"
check "registrar still running, no panic in its log" $? "$(tail -5 "$work/registrar.log")"

# The same over TCP: snmpd's AgentX on tcp:127.0.0.1:PORT, a second registrar told that address.
kill "$snmpd_pid"; wait "$snmpd_pid" 2>/dev/null; snmpd_pid=
agentx_port=$(free_port tcp)
sed -i "s|^agentXSocket .*|agentXSocket tcp:127.0.0.1:$agentx_port|" "$work/snmpd.conf"
start_snmpd
udp_port2=$(free_port udp)
"$target/registrar" --udp "127.0.0.1:$udp_port2" --workers 1 --no-announce --no-enrp \
  --snmp-agentx "tcp:127.0.0.1:$agentx_port" --run-seconds 60 --log info 2>"$work/registrar2.log" &
pids+=($!)
tcp=$(walk_until rserpoolENRPIdentifier 20)
grep -q "^rserpoolENRPIdentifier.1 = " <<<"$tcp" && ! grep -q "^rserpoolENRPIdentifier.1 = .*$own" <<<"$tcp"
check "over AgentX/TCP: the second registrar's row (not the first's)" $? "$tcp"
finish
