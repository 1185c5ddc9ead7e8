package grant

import (
	"errors"
	"fmt"
	"reflect"
	"sync"

	"github.com/xenvtpm/xenvtpm/board/xen/shm"
)

// DefaultFrames is the table size NewTable uses when asked for 0 frames:
// 4 frames, 2048 entries, as mini-os and mirage-xen use.
const DefaultFrames = 4

// FrontendWindow is where domains built on this repository map their grant
// table: a hole in the guest-physical space, above RAM, below the uncached
// 3 GiB window, identity-mapped by the board.
const FrontendWindow = 0x90000000

var (
	// ErrInUse is returned by EndAccess while the peer still maps the page.
	ErrInUse = errors.New("grant: entry still mapped by the peer (GTF_reading/GTF_writing set)")
	// ErrNoRefs is returned by Grant when every entry is in use.
	ErrNoRefs = errors.New("grant: no free grant reference")
)

// Table is this domain's grant table (the granting side).
type Table struct {
	ops     Ops
	entries *shm.Page
	n       int // entries

	mu   sync.Mutex
	free []Ref
	used []bool
}

// NewTable maps frames grant-table frames (0: DefaultFrames, capped at what
// Xen allows) at the guest-physical window (page aligned, a hole in the
// memory map) and returns the table.
func NewTable(ops Ops, window uint64, frames int) (*Table, error) {
	if window%PageSize != 0 {
		return nil, fmt.Errorf("grant: table window %#x is not page aligned", window)
	}
	if frames < 0 {
		return nil, fmt.Errorf("grant: negative frame count %d", frames)
	}
	if frames == 0 {
		frames = DefaultFrames
	}
	_, max, err := ops.QuerySize()
	if err != nil {
		return nil, fmt.Errorf("grant: GNTTABOP_query_size: %w", err)
	}
	if max == 0 {
		return nil, fmt.Errorf("grant: Xen allows this domain no grant-table frames")
	}
	if uint32(frames) > max {
		frames = int(max)
	}
	for i := 0; i < frames; i++ {
		if err := ops.AddToPhysmap(uint64(i), window/PageSize+uint64(i)); err != nil {
			return nil, fmt.Errorf("grant: map table frame %d at %#x: %w", i, window+uint64(i)*PageSize, err)
		}
	}
	t := &Table{ops: ops, entries: ops.Memory(window, frames*PageSize), n: frames * entriesPerFrame}
	if t.entries == nil || t.entries.Len() < frames*PageSize {
		return nil, fmt.Errorf("grant: table window %#x+%d is not accessible", window, frames*PageSize)
	}
	t.used = make([]bool, t.n)
	// Handed out low refs first: a LIFO stack filled from the top.
	for r := t.n - 1; r >= NrReservedEntries; r-- {
		t.free = append(t.free, Ref(r))
	}
	return t, nil
}

// Len is the number of entries, reserved ones included.
func (t *Table) Len() int { return t.n }

// Free is the number of grant references still available.
func (t *Table) Free() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.free)
}

// Grant lets domain domid access guest frame gfn (read-only if readonly)
// and returns the reference to pass to it.
func (t *Table) Grant(domid uint16, gfn uint64, readonly bool) (Ref, error) {
	if gfn > 0xffffffff {
		return 0, fmt.Errorf("grant: frame %#x does not fit a v1 grant entry", gfn)
	}
	t.mu.Lock()
	if len(t.free) == 0 {
		t.mu.Unlock()
		return 0, ErrNoRefs
	}
	ref := t.free[len(t.free)-1]
	t.free = t.free[:len(t.free)-1]
	t.used[ref] = true
	t.mu.Unlock()

	off := int(ref) * entrySize
	flags := uint16(GTFPermitAccess)
	if readonly {
		flags |= GTFReadonly
	}
	// The peer may map the entry as soon as flags say so: frame and domid
	// must be visible first. The atomic stores are ordered (the wmb of
	// gnttab_grant_access).
	t.entries.Store32(off+offFrame, uint32(gfn))
	t.entries.Store16(off+offDomid, domid)
	t.entries.Store16(off+offFlags, flags)
	return ref, nil
}

func (t *Table) check(ref Ref) error {
	if int(ref) >= t.n || ref < NrReservedEntries {
		return fmt.Errorf("grant: reference %d outside %d..%d", ref, NrReservedEntries, t.n-1)
	}
	if !t.used[ref] {
		return fmt.Errorf("grant: reference %d is not granted", ref)
	}
	return nil
}

