// Package xentest is an in-memory Xen for host tests of the split drivers:
// a xenstored serving several domains' xenbus clients (package
// xenbus/xstest, with a transport per domain), event channels between
// domains delivered through real evtchn.Mux instances (event_channel.h),
// and grant tables whose entries the fake hypervisor checks and marks as
// Xen does (grant_table.h), so a backend's mapping is the frontend's page.
// It also has a fake xen-blkback serving a memory disk (blkback.go) and
// toolstack helpers that write libxl's device nodes.
//
// It is test-only code: nothing outside _test.go files imports it.
package xentest

import (
	"context"
	"errors"
	"sync"

	"github.com/xenvtpm/xenvtpm/xenbus"
	"github.com/xenvtpm/xenvtpm/xenbus/xstest"
	"github.com/xenvtpm/xenvtpm/xenbus/xswire"
)

// Store is the fake xenstored: xstest's store with a message transport
// for each connected domain.
type Store struct {
	*xstest.Server
	mu    sync.Mutex
	conns map[*xstest.Conn]*conn
	drop  map[uint16]bool // domains whose watch events are dropped
}

// DropWatchEvents makes the store drop every watch event for domain domid
// (drop true) or deliver them again (false), as C xenstored drops the
// events a domain leaves unread too long or beyond its quota.
func (s *Store) DropWatchEvents(domid uint16, drop bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.drop == nil {
		s.drop = map[uint16]bool{}
	}
	s.drop[domid] = drop
}

func newStore() *Store {
	return &Store{Server: xstest.New(), conns: map[*xstest.Conn]*conn{}}
}

// conn is one domain's connection: a xenbus.Transport over channels.
type conn struct {
	st     *Store
	dom    uint16
	xc     *xstest.Conn
	in     chan xswire.Message
	out    chan xswire.Message
	closed chan struct{}
	once   sync.Once
}

// Send implements xenbus.Transport.
func (c *conn) Send(ctx context.Context, m xswire.Message) error {
	if _, err := m.MarshalBinary(); err != nil {
		return err
	}
	m.Payload = append([]byte(nil), m.Payload...)
	select {
	case c.in <- m:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-c.closed:
		return xenbus.ErrClosed
	}
}

// Recv implements xenbus.Transport.
func (c *conn) Recv() (xswire.Message, error) {
	select {
	case m := <-c.out:
		return m, nil
	case <-c.closed:
		return xswire.Message{}, xenbus.ErrClosed
	}
}

// Close implements xenbus.Transport.
func (c *conn) Close() error {
	c.once.Do(func() {
		close(c.closed)
		c.xc.Close()
		c.st.mu.Lock()
		delete(c.st.conns, c.xc)
		c.st.mu.Unlock()
	})
	return nil
}

func (c *conn) serve() {
	for {
		select {
		case m := <-c.in:
			for _, d := range c.xc.Handle(m) {
				c.st.mu.Lock()
				to := c.st.conns[d.To]
				dropped := to != nil && d.Msg.Type == xswire.XSWatchEvent && c.st.drop[to.dom]
				c.st.mu.Unlock()
				if to != nil && !dropped {
					to.push(d.Msg)
				}
			}
		case <-c.closed:
			return
		}
	}
}

// push queues a message without blocking the server on a slow client: each
// delivery gets its own goroutine only when the queue is full.
func (c *conn) push(m xswire.Message) {
	select {
	case c.out <- m:
	case <-c.closed:
	default:
		go func() {
			select {
			case c.out <- m:
			case <-c.closed:
			}
		}()
	}
}

// Connect opens a xenbus client for domain domid.
func (s *Store) Connect(domid uint16) *xenbus.Client {
	c := &conn{st: s, dom: domid, xc: s.Conn(domid), in: make(chan xswire.Message, 64), out: make(chan xswire.Message, 1024), closed: make(chan struct{})}
	s.mu.Lock()
	s.conns[c.xc] = c
	s.mu.Unlock()
	go c.serve()
	return xenbus.NewClient(c)
}

// ErrNoDomain is returned for operations on unknown domains.
var ErrNoDomain = errors.New("xentest: no such domain")
