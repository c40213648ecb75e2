#!/usr/bin/env bash
# faults/run.sh [--short|--all] - runs fault-lab scenarios (faults/lab.sh) one after another and
# ends with 'N passed, M failed'; exit 0 only if every scenario met its expectation.
# --short (CI, ~4 minutes): kill -9 of a PE, the same judged against an impossible bound (must
# fail: the checker bites), kill -9 and restart of a registrar, a PE stopped (SIGSTOP), and
# reordering with duplication through the NFQUEUE shim (needs iptables), after the shim's own
# check (faults/faultq-check.sh, needs ping).
# --all (default): the shim check and every faults/scenarios/*.scn (~18 minutes).
set -u
# Read whole before it runs (a brace group): editing the script during a run cannot change it.
{
cd "$(dirname "$0")/.."
MODE=${1:---all}
BIN=${BIN_DIR:-target/release}
if [ ! -x "$BIN/registrar" ] || [ ! -x "$BIN/faultlab" ] || [ ! -x "$BIN/faultcheck" ] || [ ! -x "$BIN/faultq" ]; then
  cargo build --release -p registrar -p faults >/dev/null 2>&1 || { echo "build failed"; exit 2; }
fi
case $MODE in
  --short) scenarios=(kill-pe kill-pe-tight-bound kill-registrar pe-sigstop reorder-duplicate) ;;
  --all) scenarios=(); for f in faults/scenarios/*.scn; do scenarios+=("$(basename "$f" .scn)"); done ;;
  *) echo "usage: faults/run.sh [--short|--all]"; exit 2 ;;
esac
PASS=0 FAIL=0 FAILED=()
# The shim on its own first: the scenarios that use it rely on it.
if timeout 120 faults/faultq-check.sh; then PASS=$((PASS + 1)); else FAIL=$((FAIL + 1)); FAILED+=(faultq-check); fi
for s in "${scenarios[@]}"; do
  if timeout 300 faults/lab.sh "faults/scenarios/$s.scn"; then PASS=$((PASS + 1))
  else FAIL=$((FAIL + 1)); FAILED+=("$s"); fi
done
((FAIL)) && echo "failed: ${FAILED[*]} (histories and logs under target/faults/)"
echo "$PASS passed, $FAIL failed"
[ "$FAIL" = 0 ]
exit
}
