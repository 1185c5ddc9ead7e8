# The manager domain end to end: swtpm behind QEMU's
# tpm-tis is the hardware TPM (locality 2 through iomem), a file in dom0 its
# disk. A test client in a vTPM domain's place saves and loads its key
# through the manager; `xl shutdown` must power the manager off; after a
# restart the key is still there; an older copy of the disk is refused as a
# rollback, and a wrong owner_auth, another locality, a missing disk, a disk
# of garbage, a copy of the disk from before a reseal (retired) and a changed
# sealing PCR (extended from dom0) are refused, each with one clear console
# line. Then the manager's groups (groups.sh).
# Sourced by dom0's init with testlib.sh loaded.

# start_mgr and refused are in mgrlib.sh; create, ended, keep_log and the
# TIS helpers (tis_cmd, pcr_values, pcr_extend16) in testlib.sh.
. /test/mgrlib.sh

[ ! -e /dev/tpm0 ] || fail "dom0 took the TPM (initcall_blacklist=init_tis missing?)"
did=$(devmem 0xfed40f00 32)
[ "$did" = 0x00011014 ] || fail "no tpm-tis at 0xfed40000 (DID_VID $did)"
release_locality0

cp /test/mgr.img /tmp/mgr.img || fail "cannot copy the manager's disk"

# ---- 1. first start on a blank disk: format, seal, counter ----
start_mgr first
m=$(console_log mgr)
grep -q 'serving vTPM domains' "$m" || fail "manager did not start on a blank disk: $(grep -m1 'cannot start' "$m")"
log "FIGURE manager first start (format + seal + NV counter define) xl create to serving: $(elapsed "$t0")s; in-domain: $(grep -m1 -o 'start-up took [^)]*' "$m")"
# The disk as it is now (formatted, no vTPM yet, flushed, manager idle):
# restored later as the rollback attempt, once the counter has moved on.
cp /tmp/mgr.img /tmp/mgr-old.img

