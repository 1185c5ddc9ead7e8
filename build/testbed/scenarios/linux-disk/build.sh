#!/usr/bin/env bash
# Runs on the host before the test bed boots: the guest kernel, and a busybox initramfs
# with the PV block frontend module, into the files dom0 will see under /test.
set -euo pipefail
cp "$TESTBED_VMLINUX" "$TESTBED_STAGE/vmlinux"
"$TESTBED_PREPARE" guest-initramfs --init guest-init --out "$TESTBED_STAGE/guest.cpio" \
	--module xen-blkfront
