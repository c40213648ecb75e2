#!/usr/bin/env bash
# run-bench.sh: builds registrar and loadgen here, then runs lab/guest-bench.sh in the lab VM:
# identical loadgen scenarios against RSPLIB's rspregistrar and against ours. Results (JSON
# and text) land in target-lab/bench/; BENCHMARKS.md records the ratios. BENCH_SCENARIOS picks
# scenarios of lab/scenarios/ (default: resolve churn); BENCH_FLOOR adds the UDP echo floor
# (guest-bench.sh), e.g. BENCH_FLOOR="64x1 4x8".
set -euo pipefail
project=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
lab=${LAB_DIR:-$project/../shared/lab}
export CARGO_TARGET_DIR=$project/target
(cd "$project" && cargo build --release -p registrar -p loadgen)
bash "$lab/build-image.sh"
name=$(basename "$project")
rm -rf "$project/target-lab/bench" && mkdir -p "$project/target-lab/bench"
"$lab/vm-run.sh" -s "$project/.." -t "${LAB_TIMEOUT:-1200}" -- \
  "BENCH_SCENARIOS='${BENCH_SCENARIOS:-resolve churn}' BENCH_FLOOR='${BENCH_FLOOR:-}' bash /host/$name/lab/guest-bench.sh /host/$name/target/release /host/$name/target-lab/bench"
