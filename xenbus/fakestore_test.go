package xenbus

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/xenvtpm/xenvtpm/xenbus/xstest"
	"github.com/xenvtpm/xenvtpm/xenbus/xswire"
)

// fakeStore is the test store (package xstest) with the one connection
// a Client under test has, as domain 3.
type fakeStore struct {
	*xstest.Server
	conn *xstest.Conn
}

func newFakeStore(domid uint16) *fakeStore {
	s := &fakeStore{Server: xstest.New()}
	s.conn = s.Conn(domid)
	s.Mkdir(s.conn.Home())
	return s
}

// handle serves one request from the client.
func (s *fakeStore) handle(m xswire.Message) []xswire.Message {
	return msgs(s.conn.Handle(m))
}

// write changes the store as another domain would and returns the watch
// events for the client.
func (s *fakeStore) write(p, v string) []xswire.Message { return msgs(s.Write(p, v)) }

// reply, errReply and event build the messages a test plays as the store.
var (
	reply    = xstest.Reply
	errReply = xstest.ErrReply
	event    = xstest.Event
)

func msgs(ds []xstest.Delivery) []xswire.Message {
	out := make([]xswire.Message, len(ds))
	for i, d := range ds {
		out[i] = d.Msg
	}
	return out
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
