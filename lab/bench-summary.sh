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
  for who in rsplib ours ours-userspace; do
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
