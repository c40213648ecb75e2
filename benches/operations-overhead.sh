#!/usr/bin/env bash
# operations-overhead.sh [ROUNDS] - what watching a registrar costs it (issue 15's budget: at
# most 2 % of resolution throughput lost). A registrar under loadgen's churn scenario (8 s of
# registrations, deregistrations and resolutions), run plain and observed: `/metrics` scraped,
# the admin API's pool list and stats read, and the whole RSERPOOL-MIB walked with snmpwalk
# through net-snmp's snmpd and our AgentX subagent, all once a second. Same host, rounds
# alternated (plain, observed, ...). Prints, per round and as medians: resolutions/s (from
# loadgen's report) and the registrar process's CPU time (user + system, from /proc) per
# completed operation, and the ratios observed / plain.
#
# On a 2-core host the registrar, loadgen, snmpd and the readers share the cores, so the
# throughput ratio includes the readers' own CPU; the registrar's CPU per operation is the
# figure that is the registrar's alone. Needs snmpd and snmpwalk (Debian: snmpd, snmp) for the
# SNMP part; without them the walk is skipped and the script says so.
set -u
cd "$(dirname "$0")/.."
ROUNDS=${1:-3}
BIN=target/release
OUT=target/operations-overhead
mkdir -p "$OUT"
[ -x $BIN/registrar ] && [ -x $BIN/loadgen ] || cargo build --release -p registrar -p loadgen >/dev/null
sed -e 's/^duration_ms = .*/duration_ms = 8_000/' loadgen/scenarios/churn.toml >"$OUT/churn.toml"
head -c 24 /dev/urandom | base64 >"$OUT/token"
HZ=$(getconf CLK_TCK)

snmp=no
if command -v snmpd >/dev/null && command -v snmpwalk >/dev/null; then
  snmp=yes
  cat >"$OUT/snmpd.conf" <<EOF
master agentx
agentXSocket $PWD/$OUT/agentx-master
agentaddress udp:127.0.0.1:19161
rocommunity overhead 127.0.0.1
EOF
else
  echo "snmpd/snmpwalk not installed: the SNMP walk is left out of the observed rounds" >&2
fi

cpu_ticks() { # utime + stime of a live process, in clock ticks
  awk '{ print $14 + $15 }' "/proc/$1/stat" 2>/dev/null || echo 0
}

run() { # mode round: prints "resolutions/s cpu-us-per-op"
  local extra=() reader= snmpd_pid=
  if [ "$1" = observed ]; then
    extra=(--metrics 127.0.0.1:19464 --admin 127.0.0.1:18080 --admin-token-file "$OUT/token")
    if [ $snmp = yes ]; then
      rm -f "$OUT/agentx-master"
      SNMP_PERSISTENT_DIR="$OUT/snmp-persist" snmpd -f -Lo -C -c "$OUT/snmpd.conf" \
        >"$OUT/snmpd-$2.log" 2>&1 & snmpd_pid=$!
      for _ in $(seq 50); do [ -S "$OUT/agentx-master" ] && break; sleep 0.1; done
      extra+=(--snmp-agentx "$OUT/agentx-master")
    fi
  fi
  $BIN/registrar --udp 127.0.0.1:9899 --workers 1 --no-announce --no-enrp --mesh-spin-us 0 \
    "${extra[@]}" --run-seconds 30 >"$OUT/registrar-$1-$2.log" 2>&1 & local pid=$!
  sleep 1
  if [ "$1" = observed ]; then
    ( auth="Authorization: Bearer $(head -1 "$OUT/token")"
      while kill -0 "$pid" 2>/dev/null; do
        curl -s -o /dev/null 127.0.0.1:19464/metrics
        curl -s -o /dev/null -H "$auth" 127.0.0.1:18080/api/v1/pools
        curl -s -o /dev/null -H "$auth" 127.0.0.1:18080/api/v1/stats
        if [ $snmp = yes ]; then
          snmpwalk -v2c -c overhead -t 2 -r 0 -On udp:127.0.0.1:19161 1.3.6.1.3.125.1 \
            >>"$OUT/walk-$2.txt" 2>&1
        fi
        sleep 1
      done ) & reader=$!
  fi
  local before
  before=$(cpu_ticks "$pid")
  rm -rf "$OUT/report-$1-$2"
  $BIN/loadgen run --scenario "$OUT/churn.toml" --target registrar --address 127.0.0.1:9899 \
    --report-dir "$OUT/report-$1-$2" >"$OUT/loadgen-$1-$2.log" 2>&1
  local after
  after=$(cpu_ticks "$pid")
  kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null
  [ -n "$reader" ] && { kill "$reader" 2>/dev/null; wait "$reader" 2>/dev/null; }
  [ -n "$snmpd_pid" ] && { kill "$snmpd_pid" 2>/dev/null; wait "$snmpd_pid" 2>/dev/null; }
  python3 - "$OUT/report-$1-$2" $((after - before)) "$HZ" <<'PY'
import glob, json, sys
report = json.load(open(glob.glob(sys.argv[1] + "/*.json")[0]))
ticks, hz = int(sys.argv[2]), int(sys.argv[3])
ops = sum(op["succeeded"] + op["failed"] for op in report["ops"])
resolutions = [op["throughput_per_s"] for op in report["ops"] if "resol" in str(op["kind"]).lower()]
print(f"{resolutions[0]:.0f} {ticks / hz * 1e6 / max(ops, 1):.2f}")
PY
}

plain_rate=() plain_cpu=() obs_rate=() obs_cpu=()
for r in $(seq 1 "$ROUNDS"); do
  read -r pr pc < <(run plain "$r")
  read -r orate oc < <(run observed "$r")
  walks=$( [ -f "$OUT/walk-$r.txt" ] && grep -c '^\.1\.3\.6\.1\.3\.125\.1\.' "$OUT/walk-$r.txt" || echo 0)
  echo "round $r: plain $pr resolutions/s, $pc µs CPU/op; observed $orate resolutions/s, $oc µs CPU/op ($walks MIB rows walked)"
  plain_rate+=("$pr"); plain_cpu+=("$pc"); obs_rate+=("$orate"); obs_cpu+=("$oc")
done
python3 - "${plain_rate[*]}" "${obs_rate[*]}" "${plain_cpu[*]}" "${obs_cpu[*]}" <<'PY'
import statistics as st, sys
pr, orate, pc, oc = ([float(x) for x in a.split()] for a in sys.argv[1:5])
rate = st.median(orate) / st.median(pr)
cpu = st.median(oc) / st.median(pc)
print(f"median resolutions/s: plain {st.median(pr):.0f}, observed {st.median(orate):.0f}, "
      f"ratio {rate:.3f} ({(1 - rate) * 100:+.1f} % lost)")
print(f"median registrar CPU per operation: plain {st.median(pc):.2f} µs, observed "
      f"{st.median(oc):.2f} µs, ratio {cpu:.3f}")
PY
