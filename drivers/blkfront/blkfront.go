// Package blkfront is the frontend of the Xen paravirtual block device
// (device type "vbd"): it reads and writes a disk served by a backend such
// as Linux's xen-blkback over the blkif ring of
// xen/include/public/io/blkif.h (the generic shared ring of io/ring.h,
// one page, 32 slots of 112 bytes on x86-64), after the xenbus handshake
// of xen/include/public/io/xenbus.h.
//
// Wiring inside a domain:
//
//	table, _ := grant.NewTable(xen.GrantOps{H: d.Xen}, grant.FrontendWindow, 0)
//	disk, err := blkfront.Open(ctx, blkfront.Config{
//		Store:  d.Store,  // *xenbus.Client
//		Grants: table,    // *grant.Table
//		Events: d.Events, // *evtchn.Mux
//		// Node "" is the first device under device/vbd.
//	})
//	err = disk.WriteAt(buf, sector) // len(buf) a multiple of SectorSize
//	err = disk.Flush()
//	disk.Close(ctx)
//
// Open waits for the backend to leave Initialising (Linux's blkback
// publishes its features in InitWait), grants a fresh ring page and
// allocates an unbound event channel for the backend, writes ring-ref,
// event-channel and protocol=x86_64-abi in one transaction (retried on
// EAGAIN), switches to Initialised, waits for the backend to be
// Connected, reads sectors, info, sector-size, physical-sector-size,
// feature-flush-cache and feature-barrier, and switches to Connected.
//
// Units: the device API counts sectors of SectorSize bytes (the backend's
// logical block size); the wire always counts 512-byte units, as blkif.h
// says since feature-large-sector-size was deprecated and as Linux has
// always done; sector-size only sets alignment.
//
// Data: each request copies through pages of this domain's memory, one
// per segment, granted to the backend for that request only (read-only
// for writes) and revoked when the response arrives; Linux's blkback
// unmaps before it responds. Up to 11 segments (44 KiB) go in one request;
// a larger ReadAt or WriteAt is split into several requests that share the
// ring. Indirect segments and persistent grants are not negotiated.
//
// Flush: BLKIF_OP_FLUSH_DISKCACHE when the backend offers
// feature-flush-cache, else BLKIF_OP_WRITE_BARRIER (with no data) when it
// offers feature-barrier, else nothing is sent: a backend with neither has
// no volatile write cache to flush, so a completed write is already
// durable (Linux's blkfront then declares the queue write-through, the
// same conclusion). Flush covers the writes that completed before it was
// called, which is what the backend guarantees for a cache flush.
//
// Failure: a backend error status is an error wrapping ErrIO or
// ErrNotSupported with the operation, range and node. A request whose
// context ends returns the context's error; its slot and pages stay with
// the backend until it answers. If the backend's state becomes Closing or
// Closed or its directory disappears, or it breaks the ring protocol, every
// pending and later request fails with an error wrapping ErrGone or
// ErrProtocol instead of waiting. While requests are in flight the ring is
// also looked at every second, so a lost event costs a second rather than
// a timeout; Stats counts the responses found that way.
//
// Close: refuse new requests, wait for those in flight (bounded by ctx),
// Closing, wait for the backend to be Closing or Closed, remove ring-ref
// and event-channel, Closed, wait for the backend to be Closed (or gone),
// Initialising (so the disk can be opened again), then unbind the channel
// and end every grant. A grant the backend still maps is not reused: its
// page is kept for ever.
package blkfront

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/xenvtpm/xenvtpm/drivers/internal/xenfront"
	"github.com/xenvtpm/xenvtpm/grant"
	"github.com/xenvtpm/xenvtpm/xenbus"
)

// Store is the part of the xenstore client the frontend uses;
// *xenbus.Client implements it.
type Store interface {
	xenfront.Store
	Directory(ctx context.Context, path string) ([]string, error)
	Rm(ctx context.Context, path string) error
	WaitForState(ctx context.Context, dir string, states ...xenbus.State) (xenbus.State, error)
	ReadState(ctx context.Context, dir string) (xenbus.State, error)
	Watch(ctx context.Context, path string) (*xenbus.Watch, error)
}

