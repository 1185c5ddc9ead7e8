package xenbus

import (
	"context"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/xenvtpm/xenvtpm/xenbus/xswire"
)

// fakeStore is an in-memory xenstored for tests: a node tree, watches,
// snapshot transactions whose commit fails with EAGAIN after any
// intervening write, and switches to inject faults.
type fakeStore struct {
	mu      sync.Mutex
	domid   int
	nodes   map[string]*fakeNode
	gen     int // bumped by every committed change
	watches []fakeWatch
	txs     map[uint32]*fakeTx
	lastTx  uint32

	failCommits int // next commits answered with EAGAIN regardless
	dirParts    int // XS_DIRECTORY_PART requests served
	// onDirPart, if set, runs before each XS_DIRECTORY_PART is answered
	// (with the lock held), to change the store between parts.
	onDirPart func(*fakeStore)
	commits     int // successful commits
	aborts      int
}

type fakeNode struct {
	value []byte
	perms []xswire.Perm
}

type fakeWatch struct{ path, token string }

type fakeTx struct {
	base    int
	nodes   map[string]*fakeNode
	changed []string
}

func newFakeStore(domid int) *fakeStore {
	s := &fakeStore{domid: domid, nodes: map[string]*fakeNode{}, txs: map[uint32]*fakeTx{}}
	for _, p := range []string{"/", "/local", "/local/domain", s.home()} {
		s.nodes[p] = &fakeNode{perms: []xswire.Perm{{Access: xswire.AccessNone, Domid: 0}}}
	}
	return s
}

func (s *fakeStore) home() string { return "/local/domain/" + strconv.Itoa(s.domid) }

