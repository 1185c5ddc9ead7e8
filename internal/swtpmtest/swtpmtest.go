// Package swtpmtest starts Debian's swtpm (libtpms) as the reference TPM
// that tests compare the engine with, and speaks swtpm's socket
// interface to it: the data channel framed by the TPM header alone and
// the control channel's CMD_SET_LOCALITY (swtpm's man page, swtpm_ioctls).
// It is for tests only.
package swtpmtest

import (
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/xenvtpm/xenvtpm/swtpm"
)

// maxFrame bounds a response read from a data channel.
const maxFrame = 64 * 1024

// FreePortPair returns a port p such that p and p+1 were free a moment
// ago.
func FreePortPair(t testing.TB) int {
	t.Helper()
	for i := 0; i < 50; i++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		p := l.Addr().(*net.TCPAddr).Port
		l.Close()
		if p >= 65534 {
			continue
		}
		l2, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p+1)))
		if err == nil {
			l2.Close()
			return p
		}
	}
	t.Fatal("no free port pair")
	return 0
}

// Conn is a TPM data channel framed by the TPM header only (swtpm's
// socket, vtpmd's swtpm-protocol port); it is a go-tpm transport.TPM.
type Conn struct{ C net.Conn }

// Send sends one command and returns its response. libtpms answers
// TPM_RC_RETRY while it self-tests an algorithm on first use; a client
// resends, and so does Send.
func (r Conn) Send(cmd []byte) ([]byte, error) {
	for {
		rsp, err := r.send(cmd)
		if err != nil || len(rsp) < 10 || binary.BigEndian.Uint32(rsp[6:]) != 0x922 {
			return rsp, err
		}
	}
}

func (r Conn) send(cmd []byte) ([]byte, error) {
	if _, err := r.C.Write(cmd); err != nil {
		return nil, err
	}
	hdr := make([]byte, 10)
	if _, err := io.ReadFull(r.C, hdr); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(hdr[2:])
	if n < 10 || n > maxFrame {
		return nil, fmt.Errorf("bad response size %d", n)
	}
	rsp := make([]byte, n)
	copy(rsp, hdr)
	_, err := io.ReadFull(r.C, rsp[10:])
	return rsp, err
}

// Proc is a running swtpm: its data channel, and its control channel for
// the locality.
type Proc struct {
	Conn
	ctrl net.Conn
}

// SetLocality sets the locality of the following commands
// (CMD_SET_LOCALITY).
func (s *Proc) SetLocality(l uint8) error {
	if _, err := s.ctrl.Write([]byte{0, 0, 0, swtpm.CmdSetLocality, l}); err != nil {
		return err
	}
	var res [4]byte
	if _, err := io.ReadFull(s.ctrl, res[:]); err != nil {
		return err
	}
	if rc := binary.BigEndian.Uint32(res[:]); rc != 0 {
		return fmt.Errorf("swtpm CMD_SET_LOCALITY %d: result %#x", l, rc)
	}
	return nil
}

// Init resets the TPM as a power cycle does (CMD_INIT, _TPM_Init): a
// Startup is needed again.
func (s *Proc) Init() error {
	if _, err := s.ctrl.Write([]byte{0, 0, 0, swtpm.CmdInit, 0, 0, 0, 0}); err != nil {
		return err
	}
	var res [4]byte
	if _, err := io.ReadFull(s.ctrl, res[:]); err != nil {
		return err
	}
	if rc := binary.BigEndian.Uint32(res[:]); rc != 0 {
		return fmt.Errorf("swtpm CMD_INIT: result %#x", rc)
	}
	return nil
}

// Start starts a TPM 2.0 swtpm on a free port pair, already started
// (startup-clear), stopped when the test ends. The test is skipped with
// a SKIP: line when swtpm is not installed.
func Start(t testing.TB) *Proc {
	t.Helper()
	return connect(t, serve(t, "--tpm2", "not-need-init,startup-clear"))
}

// Start12 starts a TPM 1.2 swtpm (libtpms' TPM 1.2) on a free port
// pair, stopped when the test ends. It is left before TPM_Startup, so
// that a test compares Startup itself.
func Start12(t testing.TB) *Proc {
	t.Helper()
	return connect(t, serve(t, "", "not-need-init"))
}

