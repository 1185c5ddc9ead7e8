package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestLinuxGuestQEMU boots a Linux kernel under QEMU (TCG) with
// -tpmdev emulator pointed at vtpmd's swtpm control socket and a TIS
// device, then runs internal/guestclient against /dev/tpmrm0 in the guest.
// It needs VTPMD_TEST_KERNEL (a bzImage with CONFIG_TCG_TIS, e.g. Debian's
// linux-image), qemu-system-x86_64, a static busybox and cpio.
func TestLinuxGuestQEMU(t *testing.T) {
	kernel := os.Getenv("VTPMD_TEST_KERNEL")
	if kernel == "" {
		t.Skip("SKIP: set VTPMD_TEST_KERNEL to a Linux bzImage to boot")
	}
	var tools = map[string]string{}
	for _, tool := range []string{"qemu-system-x86_64", "busybox", "cpio", "gzip"} {
		p, err := exec.LookPath(tool)
		if err != nil {
			t.Skipf("SKIP: %s not installed", tool)
		}
		tools[tool] = p
	}
	dir := t.TempDir()
	root := filepath.Join(dir, "root")
	for _, d := range []string{"bin", "proc", "sys", "dev"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	bb, err := os.ReadFile(tools["busybox"])
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "bin", "busybox"), bb, 0o755); err != nil {
		t.Fatal(err)
	}
	build := exec.Command("go", "build", "-o", filepath.Join(root, "guestclient"), "./internal/guestclient")
	build.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building guestclient: %v\n%s", err, out)
	}
	initScript := `#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t devtmpfs dev /dev
dmesg | grep -i tpm
ls /dev/tpm*
/guestclient
echo GUEST-DONE
poweroff -f
`
	if err := os.WriteFile(filepath.Join(root, "init"), []byte(initScript), 0o755); err != nil {
		t.Fatal(err)
	}
	initrd := filepath.Join(dir, "initrd.gz")
	pack := exec.Command("sh", "-c", "find . | cpio -o -H newc 2>/dev/null | gzip > "+initrd)
	pack.Dir = root
	if out, err := pack.CombinedOutput(); err != nil {
		t.Fatalf("initramfs: %v\n%s", err, out)
	}

	d, err := newDaemon(filepath.Join(dir, "state"), false)
	if err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "ctrl.sock")
	if err := d.listen("", "", "unix:"+sock); err != nil {
		d.close()
		t.Fatal(err)
	}
	defer d.close()

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	q := exec.CommandContext(ctx, tools["qemu-system-x86_64"], "-M", "q35", "-accel", "tcg", "-m", "512",
		"-nographic", "-no-reboot", "-kernel", kernel, "-initrd", initrd, "-append", "console=ttyS0 panic=-1",
		"-chardev", "socket,id=chrtpm,path="+sock, "-tpmdev", "emulator,id=tpm0,chardev=chrtpm",
		"-device", "tpm-tis,tpmdev=tpm0")
	out, err := q.CombinedOutput()
	console := string(out)
	if err != nil && !strings.Contains(console, "GUEST-DONE") {
		t.Fatalf("qemu: %v\n%s", err, console)
	}
	for _, want := range []string{"2.0 TPM", "/dev/tpmrm0", "OK getrandom", "OK pcrread", "OK createprimary", "OK flushcontext", "GUEST-DONE"} {
		if !strings.Contains(console, want) {
			t.Errorf("guest console lacks %q", want)
		}
	}
	if strings.Contains(console, "FAIL ") || t.Failed() {
		t.Fatalf("guest console:\n%s", console)
	}
}