func (s *fakeStore) abs(p string) string {
	if strings.HasPrefix(p, "/") {
		return p
	}
	return s.home() + "/" + p
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

func reply(m xswire.Message, payload string) xswire.Message {
	return xswire.Message{Type: m.Type, ReqID: m.ReqID, TxID: m.TxID, Payload: []byte(payload)}
}

func errReply(m xswire.Message, name string) xswire.Message {
	return xswire.Message{Type: xswire.XSError, ReqID: m.ReqID, TxID: m.TxID, Payload: []byte(name + "\x00")}
}

// handle answers one request; the reply comes first, then any watch
// events it caused, as xenstored sends them.
func (s *fakeStore) handle(m xswire.Message) []xswire.Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	nodes := s.nodes
	var tx *fakeTx
	if m.TxID != 0 && m.Type != xswire.XSWatch && m.Type != xswire.XSUnwatch {
		if tx = s.txs[m.TxID]; tx == nil {
			return []xswire.Message{errReply(m, "ENOENT")}
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
		return []xswire.Message{errReply(m, "EINVAL")}
	}
	var changed []string
	out := func(r xswire.Message) []xswire.Message {
		msgs := []xswire.Message{r}
		if tx != nil {
			tx.changed = append(tx.changed, changed...)
			return msgs
		}
		if len(changed) > 0 {
			s.gen++
		}
		for _, p := range changed {
			msgs = append(msgs, s.fire(p)...)
		}
		return msgs
	}
	switch m.Type {
	case xswire.XSRead:
		n := nodes[s.abs(arg(0))]
		if n == nil {
			return out(errReply(m, "ENOENT"))
		}
		return out(reply(m, string(n.value)))
	case xswire.XSWrite:
		i := strings.IndexByte(string(m.Payload), 0)
		if i < 0 {
			return out(errReply(m, "EINVAL"))
		}
		p := s.abs(string(m.Payload[:i]))
		s.create(nodes, p)
		nodes[p].value = append([]byte(nil), m.Payload[i+1:]...)
		changed = append(changed, p)
		return out(reply(m, "OK\x00"))
	case xswire.XSMkdir:
		p := s.abs(arg(0))
		if nodes[p] == nil {
			s.create(nodes, p)
			changed = append(changed, p)
		}
		return out(reply(m, "OK\x00"))
	case xswire.XSRm:
		p := s.abs(arg(0))
		if nodes[parent(p)] == nil {
			return out(errReply(m, "ENOENT"))
		}
		for k := range nodes {
			if under(k, p) {
				delete(nodes, k)
			}
		}
		changed = append(changed, p)
		return out(reply(m, "OK\x00"))
	case xswire.XSDirectory, xswire.XSDirectoryPart:
		p := s.abs(arg(0))
		if nodes[p] == nil {
			return out(errReply(m, "ENOENT"))
		}
		var kids []string
		for k := range nodes {
			if k != p && k != "/" && parent(k) == p {
				kids = append(kids, k[strings.LastIndexByte(k, '/')+1:]+"\x00")
			}
		}
		slices.Sort(kids)
		list := strings.Join(kids, "")
		if m.Type == xswire.XSDirectory {
			if len(list) > xswire.PayloadMax {
				return out(errReply(m, "E2BIG"))
			}
			return out(reply(m, list))
		}
		// As C xenstored: whole names from the offset while they fit,
		// and one more NUL when the list ends in this part.
		s.dirParts++
		if s.onDirPart != nil {
			s.onDirPart(s)
		}
		gen := strconv.Itoa(s.gen) + "\x00"
		off, _ := strconv.Atoi(arg(1))
		part := ""
		for _, k := range kids {
			if off > 0 {
				off -= len(k)
				continue
			}
			if len(gen)+len(part)+len(k)+1 > xswire.PayloadMax {
				return out(reply(m, gen+part))
			}
			part += k
		}
		return out(reply(m, gen+part+"\x00"))
	case xswire.XSGetPerms:
		n := nodes[s.abs(arg(0))]
		if n == nil {
			return out(errReply(m, "ENOENT"))
		}
		var b strings.Builder
		for _, p := range n.perms {
			b.WriteString(p.String() + "\x00")
		}
		return out(reply(m, b.String()))
	case xswire.XSSetPerms:
		n := nodes[s.abs(arg(0))]
		if n == nil {
			return out(errReply(m, "ENOENT"))
		}
		var perms []xswire.Perm
		for _, e := range f[1:] {
			p, err := xswire.ParsePerm(e)
			if err != nil {
				return out(errReply(m, "EINVAL"))
			}
			perms = append(perms, p)
		}
		n.perms = perms
		changed = append(changed, s.abs(arg(0)))
		return out(reply(m, "OK\x00"))
	case xswire.XSGetDomainPath:
		return out(reply(m, "/local/domain/"+arg(0)+"\x00"))
	case xswire.XSWatch:
		s.watches = append(s.watches, fakeWatch{arg(0), arg(1)})
		// Fired once at setup, after the acknowledgement.
		return []xswire.Message{reply(m, "OK\x00"), event(arg(0), arg(1))}
	case xswire.XSUnwatch:
		i := slices.Index(s.watches, fakeWatch{arg(0), arg(1)})
		if i < 0 {
			return out(errReply(m, "ENOENT"))
		}
		s.watches = slices.Delete(s.watches, i, i+1)
		return out(reply(m, "OK\x00"))
	case xswire.XSTransactionStart:
		s.lastTx++
		snap := map[string]*fakeNode{}
		for k, v := range s.nodes {
			c := *v
			snap[k] = &c
		}
		s.txs[s.lastTx] = &fakeTx{base: s.gen, nodes: snap}
		return out(reply(m, strconv.Itoa(int(s.lastTx))+"\x00"))
	case xswire.XSTransactionEnd:
		if tx == nil {
			return []xswire.Message{errReply(m, "EINVAL")}
		}
		delete(s.txs, m.TxID)
		if arg(0) != "T" {
			s.aborts++
			return []xswire.Message{reply(m, "OK\x00")}
		}
		if s.failCommits > 0 || tx.base != s.gen {
			if s.failCommits > 0 {
				s.failCommits--
			}
			return []xswire.Message{errReply(m, "EAGAIN")}
		}
		s.commits++
		s.nodes = tx.nodes
		changed = tx.changed
		tx = nil
		return out(reply(m, "OK\x00"))
	}
	return []xswire.Message{errReply(m, "ENOSYS")}
}

func (s *fakeStore) create(nodes map[string]*fakeNode, p string) {
	for q := p; nodes[q] == nil; q = parent(q) {
		nodes[q] = &fakeNode{perms: []xswire.Perm{{Access: xswire.AccessNone, Domid: uint16(s.domid)}}}
	}
}

// fire lists the events a change at p causes: watches on p, on its
// ancestors and (for removals) on its descendants.
func (s *fakeStore) fire(p string) []xswire.Message {
	var evs []xswire.Message
	for _, w := range s.watches {
		if strings.HasPrefix(w.path, "@") {
			continue
		}
		wp := s.abs(w.path)
		if under(p, wp) || under(wp, p) {
			ep := p
			if !strings.HasPrefix(w.path, "/") {
				ep = strings.TrimPrefix(p, s.home()+"/")
			}
			evs = append(evs, event(ep, w.token))
		}
	}
	return evs
}

func event(path, token string) xswire.Message {
	return xswire.Message{Type: xswire.XSWatchEvent, Payload: []byte(path + "\x00" + token + "\x00")}
}

// write changes the store as another domain would.
func (s *fakeStore) write(p, v string) []xswire.Message {
	return s.handle(xswire.Message{Type: xswire.XSWrite, Payload: []byte(p + "\x00" + v)})[1:]
}

func (s *fakeStore) snapshot() map[string]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := map[string]string{}
	for k, v := range maps.All(s.nodes) {
		m[k] = string(v.value)
	}
	return m
}

