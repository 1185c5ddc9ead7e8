package evtchn

import (
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/xenvtpm/xenvtpm/board/xen/shm"
)

// fakeXen plays the hypervisor's side of the 2-level ABI on a plain page.
type fakeXen struct {
	si     *shm.Page
	mu     sync.Mutex
	next   Port
	sent   []Port
	closed []Port
}

func (f *fakeXen) raise(p Port) {
	w, b := int(p/64), uint(p%64)
	f.si.Or64(pendingBase+8*w, 1<<b)
	if f.si.Load64(maskBase+8*w)&(1<<b) == 0 {
		f.si.Or64(pendingSel, 1<<uint(w))
		f.si.Store8(upcallPending, 1)
	}
}

func (f *fakeXen) alloc() Port {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.next++
	return f.next
}
func (f *fakeXen) AllocUnbound(uint16) (Port, error)          { return f.alloc(), nil }
func (f *fakeXen) BindInterdomain(uint16, Port) (Port, error) { return f.alloc(), nil }
func (f *fakeXen) BindVIRQ(uint32, uint32) (Port, error)      { return f.alloc(), nil }
func (f *fakeXen) Send(p Port) error {
	f.mu.Lock()
	f.sent = append(f.sent, p)
	f.mu.Unlock()
	return nil
}
func (f *fakeXen) Close(p Port) error {
	f.mu.Lock()
	f.closed = append(f.closed, p)
	f.mu.Unlock()
	return nil
}
func (f *fakeXen) Unmask(p Port) error {
	w, b := int(p/64), uint(p%64)
	f.si.And64(maskBase+8*w, ^(uint64(1) << b))
	return nil
}

func newMux(t testing.TB) (*Mux, *fakeXen) {
	si := shm.New(make([]byte, 4096))
	// Xen starts with every port masked.
	for w := 0; w < 64; w++ {
		si.Store64(maskBase+8*w, ^uint64(0))
	}
	f := &fakeXen{si: si}
	m, err := NewMux(si, f)
	if err != nil {
		t.Fatal(err)
	}
	return m, f
}

func TestDemuxDeliversEachPort(t *testing.T) {
	m, f := newMux(t)
	a, err := m.AllocUnbound(0)
	if err != nil {
		t.Fatal(err)
	}
	// A port in a higher selector word.
	var b *Channel
	for b == nil || b.Port < 130 {
		if b, err = m.AllocUnbound(0); err != nil {
			t.Fatal(err)
		}
	}
	f.raise(a.Port)
	f.raise(b.Port)
	f.raise(b.Port) // coalesces with the previous one in Xen's bitmap
	if n := m.Demux(); n != 2 {
		t.Fatalf("Demux found %d events, want 2", n)
	}
	for _, c := range []*Channel{a, b} {
		select {
		case <-c.C:
		default:
			t.Fatalf("port %d got no signal", c.Port)
		}
		if c.Count() != 1 {
			t.Fatalf("port %d count %d", c.Port, c.Count())
		}
	}
	if f.si.Load8(upcallPending) != 0 || f.si.Load64(pendingSel) != 0 {
		t.Fatal("Demux left upcall_pending or the selector set")
	}
}

func TestSignalsCoalesceButCountsDoNotLose(t *testing.T) {
	m, f := newMux(t)
	c, _ := m.AllocUnbound(0)
	for i := 0; i < 5; i++ {
		f.raise(c.Port)
		m.Demux()
	}
	if c.Count() != 5 {
		t.Fatalf("count %d, want 5", c.Count())
	}
	<-c.C
	select {
	case <-c.C:
		t.Fatal("more than one buffered signal")
	default:
	}
}

func TestMaskedAndStrayPorts(t *testing.T) {
	m, f := newMux(t)
	// Port 7 is unbound: pending but masked, it must not be delivered.
	f.raise(7)
	if n := m.Demux(); n != 0 {
		t.Fatalf("masked port delivered: %d", n)
	}
	f.Unmask(7)
	f.si.Or64(pendingSel, 1)
	if n := m.Demux(); n != 1 || m.Stray.Load() != 1 {
		t.Fatalf("stray event: n=%d stray=%d", n, m.Stray.Load())
	}
}

func TestBindErrors(t *testing.T) {
	m, _ := newMux(t)
	if _, err := m.Bind(0); err == nil {
		t.Fatal("port 0 accepted")
	}
	if _, err := m.Bind(NumPorts); err == nil {
		t.Fatal("port beyond the 2-level ABI accepted")
	}
	c, _ := m.Bind(5)
	if _, err := m.Bind(5); err == nil {
		t.Fatal("double bind accepted")
	}
	if err := c.Notify(); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Bind(5); err != nil {
		t.Fatalf("rebind after close: %v", err)
	}
}

type failingOps struct{ fakeXen }

func (f *failingOps) Unmask(Port) error { return errors.New("boom") }

