package tpmback_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/xenvtpm/xenvtpm/drivers/tpmback"
	"github.com/xenvtpm/xenvtpm/grant"
	"github.com/xenvtpm/xenvtpm/ring"
	"github.com/xenvtpm/xenvtpm/xenbus"
)

func TestNewChecksConfig(t *testing.T) {
	if _, err := tpmback.New(tpmback.Config{}); err == nil {
		t.Fatal("empty Config accepted")
	}
}

func TestLinuxFrontend(t *testing.T) {
	e := newEnv(t, 0)
	var got struct {
		sync.Mutex
		uuid string
		loc  uint8
	}
	e.setHandler(func(fe *tpmback.Frontend, loc uint8, cmd []byte) []byte {
		got.Lock()
		got.uuid, got.loc = fe.UUID, loc
		got.Unlock()
		return echo(fe, loc, cmd)
	})
	d, p := e.addDevice(5)
	// libxl waits for InitWait before the guest's driver does anything.
	e.waitState(p.Backend, xenbus.StateInitWait)
	if v, _ := e.x.Store.Get(p.Backend + "/feature-protocol-v2"); v != "1" {
		t.Errorf("backend feature-protocol-v2 = %q before the frontend connects", v)
	}
	f := newRawFront(e, d, p)
	f.linuxSetup()
	e.waitState(p.Backend, xenbus.StateConnected)
	if v, _ := e.x.Store.Get(p.Backend + "/ready"); v != "1" {
		t.Errorf("ready = %q", v)
	}
	eventually(t, "attach line logged", func() bool { return e.log.hasInfo("VTPM attached to Frontend 5/0") })
	for i := 0; i < 20; i++ {
		cmd := []byte(fmt.Sprintf("command %d", i))
		if rsp := f.transact(0, cmd); string(rsp) != "rsp:"+string(cmd) {
			t.Fatalf("response %q to %q", rsp, cmd)
		}
	}
	got.Lock()
	if got.uuid != testUUID(5) || got.loc != 0 {
		t.Errorf("handler saw uuid %q locality %d", got.uuid, got.loc)
	}
	got.Unlock()
	if e.be.Mapper.Live() != 1 || e.reported.Load() != 1 {
		t.Errorf("%d live mappings, %d reported, want 1", e.be.Mapper.Live(), e.reported.Load())
	}
	// While mapped, the frontend cannot take its page back.
	if err := d.Grants.EndAccess(f.ref); !errors.Is(err, grant.ErrInUse) {
		t.Errorf("EndAccess while mapped: %v", err)
	}

	// Linux's remove: Closing, Closed; the backend must return to InitWait
	// with nothing mapped.
	f.setState(xenbus.StateClosing)
	e.waitState(p.Backend, xenbus.StateClosing)
	f.setState(xenbus.StateClosed)
	e.waitState(p.Backend, xenbus.StateInitWait)
	eventually(t, "unmap after close", func() bool { return e.be.Mapper.Live() == 0 && e.be.Mapped() == 0 && e.reported.Load() == 0 })
	if err := d.Grants.EndAccess(f.ref); err != nil {
		t.Errorf("EndAccess after the backend unmapped: %v", err)
	}
	f.ch.Close()

	// A reboot: the same device connects again.
	f2 := newRawFront(e, d, p)
	f2.setState(xenbus.StateInitialising)
	f2.linuxSetup()
	e.waitState(p.Backend, xenbus.StateConnected)
	if rsp := f2.transact(0, []byte("again")); string(rsp) != "rsp:again" {
		t.Fatalf("after reconnect: %q", rsp)
	}
}

func TestMiniosFrontend(t *testing.T) {
	e := newEnv(t, 0)
	locs := make(chan uint8, 1)
	e.setHandler(func(fe *tpmback.Frontend, loc uint8, cmd []byte) []byte {
		locs <- loc
		return echo(fe, loc, cmd)
	})
	d, p := e.addDevice(7)
	e.waitState(p.Backend, xenbus.StateInitWait)
	f := newRawFront(e, d, p)
	f.miniosSetup() // straight to Connected
	e.waitState(p.Backend, xenbus.StateConnected)
	if rsp := f.transact(3, []byte("hello")); string(rsp) != "rsp:hello" {
		t.Fatalf("response %q", rsp)
	}
	if l := <-locs; l != 3 {
		t.Errorf("handler saw locality %d, want 3", l)
	}
	// mini-os shutdown: Closing, rm keys, Closed, wait for Closed/InitWait.
	f.setState(xenbus.StateClosing)
	f.d.Store.Rm(f.ctx, p.Frontend+"/event-channel")
	f.d.Store.Rm(f.ctx, p.Frontend+"/ring-ref")
	f.setState(xenbus.StateClosed)
	e.waitState(p.Backend, xenbus.StateClosed, xenbus.StateInitWait)
	f.setState(xenbus.StateInitialising)
	eventually(t, "unmap after close", func() bool { return e.be.Mapper.Live() == 0 })
}

