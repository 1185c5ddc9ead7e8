# An HVM Linux guest gets its vTPM domain as an ordinary TPM 2.0: QEMU's
# tpm-tis backed by `xenvtpm bridge` in dom0, which forwards every command
# through a vtpm frontend of dom0's own to the guest's vTPM domain (its
# state kept through the manager on swtpm). `xenvtpm up` starts bridge and
# guest and follows the guest's reboot. The guest kernel finds a TPM 2.0,
# tpm2-tools run through /dev/tpmrm0, IMA's PCR 10 replays, a reboot resets
# the PCRs and keeps NV and keys, and destroying the vTPM domain under the
# running guest makes its TPM fail without hurting guest or QEMU.
# Sourced by dom0's init with testlib.sh loaded.

dm_alive() { # dm_alive DOMID: the device model of that domain runs (libxl gives it -xen-domid)
	local c
	for c in /proc/[0-9]*/cmdline; do
		tr '\0' ' ' <"$c" 2>/dev/null | grep -q -e "qemu-system-i386 .*-xen-domid $1 " && return 0
	done
	return 1
}

# boot N: the console lines of the last complete attempt of the guest's boot N, from
# its "GUEST-BOOT N" to its "GUEST-DONE boot=N". A boot cut short (the software CPU
# has made the guest triple-fault, which Xen turns into a reboot) is run again by the
# guest and its partial lines are left out.
boot() {
	awk -v b="GUEST-BOOT $1" -v d="GUEST-DONE boot=$1" '
		{ sub(/\r$/, "") }
		$0 ~ "^" b "$" { buf = ""; on = 1 }
		on { buf = buf $0 "\n" }
		on && $0 ~ "^" d { out = buf; on = 0 }
		END { printf "%s", out }' "$(console_log hvm)"
}

steps_ok() { # steps_ok BOOT: the steps of that boot passed (one STEP-FAIL fails)
	boot "$1" | grep '^STEP-' | while read -r l; do log "$l"; done
	! boot "$1" | grep -q '^STEP-FAIL'
}

[ ! -e /dev/tpm0 ] || fail "dom0 took the TPM (initcall_blacklist=init_tis missing?)"
release_locality0
mv /test/mgr.img /tmp/mgr.img && mv /test/vtpm.img /tmp/vtpm.img || fail "cannot move the disks to /tmp"
mkdir -p /run/xenvtpm

/test/xenvtpm check-dm >/tmp/check-dm.out 2>&1
cat /tmp/check-dm.out
grep -q 'usable: yes' /tmp/check-dm.out || fail "xenvtpm check-dm: the device model cannot serve a TPM"

create mgr.cfg mgr || fail "xl create mgr.cfg failed"
wait_console mgr 'serving vTPM domains|cannot start' 240 || fail "manager neither serving nor refusing"
grep -q 'serving vTPM domains' "$(console_log mgr)" || fail "manager refused: $(grep -m1 'cannot start' "$(console_log mgr)")"
create vtpm.cfg vtpm || fail "xl create vtpm.cfg failed"
wait_console vtpm 'serving TPM 2.0|REFUSED' 240 || fail "vTPM neither serving nor refusing"
grep -q 'serving TPM 2.0' "$(console_log vtpm)" || fail "vTPM refused: $(grep -m1 REFUSED "$(console_log vtpm)")"

t0=$(now)
/test/xenvtpm up --vtpm vtpm.cfg hvm.cfg >/tmp/up.log 2>&1 &
up=$!
wait_console hvm 'TPM-VISIBLE' 900 || { cat /tmp/up.log; fail "the HVM guest did not come up with a TPM"; }
log "FIGURE xenvtpm up (bridge, xl create) to the TPM visible in the HVM guest: $(elapsed "$t0")s ($(grep -m1 TPM-VISIBLE "$(console_log hvm)"))"
wait_progress hvm 'GUEST-DONE boot=1' 1500 '^(STEP|IMA|FIGURE|GUEST)' || { cat /tmp/up.log; fail "the HVM guest's first boot did not finish"; }
c=$(console_log hvm)
grep -E 'tpm_tis|TPM-VERSION|IMA-|EVENTLOG' "$c" | while read -r l; do log "guest: $l"; done
grep -q 'TPM-VERSION 2' "$c" || fail "the guest kernel did not find a TPM 2.0"
grep -q 'tpm_tis.*2\.0 TPM' "$c" || fail "no 'tpm_tis ... 2.0 TPM' from the guest kernel"
steps_ok 1 || fail "boot 1: a TPM step failed"
[ "$(boot 1 | grep -c '^IMA-OK')" = 2 ] ||
	fail "boot 1: IMA's PCR 10 does not replay: $(grep -m1 IMA-FAIL "$c")"
