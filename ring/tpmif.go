// Package ring implements the tpmif v2 shared page of
// xen/include/public/io/tpmif.h (struct tpmif_shared_page), the one-page
// request/response channel between a vTPM frontend and backend.
//
// Layout: length u32 @0, state u8 @4, locality u8 @5, pad u8 @6,
// nr_extra_pages u8 @7, extra_pages u32[nr_extra_pages] @8, then the TPM
// packet. The header's comment puts the packet at offset 16; every
// implementation (Linux, mini-os) uses 8 + 4·nr_extra_pages, and so does
// this package. Extra pages are never mapped by anyone, so this side always
// writes nr_extra_pages = 0 and a packet holds at most MaxData bytes.
//
// Ownership: the frontend writes only SUBMIT or CANCEL to state, the
// backend only IDLE or FINISH. Each side writes the packet and length
// first and the state last; the state word is stored with an atomic
// (sequentially consistent) store, which orders the plain copies before it
// as the header's wmb does. Whatever the peer wrote is untrusted: length and
// nr_extra_pages are read once, and offset+length must fit in the page.
package ring

import (
	"errors"
	"fmt"

	"github.com/xenvtpm/xenvtpm/board/xen/shm"
)

// PageSize is the shared page's size.
const PageSize = 4096

// HeaderSize is sizeof(struct tpmif_shared_page).
const HeaderSize = 8

// MaxData is the largest packet a page carries (4096 − 8).
const MaxData = PageSize - HeaderSize

const (
	offLength   = 0
	offState    = 4
	offLocality = 5
	offPad      = 6
	offNrExtra  = 7
)

// State is enum tpmif_state.
type State uint8

// TPMIF_STATE_*.
const (
	StateIdle   State = 0
	StateSubmit State = 1
	StateFinish State = 2
	StateCancel State = 3
)

func (s State) String() string {
	switch s {
	case StateIdle:
		return "IDLE"
	case StateSubmit:
		return "SUBMIT"
	case StateFinish:
		return "FINISH"
	case StateCancel:
		return "CANCEL"
	}
	return fmt.Sprintf("State(%d)", uint8(s))
}

var (
	// ErrTooLong marks a packet (ours or the peer's) that does not fit.
	ErrTooLong = errors.New("tpmif: packet does not fit the shared page")
	// ErrEmpty marks a zero-length packet.
	ErrEmpty = errors.New("tpmif: empty packet")
)

// Page is a tpmif v2 shared page.
type Page struct {
	p *shm.Page
}

// New wraps a mapped or granted page.
func New(p *shm.Page) (*Page, error) {
	if p == nil || p.Len() < PageSize {
		n := 0
		if p != nil {
			n = p.Len()
		}
		return nil, fmt.Errorf("tpmif: shared page is %d bytes, need %d", n, PageSize)
	}
	return &Page{p: p}, nil
}

// State reads the state byte.
func (r *Page) State() State { return State(r.p.Load8(offState)) }

// Locality reads the locality byte.
func (r *Page) Locality() uint8 { return r.p.Load8(offLocality) }

// dataOffset reads nr_extra_pages once and returns where the packet
// starts. With a u8 count it is at most 8+4·255 = 1028, always inside the
// page.
func (r *Page) dataOffset() int {
	return HeaderSize + 4*int(r.p.Load8(offNrExtra))
}

// readPacket copies the peer's packet out, reading length once.
func (r *Page) readPacket(dst []byte) ([]byte, error) {
	off := r.dataOffset()
	n := r.p.Load32(offLength)
	if uint64(off)+uint64(n) > PageSize {
		return dst[:0], fmt.Errorf("tpmif: length %d at offset %d overruns the %d-byte page: %w", n, off, PageSize, ErrTooLong)
	}
	if n == 0 {
		return dst[:0], ErrEmpty
	}
	dst = append(dst[:0], r.p.Bytes()[off:off+int(n)]...)
	return dst, nil
}

