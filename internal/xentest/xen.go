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

// shared_info offsets (x86-64) the fake raises events in.
const (
	upcallPending = 0
	pendingSel    = 8
	pendingBase   = 2048
	maskBase      = 2560
)

// Xen is the fake hypervisor plus xenstored.
type Xen struct {
	Store *Store

	mu   sync.Mutex
	doms map[uint16]*Domain
}

// New starts an empty fake Xen.
func New() *Xen { return &Xen{Store: newStore(), doms: map[uint16]*Domain{}} }

type port struct {
	remoteDom  uint16
	remotePort evtchn.Port
	bound      bool // interdomain connection established
}

type mapping struct {
	granter *Domain
	ref     grant.Ref
	page    *shm.Page
	write   bool
}

// Domain is one fake domain with everything a driver needs.
type Domain struct {
	ID     uint16
	X      *Xen
	Store  *xenbus.Client
	Events *evtchn.Mux
	// Grants is the domain's grant table (frontend side).
	Grants *grant.Table
	// Mapper maps other domains' grants (backend side).
	Mapper *grant.Mapper

	si []byte

	mu        sync.Mutex
	ports     map[evtchn.Port]*port
	nextPort  evtchn.Port
	gnttab    []byte
	gnttabGPA uint64
	maps      map[uint64]*mapping
	frames    map[uint64]*grant.Page
	lastFrame uint64
	dead      bool
	// Sent counts EVTCHNOP_send calls.
	Sent int
}

// MaxGrantFrames is what the fake's GNTTABOP_query_size allows.
const MaxGrantFrames = 32

// AddDomain creates domain id with a xenstore connection, an event-channel
// Mux, a 4-frame grant table at grant.FrontendWindow and a mapper over
// slots pages at grant.BackendWindow.
func (x *Xen) AddDomain(t testing.TB, id uint16, slots int) *Domain {
	t.Helper()
	d := &Domain{ID: id, X: x, si: make([]byte, 4096), ports: map[evtchn.Port]*port{}, maps: map[uint64]*mapping{}, frames: map[uint64]*grant.Page{}, lastFrame: 0x1000}
	var err error
	d.Events, err = evtchn.NewMux(shm.New(d.si), evOps{d})
	if err != nil {
		t.Fatal(err)
	}
	x.mu.Lock()
	x.doms[id] = d
	x.mu.Unlock()
	if d.Grants, err = grant.NewTable(GrantOps{d}, grant.FrontendWindow, 4); err != nil {
		t.Fatal(err)
	}
	if d.Mapper, err = grant.NewMapper(GrantOps{d}, grant.BackendWindow, slots); err != nil {
		t.Fatal(err)
	}
	d.Store = x.Store.Connect(id)
	t.Cleanup(func() { d.Store.Close() })
	ctx := context.Background()
	home := "/local/domain/" + strconv.Itoa(int(id))
	dom0 := x.Store.Connect(0)
	defer dom0.Close()
	if err := dom0.WriteString(ctx, home+"/domid", strconv.Itoa(int(id))); err != nil {
		t.Fatal(err)
	}
	// The toolstack gives each domain its home, as libxl does.
	if err := dom0.SetPerms(ctx, home, []xenbus.Perm{{Domid: id, Access: xenbus.AccessNone}}); err != nil {
		t.Fatal(err)
	}
	return d
}

func (x *Xen) dom(id uint16) *Domain {
	x.mu.Lock()
	defer x.mu.Unlock()
	d := x.doms[id]
	if d == nil {
		return nil
	}
	d.mu.Lock()
	dead := d.dead
	d.mu.Unlock()
	if dead {
		return nil
	}
	return d
}

// Destroy kills a domain as `xl destroy` does at the hypervisor level: its
// event channels close and its grant entries stay mapped by peers until
// they unmap. Xenstore cleanup is the toolstack's part (RemoveVTPM).
func (d *Domain) Destroy() {
	d.mu.Lock()
	d.dead = true
	ports := d.ports
	d.ports = map[evtchn.Port]*port{}
	d.mu.Unlock()
	for _, p := range ports {
		if p.bound {
			if peer := d.X.dom(p.remoteDom); peer != nil {
				peer.mu.Lock()
				if pp := peer.ports[p.remotePort]; pp != nil {
					pp.bound = false
				}
				peer.mu.Unlock()
			}
		}
	}
	d.Store.Close()
}

