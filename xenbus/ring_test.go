package xenbus

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/xenvtpm/xenvtpm/board/xen/shm"
	"github.com/xenvtpm/xenvtpm/xenbus/xswire"
)

// ringServer plays xenstored on the far side of a ring page. It moves at
// most chunk bytes per index update, so messages arrive and leave in
// pieces, and it is written independently of Ring so the two check each
// other.
type ringServer struct {
	page   *shm.Page
	buf    []byte
	wake   chan struct{} // kicked by the client's notify
	client chan struct{} // the client's wake channel
	handle func(xswire.Message) [][]byte
	chunk  uint32
	stop   chan struct{}
	done   chan struct{}
	in     []byte
	out    []byte
}

func newRingPair(t testing.TB, reqStart, rspStart uint32, chunk uint32) (*ringServer, *Ring) {
	t.Helper()
	page := shm.New(make([]byte, 4096))
	page.Store32(offReqCons, reqStart)
	page.Store32(offReqProd, reqStart)
	page.Store32(offRspCons, rspStart)
	page.Store32(offRspProd, rspStart)
	s := &ringServer{
		page: page, buf: page.Bytes(), chunk: chunk,
		wake:   make(chan struct{}, 1),
		client: make(chan struct{}, 1),
		stop:   make(chan struct{}),
		done:   make(chan struct{}),
	}
	r, err := NewRing(page, func() error { kick(s.wake); return nil }, s.client)
	if err != nil {
		t.Fatal(err)
	}
	return s, r
}

func kick(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

func (s *ringServer) serveStore(st *fakeStore) {
	s.handle = func(m xswire.Message) [][]byte {
		var out [][]byte
		for _, r := range st.handle(m) {
			b, err := r.MarshalBinary()
			if err != nil {
				panic(err)
			}
			out = append(out, b)
		}
		return out
	}
	go s.run()
}

func (s *ringServer) halt() {
	close(s.stop)
	<-s.done
}

func (s *ringServer) run() {
	defer close(s.done)
	for {
		progress := false
		cons, prod := s.page.Load32(offReqCons), s.page.Load32(offReqProd)
		if avail := prod - cons; avail > 0 {
			off := cons % ringSize
			n := min(avail, ringSize-off, s.chunk)
			s.in = append(s.in, s.buf[offReq+off:offReq+off+n]...)
			s.page.Store32(offReqCons, cons+n)
			kick(s.client)
			progress = true
		}
		for len(s.in) >= xswire.HeaderSize {
			h, err := xswire.ParseHeader(s.in)
			if err != nil {
				panic(fmt.Sprintf("fake xenstored got a bad request: %v", err))
			}
			end := xswire.HeaderSize + int(h.Len)
			if len(s.in) < end {
				break
			}
			m, err := xswire.Unmarshal(s.in[:end])
			if err != nil {
				panic(err)
			}
			s.in = s.in[end:]
			for _, b := range s.handle(m) {
				s.out = append(s.out, b...)
			}
		}
		if len(s.out) > 0 {
			cons, prod := s.page.Load32(offRspCons), s.page.Load32(offRspProd)
			if space := ringSize - (prod - cons); space > 0 {
				off := prod % ringSize
				n := min(space, ringSize-off, s.chunk, uint32(len(s.out)))
				copy(s.buf[offRsp+off:], s.out[:n])
				s.page.Store32(offRspProd, prod+n)
				s.out = s.out[n:]
				kick(s.client)
				progress = true
			}
		}
		if !progress {
			select {
			case <-s.wake:
			case <-s.stop:
				return
			}
		}
	}
}

func TestRingOperationsAcrossIndexWrap(t *testing.T) {
	for _, tc := range []struct {
		name               string
		reqStart, rspStart uint32
		chunk              uint32
	}{
		{"near 2^32, small pieces", 0xFFFFFFFF - 700, 0xFFFFFFFF - 5, 7},
		{"zero start, whole ring", 0, 0, ringSize},
		{"odd start, odd pieces", 0x7FFFFFF3, 0xFFFFF001, 333},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, ring := newRingPair(t, tc.reqStart, tc.rspStart, tc.chunk)
			st := newFakeStore(3)
			srv.serveStore(st)
			defer srv.halt()
			c := NewClient(ring)
			defer c.Close()
			ctx := testCtx(t)

			w, err := c.Watch(ctx, "big")
			if err != nil {
				t.Fatal(err)
			}
			if got := recvEvent(t, w); got != "big" {
				t.Fatalf("setup event %q", got)
			}
			// Values at the payload limit wrap both 1024-byte rings
			// several times.
			for i := range 6 {
				path := fmt.Sprintf("big/v%d", i)
				val := bytes.Repeat([]byte{byte('a' + i)}, xswire.PayloadMax-len("/local/domain/3/")-len(path)-1)
				if err := c.Write(ctx, path, val); err != nil {
					t.Fatal(err)
				}
				if got := recvEvent(t, w); got != path {
					t.Fatalf("event %q, want %q", got, path)
				}
				got, err := c.Read(ctx, path)
				if err != nil || !bytes.Equal(got, val) {
					t.Fatalf("read back %d bytes, %v", len(got), err)
				}
			}
			names, err := c.Directory(ctx, "big")
			if err != nil || len(names) != 6 {
				t.Fatalf("Directory = %q, %v", names, err)
			}
			if _, err := c.Read(ctx, "big/none"); !errors.Is(err, ErrNoEnt) {
				t.Fatalf("missing node over the ring: %v", err)
			}
			if tc.reqStart > 0xF0000000 {
				if p := srv.page.Load32(offReqProd); p > tc.reqStart {
					t.Fatalf("req_prod %#x did not wrap past 2^32", p)
				}
				if p := srv.page.Load32(offRspProd); p > tc.rspStart {
					t.Fatalf("rsp_prod %#x did not wrap past 2^32", p)
				}
			}
		})
	}
}

