package swtpm

import (
	"bytes"
	"context"
	"encoding/binary"
	"io"
	"net"
	"os"
	"sync"
	"syscall"
	"testing"
	"time"
)

// recTPM records what the Server asks of it.
type recTPM struct {
	mu       sync.Mutex
	calls    []string
	locality uint8
	block    chan struct{} // Execute waits on it, or on ctx
	canceled bool
}

func (r *recTPM) add(s string) {
	r.mu.Lock()
	r.calls = append(r.calls, s)
	r.mu.Unlock()
}

func (r *recTPM) Execute(ctx context.Context, cmd []byte, loc uint8) []byte {
	r.add("execute")
	r.mu.Lock()
	r.locality = loc
	block := r.block
	r.mu.Unlock()
	if block != nil {
		select {
		case <-block:
		case <-ctx.Done():
			r.mu.Lock()
			r.canceled = true
			r.mu.Unlock()
			return ErrorResponse(cmd, 0x909, 0x909) // TPM_RC_CANCELED
		}
	}
	return []byte{0x80, 0x01, 0, 0, 0, 10, 0, 0, 0, 0}
}
func (r *recTPM) Init() error          { r.add("init"); return nil }
func (r *recTPM) Stop() error          { r.add("stop"); return nil }
func (r *recTPM) Shutdown() error      { r.add("shutdown"); return nil }
func (r *recTPM) StoreVolatile() error { r.add("store"); return nil }

func (r *recTPM) got() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.calls...)
}

// unixPair is a connected pair of Unix stream sockets.
func unixPair(t *testing.T) (*net.UnixConn, *net.UnixConn) {
	t.Helper()
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	conn := func(fd int) *net.UnixConn {
		f := os.NewFile(uintptr(fd), "pair")
		defer f.Close()
		c, err := net.FileConn(f)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c.(*net.UnixConn)
	}
	return conn(fds[0]), conn(fds[1])
}

func request(t *testing.T, c net.Conn, code uint32, body []byte, rspLen int) []byte {
	t.Helper()
	if _, err := c.Write(append(u32(code), body...)); err != nil {
		t.Fatal(err)
	}
	rsp := make([]byte, rspLen)
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadFull(c, rsp); err != nil {
		t.Fatalf("%s: %v", cmdName(code), err)
	}
	return rsp
}

func command(t *testing.T, c net.Conn, cmd []byte) []byte {
	t.Helper()
	if _, err := c.Write(cmd); err != nil {
		t.Fatal(err)
	}
	hdr := make([]byte, 10)
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadFull(c, hdr); err != nil {
		t.Fatal(err)
	}
	rest := make([]byte, binary.BigEndian.Uint32(hdr[2:])-10)
	if _, err := io.ReadFull(c, rest); err != nil {
		t.Fatal(err)
	}
	return append(hdr, rest...)
}

var getRandom = []byte{0x80, 0x01, 0, 0, 0, 12, 0, 0, 0x01, 0x7b, 0, 8}

func rcOf(rsp []byte) uint32 { return binary.BigEndian.Uint32(rsp[6:]) }

