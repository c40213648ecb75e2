#!/usr/bin/env bash
# bench-summary.sh [DIR]: the ratios of a lab/run-bench.sh run (default target-lab/bench), one
# line per load point, client kind and registrar: throughput and registrar CPU per operation,
# each against RSPLIB's rspregistrar at the same point with the same clients in the same VM
# boot. A resolve point counts resolutions; a churn point counts deregistrations (one
# registration + deregistration cycle each); a fill point counts registrations. Then the UDP
# echo floor of each BENCH_FLOOR shape against our userspace backend at the resolve point of
# the same shape, and the system calls per operation of a BENCH_SYSCALLS pass.
set -euo pipefail
dir=${1:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/target-lab/bench}

# The exact throughput of OP in FILE's loadgen JSON report (the text rounds to 2 digits).
json_rate() { # FILE OP
  local name json
  name=$(awk -F'"' '/^scenario "/ { print $2; exit }' "$1")
  json=$(dirname "$1")/loadgen-report/$(echo "$name" | tr -c 'A-Za-z0-9_\n-' _)-registrar.json
  # The floor's own report: FLOOR_DIR/udp-echo-udp-echo.json.
  [[ -f $json ]] || json=${1%.txt}/udp-echo-udp-echo.json
  [[ -f $json ]] || { echo ""; return; }
  python3 -c '
import json, sys
for op in json.load(open(sys.argv[1]))["ops"]:
    if op["kind"] == sys.argv[2]:
        print(op["succeeded"] / op["window_s"] if op["window_s"] > 0 else 0)
' "$json" "$2"
}

# rate cpu_us_per_op sys_percent of one result file for operation OP.
figures() { # FILE OP
  awk -v op="$2" -v exact="$(json_rate "$1" "$2")" '
    $1 == op { ok = $2; r = $4; if (r ~ /k$/) { sub(/k$/, "", r); r *= 1000 }; if (exact != "") r = exact }
    /^registrar_cpu_ticks=/ {
      split($1, a, "="); split($2, b, "="); ticks = a[2]; hz = b[2]
      if (NF > 2) { split($3, c, "="); sys = c[2] } else { sys = -1 }
    }
    END {
      share = (sys >= 0 && ticks > 0) ? 100 * sys / ticks : -1
      if (ok > 0 && hz > 0) printf "%d %.1f %.0f\n", r, ticks / hz * 1e6 / ok, share
      else print "0 0 -1"
    }
  ' "$1"
}
op_of() { case $1 in *churn*) echo deregister ;; *fill*) echo register ;; *) echo resolve ;; esac; }

printf '%-14s %-9s %-19s %10s %8s %11s %8s %5s\n' point clients registrar 'ops/s' '÷rsplib' \
  'cpu µs/op' 'rsplib÷' 'sys%'
for f in "$dir"/rsplib-*.txt; do
  [[ -f $f ]] || continue
  key=${f##*/rsplib-}; key=${key%.txt}
  point=${key%@*}; client=${key#*@}; [[ $key == *@* ]] || client=userspace
  op=$(op_of "$point")
  read -r base_rate base_cpu _ < <(figures "$f" "$op")
  for who in rsplib ours ours-2w ours-userspace ours-userspace-gso base base-userspace; do
    file=$dir/$who-$key.txt
    [[ -f $file ]] || continue
    read -r rate cpu sys < <(figures "$file" "$op")
    awk -v p="$point" -v c="$client" -v w="$who" -v r="$rate" -v u="$cpu" -v br="$base_rate" \
      -v bc="$base_cpu" -v sy="$sys" 'BEGIN {
        printf "%-14s %-9s %-19s %10d %8.2f %11.1f %8.2f %5s\n", p, c, w, r,
          (br > 0 ? r / br : 0), u, (u > 0 ? bc / u : 0), (sy >= 0 ? sy : "?")
      }'
  done
done

# The UDP echo floor (BENCH_FLOOR): the plain echo server's round trips per second and CPU per
# round trip, and our userspace backend's resolutions per second at the point of the same
# shape as a share of it (issue 14: at least 0.9).
for f in "$dir"/floor-*.txt; do
  [[ -f $f ]] || continue
  shape=${f##*/floor-}; shape=${shape%.txt}
  read -r rate cpu _ < <(figures "$f" resolve)
  printf 'floor %-6s udp echo server: %s round trips/s, %s µs CPU per round trip\n' \
    "$shape" "$rate" "$cpu"
  for client in userspace kernel; do
    ours=$dir/ours-userspace-resolve-$shape@$client.txt
    [[ -f $ours ]] || continue
    read -r ours_rate _ _ < <(figures "$ours" resolve)
    awk -v c="$client" -v o="$ours_rate" -v e="$rate" 'BEGIN {
      printf "  ours (userspace SCTP over UDP), %s clients: %d/s = %.2f of the floor\n", c, o,
        (e > 0 ? o / e : 0) }'
  done
done

# System calls per operation (BENCH_SYSCALLS=1): strace -c -f totals over the run's operations.
for f in "$dir"/strace-*-*.txt; do
  [[ -f $f ]] || continue
  name=${f##*/}; name=${name%.txt}
  [[ $name == *@* ]] && continue   # the loadgen output of the pass, not strace's
  result=$(ls "$dir"/"$name"@*.txt 2>/dev/null | head -1)
  [[ -n $result ]] || continue
  op=resolve; [[ $name == *-churn-* ]] && op=deregister
  ops=$(awk -v op="$op" '$1 == op { print $2 }' "$result")
  awk -v n="$name" -v ops="${ops:-0}" '
    $NF == "total" { total = $4 }
    $1 ~ /^[0-9.]+$/ && NF >= 5 && $NF != "total" { calls[$NF] = $4 }
    END {
      if (ops <= 0) { printf "%s: no operations\n", n; exit }
      printf "%s: %.1f system calls per operation;", n, total / ops
      for (c in calls) if (calls[c] / ops >= 0.5) printf " %s %.1f", c, calls[c] / ops
      print ""
    }' "$f"
done
