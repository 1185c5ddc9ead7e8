#!/usr/bin/env bash
# Runs on the host before the test bed boots: builds the vTPM domain image and
# a Linux guest (Debian's kernel, its xen-tpmfront module, busybox and
# tpm2-tools with the device TCTI it dlopens) into the files dom0 sees
# under /test.
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
make -s -C "$top" OUT="$TESTBED_STAGE" "$TESTBED_STAGE/vtpmdomain"
for f in /usr/bin/tpm2 /usr/lib/x86_64-linux-gnu/libtss2-tcti-device.so.0; do
	[ -e "$f" ] || { echo "build.sh: $f missing: run build/testbed/host-deps.sh tpm2-tools" >&2; exit 1; }
done
cp "$TESTBED_VMLINUX" "$TESTBED_STAGE/vmlinux"
tools=()
for t in getrandom pcrextend pcrread createprimary create load sign verifysignature \
	quote checkquote readpublic flushcontext startup; do
	tools+=(--bin "/usr/bin/tpm2_$t")
done
"$TESTBED_PREPARE" guest-initramfs --init "$(dirname "$0")/guest-init" --out "$TESTBED_STAGE/guest.cpio" --gzip \
	--module xen-tpmfront "${tools[@]}" \
	--bin /usr/lib/x86_64-linux-gnu/libtss2-tcti-device.so.0
