package tpmfront_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/xenvtpm/xenvtpm/drivers/tpmback"
	"github.com/xenvtpm/xenvtpm/internal/xentest"
)

const beDom = 1

// env is a fake Xen with our backend (drivers/tpmback) running in domain
// beDom.
type env struct {
	t   testing.TB
	ctx context.Context
	x   *xentest.Xen
	be  *xentest.Domain
	// handler is what the backend's Handler calls; tests replace it
	// before starting frontends.
	mu      sync.Mutex
	handler tpmback.Handler
	stop    context.CancelFunc
	ran     chan error
}

// testLog passes the backend's lines to the test log.
type testLog struct{ t testing.TB }

func (l testLog) Errorf(format string, a ...any) { l.t.Logf("error: "+format, a...) }
func (l testLog) Infof(format string, a ...any)  { l.t.Logf(format, a...) }
func (l testLog) Debugf(format string, a ...any) { l.t.Logf(format, a...) }

// echo answers "rsp:" + cmd.
func echo(fe *tpmback.Frontend, loc uint8, cmd []byte) []byte {
	return append([]byte("rsp:"), cmd...)
}

func newEnv(t testing.TB) *env {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	e := &env{t: t, ctx: ctx, x: xentest.New(), handler: echo}
	e.be = e.x.AddDomain(t, beDom, 0)
	b, err := tpmback.New(tpmback.Config{
		Store: e.be.Store, Grants: e.be.Mapper, Events: e.be.Events, Log: testLog{t},
		Handler: func(fe *tpmback.Frontend, loc uint8, cmd []byte) []byte {
			e.mu.Lock()
			h := e.handler
			e.mu.Unlock()
			return h(fe, loc, cmd)
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(e.ctx)
	e.stop = stop
	e.ran = make(chan error, 1)
	go func() { e.ran <- b.Run(runCtx) }()
	t.Cleanup(e.shutdown)
	return e
}

// shutdown stops the backend and checks it let go of everything.
func (e *env) shutdown() {
	if e.stop == nil {
		return
	}
	e.stop()
	e.stop = nil
	select {
	case <-e.ran:
	case <-time.After(20 * time.Second):
		e.t.Error("backend did not stop")
		return
	}
	if n := e.be.Mapper.Live(); n != 0 {
		e.t.Errorf("%d mappings left after Run returned", n)
	}
	if n := e.be.Mapped(); n != 0 {
		e.t.Errorf("hypervisor still sees %d foreign mappings", n)
	}
}

func (e *env) setHandler(h tpmback.Handler) {
	e.mu.Lock()
	e.handler = h
	e.mu.Unlock()
}

func testUUID(n int) string { return fmt.Sprintf("6a4c0f4e-7c8d-4b9a-9e2f-%012x", n) }

// addDevice creates frontend domain fe and the libxl nodes of its vtpm.
func (e *env) addDevice(fe uint16) (*xentest.Domain, xentest.VTPMPaths) {
	e.t.Helper()
	d := e.x.AddDomain(e.t, fe, 16)
	p, err := e.x.AddVTPM(e.ctx, beDom, fe, 0, testUUID(int(fe)))
	if err != nil {
		e.t.Fatal(err)
	}
	return d, p
}

// eventually polls cond until it holds or a generous deadline passes.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("never happened: %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}
