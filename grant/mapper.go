package grant

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/xenvtpm/xenvtpm/board/xen/shm"
)

// BackendWindow is where domains built on this repository map foreign
// grants: a hole in the guest-physical space above RAM, below
// FrontendWindow, identity-mapped by the board.
const BackendWindow = 0x80000000

// DefaultSlots is the mapping capacity NewMapper uses when asked for 0:
// 4096 pages (16 MiB of window), against mini-os's 128.
const DefaultSlots = 4096

// eagainRetries bounds retries of a map that Xen answers with GNTST_eagain
// (the granter's page is being paged in); Linux retries with a growing
// sleep in the same way.
const eagainRetries = 8

// ErrNoSlots is returned by Map when every slot of the window is in use.
var ErrNoSlots = errors.New("grant: foreign-map window full")

// Mapper maps other domains' grants into a window of guest-physical
// frames (the backend side).
type Mapper struct {
	ops    Ops
	window uint64
	slots  int

	mu   sync.Mutex
	free []int // LIFO of unused slots
	live int
}

// Mapping is one mapped foreign grant.
type Mapping struct {
	// Page is the mapped frame; it is valid until Unmap.
	Page     *shm.Page
	Dom      uint16
	Ref      Ref
	ReadOnly bool

	handle uint32
	slot   int
	addr   uint64
	done   bool
}

// NewMapper returns a mapper over slots pages (0: DefaultSlots) of
// unpopulated guest-physical space starting at window.
func NewMapper(ops Ops, window uint64, slots int) (*Mapper, error) {
	if window%PageSize != 0 {
		return nil, fmt.Errorf("grant: map window %#x is not page aligned", window)
	}
	if slots < 0 {
		return nil, fmt.Errorf("grant: negative slot count %d", slots)
	}
	if slots == 0 {
		slots = DefaultSlots
	}
	m := &Mapper{ops: ops, window: window, slots: slots, free: make([]int, 0, slots)}
	for s := slots - 1; s >= 0; s-- {
		m.free = append(m.free, s)
	}
	return m, nil
}

// Live is the number of mappings not yet unmapped.
func (m *Mapper) Live() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.live
}

// Cap is the number of slots.
func (m *Mapper) Cap() int { return m.slots }

func (m *Mapper) take() (int, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.free) == 0 {
		return 0, false
	}
	s := m.free[len(m.free)-1]
	m.free = m.free[:len(m.free)-1]
	m.live++
	return s, true
}

func (m *Mapper) give(slot int) {
	m.mu.Lock()
	m.free = append(m.free, slot)
	m.live--
	m.mu.Unlock()
}

// Map maps grant ref of domain dom.
func (m *Mapper) Map(dom uint16, ref Ref, readonly bool) (*Mapping, error) {
	slot, ok := m.take()
	if !ok {
		return nil, fmt.Errorf("grant: map ref %d of domain %d: %w (%d slots)", ref, dom, ErrNoSlots, m.slots)
	}
	addr := m.window + uint64(slot)*PageSize
	flags := uint32(GNTMAPHostMap)
	if readonly {
		flags |= GNTMAPReadonly
	}
	var (
		handle uint32
		st     int16
		err    error
	)
	for try := 0; ; try++ {
		handle, st, err = m.ops.MapGrantRef(addr, flags, ref, dom)
		if err != nil || Status(st) != StatusEagain || try == eagainRetries {
			break
		}
		time.Sleep(time.Duration(1<<try) * time.Millisecond)
	}
	if err == nil {
		err = Status(st).Err()
	}
	if err != nil {
		m.give(slot)
		return nil, fmt.Errorf("grant: map ref %d of domain %d: %w", ref, dom, err)
	}
	page := m.ops.Memory(addr, PageSize)
	if page == nil || page.Len() < PageSize {
		// Mapped but unreachable: undo so the slot and the peer's entry are
		// not left behind.
		if st, uerr := m.ops.UnmapGrantRef(addr, handle); uerr == nil && Status(st) == StatusOkay {
			m.give(slot)
		}
		return nil, fmt.Errorf("grant: map ref %d of domain %d: window page %#x not accessible", ref, dom, addr)
	}
	return &Mapping{Page: page, Dom: dom, Ref: ref, ReadOnly: readonly, handle: handle, slot: slot, addr: addr}, nil
}

// Unmap removes a mapping. If Xen refuses, the slot stays reserved (it may
// still hold the peer's page) and the error says why; calling Unmap again
// retries.
func (m *Mapper) Unmap(mp *Mapping) error {
	if mp == nil {
		return errors.New("grant: unmap of nil mapping")
	}
	m.mu.Lock()
	if mp.done {
		m.mu.Unlock()
		return fmt.Errorf("grant: ref %d of domain %d is already unmapped", mp.Ref, mp.Dom)
	}
	// Claimed before the hypercall so two Unmaps cannot both release it.
	mp.done = true
	m.mu.Unlock()
	st, err := m.ops.UnmapGrantRef(mp.addr, mp.handle)
	if err == nil {
		err = Status(st).Err()
	}
	if err != nil {
		m.mu.Lock()
		mp.done = false
		m.mu.Unlock()
		return fmt.Errorf("grant: unmap ref %d of domain %d at %#x: %w", mp.Ref, mp.Dom, mp.addr, err)
	}
	m.give(mp.slot)
	return nil
}

// Addr is the guest-physical address of the mapping's slot.
func (mp *Mapping) Addr() uint64 { return mp.addr }
