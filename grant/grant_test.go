package grant

import (
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/xenvtpm/xenvtpm/board/xen/shm"
)

// fakeOps plays Xen for one domain: grant frames are a plain buffer, the
// map window is a map of pages, and maps mark the entries of a granting
// table as Xen does.
type fakeOps struct {
	mu       sync.Mutex
	max      uint32
	frames   []byte
	base     uint64
	added    []uint64
	granter  *Table // whose entries MapGrantRef checks and marks
	maps     map[uint64]Ref
	mapErr   error
	status   []int16 // statuses to return before success
	unmapSt  int16
	mapCalls int
}

func newFakeOps() *fakeOps { return &fakeOps{max: 8, maps: map[uint64]Ref{}} }

func (f *fakeOps) QuerySize() (uint32, uint32, error) { return 1, f.max, nil }

func (f *fakeOps) AddToPhysmap(idx, gfn uint64) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if idx == 0 {
		f.base = gfn * PageSize
	}
	f.added = append(f.added, gfn)
	f.frames = append(f.frames, make([]byte, PageSize)...)
	return nil
}

func (f *fakeOps) MapGrantRef(hostAddr uint64, flags uint32, ref Ref, dom uint16) (uint32, int16, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.mapCalls++
	if f.mapErr != nil {
		return 0, 0, f.mapErr
	}
	if len(f.status) > 0 {
		st := f.status[0]
		f.status = f.status[1:]
		return 0, st, nil
	}
	if _, dup := f.maps[hostAddr]; dup {
		return 0, int16(StatusBadVirtAddr), nil
	}
	if g := f.granter; g != nil {
		off := int(ref) * entrySize
		fl := g.entries.Load16(off)
		if fl&GTFTypeMask != GTFPermitAccess {
			return 0, int16(StatusPermissionDenied), nil
		}
		g.entries.Store16(off, fl|GTFReading|GTFWriting)
	}
	f.maps[hostAddr] = ref
	return uint32(hostAddr / PageSize), 0, nil
}

func (f *fakeOps) UnmapGrantRef(hostAddr uint64, handle uint32) (int16, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.unmapSt != 0 {
		return f.unmapSt, nil
	}
	ref, ok := f.maps[hostAddr]
	if !ok || handle != uint32(hostAddr/PageSize) {
		return int16(StatusBadHandle), nil
	}
	delete(f.maps, hostAddr)
	if g := f.granter; g != nil {
		off := int(ref) * entrySize
		g.entries.Store16(off, g.entries.Load16(off)&^(GTFReading|GTFWriting))
	}
	return 0, nil
}

var scratch = make([]byte, PageSize)

func (f *fakeOps) Memory(gpa uint64, length int) *shm.Page {
	f.mu.Lock()
	defer f.mu.Unlock()
	if gpa == f.base && length <= len(f.frames) {
		return shm.New(f.frames[:length])
	}
	if _, ok := f.maps[gpa]; ok {
		return shm.New(scratch)
	}
	return nil
}

func TestTableSetup(t *testing.T) {
	ops := newFakeOps()
	ops.max = 2
	tab, err := NewTable(ops, FrontendWindow, 0)
	if err != nil {
		t.Fatal(err)
	}
	if tab.Len() != 2*512 {
		t.Errorf("%d entries, want 1024 (capped at max_nr_frames 2)", tab.Len())
	}
	if len(ops.added) != 2 || ops.added[0] != FrontendWindow/PageSize || ops.added[1] != FrontendWindow/PageSize+1 {
		t.Errorf("frames mapped at gfns %x", ops.added)
	}
	if _, err := NewTable(newFakeOps(), FrontendWindow+1, 1); err == nil {
		t.Error("unaligned window accepted")
	}
	z := newFakeOps()
	z.max = 0
	if _, err := NewTable(z, FrontendWindow, 1); err == nil {
		t.Error("max_nr_frames 0 accepted")
	}
}