// Frontends that were configured before the backend started are found by
// the walk after the watch is set.
func TestExistingFrontends(t *testing.T) {
	e := newEnv(t, 0)
	e.shutdown()
	d, p := e.addDevice(9)
	f := newRawFront(e, d, p)
	f.linuxSetup()
	e2 := &env{t: t, ctx: e.ctx, x: e.x, be: e.be, log: e.log, handler: echo}
	b, err := tpmback.New(tpmback.Config{Store: e.be.Store, Grants: e.be.Mapper, Events: e.be.Events, Log: e.log, Handler: echo})
	if err != nil {
		t.Fatal(err)
	}
	e2.b = b
	ctx, cancel := testCtxCancel(e.ctx)
	e2.stop, e2.ran = cancel, make(chan error, 1)
	go func() { e2.ran <- b.Run(ctx) }()
	t.Cleanup(e2.shutdown)
	e2.waitState(p.Backend, xenbus.StateConnected)
	if rsp := f.transact(0, []byte("x")); string(rsp) != "rsp:x" {
		t.Fatalf("response %q", rsp)
	}
	if fs := b.Frontends(); len(fs) != 1 || fs[0].Domid != 9 || fs[0].UUID != testUUID(9) {
		t.Errorf("Frontends() = %+v", fs)
	}
}

func TestSeveralFrontends(t *testing.T) {
	e := newEnv(t, 0)
	const n = 6
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		d, p := e.addDevice(uint16(10 + i))
		f := newRawFront(e, d, p)
		if i%2 == 0 {
			f.linuxSetup()
		} else {
			f.miniosSetup()
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			e.waitState(p.Backend, xenbus.StateConnected)
			for j := 0; j < 30; j++ {
				cmd := []byte(fmt.Sprintf("%d:%d", d.ID, j))
				if rsp := f.transact(0, cmd); string(rsp) != "rsp:"+string(cmd) {
					t.Errorf("frontend %d: %q for %q", d.ID, rsp, cmd)
					return
				}
			}
		}()
	}
	wg.Wait()
	if e.be.Mapper.Live() != n {
		t.Errorf("%d live mappings, want %d", e.be.Mapper.Live(), n)
	}
}

func tpm2Cmd() []byte {
	// TPM2_GetRandom(8).
	return []byte{0x80, 0x01, 0, 0, 0, 12, 0, 0, 1, 0x7b, 0, 8}
}

func checkErrorResponse(t *testing.T, rsp []byte, tag uint16, rc uint32) {
	t.Helper()
	if len(rsp) != 10 || binary.BigEndian.Uint16(rsp) != tag || binary.BigEndian.Uint32(rsp[2:]) != 10 || binary.BigEndian.Uint32(rsp[6:]) != rc {
		t.Fatalf("response % x, want a 10-byte error with tag %#x rc %#x", rsp, tag, rc)
	}
}

func TestOversizedResponse(t *testing.T) {
	e := newEnv(t, 0)
	e.setHandler(func(fe *tpmback.Frontend, loc uint8, cmd []byte) []byte {
		if bytes.Equal(cmd, []byte("fits")) {
			return make([]byte, ring.MaxData)
		}
		return make([]byte, ring.MaxData+1)
	})
	d, p := e.addDevice(5)
	f := newRawFront(e, d, p)
	f.linuxSetup()
	e.waitState(p.Backend, xenbus.StateConnected)
	checkErrorResponse(t, f.transact(0, tpm2Cmd()), 0x8001, 0x101)
	checkErrorResponse(t, f.transact(0, []byte{0, 0xc1, 0, 0, 0, 10, 0, 0, 0, 0x46}), 0x00c4, 9)
	if rsp := f.transact(0, []byte("fits")); len(rsp) != ring.MaxData {
		t.Fatalf("4088-byte response came back as %d bytes", len(rsp))
	}
	if !e.log.hasError("does not fit") {
		t.Error("oversized response not logged")
	}
}

func TestNilResponse(t *testing.T) {
	e := newEnv(t, 0)
	e.setHandler(func(*tpmback.Frontend, uint8, []byte) []byte { return nil })
	d, p := e.addDevice(5)
	f := newRawFront(e, d, p)
	f.linuxSetup()
	e.waitState(p.Backend, xenbus.StateConnected)
	checkErrorResponse(t, f.transact(0, tpm2Cmd()), 0x8001, 0x101)
}

