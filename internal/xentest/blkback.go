package xentest

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"testing"

	"github.com/xenvtpm/xenvtpm/board/xen/shm"
	"github.com/xenvtpm/xenvtpm/evtchn"
	"github.com/xenvtpm/xenvtpm/grant"
	"github.com/xenvtpm/xenvtpm/xenbus"
)

// This file is a fake xen-blkback: it serves a memory disk to a blkfront
// over the blkif ring of xen/include/public/io/blkif.h. Its ring layout is
// written out here independently of drivers/blkfront, so a layout mistake
// on one side shows up as a failure instead of agreeing with itself.

// blkif layout, x86-64 (io/ring.h, io/blkif.h).
const (
	bbReqProd   = 0
	bbReqEvent  = 4
	bbRspProd   = 8
	bbRspEvent  = 12
	bbRing      = 64
	bbEntry     = 112
	bbRingSize  = 32
	bbMaxSeg    = 11
	bbSectShift = 9

	// BLKIF_OP_*.
	BlkOpRead    = 0
	BlkOpWrite   = 1
	BlkOpBarrier = 2
	BlkOpFlush   = 3

	// BLKIF_RSP_*.
	BlkRspEOPNOTSUPP = -2
	BlkRspError      = -1
	BlkRspOkay       = 0
)

// VBDPaths are a vbd device's two xenstore directories.
type VBDPaths struct {
	Frontend, Backend string
}

// AddVBD writes the nodes libxl writes for a `disk=[...,vdev=...]` entry,
// in one transaction, with the backend in domain be.
func (x *Xen) AddVBD(ctx context.Context, be, fe uint16, devid int) (VBDPaths, error) {
	p := VBDPaths{
		Frontend: fmt.Sprintf("/local/domain/%d/device/vbd/%d", fe, devid),
		Backend:  fmt.Sprintf("/local/domain/%d/backend/vbd/%d/%d", be, fe, devid),
	}
	return p, x.writeAll(ctx, [][2]string{
		{p.Frontend + "/backend", p.Backend},
		{p.Frontend + "/backend-id", fmt.Sprint(be)},
		{p.Frontend + "/state", "1"},
		{p.Frontend + "/virtual-device", fmt.Sprint(devid)},
		{p.Frontend + "/device-type", "disk"},
		{p.Backend + "/frontend", p.Frontend},
		{p.Backend + "/frontend-id", fmt.Sprint(fe)},
		{p.Backend + "/online", "1"},
		{p.Backend + "/state", "1"},
		{p.Backend + "/dev", "xvda"},
		{p.Backend + "/type", "phy"},
		{p.Backend + "/mode", "w"},
		{p.Backend + "/params", "/dev/loop0"},
	})
}

// RemoveVBD removes both directories, as libxl does after `xl destroy`.
func (x *Xen) RemoveVBD(ctx context.Context, p VBDPaths) error {
	return x.removeAll(ctx, p.Frontend, p.Backend)
}

// MemDisk is the fake backend's medium with a volatile write cache: Data
// is what reads see, Durable what survives a power cut (writes reach it at
// the next flush or barrier).
type MemDisk struct {
	mu      sync.Mutex
	data    []byte
	durable []byte
	ops     []string
}

// NewMemDisk returns a zeroed disk of size bytes.
func NewMemDisk(size int) *MemDisk {
	return &MemDisk{data: make([]byte, size), durable: make([]byte, size)}
}

// Data returns a copy of what reads see.
func (m *MemDisk) Data() []byte {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]byte(nil), m.data...)
}

// Durable returns a copy of what a power cut would leave.
func (m *MemDisk) Durable() []byte {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]byte(nil), m.durable...)
}

// Ops returns the log of operations served, e.g. "write 8+16", "flush".
func (m *MemDisk) Ops() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]string(nil), m.ops...)
}

