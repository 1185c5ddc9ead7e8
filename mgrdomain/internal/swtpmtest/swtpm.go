// Package swtpmtest runs Debian's swtpm (libtpms) as a real TPM 2.0 or
// TPM 1.2 peer for host tests of the manager: the "hardware" TPM behind
// mgrdomain/hwtpm.
package swtpmtest

import (
	"net"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/google/go-tpm/tpm2"
	"github.com/google/go-tpm/tpm2/transport"
	swtpmsock "github.com/xenvtpm/xenvtpm/internal/swtpmtest"
)

// Swtpm is Debian's swtpm (libtpms) as the hardware TPM: a real TPM 2.0
// peer for host tests. The state lives in Dir, so Restart gives the same
// TPM after a "reboot" (PCRs reset, NV and seeds kept).
type Swtpm struct {
	t        testing.TB
	Dir      string
	family   []string // "--tpm2", or nothing for TPM 1.2
	cmd      *exec.Cmd
	conn     net.Conn
	ctrlPort int
}

// StartSwtpm starts swtpm with state in dir ("" for a fresh temp dir).
func StartSwtpm(t testing.TB, dir string) *Swtpm {
	t.Helper()
	if _, err := exec.LookPath("swtpm"); err != nil {
		t.Skip("SKIP: swtpm not installed")
	}
	if dir == "" {
		dir = t.TempDir()
	}
	s := &Swtpm{t: t, Dir: dir, family: []string{"--tpm2"}}
	s.start()
	t.Cleanup(s.Stop)
	return s
}

func (s *Swtpm) start() {
	s.t.Helper()
	for attempt := 0; ; attempt++ {
		p := swtpmsock.FreePortPair(s.t)
		args := append([]string{"socket"}, s.family...)
		args = append(args, "--tpmstate", "dir="+s.Dir,
			"--server", "type=tcp,port="+strconv.Itoa(p)+",bindaddr=127.0.0.1",
			"--ctrl", "type=tcp,port="+strconv.Itoa(p+1)+",bindaddr=127.0.0.1",
			"--flags", "not-need-init,startup-clear")
		cmd := exec.Command("swtpm", args...)
		if err := cmd.Start(); err != nil {
			s.t.Fatal(err)
		}
		var c net.Conn
		var err error
		for range 100 {
			if c, err = net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(p)); err == nil {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		if err == nil {
			s.cmd, s.conn, s.ctrlPort = cmd, c, p+1
			return
		}
		cmd.Process.Kill()
		cmd.Wait()
		if attempt == 3 {
			s.t.Fatalf("swtpm did not come up: %v", err)
		}
	}
}

// TPM is the data channel.
func (s *Swtpm) TPM() transport.TPM { return swtpmsock.Conn{C: s.conn} }

// Stop shuts the TPM down in order and ends the process.
func (s *Swtpm) Stop() {
	if s.cmd == nil {
		return
	}
	if len(s.family) > 0 {
		tpm2.Shutdown{ShutdownType: tpm2.TPMSUClear}.Execute(s.TPM())
	}
	s.conn.Close()
	s.cmd.Process.Kill()
	s.cmd.Wait()
	s.cmd = nil
}

// Restart is a reboot of the host: same NV state, PCRs reset.
func (s *Swtpm) Restart() {
	s.Stop()
	s.start()
}

// ExtendPCR changes a PCR (SHA-256 bank).
func ExtendPCR(t testing.TB, tr transport.TPM, pcr uint) {
	t.Helper()
	_, err := tpm2.PCRExtend{
		PCRHandle: tpm2.AuthHandle{Handle: tpm2.TPMHandle(pcr), Auth: tpm2.PasswordAuth(nil)},
		Digests: tpm2.TPMLDigestValues{Digests: []tpm2.TPMTHA{{
			HashAlg: tpm2.TPMAlgSHA256, Digest: make([]byte, 32),
		}}},
	}.Execute(tr)
	if err != nil {
		t.Fatalf("extend PCR %d: %v", pcr, err)
	}
}