func TestRingConcurrentCallers(t *testing.T) {
	srv, ring := newRingPair(t, 100, 200, 61)
	srv.serveStore(newFakeStore(1))
	defer srv.halt()
	c := NewClient(ring)
	defer c.Close()
	ctx := testCtx(t)
	errs := make(chan error, 8)
	for g := range 8 {
		go func() {
			for i := range 30 {
				p, v := fmt.Sprintf("/c/%d/%d", g, i), strings.Repeat("x", 50*i)
				if err := c.WriteString(ctx, p, v); err != nil {
					errs <- err
					return
				}
				if got, err := c.ReadString(ctx, p); err != nil || got != v {
					errs <- fmt.Errorf("%s: %d bytes, %v", p, len(got), err)
					return
				}
			}
			errs <- nil
		}()
	}
	for range 8 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}

func TestRingWaitsWhileReconnecting(t *testing.T) {
	srv, ring := newRingPair(t, 0, 0, ringSize)
	srv.page.Store32(offConnection, 1)
	srv.serveStore(newFakeStore(1))
	defer srv.halt()
	c := NewClient(ring)
	defer c.Close()

	short, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := c.Read(short, "/a"); !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "reconnecting") {
		t.Fatalf("read during reconnect: %v", err)
	}
	if p := srv.page.Load32(offReqProd); p != 0 {
		t.Fatalf("%d bytes sent during reconnect", p)
	}
	srv.page.Store32(offConnection, 0)
	kick(srv.client)
	if _, err := c.Read(testCtx(t), "/local"); err != nil {
		t.Fatal(err)
	}
}

func TestRingMalformedReplyHeader(t *testing.T) {
	srv, ring := newRingPair(t, 5, 9, 100)
	srv.handle = func(m xswire.Message) [][]byte {
		bad := binaryHeader(uint32(xswire.XSRead), m.ReqID, 0, 5000)
		return [][]byte{bad}
	}
	go srv.run()
	defer srv.halt()
	c := NewClient(ring)
	defer c.Close()
	_, err := c.Read(testCtx(t), "/a")
	if !errors.Is(err, ErrProtocol) || !strings.Contains(err.Error(), "5000-byte payload") {
		t.Fatalf("err = %v", err)
	}
	if c.Err() == nil {
		t.Fatal("client still up after a corrupt stream")
	}
}

func binaryHeader(typ, req, tx, n uint32) []byte {
	var b []byte
	for _, v := range []uint32{typ, req, tx, n} {
		b = binary.LittleEndian.AppendUint32(b, v)
	}
	return b
}