// Grants grants the ring and data pages; *grant.Table implements it.
type Grants = xenfront.Grants

// Events allocates the event channel; *evtchn.Mux implements it.
type Events = xenfront.Events

// Config gathers the frontend's dependencies.
type Config struct {
	Store  Store
	Grants Grants
	Events Events
	// Node is the device directory, relative or absolute, e.g.
	// "device/vbd/768"; empty means the lowest-numbered entry of
	// device/vbd.
	Node string
	// NewPage allocates pages to share; nil means grant.NewPage.
	NewPage func() *grant.Page
	// Timeout bounds each request of the methods without a context; 0
	// means DefaultTimeout.
	Timeout time.Duration
	// Logf, if set, receives protocol anomalies that do not fail a
	// request (a response for no pending request, a watch failure).
	Logf func(format string, a ...any)
}

// DefaultTimeout bounds a request made without a context. A loop device
// on a busy host answers in milliseconds; a minute means the backend is
// not answering at all.
const DefaultTimeout = time.Minute

// reopenWait bounds how long Open waits for a Closed backend to become
// ready again.
const reopenWait = 10 * time.Second

// VDISK_* bits of the backend's info node.
const (
	VDiskCDROM     = 1
	VDiskRemovable = 2
	VDiskReadOnly  = 4
)

// Protocol is the ABI name written to the frontend's protocol node
// (XEN_IO_PROTO_ABI_X86_64).
const Protocol = "x86_64-abi"

var (
	// ErrClosed is returned for requests after Close.
	ErrClosed = errors.New("blkfront: device closed")
	// ErrGone is wrapped by errors of requests failed because the backend
	// closed or vanished.
	ErrGone = errors.New("blkfront: backend gone")
	// ErrProtocol is wrapped when the backend broke the ring protocol.
	ErrProtocol = errors.New("blkfront: backend broke the blkif protocol")
	// ErrIO is wrapped by BLKIF_RSP_ERROR responses.
	ErrIO = errors.New("blkfront: I/O error (BLKIF_RSP_ERROR)")
	// ErrNotSupported is wrapped by BLKIF_RSP_EOPNOTSUPP responses.
	ErrNotSupported = errors.New("blkfront: operation not supported (BLKIF_RSP_EOPNOTSUPP)")
	// ErrReadOnly is returned by writes to a read-only disk.
	ErrReadOnly = errors.New("blkfront: disk is read-only")
	// ErrRange is wrapped when a request reaches past the end of the disk.
	ErrRange = errors.New("blkfront: request outside the disk")
	// ErrAlign is wrapped when a buffer is not a whole number of sectors.
	ErrAlign = errors.New("blkfront: length not a multiple of the sector size")
)

// request is one request in flight (a shadow entry, in Linux's words).
type request struct {
	id     uint64
	op     uint8
	pages  []*grant.Page
	refs   []grant.Ref
	done   chan int16 // the response status, or statusBadOp
	orphan bool       // the caller gave up; the completer cleans up
}

// statusBadOp is what a request completes with when the response names
// another operation than the request's.
const statusBadOp = -1000

// Device is an open PV disk.
type Device struct {
	cfg       Config
	node      string
	backend   string
	backendID uint16
	handle    uint16

	sectorSize     int
	physSectorSize int
	sectors512     uint64
	info           uint32
	flushOp        int // OpFlushDiskcache, OpWriteBarrier or -1
	timeout        time.Duration

	sh *xenfront.Ring // the ring page and its event channel

	sem     chan struct{}  // one token per ring slot in use
	callers sync.WaitGroup // requests whose caller waits for them

	mu        sync.Mutex
	ring      *frontRing
	slots     [RingSize]*request
	freeSlots []int
	gen       uint64
	pool      []*grant.Page
	closed    bool
	dead      error
	deadCh    chan struct{}
	stats     Stats

	kick       chan struct{} // a request was queued: arm the poll
	stopEvents chan struct{}
	eventsDone chan struct{}
	watch      *xenfront.BackendWatch
}

