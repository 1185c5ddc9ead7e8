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


# tis_xfer N HEX-BYTES...: one command at locality 0; prints the first N
# bytes of the response as one hex string.
tis_xfer() {
	n=$1
	shift
	devmem $ACC 8 0x02
	tis_wait $ACC 0x20 || { echo "locality 0 not granted" >&2; return 1; }
	devmem $STS 8 0x40
	tis_wait $STS 0x40 || { echo "not commandReady" >&2; return 1; }
	for b in "$@"; do devmem $FIFO 8 "0x$b"; done
	devmem $STS 8 0x20
	tis_wait $STS 0x10 || { echo "no response" >&2; return 1; }
	out=""
	i=0
	while [ $i -lt "$n" ]; do
		out="$out$(printf '%02x' "$(devmem $FIFO 8)")"
		i=$((i + 1))
	done
	devmem $STS 8 0x40
	devmem $ACC 8 0x20
	echo "$out"
}

# pcr_values FAMILY N...: "N HEX" lines of the PCRs' values, read from
# dom0 (SHA-256 bank on 2.0, SHA-1 on 1.2), ascending N.
pcr_values() {
	fam=$1
	shift
	if [ "$fam" = 2.0 ]; then
		# One TPM2_PCR_Read of them all (up to 8): header, update
		# counter and selection take 28 bytes, then each digest is a
		# 2-byte size and 32 bytes.
		mask=0
		for p in "$@"; do mask=$((mask | (1 << p))); done
		sel=$(printf '%06x' $mask | sed 's/\(..\)\(..\)\(..\)/\3 \2 \1/')
		r=$(tis_xfer $((28 + 34 * $#)) 80 01 00 00 00 14 00 00 01 7e 00 00 00 01 00 0b 03 $sel) || return 1
		[ "$(echo "$r" | cut -c13-20)" = 00000000 ] || { echo "TPM2_PCR_Read($*): $r" >&2; return 1; }
		i=0
		for p in "$@"; do
			o=$((2 * (30 + 34 * i) + 1))
			echo "$p $(echo "$r" | cut -c$o-$((o + 63)))"
			i=$((i + 1))
		done
	else
		for p in "$@"; do
			r=$(tis_xfer 30 00 c1 00 00 00 0e 00 00 00 15 $(printf '%08x' "$p" | sed 's/../& /g')) || return 1
			[ "$(echo "$r" | cut -c13-20)" = 00000000 ] || { echo "TPM_PCRRead($p): $r" >&2; return 1; }
			echo "$p $(echo "$r" | cut -c21-60)"
		done
	fi
}

# pcr_extend16 FAMILY HEX: extend PCR 16 (debug, resettable) from dom0
# with the digest HEX (32 bytes on 2.0, 20 on 1.2).
pcr_extend16() {
	d=$(echo "$2" | sed 's/../& /g')
	if [ "$1" = 2.0 ]; then
		rc=$(tis_cmd 80 02 00 00 00 41 00 00 01 82 00 00 00 10 00 00 00 09 40 00 00 09 00 00 00 00 00 00 00 00 01 00 0b $d)
	else
		rc=$(tis_cmd 00 c1 00 00 00 22 00 00 00 14 00 00 00 10 $d)
	fi
	set -- $rc
	[ "$7$8$9${10}" = 0x000x000x000x00 ] || fail "dom0 could not extend PCR 16: response header$rc"
}

# pcr_reset16 FAMILY: reset PCR 16 from dom0 (locality 0 may).
pcr_reset16() {
	if [ "$1" = 2.0 ]; then
		rc=$(tis_cmd 80 02 00 00 00 1b 00 00 01 3d 00 00 00 10 00 00 00 09 40 00 00 09 00 00 00 00 00)
	else
		rc=$(tis_cmd 00 c1 00 00 00 0f 00 00 00 c8 00 03 00 00 01)
	fi
	set -- $rc
	[ "$7$8$9${10}" = 0x000x000x000x00 ] || fail "dom0 could not reset PCR 16: response header$rc"
}
