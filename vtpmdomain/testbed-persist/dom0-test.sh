# Persistence end to end: swtpm behind QEMU's TIS → manager domain (iomem,
# locality 2) → vTPM domain (its state on its own disk, the key with the
# manager) → stock Linux guest. The guest creates an NV index, a persistent
# key and extends a PCR; after the guest and the vTPM domain are destroyed
# and started again, NV data and key are there and the PCR is reset; the
# same after `xl shutdown` of the vTPM and a restart of the manager. A byte flipped in the vTPM's disk:
# the vTPM refuses to start, saying why, and touches nothing; `clear` then
# gives a fresh TPM. An older manager disk is refused as a rollback. The
# manager restarted under a running vTPM: state changes are refused at
# once until `xl vtpm-attach` joins the vTPM to the new manager.
# hwinitpcr= copies PCRs from the hardware TPM through the manager. (A
# changed sealing PCR is mgrdomain/testbed's, which extends one from dom0.)
# Each step shown ends in a `step` line, the story `make demo` prints.
# Sourced by dom0's init with testlib.sh loaded.

[ ! -e /dev/tpm0 ] || fail "dom0 took the TPM (initcall_blacklist=init_tis missing?)"
release_locality0
mv /test/mgr.img /tmp/mgr.img && mv /test/vtpm.img /tmp/vtpm.img || fail "cannot move the disks to /tmp"

# start_mgr TAG: start the manager and wait until it serves.
start_mgr() {
	create mgr.cfg mgr || fail "xl create mgr.cfg failed ($1)"
	wait_console mgr 'serving vTPM domains|cannot start' 240 || fail "manager ($1): neither serving nor refusing"
	grep -q 'serving vTPM domains' "$(console_log mgr)" || fail "manager ($1) refused: $(grep -m1 'cannot start' "$(console_log mgr)")"
}

# stop_mgr TAG: xl shutdown; the manager powers itself off.
stop_mgr() {
	xl shutdown mgr || log "xl shutdown exited non-zero; judging by the domain"
	ended mgr s 60 || { xl destroy mgr; fail "manager ($1) did not power off on xl shutdown"; }
	keep_log mgr "$1" >/dev/null
}

# start_vtpm TAG [EXTRA]: start the vTPM domain and wait until it serves or
# refuses; prints nothing, leaves the verdict to the caller.
start_vtpm() {
	t0=$(now)
	if [ -n "$2" ]; then
		create vtpm.cfg vtpm "extra=\"$2\"" || fail "xl create vtpm.cfg failed ($1)"
	else
		create vtpm.cfg vtpm || fail "xl create vtpm.cfg failed ($1)"
	fi
	wait_console vtpm 'serving TPM 2.0|REFUSED' 240 || fail "vTPM ($1): neither serving nor refusing"
	v=$(console_log vtpm)
	grep -E 'vTPM|state|manager|disk|REFUSED|fresh' "$v" | grep -v 'grant mappings'
}

serving() { grep -q 'serving TPM 2.0' "$(console_log vtpm)" || fail "vTPM ($1) did not serve: $(grep -m1 REFUSED "$(console_log vtpm)")"; }

stop_vtpm() {
	xl destroy vtpm
	wait_gone vtpm 30 || fail "vTPM ($1) not destroyed"
	keep_log vtpm "$1" >/dev/null
}

# shutdown_vtpm TAG: xl shutdown; the vTPM powers itself off.
shutdown_vtpm() {
	xl shutdown vtpm || log "xl shutdown exited non-zero; judging by the domain"
	ended vtpm s 60 || { xl destroy vtpm; fail "vTPM ($1) did not power off on xl shutdown"; }
	v=$(keep_log vtpm "$1")
	grep -q 'powering off' "$v" || fail "vTPM ($1) went away without its shutdown line"
	grep 'powering off' "$v"
	memory_figure "$v" "vTPM ($1)" "vTPM memory at its shutdown ($1)"
}

# run_guest STEP TAG: boot the guest with step=STEP (and GUEST_EXTRA's
# kernel parameters); every step must pass.
run_guest() {
	boot_guest guest.cfg guest "GUEST-DONE step=$1" 300 "extra=\"console=hvc0 quiet step=$1 ${GUEST_EXTRA:-}\"" ||
		fail "guest ($2) did not finish step=$1"
	ended guest s 60 || { xl destroy guest; fail "guest ($2) did not power off"; }
	g=$(keep_log guest "$2")
	grep -E 'STEP-|NV-|PCR16' "$g"
	! grep -q 'STEP-FAIL' "$g" || fail "guest ($2): $(grep -m1 STEP-FAIL "$g")"
}

