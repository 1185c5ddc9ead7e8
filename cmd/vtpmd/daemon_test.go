package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	gt "github.com/google/go-tpm/tpm2"
	"github.com/google/go-tpm/tpm2/transport"
	"github.com/google/go-tpm/tpm2/transport/tcp"

	"github.com/xenvtpm/xenvtpm/internal/swtpmtest"
	"github.com/xenvtpm/xenvtpm/swtpm"
)

// freePort returns a port p such that p and p+1 were free a moment ago.
func freePort(t testing.TB) int { return swtpmtest.FreePortPair(t) }

func itoa(i int) string { return strconv.Itoa(i) }

type testDaemon struct {
	d     *daemon
	mssim string
	swtpm string
	ctrl  string
	dir   string
}

func startDaemon(t testing.TB, dir string) *testDaemon {
	t.Helper()
	return startDaemonFamily(t, dir, family20)
}

func startDaemonFamily(t testing.TB, dir string, f family) *testDaemon {
	t.Helper()
	d, err := newDaemon(dir, f, false)
	if err != nil {
		t.Fatal(err)
	}
	td := &testDaemon{d: d, dir: dir}
	// Ports picked by freePort can be taken by someone else before we
	// bind; try a few pairs.
	for attempt := 0; ; attempt++ {
		td.mssim = "127.0.0.1:" + itoa(freePort(t))
		q := freePort(t)
		td.swtpm = "127.0.0.1:" + itoa(q)
		td.ctrl = "127.0.0.1:" + itoa(q+1)
		err = d.listen(td.mssim, td.swtpm, td.ctrl)
		if err == nil {
			break
		}
		for _, l := range d.listeners {
			l.Close()
		}
		d.wg.Wait()
		d.listeners, d.addrs = nil, nil
		if attempt == 4 {
			d.close()
			t.Fatal(err)
		}
	}
	t.Cleanup(func() { d.close() })
	return td
}

// startedTPM opens the daemon's mssim port, closed at the test's end, and
// sends TPM2_Startup(CLEAR).
func startedTPM(t testing.TB, addr string) transport.TPM {
	t.Helper()
	tpm := openMssim(t, addr)
	t.Cleanup(func() { tpm.Close() })
	if _, err := (gt.Startup{StartupType: gt.TPMSUClear}).Execute(tpm); err != nil {
		t.Fatal(err)
	}
	return tpm
}