// QEMU's sequence (backends/tpm/tpm_emulator.c): SET_DATAFD, a version
// probe on the data channel, GET_CAPABILITY, STOP + SET_BUFFERSIZE, INIT,
// commands with SET_LOCALITY, SHUTDOWN at exit.
func TestQEMUSequence(t *testing.T) {
	tpm := &recTPM{}
	s := New(Config{TPM: tpm, BufferSize: 4088})
	ctrlClient, ctrlServer := unixPair(t)
	go s.ServeControl(ctrlServer)

	dataClient, dataServer := unixPair(t)
	f, err := dataServer.File()
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := ctrlClient.WriteMsgUnix(u32(CmdSetDataFD), syscall.UnixRights(int(f.Fd())), nil); err != nil {
		t.Fatal(err)
	}
	f.Close()
	dataServer.Close()
	rsp := make([]byte, 4)
	if _, err := io.ReadFull(ctrlClient, rsp); err != nil || rcOf(append(make([]byte, 6), rsp...)) != 0 {
		t.Fatalf("SET_DATAFD: % x, %v", rsp, err)
	}
	if rsp := command(t, dataClient, getRandom); rsp[0] != 0x80 {
		t.Fatalf("probe before INIT: % x", rsp)
	}
	caps := binary.BigEndian.Uint64(request(t, ctrlClient, CmdGetCapability, nil, 8))
	want := uint64(CapInit | CapShutdown | CapGetEstablished | CapSetLocality | CapResetEstablished | CapSetDataFD | CapStop | CapSetBufferSize)
	if caps&want != want {
		t.Fatalf("capabilities %#x lack QEMU's minimum %#x", caps, want)
	}
	if caps&(1<<8|1<<9) != 0 {
		t.Fatalf("capabilities %#x announce state blobs", caps)
	}
	request(t, ctrlClient, CmdStop, nil, 4)
	if rsp := command(t, dataClient, getRandom); rcOf(rsp) != RCFailure {
		t.Fatalf("command while stopped answered rc %#x", rcOf(rsp))
	}
	sb := request(t, ctrlClient, CmdSetBufferSize, u32(4096), 16)
	if got := binary.BigEndian.Uint32(sb[4:]); got != 4088 || binary.BigEndian.Uint32(sb[12:]) != 4088 {
		t.Fatalf("SET_BUFFERSIZE(4096) = % x, want 4088 granted", sb)
	}
	if rsp := request(t, ctrlClient, CmdInit, u32(0), 4); !bytes.Equal(rsp, u32(0)) {
		t.Fatalf("INIT: % x", rsp)
	}
	if rsp := request(t, ctrlClient, CmdSetLocality, []byte{3, 0, 0, 0}, 4); !bytes.Equal(rsp, u32(0)) {
		t.Fatalf("SET_LOCALITY: % x", rsp)
	}
	if rsp := command(t, dataClient, getRandom); rcOf(rsp) != 0 || tpm.locality != 3 {
		t.Fatalf("command after INIT: % x at locality %d", rsp, tpm.locality)
	}
	if rsp := request(t, ctrlClient, CmdSetLocality, []byte{5, 0, 0, 0}, 4); !bytes.Equal(rsp, u32(ResultBadLocality)) {
		t.Fatalf("SET_LOCALITY(5): % x", rsp)
	}
	if est := request(t, ctrlClient, CmdGetTPMEstablished, nil, 8); !bytes.Equal(est, make([]byte, 8)) {
		t.Fatalf("GET_TPMESTABLISHED: % x", est)
	}
	big := make([]byte, 4089)
	copy(big, getRandom)
	binary.BigEndian.PutUint32(big[2:], uint32(len(big)))
	if rsp := command(t, dataClient, big); rcOf(rsp) != RCCommandSize {
		t.Fatalf("command over the buffer size: rc %#x", rcOf(rsp))
	}
	request(t, ctrlClient, CmdShutdown, nil, 4)
	wantCalls := []string{"execute", "stop", "init", "execute", "shutdown"}
	if got := tpm.got(); len(got) != len(wantCalls) || fmtCalls(got) != fmtCalls(wantCalls) {
		t.Fatalf("TPM saw %v, want %v", got, wantCalls)
	}
}

func fmtCalls(c []string) string { return string(bytes.Join(toBytes(c), []byte(","))) }
func toBytes(c []string) [][]byte {
	var b [][]byte
	for _, s := range c {
		b = append(b, []byte(s))
	}
	return b
}