boot 1 | grep '^FIGURE' | while read -r l; do log "HVM guest (bridge): $l"; done
boot 1 | grep -q '^GUEST-BENCH-DONE' || fail "the HVM guest's benchmark failed"

wait_progress hvm 'GUEST-DONE boot=2' 900 '^(STEP|IMA|FIGURE|GUEST)' || { cat /tmp/up.log; fail "the HVM guest did not come back after its reboot"; }
steps_ok 2 || fail "boot 2: a step failed (PCRs reset, NV and key kept)"
[ "$(boot 2 | grep -c '^IMA-OK')" = 2 ] ||
	fail "boot 2: IMA's PCR 10 does not replay: $(grep IMA-FAIL "$c" | tail -n 1)"
# SeaBIOS neither starts nor measures a TPM under Xen (docs/hvm-guests.md): no event log.
boot 2 | grep -E '^EVENTLOG' | while read -r l; do log "guest: $l"; done
boot 2 | grep -q '^EVENTLOG' || fail "boot 2: the guest did not report on the firmware's event log"
grep -q 'guest platform reset 2' /tmp/up.log || fail "the reboot did not reset the vTPM through the bridge"
n=$(grep -c '^GUEST-TYPE' "$c")
[ "$n" = 2 ] || log "the guest booted $n times, not 2: $(xl dmesg | grep -c 'Triple fault') triple faults under the software CPU"
log "reboot: PCR 16 reset, the guest's Startup accepted, NV index and persistent key kept"
log "FIGURE bridge (xenvtpm up) resident memory: $(awk '/VmRSS/ { print $2, $3 }' /proc/$up/status), peak $(awk '/VmHWM/ { print $2, $3 }' /proc/$up/status)"

# The same kernel as a PVH guest through xen-tpmfront, same vTPM domain.
create pvh.cfg pvh || fail "xl create pvh.cfg failed"
wait_progress pvh 'GUEST-BENCH-(DONE|FAIL)' 600 '^(FIGURE|GUEST)' || fail "the PVH guest's benchmark did not finish"
grep -h 'FIGURE' "$(console_log pvh)" | while read -r l; do log "PVH guest (xen-tpmfront): $l"; done
grep -q 'GUEST-BENCH-DONE' "$(console_log pvh)" || fail "the PVH guest's benchmark failed"
ended pvh s 60 || fail "pvh still running"

# The vTPM domain destroyed under the running HVM guest.
wait_console hvm 'PROBE-OK' 60 || fail "the guest's probe never succeeded"
xl destroy vtpm
t0=$(now)
wait_console hvm 'PROBE-FAIL' 120 || fail "the guest's TPM did not fail once its vTPM domain was gone"
log "FIGURE vTPM domain destroyed to the guest's first failed command: $(elapsed "$t0")s"
n=$(grep -c 'PROBE-FAIL' "$c")
sleep 5
[ "$(grep -c 'PROBE-FAIL' "$c")" -gt "$n" ] || fail "the guest stopped running (no probe after the failure)"
xl domid hvm >/dev/null 2>&1 || fail "the HVM guest is gone"
dm_alive "$(xl domid hvm)" || fail "the guest's QEMU is gone"
grep -h 'PROBE-FAIL' "$c" | head -n 2 | while read -r l; do log "guest: $l"; done
_wait_for "xenvtpm up exits" 60 sh -c "! kill -0 $up 2>/dev/null" || fail "xenvtpm up still running after the vTPM domain was destroyed"
log "xenvtpm up's log:"
cat /tmp/up.log
grep -q 'vTPM domain is gone' /tmp/up.log || fail "the bridge did not say its vTPM domain is gone"
xl destroy hvm
wait_gone hvm 60
pass "HVM guest served through the bridge: TPM 2.0, tpm2-tools, IMA, reboot, vTPM loss survived"
