#!/usr/bin/env bash
# Builds what ../testbed-persist builds and takes its guest, vTPM and test;
# the manager's config (mgr.cfg, with the TPM 1.2 owner's secrets) and the
# TPM 1.2 vTPM part run before the test's last step are this scenario's own.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
bash "$here/../testbed-persist/build.sh"
cp "$here/../testbed-persist/guest.cfg" "$here/../testbed-persist/vtpm.cfg" "$TESTBED_STAGE/"
cp "$here/../testbed-persist/dom0-test.sh" "$TESTBED_STAGE/persist-dom0-test.sh"

# The TPM 1.2 part (tpm12-dom0.sh): a tpm=1.2 vTPM domain under the same
# manager, its guest with TrouSerS' tcsd and tpm-tools (from the host's
# trousers and tpm-tools packages) and a PV disk for what must outlive it,
# the dom0 command that measures the guest's boot as pv-grub did, and the
# PCRs 4 and 5 that measurement must give, computed here with Python's
# hashlib (not the project's code).
# dom0's root file system (RAM, half of dom0's memory; scenario.conf
# raises it) holds everything under /test and what the test writes: the
# blank disks are made (sparse) in dom0, and the command (xenvtpm.gz, from
# ../testbed-persist/build.sh) goes compressed.
tools=()
for t in /usr/sbin/tcsd /usr/sbin/tpm_version /usr/sbin/tpm_takeownership /usr/sbin/tpm_getpubek \
	/usr/bin/tpm_sealdata /usr/bin/tpm_unsealdata /usr/sbin/tpm_nvdefine /usr/sbin/tpm_nvwrite \
	/usr/sbin/tpm_nvread /usr/sbin/tpm_nvinfo; do
	[ -e "$t" ] || { echo "build.sh: $t missing: run build/testbed/host-deps.sh trousers tpm-tools" >&2; exit 1; }
	tools+=(--bin "$t")
done
# tcsd needs libgcc_s.so.1: glibc loads it when a thread exits. The
# guest's xenvtpm asks for a deep quote (TPM_ORD_DeepQuote), its openssl
# checks the EK certificate.
guestbin=$(mktemp -d)
trap 'rm -rf "$guestbin"' EXIT
gunzip -c "$TESTBED_STAGE/xenvtpm.gz" >"$guestbin/xenvtpm"
chmod 755 "$guestbin/xenvtpm"
"$TESTBED_PREPARE" guest-initramfs --init "$here/guest12-init" --out "$TESTBED_STAGE/guest12.cpio" --gzip \
	--module xen-tpmfront --module xen-blkfront "${tools[@]}" --bin /usr/lib/x86_64-linux-gnu/libgcc_s.so.1 \
	--bin /usr/bin/openssl --file "$guestbin/xenvtpm:/usr/bin/xenvtpm"
cp "$here/vtpm12.cfg" "$here/guest12.cfg" "$here/tpm12-dom0.sh" "$TESTBED_STAGE/"
python3 - "$TESTBED_STAGE" "$here/guest12.cfg" <<'PY'
import hashlib, os, re, sys
stage, cfg = sys.argv[1], open(sys.argv[2]).read()
def setting(key):
    return re.search(r'^%s\s*=\s*"([^"]*)"' % key, cfg, re.M).group(1)
data = lambda key: open(os.path.join(stage, os.path.basename(setting(key))), 'rb').read()
h = hashlib.sha1
with open(os.path.join(stage, 'guest12.expected'), 'w') as out:
    for pcr, parts in ((4, [data('kernel')]), (5, [setting('extra').encode(), data('ramdisk')])):
        v = bytes(20)
        for p in parts:
            v = h(v + h(p).digest()).digest()
        out.write('PCR12 %d %s\n' % (pcr, v.hex()))
PY
