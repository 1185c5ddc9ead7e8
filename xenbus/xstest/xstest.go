// Package xstest is an in-memory xenstored for host tests, following
// docs/misc/xenstore.txt: a node tree with permissions, paths relative to
// each connection's domain home, watches fired once at setup and on every
// change at, above or (for removals) below their path, snapshot
// transactions whose commit fails with EAGAIN after any intervening
// change, and XS_DIRECTORY_PART for lists longer than one reply. Switches
// inject faults (failing commits) and count what happened.
//
// It speaks messages (xswire.Message), not a transport: package xenbus's
// tests drive one connection through a pipe, internal/xentest
// connects several domains' xenbus clients. It is test-only code: nothing
// outside tests and test helpers imports it.
package xstest

import (
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/xenvtpm/xenvtpm/xenbus/xswire"
)

type node struct {
	value []byte
	perms []xswire.Perm
}

type watch struct {
	conn        *Conn
	path, token string
}

type txn struct {
	base    int
	nodes   map[string]*node
	changed []string
}

// Server is the store.
type Server struct {
	mu          sync.Mutex
	nodes       map[string]*node
	gen         int // bumped by every committed change
	watches     []watch
	txs         map[uint32]*txn
	lastTx      uint32
	failCommits int
	maxWatches  int
	stats       Stats
	onDirPart   func()
	dom0        *Conn
}

// Stats counts what the server did.
type Stats struct {
	Commits  int // transactions committed
	Aborts   int // transactions ended without committing
	DirParts int // XS_DIRECTORY_PART requests answered
}

// Delivery is a message for one connection: a reply or a watch event.
type Delivery struct {
	To  *Conn
	Msg xswire.Message
}

// Conn is one domain's connection.
type Conn struct {
	s     *Server
	domid uint16
}

// New returns a store holding /, /local and /local/domain, owned by dom0
// and unreadable to others (n0).
func New() *Server {
	s := &Server{nodes: map[string]*node{}, txs: map[uint32]*txn{}}
	for _, p := range []string{"/", "/local", "/local/domain"} {
		s.nodes[p] = &node{perms: []xswire.Perm{{Access: xswire.AccessNone, Domid: 0}}}
	}
	s.dom0 = s.Conn(0)
	return s
}

// Conn opens a connection for domain domid.
func (s *Server) Conn(domid uint16) *Conn { return &Conn{s: s, domid: domid} }

// Home is the connection's domain home, /local/domain/<domid>.
func (c *Conn) Home() string { return "/local/domain/" + strconv.Itoa(int(c.domid)) }

func (c *Conn) abs(p string) string {
	if strings.HasPrefix(p, "/") || strings.HasPrefix(p, "@") {
		return p
	}
	return c.Home() + "/" + p
}

// Close drops the connection's watches.
func (c *Conn) Close() {
	c.s.mu.Lock()
	defer c.s.mu.Unlock()
	c.s.watches = slices.DeleteFunc(c.s.watches, func(w watch) bool { return w.conn == c })
}

func parent(p string) string {
	i := strings.LastIndexByte(p, '/')
	if i <= 0 {
		return "/"
	}
	return p[:i]
}

func under(p, dir string) bool {
	return p == dir || dir == "/" || strings.HasPrefix(p, dir+"/")
}

// Reply is the answer to m carrying payload.
func Reply(m xswire.Message, payload string) xswire.Message {
	return xswire.Message{Type: m.Type, ReqID: m.ReqID, TxID: m.TxID, Payload: []byte(payload)}
}

// ErrReply is the XS_ERROR answer to m naming the error (e.g. "ENOENT").
func ErrReply(m xswire.Message, name string) xswire.Message {
	return xswire.Message{Type: xswire.XSError, ReqID: m.ReqID, TxID: m.TxID, Payload: []byte(name + "\x00")}
}

// Event is an XS_WATCH_EVENT for path and token.
func Event(path, token string) xswire.Message {
	return xswire.Message{Type: xswire.XSWatchEvent, Payload: []byte(path + "\x00" + token + "\x00")}
}

// create makes p and its missing ancestors as xenstored does: a new node
// inherits its parent's permissions, and one created by a domain other
// than dom0 is owned by that domain.
func create(nodes map[string]*node, p string, domid uint16) {
	if nodes[p] != nil {
		return
	}
	create(nodes, parent(p), domid)
	perms := append([]xswire.Perm(nil), nodes[parent(p)].perms...)
	if domid != 0 {
		perms[0].Domid = domid
	}
	nodes[p] = &node{perms: perms}
}

