# The manager domain on TPM 1.2 hardware: swtpm in TPM 1.2 mode
# behind QEMU's tpm-tis, owned by the host, reached at locality 2 through
# iomem. First start seizes the TPM from locality 0 (left active by
# SeaBIOS), formats the disk, seals the storage key with TPM_Seal
# and creates the monotonic counter; a test client saves and loads its key;
# `xl shutdown` powers the manager off and the key survives a restart. Then
# refused, each with one clear line: an older disk (rollback), the wrong
# srk_auth, another locality than the one the key was sealed for, and a
# sealing PCR extended from dom0. Then the manager's groups
# (../testbed/groups.sh).
# Sourced by dom0's init with testlib.sh loaded.

. /test/mgrlib.sh

[ ! -e /dev/tpm0 ] || fail "dom0 took the TPM (initcall_blacklist=init_tis missing?)"
cp /test/mgr.img /tmp/mgr.img || fail "cannot copy the manager's disk"
# SeaBIOS left locality 0 active: unlike the TPM 2.0 scenario, dom0 leaves
# it so, and the manager's first start seizes the TPM (tpmseize=1).
[ $(($(devmem 0xfed40000 8) & 0x20)) -ne 0 ] || fail "locality 0 is not active after boot: nothing to seize"

# stop_mgr TAG: xl shutdown, and the manager powers itself off.
stop_mgr() {
	xl shutdown mgr || log "xl shutdown exited non-zero; judging by the domain"
	ended mgr s 60 || { xl destroy mgr; fail "manager did not power off on xl shutdown ($1)"; }
	grep -q 'powering off' "$(keep_log mgr "$1")" || fail "manager went away without its shutdown line ($1)"
}

# ---- 1. first start: seize, a TPM 1.2, format, TPM_Seal, monotonic counter ----
t0=$(now)
xl_create mgr.cfg 'extra="tpmlocality=2 tpmseize=1 owner_auth=text:xenvtpm-owner srk_auth=text:xenvtpm-srk"' || fail "xl create mgr.cfg (first) failed"
wait_console mgr 'serving vTPM domains|cannot start' 240 || fail "manager (first): neither serving nor refusing"
m=$(console_log mgr)
grep -E 'mgrdomain|hardware TPM|disk |manager|serving|cannot' "$m"
grep -q 'seized from a lower locality' "$m" || fail "the manager did not report seizing locality 0"
[ $(($(devmem 0xfed40000 8) & 0x10)) -ne 0 ] || fail "locality 0 was not told it had been seized (TPM_ACCESS $(devmem 0xfed40000 8))"
grep -q 'serving vTPM domains' "$m" || fail "manager did not start on TPM 1.2: $(grep -m1 'cannot start' "$m")"
grep -q 'family 1.2' "$m" || fail "the TIS driver did not see a TPM 1.2"
grep -q 'hardware counter .* created' "$m" || fail "no monotonic counter created"
log "FIGURE TPM 1.2 manager first start (format + TPM_Seal + TPM_CreateCounter) xl create to serving: $(elapsed "$t0")s; in-domain: $(grep -m1 -o 'start-up took [^)]*' "$m")"
cp /tmp/mgr.img /tmp/mgr-old.img

# ---- 2. save + load; shutdown; restart keeps the key ----
run_client save "rounds=10"
key=$(sed -n 's/^MGRCLIENT-SAVED \([0-9a-f]*\).*/\1/p' "$cl" | tr -d '\r')
[ ${#key} = 128 ] || fail "client did not report the saved key"
log "FIGURE TPM 1.2 $(grep -m1 -o 'savehashkey_roundtrip.*' "$cl" | tr -d '\r')"
stop_mgr first
start_mgr restart
m=$(console_log mgr)
grep -q ' 1 vTPM records loaded' "$m" || fail "manager restarted without the client's record: $(grep -m1 -e 'records loaded' -e 'cannot start' "$m")"
log "FIGURE TPM 1.2 manager restart (TPM_Unseal + counter check + store open) xl create to serving: $(elapsed "$t0")s; in-domain: $(grep -m1 -o 'start-up took [^)]*' "$m")"
run_client load "save=0 expect=$key"
stop_mgr restart
cp /tmp/mgr.img /tmp/mgr-good.img
good=$(sha256sum /tmp/mgr.img | cut -d' ' -f1)

# ---- 3. the disk before the save: a rollback ----
cp /tmp/mgr-old.img /tmp/mgr.img
start_mgr rollback
refused rollback ROLLBACK
cp /tmp/mgr-good.img /tmp/mgr.img

# ---- 4. the wrong srk_auth: cannot unseal, disk untouched ----
xl_create mgr.cfg 'extra="tpmlocality=2 owner_auth=text:xenvtpm-owner srk_auth=well-known"' || fail "xl create mgr.cfg (srk_auth) failed"
wait_console mgr 'serving vTPM domains|cannot start' 240 || fail "manager (srk_auth): neither serving nor refusing"
refused srk_auth 'UNSEAL FAILED'

# ---- 5. another locality: TPM_Seal bound the key to locality 2 ----
xl_create mgr.cfg 'extra="tpmlocality=3 owner_auth=text:xenvtpm-owner srk_auth=text:xenvtpm-srk"' || fail "xl create mgr.cfg (locality 3) failed"
wait_console mgr 'serving vTPM domains|cannot start' 240 || fail "manager (locality 3): neither serving nor refusing"
refused locality 'UNSEAL FAILED.*tpmlocality=.*locality 2, the manager uses locality 3'
[ "$(sha256sum /tmp/mgr.img | cut -d' ' -f1)" = "$good" ] || fail "the manager wrote to its disk while refusing"

# ---- 6. a sealing PCR changed: TPM_Extend(PCR 7) from dom0 at locality 0 ----
rc=$(tis_cmd 00 c1 00 00 00 22 00 00 00 14 00 00 00 07 $(for i in $(seq 20); do printf '%02x ' "$i"; done))
log "TPM_Extend(7) from dom0: response header$rc"
set -- $rc
[ "$7$8$9${10}" = 0x000x000x000x00 ] || fail "dom0 could not extend PCR 7: response header$rc"
start_mgr pcr
m=$(console_log mgr)
grep -m1 'cannot start' "$m" | grep -q 'changed since sealing: 7' || fail "manager (pcr) did not name PCR 7: $(grep -m1 'cannot start' "$m")"
refused pcr 'UNSEAL FAILED'

FAMILY=1.2 MGR_EXTRA="tpmlocality=2 owner_auth=text:xenvtpm-owner srk_auth=text:xenvtpm-srk" SAA_ALG=rsa
. /test/groups.sh

pass "manager domain on TPM 1.2: format, TPM_Seal, monotonic counter, save/load, xl shutdown, restart keeps the key; rollback, wrong srk_auth, another locality and a changed PCR refused; groups: provisioning, autocreate=0, an SAA-approved upgrade"