func TestGrantEntriesAndReserved(t *testing.T) {
	ops := newFakeOps()
	tab, err := NewTable(ops, FrontendWindow, 1)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[Ref]bool{}
	for i := 0; i < 512-NrReservedEntries; i++ {
		ro := i%2 == 1
		ref, err := tab.Grant(7, uint64(0x1000+i), ro)
		if err != nil {
			t.Fatal(err)
		}
		if ref < NrReservedEntries || seen[ref] {
			t.Fatalf("handed out ref %d (reserved or twice)", ref)
		}
		seen[ref] = true
		e := ops.frames[int(ref)*8:]
		flags := uint16(e[0]) | uint16(e[1])<<8
		want := uint16(GTFPermitAccess)
		if ro {
			want |= GTFReadonly
		}
		if flags != want || uint16(e[2])|uint16(e[3])<<8 != 7 || uint32(e[4])|uint32(e[5])<<8|uint32(e[6])<<16|uint32(e[7])<<24 != uint32(0x1000+i) {
			t.Fatalf("entry %d = % x", ref, e[:8])
		}
	}
	if _, err := tab.Grant(7, 1, false); !errors.Is(err, ErrNoRefs) {
		t.Fatalf("grant beyond the table: %v", err)
	}
	for r := Ref(0); r < NrReservedEntries; r++ {
		if tab.Flags(r) != 0 {
			t.Errorf("reserved entry %d touched", r)
		}
	}
	if _, err := tab.Grant(7, 1<<32, false); err == nil {
		t.Error("frame above 32 bits accepted")
	}
	if err := tab.EndAccess(3); err == nil {
		t.Error("EndAccess of a reserved entry accepted")
	}
	if err := tab.EndAccess(100000); err == nil {
		t.Error("EndAccess of an out-of-range ref accepted")
	}
}

func TestEndAccessRefusesWhileMapped(t *testing.T) {
	ops := newFakeOps()
	tab, err := NewTable(ops, FrontendWindow, 1)
	if err != nil {
		t.Fatal(err)
	}
	ops.granter = tab
	ref, _ := tab.Grant(1, 0x42, false)
	m, err := NewMapper(ops, BackendWindow, 4)
	if err != nil {
		t.Fatal(err)
	}
	mp, err := m.Map(0, ref, false)
	if err != nil {
		t.Fatal(err)
	}
	if err := tab.EndAccess(ref); !errors.Is(err, ErrInUse) {
		t.Fatalf("EndAccess while mapped: %v", err)
	}
	if tab.Flags(ref)&GTFPermitAccess == 0 {
		t.Fatal("refused EndAccess still cleared the entry")
	}
	if err := m.Unmap(mp); err != nil {
		t.Fatal(err)
	}
	if err := tab.EndAccess(ref); err != nil {
		t.Fatalf("EndAccess after unmap: %v", err)
	}
	if tab.Flags(ref) != GTFInvalid {
		t.Fatalf("flags %#x after EndAccess", tab.Flags(ref))
	}
	if err := tab.EndAccess(ref); err == nil {
		t.Fatal("double EndAccess accepted")
	}
	// The reference is reusable.
	if r2, err := tab.Grant(1, 0x43, false); err != nil || r2 != ref {
		t.Fatalf("regrant = %d, %v; want %d", r2, err, ref)
	}
}

func TestNewPage(t *testing.T) {
	for i := 0; i < 20; i++ {
		p := NewPage()
		if p.Addr()%PageSize != 0 || p.Mem.Len() != PageSize {
			t.Fatalf("page at %#x, %d bytes", p.Addr(), p.Mem.Len())
		}
		if p.GFN != p.Addr()/PageSize {
			t.Fatal("GFN")
		}
		for _, b := range p.Mem.Bytes() {
			if b != 0 {
				t.Fatal("page not zeroed")
			}
		}
	}
}

func TestMapperCapacity(t *testing.T) {
	ops := newFakeOps()
	m, err := NewMapper(ops, BackendWindow, 0)
	if err != nil {
		t.Fatal(err)
	}
	if m.Cap() != 4096 {
		t.Fatalf("default capacity %d", m.Cap())
	}
	var maps []*Mapping
	addrs := map[uint64]bool{}
	for i := 0; i < 4096; i++ {
		mp, err := m.Map(uint16(i%50+1), Ref(8+i), false)
		if err != nil {
			t.Fatalf("mapping %d: %v", i, err)
		}
		if mp.Addr() < BackendWindow || mp.Addr() >= BackendWindow+4096*PageSize || addrs[mp.Addr()] {
			t.Fatalf("mapping %d at %#x", i, mp.Addr())
		}
		addrs[mp.Addr()] = true
		maps = append(maps, mp)
	}
	if m.Live() != 4096 {
		t.Fatalf("Live %d", m.Live())
	}
	if _, err := m.Map(1, 9, false); !errors.Is(err, ErrNoSlots) {
		t.Fatalf("4097th mapping: %v", err)
	}
	for _, mp := range maps {
		if err := m.Unmap(mp); err != nil {
			t.Fatal(err)
		}
	}
	if m.Live() != 0 || len(ops.maps) != 0 {
		t.Fatalf("Live %d, hypervisor maps %d after unmapping all", m.Live(), len(ops.maps))
	}
	if err := m.Unmap(maps[0]); err == nil {
		t.Fatal("double unmap accepted")
	}
	if err := m.Unmap(nil); err == nil {
		t.Fatal("nil unmap accepted")
	}
}