// Open connects to the backend of cfg.Node.
func Open(ctx context.Context, cfg Config) (_ *Device, err error) {
	if cfg.Store == nil || cfg.Grants == nil || cfg.Events == nil {
		return nil, errors.New("blkfront: Config needs Store, Grants and Events")
	}
	st := cfg.Store
	node := cfg.Node
	if node == "" {
		if node, err = firstVBD(ctx, st); err != nil {
			return nil, err
		}
	}
	d := &Device{cfg: cfg, node: node, flushOp: -1, timeout: cfg.Timeout, sem: make(chan struct{}, RingSize), deadCh: make(chan struct{}), kick: make(chan struct{}, 1)}
	if d.timeout <= 0 {
		d.timeout = DefaultTimeout
	}
	if d.cfg.NewPage == nil {
		d.cfg.NewPage = grant.NewPage
	}
	for i := RingSize - 1; i >= 0; i-- {
		d.freeSlots = append(d.freeSlots, i)
	}
	if h, perr := strconv.ParseUint(node[strings.LastIndexByte(node, '/')+1:], 10, 16); perr == nil {
		// The handle is the virtual-device number, the directory's name.
		d.handle = uint16(h)
	}
	if d.backend, d.backendID, err = xenfront.Backend(ctx, st, node); err != nil {
		return nil, fmt.Errorf("blkfront: %w", err)
	}

	// Linux's blkback writes its features and goes InitWait when it
	// probes; talking before that could miss them.
	s, err := st.WaitForState(ctx, d.backend, xenbus.StateInitWait, xenbus.StateInitialised, xenbus.StateConnected, xenbus.StateClosing, xenbus.StateClosed)
	if err != nil {
		return nil, fmt.Errorf("blkfront: %s: wait for backend %s: %w", node, d.backend, err)
	}
	if s == xenbus.StateClosing || s == xenbus.StateClosed {
		// Right after a Close the backend is Closed until it sees our
		// Initialising and goes back to InitWait; give it that moment.
		wctx, cancel := context.WithTimeout(ctx, reopenWait)
		_, werr := st.WaitForState(wctx, d.backend, xenbus.StateInitWait, xenbus.StateInitialised, xenbus.StateConnected)
		cancel()
		if werr != nil {
			return nil, fmt.Errorf("blkfront: %s: backend %s is %v: %w", node, d.backend, s, ErrGone)
		}
	}

	if d.sh, err = xenfront.Share(grant.TableSharer{Table: d.cfg.Grants, NewPage: d.cfg.NewPage}, cfg.Events, d.backendID); err != nil {
		return nil, fmt.Errorf("blkfront: %s: %w", node, err)
	}
	defer func() {
		if err != nil {
			d.release()
		}
	}()
	if d.ring, err = newFrontRing(d.sh.Page.Mem); err != nil {
		return nil, err
	}
	if err = d.sh.Publish(ctx, st, node, [2]string{"protocol", Protocol}); err != nil {
		return nil, fmt.Errorf("blkfront: %w", err)
	}
	defer func() {
		if err != nil {
			// Tell the backend to let go of the ring and give it a
			// moment to unmap it, so the grant can end; best effort.
			cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			st.SwitchState(cctx, node, xenbus.StateClosed)
			st.WaitForState(cctx, d.backend, xenbus.StateClosed, xenbus.StateInitWait, xenbus.StateUnknown)
			st.SwitchState(cctx, node, xenbus.StateInitialising)
			cancel()
		}
	}()
	s, err = st.WaitForState(ctx, d.backend, xenbus.StateConnected, xenbus.StateClosing, xenbus.StateClosed)
	if err != nil {
		return nil, fmt.Errorf("blkfront: %s: wait for backend to connect: %w", node, err)
	}
	if s != xenbus.StateConnected {
		err = fmt.Errorf("blkfront: %s: backend %s is %v instead of connecting: %w", node, d.backend, s, ErrGone)
		return nil, err
	}
	if err = d.readBackendInfo(ctx); err != nil {
		return nil, err
	}
	if err = st.SwitchState(ctx, node, xenbus.StateConnected); err != nil {
		return nil, fmt.Errorf("blkfront: %w", err)
	}

	d.stopEvents = make(chan struct{})
	d.eventsDone = make(chan struct{})
	go d.events()
	d.watch, err = xenfront.WatchBackend(ctx, st, d.backend, func(why string) {
		d.fail(fmt.Errorf("%w: %s", ErrGone, why))
	}, d.logf)
	if err != nil {
		close(d.stopEvents)
		<-d.eventsDone
		err = fmt.Errorf("blkfront: %s: %w", node, err)
		return nil, err
	}
	return d, nil
}

