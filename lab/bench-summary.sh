#!/usr/bin/env bash
# bench-summary.sh [DIR]: the ratios of a lab/run-bench.sh run (default target-lab/bench), one
# line per scenario and registrar: throughput and registrar CPU per operation, each against
# RSPLIB's rspregistrar in the same VM boot. A resolve scenario counts resolutions; a churn
# scenario counts deregistrations (one registration + deregistration cycle each).
set -euo pipefail
dir=${1:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/target-lab/bench}
printf '%-16s %-16s %12s %8s %12s %8s %6s\n' scenario registrar 'ops/s' '÷rsplib' 'cpu µs/op' 'rsplib÷' 'sys %'
for f in "$dir"/rsplib-*.txt; do
  scenario=${f##*/rsplib-}; scenario=${scenario%.txt}
  op=resolve; [[ $scenario == churn* ]] && op=deregister
  base_rate=; base_cpu=
  for who in rsplib ours ours-userspace ours-userspace-gso; do
    file=$dir/$who-$scenario.txt
    [[ -f $file ]] || continue
    read -r rate cpu sys < <(awk -v op="$op" '
      $1 == op { ok = $2; r = $4; if (r ~ /k$/) { sub(/k$/, "", r); r *= 1000 } }
      /^registrar_cpu_ticks=/ {
        split($1, a, "="); split($2, b, "="); ticks = a[2]; hz = b[2]
        if (NF > 2) { split($3, c, "="); sys = c[2] } else { sys = -1 }
      }
      END {
        share = (sys >= 0 && ticks > 0) ? 100 * sys / ticks : -1
        if (ok > 0 && hz > 0) printf "%d %.1f %.0f\n", r, ticks / hz * 1e6 / ok, share
        else print "0 0 -1"
      }
    ' "$file")
    if [[ -z $base_rate ]]; then base_rate=$rate; base_cpu=$cpu; fi
    awk -v s="$scenario" -v w="$who" -v r="$rate" -v c="$cpu" -v br="$base_rate" -v bc="$base_cpu" \
      -v sy="$sys" 'BEGIN {
        printf "%-16s %-16s %12d %8.2f %12.1f %8.2f %6s\n", s, w, r, (br > 0 ? r / br : 0), c,
          (c > 0 ? bc / c : 0), (sy >= 0 ? sy : "?")
      }'
  done
done
# The UDP echo floor (BENCH_FLOOR): the echo server's CPU per round trip, and the largest
# "RSPLIB CPU ÷ ours" any server paying one datagram in and one out per message could reach
# in this VM boot, against RSPLIB's one-message-per-datagram scenarios.
for f in "$dir"/floor-*.txt; do
  [[ -f $f ]] || continue
  shape=${f##*/floor-}; shape=${shape%.txt}
  cpu=$(awk '
    $1 == "resolve" { ok = $2 }
    /^registrar_cpu_ticks=/ { split($1, a, "="); split($2, b, "="); ticks = a[2]; hz = b[2] }
    END { if (ok > 0 && hz > 0) printf "%.1f", ticks / hz * 1e6 / ok; else print 0 }' "$f")
  printf 'floor %-10s udp echo server: %s µs CPU per round trip\n' "$shape" "$cpu"
  for scenario in resolve-many churn; do
    base=$dir/rsplib-$scenario.txt
    [[ -f $base ]] || continue
    # Round trips a message exchange needs at least: one per resolution, two per
    # registration + deregistration cycle.
    trips=1; op=resolve; [[ $scenario == churn* ]] && { trips=2; op=deregister; }
    awk -v op="$op" -v floor="$cpu" -v trips="$trips" -v s="$scenario" -v shape="$shape" '
      $1 == op { ok = $2 }
      /^registrar_cpu_ticks=/ { split($1, a, "="); split($2, b, "="); ticks = a[2]; hz = b[2] }
      END {
        if (ok > 0 && hz > 0 && floor > 0) {
          rsplib = ticks / hz * 1e6 / ok
          printf "  %-14s RSPLIB %.1f µs/op; at %d round trip(s) per op the floor allows at most %.1fx\n",
            s, rsplib, trips, rsplib / (trips * floor)
        }
      }' "$base"
  done
done
