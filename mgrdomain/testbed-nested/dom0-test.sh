# A nested manager (tpmdriver=tpmfront): the manager reaches its
# TPM through its vtpm device, whose backend is a vTPM domain. It formats and
# seals on that TPM, serves the test client's SAVEHASHKEY/LOADHASHKEY, powers
# off on xl shutdown and, restarted, unseals and still has the key.
# Sourced by dom0's init with testlib.sh loaded.

mv /test/mgr.img /tmp/mgr.img || fail "cannot move the manager's disk to /tmp"
create tpm0.cfg tpm0 || fail "xl create tpm0 failed"
wait_console tpm0 'serving TPM 2.0' 60 || fail "tpm0 did not come up"

start_mgr() {
	create mgr.cfg mgr || fail "xl create mgr.cfg failed ($1)"
	wait_console mgr 'serving vTPM domains|cannot start' 240 || fail "manager ($1): neither serving nor refusing"
	m=$(console_log mgr)
	grep -E 'mgrdomain|TPM|disk|manager|serving|cannot' "$m"
	grep -q 'TPM through tpmfront' "$m" || fail "manager ($1) did not reach its TPM through tpmfront"
	grep -q 'serving vTPM domains' "$m" || fail "manager ($1) refused: $(grep -m1 'cannot start' "$m")"
}


start_mgr first
run_client save "rounds=5"
key=$(sed -n 's/^MGRCLIENT-SAVED \([0-9a-f]*\).*/\1/p' "$cl" | tr -d '\r')
[ ${#key} = 128 ] || fail "client did not report the saved key"
log "FIGURE nested $(grep -m1 -o 'savehashkey_roundtrip.*' "$cl" | tr -d '\r')"

xl shutdown mgr || log "xl shutdown exited non-zero; judging by the domain"
ended mgr s 60 || { xl destroy mgr; fail "nested manager did not power off on xl shutdown"; }
keep_log mgr first >/dev/null

start_mgr restart
grep -q ' 1 vTPM records loaded' "$(console_log mgr)" || fail "nested manager restarted without the client's record"
run_client load "save=0 expect=$key"
pass "nested manager (tpmdriver=tpmfront, its TPM a vTPM domain): format, seal, save/load, xl shutdown, restart keeps the key"
