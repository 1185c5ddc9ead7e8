# Self-test of HVM guests on the test bed: an HVM Linux guest whose QEMU device model
# emulates a TPM TIS backed by vtpmd (the project's TPM 2.0 engine, swtpm's protocol) in
# dom0; the guest's tpm_tis must find a TPM 2.0 and tpm2-tools must run through
# /dev/tpmrm0, with the commands seen arriving at vtpmd. Sourced by dom0's init with the
# helpers of testlib.sh loaded.

sock=/run/vtpmd/ctrl.sock
# The guest's firmware (build.sh writes it): SeaBIOS, or OVMF with run.sh --hvm ovmf.
firmware=$(cat /test/firmware)
cfg=hvm.cfg
[ "$firmware" = seabios ] || cfg=hvm-$firmware.cfg
log "guest firmware: $firmware ($cfg)"
[ -x /usr/libexec/xen-qemu-system-i386 ] || fail "no device model in dom0 (TESTBED_HVM not honoured?)"
xl info | grep -E '^(xen_version|virt_caps|xen_commandline)'
case $(xl info | sed -n 's/^virt_caps *: //p') in
*hvm*) ;;
*) fail "Xen offers no HVM here (virt_caps)" ;;
esac

# start_vtpmd starts a fresh vtpmd (state in memory) serving the control socket QEMU's
# -tpmdev emulator connects to; -v logs every TPM command code it answers.
start_vtpmd() {
	mkdir -p "${sock%/*}"
	/test/vtpmd -swtpm-ctrl "unix:$sock" -mssim "" -v >/tmp/vtpmd.log 2>&1 &
	vtpmd_pid=$!
	i=0
	while [ ! -S "$sock" ] && [ $i -lt 50 ]; do sleep 0.2; i=$((i + 1)); done
	[ -S "$sock" ] || fail "vtpmd did not start: $(cat /tmp/vtpmd.log)"
	log "vtpmd started (pid $vtpmd_pid)"
}

stop_vtpmd() {
	kill "$vtpmd_pid" 2>/dev/null
	wait "$vtpmd_pid" 2>/dev/null
}

# attempt N boots the guest once and waits for its TPM report. It returns non-zero only
# when the guest did not get that far (a boot that stalls or crashes under the software
# CPU); what the guest reports is judged afterwards, without retrying.
attempt() {
	local t0 con
	start_vtpmd
	con=$(console_log hvm)
	rm -f "$con" "$(dm_log hvm)"
	t0=$(now)
	xl_create "$cfg" || return 1
	figure hvm_xl_create_s "$(elapsed "$t0")"
	# The firmware's first TPM command, if it sends any: the first after QEMU's
	# CMD_INIT (QEMU probes the TPM's version with commands of its own before).
	if _wait_for "the firmware's first TPM command" 300 awk '/CMD_INIT/ {i = 1} i && /vtpmd: cc / {f = 1} END {exit !f}' /tmp/vtpmd.log; then
		figure "${firmware}_first_command_after_init_s" "$(elapsed "$t0")"
	fi
	wait_console hvm '^GUEST-INIT-RAN' 600 || return 1
	figure hvm_create_to_init_s "$(elapsed "$t0")"
	wait_console hvm '^GUEST-(TPM-VISIBLE|NO-TPM)' 60 || return 1
	figure hvm_create_to_tpm_visible_s "$(elapsed "$t0")"
	wait_console hvm '^GUEST-TPM-DONE' 180 || return 1
	figure hvm_create_to_tpm_done_s "$(elapsed "$t0")"
	ended hvm "[sc]" 90 || return 1
	figure hvm_create_to_gone_s "$(elapsed "$t0")"
	return 0
}

n=1
until attempt; do
	log "attempt $n did not complete: $(xl list hvm 2>&1 | tail -n 1)"
	tail -n 20 "$(dm_log hvm)" 2>/dev/null
	xl destroy hvm 2>/dev/null
	wait_gone hvm 60
	stop_vtpmd
	[ $n -lt 2 ] || fail "the HVM guest did not complete its TPM report in $n attempts"
	mv "$(console_log hvm)" "/tmp/console-hvm-attempt$n.log" 2>/dev/null
	n=$((n + 1))
done
log "attempt $n completed"

# The console log without the carriage returns of the guest's hvc0, so '$' anchors.
con=/tmp/console-hvm.txt
tr -d '\r' <"$(console_log hvm)" >"$con"
grep '^GUEST-' "$con"
grep -q '^GUEST-DMESG: .*tpm_tis.*2\.0 TPM' "$con" || fail "tpm_tis did not report a TPM 2.0"
grep -q '^GUEST-TPM-VISIBLE /dev/tpmrm0 version=2$' "$con" || fail "no /dev/tpmrm0 of a TPM 2.0 in the guest"
grep -q '^GUEST-GETRANDOM-OK: [0-9a-f]\{32\}$' "$con" || fail "tpm2_getrandom through /dev/tpmrm0 failed"
grep -q '^GUEST-PCRREAD-OK: .*sha256.* 7 *: 0x[0-9A-F]\{64\}' "$con" || fail "tpm2_pcrread through /dev/tpmrm0 failed"

# What firmware and kernel sent before tpm2-tools' first command (TPM2_GetRandom), the
# kernel's IMA boot_aggregate among them (one PCR_Extend), and the event log's replay.
awk '/CMD_INIT/ {on = 1} !on {next} /vtpmd: cc 0x17b/ {exit} {for (i = 1; i < NF; i++) if ($i == "cc") print $(i + 1)}' /tmp/vtpmd.log | sort | uniq -c |
	while read -r n cc; do log "$firmware and kernel sent TPM command $cc $n times before tpm2-tools"; done
figure "${firmware}_and_kernel_pcr_extends" "$(awk '/CMD_INIT/ {on = 1} !on {next} /vtpmd: cc 0x17b/ {exit} /vtpmd: cc 0x182 / {n++} END {print n+0}' /tmp/vtpmd.log)"
grep -q '^GUEST-EVENTLOG' "$con" || fail "the guest did not report on the firmware's event log"
! grep -q '^GUEST-EVENTLOG-MISMATCH' "$con" || fail "the firmware's event log does not replay to the PCRs: $(grep -m1 '^GUEST-EVENTLOG-MISMATCH' "$con")"

# The commands must have been answered by vtpmd: TPM2_GetRandom (0x17b), TPM2_PCR_Read (0x17e).
kill -0 "$vtpmd_pid" 2>/dev/null || fail "vtpmd is gone: $(tail -n 5 /tmp/vtpmd.log)"
log "vtpmd answered $(grep -c 'vtpmd: cc ' /tmp/vtpmd.log) TPM commands"
grep -q 'vtpmd: cc 0x17b .* -> rc 0x0$' /tmp/vtpmd.log || fail "vtpmd never answered TPM2_GetRandom"
grep -q 'vtpmd: cc 0x17e .* -> rc 0x0$' /tmp/vtpmd.log || fail "vtpmd never answered TPM2_PCR_Read"
stop_vtpmd

pass "an HVM guest ($firmware) used a TPM 2.0 served by vtpmd through QEMU's tpm-tis"