func TestRingCorruptIndices(t *testing.T) {
	_, ring := newRingPair(t, 0, 0, ringSize)
	ring.page.Store32(offRspProd, 2000)
	c := NewClient(ring)
	defer c.Close()
	_, err := c.Read(testCtx(t), "/a")
	if !errors.Is(err, ErrProtocol) || !strings.Contains(err.Error(), "indices corrupt") {
		t.Fatalf("err = %v", err)
	}
}

func TestRingFullAndPeerGone(t *testing.T) {
	srv, ring := newRingPair(t, 0, 0, ringSize) // no server running
	c := NewClient(ring)
	defer c.Close()

	// A message larger than the ring: the first 1024 bytes go in, then the
	// deadline hits with half a message in the ring, so the connection is
	// beyond repair and says so.
	short, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	err := c.Write(short, "/v", make([]byte, 2000))
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("write into a full ring: %v", err)
	}
	if p := srv.page.Load32(offReqProd); p != ringSize {
		t.Fatalf("req_prod = %d, want a full ring", p)
	}
	_, err = c.Read(testCtx(t), "/a")
	if err == nil || !strings.Contains(err.Error(), "abandoned after 1024") {
		t.Fatalf("call after a torn message: %v", err)
	}
}

func TestRingPeerReportsError(t *testing.T) {
	srv, ring := newRingPair(t, 0, 0, ringSize)
	c := NewClient(ring)
	defer c.Close()
	done := make(chan error)
	go func() { _, err := c.Read(context.Background(), "/a"); done <- err }()
	// Wait until the request is in the ring, then give up on it as
	// xenstored does.
	for srv.page.Load32(offReqProd) == 0 {
		select {
		case <-srv.wake:
		case <-time.After(10 * time.Second):
			t.Fatal("request never sent")
		}
	}
	srv.page.Store32(offError, 2)
	kick(srv.client)
	if err := <-done; !errors.Is(err, ErrProtocol) || !strings.Contains(err.Error(), "XENSTORE_ERROR_RINGIDX") {
		t.Fatalf("err = %v", err)
	}
}

func TestRingWakeClosed(t *testing.T) {
	srv, ring := newRingPair(t, 0, 0, ringSize)
	c := NewClient(ring)
	defer c.Close()
	close(srv.client)
	if _, err := c.Read(testCtx(t), "/a"); err == nil || !strings.Contains(err.Error(), "event channel closed") {
		t.Fatalf("err = %v", err)
	}
}

func TestNewRingRejectsBadArguments(t *testing.T) {
	wake := make(chan struct{})
	notify := func() error { return nil }
	if _, err := NewRing(shm.New(make([]byte, 1024)), notify, wake); err == nil {
		t.Error("short page accepted")
	}
	if _, err := NewRing(shm.New(make([]byte, 4096)), nil, wake); err == nil {
		t.Error("nil notify accepted")
	}
	page := shm.New(make([]byte, 4096))
	page.Store32(offEvtchnPort, 9)
	if RingEvtchnPort(page) != 9 || RingEvtchnPort(nil) != 0 {
		t.Error("RingEvtchnPort")
	}
}

func TestRingNotifyFailure(t *testing.T) {
	page := shm.New(make([]byte, 4096))
	r, err := NewRing(page, func() error { return errors.New("EVTCHNOP_send failed") }, make(chan struct{}))
	if err != nil {
		t.Fatal(err)
	}
	c := NewClient(r)
	defer c.Close()
	if _, err := c.Read(testCtx(t), "/a"); err == nil || !strings.Contains(err.Error(), "EVTCHNOP_send failed") {
		t.Fatalf("err = %v", err)
	}
}

// BenchmarkRingRead measures one XS_READ round trip over the ring with
// the fake xenstored on another goroutine (on the host, so this is the
// cost of the client, the ring copy and two goroutine wake-ups, not of
// Xen's event channels).
func BenchmarkRingRead(b *testing.B) {
	for _, size := range []int{8, 1000, 4000} {
		b.Run(fmt.Sprintf("value=%d", size), func(b *testing.B) {
			srv, ring := newRingPair(b, 0xFFFFFF00, 0xFFFFFF00, ringSize)
			st := newFakeStore(1)
			srv.serveStore(st)
			defer srv.halt()
			c := NewClient(ring)
			defer c.Close()
			ctx := context.Background()
			if err := c.Write(ctx, "/bench", make([]byte, size)); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := c.Read(ctx, "/bench"); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
