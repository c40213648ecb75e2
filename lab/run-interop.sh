#!/usr/bin/env bash
# run-interop.sh: builds the registrar here, then runs it in the lab VM (kernel SCTP, RSPLIB
# 3.4.4) against RSPLIB's rspserver and rspterminal (kernel SCTP backend), then on its own SCTP
# in UDP with 2 workers against 4 rspserver PEs (lab/guest-steering.sh: associations spread
# over the cores by SCTP tag), then ENRP between ours and RSPLIB's rspregistrar
# (lab/guest-enrp-interop.sh), and mixed deployments of ours on the kernel backend and RSPLIB's
# (lab/guest-enrp-mixed.sh: multicast discovery, table download times, three-registrar
# takeovers), our `rserpool` SCTP PE and terminal on the kernel backend with RSPLIB's
# rspterminal and rspserver, with the ASAP control channel (lab/guest-sctp-interop.sh), and
# our Debian package installed with dpkg -i (lab/guest-deb.sh), and ours on the kernel backend
# with 2 workers serving RSPLIB PEs, rspterminal and loadgen's kernel-SCTP clients
# (lab/guest-kernel-workers.sh). Builds the lab image first if needed (its
# cache lives outside the repo, in $LAB_CACHE or ~/.cache/rserpool-lab).
# Ends with the guest's 'N passed, M failed'. Output: target-lab/interop/.
set -euo pipefail
project=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
lab=${LAB_DIR:-$project/../shared/lab}
export CARGO_TARGET_DIR=$project/target
(cd "$project" && cargo build --release -p registrar -p asap -p loadgen)
# The Debian package, and man-db (not in the image) for its man page check in the guest.
deb=$(bash "$project/packaging/build-deb.sh")
mkdir -p "$project/target-lab/debs" && rm -f "$project/target-lab/debs"/*.deb
(cd "$project/target-lab/debs" &&
  apt-get download man-db groff-base libpipeline1 libgdbm6 libuchardet0 >/dev/null 2>&1) ||
  echo "run-interop: could not download man-db; the guest's man check will fail"
deb_in_guest=/host/$(basename "$project")/${deb#"$project"/}
bash "$lab/build-image.sh"
name=$(basename "$project")
mkdir -p "$project/target-lab/interop" "$project/target-lab/enrp" "$project/target-lab/enrp-mixed" \
  "$project/target-lab/sctp" "$project/target-lab/kernel-workers"
"$lab/vm-run.sh" -s "$project/.." -t "${LAB_TIMEOUT:-900}" -- \
  "bash /host/$name/lab/guest-rsplib-interop.sh /host/$name/target/release/registrar /host/$name/target-lab/interop; a=\$?;
   bash /host/$name/lab/guest-steering.sh /host/$name/target/release/registrar /host/$name/target-lab/steering; b=\$?;
   bash /host/$name/lab/guest-enrp-interop.sh /host/$name/target/release/registrar /host/$name/target/release/rserpool /host/$name/target-lab/enrp; c=\$?;
   bash /host/$name/lab/guest-enrp-mixed.sh /host/$name/target/release /host/$name/target-lab/enrp-mixed; d=\$?;
   bash /host/$name/lab/guest-sctp-interop.sh /host/$name/target/release/rserpool /host/$name/target-lab/sctp; f=\$?;
   bash /host/$name/lab/guest-deb.sh $deb_in_guest /host/$name/target-lab/debs; e=\$?;
   bash /host/$name/lab/guest-kernel-workers.sh /host/$name/target/release /host/$name/target-lab/kernel-workers; g=\$?;
   [ \$a = 0 ] && [ \$b = 0 ] && [ \$c = 0 ] && [ \$d = 0 ] && [ \$e = 0 ] && [ \$f = 0 ] && [ \$g = 0 ]"
