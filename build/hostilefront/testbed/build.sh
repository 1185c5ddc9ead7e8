#!/usr/bin/env bash
# Runs on the host before the test bed boots: builds the vTPM domain and the
# hostile frontend images, takes vtpm1.cfg from vtpmdomain/testbed, and
# builds the well-behaved Linux guest (Debian's kernel, xen-tpmfront and the
# static guestbench client) into the files dom0 sees under /test.
set -euo pipefail
top=$(cd "$(dirname "$0")/../../.." && pwd)
make -s -C "$top" OUT="$TESTBED_STAGE" "$TESTBED_STAGE/vtpmdomain" "$TESTBED_STAGE/hostilefront"
cp "$top/vtpmdomain/testbed/vtpm1.cfg" "$TESTBED_STAGE/vtpm1.cfg"
(cd "$top" && CGO_ENABLED=0 go build -trimpath -o "$TESTBED_STAGE/guestbench" ./build/hostilefront/guestbench)
cp "$TESTBED_VMLINUX" "$TESTBED_STAGE/vmlinux"
"$TESTBED_PREPARE" guest-initramfs --init "$(dirname "$0")/guest-init" --out "$TESTBED_STAGE/guest.cpio" --gzip \
	--module xen-tpmfront --file "$TESTBED_STAGE/guestbench:/bin/guestbench"
rm "$TESTBED_STAGE/guestbench"