// raise marks port pending in d's shared_info and runs the demux, as the
// upcall would.
func (d *Domain) raise(p evtchn.Port) {
	si := shm.New(d.si)
	w, b := int(p/64), uint(p%64)
	si.Or64(pendingBase+8*w, 1<<b)
	if si.Load64(maskBase+8*w)&(1<<b) == 0 {
		si.Or64(pendingSel, 1<<uint(w))
		si.Store8(upcallPending, 1)
	}
	d.Events.Demux()
}

// evOps is the fake EVTCHNOP_* of one domain.
type evOps struct{ d *Domain }

func (o evOps) alloc(p *port) evtchn.Port {
	o.d.nextPort++
	o.d.ports[o.d.nextPort] = p
	return o.d.nextPort
}

func (o evOps) AllocUnbound(remote uint16) (evtchn.Port, error) {
	o.d.mu.Lock()
	defer o.d.mu.Unlock()
	return o.alloc(&port{remoteDom: remote}), nil
}

func (o evOps) BindInterdomain(remote uint16, rport evtchn.Port) (evtchn.Port, error) {
	peer := o.d.X.dom(remote)
	if peer == nil {
		return 0, fmt.Errorf("bind_interdomain to %d: %w", remote, ErrNoDomain)
	}
	peer.mu.Lock()
	pp := peer.ports[rport]
	if pp == nil || pp.bound || pp.remoteDom != o.d.ID {
		peer.mu.Unlock()
		return 0, fmt.Errorf("bind_interdomain: domain %d port %d is not unbound for domain %d (EINVAL)", remote, rport, o.d.ID)
	}
	o.d.mu.Lock()
	lp := o.alloc(&port{remoteDom: remote, remotePort: rport, bound: true})
	o.d.mu.Unlock()
	pp.bound, pp.remotePort = true, lp
	peer.mu.Unlock()
	return lp, nil
}

func (o evOps) BindVIRQ(virq, vcpu uint32) (evtchn.Port, error) {
	return 0, fmt.Errorf("bind_virq: not in the fake (ENOSYS)")
}

func (o evOps) Send(p evtchn.Port) error {
	// The port's fields are read under the lock: the peer binds or
	// closes its end (and so changes them) under the same lock.
	o.d.mu.Lock()
	pp := o.d.ports[p]
	o.d.Sent++
	var target port
	if pp != nil {
		target = *pp
	}
	o.d.mu.Unlock()
	if pp == nil {
		return fmt.Errorf("send on port %d: not allocated (EINVAL)", p)
	}
	if !target.bound {
		return nil // Xen drops events on an unbound port silently
	}
	if peer := o.d.X.dom(target.remoteDom); peer != nil {
		peer.raise(target.remotePort)
	}
	return nil
}

func (o evOps) Close(p evtchn.Port) error {
	o.d.mu.Lock()
	pp := o.d.ports[p]
	delete(o.d.ports, p)
	var closed port
	if pp != nil {
		closed = *pp
	}
	o.d.mu.Unlock()
	if pp == nil {
		return fmt.Errorf("close port %d: not allocated (EINVAL)", p)
	}
	if closed.bound {
		if peer := o.d.X.dom(closed.remoteDom); peer != nil {
			peer.mu.Lock()
			if q := peer.ports[closed.remotePort]; q != nil {
				q.bound = false
			}
			peer.mu.Unlock()
		}
	}
	return nil
}

func (o evOps) Unmask(p evtchn.Port) error {
	si := shm.New(o.d.si)
	w, b := int(p/64), uint(p%64)
	si.And64(maskBase+8*w, ^(uint64(1) << b))
	return nil
}

// Ports is the number of allocated event-channel ports of the domain.
func (d *Domain) Ports() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.ports)
}

// GrantOps is the fake grant-table hypercalls of one domain.
type GrantOps struct{ D *Domain }

func (o GrantOps) QuerySize() (uint32, uint32, error) { return 1, MaxGrantFrames, nil }

func (o GrantOps) AddToPhysmap(idx, gfn uint64) error {
	d := o.D
	d.mu.Lock()
	defer d.mu.Unlock()
	if idx >= MaxGrantFrames {
		return fmt.Errorf("add_to_physmap grant frame %d: EINVAL", idx)
	}
	if need := int(idx+1) * grant.PageSize; len(d.gnttab) < need {
		d.gnttab = append(d.gnttab, make([]byte, need-len(d.gnttab))...)
	}
	if idx == 0 {
		d.gnttabGPA = gfn * grant.PageSize
	} else if gfn*grant.PageSize != d.gnttabGPA+idx*grant.PageSize {
		return fmt.Errorf("add_to_physmap: the fake wants grant frames contiguous")
	}
	return nil
}

