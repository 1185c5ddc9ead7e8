#!/usr/bin/env bash
# Runs on the host before the test bed boots: the guest kernel, and a busybox initramfs
# with tpm2-tools (and the TCTI it dlopens for /dev/tpm0), into dom0's /test.
set -euo pipefail
for f in /usr/bin/tpm2 /usr/lib/x86_64-linux-gnu/libtss2-tcti-device.so.0; do
	[ -e "$f" ] || { echo "build.sh: $f missing: run host-deps.sh tpm2-tools" >&2; exit 1; }
done
cp "$TESTBED_VMLINUX" "$TESTBED_STAGE/vmlinux"
"$TESTBED_PREPARE" guest-initramfs --init guest-init --out "$TESTBED_STAGE/guest.cpio" --gzip \
	--bin /usr/bin/tpm2_getrandom --bin /usr/bin/tpm2_pcrread \
	--bin /usr/lib/x86_64-linux-gnu/libtss2-tcti-device.so.0