zero=0x0000000000000000000000000000000000000000000000000000000000000000

# mgr_started WHAT: the manager's start-up as a FIGURE line.
mgr_started() {
	log "FIGURE manager $1, in-domain start-up: $(grep -m1 -o 'start-up took [^)]*' "$(console_log mgr)" | head -n 1 | sed 's/start-up took //')"
}

# ---- 1. a new vTPM: the guest writes NV, makes a persistent key, extends PCR 16 ----
start_mgr first
m=$(console_log mgr)
hw=$(sed -n 's/.*hardware TPM: family \([0-9.]*\),.*locality \([0-9]\).*/TPM \1 at locality \2/p' "$m" | head -n 1)
sealed=$(sed -n 's/.*formatted: \(storage key sealed to PCRs [0-9,]*[0-9]\).*/\1/p' "$m" | head -n 1)
step "manager domain up on the hardware ${hw:-TPM}: its disk formatted, ${sealed:-its storage key sealed}"
mgr_started "first start (format, seal, rollback counter)"
start_vtpm first
serving first
grep -q 'new vTPM' "$v" || fail "first start of a blank vTPM disk did not say it made a new TPM"
step "vTPM domain created: a new TPM (fresh seeds), its state saved to its own disk, the key to it kept by the manager"
log "FIGURE vTPM first start (new TPM, first save) xl create to serving: $(elapsed "$t0")s"
run_guest create create
written=$(sed -n 's/^NV-WRITTEN \([0-9a-f-]*\).*/\1/p' "$g" | tr -d '\r')
[ ${#written} = 32 ] || fail "guest did not report the NV data it wrote"
grep -q "PCR16-VALUE.*$zero" "$g" && fail "PCR 16 still zero after the guest extended it"
step "Linux guest (tpm2-tools through xen-tpmfront): wrote NV index 0x1500016 ($written), made persistent key 0x81000005, extended PCR 16"
grep -E 'state saved' "$(console_log vtpm)" | tail -n 4
log "FIGURE $(grep 'state saved' "$(console_log vtpm)" | tail -n 1 | sed 's/.*state saved/vTPM save/')"

# EK certificates: at its first start the vTPM had its two EKs certified by
# the manager (its group's CA) and left the certificates in the EK
# Credential Profile's NV indices; the guest's tpm2_getekcertificate found
# them, and dom0 checks them against the CA `xenvtpm group ca-cert`
# exports, each for the EK the guest's tpm2_createek made.
X=/tmp/xenvtpm
gunzip -c /test/xenvtpm.gz >$X && chmod 755 $X || fail "cannot unpack xenvtpm"
# Deep quotes (step 7, and a part run before the rollback):
nonce() { head -c 16 /dev/urandom | xxd -p; }
# qfile: the guest's deep quote, decoded to /tmp/dq.bin.
qfile() {
	tr -d '\r' <"$g" | sed -n 's/^FILE dq.bin //p' | base64 -d >/tmp/dq.bin && [ -s /tmp/dq.bin ] || fail "the guest printed no deep quote"
}
# vq NAME WANT ARGS...: xenvtpm verify quote; WANT is VERIFIED or the link
# that must fail.
vq() {
	name=$1 want=$2
	shift 2
	out=$($X verify quote /tmp/dq.bin --ak /tmp/ak.pem "$@" 2>&1)
	echo "$out"
	case $want in
	VERIFIED) echo "$out" | grep -q ': VERIFIED' || fail "deep quote ($name) not verified: $out" ;;
	*) echo "$out" | grep -q "NOT VERIFIED: $want:" || fail "deep quote ($name): the verifier did not name the $want link: $out" ;;
	esac
}
grep 'EK certificate' "$(console_log vtpm)"
for k in RSA-2048 'ECC P-256'; do
	log "FIGURE EK certificate ($k) at the vTPM's first start: $(grep -m1 -o "EK certificate ($k) from the manager.*" "$(console_log vtpm)" | sed 's/.*stored in \([^)]*\)).*/\1/')"
