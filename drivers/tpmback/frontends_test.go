package tpmback_test

import (
	"context"
	"strconv"
	"testing"

	"github.com/xenvtpm/xenvtpm/evtchn"
	"github.com/xenvtpm/xenvtpm/grant"
	"github.com/xenvtpm/xenvtpm/internal/xentest"
	"github.com/xenvtpm/xenvtpm/ring"
	"github.com/xenvtpm/xenvtpm/xenbus"
)

// rawFront is a frontend written out step by step, so tests can do what
// Linux, mini-os or a hostile guest would, including the wrong things.
type rawFront struct {
	t    testing.TB
	ctx  context.Context
	d    *xentest.Domain
	p    xentest.VTPMPaths
	page *grant.Page
	r    *ring.Page
	ref  grant.Ref
	ch   *evtchn.Channel
}

func newRawFront(e *env, d *xentest.Domain, p xentest.VTPMPaths) *rawFront {
	e.t.Helper()
	f := &rawFront{t: e.t, ctx: e.ctx, d: d, p: p, page: d.NewPage()}
	f.r, _ = ring.New(f.page.Mem)
	var err error
	if f.ref, err = d.Grants.Grant(beDom, f.page.GFN, false); err != nil {
		e.t.Fatal(err)
	}
	if f.ch, err = d.Events.AllocUnbound(beDom); err != nil {
		e.t.Fatal(err)
	}
	return f
}

// linuxSetup is xen-tpmfront's setup_ring: one transaction with ring-ref,
// event-channel and feature-protocol-v2, then Initialised.
func (f *rawFront) linuxSetup() {
	f.t.Helper()
	err := f.d.Store.Transaction(f.ctx, func(tx *xenbus.Tx) error {
		if err := tx.WriteString(f.ctx, f.p.Frontend+"/ring-ref", strconv.Itoa(int(f.ref))); err != nil {
			return err
		}
		if err := tx.WriteString(f.ctx, f.p.Frontend+"/event-channel", strconv.Itoa(int(f.ch.Port))); err != nil {
			return err
		}
		return tx.WriteString(f.ctx, f.p.Frontend+"/feature-protocol-v2", "1")
	})
	if err != nil {
		f.t.Fatal(err)
	}
	f.setState(xenbus.StateInitialised)
}

// miniosSetup is mini-os tpmfront's init: feature-protocol-v2 outside the
// transaction, ring-ref and event-channel inside, then Connected directly.
func (f *rawFront) miniosSetup() {
	f.t.Helper()
	if err := f.d.Store.WriteString(f.ctx, f.p.Frontend+"/feature-protocol-v2", "1"); err != nil {
		f.t.Fatal(err)
	}
	err := f.d.Store.Transaction(f.ctx, func(tx *xenbus.Tx) error {
		if err := tx.WriteString(f.ctx, f.p.Frontend+"/ring-ref", strconv.Itoa(int(f.ref))); err != nil {
			return err
		}
		return tx.WriteString(f.ctx, f.p.Frontend+"/event-channel", strconv.Itoa(int(f.ch.Port)))
	})
	if err != nil {
		f.t.Fatal(err)
	}
	f.setState(xenbus.StateConnected)
}

func (f *rawFront) setState(s xenbus.State) {
	f.t.Helper()
	if err := f.d.Store.WriteString(f.ctx, f.p.Frontend+"/state", strconv.Itoa(int(s))); err != nil {
		f.t.Fatal(err)
	}
}

func (f *rawFront) notify() {
	f.t.Helper()
	if err := f.ch.Notify(); err != nil {
		f.t.Fatal(err)
	}
}

// waitDone waits, as Linux's vtpm_status does, for IDLE or FINISH.
func (f *rawFront) waitDone() ring.State {
	f.t.Helper()
	for {
		if s := f.r.State(); s == ring.StateIdle || s == ring.StateFinish {
			return s
		}
		select {
		case <-f.ch.C:
		case <-f.ctx.Done():
			f.t.Fatalf("no answer from the backend; page state %v", f.r.State())
		}
	}
}

// transact sends cmd and returns the response.
func (f *rawFront) transact(loc uint8, cmd []byte) []byte {
	f.t.Helper()
	if err := f.r.Submit(loc, cmd); err != nil {
		f.t.Fatal(err)
	}
	f.notify()
	if s := f.waitDone(); s != ring.StateFinish {
		f.t.Fatalf("backend answered %v", s)
	}
	rsp, err := f.r.Response(nil)
	if err != nil {
		f.t.Fatal(err)
	}
	return rsp
}
