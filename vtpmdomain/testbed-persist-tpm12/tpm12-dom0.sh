# The TPM 1.2 personality end to end: a vTPM domain with tpm=1.2 (its own
# disk and uuid) under the manager that runs on TPM 1.2 hardware, a stock
# Linux guest through Debian's xen-tpmfront (which drives every vTPM as a
# TPM 1.2). dom0 measures the guest's boot as pv-grub did (xenvtpm measure:
# TPM_Extend of the kernel into PCR 4, command line and ramdisk into PCR
# 5); the guest (guest12-init) checks the driver's probe and sysfs files,
# the kernel's hwrng, PCRs 4 and 5, and runs TrouSerS' tcsd and tpm-tools:
# takes ownership, writes an NV index, seals data. The vTPM is destroyed
# and started again, then shut down with the manager restarted: owner, NV
# data and sealed data are still there, and the guest's deep quote
# (TPM_ORD_DeepQuote) verifies in dom0. Sourced from ../testbed-persist's
# test with its helpers, the manager up and no other vTPM running.

# dom0's root file system holds both parts (scenario.conf gives dom0 the
# memory for it): the TPM 2.0 guest boots again after this part, for the
# deep quote.
truncate -s 4M /tmp/vtpm12.img && truncate -s 1M /tmp/guest12.img || fail "cannot make the TPM 1.2 disks"
gunzip -c /test/xenvtpm.gz >/tmp/xenvtpm && chmod 755 /tmp/xenvtpm || fail "cannot unpack xenvtpm"
t12=$(now)

# start_vtpm12 TAG: start the TPM 1.2 vTPM domain; it must serve.
start_vtpm12() {
	t0=$(now)
	create vtpm12.cfg vtpm12 || fail "xl create vtpm12.cfg failed ($1)"
	wait_console vtpm12 'serving TPM|REFUSED' 240 || fail "TPM 1.2 vTPM ($1): neither serving nor refusing"
	v=$(console_log vtpm12)
	grep -q 'serving TPM 1.2' "$v" || fail "TPM 1.2 vTPM ($1) did not serve a TPM 1.2: $(grep -m1 -E 'serving|REFUSED' "$v")"
	grep -E 'vTPM|TPM 1.2|state|fresh|resumed' "$v" | grep -v 'grant mappings' | head -n 8
}

# guest12 TAG [STEP [ARGS]]: boot the TPM 1.2 guest (guest12.cfg's own
# command line, the measured one, without STEP; ARGS are more kernel
# parameters) and keep its marker lines in $g.
guest12() {
	if [ -n "$2" ]; then
		boot_guest guest12.cfg guest12 "GUEST-DONE" 300 "extra=\"console=hvc0 quiet step=$2 $3\"" || fail "TPM 1.2 guest ($1) did not finish"
	else
		boot_guest guest12.cfg guest12 "GUEST-DONE" 300 || fail "TPM 1.2 guest ($1) did not finish"
	fi
	ended guest12 s 60 || { xl destroy guest12; fail "TPM 1.2 guest ($1) did not power off"; }
	g=$(keep_log guest12 "$1")
	grep -E 'T12-|NV-|PCR12' "$g" | cut -c1-240
}

# t12_ok NAME: the guest's check NAME passed, else the guest's reason.
t12_ok() {
	grep -q "^T12-OK $1:" "$g" || fail "TPM 1.2 guest: $1: $(grep -m1 "^T12-FAIL $1:" "$g" | cut -c1-300)"
}

# seal_verdict: the data the first boot sealed (tpm_sealdata: a key made
# and loaded under the SRK, TPM_Seal under it) unseals in this boot, so
# the SRK and the key's parent chain persisted too.
seal_verdict() {
	t12_ok seal-roundtrip
	seal="sealed data unsealed"
}

# pcrs_reset TAG: PCRs 4 and 5 back at zero (a vTPM start resets them;
# nothing measured this boot).
pcrs_reset() {
	[ "$(grep -c '^PCR12 [45] 0000000000000000000000000000000000000000' "$g")" = 2 ] ||
		fail "TPM 1.2 guest ($1): PCRs 4 and 5 not reset by the vTPM's start: $(grep '^PCR12' "$g" | tr '\n' ' ')"
}

