#!/usr/bin/env bash
# enrp-peered.sh [ROUNDS] - resolution throughput of a registrar under registration churn,
# alone and with one ENRP peer that receives a Handle Update for every change (issue 12's
# budget: at most 10 % lost). Same host, same loadgen churn scenario (loadgen/scenarios/
# churn.toml, shortened), rounds alternated (alone, peered, alone, ...); prints each round and
# the median ratio peered / alone. On a 2-core host the peer registrar, the registrar under
# test and loadgen share the cores: the ratio includes that contention.
set -u
cd "$(dirname "$0")/.."
ROUNDS=${1:-3}
BIN=target/release
OUT=target/enrp-peered
mkdir -p "$OUT"
[ -x $BIN/registrar ] && [ -x $BIN/loadgen ] || cargo build --release -p registrar -p loadgen >/dev/null
sed -e 's/^duration_ms = .*/duration_ms = 8_000/' loadgen/scenarios/churn.toml >"$OUT/churn.toml"
run() { # mode round
  local peers1=() pid2=
  if [ "$1" = peered ]; then
    peers1=(--peer 127.0.0.2:9901)
    $BIN/registrar --udp 127.0.0.2:9899 --workers 1 --no-announce --mesh-spin-us 0 \
      --peer 127.0.0.1:9901 --run-seconds 30 >"$OUT/peer-$2.log" 2>&1 & pid2=$!
  fi
  $BIN/registrar --udp 127.0.0.1:9899 --workers 1 --no-announce --mesh-spin-us 0 "${peers1[@]}" \
    --run-seconds 30 >"$OUT/registrar-$1-$2.log" 2>&1 & local pid1=$!
  sleep 1
  rm -rf "$OUT/report-$1-$2"
  $BIN/loadgen run --scenario "$OUT/churn.toml" --target registrar --address 127.0.0.1:9899 \
    --report-dir "$OUT/report-$1-$2" >"$OUT/loadgen-$1-$2.log" 2>&1
  kill "$pid1" $pid2 2>/dev/null; wait "$pid1" $pid2 2>/dev/null
  python3 - "$OUT/report-$1-$2" <<'PY'
import glob, json, sys
report = json.load(open(glob.glob(sys.argv[1] + "/*.json")[0]))
for op in report["ops"]:
    if "resol" in str(op["kind"]).lower():
        print(f'{op["throughput_per_s"]:.0f}')
PY
}
alone=() peered=()
for r in $(seq 1 "$ROUNDS"); do
  a=$(run alone "$r"); p=$(run peered "$r")
  echo "round $r: alone $a resolutions/s, peered $p resolutions/s"
  alone+=("$a"); peered+=("$p")
done
python3 - "${alone[*]}" "${peered[*]}" <<'PY'
import statistics, sys
a = [float(x) for x in sys.argv[1].split()]
p = [float(x) for x in sys.argv[2].split()]
ratio = statistics.median(p) / statistics.median(a)
print(f"median alone {statistics.median(a):.0f}/s, peered {statistics.median(p):.0f}/s, "
      f"ratio peered/alone {ratio:.3f} ({(1 - ratio) * 100:+.1f} % lost)")
PY