func TestMapErrors(t *testing.T) {
	for code, want := range map[Status]error{
		StatusGeneralError: ErrGeneral, StatusBadDomain: ErrBadDomain, StatusBadGntref: ErrBadGntref,
		StatusBadHandle: ErrBadHandle, StatusBadVirtAddr: ErrBadVirtAddr, StatusBadDevAddr: ErrBadDevAddr,
		StatusNoDeviceSpace: ErrNoDeviceSpace, StatusPermissionDenied: ErrPermissionDenied,
		StatusBadPage: ErrBadPage, StatusBadCopyArg: ErrBadCopyArg, StatusAddressTooBig: ErrAddressTooBig,
		StatusNoSpace: ErrNoSpace,
	} {
		ops := newFakeOps()
		ops.status = []int16{int16(code)}
		m, _ := NewMapper(ops, BackendWindow, 2)
		_, err := m.Map(3, 10, true)
		if !errors.Is(err, want) {
			t.Errorf("status %d: %v, want %v", code, err, want)
		}
		if m.Live() != 0 {
			t.Errorf("status %d: failed map holds a slot", code)
		}
	}
	if err := Status(-99).Err(); !errors.Is(err, ErrGeneral) {
		t.Errorf("unknown status: %v", err)
	}
	if StatusOkay.Err() != nil || StatusOkay.String() != "GNTST_okay" {
		t.Error("okay status")
	}
	ops := newFakeOps()
	ops.mapErr = fmt.Errorf("EFAULT")
	m, _ := NewMapper(ops, BackendWindow, 2)
	if _, err := m.Map(3, 10, false); err == nil || m.Live() != 0 {
		t.Errorf("hypercall failure: %v, live %d", err, m.Live())
	}
}

func TestMapRetriesEagain(t *testing.T) {
	ops := newFakeOps()
	ops.status = []int16{int16(StatusEagain), int16(StatusEagain)}
	m, _ := NewMapper(ops, BackendWindow, 2)
	if _, err := m.Map(3, 10, false); err != nil {
		t.Fatal(err)
	}
	if ops.mapCalls != 3 {
		t.Errorf("%d map calls, want 3", ops.mapCalls)
	}
	ops.status = make([]int16, eagainRetries+1)
	for i := range ops.status {
		ops.status[i] = int16(StatusEagain)
	}
	if _, err := m.Map(3, 11, false); !errors.Is(err, ErrEagain) {
		t.Errorf("persistent eagain: %v", err)
	}
}

func TestUnmapFailureKeepsSlot(t *testing.T) {
	ops := newFakeOps()
	m, _ := NewMapper(ops, BackendWindow, 1)
	mp, err := m.Map(3, 10, false)
	if err != nil {
		t.Fatal(err)
	}
	ops.unmapSt = int16(StatusGeneralError)
	if err := m.Unmap(mp); !errors.Is(err, ErrGeneral) {
		t.Fatalf("unmap failure: %v", err)
	}
	if m.Live() != 1 {
		t.Fatal("slot released although Xen kept the mapping")
	}
	if _, err := m.Map(3, 11, false); !errors.Is(err, ErrNoSlots) {
		t.Fatalf("slot reused while still mapped: %v", err)
	}
	ops.unmapSt = 0
	if err := m.Unmap(mp); err != nil {
		t.Fatalf("retried unmap: %v", err)
	}
	if m.Live() != 0 {
		t.Fatal("slot not released")
	}
}

func BenchmarkMapUnmap(b *testing.B) {
	ops := newFakeOps()
	m, _ := NewMapper(ops, BackendWindow, 0)
	b.ReportAllocs()
	for b.Loop() {
		mp, err := m.Map(3, 10, false)
		if err != nil {
			b.Fatal(err)
		}
		if err := m.Unmap(mp); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkMap4096 fills the whole window and empties it again.
func BenchmarkMap4096(b *testing.B) {
	ops := newFakeOps()
	m, _ := NewMapper(ops, BackendWindow, 4096)
	maps := make([]*Mapping, 4096)
	for b.Loop() {
		for i := range maps {
			mp, err := m.Map(3, Ref(8+i), false)
			if err != nil {
				b.Fatal(err)
			}
			maps[i] = mp
		}
		if m.Live() != 4096 {
			b.Fatal("live count")
		}
		for _, mp := range maps {
			m.Unmap(mp)
		}
	}
	b.ReportMetric(4096, "mappings")
}

func BenchmarkGrantEndAccess(b *testing.B) {
	tab, _ := NewTable(newFakeOps(), FrontendWindow, 1)
	for b.Loop() {
		r, err := tab.Grant(1, 5, false)
		if err != nil {
			b.Fatal(err)
		}
		if err := tab.EndAccess(r); err != nil {
			b.Fatal(err)
		}
	}
}
