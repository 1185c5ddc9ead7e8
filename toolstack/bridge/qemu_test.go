package bridge

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/xenvtpm/xenvtpm/internal/qemuguest"
)

// TestLinuxGuestQEMU: QEMU itself (tpm-crb on q35, -tpmdev emulator)
// against the bridge, the vTPM domain replaced by the vTPM server in
// process. A Linux guest uses the TPM, extends PCR 16, defines NV and
// reboots; QEMU resets the machine (CMD_INIT), and the second boot finds
// PCR 16 reset and the NV index kept.
func TestLinuxGuestQEMU(t *testing.T) {
	g := qemuguest.Prepare(t, `#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t devtmpfs dev /dev; mkdir -p /tmp
/guestcheck > /tmp/out 2>&1
cat /tmp/out
if grep -q '^BOOT 1' /tmp/out && ! grep -q FAIL /tmp/out; then reboot -f; fi
echo GUEST-DONE
poweroff -f
`, map[string]string{"guestcheck": "./internal/guestcheck"})

	link := newServerLink(t)
	sock := filepath.Join(t.TempDir(), "tpm.sock")
	b, err := Listen(Config{Link: link, Socket: sock, Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.Serve(ctx) }()
	defer func() { cancel(); <-done }()

	console := g.Run(t, 8*time.Minute,
		"-chardev", "socket,id=chrtpm,path="+sock, "-tpmdev", "emulator,id=tpm0,chardev=chrtpm",
		"-device", "tpm-crb,tpmdev=tpm0")
	for _, want := range []string{"TPM-DRIVER tpm_crb VERSION 2", "OK getrandom", "OK createprimary", "OK pcrextend 16", "OK nvdefine", "BOOT 1",
		"OK reboot reset PCR 16", "OK NV index kept across the reboot", "BOOT 2", "GUEST-DONE"} {
		if !strings.Contains(console, want) {
			t.Errorf("guest console lacks %q", want)
		}
	}
	if st := b.Stats(); st.Resets < 2 {
		t.Errorf("%d platform resets through the bridge, want one per boot", st.Resets)
	}
	if strings.Contains(console, "FAIL ") || t.Failed() {
		t.Fatalf("guest console:\n%s", console)
	}
}
