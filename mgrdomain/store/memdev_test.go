package store

import (
	"errors"
	"fmt"
	"math/rand/v2"
)

var errCut = errors.New("memdev: power cut")

// memDev is an in-memory Device modelling a disk with a volatile write
// cache: writes land in the cache (and are visible to reads); Flush makes
// them durable. A power cut can be injected after a given number of
// sector writes, optionally tearing the next sector write and optionally
// persisting only a random subset of the unflushed writes.
type memDev struct {
	ss      int
	live    []byte // what reads see
	durable []byte // what survives a cut
	pending []pendingWrite

	sectorWrites int
	flushes      int

	cutAfter int  // cut after this many sector writes; < 0: never
	tear     bool // tear the write that meets the cut
	reorder  *rand.Rand
	cut      bool

	cow            bool // durable is shared: copy before the first flush
	failSuperblock bool // fail writes to the superblock sectors
	failFlush      bool
}

type pendingWrite struct {
	sector uint64
	data   []byte
}

func newMemDev(ss int, sectors uint64) *memDev {
	return &memDev{ss: ss, live: make([]byte, uint64(ss)*sectors), durable: make([]byte, uint64(ss)*sectors), cutAfter: -1}
}

// devFromImage makes a device whose durable and live contents are img.
func devFromImage(ss int, img []byte) *memDev {
	// durable is only replaced sector by sector on Flush, so it may share
	// img until then; img must not be modified by the caller afterwards.
	return &memDev{ss: ss, live: append([]byte(nil), img...), durable: img, cutAfter: -1, cow: true}
}

func (d *memDev) SectorSize() int { return d.ss }
func (d *memDev) Sectors() uint64 { return uint64(len(d.live) / d.ss) }

func (d *memDev) check(p []byte, sector uint64) error {
	if len(p)%d.ss != 0 {
		return fmt.Errorf("memdev: %d bytes is not a multiple of the sector size", len(p))
	}
	if sector > d.Sectors() || uint64(len(p)/d.ss) > d.Sectors()-sector {
		return fmt.Errorf("memdev: sectors %d+%d beyond %d", sector, len(p)/d.ss, d.Sectors())
	}
	return nil
}

func (d *memDev) ReadAt(p []byte, sector uint64) error {
	if err := d.check(p, sector); err != nil {
		return err
	}
	copy(p, d.live[sector*uint64(d.ss):])
	return nil
}

func (d *memDev) WriteAt(p []byte, sector uint64) error {
	if err := d.check(p, sector); err != nil {
		return err
	}
	if d.failSuperblock && sector < 2*uint64(PageSize/d.ss) && sector%uint64(PageSize/d.ss) == 0 {
		return errors.New("memdev: injected superblock write error")
	}
	for i := 0; i < len(p); i += d.ss {
		if d.cut {
			return errCut
		}
		s := sector + uint64(i/d.ss)
		data := append([]byte(nil), p[i:i+d.ss]...)
		if d.cutAfter >= 0 && d.sectorWrites >= d.cutAfter {
			d.cut = true
			if !d.tear {
				return errCut
			}
			// A torn sector: a prefix of the new data over the old.
			n := 1 + int(uint64(d.sectorWrites)*2654435761%uint64(d.ss-1))
			old := d.live[s*uint64(d.ss) : (s+1)*uint64(d.ss)]
			copy(data[n:], old[n:])
		}
		d.sectorWrites++
		copy(d.live[s*uint64(d.ss):], data)
		d.pending = append(d.pending, pendingWrite{s, data})
		if d.cut {
			return errCut
		}
	}
	return nil
}

func (d *memDev) Flush() error {
	if d.cut {
		return errCut
	}
	if d.failFlush {
		return errors.New("memdev: injected flush error")
	}
	d.flushes++
	if d.cow && len(d.pending) > 0 {
		d.durable, d.cow = append([]byte(nil), d.durable...), false
	}
	for _, w := range d.pending {
		copy(d.durable[w.sector*uint64(d.ss):], w.data)
	}
	d.pending = d.pending[:0]
	return nil
}

// afterCut returns the image a power cut leaves now: the durable data
// plus the unflushed writes — all of them in order, or a random subset
// when reordering is modelled.
func (d *memDev) afterCut() []byte {
	img := append([]byte(nil), d.durable...)
	for _, w := range d.pending {
		if d.reorder != nil && d.reorder.IntN(2) == 0 {
			continue
		}
		copy(img[w.sector*uint64(d.ss):], w.data)
	}
	return img
}

// image is the current contents (as after a clean flush).
func (d *memDev) image() []byte { return append([]byte(nil), d.live...) }