// BlkbackConfig describes the disk a fake backend exports and how it
// misbehaves.
type BlkbackConfig struct {
	// SectorSize is the sector-size node (0: 512).
	SectorSize int
	// PhysicalSectorSize is written when non-zero.
	PhysicalSectorSize int
	// Info is the info node (VDISK_* bits).
	Info uint32
	// FlushCache and Barrier are feature-flush-cache and feature-barrier.
	FlushCache, Barrier bool
	// Status, if set, is asked first for every request; anything but
	// BlkRspOkay is answered without doing the request.
	Status func(op uint8, sector uint64, nseg int) int16
	// Tamper, if set, may rewrite each 16-byte response before it is
	// published and returns how far to move rsp_prod beyond it (garbage
	// responses for a fuzzer).
	Tamper func(rsp []byte) (extra uint32)
	// NoNotify makes the backend never raise an event for its responses
	// (a lost event).
	NoNotify bool
}

// Blkback is a running fake backend.
type Blkback struct {
	d     *Domain
	fe    uint16
	paths VBDPaths
	disk  *MemDisk
	cfg   BlkbackConfig

	mu       sync.Mutex
	held     bool
	kick     chan struct{}
	ring     *shm.Page // while connected
	served   int
	err      error
	cancel   context.CancelFunc
	finished chan struct{}
}

// ServeVBD starts a fake blkback in domain d for frontend domain fe. It
// runs until the test ends or Stop.
func ServeVBD(t testing.TB, d *Domain, fe uint16, paths VBDPaths, disk *MemDisk, cfg BlkbackConfig) *Blkback {
	t.Helper()
	if cfg.SectorSize == 0 {
		cfg.SectorSize = 512
	}
	ctx, cancel := context.WithCancel(context.Background())
	b := &Blkback{d: d, fe: fe, paths: paths, disk: disk, cfg: cfg, kick: make(chan struct{}, 1), cancel: cancel, finished: make(chan struct{})}
	go func() {
		defer close(b.finished)
		if err := b.run(ctx); err != nil && ctx.Err() == nil {
			b.mu.Lock()
			b.err = err
			b.mu.Unlock()
		}
	}()
	t.Cleanup(b.Stop)
	return b
}

// Stop ends the backend's goroutine (without any xenbus goodbye: a
// backend domain that died).
func (b *Blkback) Stop() {
	b.cancel()
	<-b.finished
}

// Err is the error that ended the backend, if any.
func (b *Blkback) Err() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.err
}

// Hold stops the backend from taking requests off the ring; Release lets
// it continue.
func (b *Blkback) Hold() {
	b.mu.Lock()
	b.held = true
	b.mu.Unlock()
}

// Release undoes Hold.
func (b *Blkback) Release() {
	b.mu.Lock()
	b.held = false
	b.mu.Unlock()
	select {
	case b.kick <- struct{}{}:
	default:
	}
}

// Published is the ring's req_prod now (0 when not connected).
func (b *Blkback) Published() uint32 {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.ring == nil {
		return 0
	}
	return b.ring.Load32(bbReqProd)
}

// Served counts requests answered.
func (b *Blkback) Served() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.served
}

func (b *Blkback) isHeld() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.held
}

func (b *Blkback) run(ctx context.Context) error {
	st := b.d.Store
	for {
		if err := st.SwitchState(ctx, b.paths.Backend, xenbus.StateInitWait); err != nil {
			return err
		}
		s, err := st.WaitForState(ctx, b.paths.Frontend, xenbus.StateInitialised, xenbus.StateConnected)
		if err != nil {
			return err
		}
		_ = s
		if err := b.connectAndServe(ctx); err != nil {
			return err
		}
		// Disconnected after the frontend closed: wait for it to come
		// back (Initialising) as Linux's blkback does.
		if _, err := st.WaitForState(ctx, b.paths.Frontend, xenbus.StateInitialising); err != nil {
			return err
		}
	}
}