# ---- a new TPM 1.2 vTPM; dom0 measures the guest's boot into it ----
start_vtpm12 first
grep -q 'new vTPM' "$v" || fail "first start of a blank TPM 1.2 vTPM disk did not say it made a new TPM"
grep -q 'EK certificate (RSA-2048, TPM 1.2) from the manager' "$v" || fail "TPM 1.2 vTPM: no EK certificate from the manager: $(grep -m1 'EK certificate' "$v")"
log "FIGURE EK certificate (TPM 1.2) at the vTPM's first start: $(grep -m1 -o 'EK certificate (RSA-2048, TPM 1.2).*' "$v" | sed 's/.*stored in \([^)]*\)).*/\1/')"
t0=$(now)
/tmp/xenvtpm measure --vtpm vtpm12 guest12.cfg >/tmp/measure12.out 2>&1 || { cat /tmp/measure12.out; fail "xenvtpm measure (TPM 1.2) failed"; }
cat /tmp/measure12.out
grep -q 'measured the boot into vTPM domain vtpm12 (TPM 1.2)' /tmp/measure12.out || fail "xenvtpm measure did not see a TPM 1.2"
[ "$(grep -c '^PCR [45] sha1 ' /tmp/measure12.out)" = 3 ] || fail "xenvtpm measure did not make pv-grub's three SHA-1 extends"
log "FIGURE xenvtpm measure, TPM 1.2 (attach, reset, TPM_Startup, 3 TPM_Extends, detach): $(elapsed "$t0")s"
step "TPM 1.2 vTPM domain (tpm=1.2) created under the same manager; dom0 measured the guest's kernel into PCR 4, command line and ramdisk into PCR 5 (pv-grub's TPM_Extends)"

guest12 first
for c in probe sysfs-pcrs sysfs-caps sysfs-enabled sysfs-active sysfs-owned sysfs-pubek; do t12_ok $c; done
grep '^T12-OK probe:' "$g" | grep -q 'Manufacturer: 0x58565450' || fail "TPM 1.2 guest: caps do not name the manufacturer XVTP: $(grep -m1 '^T12-OK probe:' "$g")"
t12_ok hwrng
got=$(grep '^PCR12 ' "$g" | tr -d '\r' | sort)
[ "$got" = "$(sort /test/guest12.expected)" ] || { echo "$got"; cat /test/guest12.expected; fail "TPM 1.2 guest: PCRs 4 and 5 differ from the measured boot computed on the host"; }
step "Linux guest on the TPM 1.2 vTPM (Debian's xen-tpmfront): probed without TPM errors, pubek/pcrs/caps (manufacturer XVTP)/enabled/active/owned in sysfs, the kernel's hwrng reads the TPM, PCRs 4 and 5 equal pv-grub's measurements computed on the host"
log "IMA: $(grep -m1 '^T12-IMA' "$g" | cut -c1-200)"
t12_ok tpm_version
grep '^T12-OK tpm_version:' "$g" | grep -q 'Chip Version: 1\.2' && grep '^T12-OK tpm_version:' "$g" | grep -q 'TPM Vendor ID: XVTP' ||
	fail "tpm_version: $(grep -m1 'T12-.* tpm_version' "$g")"
for c in takeownership nvdefine nvwrite nvread nv-roundtrip; do t12_ok $c; done
written=$(sed -n 's/^NV-WRITTEN //p' "$g" | tr -d '\r')
grep -q "^T12-OWNED 0" "$g" || fail "the new TPM 1.2 was owned before the guest took ownership"
seal_verdict
step "TrouSerS' tcsd and tpm-tools in the guest: tpm_version (1.2, XVTP), tpm_takeownership -y -z, NV index written and read back ($written); $seal"

# ---- the vTPM destroyed and started again ----
xl destroy vtpm12
wait_gone vtpm12 30 || fail "TPM 1.2 vTPM not destroyed"
keep_log vtpm12 first >/dev/null
start_vtpm12 second
grep -q 'resumed' "$v" || fail "TPM 1.2 vTPM (second) did not resume its saved state"
$X group ca-cert 0 --manager mgr -o /tmp/ca.pem || fail "xenvtpm group ca-cert 0 failed"
guest12 check1 check "ca=$(sed '/-----/d' /tmp/ca.pem | tr -d '\n')"
grep -q "^T12-OWNED 1" "$g" || fail "TPM 1.2 vTPM restart: not owned any more"
pcrs_reset check1
for c in probe hwrng owner getpubek-owner nvread nv-roundtrip; do t12_ok $c; done
grep '^T12-OK getpubek-owner:' "$g" | grep -q 'Public Endorsement Key' || fail "tpm_getpubek -z (owner authorized) printed no key"
grep -q "^NV-READ $written" "$g" || fail "TPM 1.2 NV data after a vTPM restart: $(grep NV-READ "$g"), want $written"
seal_verdict
step "TPM 1.2 vTPM destroyed and started again: still owned (owner auth works), NV data read back, PCRs reset; $seal"

# The EK certificate the manager issued at the vTPM's first start, as the
# guest read it from TPM_NV_INDEX_EKCert after a restart: openssl in the
# guest accepted it against the group's exported CA and found the EK's
# modulus in it; dom0's verifier says it names a TPM 1.2.
for c in ekcert-read ekcert-framing ekcert-verify ekcert-key; do t12_ok $c; done
tr -d '\r' <"$g" | sed -n 's/^FILE ek12.der //p' | base64 -d >/tmp/ek12.der && [ -s /tmp/ek12.der ] || fail "the TPM 1.2 guest printed no EK certificate"
out=$($X verify ekcert /tmp/ek12.der --ca /tmp/ca.pem 2>&1) && echo "$out" | grep -q 'a TPM 1.2 (' || fail "xenvtpm verify ekcert (TPM 1.2): $out"
echo "$out"
step "TPM 1.2 EK certificate: tpm_nvread in the guest reads it from TPM_NV_INDEX_EKCert (PC Client framing), openssl verify accepts it against the group's exported CA, its key is the EK's (sysfs pubek); xenvtpm verify ekcert in dom0: VERIFIED, TPM 1.2"

