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

# TIS locality 0 registers, driven from dom0 with devmem (dom0's tpm_tis is
# blacklisted): TPM_ACCESS, TPM_STS, TPM_DATA_FIFO.
ACC=0xfed40000 STS=0xfed40018 FIFO=0xfed40024
# tis_wait REG MASK: poll an 8-bit register until (value & MASK) != 0.
tis_wait() {
	i=0
	while [ $(($(devmem "$1" 8) & $2)) -eq 0 ]; do
		i=$((i + 1))
		[ $i -lt 2000 ] || return 1
	done
}
# tis_cmd HEX-BYTES...: one command at locality 0; prints the response code.
tis_cmd() {
	devmem $ACC 8 0x02 # requestUse
	tis_wait $ACC 0x20 || { echo "locality 0 not granted"; return 1; }
	devmem $STS 8 0x40 # commandReady
	tis_wait $STS 0x40 || { echo "not commandReady"; return 1; }
	for b in "$@"; do devmem $FIFO 8 "0x$b"; done
	devmem $STS 8 0x20 # tpmGo
	tis_wait $STS 0x10 || { echo "no response"; return 1; }
	rc=""
	for _ in 1 2 3 4 5 6 7 8 9 10; do rc="$rc $(devmem $FIFO 8)"; done
	devmem $STS 8 0x40
	devmem $ACC 8 0x20 # relinquish
	echo "$rc"
}

