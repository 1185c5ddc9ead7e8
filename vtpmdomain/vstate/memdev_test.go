package vstate

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
)

var errPowerCut = errors.New("memdev: power cut")

// memDev is a memory disk with a volatile write cache: writes are visible
// at once but survive a power cut only after Flush. cutAfter injects a
// cut when that many sector writes have completed; with tear the sector
// being written then lands half new, half old.
type memDev struct {
	ss      int
	live    []byte // what reads see
	durable []byte // what a power cut keeps
	pending []sectorWrite

	writes   int // sector writes so far
	cutAfter int // < 0: never
	tear     bool
	cut      bool
}

type sectorWrite struct {
	sector uint64
	data   []byte
}

func newMemDev(ss int, sectors uint64) *memDev {
	n := uint64(ss) * sectors
	return &memDev{ss: ss, live: make([]byte, n), durable: make([]byte, n), cutAfter: -1}
}

// memDevFrom is a disk whose contents, durable and live, are img.
func memDevFrom(ss int, img []byte) *memDev {
	return &memDev{ss: ss, live: bytes.Clone(img), durable: bytes.Clone(img), cutAfter: -1}
}

func (d *memDev) SectorSize() int { return d.ss }
func (d *memDev) Sectors() uint64 { return uint64(len(d.live) / d.ss) }

func (d *memDev) span(p []byte, sector uint64) (int, error) {
	if len(p)%d.ss != 0 {
		return 0, fmt.Errorf("memdev: %d bytes is not whole sectors", len(p))
	}
	n := uint64(len(p) / d.ss)
	if sector > d.Sectors() || n > d.Sectors()-sector {
		return 0, fmt.Errorf("memdev: sectors %d+%d beyond the end (%d)", sector, n, d.Sectors())
	}
	return int(sector) * d.ss, nil
}

func (d *memDev) ReadAt(p []byte, sector uint64) error {
	off, err := d.span(p, sector)
	if err != nil {
		return err
	}
	copy(p, d.live[off:])
	return nil
}

func (d *memDev) WriteAt(p []byte, sector uint64) error {
	if _, err := d.span(p, sector); err != nil {
		return err
	}
	for i := 0; i < len(p); i += d.ss {
		if d.cut {
			return errPowerCut
		}
		s := sector + uint64(i/d.ss)
		data := bytes.Clone(p[i : i+d.ss])
		if d.cutAfter >= 0 && d.writes >= d.cutAfter {
			d.cut = true
			if !d.tear {
				return errPowerCut
			}
			// The first half of the sector is new, the rest old.
			copy(data[d.ss/2:], d.live[int(s)*d.ss+d.ss/2:int(s+1)*d.ss])
		}
		d.writes++
		copy(d.live[int(s)*d.ss:], data)
		d.pending = append(d.pending, sectorWrite{s, data})
	}
	if d.cut {
		return errPowerCut
	}
	return nil
}

func (d *memDev) Flush() error {
	if d.cut {
		return errPowerCut
	}
	for _, w := range d.pending {
		copy(d.durable[int(w.sector)*d.ss:], w.data)
	}
	d.pending = d.pending[:0]
	return nil
}

// afterCut is the disk a power cut leaves now: the durable contents plus
// the unflushed writes, all of them or, with r, a random subset (the
// cache may reach the medium in any order).
func (d *memDev) afterCut(r *rand.Rand) []byte {
	img := bytes.Clone(d.durable)
	for _, w := range d.pending {
		if r != nil && r.IntN(2) == 0 {
			continue
		}
		copy(img[int(w.sector)*d.ss:], w.data)
	}
	return img
}