// EndAccess revokes ref. It fails with ErrInUse, leaving the grant in
// place, while the peer maps the page; the caller must not reuse or free
// the page then, and may retry later.
func (t *Table) EndAccess(ref Ref) error {
	t.mu.Lock()
	err := t.check(ref)
	t.mu.Unlock()
	if err != nil {
		return err
	}
	off := int(ref)*entrySize + offFlags
	for {
		flags := t.entries.Load16(off)
		if flags&(GTFReading|GTFWriting) != 0 {
			return fmt.Errorf("grant: end access to reference %d: %w", ref, ErrInUse)
		}
		// Xen sets the busy bits with its own cmpxchg; ours only succeeds
		// if it did not do so since the load.
		if t.entries.CompareAndSwap16(off, flags, GTFInvalid) {
			break
		}
	}
	t.mu.Lock()
	t.used[ref] = false
	t.free = append(t.free, ref)
	t.mu.Unlock()
	return nil
}

// Flags reads an entry's flags (for diagnostics and tests).
func (t *Table) Flags(ref Ref) uint16 {
	if int(ref) >= t.n {
		return 0
	}
	return t.entries.Load16(int(ref)*entrySize + offFlags)
}

// Page is a page of this domain's memory suitable for granting.
type Page struct {
	// Mem is the page's content.
	Mem *shm.Page
	// GFN is the guest frame number to put in a grant entry. NewPage sets
	// it from the address; host tests substitute a frame number of their
	// fake hypervisor, since host addresses need not fit 32 bits.
	GFN uint64
	buf []byte // keeps the backing allocation reachable
}

// NewPage allocates a zeroed, page-aligned page. Go's heap does not move
// objects, so the page stays at its address for as long as the Page is
// reachable; under tamago's identity map that address is its
// guest-physical address.
func NewPage() *Page {
	buf := make([]byte, 2*PageSize)
	addr := reflect.ValueOf(&buf[0]).Pointer()
	skip := int((PageSize - addr%PageSize) % PageSize)
	b := buf[skip : skip+PageSize : skip+PageSize]
	p := &Page{Mem: shm.New(b), buf: buf}
	p.GFN = p.Addr() / PageSize
	return p
}

// Addr is the page's address (guest-physical inside a domain).
func (p *Page) Addr() uint64 {
	return uint64(reflect.ValueOf(&p.Mem.Bytes()[0]).Pointer())
}

var (
	leakMu sync.Mutex
	leaked []*Page
)

// Leak keeps p allocated for ever. Callers use it when EndAccess keeps
// failing: the peer still maps the page, so Go must never reuse its
// memory.
func Leak(p *Page) {
	leakMu.Lock()
	leaked = append(leaked, p)
	leakMu.Unlock()
}

// Sharer shares fresh pages with another domain, each under one grant. A
// domain built on this repository uses its Table (TableSharer); a program
// in a Linux dom0 uses the kernel's gntalloc device (board/dom0), which
// allocates and grants in one step.
type Sharer interface {
	// Share allocates a zeroed page and grants domid access to it.
	Share(domid uint16, readonly bool) (*Page, Ref, error)
	// Unshare ends the grant of a page Share returned; the page must not
	// be used afterwards. If the peer still maps it, the page is kept
	// (never reused) and an error returned.
	Unshare(p *Page, ref Ref) error
}

// TableSharer shares pages through a domain's own grant table.
type TableSharer struct {
	// Table grants and revokes; *Table implements it.
	Table interface {
		Grant(domid uint16, gfn uint64, readonly bool) (Ref, error)
		EndAccess(ref Ref) error
	}
	// NewPage allocates the pages; nil means NewPage. Host tests give
	// pages of their fake hypervisor.
	NewPage func() *Page
}

// Share implements Sharer.
func (s TableSharer) Share(domid uint16, readonly bool) (*Page, Ref, error) {
	newPage := s.NewPage
	if newPage == nil {
		newPage = NewPage
	}
	p := newPage()
	ref, err := s.Table.Grant(domid, p.GFN, readonly)
	if err != nil {
		return nil, 0, err
	}
	return p, ref, nil
}

// Unshare implements Sharer: EndAccess, and Leak when the peer still maps
// the page.
func (s TableSharer) Unshare(p *Page, ref Ref) error {
	if err := s.Table.EndAccess(ref); err != nil {
		Leak(p)
		return err
	}
	return nil
}