// fire lists the events a change at p causes: watches on p, on its
// ancestors and on its descendants, each path as its watcher named it
// (relative to its home or absolute).
func (s *Server) fire(p string) []Delivery {
	var out []Delivery
	for _, w := range s.watches {
		if strings.HasPrefix(w.path, "@") {
			continue
		}
		wp := w.conn.abs(w.path)
		if under(p, wp) || under(wp, p) {
			ep := p
			if !strings.HasPrefix(w.path, "/") {
				ep = strings.TrimPrefix(p, w.conn.Home()+"/")
			}
			out = append(out, Delivery{w.conn, Event(ep, w.token)})
		}
	}
	return out
}

// Handle serves one request from c and returns the reply (first) and the
// watch events it caused, each for its connection.
func (c *Conn) Handle(m xswire.Message) []Delivery {
	s := c.s
	if m.Type == xswire.XSDirectoryPart {
		s.mu.Lock()
		hook := s.onDirPart
		s.mu.Unlock()
		if hook != nil {
			hook()
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	one := func(r xswire.Message) []Delivery { return []Delivery{{c, r}} }
	nodes := s.nodes
	var tx *txn
	if m.TxID != 0 && m.Type != xswire.XSWatch && m.Type != xswire.XSUnwatch {
		if tx = s.txs[m.TxID]; tx == nil {
			return one(ErrReply(m, "ENOENT"))
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
		return one(ErrReply(m, "EINVAL"))
	}
	var changed []string
	out := func(r xswire.Message) []Delivery {
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
			return out(ErrReply(m, "ENOENT"))
		}
		return out(Reply(m, string(n.value)))
	case xswire.XSWrite:
		i := strings.IndexByte(string(m.Payload), 0)
		if i < 0 {
			return out(ErrReply(m, "EINVAL"))
		}
		p := c.abs(string(m.Payload[:i]))
		create(nodes, p, c.domid)
		nodes[p].value = append([]byte(nil), m.Payload[i+1:]...)
		changed = append(changed, p)
		return out(Reply(m, "OK\x00"))
	case xswire.XSMkdir:
		p := c.abs(arg(0))
		if nodes[p] == nil {
			create(nodes, p, c.domid)
			changed = append(changed, p)
		}
		return out(Reply(m, "OK\x00"))
	case xswire.XSRm:
		// A missing node is fine, a missing parent is not (as xenstored).
		p := c.abs(arg(0))
		if nodes[parent(p)] == nil {
			return out(ErrReply(m, "ENOENT"))
		}
		for k := range nodes {
			if under(k, p) {
				delete(nodes, k)
			}
		}
		changed = append(changed, p)
		return out(Reply(m, "OK\x00"))
	case xswire.XSDirectory, xswire.XSDirectoryPart:
		p := c.abs(arg(0))
		if nodes[p] == nil {
			return out(ErrReply(m, "ENOENT"))
		}
		var kids []string
		for k := range nodes {
			if k != p && k != "/" && parent(k) == p {
				kids = append(kids, k[strings.LastIndexByte(k, '/')+1:]+"\x00")
			}
		}
		slices.Sort(kids)
		if m.Type == xswire.XSDirectory {
			list := strings.Join(kids, "")
			if len(list) > xswire.PayloadMax {
				return out(ErrReply(m, "E2BIG"))
			}
			return out(Reply(m, list))
		}
		return out(Reply(m, s.directoryPart(kids, arg(1))))
	case xswire.XSGetPerms:
		n := nodes[c.abs(arg(0))]
		if n == nil {
			return out(ErrReply(m, "ENOENT"))
		}
		var b strings.Builder
		for _, p := range n.perms {
			b.WriteString(p.String() + "\x00")
		}
		return out(Reply(m, b.String()))
	case xswire.XSSetPerms:
		n := nodes[c.abs(arg(0))]
		if n == nil {
			return out(ErrReply(m, "ENOENT"))
		}
		var perms []xswire.Perm
		for _, e := range f[1:] {
			p, err := xswire.ParsePerm(e)
			if err != nil {
				return out(ErrReply(m, "EINVAL"))
			}
			perms = append(perms, p)
		}
		n.perms = perms
		changed = append(changed, c.abs(arg(0)))
		return out(Reply(m, "OK\x00"))
	case xswire.XSGetDomainPath:
		return out(Reply(m, "/local/domain/"+arg(0)+"\x00"))
	case xswire.XSWatch:
		if s.maxWatches > 0 && c.domid != 0 {
			n := 0
			for _, w := range s.watches {
				if w.conn.domid == c.domid {
					n++
				}
			}
			if n >= s.maxWatches {
				// C xenstored's answer at its per-domain watch quota.
				return one(ErrReply(m, "E2BIG"))
			}
		}
		s.watches = append(s.watches, watch{c, arg(0), arg(1)})
		// Fired once at setup, after the acknowledgement.
		return []Delivery{{c, Reply(m, "OK\x00")}, {c, Event(arg(0), arg(1))}}
	case xswire.XSUnwatch:
		i := slices.Index(s.watches, watch{c, arg(0), arg(1)})
		if i < 0 {
			return one(ErrReply(m, "ENOENT"))
		}
		s.watches = slices.Delete(s.watches, i, i+1)
		return one(Reply(m, "OK\x00"))
	case xswire.XSTransactionStart:
		s.lastTx++
		snap := map[string]*node{}
		for k, v := range s.nodes {
			cp := *v
			snap[k] = &cp
		}
		s.txs[s.lastTx] = &txn{base: s.gen, nodes: snap}
		return one(Reply(m, strconv.Itoa(int(s.lastTx))+"\x00"))
	case xswire.XSTransactionEnd:
		if tx == nil {
			return one(ErrReply(m, "EINVAL"))
		}
		delete(s.txs, m.TxID)
		if arg(0) != "T" {
			s.stats.Aborts++
			return one(Reply(m, "OK\x00"))
		}
		if s.failCommits > 0 || tx.base != s.gen {
			if s.failCommits > 0 {
				s.failCommits--
			}
			return one(ErrReply(m, "EAGAIN"))
		}
		s.stats.Commits++
		s.nodes = tx.nodes
		changed = tx.changed
		tx = nil
		return out(Reply(m, "OK\x00"))
	}
	return one(ErrReply(m, "ENOSYS"))
}

// directoryPart answers XS_DIRECTORY_PART as C xenstored does: the
// generation, then whole names from the byte offset while they fit, and
// one more NUL when the list ends in this part.
func (s *Server) directoryPart(kids []string, offset string) string {
	s.stats.DirParts++
	gen := strconv.Itoa(s.gen) + "\x00"
	off, _ := strconv.Atoi(offset)
	part := ""
	for _, k := range kids {
		if off > 0 {
			off -= len(k)
			continue
		}
		if len(gen)+len(part)+len(k)+1 > xswire.PayloadMax {
			return gen + part
		}
		part += k
	}
	return gen + part + "\x00"
}

// Write sets an absolute path as dom0 would and returns the watch events
// it caused.
func (s *Server) Write(p, v string) []Delivery {
	return s.dom0.Handle(xswire.Message{Type: xswire.XSWrite, Payload: []byte(p + "\x00" + v)})[1:]
}

// Mkdir creates an absolute path as dom0 would.
func (s *Server) Mkdir(p string) []Delivery {
	return s.dom0.Handle(xswire.Message{Type: xswire.XSMkdir, Payload: []byte(p + "\x00")})[1:]
}

// Get reads a node directly ("" and false if absent).
func (s *Server) Get(p string) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := s.nodes[p]
	if n == nil {
		return "", false
	}
	return string(n.value), true
}

// Snapshot returns every node's value.
func (s *Server) Snapshot() map[string]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := make(map[string]string, len(s.nodes))
	for k, v := range s.nodes {
		m[k] = string(v.value)
	}
	return m
}

// Watches is the number of watches set.
func (s *Server) Watches() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.watches)
}

// SetMaxWatches caps the watches each domain other than dom0 may hold
// (0: no cap), as xenstored's per-domain quota does (C xenstored's default
// is 128).
func (s *Server) SetMaxWatches(n int) {
	s.mu.Lock()
	s.maxWatches = n
	s.mu.Unlock()
}

// SetFailCommits makes the next n commits fail with EAGAIN.
func (s *Server) SetFailCommits(n int) {
	s.mu.Lock()
	s.failCommits = n
	s.mu.Unlock()
}

// Stats returns the counters.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stats
}

// OnDirPart runs fn before each XS_DIRECTORY_PART is answered (nil: no
// more), to change the store between two parts of a listing.
func (s *Server) OnDirPart(fn func()) {
	s.mu.Lock()
	s.onDirPart = fn
	s.mu.Unlock()
}
