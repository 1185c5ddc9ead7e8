# The TPM path of the test bed: swtpm behind QEMU's tpm-tis, left alone by dom0, passed to
# a PVH domU with iomem, driven there by the kernel's tpm_tis and tpm2-tools. Sourced by
# dom0's init with the helpers of testlib.sh loaded.

[ ! -e /dev/tpm0 ] || fail "dom0 took the TPM (initcall_blacklist=init_tis missing?)"
did=$(devmem 0xfed40f00 32)
[ "$did" = 0x00011014 ] || fail "no tpm-tis at 0xfed40000 (DID_VID $did)"

xl_create tpm.cfg || fail "xl create tpm.cfg failed"
wait_console tpm 'GUEST-TPM-DONE' 240 || fail "tpm guest did not finish"
log="$(console_log tpm)"
grep -q 'GUEST-GETRANDOM-OK: [0-9a-f]\{32\}' "$log" || fail "TPM2_GetRandom failed in the guest"
grep -q 'GUEST-PCRREAD-OK: .*sha256' "$log" || fail "TPM2_PCR_Read failed in the guest"
wait_gone tpm 60 || fail "tpm guest still running after powering off"

pass "a PVH domU ran TPM 2.0 commands on the passed-through tpm-tis"
