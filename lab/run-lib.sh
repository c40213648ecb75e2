# run-lib.sh - what the host-side lab wrappers (run-bench.sh, run-profile.sh, run-memory.sh)
# share. Source it with the caller's name; it sets `project`, `lab`, `name` (the project's
# folder as the VM sees it under /host) and `bin` (the release binaries inside the VM), checks
# that CARGO_TARGET_DIR lies inside the project (the VM shares only the project's parent),
# and `lab_build` builds registrar and loadgen and the VM image.
#   . "$(dirname "${BASH_SOURCE[0]}")/run-lib.sh" run-bench
set -euo pipefail
caller=$1
project=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
lab=${LAB_DIR:-$project/../shared/lab}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$project/target}
case $CARGO_TARGET_DIR in
  "$project"/*) ;;
  *) echo "$caller: CARGO_TARGET_DIR must be inside $project (the VM shares it)" >&2; exit 2 ;;
esac
name=$(basename "$project")
bin=/host/$name/${CARGO_TARGET_DIR#"$project"/}/release
# Points and knobs travel into the VM as one quoted word each; a newline-separated list
# becomes spaces.
q() { printf '%q' "$(printf '%s' "$1" | tr '\n' ' ')"; }
lab_build() {
  (cd "$project" && cargo build --release -p registrar -p loadgen)
  bash "$lab/build-image.sh"
}
