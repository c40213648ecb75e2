#!/usr/bin/env bash
# Fuzzes each target (codec decoders, handlespace operation sequences) for a bounded time:
# fuzz/run.sh SECONDS (default 30).
#
# The toolchain here is stable; cargo-fuzz wants nightly for sanitizer flags, so we run it with
# RUSTC_BOOTSTRAP=1 and --sanitizer none (libFuzzer's coverage guidance still works; only
# ASan is off, which safe Rust does not need). Findings go to fuzz/artifacts/<target>/.
set -euo pipefail
seconds="${1:-30}"
here="$(cd "$(dirname "$0")" && pwd)"
cd "$here"
if ! command -v cargo-fuzz >/dev/null 2>&1; then
    echo "cargo-fuzz is missing: cargo install cargo-fuzz --locked" >&2
    exit 1
fi
export RUSTC_BOOTSTRAP=1
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$here/../target-fuzz}"
for target in asap_message enrp_message parameter handlespace_ops; do
    # A scratch corpus keeps the committed seeds small: new inputs land in target-fuzz.
    scratch="$CARGO_TARGET_DIR/corpus/$target"
    mkdir -p "$scratch"
    echo "== fuzzing $target for ${seconds}s"
    cargo fuzz run --sanitizer none --release "$target" "$scratch" "corpus/$target" -- \
        -max_total_time="$seconds" -max_len=4096 -print_final_stats=1
done
