#!/usr/bin/env bash
# Runs on the host before the test bed boots: builds the manager and vTPM
# domain images, blank 4 MiB disks for the manager and both vTPMs (dom0
# runs from RAM), and the guests' initramfs (Debian's kernel, xen-tpmfront
# and the static nvclient).
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
make -s -C "$top" OUT="$TESTBED_STAGE" "$TESTBED_STAGE/mgrdomain" "$TESTBED_STAGE/vtpmdomain"
for d in mgr vtpm-good vtpm-bad; do
	rm -f "$TESTBED_STAGE/$d.img"
	truncate -s 4M "$TESTBED_STAGE/$d.img"
done
# The client's source came along with the scenario directory: dom0 needs
# only the binary, in the guests' initramfs.
rm -rf "$TESTBED_STAGE/nvclient"
(cd "$top" && CGO_ENABLED=0 go build -trimpath -o "$TESTBED_STAGE/nvclient" ./vtpmdomain/testbed-nvwear/nvclient)
cp "$TESTBED_VMLINUX" "$TESTBED_STAGE/vmlinux"
"$TESTBED_PREPARE" guest-initramfs --init "$(dirname "$0")/guest-init" --out "$TESTBED_STAGE/guest.cpio" --gzip \
	--module xen-tpmfront --file "$TESTBED_STAGE/nvclient:/bin/nvclient"
rm "$TESTBED_STAGE/nvclient"
