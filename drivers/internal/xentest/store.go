// Package xentest is an in-memory Xen for host tests of the split drivers:
// a xenstored serving several domains' xenbus clients (docs/misc/xenstore.txt
// semantics: node tree, watches fired at setup and on changes, snapshot
// transactions that fail with EAGAIN on conflict), event channels between
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
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/xenvtpm/xenvtpm/xenbus"
	"github.com/xenvtpm/xenvtpm/xenbus/xswire"
)

type node struct{ value []byte }

type watch struct {
	conn        *conn
	path, token string
}

type txn struct {
	base    int
	nodes   map[string]*node
	changed []string
}

// Store is the fake xenstored.
type Store struct {
	mu      sync.Mutex
	nodes   map[string]*node
	gen     int
	watches []watch
	txs     map[uint32]*txn
	lastTx  uint32

	// FailCommits makes the next commits fail with EAGAIN.
	FailCommits int
	// Commits counts successful commits.
	Commits int
}

func newStore() *Store {
	s := &Store{nodes: map[string]*node{}, txs: map[uint32]*txn{}}
	s.nodes["/"] = &node{}
	s.nodes["/local"] = &node{}
	s.nodes["/local/domain"] = &node{}
	return s
}

func parentOf(p string) string {
	i := strings.LastIndexByte(p, '/')
	if i <= 0 {
		return "/"
	}
	return p[:i]
}

func under(p, dir string) bool {
	return p == dir || dir == "/" || strings.HasPrefix(p, dir+"/")
}

// conn is one domain's connection.
type conn struct {
	s      *Store
	domid  uint16
	in     chan xswire.Message
	out    chan xswire.Message
	closed chan struct{}
	once   sync.Once
}

func (c *conn) home() string { return "/local/domain/" + strconv.Itoa(int(c.domid)) }

func (c *conn) abs(p string) string {
	if strings.HasPrefix(p, "/") || strings.HasPrefix(p, "@") {
		return p
	}
	return c.home() + "/" + p
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
		c.s.mu.Lock()
		c.s.watches = slices.DeleteFunc(c.s.watches, func(w watch) bool { return w.conn == c })
		c.s.mu.Unlock()
	})
	return nil
}

type delivery struct {
	to *conn
	m  xswire.Message
}