// firstVBD finds the lowest-numbered device under device/vbd.
func firstVBD(ctx context.Context, st Store) (string, error) {
	names, err := st.Directory(ctx, "device/vbd")
	if err != nil {
		return "", fmt.Errorf("blkfront: list device/vbd: %w", err)
	}
	best, found := uint64(0), false
	for _, n := range names {
		v, err := strconv.ParseUint(n, 10, 32)
		if err == nil && (!found || v < best) {
			best, found = v, true
		}
	}
	if !found {
		return "", fmt.Errorf("blkfront: no disk under device/vbd (entries %q)", names)
	}
	return "device/vbd/" + strconv.FormatUint(best, 10), nil
}

// readBackendInfo reads and checks what the backend published when it
// connected.
func (d *Device) readBackendInfo(ctx context.Context) error {
	st, be := d.cfg.Store, d.backend
	var err error
	if d.sectors512, err = st.ReadUint(ctx, be+"/sectors", 64); err != nil {
		return fmt.Errorf("blkfront: %s: %w", d.node, err)
	}
	ss, err := st.ReadUint(ctx, be+"/sector-size", 32)
	if err != nil {
		return fmt.Errorf("blkfront: %s: %w", d.node, err)
	}
	// A page is the largest sector a segment can carry.
	if ss < 512 || ss > PageSize || ss&(ss-1) != 0 {
		return fmt.Errorf("blkfront: %s: backend sector-size %d is not a power of two in 512..%d", d.node, ss, PageSize)
	}
	d.sectorSize = int(ss)
	if d.sectors512%(ss>>SectorShift) != 0 {
		return fmt.Errorf("blkfront: %s: backend size %d*512 bytes is not a whole number of %d-byte sectors", d.node, d.sectors512, ss)
	}
	d.physSectorSize = d.sectorSize
	if ps, err := st.ReadUint(ctx, be+"/physical-sector-size", 32); err == nil {
		if ps < ss || ps%ss != 0 {
			return fmt.Errorf("blkfront: %s: backend physical-sector-size %d is not a multiple of sector-size %d", d.node, ps, ss)
		}
		d.physSectorSize = int(ps)
	} else if !errors.Is(err, xenbus.ErrNoEnt) {
		return fmt.Errorf("blkfront: %s: %w", d.node, err)
	}
	if info, err := st.ReadUint(ctx, be+"/info", 32); err == nil {
		d.info = uint32(info)
	} else if !errors.Is(err, xenbus.ErrNoEnt) {
		return fmt.Errorf("blkfront: %s: %w", d.node, err)
	}
	flag := func(key string) (bool, error) {
		v, err := st.ReadUint(ctx, be+"/"+key, 32)
		if errors.Is(err, xenbus.ErrNoEnt) {
			return false, nil
		}
		if err != nil {
			return false, fmt.Errorf("blkfront: %s: %w", d.node, err)
		}
		return v != 0, nil
	}
	flush, err := flag("feature-flush-cache")
	if err != nil {
		return err
	}
	barrier, err := flag("feature-barrier")
	if err != nil {
		return err
	}
	switch {
	case flush:
		d.flushOp = OpFlushDiskcache
	case barrier:
		d.flushOp = OpWriteBarrier
	}
	return nil
}

// SectorSize is the backend's logical block size in bytes.
func (d *Device) SectorSize() int { return d.sectorSize }

// PhysicalSectorSize is the backend's physical block size in bytes: the
// unit a write must cover to avoid a read-modify-write underneath.
func (d *Device) PhysicalSectorSize() int { return d.physSectorSize }

// Sectors is the disk size in sectors of SectorSize bytes.
func (d *Device) Sectors() uint64 { return d.sectors512 / uint64(d.sectorSize>>SectorShift) }

// Info is the backend's VDISK_* bits.
func (d *Device) Info() uint32 { return d.info }

