#!/usr/bin/env bash
# run-bench.sh: builds registrar and loadgen here, then runs lab/guest-bench.sh in the lab VM:
# identical loadgen load points against RSPLIB's rspregistrar and against ours, with loadgen's
# userspace SCTP clients and with its one-to-one kernel SCTP clients. Results (JSON and text)
# land in target-lab/bench/; lab/bench-summary.sh prints the ratios BENCHMARKS.md records.
# Knobs (see lab/guest-bench.sh): BENCH_POINTS (default: issue 14's table, resolutions at
# 1x1, 4x4 and 16x8, registration + deregistration at 1x1 and 8x4), BENCH_SCENARIOS (bare
# scenarios of lab/scenarios/ added to the points; the older knob), BENCH_CLIENTS (default
# "userspace kernel"), BENCH_FLOOR (UDP echo floor shapes, default "1x1 4x4 16x8"),
# BENCH_WHO (the registrars to run, default all), BENCH_SYSCALLS=1 (system calls per operation
# at the 1x1 points, under strace),
# BENCH_BASE_BIN (a release directory inside the project holding a baseline build of our
# registrar, e.g. target/base/release: run at every point too, for a same-boot A/B).
# shellcheck source=run-lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/run-lib.sh" run-bench
lab_build
rm -rf "$project/target-lab/bench" && mkdir -p "$project/target-lab/bench"
"$lab/vm-run.sh" -s "$project/.." -t "${LAB_TIMEOUT:-2400}" -- \
  "BENCH_POINTS=$(q "${BENCH_POINTS:-}") BENCH_SCENARIOS=$(q "${BENCH_SCENARIOS:-}") \
   BENCH_CLIENTS=$(q "${BENCH_CLIENTS:-userspace kernel}") \
   BENCH_FLOOR=$(q "${BENCH_FLOOR-1x1 4x4 16x8}") BENCH_SYSCALLS=${BENCH_SYSCALLS:-0} \
   BENCH_WHO=$(q "${BENCH_WHO:-}") \
   BENCH_BASE_BIN=$(q "${BENCH_BASE_BIN:+/host/$name/${BENCH_BASE_BIN#"$project"/}}") \
   bash /host/$name/lab/guest-bench.sh $bin /host/$name/target-lab/bench"
