// Package connset keeps the stream connections a server serves (TCP and
// Unix sockets): it reads up to a bound of them with a thread blocked in
// the kernel rather than through Go's network poller, and ends them all
// at once when the server stops.
//
// A read blocked in the kernel wakes with the client's data; the poller's
// round (epoll, then scheduling the reading goroutine) added 5-19 µs to
// each of vtpmd's small TPM commands, more than the engine takes for
// them. Switching a socket to blocking mode is enough: Go's own Read and
// Write on it then wait in the kernel, since the poller only ever waits
// after EAGAIN, which a blocking socket never returns. Each such
// connection holds an OS thread while it waits, hence the bound.
package connset

import (
	"fmt"
	"net"
	"sync"
	"syscall"
	"time"
)

// Set is the connections of one server. Its zero value serves every
// connection through the poller.
type Set struct {
	// Blocking is how many connections at most are read by a thread
	// blocked in the kernel; the others use the poller.
	Blocking int

	mu       sync.Mutex
	conns    map[net.Conn]bool // served connections: in blocking mode?
	blocking int
	closed   bool
	wg       sync.WaitGroup
}

// Add counts c among the served connections and, within Blocking, puts
// its socket in blocking mode. It reports false once Close was called: c
// is then not to be served. Each Add that reports true needs a Done.
func (s *Set) Add(c net.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	if s.conns == nil {
		s.conns = map[net.Conn]bool{}
	}
	blocking := s.blocking < s.Blocking && setBlocking(c) == nil
	if blocking {
		s.blocking++
	}
	s.conns[c] = blocking
	s.wg.Add(1)
	return true
}

// Done is called once c is no longer served.
func (s *Set) Done(c net.Conn) {
	s.mu.Lock()
	if s.conns[c] {
		s.blocking--
	}
	delete(s.conns, c)
	s.mu.Unlock()
	s.wg.Done()
}

// IsBlocking reports whether c was put in blocking mode.
func (s *Set) IsBlocking(c net.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.conns[c]
}

// Close ends every served connection and refuses new ones. It shuts down
// each connection's reading side, which wakes a read blocked in the kernel
// as well as one waiting in the poller (closing the descriptor would not
// wake the first: Go's Close waits for it to return), so a server sees end
// of file after the request in progress; a response still being sent after
// grace (a client that stopped reading) has the sending side shut down
// too. Close returns once every connection is Done.
func (s *Set) Close(grace time.Duration) {
	s.mu.Lock()
	s.closed = true
	for c := range s.conns {
		shutdown(c, true)
	}
	s.mu.Unlock()
	done := make(chan struct{})
	go func() {
		s.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return
	case <-time.After(grace):
	}
	s.mu.Lock()
	for c := range s.conns {
		shutdown(c, false)
	}
	s.mu.Unlock()
	<-done
}

// setBlocking clears O_NONBLOCK on c's socket.
func setBlocking(c net.Conn) error {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return fmt.Errorf("%T has no descriptor", c)
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := rc.Control(func(fd uintptr) { serr = syscall.SetNonblock(int(fd), false) }); err != nil {
		return err
	}
	return serr
}

// shutdown shuts down c's reading side (read) or its sending side; a
// connection without them is closed.
func shutdown(c net.Conn, read bool) {
	type halfCloser interface {
		CloseRead() error
		CloseWrite() error
	}
	hc, ok := c.(halfCloser)
	switch {
	case !ok:
		c.Close()
	case read:
		hc.CloseRead()
	default:
		hc.CloseWrite()
	}
}
