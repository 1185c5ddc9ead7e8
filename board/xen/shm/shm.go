// Package shm gives typed, atomic access to a page shared with another Xen
// domain or with the hypervisor (a xenstore or console ring, a tpmif page,
// shared_info, a grant table).
//
// The peer writes the same memory concurrently, so index and state words are
// read and written with sync/atomic (sequentially consistent, which on x86
// also orders the plain byte copies around them, as the Xen ring protocols'
// wmb/rmb require). Data bytes are copied with ordinary loads and stores:
// the protocols publish them only through an index or state word.
//
// This is the one place above board/xen that turns an address into Go
// memory; everything else uses *Page.
package shm

import (
	"fmt"
	"sync/atomic"
	"unsafe"
)

// Page is a window of shared memory.
type Page struct {
	b []byte
}

// New wraps b, which must be 8-byte aligned (Xen pages are 4096-aligned;
// host tests use ordinary slices, which Go aligns to at least 8 bytes).
func New(b []byte) *Page {
	if len(b) > 0 && uintptr(unsafe.Pointer(&b[0]))%8 != 0 {
		panic("shm: unaligned shared page")
	}
	return &Page{b: b}
}

// At maps length bytes of physical (identity-mapped) memory at addr.
// Only board code should call it; it is here so the conversion lives in one
// place.
func At(addr uintptr, length int) *Page {
	// Converting through a pointer-sized word keeps vet quiet: addr is not
	// a Go object, so the uintptr→Pointer rule has nothing to protect here.
	p := *(*unsafe.Pointer)(unsafe.Pointer(&addr))
	return New(unsafe.Slice((*byte)(p), length))
}

// Len is the size of the window in bytes.
func (p *Page) Len() int { return len(p.b) }

// Bytes exposes the window for bulk copies of data regions.
func (p *Page) Bytes() []byte { return p.b }

func (p *Page) check(off, size int) {
	if off < 0 || off%size != 0 || off+size > len(p.b) {
		panic(fmt.Sprintf("shm: access of %d bytes at offset %d outside or misaligned in a %d-byte page", size, off, len(p.b)))
	}
}

func (p *Page) u8(off int) *uint32 {
	// sync/atomic has no 8-bit operations: address the aligned word that
	// contains the byte and let callers shift (little-endian, x86).
	return (*uint32)(unsafe.Pointer(&p.b[off&^3]))
}

// Load8 reads one byte atomically.
func (p *Page) Load8(off int) uint8 {
	p.check(off, 1)
	w := atomic.LoadUint32(p.u8(off))
	return uint8(w >> (8 * (off & 3)))
}

// Store8 writes one byte atomically without disturbing its neighbours.
func (p *Page) Store8(off int, v uint8) {
	p.check(off, 1)
	w := p.u8(off)
	shift := 8 * (off & 3)
	mask := uint32(0xff) << shift
	for {
		old := atomic.LoadUint32(w)
		if atomic.CompareAndSwapUint32(w, old, old&^mask|uint32(v)<<shift) {
			return
		}
	}
}

// Load16 reads a little-endian 16-bit word atomically.
func (p *Page) Load16(off int) uint16 {
	p.check(off, 2)
	w := atomic.LoadUint32(p.u8(off))
	return uint16(w >> (8 * (off & 3)))
}

// CompareAndSwap16 swaps a 16-bit word if it still holds old (grant entry
// flags are revoked this way).
func (p *Page) CompareAndSwap16(off int, old, new uint16) bool {
	p.check(off, 2)
	w := p.u8(off)
	shift := 8 * (off & 3)
	mask := uint32(0xffff) << shift
	for {
		cur := atomic.LoadUint32(w)
		if uint16(cur>>shift) != old {
			return false
		}
		if atomic.CompareAndSwapUint32(w, cur, cur&^mask|uint32(new)<<shift) {
			return true
		}
	}
}

// Store16 writes a 16-bit word atomically without disturbing its neighbours.
func (p *Page) Store16(off int, v uint16) {
	for {
		if p.CompareAndSwap16(off, p.Load16(off), v) {
			return
		}
	}
}

// Load32 reads a little-endian 32-bit word atomically.
func (p *Page) Load32(off int) uint32 {
	p.check(off, 4)
	return atomic.LoadUint32((*uint32)(unsafe.Pointer(&p.b[off])))
}

// Store32 writes a 32-bit word atomically.
func (p *Page) Store32(off int, v uint32) {
	p.check(off, 4)
	atomic.StoreUint32((*uint32)(unsafe.Pointer(&p.b[off])), v)
}

// Load64 reads a 64-bit word atomically.
func (p *Page) Load64(off int) uint64 {
	p.check(off, 8)
	return atomic.LoadUint64((*uint64)(unsafe.Pointer(&p.b[off])))
}

// Store64 writes a 64-bit word atomically.
func (p *Page) Store64(off int, v uint64) {
	p.check(off, 8)
	atomic.StoreUint64((*uint64)(unsafe.Pointer(&p.b[off])), v)
}

// Swap64 exchanges a 64-bit word (event channel selector words).
func (p *Page) Swap64(off int, v uint64) uint64 {
	p.check(off, 8)
	return atomic.SwapUint64((*uint64)(unsafe.Pointer(&p.b[off])), v)
}

// And64 clears bits of a 64-bit word and returns the old value.
func (p *Page) And64(off int, mask uint64) uint64 {
	p.check(off, 8)
	return atomic.AndUint64((*uint64)(unsafe.Pointer(&p.b[off])), mask)
}

// Or64 sets bits of a 64-bit word and returns the old value.
func (p *Page) Or64(off int, bits uint64) uint64 {
	p.check(off, 8)
	return atomic.OrUint64((*uint64)(unsafe.Pointer(&p.b[off])), bits)
}