// ReadOnly reports whether the backend exports the disk read-only.
func (d *Device) ReadOnly() bool { return d.info&VDiskReadOnly != 0 }

// FlushMethod names how Flush reaches the backend: "flush-cache",
// "barrier" or "none" (write-through backend).
func (d *Device) FlushMethod() string {
	switch d.flushOp {
	case OpFlushDiskcache:
		return "flush-cache"
	case OpWriteBarrier:
		return "barrier"
	}
	return "none"
}

// Node is the device's xenstore directory; Backend its backend's.
func (d *Device) Node() string { return d.node }

// Backend returns the backend directory and domain.
func (d *Device) Backend() (path string, domid uint16) { return d.backend, d.backendID }

// ReadAt reads len(p) bytes, a multiple of SectorSize, from sector on,
// within DefaultTimeout (or Config.Timeout).
func (d *Device) ReadAt(p []byte, sector uint64) error {
	ctx, cancel := context.WithTimeout(context.Background(), d.timeout)
	defer cancel()
	return d.ReadAtContext(ctx, p, sector)
}

// WriteAt writes len(p) bytes, a multiple of SectorSize, from sector on,
// within DefaultTimeout (or Config.Timeout).
func (d *Device) WriteAt(p []byte, sector uint64) error {
	ctx, cancel := context.WithTimeout(context.Background(), d.timeout)
	defer cancel()
	return d.WriteAtContext(ctx, p, sector)
}

// Flush makes every write completed before it durable, within
// DefaultTimeout (or Config.Timeout).
func (d *Device) Flush() error {
	ctx, cancel := context.WithTimeout(context.Background(), d.timeout)
	defer cancel()
	return d.FlushContext(ctx)
}

// ReadAtContext is ReadAt bounded by ctx.
func (d *Device) ReadAtContext(ctx context.Context, p []byte, sector uint64) error {
	return d.rw(ctx, OpRead, p, sector)
}

// WriteAtContext is WriteAt bounded by ctx.
func (d *Device) WriteAtContext(ctx context.Context, p []byte, sector uint64) error {
	if d.ReadOnly() {
		return fmt.Errorf("blkfront: %s: write at sector %d: %w", d.node, sector, ErrReadOnly)
	}
	return d.rw(ctx, OpWrite, p, sector)
}

// FlushContext is Flush bounded by ctx.
func (d *Device) FlushContext(ctx context.Context) error {
	if d.flushOp < 0 {
		// Write-through backend: completed writes are durable already.
		return d.usable()
	}
	if err := d.do(ctx, uint8(d.flushOp), 0, nil); err != nil {
		return fmt.Errorf("blkfront: %s: %s: %w", d.node, opName(uint8(d.flushOp)), err)
	}
	return nil
}

func (d *Device) usable() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return ErrClosed
	}
	return d.dead
}

// maxRequestBytes is what one request carries.
const maxRequestBytes = MaxSegments * PageSize

// rw checks a read or write and splits it into requests that run
// concurrently on the ring.
func (d *Device) rw(ctx context.Context, op uint8, p []byte, sector uint64) error {
	what := func() string {
		return fmt.Sprintf("%s: %s of %d bytes at sector %d", d.node, opName(op), len(p), sector)
	}
	ss := uint64(d.sectorSize)
	if len(p) == 0 {
		return d.usable()
	}
	if uint64(len(p))%ss != 0 {
		return fmt.Errorf("blkfront: %s: %w (%d)", what(), ErrAlign, ss)
	}
	n := uint64(len(p)) / ss
	if total := d.Sectors(); sector > total || n > total-sector {
		return fmt.Errorf("blkfront: %s: %w (%d sectors of %d bytes)", what(), ErrRange, total, ss)
	}
	wire := sector * (ss >> SectorShift)
	if len(p) <= maxRequestBytes {
		if err := d.do(ctx, op, wire, p); err != nil {
			return fmt.Errorf("blkfront: %s: %w", what(), err)
		}
		return nil
	}
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	for off := 0; off < len(p); off += maxRequestBytes {
		chunk := p[off:min(off+maxRequestBytes, len(p))]
		wg.Add(1)
		go func(chunk []byte, wire uint64) {
			defer wg.Done()
			if err := d.do(ctx, op, wire, chunk); err != nil {
				mu.Lock()
				errs = append(errs, fmt.Errorf("request at 512-byte unit %d: %w", wire, err))
				mu.Unlock()
			}
		}(chunk, wire+uint64(off)>>SectorShift)
	}
	wg.Wait()
	if len(errs) > 0 {
		return fmt.Errorf("blkfront: %s: %w", what(), errors.Join(errs...))
	}
	return nil
}

