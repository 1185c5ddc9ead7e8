#!/usr/bin/env bash
# Runs on the host before the test bed boots: the vTPM domain image, the
# dom0 command (a static Linux binary), a PVH Linux guest whose init reads
# PCRs 4 and 5, a second ramdisk that differs by one file, and the PCR
# values a measured boot of each must give, computed here with Python's
# hashlib (not the project's code).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../../.." && pwd)
make -s -C "$top" OUT="$TESTBED_STAGE" "$TESTBED_STAGE/vtpmdomain"
(cd "$top" && CGO_ENABLED=0 go build -trimpath -o "$TESTBED_STAGE/xenvtpm" ./cmd/xenvtpm)
[ -e /usr/bin/tpm2 ] || { echo "build.sh: tpm2-tools missing: run build/testbed/host-deps.sh tpm2-tools" >&2; exit 1; }
cp "$TESTBED_VMLINUX" "$TESTBED_STAGE/vmlinux"
args=(--init "$here/guest-init" --gzip --module xen-tpmfront
	--bin /usr/bin/tpm2_pcrread --bin /usr/bin/tpm2_nvdefine --bin /usr/bin/tpm2_nvreadpublic --bin /usr/bin/tpm2_nvundefine
	--bin /usr/lib/x86_64-linux-gnu/libtss2-tcti-device.so.0)
"$TESTBED_PREPARE" guest-initramfs "${args[@]}" --out "$TESTBED_STAGE/guest.cpio"
echo "the other ramdisk" >"$TESTBED_STAGE/marker"
"$TESTBED_PREPARE" guest-initramfs "${args[@]}" --file "$TESTBED_STAGE/marker:/marker" --out "$TESTBED_STAGE/guest-b.cpio"
rm "$TESTBED_STAGE/marker"

# expected CFG: the PCR values a measured boot of CFG gives (xl's command
# line: cmdline=, else extra=).
python3 - "$TESTBED_STAGE" "$here"/guest.cfg "$here"/guest-b.cfg "$here"/guest-up.cfg <<'PY'
import hashlib, os, re, sys
stage = sys.argv[1]
def setting(text, key):
    m = re.search(r'^%s\s*=\s*"([^"]*)"' % key, text, re.M)
    return m.group(1) if m else None
for cfg in sys.argv[2:]:
    text = open(cfg).read()
    files = lambda k: open(os.path.join(stage, os.path.basename(setting(text, k))), 'rb').read()
    kernel, ramdisk, cmdline = files('kernel'), files('ramdisk'), (setting(text, 'cmdline') or setting(text, 'extra')).encode()
    out = []
    for bank, h in (('sha1', hashlib.sha1), ('sha256', hashlib.sha256)):
        for pcr, parts in ((4, [kernel]), (5, [cmdline, ramdisk])):
            v = bytes(h().digest_size)
            for p in parts:
                v = h(v + h(p).digest()).digest()
            out.append('PCR %s %d %s' % (bank, pcr, v.hex()))
    name = os.path.splitext(os.path.basename(cfg))[0]
    open(os.path.join(stage, name + '.expected'), 'w').write('\n'.join(out) + '\n')
PY
