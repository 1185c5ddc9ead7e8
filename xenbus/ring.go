package xenbus

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/xenvtpm/xenvtpm/board/xen/shm"
	"github.com/xenvtpm/xenvtpm/xenbus/xswire"
)

// struct xenstore_domain_interface (xs_wire.h): two byte rings and their
// free-running indices, then the reconnection fields.
const (
	ringSize = 1024 // XENSTORE_RING_SIZE

	offReq            = 0    // req[]: us to xenstored
	offRsp            = 1024 // rsp[]: xenstored to us, replies and watch events
	offReqCons        = 2048
	offReqProd        = 2052
	offRspCons        = 2056
	offRspProd        = 2060
	offServerFeatures = 2064
	offConnection     = 2068
	offError          = 2072
	offEvtchnPort     = 2076
	ringPageMin       = 2080

	xenstoreConnected = 0 // XENSTORE_CONNECTED
)

var ringErrorNames = map[uint32]string{1: "XENSTORE_ERROR_COMM", 2: "XENSTORE_ERROR_RINGIDX", 3: "XENSTORE_ERROR_PROTO"}

// Ring is the Transport over a domain's xenstore ring page.
//
// Indices are free-running u32s masked into the 1024-byte rings, so they
// may start anywhere and wrap past 2^32. Data is copied into the ring
// before the producer index is published (shm orders the copy before its
// atomic store), and the event channel is kicked after every index update,
// as docs/misc/xenstore-ring.txt asks. When the ring is full or empty the
// Ring blocks on wake, never spinning.
//
// The reconnection protocol is honoured only as far as a guest must: if
// the page says a reconnect is in progress (connection = 1), nothing is
// sent or read until xenstored sets it back to 0. The Ring never starts a
// reconnect itself.
type Ring struct {
	page   *shm.Page
	buf    []byte
	notify func() error
	wake   <-chan struct{}

	connected atomic.Bool
	sendBuf   []byte // Sends are serialised by the Client

	mu   sync.Mutex
	ev   chan struct{} // closed and replaced at every wake
	err  error         // why the ring stopped; set once
	dead chan struct{} // closed when err is set
}

// NewRing returns a transport over the xenstore page (HVM_PARAM_STORE_PFN).
// notify kicks xenstored through the store event channel; wake must
// receive, possibly coalesced, whenever that event channel fires. Closing
// wake stops the Ring.
func NewRing(page *shm.Page, notify func() error, wake <-chan struct{}) (*Ring, error) {
	if page == nil || page.Len() < ringPageMin {
		return nil, fmt.Errorf("xenbus: xenstore ring page must be at least %d bytes", ringPageMin)
	}
	if notify == nil || wake == nil {
		return nil, errors.New("xenbus: xenstore ring needs a notify function and a wake channel")
	}
	r := &Ring{
		page:   page,
		buf:    page.Bytes(),
		notify: notify,
		wake:   wake,
		ev:     make(chan struct{}),
		dead:   make(chan struct{}),
	}
	go r.fanOut()
	return r, nil
}

// RingEvtchnPort reads the evtchn_port field Xen fills in for domains
// whose xenstore connection it set up itself (dom0less); 0 means "use
// HVM_PARAM_STORE_EVTCHN".
func RingEvtchnPort(page *shm.Page) uint32 {
	if page == nil || page.Len() < ringPageMin {
		return 0
	}
	return page.Load32(offEvtchnPort)
}

// fanOut turns each wake into a broadcast, because the sender and the
// reader both wait for the same event channel.
func (r *Ring) fanOut() {
	for {
		select {
		case _, ok := <-r.wake:
			if !ok {
				r.stop(errors.New("xenbus: xenstore event channel closed"))
				return
			}
			r.mu.Lock()
			close(r.ev)
			r.ev = make(chan struct{})
			r.mu.Unlock()
		case <-r.dead:
			return
		}
	}
}

// event returns the channel the next wake will close. Taking it before
// looking at the ring means a wake that arrives in between is not lost.
func (r *Ring) event() chan struct{} {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.ev
}

func (r *Ring) stop(err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.err == nil {
		r.err = err
		close(r.dead)
	}
}

func (r *Ring) failure() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.err
}

// Close stops the Ring; a blocked Recv returns.
func (r *Ring) Close() error {
	r.stop(ErrClosed)
	return nil
}