func opName(op uint8) string {
	switch op {
	case OpRead:
		return "read"
	case OpWrite:
		return "write"
	case OpWriteBarrier:
		return "write barrier"
	case OpFlushDiskcache:
		return "flush"
	}
	return "operation " + strconv.Itoa(int(op))
}

// getPage takes a page from the pool (mu held).
func (d *Device) getPage() *grant.Page {
	if n := len(d.pool); n > 0 {
		p := d.pool[n-1]
		d.pool = d.pool[:n-1]
		return p
	}
	return d.cfg.NewPage()
}

// endGrants revokes a finished request's grants and returns its pages to
// the pool; a page the backend still maps is leaked rather than reused
// (mu held).
func (d *Device) endGrants(r *request) error {
	var errs []error
	for i, ref := range r.refs {
		if err := d.cfg.Grants.EndAccess(ref); err != nil {
			grant.Leak(r.pages[i])
			errs = append(errs, err)
			continue
		}
		d.pool = append(d.pool, r.pages[i])
	}
	r.refs, r.pages = nil, nil
	return errors.Join(errs...)
}

// do sends one request of at most MaxSegments pages and waits for its
// response. wire is the first 512-byte unit.
func (d *Device) do(ctx context.Context, op uint8, wire uint64, buf []byte) error {
	select {
	case d.sem <- struct{}{}:
	case <-ctx.Done():
		return fmt.Errorf("waiting for a free ring slot: %w", ctx.Err())
	case <-d.deadCh:
		return d.usable()
	}
	r := &request{op: op, done: make(chan int16, 1)}
	d.mu.Lock()
	if err := d.usableLocked(); err != nil {
		d.mu.Unlock()
		<-d.sem
		return err
	}
	// Added under mu while not closed, so every Add precedes Close's Wait.
	d.callers.Add(1)
	defer d.callers.Done()
	nseg := (len(buf) + PageSize - 1) / PageSize
	for i := 0; i < nseg; i++ {
		pg := d.getPage()
		if op == OpWrite {
			copy(pg.Mem.Bytes(), buf[i*PageSize:min((i+1)*PageSize, len(buf))])
		}
		ref, err := d.cfg.Grants.Grant(d.backendID, pg.GFN, op == OpWrite)
		if err != nil {
			d.pool = append(d.pool, pg)
			d.endGrants(r)
			d.mu.Unlock()
			<-d.sem
			return fmt.Errorf("grant data page: %w", err)
		}
		r.pages = append(r.pages, pg)
		r.refs = append(r.refs, ref)
	}
	slot := d.freeSlots[len(d.freeSlots)-1]
	d.freeSlots = d.freeSlots[:len(d.freeSlots)-1]
	d.gen++
	// The slot in the low bits finds the shadow; the generation makes a
	// repeated or stale response for a reused slot recognisable.
	r.id = d.gen<<8 | uint64(slot)
	d.slots[slot] = r
	m := d.ring.sring
	off := d.ring.nextRequest()
	clear(m.Bytes()[off : off+requestSize])
	m.Store8(off+reqOp, op)
	m.Store8(off+reqNrSeg, uint8(nseg))
	m.Store16(off+reqHandle, d.handle)
	m.Store64(off+reqID, r.id)
	m.Store64(off+reqSector, wire)
	for i := 0; i < nseg; i++ {
		units := (min((i+1)*PageSize, len(buf)) - i*PageSize) >> SectorShift
		so := off + reqSeg + i*segSize
		m.Store32(so+segGref, uint32(r.refs[i]))
		m.Store8(so+segFirst, 0)
		m.Store8(so+segLast, uint8(units-1))
	}
	notify := d.ring.push()
	d.stats.Requests++
	d.mu.Unlock()
	select {
	case d.kick <- struct{}{}:
	default:
	}
	if notify {
		if err := d.sh.Ch.Notify(); err != nil {
			d.fail(fmt.Errorf("%w: %v", ErrGone, err))
		}
	}

	select {
	case st := <-r.done:
		d.mu.Lock()
		if st == RspOkay && op == OpRead {
			for i, pg := range r.pages {
				copy(buf[i*PageSize:min((i+1)*PageSize, len(buf))], pg.Mem.Bytes())
			}
		}
		gerr := d.endGrants(r)
		d.mu.Unlock()
		if err := statusErr(st); err != nil {
			return err
		}
		if gerr != nil {
			return fmt.Errorf("completed, but the backend still maps a data page: %w", gerr)
		}
		return nil
	case <-ctx.Done():
		d.orphan(r)
		return fmt.Errorf("no response from backend %s: %w", d.backend, ctx.Err())
	case <-d.deadCh:
		d.orphan(r)
		return d.usable()
	}
}

