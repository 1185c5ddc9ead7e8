package main

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/xenvtpm/xenvtpm/internal/qemuguest"
)

// TestLinuxGuestQEMU boots a Linux kernel under QEMU (TCG) with
// -tpmdev emulator pointed at vtpmd's swtpm control socket and a TIS
// device, then runs internal/guestclient against /dev/tpmrm0 in the guest.
// It needs VTPMD_TEST_KERNEL (a bzImage with CONFIG_TCG_TIS, e.g. Debian's
// linux-image), qemu-system-x86_64, a static busybox and cpio.
func TestLinuxGuestQEMU(t *testing.T) {
	g := qemuguest.Prepare(t, `#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t devtmpfs dev /dev
dmesg | grep -i tpm
ls /dev/tpm*
/guestclient
echo GUEST-DONE
poweroff -f
`, map[string]string{"guestclient": "./internal/guestclient"})

	console := runGuest(t, g, family20)
	for _, want := range []string{"2.0 TPM", "/dev/tpmrm0", "OK getrandom", "OK pcrread", "OK createprimary", "OK flushcontext", "GUEST-DONE"} {
		if !strings.Contains(console, want) {
			t.Errorf("guest console lacks %q", want)
		}
	}
	if strings.Contains(console, "FAIL ") || t.Failed() {
		t.Fatalf("guest console:\n%s", console)
	}
}

// runGuest starts a daemon of the family and boots the guest with a TIS
// device whose TPM is the daemon, reached through its control socket as
// libvirt would; it returns the guest's console.
func runGuest(t *testing.T, g *qemuguest.Guest, fam family) string {
	t.Helper()
	dir := t.TempDir()
	d, err := newDaemon(filepath.Join(dir, "state"), fam, false)
	if err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "ctrl.sock")
	if err := d.listen("", "", "unix:"+sock); err != nil {
		d.close()
		t.Fatal(err)
	}
	defer d.close()
	return g.Run(t, 5*time.Minute, "-no-reboot",
		"-chardev", "socket,id=chrtpm,path="+sock, "-tpmdev", "emulator,id=tpm0,chardev=chrtpm",
		"-device", "tpm-tis,tpmdev=tpm0")
}

// TestLinuxGuestQEMUTPM12 is TestLinuxGuestQEMU with a TPM 1.2 daemon:
// QEMU's probe finds a 1.2 TPM, Linux's tpm_tis registers it as one and
// starts it (TPM_Startup), IMA extends PCR 10, and the sysfs files and
// the TPM's hwrng read.
func TestLinuxGuestQEMUTPM12(t *testing.T) {
	g := qemuguest.Prepare(t, `#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t devtmpfs dev /dev
mkdir -p /tmp
dmesg | grep -i tpm
d=/sys/class/tpm/tpm0/device
[ -e /sys/class/tpm/tpm0/pcrs ] && d=/sys/class/tpm/tpm0
for f in pcrs caps pubek enabled active owned; do
	if cat $d/$f > /tmp/$f; then echo "OK sysfs $f"; cat /tmp/$f | head -3; else echo "FAIL sysfs $f"; fi
done
# IMA extends its boot_aggregate into PCR 10 as the kernel starts.
grep "^PCR-10:" $d/pcrs
grep "^PCR-10:" $d/pcrs | grep -qv "PCR-10: 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00" && echo "OK pcr10 extended"
cat /sys/class/misc/hw_random/rng_current
if head -c 32 /dev/hwrng | od -An -tx1 | grep -q .; then echo "OK hwrng"; else echo "FAIL hwrng"; fi
echo GUEST-DONE
poweroff -f
`, nil)

	console := runGuest(t, g, family12)
	for _, want := range []string{"1.2 TPM", "OK sysfs pcrs", "OK sysfs caps", "OK sysfs pubek", "OK pcr10 extended", "tpm-rng", "OK hwrng", "GUEST-DONE"} {
		if !strings.Contains(console, want) {
			t.Errorf("guest console lacks %q", want)
		}
	}
	if strings.Contains(console, "FAIL ") || strings.Contains(console, "TPM error") || t.Failed() {
		t.Fatalf("guest console:\n%s", console)
	}
}