// wait blocks until the next wake, ctx's end or the Ring's end. It also
// looks at the error field, through which xenstored reports that it gave
// up on this ring, so a dead peer does not leave us waiting forever.
func (r *Ring) wait(ctx context.Context, ev chan struct{}) error {
	if e := r.page.Load32(offError); e != 0 {
		name := ringErrorNames[e]
		if name == "" {
			name = fmt.Sprintf("error %d", e)
		}
		r.stop(fmt.Errorf("xenbus: xenstored reported %s on the ring: %w", name, ErrProtocol))
	}
	select {
	case <-ev:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-r.dead:
		return r.failure()
	}
}

func (r *Ring) kick() error {
	if err := r.notify(); err != nil {
		err = fmt.Errorf("xenbus: notifying xenstored: %w", err)
		r.stop(err)
		return err
	}
	return nil
}

func (r *Ring) waitConnected(ctx context.Context) error {
	for !r.connected.Load() {
		ev := r.event()
		if r.page.Load32(offConnection) == xenstoreConnected {
			r.connected.Store(true)
			break
		}
		if err := r.wait(ctx, ev); err != nil {
			return fmt.Errorf("xenbus: waiting for xenstored to finish reconnecting: %w", err)
		}
	}
	return nil
}

// Send copies one message into the request ring, in pieces if the ring is
// full or the message wraps past its end.
func (r *Ring) Send(ctx context.Context, m xswire.Message) error {
	if err := r.failure(); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := r.waitConnected(ctx); err != nil {
		return err
	}
	b, err := m.Append(r.sendBuf[:0])
	if err != nil {
		return err
	}
	r.sendBuf = b
	for done := 0; done < len(b); {
		ev := r.event()
		cons := r.page.Load32(offReqCons)
		prod := r.page.Load32(offReqProd)
		used := prod - cons
		if used > ringSize {
			err := fmt.Errorf("xenbus: request ring indices corrupt (req_cons %d, req_prod %d): %w", cons, prod, ErrProtocol)
			r.stop(err)
			return err
		}
		if used == ringSize {
			if err := r.wait(ctx, ev); err != nil {
				if done > 0 {
					// Half a message is in the ring: the stream cannot be
					// repaired, so the connection ends here.
					r.stop(fmt.Errorf("xenbus: %v abandoned after %d of %d bytes: %w", m.Type, done, len(b), err))
				}
				return fmt.Errorf("xenbus: request ring full: %w", err)
			}
			continue
		}
		off := int(prod & (ringSize - 1))
		n := min(ringSize-int(used), len(b)-done, ringSize-off)
		copy(r.buf[offReq+off:offReq+off+n], b[done:done+n])
		r.page.Store32(offReqProd, prod+uint32(n))
		done += n
		if err := r.kick(); err != nil {
			return err
		}
	}
	return nil
}

// Recv reads the next message from the response ring.
func (r *Ring) Recv() (xswire.Message, error) {
	if err := r.waitConnected(context.Background()); err != nil {
		return xswire.Message{}, err
	}
	var hb [xswire.HeaderSize]byte
	if err := r.readFull(hb[:]); err != nil {
		return xswire.Message{}, err
	}
	h, err := xswire.ParseHeader(hb[:])
	if err != nil {
		r.stop(err)
		return xswire.Message{}, err
	}
	m := xswire.Message{Type: h.Type, ReqID: h.ReqID, TxID: h.TxID, Payload: make([]byte, h.Len)}
	if err := r.readFull(m.Payload); err != nil {
		return xswire.Message{}, fmt.Errorf("xenbus: reading %v payload: %w", h.Type, err)
	}
	return m, nil
}

func (r *Ring) readFull(dst []byte) error {
	for got := 0; got < len(dst); {
		ev := r.event()
		cons := r.page.Load32(offRspCons)
		prod := r.page.Load32(offRspProd)
		avail := prod - cons
		if avail > ringSize {
			err := fmt.Errorf("xenbus: response ring indices corrupt (rsp_cons %d, rsp_prod %d): %w", cons, prod, ErrProtocol)
			r.stop(err)
			return err
		}
		if avail == 0 {
			if err := r.wait(context.Background(), ev); err != nil {
				return err
			}
			continue
		}
		off := int(cons & (ringSize - 1))
		n := min(int(avail), len(dst)-got, ringSize-off)
		copy(dst[got:got+n], r.buf[offRsp+off:offRsp+off+n])
		r.page.Store32(offRspCons, cons+uint32(n))
		got += n
		if err := r.kick(); err != nil {
			return err
		}
	}
	return nil
}
