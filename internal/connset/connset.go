// Package connset keeps the stream connections a server serves (TCP and
// Unix sockets): it serves up to a bound of them with a thread blocked in
// the kernel rather than through Go's network poller, and ends them all
// at once when the server stops.
//
// A read blocked in the kernel wakes with the client's data; the poller's
// round (epoll, then scheduling the reading goroutine) added 5-19 µs to
// each of vtpmd's small TPM commands, more than the engine takes for
// them. Such a connection is moved out of the poller altogether: a socket
// merely switched to blocking mode stays registered with the poller's
// epoll, which then wakes a second thread for every request that arrives.
// Each one holds an OS thread while it waits, hence the bound.
package connset

import (
	"fmt"
	"net"
	"os"
	"runtime"
	"sync"
	"syscall"
	"time"
)

// Set is the connections of one server. Its zero value serves every
// connection through the poller.
type Set struct {
	// Blocking is how many connections at most are served by a thread
	// blocked in the kernel; the others use the poller.
	Blocking int

	mu       sync.Mutex
	conns    map[net.Conn]served // by the connection given to Add
	blocking int
	closed   bool
	wg       sync.WaitGroup
}

type served struct {
	conn     net.Conn // what the server reads and writes
	blocking bool     // conn is a blockingConn Add made
}

// Add counts c among the served connections and returns the connection to
// serve it through: within Blocking, c's socket moved out of the poller (c
// is then closed, and the socket lives on in the returned connection, in
// blocking mode); otherwise c itself. It reports false once Close was
// called: c is then not to be served. Each Add that reports true needs a
// Done of c.
func (s *Set) Add(c net.Conn) (net.Conn, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return c, false
	}
	if s.conns == nil {
		s.conns = map[net.Conn]served{}
	}
	e := served{conn: c}
	if s.blocking < s.Blocking {
		if bc, err := outOfPoller(c); err == nil {
			e = served{conn: bc, blocking: true}
			s.blocking++
		}
	}
	s.conns[c] = e
	s.wg.Add(1)
	return e.conn, true
}

// Done is called once c, given to Add, is no longer served. The connection
// Add made for it, if any, is closed here; c itself is the caller's.
func (s *Set) Done(c net.Conn) {
	s.mu.Lock()
	e := s.conns[c]
	if e.blocking {
		s.blocking--
		e.conn.Close()
	}
	delete(s.conns, c)
	s.mu.Unlock()
	s.wg.Done()
}

// IsBlocking reports whether c, given to Add, is served by a thread
// blocked in the kernel.
func (s *Set) IsBlocking(c net.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.conns[c].blocking
}

// Close ends every served connection and refuses new ones. It shuts down
// each connection's reading side, which wakes a read blocked in the kernel
// as well as one waiting in the poller (closing the descriptor would not
// wake the first: Go closes it only once that read returns), so a server sees end
// of file after the request in progress; a response still being sent after
// grace (a client that stopped reading) has the sending side shut down
// too. Close returns once every connection is Done.
func (s *Set) Close(grace time.Duration) {
	s.mu.Lock()
	s.closed = true
	for _, e := range s.conns {
		shutdown(e.conn, true)
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
	for _, e := range s.conns {
		shutdown(e.conn, false)
	}
	s.mu.Unlock()
	<-done
}

// outOfPoller moves c's socket out of Go's network poller: a copy of its
// descriptor, in blocking mode, is served instead of c, and closing c
// takes the socket out of the poller's epoll (the copy, made here rather
// than by File, which would register it again, never was in it).
func outOfPoller(c net.Conn) (net.Conn, error) {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return nil, fmt.Errorf("%T has no descriptor", c)
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil, err
	}
	fd := -1
	var serr error
	if err := rc.Control(func(cfd uintptr) {
		// The flag belongs to the socket, which c and the copy share: c is
		// left blocking only if it is served no more.
		if serr = syscall.SetNonblock(int(cfd), false); serr != nil {
			return
		}
		if fd, serr = syscall.Dup(int(cfd)); serr != nil {
			syscall.SetNonblock(int(cfd), true)
		}
	}); err != nil {
		return nil, err
	}
	if serr != nil {
		return nil, serr
	}
	syscall.CloseOnExec(fd)
	bc := &blockingConn{f: os.NewFile(uintptr(fd), "connset"), local: c.LocalAddr(), remote: c.RemoteAddr()}
	c.Close()
	return bc, nil
}

// blockingConn is a socket in blocking mode outside the poller: each Read
// and Write is one system call that waits in the kernel.
type blockingConn struct {
	f             *os.File // not pollable: its descriptor is blocking
	local, remote net.Addr
	yielded       time.Time // by Read, which one goroutine calls at a time
}

// Read yields to the scheduler now and then before it waits in the
// kernel. A goroutine that only ever blocks in system calls never passes
// through the scheduler, so Go's monitor thread takes it for one running
// without pause: every 10 ms it preempts it and takes its processor away,
// and then polls every 20 µs again rather than sleeping. Yielding on every
// read would cost a second thread's wake-up per request instead.
func (b *blockingConn) Read(p []byte) (int, error) {
	if now := time.Now(); now.Sub(b.yielded) > yieldEvery {
		b.yielded = now
		runtime.Gosched()
	}
	return b.f.Read(p)
}

// yieldEvery is well within the monitor's 10 ms.
const yieldEvery = 2 * time.Millisecond

func (b *blockingConn) Write(p []byte) (int, error) { return b.f.Write(p) }
func (b *blockingConn) Close() error                { return b.f.Close() }
func (b *blockingConn) LocalAddr() net.Addr         { return b.local }
func (b *blockingConn) RemoteAddr() net.Addr        { return b.remote }

// SetDeadline and its kin answer os.ErrNoDeadline: a blocking descriptor
// has no deadlines. Close ends a blocked Read or Write instead.
func (b *blockingConn) SetDeadline(t time.Time) error      { return b.f.SetDeadline(t) }
func (b *blockingConn) SetReadDeadline(t time.Time) error  { return b.f.SetReadDeadline(t) }
func (b *blockingConn) SetWriteDeadline(t time.Time) error { return b.f.SetWriteDeadline(t) }

func (b *blockingConn) SyscallConn() (syscall.RawConn, error) { return b.f.SyscallConn() }

func (b *blockingConn) CloseRead() error  { return b.shutdown(syscall.SHUT_RD) }
func (b *blockingConn) CloseWrite() error { return b.shutdown(syscall.SHUT_WR) }

func (b *blockingConn) shutdown(how int) error {
	rc, err := b.f.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := rc.Control(func(fd uintptr) { serr = syscall.Shutdown(int(fd), how) }); err != nil {
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