// Start12Manufactured starts a TPM 1.2 swtpm on a state that
// swtpm_setup --createek made (an EK, the flags swtpm_setup leaves), left
// before TPM_Startup. The test is skipped when swtpm_setup is missing.
func Start12Manufactured(t testing.TB) *Proc {
	t.Helper()
	if _, err := exec.LookPath("swtpm_setup"); err != nil {
		t.Skip("SKIP: swtpm_setup not installed (apt-get install swtpm-tools)")
	}
	dir := t.TempDir()
	out, err := exec.Command("swtpm_setup", "--tpm-state", dir, "--createek", "--config", "/dev/null").CombinedOutput()
	if err != nil {
		t.Fatalf("swtpm_setup --createek: %v\n%s", err, out)
	}
	return connect(t, serveDir(t, dir, "", "not-need-init"))
}

// Start12Owned starts a TPM 1.2 swtpm set up as a host owner leaves it
// for the manager: swtpm_setup made the EK and took ownership with owner
// password ownerPass and SRK password srkPass (their SHA-1 digests are
// the secrets, as owner_auth=text:… computes), already started
// (startup-clear). Skipped when swtpm_setup is missing.
func Start12Owned(t testing.TB, ownerPass, srkPass string) *Proc {
	t.Helper()
	if _, err := exec.LookPath("swtpm_setup"); err != nil {
		t.Skip("SKIP: swtpm_setup not installed (apt-get install swtpm-tools)")
	}
	dir := t.TempDir()
	out, err := exec.Command("swtpm_setup", "--tpm-state", dir, "--take-ownership",
		"--ownerpass", ownerPass, "--srkpass", srkPass, "--lock-nvram").CombinedOutput()
	if err != nil {
		t.Fatalf("swtpm_setup --take-ownership: %v\n%s", err, out)
	}
	return connect(t, serveDir(t, dir, "", "not-need-init,startup-clear"))
}

// connect opens the data and control channels of the swtpm on port p.
func connect(t testing.TB, p int) *Proc {
	t.Helper()
	c, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(p))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	ctrl, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(p+1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ctrl.Close() })
	return &Proc{Conn{c}, ctrl}
}

// Serve starts a TPM 2.0 swtpm like Start and returns its data port (the
// control port is the next one) for clients of their own, such as
// tpm2-tss's swtpm TCTI; swtpm serves one data connection at a time.
func Serve(t testing.TB) int {
	t.Helper()
	return serve(t, "--tpm2", "not-need-init,startup-clear")
}

// Serve12 starts a TPM 1.2 swtpm like Start12 and returns its data port
// (the control port is the next one), for tests that drive both channels
// themselves.
func Serve12(t testing.TB) int {
	t.Helper()
	return serve(t, "", "not-need-init")
}

// serve starts swtpm with family ("--tpm2", or "" for TPM 1.2) and
// --flags flags, and returns its data port.
func serve(t testing.TB, family, flags string) int {
	t.Helper()
	return serveDir(t, t.TempDir(), family, flags)
}

// serveDir is serve with the TPM state in dir.
func serveDir(t testing.TB, dir, family, flags string) int {
	t.Helper()
	if _, err := exec.LookPath("swtpm"); err != nil {
		t.Skip("SKIP: swtpm not installed (apt-get install swtpm)")
	}
	p := FreePortPair(t)
	args := []string{"socket", "--tpmstate", "dir=" + dir,
		"--server", "type=tcp,port=" + strconv.Itoa(p) + ",bindaddr=127.0.0.1",
		"--ctrl", "type=tcp,port=" + strconv.Itoa(p+1) + ",bindaddr=127.0.0.1",
		"--flags", flags}
	if family != "" {
		args = append(args, family)
	}
	cmd := exec.Command("swtpm", args...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	var err error
	for i := 0; i < 100; i++ {
		var c net.Conn
		if c, err = net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(p)); err == nil {
			c.Close()
			return p
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatal(err)
	return 0
}
