package tpmback_test

import (
	"encoding/binary"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/xenvtpm/xenvtpm/drivers/tpmback"
	"github.com/xenvtpm/xenvtpm/ring"
	"github.com/xenvtpm/xenvtpm/xenbus"
)

// goodNeighbour connects a well-behaved frontend; tests check it keeps
// being served while another misbehaves.
func goodNeighbour(e *env, dom uint16) *rawFront {
	e.t.Helper()
	d, p := e.addDevice(dom)
	f := newRawFront(e, d, p)
	f.linuxSetup()
	e.waitState(p.Backend, xenbus.StateConnected)
	return f
}

func checkServed(t *testing.T, f *rawFront) {
	t.Helper()
	if rsp := f.transact(0, []byte("ok?")); string(rsp) != "rsp:ok?" {
		t.Fatalf("good frontend got %q", rsp)
	}
}

func TestHostileLength(t *testing.T) {
	e := newEnv(t, 0)
	good := goodNeighbour(e, 20)
	d, p := e.addDevice(21)
	f := newRawFront(e, d, p)
	f.linuxSetup()
	e.waitState(p.Backend, xenbus.StateConnected)
	for _, tc := range []struct {
		nrExtra uint8
		length  uint32
	}{{0, ring.MaxData + 1}, {0, 0xffffffff}, {255, 3100}} {
		b := f.page.Mem.Bytes()
		copy(b[8:], tpm2Cmd())
		f.page.Mem.Store8(7, tc.nrExtra)
		f.page.Mem.Store32(0, tc.length)
		f.page.Mem.Store8(4, uint8(ring.StateSubmit))
		f.notify()
		if s := f.waitDone(); s != ring.StateFinish {
			t.Fatalf("length %d: backend answered %v", tc.length, s)
		}
		off := 8 + 4*int(tc.nrExtra)
		if n := f.page.Mem.Load32(0); n != 10 {
			t.Fatalf("error response length %d", n)
		}
		if rc := binary.BigEndian.Uint32(b[off+6:]); rc == 0 {
			t.Fatalf("error response carries rc 0: % x", b[off:off+10])
		}
		checkServed(t, good)
	}
	if !e.log.hasError("overruns") {
		t.Error("bad length not logged")
	}
	// The hostile frontend may still send a proper command afterwards.
	f.page.Mem.Store8(7, 0)
	checkServed(t, f)
}

func TestEventFlood(t *testing.T) {
	e := newEnv(t, 0)
	good := goodNeighbour(e, 20)
	d, p := e.addDevice(21)
	f := newRawFront(e, d, p)
	f.linuxSetup()
	e.waitState(p.Backend, xenbus.StateConnected)
	checkServed(t, f) // the page now says FINISH
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; i < 20000; i++ {
			f.ch.Notify()
		}
	}()
	for i := 0; i < 20; i++ {
		checkServed(t, good)
	}
	<-done
	checkServed(t, f)
}

// Invalid state byte values and a CANCEL with no command running.
func TestStatesOutOfOrder(t *testing.T) {
	e := newEnv(t, 0)
	good := goodNeighbour(e, 20)
	d, p := e.addDevice(21)
	f := newRawFront(e, d, p)
	f.linuxSetup()
	e.waitState(p.Backend, xenbus.StateConnected)

	f.page.Mem.Store8(4, 77)
	f.notify()
	if s := f.waitDone(); s != ring.StateIdle {
		t.Fatalf("invalid state answered with %v", s)
	}
	// SUBMIT then CANCEL before the backend looked: the command must not
	// run, and the backend acknowledges with IDLE.
	ran := make(chan []byte, 10)
	e.setHandler(func(fe *tpmback.Frontend, loc uint8, cmd []byte) []byte {
		ran <- cmd
		return echo(fe, loc, cmd)
	})
	f.r.Submit(0, []byte("never"))
	f.r.Cancel()
	f.notify()
	if s := f.waitDone(); s != ring.StateIdle {
		t.Fatalf("cancel answered with %v", s)
	}
	select {
	case c := <-ran:
		t.Fatalf("cancelled command %q ran", c)
	default:
	}
	// Frontend states out of order: Connected again, Initialised again,
	// Reconfiguring; the connection survives.
	for _, s := range []xenbus.State{xenbus.StateConnected, xenbus.StateInitialised, xenbus.StateReconfiguring, xenbus.StateConnected} {
		f.setState(s)
	}
	checkServed(t, f)
	checkServed(t, good)
}