// orphan hands a request whose caller gave up to the completer, or
// finishes it if its response already came.
func (d *Device) orphan(r *request) {
	d.mu.Lock()
	defer d.mu.Unlock()
	select {
	case <-r.done:
		d.endGrants(r)
	default:
		r.orphan = true
	}
}

func (d *Device) usableLocked() error {
	if d.closed {
		return ErrClosed
	}
	return d.dead
}

func statusErr(st int16) error {
	switch st {
	case RspOkay:
		return nil
	case RspError:
		return ErrIO
	case RspEOPNOTSUPP:
		return ErrNotSupported
	case statusBadOp:
		return fmt.Errorf("%w: response names another operation", ErrProtocol)
	}
	return fmt.Errorf("%w: unknown response status %d", ErrIO, st)
}

// fail marks the device dead: pending and later requests return err.
func (d *Device) fail(err error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.failLocked(err)
}

func (d *Device) failLocked(err error) {
	if d.dead != nil {
		return
	}
	d.dead = fmt.Errorf("blkfront: %s: %w", d.node, err)
	close(d.deadCh)
}

func (d *Device) logf(format string, a ...any) {
	if d.cfg.Logf != nil {
		d.cfg.Logf("blkfront: %s: "+format, append([]any{d.node}, a...)...)
	}
}

// pollInterval is how often the ring is looked at while requests are in
// flight and no event came: a lost event then costs a second instead of a
// request's whole timeout. Stats counts what polling found, so a lost
// event shows instead of hiding.
const pollInterval = time.Second

// Stats are counters for diagnostics.
type Stats struct {
	// Requests and Responses count what crossed the ring.
	Requests, Responses uint64
	// Polled counts responses found by the poll rather than after an
	// event: non-zero means an event went missing (or came very late).
	Polled uint64
	// Ignored counts responses for no pending request.
	Ignored uint64
}

// Stats returns the counters.
func (d *Device) Stats() Stats {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.stats
}

// events consumes responses on every event. The event handler only wakes
// this goroutine; the work happens here.
func (d *Device) events() {
	defer close(d.eventsDone)
	poll := time.NewTimer(pollInterval)
	poll.Stop()
	defer poll.Stop()
	for {
		// Poll only while requests are in flight, so an idle domain is
		// not woken every second; do kicks us when it queues one.
		d.mu.Lock()
		busy := len(d.freeSlots) < RingSize && d.dead == nil
		d.mu.Unlock()
		var pollC <-chan time.Time
		if busy {
			poll.Reset(pollInterval)
			pollC = poll.C
		}
		polled := false
		select {
		case <-d.sh.Ch.C:
		case <-d.kick:
			continue
		case <-pollC:
			// An event that came at the same moment is no lost event.
			select {
			case <-d.sh.Ch.C:
			default:
				polled = true
			}
		case <-d.stopEvents:
			return
		}
		d.mu.Lock()
		if n := d.consume(); polled {
			d.stats.Polled += n
		}
		d.mu.Unlock()
	}
}

