#!/usr/bin/env bash
# run-memory.sh: builds registrar and loadgen here, then runs lab/guest-memory.sh in the lab VM:
# the resident memory per PE of RSPLIB's rspregistrar and of ours (kernel backend on 1 and 2
# workers, userspace backend), each filled with the same N PEs that stay, in one boot.
# Knobs (see lab/guest-memory.sh): MEM_PES (default "20000"), MEM_WHO, MEM_HOLD_S, MEM_RAMP_US,
# MEM_PER_ASSOC (PEs sharing an association, default 1), MEM_KEEPALIVE_MS (default 300000);
# LAB_MEM_MIB (guest memory, default 4096), LAB_TIMEOUT (seconds, default 1800).
# Results: target-lab/memory/memory.txt, one line per registrar and size.
# shellcheck source=run-lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/run-lib.sh" run-memory
lab_build
rm -rf "$project/target-lab/memory" && mkdir -p "$project/target-lab/memory"
"$lab/vm-run.sh" -s "$project/.." -m "${LAB_MEM_MIB:-4096}" -t "${LAB_TIMEOUT:-1800}" -- \
  "MEM_PES=$(q "${MEM_PES:-20000}") MEM_WHO=$(q "${MEM_WHO:-rsplib ours ours-2w ours-userspace}") \
   MEM_HOLD_S=${MEM_HOLD_S:-20} MEM_RAMP_US=${MEM_RAMP_US:-4000} MEM_PER_ASSOC=${MEM_PER_ASSOC:-1} MEM_KEEPALIVE_MS=${MEM_KEEPALIVE_MS:-300000} bash /host/$name/lab/guest-memory.sh $bin /host/$name/target-lab/memory"
