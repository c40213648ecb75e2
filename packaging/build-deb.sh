#!/usr/bin/env bash
# build-deb.sh - builds target/debian/rserpool_<version>_<arch>.deb (packaging/README.md).
# Installs cargo-deb with `cargo install --locked` when it is missing. Prints the path.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v cargo-deb >/dev/null || cargo install cargo-deb --locked >&2
cargo build --release -p registrar -p asap -p loadgen >&2
assets=target/release/deb-assets
rm -rf "$assets" && mkdir -p "$assets"
# Generated from the binary itself, so that they never drift from the flags and defaults.
target/release/registrar --generate-docs "$assets"
gzip -9n "$assets/registrar.1"
{
  echo "# /etc/rserpool/registrar.toml - the registrar's configuration (every field and its"
  echo "# meaning: man registrar, and registrar/src/config.rs). These are the defaults: the"
  echo "# registrar listens on loopback only until you change udp_encapsulation (userspace"
  echo "# backend) or kernel_addresses. Check a change with: registrar --check-config --config FILE"
  target/release/registrar --print-config
} >"$assets/registrar.toml"
target/release/registrar --check-config --config "$assets/registrar.toml" >&2
cargo deb -p registrar --no-build --no-strip --output target/debian/ >&2
ls -t target/debian/rserpool_*.deb | head -1
