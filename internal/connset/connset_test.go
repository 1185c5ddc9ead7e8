package connset

import (
	"errors"
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

// Blocking bounds the connections served outside the poller, whose socket
// is in blocking mode; a slot freed by Done is taken by the next
// connection; nothing is added after Close.
func TestBound(t *testing.T) {
	s := Set{Blocking: 1}
	a, _ := pair(t)
	b, _ := pair(t)
	sa, okA := s.Add(a)
	sb, okB := s.Add(b)
	if !okA || !okB {
		t.Fatal("Add refused before Close")
	}
	if !s.IsBlocking(a) || nonblocking(t, sa) || s.IsBlocking(b) || sb != b || !nonblocking(t, b) {
		t.Fatalf("blocking: a %v (O_NONBLOCK %v), b %v (O_NONBLOCK %v, itself %v); want a only",
			s.IsBlocking(a), nonblocking(t, sa), s.IsBlocking(b), nonblocking(t, b), sb == b)
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
	if _, ok := s.Add(d); ok {
		t.Fatal("Add accepted a connection after Close")
	}
}

// A connection served outside the poller carries the socket both ways and
// ends as a socket does; the connection given to Add is closed, which is
// what takes the socket out of the poller's epoll.
func TestOutOfPoller(t *testing.T) {
	s := Set{Blocking: 1}
	server, client := pair(t)
	sc, _ := s.Add(server)
	if _, err := server.Read(make([]byte, 1)); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("the connection given to Add reads %v, want %v", err, net.ErrClosed)
	}
	if _, err := client.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4)
	if _, err := io.ReadFull(sc, buf); err != nil || string(buf) != "ping" {
		t.Fatalf("served read %q, %v", buf, err)
	}
	if _, err := sc.Write([]byte("pong")); err != nil {
		t.Fatal(err)
	}
	client.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadFull(client, buf); err != nil || string(buf) != "pong" {
		t.Fatalf("client read %q, %v", buf, err)
	}
	if sc.LocalAddr().String() != client.RemoteAddr().String() || sc.RemoteAddr().String() != client.LocalAddr().String() {
		t.Fatalf("addresses %v-%v, want %v-%v", sc.LocalAddr(), sc.RemoteAddr(), client.RemoteAddr(), client.LocalAddr())
	}
	// A read blocked in the kernel ends at Close, with end of file.
	read := make(chan error, 1)
	go func() {
		_, err := sc.Read(buf)
		read <- err
	}()
	time.Sleep(50 * time.Millisecond)
	go s.Close(time.Second)
	select {
	case err := <-read:
		if err != io.EOF {
			t.Fatalf("blocked read ended with %v, want end of file", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not end a read blocked in the kernel")
	}
	s.Done(server)
	if _, err := client.Read(buf); err != io.EOF {
		t.Fatalf("client after Done: %v, want end of file", err)
	}
}

// A server blocked sending to a client that does not read is ended after
// the grace period: Close shuts the sending side down too.
func TestCloseGrace(t *testing.T) {
	s := Set{Blocking: 1}
	server, client := pair(t)
	sc, _ := s.Add(server)
	ended := make(chan error, 1)
	go func() {
		defer s.Done(server)
		buf := make([]byte, 1<<20)
		for {
			if _, err := sc.Write(buf); err != nil {
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
