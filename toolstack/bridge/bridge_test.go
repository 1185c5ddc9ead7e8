package bridge

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-tpm/tpm2"
	"github.com/google/go-tpm/tpm2/transport"

	"github.com/xenvtpm/xenvtpm/drivers/tpmfront"
	"github.com/xenvtpm/xenvtpm/swtpm"
	"github.com/xenvtpm/xenvtpm/vtpmdomain/platform"
	"github.com/xenvtpm/xenvtpm/vtpmdomain/vtpm"
)

type nopLog struct{}

func (nopLog) Infof(string, ...any)  {}
func (nopLog) Debugf(string, ...any) {}
func (nopLog) Errorf(string, ...any) {}

// serverLink stands in for the vTPM domain: the vTPM server the domain
// runs, in-process, reached as the control domain's frontend.
type serverLink struct {
	s    *vtpm.Server
	mu   sync.Mutex
	lost chan struct{}
	gone error
	// sent records the command codes that reached the vTPM.
	sent []uint32
}

func newServerLink(t testing.TB) *serverLink {
	s, err := vtpm.NewServer(vtpm.Config{Options: vtpm.Options{Startup: vtpm.StartupClear}, Log: nopLog{}})
	if err != nil {
		t.Fatal(err)
	}
	return &serverLink{s: s, lost: make(chan struct{})}
}

func (l *serverLink) Send(ctx context.Context, loc uint8, cmd []byte) ([]byte, error) {
	if err := l.Gone(); err != nil {
		return nil, err
	}
	l.mu.Lock()
	if len(cmd) >= 10 {
		l.sent = append(l.sent, binary.BigEndian.Uint32(cmd[6:]))
	}
	l.mu.Unlock()
	return l.s.Handle(vtpm.Peer{Name: "0/0", Control: true}, loc, cmd), nil
}
func (l *serverLink) Lost() <-chan struct{} { return l.lost }
func (l *serverLink) Gone() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.gone
}
func (l *serverLink) kill() {
	l.mu.Lock()
	l.gone = tpmfront.ErrGone
	l.mu.Unlock()
	close(l.lost)
}

// qemu is a client doing what QEMU's tpm_emulator.c does.
type qemu struct {
	t    *testing.T
	ctrl *net.UnixConn
	data net.Conn
}