// CMD_CANCEL_TPM_CMD ends the context of the command in progress; the
// data channel still gets that command's answer.
func TestCancel(t *testing.T) {
	tpm := &recTPM{block: make(chan struct{})}
	s := New(Config{TPM: tpm})
	ctrlClient, ctrlServer := net.Pipe()
	defer ctrlClient.Close()
	go s.ServeControl(ctrlServer)
	dataClient, dataServer := net.Pipe()
	defer dataClient.Close()
	go s.ServeData(dataServer)
	done := make(chan []byte)
	go func() {
		dataClient.Write(getRandom)
		b := make([]byte, 10)
		io.ReadFull(dataClient, b)
		done <- b
	}()
	for len(tpm.got()) == 0 {
		time.Sleep(time.Millisecond)
	}
	request(t, ctrlClient, CmdCancelTPMCmd, nil, 4)
	select {
	case rsp := <-done:
		if rcOf(rsp) != 0x909 || !tpm.canceled {
			t.Fatalf("cancelled command answered % x", rsp)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("cancel did not end the command")
	}
	// The channel's next command is not cancelled: it runs to its answer.
	tpm.mu.Lock()
	tpm.canceled = false
	tpm.mu.Unlock()
	go func() {
		dataClient.Write(getRandom)
		b := make([]byte, 10)
		io.ReadFull(dataClient, b)
		done <- b
	}()
	for len(tpm.got()) < 2 {
		time.Sleep(time.Millisecond)
	}
	time.Sleep(50 * time.Millisecond)
	close(tpm.block)
	select {
	case rsp := <-done:
		if rcOf(rsp) != 0 || tpm.canceled {
			t.Fatalf("the command after a cancelled one answered % x (cancelled %v)", rsp, tpm.canceled)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the command after a cancelled one was not answered")
	}
}

// CloseData ends every data channel: one whose command is in progress
// after that command's answer, one read by a thread blocked in the kernel
// and one read through the poller while idle; BlockingData bounds the
// blocking ones; and no data channel is served after it.
func TestCloseData(t *testing.T) {
	tpm := &recTPM{}
	s := New(Config{TPM: tpm, BlockingData: 2})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var served sync.WaitGroup
	accept := func() (client, server net.Conn) {
		t.Helper()
		client, err := net.Dial("tcp", l.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { client.Close() })
		server, err = l.Accept()
		if err != nil {
			t.Fatal(err)
		}
		served.Add(1)
		go func() {
			defer served.Done()
			s.ServeData(server)
			server.Close()
		}()
		// One command answered: the channel is served, and waits for the
		// next one.
		if rsp := command(t, client, getRandom); rcOf(rsp) != 0 {
			t.Fatalf("rc %#x", rcOf(rsp))
		}
		return client, server
	}
	busy, busyServer := accept()
	idle, idleServer := accept()
	polled, polledServer := accept()
	if b := [3]bool{s.data.IsBlocking(busyServer), s.data.IsBlocking(idleServer), s.data.IsBlocking(polledServer)}; b != [3]bool{true, true, false} {
		t.Fatalf("blocking channels: %v, want the first two (BlockingData 2)", b)
	}

	block := make(chan struct{})
	tpm.mu.Lock()
	tpm.block = block
	tpm.mu.Unlock()
	if _, err := busy.Write(getRandom); err != nil {
		t.Fatal(err)
	}
	for len(tpm.got()) < 4 {
		time.Sleep(time.Millisecond)
	}
	closed := make(chan struct{})
	go func() {
		s.CloseData()
		close(closed)
	}()
	select {
	case <-closed:
		t.Fatal("CloseData returned while a command was in progress")
	case <-time.After(100 * time.Millisecond):
	}
	close(block)
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatal("CloseData did not return")
	}
	served.Wait()
	rsp := make([]byte, 10)
	busy.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadFull(busy, rsp); err != nil || rcOf(rsp) != 0 {
		t.Fatalf("the command in progress: % x, %v", rsp, err)
	}
	for name, c := range map[string]net.Conn{"busy": busy, "idle": idle, "polled": polled} {
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if n, err := c.Read(rsp); err != io.EOF {
			t.Fatalf("%s channel after CloseData: %d bytes, %v; want EOF", name, n, err)
		}
	}

	c, sc := net.Pipe()
	defer c.Close()
	done := make(chan struct{})
	go func() { s.ServeData(sc); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("a data channel was served after CloseData")
	}
}

// Requests this Server does not offer get TPM_FAIL in an answer of the
// size the client reads, and a body that follows is consumed, not taken
// for the next request.
func TestRefusedRequests(t *testing.T) {
	s := New(Config{TPM: &recTPM{}})
	c, sc := net.Pipe()
	defer c.Close()
	go s.ServeControl(sc)
	if rsp := request(t, c, CmdGetStateBlob, make([]byte, 12), 16); !bytes.Equal(rsp[:4], u32(ResultFail)) {
		t.Fatalf("GET_STATEBLOB: % x", rsp)
	}
	// SET_STATEBLOB: flags, type, length 8, then the 8 bytes apart.
	c.Write(append(u32(CmdSetStateBlob), append(make([]byte, 8), 0, 0, 0, 8)...))
	c.Write(append(u32(CmdGetCapability), 1, 2, 3, 4)) // the body, looking like a request
	rsp := make([]byte, 4)
	io.ReadFull(c, rsp)
	if !bytes.Equal(rsp, u32(ResultFail)) {
		t.Fatalf("SET_STATEBLOB: % x", rsp)
	}
	if caps := request(t, c, CmdGetCapability, nil, 8); binary.BigEndian.Uint64(caps)&CapInit == 0 {
		t.Fatalf("channel out of step after SET_STATEBLOB: % x", caps)
	}
	if rsp := request(t, c, 99, nil, 4); !bytes.Equal(rsp, u32(ResultFail)) {
		t.Fatalf("unknown request: % x", rsp)
	}
}

// A data frame that cannot be a command gets one error answer, then the
// channel closes.
func TestUnframeable(t *testing.T) {
	s := New(Config{TPM: &recTPM{}})
	c, sc := net.Pipe()
	defer c.Close()
	go func() { s.ServeData(sc); sc.Close() }()
	c.Write([]byte{0x80, 0x01, 0xff, 0xff, 0xff, 0xff, 0, 0, 1, 0x7b})
	b := make([]byte, 10)
	if _, err := io.ReadFull(c, b); err != nil || rcOf(b) != RCFailure {
		t.Fatalf("answer % x, %v", b, err)
	}
	if _, err := c.Read(b); err != io.EOF {
		t.Fatalf("channel still open: %v", err)
	}
}

// FuzzControl: any bytes on the control channel get answers or a closed
// channel, never a panic or a call the TPM did not ask for.
func FuzzControl(f *testing.F) {
	f.Add(u32(CmdGetCapability))
	f.Add(append(u32(CmdSetBufferSize), 0, 0, 0x10, 0))
	f.Add(append(u32(CmdSetStateBlob), 0, 0, 0, 0, 0, 0, 0, 1, 0xff, 0xff, 0xff, 0xff))
	f.Add(append(u32(CmdHashData), 0, 0, 0, 4, 1, 2, 3, 4))
	f.Add(append(u32(CmdSetLocality), 9))
	f.Fuzz(func(t *testing.T, req []byte) {
		s := New(Config{TPM: &recTPM{}})
		c, sc := net.Pipe()
		done := make(chan struct{})
		go func() { s.ServeControl(sc); sc.Close(); close(done) }()
		go io.Copy(io.Discard, c)
		c.SetWriteDeadline(time.Now().Add(time.Second))
		c.Write(req)
		c.Close()
		<-done
	})
}

// FuzzData: any bytes on the data channel.
func FuzzData(f *testing.F) {
	f.Add(getRandom)
	f.Add([]byte{0, 0xc1, 0, 0, 0, 10, 0, 0, 0, 0x65})
	f.Add([]byte{0x80, 1, 0, 0, 0, 9})
	f.Fuzz(func(t *testing.T, in []byte) {
		s := New(Config{TPM: &recTPM{}, BufferSize: 64})
		c, sc := net.Pipe()
		done := make(chan struct{})
		go func() { s.ServeData(sc); sc.Close(); close(done) }()
		go io.Copy(io.Discard, c)
		c.SetWriteDeadline(time.Now().Add(time.Second))
		c.Write(in)
		c.Close()
		<-done
	})
}
