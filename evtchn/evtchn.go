// Package evtchn delivers Xen event channels to goroutines.
//
// It follows xen/include/public/event_channel.h (2-level ABI) and the
// shared_info layout of xen.h for x86-64. The hypercalls themselves are an
// Ops interface, implemented by board/xen inside a domain and by test doubles
// on the host.
//
// Delivery: Xen sets a port's bit in shared_info.evtchn_pending, its word's
// bit in vcpu_info.evtchn_pending_sel and vcpu_info.evtchn_upcall_pending,
// then raises the upcall interrupt. The interrupt handler only wakes the
// goroutine that calls Mux.Demux; Demux scans the bitmaps and signals each
// bound Channel. A Channel's signal is a 1-buffered channel plus a counter:
// signals coalesce while the consumer is busy but are never lost, because a
// consumer that wakes always finds either a buffered signal or a raised
// counter.
package evtchn

import (
	"fmt"
	"math/bits"
	"sync"
	"sync/atomic"

	"github.com/xenvtpm/xenvtpm/board/xen/shm"
)

// Port is an event channel port number local to this domain.
type Port uint32

// Ops are the event-channel hypercalls (EVTCHNOP_*).
type Ops interface {
	AllocUnbound(remoteDom uint16) (Port, error)
	BindInterdomain(remoteDom uint16, remotePort Port) (Port, error)
	BindVIRQ(virq, vcpu uint32) (Port, error)
	Send(Port) error
	Close(Port) error
	Unmask(Port) error
}

// VIRQ numbers (xen.h) used by domains.
const (
	VIRQTimer = 0
)

// shared_info offsets, x86-64.
const (
	upcallPending = 0 // vcpu_info[0].evtchn_upcall_pending
	pendingSel    = 8 // vcpu_info[0].evtchn_pending_sel
	pendingBase   = 2048
	maskBase      = 2560
	// NumPorts is the 2-level ABI's port count on x86-64 (64 words of 64).
	NumPorts = 64 * 64
)

// Mux owns the shared_info event bitmaps of vCPU 0 and the bound channels.
type Mux struct {
	si  *shm.Page
	ops Ops

	mu    sync.Mutex
	ports map[Port]*Channel

	// Stray counts events on ports nobody bound (e.g. VIRQ_TIMER, which
	// exists only to end a halt).
	Stray atomic.Uint64
}

// NewMux takes the mapped shared_info page.
func NewMux(sharedInfo *shm.Page, ops Ops) (*Mux, error) {
	if sharedInfo.Len() < maskBase+NumPorts/8 {
		return nil, fmt.Errorf("evtchn: shared_info window is %d bytes, need %d", sharedInfo.Len(), maskBase+NumPorts/8)
	}
	return &Mux{si: sharedInfo, ops: ops, ports: make(map[Port]*Channel)}, nil
}

// NewDeviceMux returns a Mux for a program that learns of events from an
// operating system rather than from shared_info: in a Linux domain the
// kernel's event-channel device (/dev/xen/evtchn, board/dom0) reads out
// the pending ports, and its reader hands each to Deliver. Demux finds
// nothing on such a Mux and Mask does nothing (the kernel masks a port
// while its event is being read out).
func NewDeviceMux(ops Ops) *Mux {
	return &Mux{ops: ops, ports: make(map[Port]*Channel)}
}

// Ops returns the hypercall interface the Mux was built with.
func (m *Mux) Ops() Ops { return m.ops }

// Channel is one bound port.
type Channel struct {
	Port Port
	// C receives a value after one or more events arrived on the port.
	C     chan struct{}
	count atomic.Uint64
	mux   *Mux
}

// Count is the number of events delivered on the port so far.
func (c *Channel) Count() uint64 { return c.count.Load() }

// Notify signals the remote end.
func (c *Channel) Notify() error {
	if err := c.mux.ops.Send(c.Port); err != nil {
		return fmt.Errorf("evtchn: send on port %d: %w", c.Port, err)
	}
	return nil
}

// Mask stops Xen from raising upcalls for the port; events still mark it
// pending and are delivered after Unmask.
func (c *Channel) Mask() {
	if c.mux.si == nil {
		return
	}
	w, b := int(c.Port/64), uint(c.Port%64)
	c.mux.si.Or64(maskBase+8*w, 1<<b)
}