// A cancel while the command runs: the command completes (FINISH), which
// Linux accepts as done, and the frontend can send again.
func TestCancelMidCommand(t *testing.T) {
	e := newEnv(t, 0)
	release := make(chan struct{})
	started := make(chan struct{}, 1)
	e.setHandler(func(fe *tpmback.Frontend, loc uint8, cmd []byte) []byte {
		if string(cmd) == "slow" {
			started <- struct{}{}
			<-release
		}
		return echo(fe, loc, cmd)
	})
	good := goodNeighbour(e, 20)
	d, p := e.addDevice(21)
	f := newRawFront(e, d, p)
	f.linuxSetup()
	e.waitState(p.Backend, xenbus.StateConnected)
	f.r.Submit(0, []byte("slow"))
	f.notify()
	<-started
	f.r.Cancel()
	f.notify()
	checkServed(t, good) // one frontend's slow command blocks no other
	close(release)
	if s := f.waitDone(); s != ring.StateFinish {
		t.Fatalf("cancelled running command ended with %v", s)
	}
	checkServed(t, f)
}

func TestNeverInitialised(t *testing.T) {
	e := newEnv(t, 0)
	_, p := e.addDevice(21)
	e.waitState(p.Backend, xenbus.StateInitWait)
	good := goodNeighbour(e, 20)
	checkServed(t, good)
	if e.be.Mapper.Live() != 1 {
		t.Errorf("%d live mappings, want 1", e.be.Mapper.Live())
	}
	// Detached without ever connecting.
	if err := e.x.RemoveVTPM(e.ctx, p); err != nil {
		t.Fatal(err)
	}
	eventually(t, "instance removed", func() bool { return len(e.b.Frontends()) == 1 })
	checkServed(t, good)
}

func TestBadUUID(t *testing.T) {
	e := newEnv(t, 0)
	d := e.x.AddDomain(t, 21, 16)
	p, err := e.x.AddVTPM(e.ctx, beDom, 21, 0, "not-a-uuid")
	if err != nil {
		t.Fatal(err)
	}
	_ = d
	e.waitState(p.Backend, xenbus.StateClosed)
	if !e.log.hasError("uuid") {
		t.Error("bad uuid not logged")
	}
	checkServed(t, goodNeighbour(e, 20))
}

func TestNoProtocolV2(t *testing.T) {
	e := newEnv(t, 0)
	d, p := e.addDevice(21)
	f := newRawFront(e, d, p)
	f.d.Store.WriteString(f.ctx, p.Frontend+"/ring-ref", strconv.Itoa(int(f.ref)))
	f.d.Store.WriteString(f.ctx, p.Frontend+"/event-channel", strconv.Itoa(int(f.ch.Port)))
	f.setState(xenbus.StateInitialised)
	e.waitState(p.Backend, xenbus.StateClosing)
	if !e.log.hasError("protocol 2 required") {
		t.Error("missing feature-protocol-v2 not logged")
	}
	if e.be.Mapper.Live() != 0 {
		t.Error("mapped a page of a frontend without protocol v2")
	}
	// The frontend gives up (Closed) and the backend is ready again.
	f.setState(xenbus.StateClosed)
	e.waitState(p.Backend, xenbus.StateInitWait)
}

// The grant is revoked before the backend maps it, and the ring-ref and
// event-channel values are garbage: connecting fails cleanly.
func TestRevokedGrantAndBadKeys(t *testing.T) {
	e := newEnv(t, 0)
	good := goodNeighbour(e, 20)
	d, p := e.addDevice(21)
	f := newRawFront(e, d, p)
	if err := d.Grants.EndAccess(f.ref); err != nil {
		t.Fatal(err)
	}
	f.linuxSetup()
	e.waitState(p.Backend, xenbus.StateClosing)
	if !e.log.hasError("GNTST_permission_denied") {
		t.Error("map failure not logged")
	}
	f.setState(xenbus.StateClosed)
	e.waitState(p.Backend, xenbus.StateInitWait)

	f.d.Store.WriteString(f.ctx, p.Frontend+"/ring-ref", "banana")
	f.setState(xenbus.StateInitialised)
	e.waitState(p.Backend, xenbus.StateClosing)
	f.setState(xenbus.StateClosed)
	e.waitState(p.Backend, xenbus.StateInitWait)

	// A valid grant but an event channel that is not offered to us.
	f2 := newRawFront(e, d, p)
	f2.d.Store.WriteString(f.ctx, p.Frontend+"/event-channel", "4000")
	f2.d.Store.WriteString(f.ctx, p.Frontend+"/ring-ref", strconv.Itoa(int(f2.ref)))
	f2.setState(xenbus.StateInitialised)
	e.waitState(p.Backend, xenbus.StateClosing)
	if e.be.Mapper.Live() != 1 || e.reported.Load() != 1 {
		t.Errorf("%d live mappings, %d reported after failed binds, want 1 (the good frontend)", e.be.Mapper.Live(), e.reported.Load())
	}
	checkServed(t, good)
}

