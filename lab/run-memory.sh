#!/usr/bin/env bash
# run-memory.sh: builds registrar and loadgen here, then runs lab/guest-memory.sh in the lab VM:
# the resident memory per PE of RSPLIB's rspregistrar and of ours (kernel backend on 1 and 2
# workers, userspace backend), each filled with the same N PEs that stay, in one boot.
# Knobs (see lab/guest-memory.sh): MEM_PES (default "20000"), MEM_WHO, MEM_HOLD_S, MEM_RAMP_US;
# LAB_MEM_MIB
# (guest memory, default 4096), LAB_TIMEOUT (seconds, default 1800).
# Results: target-lab/memory/memory.txt, one line per registrar and size.
set -euo pipefail
project=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
lab=${LAB_DIR:-$project/../shared/lab}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$project/target}
case $CARGO_TARGET_DIR in
  "$project"/*) ;;
  *) echo "run-memory: CARGO_TARGET_DIR must be inside $project (the VM shares it)" >&2; exit 2 ;;
esac
(cd "$project" && cargo build --release -p registrar -p loadgen)
bash "$lab/build-image.sh"
name=$(basename "$project")
bin=/host/$name/${CARGO_TARGET_DIR#"$project"/}/release
rm -rf "$project/target-lab/memory" && mkdir -p "$project/target-lab/memory"
q() { printf '%q' "$(printf '%s' "$1" | tr '\n' ' ')"; }
"$lab/vm-run.sh" -s "$project/.." -m "${LAB_MEM_MIB:-4096}" -t "${LAB_TIMEOUT:-1800}" -- \
  "MEM_PES=$(q "${MEM_PES:-20000}") MEM_WHO=$(q "${MEM_WHO:-rsplib ours ours-2w ours-userspace}") \
   MEM_HOLD_S=${MEM_HOLD_S:-20} MEM_RAMP_US=${MEM_RAMP_US:-4000} bash /host/$name/lab/guest-memory.sh $bin /host/$name/target-lab/memory"