func connectQEMU(t *testing.T, socket string) *qemu {
	t.Helper()
	c, err := net.DialUnix("unix", nil, &net.UnixAddr{Name: socket, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.WriteMsgUnix([]byte{0, 0, 0, swtpm.CmdSetDataFD}, syscall.UnixRights(fds[1]), nil); err != nil {
		t.Fatal(err)
	}
	syscall.Close(fds[1])
	f := os.NewFile(uintptr(fds[0]), "data")
	data, err := net.FileConn(f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { data.Close() })
	q := &qemu{t: t, ctrl: c, data: data}
	q.read(4)
	return q
}

func (q *qemu) read(n int) []byte {
	q.t.Helper()
	b := make([]byte, n)
	q.ctrl.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadFull(q.ctrl, b); err != nil {
		q.t.Fatalf("control answer: %v", err)
	}
	return b
}

func (q *qemu) control(code uint32, body []byte, rspLen int) []byte {
	q.t.Helper()
	if _, err := q.ctrl.Write(append(binary.BigEndian.AppendUint32(nil, code), body...)); err != nil {
		q.t.Fatal(err)
	}
	return q.read(rspLen)
}

// reset is what QEMU sends when it starts the machine.
func (q *qemu) reset() {
	q.t.Helper()
	q.control(swtpm.CmdStop, nil, 4)
	q.control(swtpm.CmdSetBufferSize, []byte{0, 0, 0x10, 0}, 16)
	if rsp := q.control(swtpm.CmdInit, make([]byte, 4), 4); !bytes.Equal(rsp, make([]byte, 4)) {
		q.t.Fatalf("CMD_INIT: % x", rsp)
	}
}

func (q *qemu) tpm() transport.TPM { return transport.FromReadWriter(q.data) }

func start(t *testing.T, link Link) (*Bridge, string, chan error) {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "tpm.sock")
	b, err := Listen(Config{Link: link, Socket: sock, Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.Serve(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return b, sock, done
}

func pcr(t *testing.T, tr transport.TPM, i int) []byte {
	t.Helper()
	r, err := tpm2.PCRRead{PCRSelectionIn: tpm2.TPMLPCRSelection{PCRSelections: []tpm2.TPMSPCRSelection{
		{Hash: tpm2.TPMAlgSHA256, PCRSelect: tpm2.PCClientCompatible.PCRs(uint(i))}}}}.Execute(tr)
	if err != nil {
		t.Fatalf("PCR_Read: %v", err)
	}
	return r.PCRValues.Digests[0].Buffer
}

// A guest's life through the bridge: QEMU's start resets the vTPM, the
// guest starts it, extends a PCR and defines NV; a reboot (a new QEMU)
// brings the PCRs back to their reset values and keeps NV.
func TestGuestLifeThroughBridge(t *testing.T) {
	link := newServerLink(t)
	b, sock, _ := start(t, link)

	q := connectQEMU(t, sock)
	caps := binary.BigEndian.Uint64(q.control(swtpm.CmdGetCapability, nil, 8))
	if caps&(1<<8) != 0 {
		t.Fatalf("capabilities %#x offer state blobs", caps)
	}
	q.reset()
	tr := q.tpm()
	if _, err := (tpm2.GetRandom{BytesRequested: 8}).Execute(tr); err == nil {
		t.Fatal("GetRandom before TPM2_Startup succeeded: CMD_INIT did not reset the vTPM")
	}
	if _, err := (tpm2.Startup{StartupType: tpm2.TPMSUClear}).Execute(tr); err != nil {
		t.Fatalf("guest's Startup: %v", err)
	}
	if _, err := (tpm2.PCRExtend{PCRHandle: tpm2.AuthHandle{Handle: 16, Auth: tpm2.PasswordAuth(nil)},
		Digests: tpm2.TPMLDigestValues{Digests: []tpm2.TPMTHA{{HashAlg: tpm2.TPMAlgSHA256, Digest: bytes.Repeat([]byte{7}, 32)}}}}).Execute(tr); err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(pcr(t, tr, 16), make([]byte, 32)) {
		t.Fatal("PCR 16 not extended")
	}
	nv := tpm2.TPMHandle(0x01500020)
	if _, err := (tpm2.NVDefineSpace{AuthHandle: tpm2.TPMRHOwner, PublicInfo: tpm2.New2B(tpm2.TPMSNVPublic{
		NVIndex: nv, NameAlg: tpm2.TPMAlgSHA256, DataSize: 8,
		Attributes: tpm2.TPMANV{OwnerWrite: true, OwnerRead: true, AuthRead: true, AuthWrite: true, NT: tpm2.TPMNTOrdinary}})}).Execute(tr); err != nil {
		t.Fatal(err)
	}
	q.control(swtpm.CmdShutdown, nil, 4)
	q.ctrl.Close()
	q.data.Close()

	// The guest rebooted: Xen starts a new QEMU, which connects again.
	q2 := connectQEMU(t, sock)
	q2.reset()
	tr2 := q2.tpm()
	// The locality QEMU sets travels with each command: Startup at
	// locality 3 leaves 3 in PCR 0 (PC Client platform profile).
	if rsp := q2.control(swtpm.CmdSetLocality, []byte{3, 0, 0, 0}, 4); !bytes.Equal(rsp, make([]byte, 4)) {
		t.Fatalf("SET_LOCALITY: % x", rsp)
	}
	if _, err := (tpm2.Startup{StartupType: tpm2.TPMSUClear}).Execute(tr2); err != nil {
		t.Fatalf("Startup after reboot: %v", err)
	}
	if got := pcr(t, tr2, 0); got[31] != 3 {
		t.Fatalf("PCR 0 after Startup at locality 3 = %x", got)
	}
	if got := pcr(t, tr2, 16); !bytes.Equal(got, make([]byte, 32)) {
		t.Fatalf("PCR 16 after the reboot = %x, want its reset value", got)
	}
	if _, err := (tpm2.NVReadPublic{NVIndex: nv}).Execute(tr2); err != nil {
		t.Fatalf("NV index gone after the reboot: %v", err)
	}
	if st := b.Stats(); st.Resets != 2 || st.Connections != 2 {
		t.Fatalf("stats %+v", st)
	}
}

// A platform command sent by the guest through QEMU's data channel never
// reaches the vTPM (the bridge's own frontend may send it, the guest may
// not).
func TestGuestCannotSendPlatformCommands(t *testing.T) {
	link := newServerLink(t)
	_, sock, _ := start(t, link)
	q := connectQEMU(t, sock)
	q.reset()
	before := len(link.sent)
	rsp, err := q.tpm().Send(platform.Marshal(platform.CCPlatformReset))
	if err != nil {
		t.Fatal(err)
	}
	if rc := binary.BigEndian.Uint32(rsp[6:]); rc != platform.RCCommandCode {
		t.Fatalf("guest's platform reset answered rc %#x", rc)
	}
	if len(link.sent) != before {
		t.Fatalf("the guest's platform command reached the vTPM: %x", link.sent[before:])
	}
}

// The vTPM domain going away: commands in flight and later fail with
// TPM_RC_FAILURE, never hang; Serve ends with ErrVTPMGone.
func TestVTPMGone(t *testing.T) {
	link := newServerLink(t)
	_, sock, done := start(t, link)
	q := connectQEMU(t, sock)
	q.reset()
	link.kill()
	select {
	case err := <-done:
		if !errors.Is(err, ErrVTPMGone) {
			t.Fatalf("Serve = %v, want ErrVTPMGone", err)
		}
		done <- err
	case <-time.After(10 * time.Second):
		t.Fatal("Serve still running after the vTPM went away")
	}
	if _, err := os.Stat(sock); !os.IsNotExist(err) {
		t.Fatalf("socket left behind: %v", err)
	}
}

// blockLink never answers until its context ends.
type blockLink struct{ lost chan struct{} }

func (l blockLink) Send(ctx context.Context, _ uint8, cmd []byte) ([]byte, error) {
	if _, ok := platform.Code(cmd); ok {
		return platform.Response(0), nil
	}
	<-ctx.Done()
	return nil, tpmfront.ErrCanceled
}
func (l blockLink) Lost() <-chan struct{} { return l.lost }
func (l blockLink) Gone() error           { return nil }

// QEMU's cancel reaches the vTPM as tpmif's CANCEL; the guest gets
// TPM_RC_CANCELED.
func TestCancel(t *testing.T) {
	_, sock, _ := start(t, blockLink{make(chan struct{})})
	q := connectQEMU(t, sock)
	q.reset()
	got := make(chan []byte, 1)
	go func() {
		rsp, _ := q.tpm().Send([]byte{0x80, 0x01, 0, 0, 0, 12, 0, 0, 0x01, 0x7b, 0, 8})
		got <- rsp
	}()
	time.Sleep(50 * time.Millisecond)
	q.control(swtpm.CmdCancelTPMCmd, nil, 4)
	select {
	case rsp := <-got:
		if len(rsp) < 10 || binary.BigEndian.Uint32(rsp[6:]) != rcCanceled {
			t.Fatalf("cancelled command answered % x", rsp)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("cancel did not end the command")
	}
}

func TestListenRefusesNonSocket(t *testing.T) {
	p := filepath.Join(t.TempDir(), "file")
	os.WriteFile(p, nil, 0o600)
	if _, err := Listen(Config{Link: blockLink{}, Socket: p}); err == nil {
		t.Fatal("Listen replaced a regular file")
	}
}
