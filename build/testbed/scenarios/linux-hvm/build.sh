#!/usr/bin/env bash
# Runs on the host before the test bed boots: vtpmd (the project's TPM 2.0 engine as a
# daemon speaking swtpm's protocol) as a static binary for dom0, Debian's kernel (bzImage:
# an HVM guest boots it through SeaBIOS) and a guest initramfs with tpm2-tools.
set -euo pipefail
top=$(cd ../../../.. && pwd)
[ -f "$top/cmd/vtpmd/main.go" ] || { echo "build.sh: no cmd/vtpmd under $top" >&2; exit 1; }
(cd "$top" && CGO_ENABLED=0 GOOS=linux GOARCH=amd64 go build -trimpath -ldflags "-s -w" \
	-o "$TESTBED_STAGE/vtpmd" ./cmd/vtpmd)
for f in /usr/bin/tpm2 /usr/lib/x86_64-linux-gnu/libtss2-tcti-device.so.0; do
	[ -e "$f" ] || { echo "build.sh: $f missing: run build/testbed/host-deps.sh tpm2-tools" >&2; exit 1; }
done
cp "$TESTBED_KERNEL" "$TESTBED_STAGE/vmlinuz"
"$TESTBED_PREPARE" guest-initramfs --init guest-init --out "$TESTBED_STAGE/guest.cpio" --gzip \
	--bin /usr/bin/tpm2_getrandom --bin /usr/bin/tpm2_pcrread --bin /usr/bin/tpm2_eventlog \
	--bin /usr/lib/x86_64-linux-gnu/libtss2-tcti-device.so.0
# The firmware the guest boots with: SeaBIOS (run.sh --hvm 1) or OVMF (--hvm ovmf).
firmware=seabios
[ "${TESTBED_HVM:-1}" != ovmf ] || firmware=ovmf
echo "$firmware" >"$TESTBED_STAGE/firmware"