done
for k in RSA-2048 'ECC P-256'; do
	grep -q "EK certificate ($k) from the manager" "$(console_log vtpm)" || fail "vTPM: no $k EK certificate from the manager"
done
# ekfiles DIR: the guest's FILE lines, decoded into DIR.
ekfiles() {
	mkdir -p "$1"
	tr -d '\r' <"$g" | sed -n 's/^FILE \([a-z.]*\) \(.*\)$/\1 \2/p' | while read -r n b; do
		echo "$b" | base64 -d >"$1/$n" || fail "guest's $n does not decode"
	done
	for f in rsa.crt ecc.crt ekr.pem eke.pem; do [ -s "$1/$f" ] || fail "guest printed no $f"; done
}
ekfiles /tmp/ek1
$X group ca-cert 0 --manager mgr -o /tmp/ca.pem || fail "xenvtpm group ca-cert 0 failed"
$X verify ekcert /tmp/ek1/rsa.crt --ca /tmp/ca.pem --ek /tmp/ek1/ekr.pem || fail "the RSA EK certificate did not verify"
$X verify ekcert /tmp/ek1/ecc.crt --ca /tmp/ca.pem --ek /tmp/ek1/eke.pem || fail "the ECC EK certificate did not verify"
if out=$($X verify ekcert /tmp/ek1/rsa.crt --ca /tmp/ca.pem --ek /tmp/ek1/eke.pem 2>&1); then
	fail "xenvtpm verify accepted the RSA certificate for the ECC EK"
fi
echo "$out"
step "EK certificates: the guest's tpm2_getekcertificate reads both (RSA-2048, P-256), issued by the manager's group-0 CA at the vTPM's first start; xenvtpm verify checks them against the exported CA and the guest's tpm2_createek keys"

# The manager's disk as it is now (the vTPM's record in it, idle, flushed):
# restored at the end as the rollback attempt.
cp /tmp/mgr.img /tmp/mgr-old.img

# ---- 2. guest and vTPM destroyed and started again ----
stop_vtpm first
start_vtpm second
serving second
grep -q 'resumed' "$v" || fail "vTPM (second) did not say it resumed its saved state"
log "FIGURE vTPM restart (LOADHASHKEY + disk read + verify) xl create to serving: $(elapsed "$t0")s"
# The guest also checks its EK certificates with openssl against the CA
# dom0 exported (its DER, base64, on the kernel command line).
GUEST_EXTRA="ca=$(sed '/-----/d' /tmp/ca.pem | tr -d '\n')" run_guest check check1
grep -q 'STEP-OK openssl-verify' "$g" || fail "openssl verify in the guest did not accept the EK certificates against the exported CA"
for k in rsa ecc; do grep -q "STEP-OK ekpub-$k" "$g" || fail "the $k EK certificate does not certify the guest's tpm2_createek key"; done
# The manager dates certificates by Xen's wall clock, not its own clock
# (which counts from 1970 at its start).
since=$(sed -n 's/^EKCERT-notBefore=.* \([0-9][0-9][0-9][0-9]\) GMT.*/\1/p' "$g" | tr -d '\r' | head -n 1)
[ -n "$since" ] && [ "$since" -ge 2024 ] || fail "the EK certificate's notBefore is not of this time: $(grep -m1 EKCERT- "$g")"
grep -q "^NV-READ $written" "$g" || fail "NV data after a vTPM restart: $(grep NV-READ "$g"), want $written"
grep 'STEP-OK persistent' "$g" | grep -q 0x81000005 || fail "persistent key 0x81000005 missing after a vTPM restart"
grep -q "PCR16-VALUE.*$zero" "$g" || fail "PCR 16 not reset by the vTPM restart: $(grep PCR16 "$g")"

zero1=0x0000000000000000000000000000000000000000
grep -q "PCR0-SHA1.*$zero1" "$g" || fail "PCR 0 not at its reset value without hwinitpcr: $(grep PCR0 "$g")"
ekfiles /tmp/ek2
for f in rsa.crt ecc.crt; do
	cmp -s /tmp/ek1/$f /tmp/ek2/$f || fail "EK certificate $f changed across a vTPM restart"
