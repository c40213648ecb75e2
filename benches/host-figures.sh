#!/usr/bin/env bash
# host-figures.sh: the loadgen figures of BENCHMARKS.md, measured on this host in one session.
# Every figure is a ratio against a baseline from the same session (STYLE.md §8):
#   1. registrar resolutions/s against the UDP echo ceiling (same loadgen, same flows/windows),
#      alternating A B A B, median of 3;
#   2. 1 -> 2 registrar workers (scaling efficiency) under loadgen, and the registrar's own
#      scaling without the kernel's packet work or the load generator (examples/core_scaling);
#   3. the sustainable open-loop rate (p99 < 1 ms) and p99 at 80 % of it.
# Output: target/bench-figures/*.txt and loadgen-report/*.json. Bounded: ~3 minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
out=target/bench-figures
mkdir -p "$out"
cargo build --release -p loadgen -p registrar --bins --examples
L=target/release/loadgen
S=loadgen/scenarios/quickstart.toml
{ date -u; uptime; nproc; uname -r; } | tee "$out/host.txt"
tuning/host-profile.sh >>"$out/host.txt" 2>&1 || true

# 1. Registrar vs the UDP echo ceiling.
$L run --scenario $S --target registrar --server-threads 1 --duration-ms 4500 --baseline \
  --repeats 3 --name vs-echo | tee "$out/vs-echo.txt"

# 2. Scaling: the same load against 1 and then 2 registrar workers.
for w in 1 2; do
  $L run --scenario $S --target registrar --server-threads $w --duration-ms 4500 \
    --name workers-$w | tee "$out/workers-$w.txt"
done
$L compare --new loadgen-report/workers-2-registrar.json \
  --baseline loadgen-report/workers-1-registrar.json | tee "$out/scaling.txt"

# 2b. The registrar's own work, 1 -> 2 cores, over a synthetic in-memory transport.
target/release/examples/core_scaling 3 5 2 | tee "$out/core-scaling.txt"

# 3. Capacity: open-loop sweep until p99 passes 1 ms.
$L capacity --scenario $S --target registrar --server-threads 1 --start-rate-per-s 20000 \
  --growth 1.4 --step-ms 2000 --p99-bound-us 1000 --json "$out/capacity.json" \
  | tee "$out/capacity.txt"