func openMssim(t testing.TB, addr string) transport.TPMCloser {
	t.Helper()
	host, port, _ := splitHostPortNum(addr)
	tpm, err := tcp.Open(tcp.Config{
		CommandAddress:  addr,
		PlatformAddress: net.JoinHostPort(host, itoa(port+1)),
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := tpm.PowerOn(); err != nil {
		t.Fatal(err)
	}
	return tpm
}

func TestMssimGoTPM(t *testing.T) {
	td := startDaemon(t, t.TempDir())
	tpm := startedTPM(t, td.mssim)
	r, err := (gt.GetRandom{BytesRequested: 32}).Execute(tpm)
	if err != nil || len(r.RandomBytes.Buffer) != 32 {
		t.Fatalf("GetRandom: %v", err)
	}
	cp, err := (gt.CreatePrimary{PrimaryHandle: gt.TPMRHOwner, InPublic: gt.New2B(gt.ECCSRKTemplate)}).Execute(tpm)
	if err != nil {
		t.Fatal(err)
	}
	// A salted, parameter-encrypting session over the network path.
	pub, err := cp.OutPublic.Contents()
	if err != nil {
		t.Fatal(err)
	}
	sess := gt.HMAC(gt.TPMAlgSHA256, 16, gt.Salted(cp.ObjectHandle, *pub), gt.AESEncryption(128, gt.EncryptInOut))
	rh, err := (gt.Hash{Data: gt.TPM2BMaxBuffer{Buffer: []byte("abc")}, HashAlg: gt.TPMAlgSHA256, Hierarchy: gt.TPMRHNull}).Execute(tpm, sess)
	if err != nil {
		t.Fatalf("Hash in an encrypting salted session: %v", err)
	}
	want := sha256.Sum256([]byte("abc"))
	if !bytes.Equal(rh.OutHash.Buffer, want[:]) {
		t.Fatalf("Hash through parameter encryption = %x", rh.OutHash.Buffer)
	}
}

func rawCmd(t testing.TB, c net.Conn, cmd []byte) []byte {
	t.Helper()
	if _, err := c.Write(cmd); err != nil {
		t.Fatal(err)
	}
	hdr := make([]byte, 10)
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := readFull(c, hdr); err != nil {
		t.Fatal(err)
	}
	rest := make([]byte, binary.BigEndian.Uint32(hdr[2:])-10)
	if _, err := readFull(c, rest); err != nil {
		t.Fatal(err)
	}
	return append(hdr, rest...)
}

func readFull(c net.Conn, b []byte) (int, error) {
	n := 0
	for n < len(b) {
		m, err := c.Read(b[n:])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

func ctrl(t testing.TB, c net.Conn, req []byte, rspLen int) []byte {
	t.Helper()
	if _, err := c.Write(req); err != nil {
		t.Fatal(err)
	}
	b := make([]byte, rspLen)
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := readFull(c, b); err != nil {
		t.Fatal(err)
	}
	return b
}

func TestSwtpmProtocol(t *testing.T) {
	td := startDaemon(t, t.TempDir())
	cc, err := net.Dial("tcp", td.ctrl)
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	caps := binary.BigEndian.Uint64(ctrl(t, cc, []byte{0, 0, 0, swtpm.CmdGetCapability}, 8))
	if caps&(swtpm.CapInit|swtpm.CapSetLocality|swtpm.CapSetBufferSize|swtpm.CapStop) != swtpm.CapInit|swtpm.CapSetLocality|swtpm.CapSetBufferSize|swtpm.CapStop {
		t.Fatalf("capabilities 0x%x lack what QEMU requires", caps)
	}
	if got := ctrl(t, cc, []byte{0, 0, 0, swtpm.CmdInit, 0, 0, 0, 0}, 4); !bytes.Equal(got, []byte{0, 0, 0, 0}) {
		t.Fatalf("INIT: % x", got)
	}
	sb := ctrl(t, cc, []byte{0, 0, 0, swtpm.CmdSetBufferSize, 0, 0, 0, 0}, 16)
	if binary.BigEndian.Uint32(sb[4:]) != 4096 {
		t.Fatalf("SET_BUFFERSIZE: % x", sb)
	}
	if got := ctrl(t, cc, []byte{0, 0, 0, swtpm.CmdSetLocality, 3}, 4); !bytes.Equal(got, []byte{0, 0, 0, 0}) {
		t.Fatalf("SET_LOCALITY: % x", got)
	}
	dc, err := net.Dial("tcp", td.swtpm)
	if err != nil {
		t.Fatal(err)
	}
	defer dc.Close()
	// Startup(CLEAR) at locality 3: PCR 0 then ends in 03 (PC Client).
	if rsp := rawCmd(t, dc, []byte{0x80, 0x01, 0, 0, 0, 0x0C, 0, 0, 0x01, 0x44, 0, 0}); binary.BigEndian.Uint32(rsp[6:]) != 0 {
		t.Fatalf("Startup: % x", rsp)
	}
	tr := transport.FromReadWriter(dc)
	r, err := (gt.PCRRead{PCRSelectionIn: gt.TPMLPCRSelection{PCRSelections: []gt.TPMSPCRSelection{
		{Hash: gt.TPMAlgSHA256, PCRSelect: gt.PCClientCompatible.PCRs(0)}}}}).Execute(tr)
	if err != nil {
		t.Fatal(err)
	}
	v := r.PCRValues.Digests[0].Buffer
	if v[31] != 3 {
		t.Fatalf("PCR0 after Startup at locality 3 = %x", v)
	}
	// TPM 1.2 command on the raw channel: TPM_BADTAG, channel stays up.
	rsp := rawCmd(t, dc, []byte{0x00, 0xC1, 0, 0, 0, 0x0A, 0, 0, 0, 0x99})
	if !bytes.Equal(rsp, []byte{0x00, 0xC4, 0, 0, 0, 10, 0, 0, 0, 0x1E}) {
		t.Fatalf("1.2 command: % x", rsp)
	}
}

func TestSecondDaemonRefused(t *testing.T) {
	dir := t.TempDir()
	startDaemon(t, dir)
	if _, err := newDaemon(dir, family20, false); err == nil || !strings.Contains(err.Error(), "in use") {
		t.Fatalf("second daemon on %s: %v", dir, err)
	}
}

func TestStatePersistsAcrossRestart(t *testing.T) {
	dir := t.TempDir()
	td := startDaemon(t, dir)
	tpm := openMssim(t, td.mssim)
	if _, err := (gt.Startup{StartupType: gt.TPMSUClear}).Execute(tpm); err != nil {
		t.Fatal(err)
	}
	ek1, err := (gt.CreatePrimary{PrimaryHandle: gt.TPMRHEndorsement, InPublic: gt.New2B(gt.RSAEKTemplate)}).Execute(tpm)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := (gt.EvictControl{Auth: gt.TPMRHOwner, ObjectHandle: &gt.NamedHandle{Handle: ek1.ObjectHandle, Name: ek1.Name},
		PersistentHandle: 0x81010001}).Execute(tpm); err != nil {
		t.Fatal(err)
	}
	tpm.Close()
	if err := td.d.close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, family20.stateFile())); err != nil {
		t.Fatal(err)
	}
	td2 := startDaemon(t, dir)
	tpm2 := startedTPM(t, td2.mssim)
	rp, err := (gt.ReadPublic{ObjectHandle: gt.TPMHandle(0x81010001)}).Execute(tpm2)
	if err != nil {
		t.Fatalf("persistent EK after restart: %v", err)
	}
	if !bytes.Equal(rp.Name.Buffer, ek1.Name.Buffer) {
		t.Fatal("persistent EK changed across restart")
	}
	ek2, err := (gt.CreatePrimary{PrimaryHandle: gt.TPMRHEndorsement, InPublic: gt.New2B(gt.RSAEKTemplate)}).Execute(tpm2)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(ek2.Name.Buffer, ek1.Name.Buffer) {
		t.Fatal("EK not reproduced from the stored seed")
	}
}

// The engine writes DA counters and the clock lazily; the daemon's stop
// writes them, as an orderly stop: the restarted TPM has the failures
// counted once each and a safe clock.
func TestStopWritesLazyState(t *testing.T) {
	dir := t.TempDir()
	td := startDaemon(t, dir)
	tpm := openMssim(t, td.mssim)
	if _, err := (gt.Startup{StartupType: gt.TPMSUClear}).Execute(tpm); err != nil {
		t.Fatal(err)
	}
	const idx = gt.TPMHandle(0x01500020)
	if _, err := (gt.NVDefineSpace{AuthHandle: gt.TPMRHOwner, Auth: gt.TPM2BAuth{Buffer: []byte("pw")},
		PublicInfo: gt.New2B(gt.TPMSNVPublic{NVIndex: idx, NameAlg: gt.TPMAlgSHA256,
			Attributes: gt.TPMANV{AuthRead: true, AuthWrite: true, NT: gt.TPMNTOrdinary}, DataSize: 4})}).Execute(tpm); err != nil {
		t.Fatal(err)
	}
	pub, err := (gt.NVReadPublic{NVIndex: idx}).Execute(tpm)
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		_, err := (gt.NVWrite{AuthHandle: gt.AuthHandle{Handle: idx, Name: pub.NVName, Auth: gt.PasswordAuth([]byte("bad"))},
			NVIndex: gt.NamedHandle{Handle: idx, Name: pub.NVName}, Data: gt.TPM2BMaxNVBuffer{Buffer: []byte("data")}}).Execute(tpm)
		if !errors.Is(err, gt.TPMRCAuthFail) {
			t.Fatalf("wrong password: %v", err)
		}
	}
	tpm.Close()
	if err := td.d.close(); err != nil {
		t.Fatal(err)
	}
	td2 := startDaemon(t, dir)
	tpm2 := startedTPM(t, td2.mssim)
	r, err := (gt.GetCapability{Capability: gt.TPMCapTPMProperties, Property: uint32(gt.TPMPTLockoutCounter), PropertyCount: 1}).Execute(tpm2)
	if err != nil {
		t.Fatal(err)
	}
	props, err := r.CapabilityData.Data.TPMProperties()
	if err != nil || len(props.TPMProperty) != 1 || props.TPMProperty[0].Value != 2 {
		t.Fatalf("TPM_PT_LOCKOUT_COUNTER after a restart: %+v %v, want 2", props, err)
	}
	clk, err := (gt.ReadClock{}).Execute(tpm2)
	if err != nil {
		t.Fatal(err)
	}
	if !clk.CurrentTime.ClockInfo.Safe {
		t.Fatal("clock unsafe after the daemon stopped in order")
	}
}

// Stopping the daemon ends its command channels, swtpm data and mssim,
// idle ones read by a thread blocked in the kernel too, and turns the TPM
// off for good: nothing can change the state it stored.
func TestCloseEndsClients(t *testing.T) {
	td := startDaemon(t, t.TempDir())
	data, err := net.Dial("tcp", td.swtpm)
	if err != nil {
		t.Fatal(err)
	}
	defer data.Close()
	if _, err := (gt.Startup{StartupType: gt.TPMSUClear}).Execute(swtpmtest.Conn{C: data}); err != nil {
		t.Fatal(err)
	}
	host, port, _ := splitHostPortNum(td.mssim)
	mssim, err := net.Dial("tcp", td.mssim)
	if err != nil {
		t.Fatal(err)
	}
	defer mssim.Close()
	platform, err := net.Dial("tcp", net.JoinHostPort(host, itoa(port+1)))
	if err != nil {
		t.Fatal(err)
	}
	defer platform.Close()
	// TPM_SIGNAL_POWER_ON, then TPM2_GetRandom(8) at locality 0.
	platform.Write([]byte{0, 0, 0, 1})
	platform.Read(make([]byte, 4))
	getRandom := []byte{0x80, 0x01, 0, 0, 0, 12, 0, 0, 0x01, 0x7b, 0, 8}
	mssim.Write(append([]byte{0, 0, 0, 8, 0, 0, 0, 0, byte(len(getRandom))}, getRandom...))
	rsp := make([]byte, 4+20+4)
	mssim.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadFull(mssim, rsp); err != nil {
		t.Fatalf("mssim GetRandom: %v", err)
	}
	closed := make(chan error, 1)
	go func() { closed <- td.d.close() }()
	select {
	case err := <-closed:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the daemon did not stop while a client was connected and idle")
	}
	for name, c := range map[string]net.Conn{"swtpm data": data, "mssim command": mssim} {
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if n, err := c.Read(make([]byte, 10)); err != io.EOF {
			t.Fatalf("%s channel after the daemon stopped: %d bytes, %v; want EOF", name, n, err)
		}
	}
	// The platform channel is still open and could power the TPM on.
	platform.Write([]byte{0, 0, 0, 1})
	if rsp := td.d.process(getRandom, 0); binary.BigEndian.Uint32(rsp[6:]) != swtpm.RCFailure {
		t.Fatalf("a command after the daemon stopped: % x, want TPM_RC_FAILURE", rsp)
	}
	// The swtpm control channel stays open too: CMD_STORE_VOLATILE must
	// not write a state file whose lock another daemon may hold by now.
	if err := td.d.save(false); !errors.Is(err, errStopped) {
		t.Fatalf("storing the state after the daemon stopped: %v, want errStopped", err)
	}
}

// The script runs with pipefail, under which `tool | grep -q` fails
// whenever grep, stopping at its first match, kills a tool that still
// writes with SIGPIPE: TestTPM2Tools failed that way now and then. Its
// output checks go through has(), which searches the whole output.
func TestTPM2ToolsScriptPipesNoGrepQ(t *testing.T) {
	b, err := os.ReadFile("../../test/tpm2tools/run.sh")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), "pipefail") {
		return
	}
	pipeQ := regexp.MustCompile(`\|\s*grep\s+(-[a-zA-Z0-9]*q|--quiet|--silent)`)
	for i, line := range strings.Split(string(b), "\n") {
		if pipeQ.MatchString(line) {
			t.Errorf("run.sh:%d pipes into grep -q: %s", i+1, line)
		}
	}
}

