# Measured boot of a PV/PVH guest from dom0 (as pv-grub measures): `xenvtpm
# measure` attaches dom0 to the vTPM domain as a vtpm frontend of its own
# (gntalloc, the evtchn device, xenstored's socket), resets the vTPM and
# extends the kernel (PCR 4), command line and ramdisk (PCR 5); the guest
# then reads values equal to those computed on the host. Another ramdisk
# gives another PCR 5. `xenvtpm up` does the same around a guest that
# reboots once. Sourced by dom0's init with testlib.sh loaded.

# pcrs DOM: the guest's "PCR bank index hex" lines, sorted.
pcrs() { grep '^PCR ' "$(console_log "$1")" | tr -d '\r' | sort; }

# same_pcrs DOM EXPECTED: the guest read what was computed on the host.
same_pcrs() {
	local got
	got=$(pcrs "$1")
	if [ "$got" != "$(sort "$2")" ]; then
		log "guest's PCRs:"; echo "$got"
		log "expected ($2):"; cat "$2"
		return 1
	fi
}

dom0_devices() { xenstore-ls /local/domain/0/device/vtpm 2>/dev/null | wc -l; }

t0=$(now)
create vtpm1.cfg vtpm1 || fail "xl create vtpm1 failed"
wait_console vtpm1 'serving TPM 2.0' 60 || fail "vtpm1 did not come up"
log "FIGURE vtpm1: xl create to ready: $(elapsed "$t0")s"

t0=$(now)
/test/xenvtpm measure --vtpm vtpm1 guest.cfg >/tmp/measure.out 2>&1 || { cat /tmp/measure.out; fail "xenvtpm measure failed"; }
cat /tmp/measure.out
log "FIGURE xenvtpm measure (attach, reset, 3 extends, detach): $(elapsed "$t0")s"
[ "$(dom0_devices)" = 0 ] || { xenstore-ls /local/domain/0/device; fail "dom0's vtpm device left in xenstore after measure"; }
be=$(xenstore-ls "/local/domain/$(xl domid vtpm1)/backend/vtpm/0" 2>/dev/null | wc -l)
[ "$be" = 0 ] || fail "vtpm1's backend directory for dom0 left behind"
grep -q 'platform reset' "$(console_log vtpm1)" || fail "vtpm1 did not log the platform reset"

create guest.cfg guest || fail "xl create guest failed"
wait_console guest 'GUEST-DONE' 240 || fail "guest did not read its PCRs"
ended guest s 60 || fail "guest still running"
same_pcrs guest guest.expected || fail "PCRs 4 and 5 differ from the values computed on the host"
log "guest's PCRs 4 and 5 equal the measured boot computed on the host"
first5=$(pcrs guest | grep 'sha256 5 ')
keep_log guest a >/dev/null

# Another ramdisk: PCR 5 changes, PCR 4 does not.
/test/xenvtpm measure --vtpm vtpm1 guest-b.cfg >/tmp/measure.out 2>&1 || { cat /tmp/measure.out; fail "xenvtpm measure (b) failed"; }
create guest-b.cfg guest || fail "xl create guest (b) failed"
wait_console guest 'GUEST-DONE' 240 || fail "guest (b) did not read its PCRs"
ended guest s 60 || fail "guest (b) still running"
grep -q 'GUEST-RAMDISK b' "$(console_log guest)" || fail "guest (b) did not boot the other ramdisk"
same_pcrs guest guest-b.expected || fail "guest (b): PCRs differ from the values computed on the host"
[ "$(pcrs guest | grep 'sha256 5 ')" != "$first5" ] || fail "a changed ramdisk left PCR 5 unchanged"
log "another ramdisk: PCR 5 differs, PCR 4 the same, both as computed"
keep_log guest b >/dev/null

# xenvtpm up: starts the vTPM domain, measures before each boot, follows
# the guest's reboot (the PCRs of the second boot are those of a fresh
# measured boot, not accumulated), and shuts the vTPM domain down once the
# guest powered off.
xl shutdown -w vtpm1 >/dev/null 2>&1 || xl destroy vtpm1
wait_gone vtpm1 60 || fail "vtpm1 did not go away"
keep_log vtpm1 first >/dev/null
t0=$(now)
/test/xenvtpm up --vtpm vtpm1.cfg guest-up.cfg >/tmp/up.out 2>&1 || { cat /tmp/up.out; fail "xenvtpm up failed"; }
cat /tmp/up.out
log "FIGURE xenvtpm up, two boots of a PVH guest: $(elapsed "$t0")s"
grep -q 'GUEST-BOOT 1' "$(console_log guest)" && grep -q 'GUEST-BOOT 2' "$(console_log guest)" ||
	fail "the guest did not boot twice under xenvtpm up"
[ "$(grep -c 'measured the boot' /tmp/up.out)" = 2 ] || fail "xenvtpm up did not measure before each boot"
counts=$(pcrs guest | uniq -c | awk '{ print $1 }' | sort -u)
[ "$counts" = 2 ] || fail "the two boots did not read one set of PCRs each"
[ "$(pcrs guest | uniq)" = "$(sort guest-up.expected)" ] || { pcrs guest; fail "PCRs under xenvtpm up differ from the values computed on the host"; }
_domain_gone guest || fail "guest still exists after xenvtpm up returned"
wait_gone vtpm1 60 || fail "xenvtpm up left the vTPM domain it started running"
[ "$(dom0_devices)" = 0 ] || fail "dom0's vtpm device left in xenstore after xenvtpm up"
log "xenvtpm up: both boots measured afresh, guest and vTPM domain gone at the end"

pass "dom0 measured a PVH guest's kernel, command line and ramdisk into its vTPM; PCRs 4 and 5 as computed on the host"
