# Helpers of the manager domain's test-bed scenarios (testbed, testbed-tpm12),
# sourced by their dom0-test.sh after testlib.sh.

# start_mgr TAG: start the manager and wait until it serves or refuses.
start_mgr() {
	t0=$(now)
	create mgr.cfg mgr || fail "xl create mgr.cfg failed ($1)"
	wait_console mgr 'serving vTPM domains|cannot start' 240 || fail "manager ($1): neither serving nor refusing"
	grep -E 'mgrdomain|hardware TPM|disk |manager|serving|cannot' "$(console_log mgr)"
}


# refused TAG ERE: the manager refused to start, on one console line that
# matches ERE (the kind of refusal), and is gone.
refused() {
	m=$(console_log mgr)
	grep -q 'serving vTPM domains' "$m" && fail "manager ($1) served when it should have refused"
	grep -m1 'cannot start' "$m" | grep -q -E -e "$2" || fail "manager ($1) refused, but not with $2: $(grep -m1 'cannot start' "$m")"
	ended mgr c 30 || { xl destroy mgr; fail "manager ($1) still running after refusing"; }
	log "manager ($1) refused: $(grep -m1 -o 'cannot start.*' "$m")"
	keep_log mgr "$1" >/dev/null
}
