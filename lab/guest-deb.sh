#!/bin/bash
# guest-deb.sh DEB [DEBS_DIR] - runs INSIDE the lab VM (a clean Debian 12 image): installs our
# package with dpkg -i, then checks what an operator would: the binaries run from the PATH, the
# man page opens with man (man-db is not in the image: DEBS_DIR holds it and its dependencies,
# downloaded on the host by lab/run-interop.sh), the unit and the conffile are in place, and the
# package removes cleanly. Ends with 'N passed, M failed'.
set -u
DEB=$1
DEBS=${2:-}
OUT=$(mktemp -d)
TAG=deb
# shellcheck source=guest-lib.sh
source "$(dirname "$0")/guest-lib.sh"
check "dpkg -i installs the package" bash -c "dpkg -i '$DEB' >'$OUT/dpkg.log' 2>&1 || { cat '$OUT/dpkg.log'; false; }"
check "registrar --version runs from the PATH" bash -c "registrar --version | tee '$OUT/version' | grep -q '^registrar '"
say "$(cat "$OUT/version" 2>/dev/null)"
check "rserpool --help runs from the PATH" bash -c "rserpool --help >/dev/null"
check "loadgen --help runs from the PATH" bash -c "loadgen --help >/dev/null"
check "the default configuration is valid" registrar --check-config --config /etc/rserpool/registrar.toml
check "the systemd unit is installed" bash -c "ls /lib/systemd/system/registrar.service /usr/lib/systemd/system/registrar.service 2>/dev/null | grep -q ."
if [ -n "$DEBS" ] && ls "$DEBS"/*.deb >/dev/null 2>&1; then
  dpkg -i "$DEBS"/*.deb >"$OUT/man-db.log" 2>&1 || say "man-db install: $(tail -3 "$OUT/man-db.log")"
fi
check "man registrar shows the page" bash -c "MANPAGER=cat man registrar 2>&1 | grep -q -- '--enrp-multicast'"
check "dpkg -r removes it and leaves the conffile" bash -c "dpkg -r rserpool >/dev/null 2>&1 && ! command -v registrar && test -f /etc/rserpool/registrar.toml"
check "dpkg --purge removes the conffile" bash -c "dpkg --purge rserpool >/dev/null 2>&1 && ! test -e /etc/rserpool/registrar.toml"
finish
