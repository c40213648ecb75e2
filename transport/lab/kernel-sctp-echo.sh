#!/usr/bin/env bash
# kernel-sctp-echo.sh: build the sctp_echo example here, then run it in the lab VM (which has
# kernel SCTP; our hosts do not) against itself: the kernel backend as client and server, with a
# single-address and a multi-address (sctp_bindx) server. Ends with "N passed, M failed".
#
# Usage: transport/lab/kernel-sctp-echo.sh        (from anywhere; needs ../shared/lab built)
# Env:   LAB_DIR (default <project>/../shared/lab), CARGO_TARGET_DIR (default target-transport)
set -euo pipefail
project=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
lab=${LAB_DIR:-$project/../shared/lab}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$project/target-transport}
case $CARGO_TARGET_DIR in
  "$project"/*) ;;
  *) echo "kernel-sctp-echo: CARGO_TARGET_DIR must be inside $project (the VM shares it)" >&2; exit 2 ;;
esac
(cd "$project" && cargo build --release -p transport --example sctp_echo)
guest_project=/host/$(basename "$project")
guest_bin=$guest_project/${CARGO_TARGET_DIR#"$project"/}/release/examples/sctp_echo
"$lab/vm-run.sh" -s "$project/.." -t "${LAB_TIMEOUT:-600}" -- \
  "bash $guest_project/transport/tests/lab/guest-kernel-echo.sh $guest_bin"