func TestErrorResponse(t *testing.T) {
	checkErrorResponse(t, tpmback.ErrorResponse([]byte{0x80, 0x02}), 0x8001, 0x101)
	checkErrorResponse(t, tpmback.ErrorResponse(nil), 0x00c4, 9)
	checkErrorResponse(t, tpmback.ErrorResponse([]byte{0x00, 0xc2, 1}), 0x00c4, 9)
}

func TestValidUUID(t *testing.T) {
	for s, want := range map[string]bool{
		testUUID(1):                             true,
		"6A4C0F4E-7C8D-4B9A-9E2F-0123456789AB":  true,
		"6a4c0f4e7c8d4b9a9e2f0123456789ab":      false,
		"6a4c0f4e-7c8d-4b9a-9e2f-0123456789ag":  false,
		"6a4c0f4e-7c8d-4b9a-9e2f-0123456789abc": false,
		"6a4c0f4e-7c8d-4b9a-9e2f+0123456789ab":  false,
		"":                                      false,
	} {
		if tpmback.ValidUUID(s) != want {
			t.Errorf("ValidUUID(%q) = %v", s, !want)
		}
	}
}

// `xl vtpm-detach` then `xl vtpm-attach` while a Linux-style frontend is
// connected: the backend closes, removes its directory as libxl expects of
// a driver domain, keeps no mapping, and serves the re-attached device.
func TestToolstackDetachAttach(t *testing.T) {
	e := newEnv(t, 0)
	detachAttach(t, e, goodNeighbour(e, 20))
}

// What xenstored's dropped watch events would have said reaches the
// backend by its rescan: a device added, its frontend connecting, the
// device detached and attached again, all while every watch event for the
// backend's domain is dropped.
func TestDroppedWatchEvents(t *testing.T) {
	e := newEnvRescan(t, 0, nil, 100*time.Millisecond)
	good := goodNeighbour(e, 20)
	e.x.Store.DropWatchEvents(beDom, true)
	detachAttach(t, e, good)
	if !e.log.hasInfo("which no watch event said") {
		t.Error("the rescan's findings were not logged")
	}
}

// detachAttach serves a device of domain 5, detaches it as libxl does,
// attaches it again and serves it, while good goes on being served.
func detachAttach(t *testing.T, e *env, good *rawFront) {
	t.Helper()
	d, p := e.addDevice(5)
	e.waitState(p.Backend, xenbus.StateInitWait)
	f := newRawFront(e, d, p)
	f.linuxSetup()
	e.waitState(p.Backend, xenbus.StateConnected)
	checkServed(t, f)

	ok, err := e.x.DetachVTPM(e.ctx, p)
	if err != nil || !ok {
		t.Fatalf("detach: cooperated %v, %v", ok, err)
	}
	eventually(t, "unmap after detach", func() bool { return e.be.Mapper.Live() == 1 && e.be.Mapped() == 1 })
	eventually(t, "detach line logged", func() bool { return e.log.hasInfo("VTPM detached from Frontend 5/0") })
	eventually(t, "instance gone", func() bool { return len(e.b.Frontends()) == 1 })
	f.ch.Close()

	if _, err := e.x.AddVTPM(e.ctx, beDom, 5, 0, testUUID(5)); err != nil {
		t.Fatal(err)
	}
	e.waitState(p.Backend, xenbus.StateInitWait)
	f2 := newRawFront(e, d, p)
	f2.linuxSetup()
	e.waitState(p.Backend, xenbus.StateConnected)
	checkServed(t, f2)
	checkServed(t, good)
}

// A backend domain at xenstored's watch quota cannot follow another
// frontend: that frontend's backend says Closed at once, and the log names
// the quota, while the frontends already served go on.
func TestWatchQuota(t *testing.T) {
	e := newEnv(t, 0)
	// The backend directory's watch and one frontend's.
	e.x.Store.SetMaxWatches(2)
	d, p := e.addDevice(10)
	f := newRawFront(e, d, p)
	f.linuxSetup()
	e.waitState(p.Backend, xenbus.StateConnected)

	_, p2 := e.addDevice(11)
	e.waitState(p2.Backend, xenbus.StateClosed)
	if !e.log.hasError("quota of watches") {
		t.Errorf("no error naming the watch quota; errors: %v", e.log.errs)
	}
	cmd := []byte("still served")
	if rsp := f.transact(0, cmd); string(rsp) != "rsp:"+string(cmd) {
		t.Errorf("first frontend: %q for %q", rsp, cmd)
	}
}
