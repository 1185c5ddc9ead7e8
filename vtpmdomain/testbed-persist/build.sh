#!/usr/bin/env bash
# Runs on the host before the test bed boots: builds the manager and vTPM
# domain images, blank 4 MiB disks for both (the manager formats its own on
# first start; a blank vTPM disk is a new vTPM; dom0 runs from RAM, so they
# are kept small), and the Linux guest (Debian's kernel, xen-tpmfront,
# busybox, the tpm2-tools and openssl it runs, xenvtpm), and dom0's xenvtpm.
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
make -s -C "$top" OUT="$TESTBED_STAGE" "$TESTBED_STAGE/mgrdomain" "$TESTBED_STAGE/vtpmdomain"
for f in /usr/bin/tpm2 /usr/lib/x86_64-linux-gnu/libtss2-tcti-device.so.0; do
	[ -e "$f" ] || { echo "build.sh: $f missing: run build/testbed/host-deps.sh tpm2-tools" >&2; exit 1; }
done
# xenvtpm: dom0's fetches the group's EK CA and attestation key and
# verifies the guest's evidence; the guest's asks its vTPM for deep quotes.
(cd "$top" && CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o "$TESTBED_STAGE/xenvtpm" ./cmd/xenvtpm)
guestbin=$(mktemp -d)
trap 'rm -rf "$guestbin"' EXIT
mv "$TESTBED_STAGE/xenvtpm" "$guestbin/xenvtpm"
gzip -9c "$guestbin/xenvtpm" >"$TESTBED_STAGE/xenvtpm.gz"
rm -f "$TESTBED_STAGE/mgr.img" "$TESTBED_STAGE/vtpm.img"
truncate -s 4M "$TESTBED_STAGE/mgr.img"
truncate -s 4M "$TESTBED_STAGE/vtpm.img"
cp "$TESTBED_VMLINUX" "$TESTBED_STAGE/vmlinux"
tools=()
for t in nvdefine nvwrite nvread createprimary evictcontrol getcap readpublic pcrextend pcrread getekcertificate createek; do
	tools+=(--bin "/usr/bin/tpm2_$t")
done
"$TESTBED_PREPARE" guest-initramfs --init "$(dirname "$0")/guest-init" --out "$TESTBED_STAGE/guest.cpio" --gzip \
	--module xen-tpmfront "${tools[@]}" \
	--bin /usr/lib/x86_64-linux-gnu/libtss2-tcti-device.so.0 --bin /usr/bin/openssl --file "$guestbin/xenvtpm:/usr/bin/xenvtpm"