const (
	offFlags = 0
	offDomid = 2
	offFrame = 4
)

func (o GrantOps) MapGrantRef(hostAddr uint64, flags uint32, ref grant.Ref, dom uint16) (uint32, int16, error) {
	d := o.D
	if flags&grant.GNTMAPHostMap == 0 {
		return 0, int16(grant.StatusGeneralError), nil
	}
	g := d.X.dom(dom)
	if g == nil {
		return 0, int16(grant.StatusBadDomain), nil
	}
	g.mu.Lock()
	tab := g.gnttab
	g.mu.Unlock()
	if int(ref)*8+8 > len(tab) {
		return 0, int16(grant.StatusBadGntref), nil
	}
	e := shm.New(tab)
	off := int(ref) * 8
	write := flags&grant.GNTMAPReadonly == 0
	for {
		f := e.Load16(off + offFlags)
		if f&grant.GTFTypeMask != grant.GTFPermitAccess || e.Load16(off+offDomid) != d.ID {
			return 0, int16(grant.StatusPermissionDenied), nil
		}
		if write && f&grant.GTFReadonly != 0 {
			return 0, int16(grant.StatusPermissionDenied), nil
		}
		nf := f | grant.GTFReading
		if write {
			nf |= grant.GTFWriting
		}
		if e.CompareAndSwap16(off+offFlags, f, nf) {
			break
		}
	}
	frame := uint64(e.Load32(off + offFrame))
	g.mu.Lock()
	gp := g.frames[frame]
	g.mu.Unlock()
	if gp == nil {
		for {
			f := e.Load16(off + offFlags)
			if e.CompareAndSwap16(off+offFlags, f, f&^(grant.GTFReading|grant.GTFWriting)) {
				break
			}
		}
		return 0, int16(grant.StatusBadPage), nil
	}
	page := gp.Mem
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.maps[hostAddr] != nil {
		return 0, int16(grant.StatusBadVirtAddr), nil
	}
	d.maps[hostAddr] = &mapping{granter: g, ref: ref, page: page, write: write}
	return uint32(hostAddr / grant.PageSize), 0, nil
}

func (o GrantOps) UnmapGrantRef(hostAddr uint64, handle uint32) (int16, error) {
	d := o.D
	d.mu.Lock()
	m := d.maps[hostAddr]
	if m == nil || uint32(hostAddr/grant.PageSize) != handle {
		d.mu.Unlock()
		return int16(grant.StatusBadHandle), nil
	}
	delete(d.maps, hostAddr)
	d.mu.Unlock()
	e := shm.New(m.granter.gnttab)
	off := int(m.ref)*8 + offFlags
	for {
		f := e.Load16(off)
		if e.CompareAndSwap16(off, f, f&^(grant.GTFReading|grant.GTFWriting)) {
			break
		}
	}
	return 0, nil
}

func (o GrantOps) Memory(gpa uint64, length int) *shm.Page {
	d := o.D
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.gnttab) > 0 && gpa == d.gnttabGPA && length <= len(d.gnttab) {
		return shm.New(d.gnttab[:length])
	}
	if m := d.maps[gpa]; m != nil && length <= grant.PageSize {
		return m.page
	}
	return nil
}

// Mapped is the number of foreign pages the domain maps in the fake
// hypervisor's books (independent of grant.Mapper's own count).
func (d *Domain) Mapped() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.maps)
}

// NewPage allocates a page of the domain's memory for granting and gives
// it a frame number the fake hypervisor can resolve (host addresses do not
// fit a v1 grant entry's 32-bit frame).
func (d *Domain) NewPage() *grant.Page {
	p := grant.NewPage()
	d.mu.Lock()
	d.lastFrame++
	p.GFN = d.lastFrame
	d.frames[p.GFN] = p
	d.mu.Unlock()
	return p
}

// Sharer shares pages through the domain's grant table, with pages of the
// fake hypervisor's memory.
func (d *Domain) Sharer() grant.Sharer {
	return grant.TableSharer{Table: d.Grants, NewPage: d.NewPage}
}