done
grep -q 'EK certificate (' "$(console_log vtpm)" && fail "the restarted vTPM asked for EK certificates again"
step "guest and vTPM domain destroyed and started again: NV data, key and EK certificates still there (openssl verify in the guest accepts them against the exported CA; each certifies the key tpm2_createek gives), PCR 16 reset"

# ---- 3. the vTPM is shut down and the manager restarts too; this time
# PCRs 0-7 come from the hardware TPM ----
shutdown_vtpm second
stop_mgr first
start_mgr second
mgr_started "restart (unseal, counter check, store open)"
start_vtpm third "loglevel=info hwinitpcr=0-7"
serving third
grep -q 'hwinitpcr: 8 PCRs copied' "$v" || fail "vTPM (third) did not copy the hardware PCRs"
run_guest check check2
grep -q "^NV-READ $written" "$g" || fail "NV data after a manager restart: $(grep NV-READ "$g"), want $written"
grep 'STEP-OK persistent' "$g" | grep -q 0x81000005 || fail "persistent key 0x81000005 missing after a manager restart"
# SeaBIOS measured itself into the hardware TPM's PCR 0, so the copy is not zero.
grep -q "PCR0-SHA1.*$zero1" "$g" && fail "hwinitpcr=0-7: the guest's PCR 0 is still zero"
log "hwinitpcr: the guest's $(grep -m1 PCR0-SHA1 "$g")"
step "vTPM shut down, manager restarted (key unsealed), vTPM started with hwinitpcr=0-7: NV data and key still there, PCR 0 copied from the hardware TPM"

# ---- 3b. the manager restarts under the running vTPM: a state change
# cannot be saved and is refused at once; once the vTPM is attached to the
# new manager (xl vtpm-attach, same uuid) it saves again ----
stop_mgr under-vtpm
start_mgr third
create guest.cfg guest "extra=\"console=hvc0 quiet step=rewrite\"" || fail "xl create guest.cfg failed (rewrite, no manager)"
wait_console guest "GUEST-DONE step=rewrite" 300 || fail "guest (rewrite, no manager) did not finish"
ended guest s 60 || { xl destroy guest; fail "guest (rewrite, no manager) did not power off"; }
g=$(keep_log guest rewrite-nomgr)
grep -E 'STEP-|NV-' "$g"
grep -q 'STEP-FAIL nvwrite' "$g" || fail "an NV write succeeded while the vTPM had no manager"
grep 'STEP-FAIL nvwrite' "$g" | grep -q -i -e 0x923 -e 'NV is not current' || fail "the NV write failed, but not with TPM_RC_NV_UNAVAILABLE: $(grep STEP-FAIL "$g")"
grep -q 'no manager connected' "$(console_log vtpm)" || fail "the vTPM did not say it has no manager"
log "with the manager gone: $(grep -m1 -o 'no manager connected[^(]*' "$(console_log vtpm)")"
# The refused write had no effect: the running vTPM still holds the old data.
run_guest check check-nomgr
grep -q "^NV-READ $written" "$g" || fail "NV data after a refused write: $(grep NV-READ "$g"), want the old $written"
step "manager restarted under the running vTPM: the guest's NV write refused at once (TPM_RC_NV_UNAVAILABLE), the old data kept"
xl vtpm-attach vtpm backend=mgr uuid=76747069-7065-7273-6973-740000000001 || fail "xl vtpm-attach vtpm backend=mgr failed"
run_guest rewrite rewrite
written=$(sed -n 's/^NV-WRITTEN //p' "$g" | tr -d '\r')
v=$(console_log vtpm)
grep -q 'manager link: connected to the manager in domain .* through device/vtpm/1' "$v" || fail "the vTPM did not reconnect through the attached device"
log "$(grep -m1 -o 'manager link: connected.*vtpm/1' "$v")"
grep 'state saved' "$v" | tail -n 1
run_guest check check3
grep -q "^NV-READ $written" "$g" || fail "NV data after the rewrite: $(grep NV-READ "$g"), want $written"
step "vTPM attached to the new manager (xl vtpm-attach): the guest's new NV data ($written) saved and read back"

