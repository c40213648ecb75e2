#!/usr/bin/env bash
# run-profile.sh: where each microsecond goes (issue 14), inside the lab VM. Builds registrar and
# loadgen here, copies this host's perf (Debian's linux-perf, the guest's kernel series) and the
# libraries the guest lacks into target-lab/perf/ (made here, never committed), then runs
# lab/guest-profile.sh: our registrar on each backend under loadgen's kernel-SCTP clients at
# each PROFILE_POINTS point (guest-bench.sh's syntax; default resolutions 1x1 and 16x8 and
# churn 1x1), sampled by `perf record -e cpu-clock` for the measured seconds, with RSPLIB's
# rspregistrar profiled the same way for comparison. Reports: target-lab/profile/*.txt
# (perf report by DSO and by symbol). Needs perf on this host (apt install linux-perf).
# shellcheck source=run-lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/run-lib.sh" run-profile
perf=$(command -v perf) || { echo "run-profile: no perf on this host (apt install linux-perf)" >&2; exit 2; }
lab_build
# perf and the libraries the guest image does not have, beside it.
dest=$project/target-lab/perf
mkdir -p "$dest/lib"
cp "$(readlink -f "$perf")" "$dest/perf"
. "${LAB_CACHE:-$HOME/.cache/rserpool-lab}/lab.env" 2>/dev/null || true
rootfs=${LAB_CACHE:-$HOME/.cache/rserpool-lab}/rootfs
for lib in $(ldd "$perf" | awk '$3 ~ /^\// { print $3 }'); do
  base=$(basename "$lib")
  [[ -e $rootfs/lib/x86_64-linux-gnu/$base || -e $rootfs/usr/lib/x86_64-linux-gnu/$base ]] ||
    cp -L "$lib" "$dest/lib/"
done
rm -rf "$project/target-lab/profile" && mkdir -p "$project/target-lab/profile"
"$lab/vm-run.sh" -s "$project/.." -t "${LAB_TIMEOUT:-1800}" -- \
  "PROFILE_POINTS=$(q "${PROFILE_POINTS:-}") PERF=/host/$name/target-lab/perf \
   bash /host/$name/lab/guest-profile.sh $bin /host/$name/target-lab/profile"