# ---- the vTPM shut down and the manager restarted ----
xl shutdown vtpm12 || log "xl shutdown exited non-zero; judging by the domain"
ended vtpm12 s 60 || { xl destroy vtpm12; fail "TPM 1.2 vTPM did not power off on xl shutdown"; }
v=$(keep_log vtpm12 second)
grep 'powering off' "$v"
memory_figure "$v" "TPM 1.2 vTPM" "TPM 1.2 vTPM memory at its shutdown"
stop_mgr before-tpm12
start_mgr tpm12
start_vtpm12 third
grep -q 'resumed' "$v" || fail "TPM 1.2 vTPM (third) did not resume its saved state after a manager restart"
N12=$(head -c 20 /dev/urandom | xxd -p)
guest12 check2 check "nonce=$N12"
grep -q "^T12-OWNED 1" "$g" || fail "TPM 1.2 after a manager restart: not owned any more"
pcrs_reset check2
for c in probe owner getpubek-owner nvread nv-roundtrip; do t12_ok $c; done
grep -q "^NV-READ $written" "$g" || fail "TPM 1.2 NV data after a manager restart: $(grep NV-READ "$g"), want $written"
seal_verdict
step "TPM 1.2 vTPM shut down, manager restarted: still owned (owner auth works), NV data read back, PCRs reset; $seal"

# The same boot asked for a deep quote of its PCRs 4, 5 and 16 (SHA-1,
# all zero after the vTPM's start) with TPM_ORD_DeepQuote.
t12_ok deepquote
qfile
out=$($X group ak 0 --manager mgr -o /tmp/ak.pem 2>&1) || fail "xenvtpm group ak 0 failed: $out"
echo "$out"
# The hardware TPM 1.2 has the EK certificate swtpm_setup made
# (scenario.conf: --create-ek-cert): GROUP_AK read it from
# TPM_NV_INDEX_EKCert, and it certifies the EK the manager reports.
echo "$out" | grep -q 'the hardware EK has a certificate from .* for that EK' || fail "GROUP_AK on TPM 1.2: no hardware EK certificate: $out"
U12=$(sed -n 's/.*uuid=\([0-9a-f-]*\).*/\1/p' vtpm12.cfg | head -n 1)
Z=0000000000000000000000000000000000000000
vq tpm12 VERIFIED --nonce "$N12" --uuid "$U12" --vtpm-pcr "4:$Z" --vtpm-pcr "16:$Z"
vq tpm12-nonce nonce --nonce "$(head -c 20 /dev/urandom | xxd -p)" --uuid "$U12"
vq tpm12-uuid "vTPM UUID" --nonce "$N12" --uuid 76747069-7065-7273-6973-740000000002
vq tpm12-pcr "vTPM PCRs" --nonce "$N12" --vtpm-pcr "4:$(sed -n 's/^PCR12 4 //p' /test/guest12.expected)"
step "the hardware TPM 1.2's EK certificate (TPM_NV_INDEX_EKCert, read with the owner's authorization) came with the group's identity key and certifies the hardware EK; the TPM 1.2 guest's deep quote (TPM_ORD_DeepQuote: its 20-byte nonce, vTPM $U12, its SHA-1 PCRs 4, 5, 16) verified by xenvtpm verify in dom0; another nonce, another vTPM's UUID and the measured PCR 4 each named"
xl destroy vtpm12
wait_gone vtpm12 30 || fail "TPM 1.2 vTPM not destroyed at the end"
keep_log vtpm12 third >/dev/null
log "FIGURE TPM 1.2 part (3 vTPM starts, measure, 3 guest boots, a manager restart): $(elapsed "$t12")s"

# Smallest memory= in which a TPM 1.2 vTPM domain starts and serves (its
# state in memory: no disk, no manager), as ../testbed probes for TPM 2.0.
smallest_memory vtpm12.cfg vtpm12 'serving TPM 1.2' "12 13 14 15 16 18 20 24" 'disk=[ ]' 'vtpm=[ ]'
smallest=$SMALLEST
log "FIGURE smallest memory= in which a TPM 1.2 vTPM domain (tpm=1.2) starts serving: ${smallest:-more than 24} MiB"
# The README's figure: a change that needs more memory fails here.
[ -n "$smallest" ] && [ "$smallest" -le 14 ] ||
	fail "the TPM 1.2 vTPM domain needs ${smallest:-more than 24} MiB to start serving, more than the 14 the README gives"