# ---- 2. save + load through the manager ----
run_client save "rounds=10"
key=$(sed -n 's/^MGRCLIENT-SAVED \([0-9a-f]*\).*/\1/p' "$cl" | tr -d '\r')
[ ${#key} = 128 ] || fail "client did not report the saved key"
log "FIGURE $(grep -m1 -o 'savehashkey_roundtrip.*' "$cl" | tr -d '\r')"
log "FIGURE $(grep -m1 -o 'loadhashkey_roundtrip.*' "$cl" | tr -d '\r')"

# ---- 3. xl shutdown: the manager powers off by itself ----
t0=$(now)
# xl's status is not the verdict: xl itself has aborted here after sending
# the request ("malloc(): corrupted top size"); the domain powering itself
# off with its shutdown line is.
xl shutdown mgr || log "xl shutdown exited non-zero; judging by the domain"
ended mgr s 60 || { xl destroy mgr; fail "manager did not power off on xl shutdown"; }
log "FIGURE xl shutdown to manager gone: $(elapsed "$t0")s"
m=$(keep_log mgr first)
grep -q 'powering off' "$m" || fail "manager went away without its shutdown line"
grep -E 'shutdown|closed|powering' "$m"

# ---- 4. restart: the key survived ----
start_mgr restart
m=$(console_log mgr)
grep -q 'serving vTPM domains' "$m" || fail "manager did not restart: $(grep -m1 'cannot start' "$m")"
grep -q ' 1 vTPM records loaded' "$m" || fail "manager restarted without the client's record: $(grep -m1 'records loaded' "$m")"
log "FIGURE manager restart (unseal + counter check + store open) xl create to serving: $(elapsed "$t0")s; in-domain: $(grep -m1 -o 'start-up took [^)]*' "$m")"
run_client load "save=0 expect=$key"
xl shutdown mgr || log "xl shutdown exited non-zero; judging by the domain"
ended mgr s 60 || { xl destroy mgr; fail "manager did not power off on the second xl shutdown"; }
m=$(keep_log mgr restart)
grep -q 'powering off' "$m" || fail "manager went away without its shutdown line (restart)"

cp /tmp/mgr.img /tmp/mgr-good.img
good=$(sha256sum /tmp/mgr.img | cut -d' ' -f1)

# ---- 5. the wrong owner_auth: cannot unseal, disk untouched ----
xl_create mgr.cfg 'extra="tpmlocality=2 owner_auth=text:not-the-owner"' || fail "xl create mgr.cfg (owner_auth) failed"
wait_console mgr 'serving vTPM domains|cannot start' 240 || fail "manager (owner_auth): neither serving nor refusing"
refused owner_auth 'UNSEAL FAILED'
[ "$(sha256sum /tmp/mgr.img | cut -d' ' -f1)" = "$good" ] || fail "the manager wrote to its disk while refusing"

# ---- 5b. another locality: PolicyLocality bound the key to locality 2 ----
xl_create mgr.cfg 'extra="tpmlocality=3"' || fail "xl create mgr.cfg (locality 3) failed"
wait_console mgr 'serving vTPM domains|cannot start' 240 || fail "manager (locality 3): neither serving nor refusing"
refused locality 'UNSEAL FAILED.*tpmlocality=.*locality 2, the manager uses locality 3'
[ "$(sha256sum /tmp/mgr.img | cut -d' ' -f1)" = "$good" ] || fail "the manager wrote to its disk while refusing (locality)"

# ---- 6. no disk: refused ----
xl_create mgr-nodisk.cfg || fail "xl create mgr-nodisk.cfg failed"
wait_console mgr 'serving vTPM domains|cannot start' 240 || fail "manager (no disk): neither serving nor refusing"
refused nodisk 'disk \(xl disk='

# ---- 7. an older disk image: refused as a rollback ----
cp /tmp/mgr-old.img /tmp/mgr.img
start_mgr rollback
refused rollback ROLLBACK

# ---- 8. a disk of garbage: refused, nothing formatted over it ----
dd if=/dev/urandom of=/tmp/mgr.img bs=1M count=16 2>/dev/null
sum0=$(sha256sum /tmp/mgr.img | cut -d' ' -f1)
start_mgr garbage
refused garbage 'GARBAGE|BAD DISK'
[ "$(sha256sum /tmp/mgr.img | cut -d' ' -f1)" = "$sum0" ] || fail "the manager wrote to the garbage disk"

# ---- 8b. a reseal retires the blob it replaces, on every copy ----
# sealpcrs=none for a boot (the upgrade advice), a copy of that disk, back
# to the default selection: the copy sealed to no PCRs must not release the
# key any more (the seal epoch moved past its bound), although the rollback
# counter would accept it.
cp /tmp/mgr-good.img /tmp/mgr.img
reseal_to() { # TAG SEALPCRS
	t0=$(now)
	xl_create mgr.cfg "extra=\"tpmlocality=2 sealpcrs=$2\"" || fail "xl create mgr.cfg ($1) failed"
	wait_console mgr 'serving vTPM domains|cannot start' 240 || fail "manager ($1): neither serving nor refusing"
	m=$(console_log mgr)
	grep -q 'serving vTPM domains' "$m" || fail "manager ($1) refused: $(grep -m1 'cannot start' "$m")"
	grep -q 'storage key resealed' "$m" || fail "manager ($1) did not reseal to sealpcrs=$2"
	log "FIGURE manager start with a reseal ($1) xl create to serving: $(elapsed "$t0")s; in-domain: $(grep -m1 -o 'start-up took [^)]*' "$m")"
	xl shutdown mgr || log "xl shutdown exited non-zero; judging by the domain"
	ended mgr s 60 || { xl destroy mgr; fail "manager ($1) did not power off on xl shutdown"; }
	keep_log mgr "$1" >/dev/null
}
reseal_to weak none
cp /tmp/mgr.img /tmp/mgr-weak.img
reseal_to strong default
cp /tmp/mgr.img /tmp/mgr-good.img
cp /tmp/mgr-weak.img /tmp/mgr.img
xl_create mgr.cfg 'extra="tpmlocality=2 sealpcrs=none"' || fail "xl create mgr.cfg (retired) failed"
wait_console mgr 'serving vTPM domains|cannot start' 240 || fail "manager (retired): neither serving nor refusing"
refused retired 'RETIRED'
cmp -s /tmp/mgr.img /tmp/mgr-weak.img || fail "the manager wrote to the retired copy"

# ---- 9. a sealing PCR changed: the good disk no longer unseals ----
# TPM2_PCR_Extend(PCR 7, SHA-256 bank) at locality 0 with an empty password
# session, sent by dom0 through the TIS registers: what a different Secure
# Boot policy would do to PCR 7.
rc=$(tis_cmd 80 02 00 00 00 41 00 00 01 82 00 00 00 07 00 00 00 09 40 00 00 09 00 00 00 00 00 \
	00 00 00 01 00 0b $(for i in $(seq 32); do printf '%02x ' "$i"; done))
log "TPM2_PCR_Extend(7) from dom0: response header$rc"
set -- $rc
[ "$7$8$9${10}" = 0x000x000x000x00 ] || fail "dom0 could not extend PCR 7: response header$rc"
cp /tmp/mgr-good.img /tmp/mgr.img
start_mgr pcr
m=$(console_log mgr)
grep -m1 'cannot start' "$m" | grep -q 'changed since sealing: 7' || fail "manager (pcr) did not name PCR 7: $(grep -m1 'cannot start' "$m")"
refused pcr 'UNSEAL FAILED'

FAMILY=2.0 MGR_EXTRA="tpmlocality=2" SAA_ALG=ecdsa
. /test/groups.sh

pass "manager domain: format, save/load, xl shutdown, restart keeps the key, reseals; wrong owner_auth, another locality, no disk, rollback, garbage, a retired copy and a changed PCR refused; groups: provisioning, autocreate=0, an SAA-approved upgrade, revocation"
