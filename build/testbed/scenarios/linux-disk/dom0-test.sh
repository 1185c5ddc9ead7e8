# PV disks on the test bed: a file in dom0 becomes a domU's /dev/xvda through the block
# hotplug script, a loop device and xen-blkback; data crosses both ways. Sourced by dom0's
# init with the helpers of testlib.sh loaded.

dd if=/dev/zero of=/tmp/disk.img bs=1M count=4 2>/dev/null
printf 'WRITTEN-BY-DOM0' | dd of=/tmp/disk.img bs=512 seek=8 conv=notrunc 2>/dev/null

xl_create disk.cfg || fail "xl create disk.cfg failed"
xl block-list disk
wait_console disk 'GUEST-DISK-DONE' 240 || fail "disk guest did not finish"
grep -q 'GUEST-READ: WRITTEN-BY-DOM0' "$(console_log disk)" ||
	fail "disk guest did not read what dom0 wrote"
wait_gone disk 60 || fail "disk guest still running after powering off"

got=$(dd if=/tmp/disk.img bs=512 count=1 2>/dev/null | tr -d '\0')
log "dom0 reads back: $got"
[ "$got" = WRITTEN-BY-GUEST ] || fail "the guest's write is not in the disk file"
# The hotplug script must also have released its loop device on destroy.
[ -z "$(losetup -a)" ] || fail "loop device left behind: $(losetup -a)"

pass "a file-backed PV disk carries data both ways"