// consume takes every published response (mu held): RING_COPY_RESPONSE
// of each, then RING_FINAL_CHECK_FOR_RESPONSES.
func (d *Device) consume() (n uint64) {
	r := d.ring
	m := r.sring
	for d.dead == nil {
		rp := r.rspProd()
		// RING_RESPONSE_PROD_OVERFLOW: more responses than requests
		// outstanding means the backend is writing garbage.
		if rp-r.rspCons > r.reqProdPvt-r.rspCons {
			d.failLocked(fmt.Errorf("%w: rsp_prod %d with %d requests outstanding from %d", ErrProtocol, rp, r.reqProdPvt-r.rspCons, r.rspCons))
			return n
		}
		for r.rspCons != rp {
			off := entryOff(r.rspCons)
			// Copy the fields once: the backend may change them under us.
			id := m.Load64(off + rspID)
			op := m.Load8(off + rspOp)
			st := int16(m.Load16(off + rspStatus))
			r.rspCons++
			n++
			d.stats.Responses++
			d.complete(id, op, st)
		}
		if !r.finalCheck() {
			return n
		}
	}
	return n
}

// complete delivers one response (mu held).
func (d *Device) complete(id uint64, op uint8, st int16) {
	slot := int(id & 0xff)
	if slot >= RingSize || d.slots[slot] == nil || d.slots[slot].id != id {
		d.stats.Ignored++
		d.logf("ignored a response with id %#x (status %d): no such request pending", id, st)
		return
	}
	req := d.slots[slot]
	d.slots[slot] = nil
	d.freeSlots = append(d.freeSlots, slot)
	<-d.sem
	if op != req.op {
		st = statusBadOp
	}
	if req.orphan {
		if err := d.endGrants(req); err != nil {
			d.logf("late response: %v", err)
		}
		return
	}
	req.done <- st
}

// Close disconnects from the backend (see the package doc for the order).
// The Device is unusable afterwards, even if Close returns an error.
func (d *Device) Close(ctx context.Context) error {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return ErrClosed
	}
	d.closed = true
	d.mu.Unlock()
	var errs []error
	// Wait for the callers of requests in flight. Requests their callers
	// gave up on are not waited for: their response may never come.
	idle := make(chan struct{})
	go func() {
		d.callers.Wait()
		close(idle)
	}()
	select {
	case <-idle:
	case <-ctx.Done():
		errs = append(errs, fmt.Errorf("requests still in flight: %w", ctx.Err()))
	}
	d.watch.Stop()

	st := d.cfg.Store
	tolerate := func(err error) {
		if err != nil && !errors.Is(err, xenbus.ErrNoEnt) {
			errs = append(errs, err)
		}
	}
	tolerate(st.SwitchState(ctx, d.node, xenbus.StateClosing))
	if _, err := st.WaitForState(ctx, d.backend, xenbus.StateClosing, xenbus.StateClosed, xenbus.StateUnknown); err != nil {
		errs = append(errs, err)
	}
	for _, k := range []string{"event-channel", "ring-ref", "protocol"} {
		tolerate(st.Rm(ctx, d.node+"/"+k))
	}
	tolerate(st.SwitchState(ctx, d.node, xenbus.StateClosed))
	if _, err := st.WaitForState(ctx, d.backend, xenbus.StateClosed, xenbus.StateInitWait, xenbus.StateUnknown); err != nil {
		errs = append(errs, err)
	}
	tolerate(st.SwitchState(ctx, d.node, xenbus.StateInitialising))

	close(d.stopEvents)
	<-d.eventsDone
	d.mu.Lock()
	if err := d.release(); err != nil {
		errs = append(errs, err)
	}
	d.mu.Unlock()
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("blkfront: close %s: %w", d.node, err)
	}
	return nil
}

// release unbinds the channel and ends the ring's grant and those of
// requests that never completed.
func (d *Device) release() error {
	var errs []error
	for i, r := range d.slots {
		if r != nil {
			if err := d.endGrants(r); err != nil {
				errs = append(errs, err)
			}
			d.slots[i] = nil
		}
	}
	errs = append(errs, d.sh.Release())
	d.pool = nil
	return errors.Join(errs...)
}

// InFlight is the number of requests on the ring (for diagnostics).
func (d *Device) InFlight() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return RingSize - len(d.freeSlots)
}