// pipe is a message-level Transport whose far end the test drives.
type pipe struct {
	toServer   chan xswire.Message
	fromServer chan xswire.Message
	recvErr    chan error
	closed     chan struct{}
	closeOnce  sync.Once
}

func newPipe() *pipe {
	return &pipe{
		toServer:   make(chan xswire.Message, 64),
		fromServer: make(chan xswire.Message, 64),
		recvErr:    make(chan error, 1),
		closed:     make(chan struct{}),
	}
}

func (p *pipe) Send(ctx context.Context, m xswire.Message) error {
	if _, err := m.MarshalBinary(); err != nil {
		return err
	}
	m.Payload = append([]byte(nil), m.Payload...)
	select {
	case p.toServer <- m:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-p.closed:
		return ErrClosed
	}
}

func (p *pipe) Recv() (xswire.Message, error) {
	select {
	case m := <-p.fromServer:
		return m, nil
	case err := <-p.recvErr:
		return xswire.Message{}, err
	case <-p.closed:
		return xswire.Message{}, ErrClosed
	}
}

func (p *pipe) Close() error {
	p.closeOnce.Do(func() { close(p.closed) })
	return nil
}

// serve answers every request from s until the pipe closes.
func (p *pipe) serve(s *fakeStore) {
	for {
		select {
		case m := <-p.toServer:
			for _, r := range s.handle(m) {
				p.push(r)
			}
		case <-p.closed:
			return
		}
	}
}

func (p *pipe) push(m xswire.Message) {
	select {
	case p.fromServer <- m:
	case <-p.closed:
	}
}

// next returns the next request the client sent.
func (p *pipe) next(t *testing.T) xswire.Message {
	t.Helper()
	select {
	case m := <-p.toServer:
		return m
	case <-time.After(10 * time.Second):
		t.Fatal("client sent no request")
		return xswire.Message{}
	}
}

// storeClient is a Client served by a fresh fakeStore over a pipe.
func storeClient(t *testing.T, opts ...Option) (*Client, *fakeStore, *pipe) {
	t.Helper()
	s := newFakeStore(3)
	p := newPipe()
	go p.serve(s)
	c := NewClient(p, opts...)
	t.Cleanup(func() { c.Close() })
	return c, s, p
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// errorLog collects what a Client reports through WithErrorHandler.
type errorLog struct {
	mu   sync.Mutex
	errs []error
	got  chan struct{}
}

func newErrorLog() *errorLog { return &errorLog{got: make(chan struct{}, 100)} }

func (l *errorLog) add(err error) {
	l.mu.Lock()
	l.errs = append(l.errs, err)
	l.mu.Unlock()
	l.got <- struct{}{}
}

func (l *errorLog) wait(t *testing.T) error {
	t.Helper()
	select {
	case <-l.got:
	case <-time.After(10 * time.Second):
		t.Fatal("no error reported")
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.errs[len(l.errs)-1]
}

func (l *errorLog) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.errs)
}