func (c *conn) serve() {
	for {
		select {
		case m := <-c.in:
			for _, d := range c.s.handle(c, m) {
				d.to.push(d.m)
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
	c := &conn{s: s, domid: domid, in: make(chan xswire.Message, 64), out: make(chan xswire.Message, 1024), closed: make(chan struct{})}
	go c.serve()
	return xenbus.NewClient(c)
}

func reply(m xswire.Message, payload string) xswire.Message {
	return xswire.Message{Type: m.Type, ReqID: m.ReqID, TxID: m.TxID, Payload: []byte(payload)}
}

func errReply(m xswire.Message, name string) xswire.Message {
	return xswire.Message{Type: xswire.XSError, ReqID: m.ReqID, TxID: m.TxID, Payload: []byte(name + "\x00")}
}

func event(path, token string) xswire.Message {
	return xswire.Message{Type: xswire.XSWatchEvent, Payload: []byte(path + "\x00" + token + "\x00")}
}

func (s *Store) create(nodes map[string]*node, p string) {
	for q := p; nodes[q] == nil; q = parentOf(q) {
		nodes[q] = &node{}
	}
}

// fire lists the events a change at p causes.
func (s *Store) fire(p string) []delivery {
	var out []delivery
	for _, w := range s.watches {
		wp := w.conn.abs(w.path)
		if under(p, wp) || under(wp, p) {
			ep := p
			if !strings.HasPrefix(w.path, "/") {
				ep = strings.TrimPrefix(p, w.conn.home()+"/")
			}
			out = append(out, delivery{w.conn, event(ep, w.token)})
		}
	}
	return out
}

func (s *Store) handle(c *conn, m xswire.Message) []delivery {
	s.mu.Lock()
	defer s.mu.Unlock()
	one := func(r xswire.Message) []delivery { return []delivery{{c, r}} }
	nodes := s.nodes
	var tx *txn
	if m.TxID != 0 {
		if tx = s.txs[m.TxID]; tx == nil {
			return one(errReply(m, "ENOENT"))
		}
		nodes = tx.nodes
	}
	f, err := xswire.SplitFields(m.Payload)
	arg := func(i int) string {
		if i < len(f) {
			return f[i]
		}
		return ""
	}
	if err != nil && m.Type != xswire.XSWrite {
		return one(errReply(m, "EINVAL"))
	}
	var changed []string
	out := func(r xswire.Message) []delivery {
		ds := one(r)
		if tx != nil {
			tx.changed = append(tx.changed, changed...)
			return ds
		}
		if len(changed) > 0 {
			s.gen++
		}
		for _, p := range changed {
			ds = append(ds, s.fire(p)...)
		}
		return ds
	}
	switch m.Type {
	case xswire.XSRead:
		n := nodes[c.abs(arg(0))]
		if n == nil {
			return out(errReply(m, "ENOENT"))
		}
		return out(reply(m, string(n.value)))
	case xswire.XSWrite:
		i := strings.IndexByte(string(m.Payload), 0)
		if i < 0 {
			return out(errReply(m, "EINVAL"))
		}
		p := c.abs(string(m.Payload[:i]))
		s.create(nodes, p)
		nodes[p].value = append([]byte(nil), m.Payload[i+1:]...)
		changed = append(changed, p)
		return out(reply(m, "OK\x00"))
	case xswire.XSMkdir:
		p := c.abs(arg(0))
		if nodes[p] == nil {
			s.create(nodes, p)
			changed = append(changed, p)
		}
		return out(reply(m, "OK\x00"))
	case xswire.XSRm:
		p := c.abs(arg(0))
		if nodes[p] == nil {
			return out(errReply(m, "ENOENT"))
		}
		for k := range nodes {
			if under(k, p) {
				delete(nodes, k)
			}
		}
		changed = append(changed, p)
		return out(reply(m, "OK\x00"))
	case xswire.XSDirectory:
		p := c.abs(arg(0))
		if nodes[p] == nil {
			return out(errReply(m, "ENOENT"))
		}
		var kids []string
		for k := range nodes {
			if k != p && k != "/" && parentOf(k) == p {
				kids = append(kids, k[strings.LastIndexByte(k, '/')+1:]+"\x00")
			}
		}
		slices.Sort(kids)
		return out(reply(m, strings.Join(kids, "")))
	case xswire.XSGetDomainPath:
		return out(reply(m, "/local/domain/"+arg(0)+"\x00"))
	case xswire.XSWatch:
		s.watches = append(s.watches, watch{c, arg(0), arg(1)})
		return []delivery{{c, reply(m, "OK\x00")}, {c, event(arg(0), arg(1))}}
	case xswire.XSUnwatch:
		i := slices.IndexFunc(s.watches, func(w watch) bool { return w.conn == c && w.path == arg(0) && w.token == arg(1) })
		if i < 0 {
			return one(errReply(m, "ENOENT"))
		}
		s.watches = slices.Delete(s.watches, i, i+1)
		return one(reply(m, "OK\x00"))
	case xswire.XSTransactionStart:
		s.lastTx++
		snap := map[string]*node{}
		for k, v := range s.nodes {
			cp := *v
			snap[k] = &cp
		}
		s.txs[s.lastTx] = &txn{base: s.gen, nodes: snap}
		return one(reply(m, strconv.Itoa(int(s.lastTx))+"\x00"))
	case xswire.XSTransactionEnd:
		if tx == nil {
			return one(errReply(m, "EINVAL"))
		}
		delete(s.txs, m.TxID)
		if arg(0) != "T" {
			return one(reply(m, "OK\x00"))
		}
		if s.FailCommits > 0 || tx.base != s.gen {
			if s.FailCommits > 0 {
				s.FailCommits--
			}
			return one(errReply(m, "EAGAIN"))
		}
		s.Commits++
		s.nodes = tx.nodes
		changed = tx.changed
		tx = nil
		return out(reply(m, "OK\x00"))
	}
	return one(errReply(m, "ENOSYS"))
}

// Get reads a node directly ("" and false if absent).
func (s *Store) Get(p string) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := s.nodes[p]
	if n == nil {
		return "", false
	}
	return string(n.value), true
}

// SetFailCommits makes the next n commits fail with EAGAIN.
func (s *Store) SetFailCommits(n int) {
	s.mu.Lock()
	s.FailCommits = n
	s.mu.Unlock()
}

// ErrNoDomain is returned for operations on unknown domains.
var ErrNoDomain = errors.New("xentest: no such domain")