# ---- 4. one byte of the vTPM's disk flipped: refused, disk untouched ----
stop_vtpm third
at=$(grep 'state saved' "$(console_log vtpm 2>/dev/null)" /tmp/console-vtpm-*.log 2>/dev/null | tail -n 1 | sed -n 's/.*payload at byte \([0-9]*\).*/\1/p')
[ -n "$at" ] || fail "the vTPM never said where its current state is on the disk"
at=$((at + 100))
b=$(dd if=/tmp/vtpm.img bs=1 skip="$at" count=1 2>/dev/null | od -An -tu1 | tr -d ' ')
printf "$(printf '\\%03o' $(((b ^ 0x5a) & 0xff)))" | dd of=/tmp/vtpm.img bs=1 seek="$at" count=1 conv=notrunc 2>/dev/null
log "flipped the vTPM disk's byte $at ($b -> $(((b ^ 0x5a) & 0xff)))"
sum=$(sha256sum /tmp/vtpm.img | cut -d' ' -f1)
start_vtpm corrupt
grep -q 'serving TPM 2.0' "$v" && fail "vTPM served from a corrupted disk"
log "vTPM (corrupt) refused: $(grep -m1 -o 'REFUSED.*' "$v")"
refusal=$(grep -m1 -o 'REFUSED to start: [^(]*' "$v" | head -n 1 | sed 's/vstate: //; s/ *$//')
ended vtpm c 30 || { xl destroy vtpm; fail "vTPM (corrupt) still running after refusing"; }
keep_log vtpm corrupt >/dev/null
[ "$(sha256sum /tmp/vtpm.img | cut -d' ' -f1)" = "$sum" ] || fail "the vTPM wrote to its disk while refusing"
step "one byte of the vTPM's disk flipped: the vTPM ${refusal:-refused to start}; its disk untouched"

# ---- 5. clear: a fresh TPM ----
start_vtpm clear "loglevel=info clear"
serving clear
grep -q 'fresh TPM' "$v" || fail "vTPM (clear) did not say it started a fresh TPM"
run_guest fresh fresh
grep 'STEP-OK getcap-nv' "$g" | grep -q 0x1500016 && fail "NV index still there after clear"
grep 'STEP-OK getcap-persistent' "$g" | grep -q 0x81000005 && fail "persistent key still there after clear"
step "vTPM started with extra=\"clear\": a fresh TPM, the NV index and the key gone"
stop_vtpm clear

# A scenario built on this one adds its steps here, with the manager up
# (../testbed-persist-tpm12: a TPM 1.2 vTPM).
! command -v before_rollback >/dev/null || before_rollback

# ---- 6. the manager's disk rolled back: refused ----
stop_mgr third
mv /tmp/mgr.img /tmp/mgr-good.img
cp /tmp/mgr-old.img /tmp/mgr.img
create mgr.cfg mgr || fail "xl create mgr.cfg failed (rollback)"
wait_console mgr 'serving vTPM domains|cannot start' 240 || fail "manager (rollback): neither serving nor refusing"
grep -m1 'cannot start' "$(console_log mgr)" | grep -q ROLLBACK || fail "manager (rollback) did not refuse as a rollback: $(grep -m1 -E 'serving|cannot start' "$(console_log mgr)")"
log "manager (rollback) refused: $(grep -m1 -o 'cannot start.*' "$(console_log mgr)")"
# The refusal names each superblock's counter; the first is the newest.
why=$(grep -m1 -o 'disk binds counter [0-9]*, hardware counter is [0-9]*' "$(console_log mgr)" | head -n 1)
step "manager's disk rolled back to its copy from before the restarts: the manager refused to start as a ROLLBACK${why:+ ($why)}"
ended mgr c 30 || xl destroy mgr