func TestBindUnmaskFailureClosesPort(t *testing.T) {
	si := shm.New(make([]byte, 4096))
	f := &failingOps{fakeXen{si: si}}
	m, _ := NewMux(si, f)
	if _, err := m.AllocUnbound(0); err == nil {
		t.Fatal("unmask failure not reported")
	}
	if len(f.closed) != 1 {
		t.Fatalf("port not closed after failed bind: %v", f.closed)
	}
}

func TestConcurrentRaiseAndDemux(t *testing.T) {
	m, f := newMux(t)
	c, _ := m.AllocUnbound(0)
	const N = 2000
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; i < N; i++ {
			f.raise(c.Port)
			m.Demux()
		}
	}()
	got := 0
	for got < N && c.Count() < N {
		<-c.C
		got++
	}
	wg.Wait()
	if c.Count() != N {
		t.Fatalf("count %d, want %d", c.Count(), N)
	}
}

func TestMaskHoldsEventsUntilUnmask(t *testing.T) {
	m, f := newMux(t)
	c, _ := m.AllocUnbound(0)
	c.Mask()
	f.raise(c.Port)
	if n := m.Demux(); n != 0 || c.Count() != 0 {
		t.Fatalf("masked port delivered (n=%d count=%d)", n, c.Count())
	}
	if err := c.Unmask(); err != nil {
		t.Fatal(err)
	}
	// Xen's unmask re-raises a pending event; the fake only clears the mask,
	// so raise the selector as Xen would.
	f.si.Or64(pendingSel, 1<<(uint(c.Port)/64))
	if n := m.Demux(); n != 1 || c.Count() != 1 {
		t.Fatalf("event lost across mask/unmask (n=%d count=%d)", n, c.Count())
	}
}

// A device Mux (a Linux dom0 program) gets its events through Deliver:
// each reaches the bound channel, coalescing while the consumer is busy,
// and an event on an unbound port is counted as stray.
func TestDeviceMuxDeliver(t *testing.T) {
	f := &fakeXen{si: shm.New(make([]byte, 4096))}
	m := NewDeviceMux(f)
	c, err := m.AllocUnbound(5)
	if err != nil {
		t.Fatal(err)
	}
	if n := m.Demux(); n != 0 {
		t.Fatalf("Demux on a device Mux found %d events", n)
	}
	m.Deliver(c.Port)
	m.Deliver(c.Port)
	select {
	case <-c.C:
	default:
		t.Fatal("delivered event did not signal the channel")
	}
	select {
	case <-c.C:
		t.Fatal("two events before the consumer ran gave two signals")
	default:
	}
	if c.Count() != 2 {
		t.Fatalf("Count = %d, want 2", c.Count())
	}
	m.Deliver(c.Port + 100)
	if m.Stray.Load() != 1 {
		t.Fatalf("Stray = %d, want 1", m.Stray.Load())
	}
	c.Mask() // no shared_info: must not touch memory
	if err := c.Notify(); err != nil || len(f.sent) != 1 || f.sent[0] != c.Port {
		t.Fatalf("Notify: %v, sent %v", err, f.sent)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	m.Deliver(c.Port)
	if m.Stray.Load() != 2 {
		t.Fatalf("an event after Close was not stray")
	}
}

// The idle hook names every bound port to SCHEDOP_poll: all of them when
// they fit, and the true count when they do not.
func TestPorts(t *testing.T) {
	m, _ := newMux(t)
	want := map[uint32]bool{}
	for i := 0; i < 5; i++ {
		c, err := m.AllocUnbound(0)
		if err != nil {
			t.Fatal(err)
		}
		want[uint32(c.Port)] = true
	}
	buf := make([]uint32, 8)
	n := m.Ports(buf)
	if n != 5 {
		t.Fatalf("Ports = %d, want 5", n)
	}
	for _, p := range buf[:n] {
		if !want[p] {
			t.Fatalf("Ports listed %d, not bound", p)
		}
		delete(want, p)
	}
	if len(want) != 0 {
		t.Fatalf("Ports missed %v", want)
	}
	if n := m.Ports(buf[:2]); n != 5 {
		t.Fatalf("Ports with room for 2 = %d, want the true count 5", n)
	}
	if allocs := testing.AllocsPerRun(10, func() { m.Ports(buf) }); allocs != 0 {
		t.Fatalf("Ports allocates (%v per call); the scheduler's idle hook calls it", allocs)
	}
}

// BenchmarkPorts is what the PVH board's idle loop pays per poll to name
// the bound ports to SCHEDOP_poll: 3 ports is a vTPM domain, 128 the most
// one poll can name (a manager with ~127 vTPMs).
func BenchmarkPorts(b *testing.B) {
	for _, n := range []int{3, 128} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			m, _ := newMux(b)
			for range n {
				if _, err := m.AllocUnbound(0); err != nil {
					b.Fatal(err)
				}
			}
			buf := make([]uint32, 128)
			b.ReportAllocs()
			for b.Loop() {
				m.Ports(buf)
			}
		})
	}
}
