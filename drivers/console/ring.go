// Package console writes a domain's log to the Xen PV console ring
// (xen/include/public/io/console.h, struct xencons_interface), which dom0's
// xenconsoled copies to `xl console` and its log files.
//
// The writer is called for every byte the Go runtime prints, including while
// it panics with locks held, so it never allocates, never blocks on the
// scheduler, and gives up (counting dropped bytes) rather than wait forever
// for a console daemon that does not read.
package console

import (
	"sync/atomic"

	"github.com/xenvtpm/xenvtpm/board/xen/shm"
)

// struct xencons_interface offsets.
const (
	inOff   = 0
	inSize  = 1024
	outOff  = 1024
	outSize = 2048
	inCons  = 3072
	inProd  = 3076
	outCons = 3080
	outProd = 3084
)

// Ring is the output side of a console page.
type Ring struct {
	p      *shm.Page
	notify func()
	// spins bounds how long a full ring is waited for before bytes are
	// dropped.
	spins   int
	dropped atomic.Uint64
}

// New wraps a mapped console page. notify kicks the console event channel.
func New(p *shm.Page, notify func()) *Ring {
	return &Ring{p: p, notify: notify, spins: 1 << 22}
}

// Dropped is the number of bytes discarded because the ring stayed full.
func (r *Ring) Dropped() uint64 { return r.dropped.Load() }

// WriteByte queues one byte, notifying the backend at each newline and
// whenever the ring is full.
func (r *Ring) WriteByte(c byte) error {
	prod := r.p.Load32(outProd)
	if prod-r.p.Load32(outCons) >= outSize {
		r.notify()
		i := 0
		for prod-r.p.Load32(outCons) >= outSize {
			if i++; i > r.spins {
				r.dropped.Add(1)
				return nil
			}
		}
	}
	r.p.Bytes()[outOff+int(prod%outSize)] = c
	r.p.Store32(outProd, prod+1)
	if c == '\n' {
		r.notify()
	}
	return nil
}

// Write queues b and notifies once at the end.
func (r *Ring) Write(b []byte) (int, error) {
	for _, c := range b {
		r.WriteByte(c)
	}
	r.notify()
	return len(b), nil
}

// Flush notifies the backend of anything queued without a newline.
func (r *Ring) Flush() { r.notify() }

// Empty reports whether the backend has consumed everything written.
func (r *Ring) Empty() bool { return r.p.Load32(outCons) == r.p.Load32(outProd) }