// Unmask re-enables upcalls for the port (EVTCHNOP_unmask, which re-raises
// an event that arrived while it was masked).
func (c *Channel) Unmask() error {
	if err := c.mux.ops.Unmask(c.Port); err != nil {
		return fmt.Errorf("evtchn: unmask port %d: %w", c.Port, err)
	}
	return nil
}

// Close unbinds the port and closes it in Xen.
func (c *Channel) Close() error {
	c.mux.mu.Lock()
	delete(c.mux.ports, c.Port)
	c.mux.mu.Unlock()
	if err := c.mux.ops.Close(c.Port); err != nil {
		return fmt.Errorf("evtchn: close port %d: %w", c.Port, err)
	}
	return nil
}

// Bind starts delivering events of an already allocated port and unmasks it.
func (m *Mux) Bind(p Port) (*Channel, error) {
	if p == 0 || p >= NumPorts {
		return nil, fmt.Errorf("evtchn: port %d out of range 1..%d", p, NumPorts-1)
	}
	c := &Channel{Port: p, C: make(chan struct{}, 1), mux: m}
	m.mu.Lock()
	if _, dup := m.ports[p]; dup {
		m.mu.Unlock()
		return nil, fmt.Errorf("evtchn: port %d is already bound", p)
	}
	m.ports[p] = c
	m.mu.Unlock()
	if err := m.ops.Unmask(p); err != nil {
		m.mu.Lock()
		delete(m.ports, p)
		m.mu.Unlock()
		return nil, fmt.Errorf("evtchn: unmask port %d: %w", p, err)
	}
	return c, nil
}

// AllocUnbound allocates a port a remote domain can bind to, and binds it.
func (m *Mux) AllocUnbound(remoteDom uint16) (*Channel, error) {
	p, err := m.ops.AllocUnbound(remoteDom)
	if err != nil {
		return nil, fmt.Errorf("evtchn: alloc_unbound for domain %d: %w", remoteDom, err)
	}
	return m.bindOrClose(p)
}

// BindInterdomain connects to a remote domain's unbound port.
func (m *Mux) BindInterdomain(remoteDom uint16, remotePort Port) (*Channel, error) {
	p, err := m.ops.BindInterdomain(remoteDom, remotePort)
	if err != nil {
		return nil, fmt.Errorf("evtchn: bind_interdomain to domain %d port %d: %w", remoteDom, remotePort, err)
	}
	return m.bindOrClose(p)
}

func (m *Mux) bindOrClose(p Port) (*Channel, error) {
	c, err := m.Bind(p)
	if err != nil {
		m.ops.Close(p)
		return nil, err
	}
	return c, nil
}

// Demux dispatches every pending, unmasked event and returns how many it
// found. It runs in a goroutine woken by the upcall interrupt, never in the
// interrupt itself.
func (m *Mux) Demux() int {
	if m.si == nil {
		return 0
	}
	n := 0
	for {
		// Clearing upcall_pending before reading the selector means an event
		// that arrives during the scan raises a fresh upcall.
		m.si.Store8(upcallPending, 0)
		sel := m.si.Swap64(pendingSel, 0)
		if sel == 0 {
			return n
		}
		for sel != 0 {
			w := bits.TrailingZeros64(sel)
			sel &^= 1 << w
			for {
				ready := m.si.Load64(pendingBase+8*w) &^ m.si.Load64(maskBase+8*w)
				if ready == 0 {
					break
				}
				b := bits.TrailingZeros64(ready)
				m.si.And64(pendingBase+8*w, ^(uint64(1) << b))
				m.Deliver(Port(w*64 + b))
				n++
			}
		}
	}
}

// Ports copies bound ports into dst, as many as fit, and returns how many
// are bound: a vCPU waiting for any of them names them to SCHEDOP_poll.
// It does not allocate, so the scheduler's idle hook may call it.
func (m *Mux) Ports(dst []uint32) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	i := 0
	for p := range m.ports {
		if i < len(dst) {
			dst[i] = uint32(p)
		}
		i++
	}
	return i
}

// Deliver signals the channel bound to p (an event arrived on it); an
// unbound port counts as Stray.
func (m *Mux) Deliver(p Port) {
	m.mu.Lock()
	c := m.ports[p]
	m.mu.Unlock()
	if c == nil {
		m.Stray.Add(1)
		return
	}
	c.count.Add(1)
	select {
	case c.C <- struct{}{}:
	default: // a signal is already waiting; the consumer will see this event too
	}
}