// writePacket copies pkt to off and sets length; the caller stores the
// state afterwards.
func (r *Page) writePacket(off int, pkt []byte) error {
	if off+len(pkt) > PageSize {
		return fmt.Errorf("tpmif: %d-byte packet at offset %d: %w", len(pkt), off, ErrTooLong)
	}
	copy(r.p.Bytes()[off:], pkt)
	r.p.Store32(offLength, uint32(len(pkt)))
	return nil
}

// Frontend operations.

// Submit writes a request (frontend): packet at offset 8, nr_extra_pages 0,
// locality, length, then state SUBMIT. The caller notifies the backend.
func (r *Page) Submit(locality uint8, cmd []byte) error {
	if len(cmd) == 0 {
		return ErrEmpty
	}
	if len(cmd) > MaxData {
		return fmt.Errorf("tpmif: %d-byte command, at most %d: %w", len(cmd), MaxData, ErrTooLong)
	}
	r.p.Store8(offNrExtra, 0)
	r.p.Store8(offPad, 0)
	r.p.Store8(offLocality, locality)
	if err := r.writePacket(HeaderSize, cmd); err != nil {
		return err
	}
	r.p.Store8(offState, uint8(StateSubmit))
	return nil
}

// Cancel asks the backend to drop the current request (frontend). The
// backend answers IDLE, or FINISH if the command already ran.
func (r *Page) Cancel() { r.p.Store8(offState, uint8(StateCancel)) }

// Response copies the backend's response into dst (reusing its storage)
// once the state is FINISH (frontend). It fails if the state is not FINISH
// or the length is out of bounds.
func (r *Page) Response(dst []byte) ([]byte, error) {
	if s := r.State(); s != StateFinish {
		return dst[:0], fmt.Errorf("tpmif: no response: state is %v", s)
	}
	return r.readPacket(dst)
}

// Backend operations.

// Request is a command read from the page by the backend.
type Request struct {
	Locality uint8
	Cmd      []byte
	// offset is where the frontend expects the response.
	offset int
}

// Request copies the pending command out (backend). It reads length and
// nr_extra_pages once; a packet that overruns the page is an error wrapping
// ErrTooLong, and the caller answers it with an error response. Cmd then
// holds what is on the page of the command's tag (its first two bytes), so
// that the answer can be in the client's TPM family.
func (r *Page) Request(dst []byte) (Request, error) {
	off := r.dataOffset()
	loc := r.Locality()
	n := r.p.Load32(offLength)
	req := Request{Locality: loc, offset: off, Cmd: dst[:0]}
	if uint64(off)+uint64(n) > PageSize {
		req.Cmd = append(req.Cmd, r.p.Bytes()[off:min(off+2, PageSize)]...)
		return req, fmt.Errorf("tpmif: request length %d at offset %d overruns the %d-byte page: %w", n, off, PageSize, ErrTooLong)
	}
	if n == 0 {
		return req, ErrEmpty
	}
	req.Cmd = append(req.Cmd, r.p.Bytes()[off:off+int(n)]...)
	return req, nil
}

// MaxResponse is the room for a response to req.
func (req Request) MaxResponse() int { return PageSize - req.offset }

// Finish writes the response to req and sets FINISH (backend). The caller
// notifies the frontend. A response that does not fit is refused and
// nothing is written.
func (r *Page) Finish(req Request, rsp []byte) error {
	off := req.offset
	if off < HeaderSize {
		off = HeaderSize
	}
	if err := r.writePacket(off, rsp); err != nil {
		return err
	}
	r.p.Store8(offState, uint8(StateFinish))
	return nil
}

// Idle sets IDLE (backend): the answer to a CANCEL of a request that will
// not run, and the "cancelled for another reason" answer to a SUBMIT.
func (r *Page) Idle() { r.p.Store8(offState, uint8(StateIdle)) }