# ---- 7. evidence: deep quotes from the guest, checked in dom0 ----
mv /tmp/mgr-good.img /tmp/mgr.img
rm -f /tmp/mgr-old.img
start_mgr fourth
# A part run before the rollback (before_rollback) may have removed it.
[ -x $X ] || { gunzip -c /test/xenvtpm.gz >$X && chmod 755 $X; } || fail "cannot unpack xenvtpm"
start_vtpm quote
serving quote
U=$(sed -n 's/.*uuid=\([0-9a-f-]*\).*/\1/p' vtpm.cfg | head -n 1)
fam=$(echo "$hw" | sed -n 's/^TPM \([0-9.]*\) .*/\1/p')
# digest HEX-SEED: a digest of the hardware family's PCR bank (SHA-256 on
# 2.0, SHA-1 on 1.2) of a word.
digest() { if [ "$fam" = 2.0 ]; then echo "$1" | sha256sum | cut -c1-64; else echo "$1" | sha1sum | cut -c1-40; fi; }
what="TPM2_MakeCredential against the hardware EK, the manager's TPM2_ActivateCredential"
[ "$fam" = 2.0 ] || what="an identity key made with TPM_MakeIdentity; TPM_ActivateIdentity of a blob dom0 encrypted to the hardware EK"
$X group ak 0 --manager mgr -o /tmp/ak.pem || fail "xenvtpm group ak 0 failed"
step "TPM $fam: the group's attestation key in the hardware TPM, proven there by dom0 ($what)"
# The SAA approves this host's PCRs 0, 2, 4 and 16 for group 0.
$X saa keygen --alg ecdsa --out /tmp/saa >/dev/null && $X saa keygen --out /tmp/other >/dev/null || fail "saa keygen failed"
$X group add --key /tmp/saa.pub --manager mgr || fail "group add failed"
G=$($X group show 0 --manager mgr --json | sed -n 's/^ *"uuid": "\([^"]*\)".*/\1/p' | head -n 1)
seq=$($X group show 0 --manager mgr --json | sed -n 's/^ *"next_seq": \([0-9]*\).*/\1/p' | head -n 1)
pcr_values "$fam" 0 2 4 16 >/tmp/hv || fail "reading the hardware PCRs from dom0"
sign() { # SEQ ARGS...
	s=$1
	shift
	$X saa sign-config --key /tmp/saa.key --group-uuid "$G" --seq "$s" --family "$fam" --pcrs 0,2,4,16 --values /tmp/hv "$@" >/dev/null
}
sign "$seq" --out /tmp/l1.cfg || fail "saa sign-config failed"
sign "$((seq + 1))" --extend "16:$(digest other)" --out /tmp/l2.cfg || fail "saa sign-config (other list) failed"
$X group update 0 /tmp/l1.cfg --manager mgr || fail "group update 0 failed"

N=$(nonce)
GUEST_EXTRA="nonce=$N repeat=4" run_guest deepquote quote1
qfile
v16=$(sed -n 's/^VPCR16 //p' "$g" | tr -d '\r') v16a=$(sed -n 's/^VPCR16-AFTER //p' "$g" | tr -d '\r')
log "FIGURE TPM $fam hardware: $(grep -m1 -o 'deep quote round trip.*: p50 [^,]*, p99 [^ ]*' "$g")"
vq good VERIFIED --nonce "$N" --uuid "$U" --vtpm-pcr "16:$v16" --saa /tmp/saa.pub --list /tmp/l1.cfg
step "a guest's deep quote (its nonce, vTPM $U, its PCRs 0 and 16, group 0's SAA and list, the hardware PCRs 0,2,4,16 quoted by the TPM $fam's group key) verified by xenvtpm verify in dom0"
vq nonce nonce --nonce "$(nonce)" --uuid "$U" --saa /tmp/saa.pub --list /tmp/l1.cfg
vq pcr "vTPM PCRs" --nonce "$N" --uuid "$U" --vtpm-pcr "16:$v16a"
vq uuid "vTPM UUID" --nonce "$N" --uuid 76747069-7065-7273-6973-740000000002
vq saa "SAA key" --nonce "$N" --saa /tmp/other.pub --list /tmp/l1.cfg
vq list "configuration list" --nonce "$N" --saa /tmp/saa.pub --list /tmp/l2.cfg
# The hardware's PCR 16 changes: a new quote shows a configuration the
# SAA did not approve.
pcr_extend16 "$fam" "$(digest rogue)"
N=$(nonce)
GUEST_EXTRA="nonce=$N" run_guest deepquote quote2
qfile
vq hwpcr "hardware PCRs" --nonce "$N" --uuid "$U" --saa /tmp/saa.pub --list /tmp/l1.cfg
step "each link broken once is named: another nonce, a vTPM PCR extended after the quote, another vTPM's UUID, another SAA, a list the group does not have, a hardware PCR changed"
shutdown_vtpm quote
stop_mgr fourth

pass "vTPM state persisted across vTPM and manager restarts (NV index, persistent key; PCRs reset); a corrupted vTPM disk refused, clear gave a fresh TPM; a rolled-back manager disk refused; EK certificates verified; deep quotes verified, each broken link named"
