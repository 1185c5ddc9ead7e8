// Package qemuguest boots a Linux guest under plain QEMU (TCG) for host
// tests: a busybox initramfs with the test's init script and static Go
// programs, Debian's kernel (VTPMD_TEST_KERNEL, which build/test-all.sh
// sets to the test bed's), its console returned as text. Tests that need
// what is missing skip with a SKIP: line.
package qemuguest

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// Guest is a prepared guest.
type Guest struct {
	Kernel, Initrd string
	qemu           string
}

// Prepare builds the initramfs: init is /init's text (busybox sh), and
// programs maps guest paths to Go package patterns built static for
// linux/amd64. It skips the test when the kernel or a tool is missing.
func Prepare(t *testing.T, init string, programs map[string]string) *Guest {
	t.Helper()
	kernel := os.Getenv("VTPMD_TEST_KERNEL")
	if kernel == "" {
		t.Skip("SKIP: set VTPMD_TEST_KERNEL to a Linux bzImage to boot")
	}
	tools := map[string]string{}
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
	for dst, pkg := range programs {
		build := exec.Command("go", "build", "-o", filepath.Join(root, dst), pkg)
		build.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64")
		if out, err := build.CombinedOutput(); err != nil {
			t.Fatalf("building %s: %v\n%s", pkg, err, out)
		}
	}
	if err := os.WriteFile(filepath.Join(root, "init"), []byte(init), 0o755); err != nil {
		t.Fatal(err)
	}
	initrd := filepath.Join(dir, "initrd.gz")
	pack := exec.Command("sh", "-c", "find . | cpio -o -H newc 2>/dev/null | gzip > "+initrd)
	pack.Dir = root
	if out, err := pack.CombinedOutput(); err != nil {
		t.Fatalf("initramfs: %v\n%s", err, out)
	}
	return &Guest{Kernel: kernel, Initrd: initrd, qemu: tools["qemu-system-x86_64"]}
}

// Run boots the guest on a q35 machine with extra QEMU arguments (the
// TPM's) until QEMU exits or timeout passes, and returns the console.
// The guest ends QEMU with `poweroff -f`; extra may omit -no-reboot so a
// guest reboot resets the machine within the same QEMU.
func (g *Guest) Run(t *testing.T, timeout time.Duration, extra ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	args := append([]string{"-M", "q35", "-accel", "tcg", "-m", "512", "-nographic",
		"-kernel", g.Kernel, "-initrd", g.Initrd, "-append", "console=ttyS0 panic=-1"}, extra...)
	out, err := exec.CommandContext(ctx, g.qemu, args...).CombinedOutput()
	if err != nil && ctx.Err() != nil {
		t.Logf("QEMU stopped after %v", timeout)
	}
	return string(out)
}