// TestTPM2Tools runs test/tpm2tools/run.sh (tpm2-tools 5.4) against the
// daemon's mssim port.
func TestTPM2Tools(t *testing.T) {
	if _, err := exec.LookPath("tpm2_getrandom"); err != nil {
		t.Skip("SKIP: tpm2-tools not installed (apt-get install tpm2-tools)")
	}
	if _, err := exec.LookPath("xxd"); err != nil {
		t.Skip("SKIP: xxd not installed")
	}
	td := startDaemon(t, t.TempDir())
	script, err := filepath.Abs("../../test/tpm2tools/run.sh")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("bash", script)
	cmd.Dir = t.TempDir()
	cmd.Env = append(os.Environ(), "TPM2TOOLS_TCTI=mssim:host=127.0.0.1,port="+strings.TrimPrefix(td.mssim, "127.0.0.1:"))
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "ALL OK") {
		t.Fatalf("tpm2-tools script: %v\n%s", err, out)
	}
}

// TestSIGTERMStoresState runs the built daemon, changes persistent state
// (owner auth) through mssim, sends SIGTERM and checks that the daemon
// exits cleanly, released its lock and stored the change.
func TestSIGTERMStoresState(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "vtpmd")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	state := filepath.Join(dir, "state")
	p := freePort(t)
	addr := "127.0.0.1:" + itoa(p)
	cmd := exec.Command(bin, "-state", state, "-mssim", addr)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	var tpm transport.TPMCloser
	for i := 0; i < 100; i++ {
		host, port, _ := splitHostPortNum(addr)
		var err error
		tpm, err = tcp.Open(tcp.Config{CommandAddress: addr, PlatformAddress: net.JoinHostPort(host, itoa(port+1))})
		if err == nil {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if tpm == nil {
		t.Fatal("daemon did not come up")
	}
	if _, err := (gt.Startup{StartupType: gt.TPMSUClear}).Execute(tpm); err != nil {
		t.Fatal(err)
	}
	if _, err := (gt.HierarchyChangeAuth{AuthHandle: gt.TPMRHOwner, NewAuth: gt.TPM2BAuth{Buffer: []byte("owner")}}).Execute(tpm); err != nil {
		t.Fatal(err)
	}
	tpm.Close()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("daemon exit after SIGTERM: %v", err)
	}
	// The lock is free again and the new owner auth is in the state.
	td := startDaemon(t, state)
	tpm2 := startedTPM(t, td.mssim)
	_, err := (gt.CreatePrimary{PrimaryHandle: gt.AuthHandle{Handle: gt.TPMRHOwner, Auth: gt.PasswordAuth([]byte("owner"))}, InPublic: gt.New2B(gt.ECCSRKTemplate)}).Execute(tpm2)
	if err != nil {
		t.Fatalf("owner auth not persisted: %v", err)
	}
}
