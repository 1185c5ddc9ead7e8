package tpmback_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/xenvtpm/xenvtpm/drivers/tpmback"
	"github.com/xenvtpm/xenvtpm/internal/xentest"
	"github.com/xenvtpm/xenvtpm/xenbus"
)

const beDom = 1

// testLog records what the backend logs.
type testLog struct {
	t    testing.TB
	mu   sync.Mutex
	errs []string
	info []string
}

func (l *testLog) add(dst *[]string, format string, a ...any) {
	s := fmt.Sprintf(format, a...)
	l.mu.Lock()
	*dst = append(*dst, s)
	l.mu.Unlock()
	l.t.Log(s)
}
func (l *testLog) Errorf(format string, a ...any) { l.add(&l.errs, format, a...) }
func (l *testLog) Infof(format string, a ...any)  { l.add(&l.info, format, a...) }
func (l *testLog) Debugf(format string, a ...any) { l.t.Logf(format, a...) }

func (l *testLog) hasError(sub string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, e := range l.errs {
		if strings.Contains(e, sub) {
			return true
		}
	}
	return false
}

// countErrors counts the error lines containing sub.
func (l *testLog) countErrors(sub string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, e := range l.errs {
		if strings.Contains(e, sub) {
			n++
		}
	}
	return n
}

func (l *testLog) hasInfo(sub string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, e := range l.info {
		if strings.Contains(e, sub) {
			return true
		}
	}
	return false
}

type env struct {
	t   testing.TB
	ctx context.Context
	x   *xentest.Xen
	be  *xentest.Domain
	log *testLog
	b   *tpmback.Backend
	// handler is what the backend's Handler calls; tests replace it
	// before starting frontends.
	mu      sync.Mutex
	handler tpmback.Handler
	stop    context.CancelFunc
	ran     chan error
	// reported is the count of mapped shared pages as Config.Mapped
	// reported them.
	reported atomic.Int64
}

func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// echo answers "rsp:" + cmd.
func echo(fe *tpmback.Frontend, loc uint8, cmd []byte) []byte {
	return append([]byte("rsp:"), cmd...)
}

func newEnv(t testing.TB, slots int) *env {
	t.Helper()
	return newEnvClock(t, slots, nil)
}

// newEnvClock is newEnv with the backend's log limits on clock now (nil:
// the real one).
func newEnvClock(t testing.TB, slots int, now func() time.Time) *env {
	t.Helper()
	return newEnvRescan(t, slots, now, 0)
}

// newEnvRescan is newEnvClock with the backend's Config.Rescan.
func newEnvRescan(t testing.TB, slots int, now func() time.Time, rescan time.Duration) *env {
	t.Helper()
	e := &env{t: t, ctx: testCtx(t), x: xentest.New(), log: &testLog{t: t}, handler: echo}
	e.be = e.x.AddDomain(t, beDom, slots)
	b, err := tpmback.New(tpmback.Config{
		Store: e.be.Store, Grants: e.be.Mapper, Events: e.be.Events, Log: e.log,
		Handler: func(fe *tpmback.Frontend, loc uint8, cmd []byte) []byte {
			e.mu.Lock()
			h := e.handler
			e.mu.Unlock()
			return h(fe, loc, cmd)
		},
		Mapped: func(fe *tpmback.Frontend, mapped bool) {
			if mapped {
				e.reported.Add(1)
			} else {
				e.reported.Add(-1)
			}
		},
		Rescan: rescan,
	})
	if err != nil {
		t.Fatal(err)
	}
	if now != nil {
		tpmback.SetClock(b, now)
	}
	e.b = b
	ctx, cancel := context.WithCancel(e.ctx)
	e.stop = cancel
	e.ran = make(chan error, 1)
	go func() { e.ran <- b.Run(ctx) }()
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
	if n := e.reported.Load(); n != 0 {
		e.t.Errorf("Config.Mapped reported %d mappings left after Run returned", n)
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

// waitState waits for a device directory to reach one of states.
func (e *env) waitState(dir string, states ...xenbus.State) xenbus.State {
	e.t.Helper()
	c := e.x.Store.Connect(0)
	defer c.Close()
	ctx, cancel := context.WithTimeout(e.ctx, 20*time.Second)
	defer cancel()
	s, err := c.WaitForState(ctx, dir, states...)
	if err != nil {
		e.t.Fatalf("waiting for %s to reach %v: %v", dir, states, err)
	}
	return s
}

// eventually polls cond (for effects with no xenstore trace, such as an
// unmap) until it holds or a generous deadline passes.
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

func testCtxCancel(parent context.Context) (context.Context, context.CancelFunc) {
	return context.WithCancel(parent)
}