// A guest destroyed mid-command: its directories vanish, the handler
// finishes later, and no mapping or channel is left behind.
func TestDestroyedMidCommand(t *testing.T) {
	e := newEnv(t, 0)
	release := make(chan struct{})
	started := make(chan struct{}, 1)
	e.setHandler(func(fe *tpmback.Frontend, loc uint8, cmd []byte) []byte {
		if string(cmd) == "slow" {
			started <- struct{}{}
			<-release
		}
		return echo(fe, loc, cmd)
	})
	good := goodNeighbour(e, 20)
	d, p := e.addDevice(21)
	f := newRawFront(e, d, p)
	f.linuxSetup()
	e.waitState(p.Backend, xenbus.StateConnected)
	ports := e.be.Ports()
	f.r.Submit(0, []byte("slow"))
	f.notify()
	<-started
	d.Destroy()
	if err := e.x.RemoveVTPM(e.ctx, p); err != nil {
		t.Fatal(err)
	}
	eventually(t, "mapping released", func() bool { return e.be.Mapper.Live() == 1 && e.be.Mapped() == 1 })
	eventually(t, "channel closed", func() bool { return e.be.Ports() == ports-1 })
	close(release)
	checkServed(t, good)
	eventually(t, "instance removed", func() bool { return len(e.b.Frontends()) == 1 })
}

// A frontend that reconnects (a guest rebooting, a kexec) while its last
// command still runs: the old response is dropped, and the first request
// on the new connection is served once that command is done.
func TestReconnectDuringCommand(t *testing.T) {
	e := newEnv(t, 0)
	release := make(chan struct{})
	started := make(chan struct{}, 1)
	e.setHandler(func(fe *tpmback.Frontend, loc uint8, cmd []byte) []byte {
		if string(cmd) == "slow" {
			started <- struct{}{}
			<-release
		}
		return echo(fe, loc, cmd)
	})
	d, p := e.addDevice(21)
	f := newRawFront(e, d, p)
	f.linuxSetup()
	e.waitState(p.Backend, xenbus.StateConnected)
	f.r.Submit(0, []byte("slow"))
	f.notify()
	<-started

	// The guest goes away and comes back with a new page and channel.
	f.setState(xenbus.StateClosed)
	e.waitState(p.Backend, xenbus.StateInitWait)
	f2 := newRawFront(e, d, p)
	f2.setState(xenbus.StateInitialising)
	f2.linuxSetup()
	e.waitState(p.Backend, xenbus.StateConnected)
	if err := f2.r.Submit(0, []byte("after")); err != nil {
		t.Fatal(err)
	}
	f2.notify()
	close(release)
	if s := f2.waitDone(); s != ring.StateFinish {
		t.Fatalf("first request after the reconnect ended with %v", s)
	}
	rsp, err := f2.r.Response(nil)
	if err != nil || string(rsp) != "rsp:after" {
		t.Fatalf("first request after the reconnect answered %q, %v", rsp, err)
	}
	checkServed(t, f2)
}

// fakeClock is a clock tests move by hand.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// Bad requests cost the frontend a log line each only up to a limit; the
// lines after it say how many were held back, and so does the backend
// when the frontend disconnects.
func TestBadRequestLogLimited(t *testing.T) {
	clock := &fakeClock{now: time.Unix(1_700_000_000, 0)}
	e := newEnvClock(t, 0, clock.Now)
	good := goodNeighbour(e, 20)
	d, p := e.addDevice(21)
	f := newRawFront(e, d, p)
	f.linuxSetup()
	e.waitState(p.Backend, xenbus.StateConnected)
	bad := func(n int) {
		t.Helper()
		for i := 0; i < n; i++ {
			f.page.Mem.Store32(0, ring.MaxData+1)
			f.page.Mem.Store8(4, uint8(ring.StateSubmit))
			f.notify()
			if s := f.waitDone(); s != ring.StateFinish {
				t.Fatalf("bad request %d answered with %v", i, s)
			}
		}
	}
	const flood = 50
	bad(flood)
	if n := e.log.countErrors("bad request"); n != tpmback.LogBurst {
		t.Fatalf("%d bad requests logged %d lines, want %d", flood, n, tpmback.LogBurst)
	}
	checkServed(t, good)

	clock.Add(tpmback.LogEvery)
	bad(1)
	if want := fmt.Sprintf("(%d similar messages about this frontend suppressed)", flood-tpmback.LogBurst); e.log.countErrors(want) != 1 {
		t.Fatalf("no line saying %q", want)
	}
	bad(3)
	f.setState(xenbus.StateClosed)
	e.waitState(p.Backend, xenbus.StateInitWait)
	if e.log.countErrors("3 more messages about its requests suppressed") != 1 {
		t.Fatal("the disconnect did not report the 3 suppressed lines")
	}
	if n := e.log.countErrors("bad request"); n != tpmback.LogBurst+1 {
		t.Fatalf("%d bad-request lines in all, want %d", n, tpmback.LogBurst+1)
	}
}
