#!/usr/bin/env bash
# run-profile.sh: where each microsecond goes (issue 14), inside the lab VM. Builds registrar and
# loadgen here, copies this host's perf (Debian's linux-perf, the guest's kernel series) and the
# libraries the guest lacks into target-lab/perf/ (made here, never committed), then runs
# lab/guest-profile.sh: our registrar on each backend under loadgen's kernel-SCTP clients at
# each PROFILE_POINTS point (guest-bench.sh's syntax; default resolutions 1x1 and 16x8 and
# churn 1x1), sampled by `perf record -e cpu-clock` for the measured seconds, with RSPLIB's
# rspregistrar profiled the same way for comparison. Reports: target-lab/profile/*.txt
# (perf report by DSO and by symbol). Needs perf on this host (apt install linux-perf).
set -euo pipefail
project=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
lab=${LAB_DIR:-$project/../shared/lab}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$project/target}
case $CARGO_TARGET_DIR in
  "$project"/*) ;;
  *) echo "run-profile: CARGO_TARGET_DIR must be inside $project (the VM shares it)" >&2; exit 2 ;;
esac
perf=$(command -v perf) || { echo "run-profile: no perf on this host (apt install linux-perf)" >&2; exit 2; }
(cd "$project" && cargo build --release -p registrar -p loadgen)
bash "$lab/build-image.sh"
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
name=$(basename "$project")
bin=/host/$name/${CARGO_TARGET_DIR#"$project"/}/release
rm -rf "$project/target-lab/profile" && mkdir -p "$project/target-lab/profile"
q() { printf '%q' "$(printf '%s' "$1" | tr '\n' ' ')"; }
"$lab/vm-run.sh" -s "$project/.." -t "${LAB_TIMEOUT:-1800}" -- \
  "PROFILE_POINTS=$(q "${PROFILE_POINTS:-}") PERF=/host/$name/target-lab/perf \
   bash /host/$name/lab/guest-profile.sh $bin /host/$name/target-lab/profile"
