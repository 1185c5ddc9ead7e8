#!/usr/bin/env bash
# Runs on the host before the test bed boots: the manager and vTPM domain
# images and their blank disks, the dom0 command, and one Linux initramfs
# for both guests (HVM through QEMU's TIS, PVH through xen-tpmfront):
# busybox, tpm2-tools and their TCTI, the kernel's xen-tpmfront module,
# guestbench (latency) and imacheck (IMA's PCR 10).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../../.." && pwd)
make -s -C "$top" OUT="$TESTBED_STAGE" "$TESTBED_STAGE/mgrdomain" "$TESTBED_STAGE/vtpmdomain"
for p in cmd/xenvtpm build/hostilefront/guestbench build/imacheck; do
	(cd "$top" && CGO_ENABLED=0 go build -trimpath -o "$TESTBED_STAGE/$(basename "$p")" "./$p")
done
for f in /usr/bin/tpm2 /usr/lib/x86_64-linux-gnu/libtss2-tcti-device.so.0; do
	[ -e "$f" ] || { echo "build.sh: $f missing: run build/testbed/host-deps.sh tpm2-tools" >&2; exit 1; }
done
rm -f "$TESTBED_STAGE/mgr.img" "$TESTBED_STAGE/vtpm.img"
truncate -s 4M "$TESTBED_STAGE/mgr.img"
truncate -s 4M "$TESTBED_STAGE/vtpm.img"
cp "$TESTBED_KERNEL" "$TESTBED_STAGE/vmlinuz"
cp "$TESTBED_VMLINUX" "$TESTBED_STAGE/vmlinux"
tools=()
for t in getrandom pcrextend pcrread createprimary create load sign verifysignature quote checkquote \
	readpublic flushcontext evictcontrol nvdefine nvwrite nvread nvreadpublic startup; do
	tools+=(--bin "/usr/bin/tpm2_$t")
done
"$TESTBED_PREPARE" guest-initramfs --init "$here/guest-init" --out "$TESTBED_STAGE/guest.cpio" --gzip \
	--module xen-tpmfront "${tools[@]}" \
	--bin /usr/lib/x86_64-linux-gnu/libtss2-tcti-device.so.0 \
	--file "$TESTBED_STAGE/guestbench:/bin/guestbench" --file "$TESTBED_STAGE/imacheck:/bin/imacheck"
rm "$TESTBED_STAGE/guestbench" "$TESTBED_STAGE/imacheck"
