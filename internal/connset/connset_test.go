package connset

import (
	"io"
	"net"
	"syscall"
	"testing"
	"time"
)

// pair returns a connected TCP pair, the server's side first.
func pair(t *testing.T) (server, client net.Conn) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	client, err = net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server, err = l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { server.Close(); client.Close() })
	return server, client
}

func nonblocking(t *testing.T, c net.Conn) bool {
	t.Helper()
	rc, err := c.(syscall.Conn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var flags uintptr
	rc.Control(func(fd uintptr) { flags, _, _ = syscall.Syscall(syscall.SYS_FCNTL, fd, syscall.F_GETFL, 0) })
	return flags&syscall.O_NONBLOCK != 0
}

// Blocking bounds the connections in blocking mode; a slot freed by Done
// is taken by the next connection; nothing is added after Close.
func TestBound(t *testing.T) {
	s := Set{Blocking: 1}
	a, _ := pair(t)
	b, _ := pair(t)
	if !s.Add(a) || !s.Add(b) {
		t.Fatal("Add refused before Close")
	}
	if !s.IsBlocking(a) || nonblocking(t, a) || s.IsBlocking(b) || !nonblocking(t, b) {
		t.Fatalf("blocking: a %v (O_NONBLOCK %v), b %v (O_NONBLOCK %v); want a only",
			s.IsBlocking(a), nonblocking(t, a), s.IsBlocking(b), nonblocking(t, b))
	}
	s.Done(a)
	c, _ := pair(t)
	s.Add(c)
	if !s.IsBlocking(c) {
		t.Fatal("the slot a freed was not given to c")
	}
	s.Done(b)
	s.Done(c)
	s.Close(time.Second)
	d, _ := pair(t)
	if s.Add(d) {
		t.Fatal("Add accepted a connection after Close")
	}
}

// A server blocked sending to a client that does not read is ended after
// the grace period: Close shuts the sending side down too.
func TestCloseGrace(t *testing.T) {
	s := Set{Blocking: 1}
	server, client := pair(t)
	s.Add(server)
	ended := make(chan error, 1)
	go func() {
		defer s.Done(server)
		buf := make([]byte, 1<<20)
		for {
			if _, err := server.Write(buf); err != nil {
				ended <- err
				return
			}
		}
	}()
	// Let the socket buffers fill, so that the write blocks.
	time.Sleep(200 * time.Millisecond)
	closed := make(chan struct{})
	go func() {
		s.Close(100 * time.Millisecond)
		close(closed)
	}()
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not end a server blocked in a write")
	}
	if err := <-ended; err == nil {
		t.Fatal("the write ended without an error")
	}
	// The client still reads what was sent, then end of file.
	client.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.Copy(io.Discard, client); err != nil {
		t.Fatalf("client after Close: %v, want end of file", err)
	}
}