func (b *Blkback) connectAndServe(ctx context.Context) error {
	st, fe := b.d.Store, b.paths.Frontend
	ref, err := st.ReadUint(ctx, fe+"/ring-ref", 32)
	if err != nil {
		return err
	}
	port, err := st.ReadUint(ctx, fe+"/event-channel", 32)
	if err != nil {
		return err
	}
	if proto, err := st.ReadString(ctx, fe+"/protocol"); err != nil || proto != "x86_64-abi" {
		return fmt.Errorf("fake blkback: protocol %q, %v", proto, err)
	}
	ring, err := b.d.Mapper.Map(b.fe, grant.Ref(ref), false)
	if err != nil {
		return err
	}
	defer b.d.Mapper.Unmap(ring)
	ch, err := b.d.Events.BindInterdomain(b.fe, evtchn.Port(port))
	if err != nil {
		return err
	}
	chOpen := true
	defer func() {
		if chOpen {
			ch.Close()
		}
	}()
	b.mu.Lock()
	b.ring = ring.Page
	b.mu.Unlock()
	defer func() {
		b.mu.Lock()
		b.ring = nil
		b.mu.Unlock()
	}()
	w, err := st.Watch(ctx, fe+"/state")
	if err != nil {
		return err
	}
	defer w.Unwatch(context.WithoutCancel(ctx))
	size := len(b.disk.data)
	err = st.Transaction(ctx, func(tx *xenbus.Tx) error {
		kv := [][2]string{
			{"sectors", strconv.Itoa(size >> bbSectShift)},
			{"info", strconv.Itoa(int(b.cfg.Info))},
			{"sector-size", strconv.Itoa(b.cfg.SectorSize)},
		}
		if b.cfg.PhysicalSectorSize != 0 {
			kv = append(kv, [2]string{"physical-sector-size", strconv.Itoa(b.cfg.PhysicalSectorSize)})
		}
		if b.cfg.FlushCache {
			kv = append(kv, [2]string{"feature-flush-cache", "1"})
		}
		if b.cfg.Barrier {
			kv = append(kv, [2]string{"feature-barrier", "1"})
		}
		for _, e := range kv {
			if err := tx.WriteString(ctx, b.paths.Backend+"/"+e[0], e[1]); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	if err := st.SwitchState(ctx, b.paths.Backend, xenbus.StateConnected); err != nil {
		return err
	}
	sr := ring.Page
	var cons, rspPvt uint32
	broken := false
	for {
		select {
		case <-ch.C:
		case <-b.kick:
		case _, ok := <-w.Events():
			if !ok {
				return w.Err()
			}
			s, err := st.ReadState(ctx, fe)
			if err != nil {
				return err
			}
			switch s {
			case xenbus.StateClosing:
				if err := st.SwitchState(ctx, b.paths.Backend, xenbus.StateClosing); err != nil {
					return err
				}
			case xenbus.StateClosed, xenbus.StateUnknown:
				// Disconnect: the deferred calls unmap the ring and
				// close the channel before Closed is visible.
				chOpen = false
				ch.Close()
				b.d.Mapper.Unmap(ring)
				return st.SwitchState(ctx, b.paths.Backend, xenbus.StateClosed)
			}
			continue
		case <-ctx.Done():
			return ctx.Err()
		}
		if broken {
			continue
		}
		for !b.isHeld() {
			rp := sr.Load32(bbReqProd)
			if rp-cons > bbRingSize {
				// RING_REQUEST_PROD_OVERFLOW: Linux's blkback stops
				// serving such a frontend.
				broken = true
				break
			}
			for cons != rp && !b.isHeld() {
				var req [bbEntry]byte
				off := bbRing + int(cons%bbRingSize)*bbEntry
				copy(req[:], sr.Bytes()[off:off+bbEntry])
				cons++
				rsp := b.handle(req[:])
				roff := bbRing + int(rspPvt%bbRingSize)*bbEntry
				extra := uint32(0)
				if b.cfg.Tamper != nil {
					extra = b.cfg.Tamper(rsp[:])
				}
				copy(sr.Bytes()[roff:roff+16], rsp[:])
				rspPvt += 1 + extra
				b.mu.Lock()
				b.served++
				b.mu.Unlock()
			}
			// RING_PUSH_RESPONSES_AND_CHECK_NOTIFY.
			old := sr.Load32(bbRspProd)
			sr.Store32(bbRspProd, rspPvt)
			if rspPvt-sr.Load32(bbRspEvent) < rspPvt-old && !b.cfg.NoNotify {
				ch.Notify()
			}
			if b.isHeld() {
				break
			}
			// RING_FINAL_CHECK_FOR_REQUESTS.
			sr.Store32(bbReqEvent, cons+1)
			if sr.Load32(bbReqProd) == cons {
				break
			}
		}
	}
}

// handle serves one request and returns its response.
func (b *Blkback) handle(req []byte) (rsp [16]byte) {
	le := func(o, n int) uint64 {
		var v uint64
		for i := n - 1; i >= 0; i-- {
			v = v<<8 | uint64(req[o+i])
		}
		return v
	}
	op, nseg := req[0], int(req[1])
	id, sector := le(8, 8), le(16, 8)
	copy(rsp[0:8], req[8:16])
	rsp[8] = op
	status := b.serve(op, nseg, id, sector, req)
	rsp[10], rsp[11] = byte(uint16(status)), byte(uint16(status)>>8)
	return rsp
}

func (b *Blkback) serve(op uint8, nseg int, id, sector uint64, req []byte) int16 {
	if b.cfg.Status != nil {
		if s := b.cfg.Status(op, sector, nseg); s != BlkRspOkay {
			return s
		}
	}
	disk := b.disk
	switch op {
	case BlkOpFlush, BlkOpBarrier:
		if (op == BlkOpFlush && !b.cfg.FlushCache) || (op == BlkOpBarrier && !b.cfg.Barrier) || nseg != 0 {
			return BlkRspEOPNOTSUPP
		}
		disk.mu.Lock()
		copy(disk.durable, disk.data)
		disk.ops = append(disk.ops, map[uint8]string{BlkOpFlush: "flush", BlkOpBarrier: "barrier"}[op])
		disk.mu.Unlock()
		return BlkRspOkay
	case BlkOpRead, BlkOpWrite:
	default:
		return BlkRspEOPNOTSUPP
	}
	if nseg < 1 || nseg > bbMaxSeg {
		return BlkRspError
	}
	unitsPerSector := uint64(b.cfg.SectorSize >> bbSectShift)
	pos := sector << bbSectShift
	var maps []*grant.Mapping
	defer func() {
		for _, m := range maps {
			b.d.Mapper.Unmap(m)
		}
	}()
	type seg struct {
		page        *shm.Page
		first, last int
	}
	var segs []seg
	total := uint64(0)
	for i := 0; i < nseg; i++ {
		o := 24 + 8*i
		ref := uint32(req[o]) | uint32(req[o+1])<<8 | uint32(req[o+2])<<16 | uint32(req[o+3])<<24
		first, last := int(req[o+4]), int(req[o+5])
		if last < first || last > 7 || uint64(first)%unitsPerSector != 0 || uint64(last+1)%unitsPerSector != 0 {
			return BlkRspError
		}
		// Writes only read our page: map it read-only, as blkback does.
		m, err := b.d.Mapper.Map(b.fe, grant.Ref(ref), op == BlkOpWrite)
		if err != nil {
			return BlkRspError
		}
		maps = append(maps, m)
		segs = append(segs, seg{m.Page, first, last})
		total += uint64(last-first+1) << bbSectShift
	}
	if sector%unitsPerSector != 0 || pos > uint64(len(disk.data)) || total > uint64(len(disk.data))-pos {
		return BlkRspError
	}
	disk.mu.Lock()
	defer disk.mu.Unlock()
	for _, s := range segs {
		n := (s.last - s.first + 1) << bbSectShift
		pg := s.page.Bytes()[s.first<<bbSectShift:]
		if op == BlkOpWrite {
			copy(disk.data[pos:pos+uint64(n)], pg[:n])
		} else {
			copy(pg[:n], disk.data[pos:pos+uint64(n)])
		}
		pos += uint64(n)
	}
	disk.ops = append(disk.ops, fmt.Sprintf("%s %d+%d", map[uint8]string{BlkOpRead: "read", BlkOpWrite: "write"}[op], sector, total>>bbSectShift))
	return BlkRspOkay
}
