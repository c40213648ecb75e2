#!/usr/bin/env bash
# enrp-propagation.sh [SAMPLES] - Handle Update propagation latency between two peered
# registrars (127.0.0.1 and 127.0.0.2, one worker each) while loadgen keeps registrar A busy
# with registration churn and resolutions (loadgen/scenarios/churn.toml): a PE registers at A,
# a PU polls B until it resolves it (asap/examples/propagation.rs); p50/p90/p99/max.
set -u
cd "$(dirname "$0")/.."
SAMPLES=${1:-300}
BIN=target/release
OUT=target/enrp-propagation
mkdir -p "$OUT"
cargo build --release -p registrar -p loadgen -p asap --example propagation >/dev/null 2>&1 || exit 2
sed -e 's/^duration_ms = .*/duration_ms = 30_000/' loadgen/scenarios/churn.toml >"$OUT/churn.toml"
$BIN/registrar --udp 127.0.0.1:9899 --workers 1 --no-announce --mesh-spin-us 0 \
  --peer 127.0.0.2:9901 --run-seconds 60 >"$OUT/a.log" 2>&1 & A=$!
$BIN/registrar --udp 127.0.0.2:9899 --workers 1 --no-announce --mesh-spin-us 0 \
  --peer 127.0.0.1:9901 --run-seconds 60 >"$OUT/b.log" 2>&1 & B=$!
trap 'kill $A $B $L 2>/dev/null; wait 2>/dev/null' EXIT
sleep 1
$BIN/loadgen run --scenario "$OUT/churn.toml" --target registrar --address 127.0.0.1:9899 \
  --report-dir "$OUT/report" >"$OUT/loadgen.log" 2>&1 & L=$!
sleep 3
timeout 120 $BIN/examples/propagation 127.0.0.1 127.0.0.2 "$SAMPLES"
