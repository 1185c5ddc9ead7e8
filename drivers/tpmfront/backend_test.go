package tpmfront_test

// The frontend against our own backend (drivers/tpmback), in process, over
// the fake Xen of internal/xentest (helpers_test.go sets them up).

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/go-tpm/tpm2"

	"github.com/xenvtpm/xenvtpm/drivers/tpmback"
	"github.com/xenvtpm/xenvtpm/drivers/tpmfront"
	"github.com/xenvtpm/xenvtpm/internal/xentest"
)

func openFront(e *env, d *xentest.Domain, p xentest.VTPMPaths) *tpmfront.Front {
	e.t.Helper()
	f, err := tpmfront.Open(e.ctx, tpmfront.Config{Store: d.Store, Pages: d.Sharer(), Events: d.Events})
	if err != nil {
		e.t.Fatal(err)
	}
	return f
}

func TestRoundTrip(t *testing.T) {
	e := newEnv(t)
	d, p := e.addDevice(5)
	f := openFront(e, d, p)
	if s, _ := e.x.Store.Get(p.Frontend + "/state"); s != "4" {
		t.Errorf("frontend state %q after Open, want 4", s)
	}
	for i := 0; i < 10; i++ {
		cmd := []byte(fmt.Sprint("cmd", i))
		rsp, err := f.Send(e.ctx, 2, cmd)
		if err != nil || string(rsp) != "rsp:"+string(cmd) {
			t.Fatalf("Send = %q, %v", rsp, err)
		}
	}
	if _, err := f.Send(e.ctx, 0, make([]byte, 4089)); err == nil {
		t.Error("4089-byte command accepted")
	}
	if err := f.Close(e.ctx); err != nil {
		t.Fatal(err)
	}
	if s, _ := e.x.Store.Get(p.Frontend + "/state"); s != "1" {
		t.Errorf("frontend state %q after Close, want 1 (Initialising)", s)
	}
	if _, ok := e.x.Store.Get(p.Frontend + "/ring-ref"); ok {
		t.Error("ring-ref left behind")
	}
	if e.be.Mapper.Live() != 0 || d.Grants.Free() != d.Grants.Len()-8 || d.Ports() != 0 {
		t.Errorf("after Close: %d mappings, %d/%d grants free, %d ports", e.be.Mapper.Live(), d.Grants.Free(), d.Grants.Len()-8, d.Ports())
	}
	if _, err := f.Send(e.ctx, 0, []byte("x")); !errors.Is(err, tpmfront.ErrClosed) {
		t.Errorf("Send after Close: %v", err)
	}
	// vtpm-detach + vtpm-attach, or a reboot: open again.
	f2 := openFront(e, d, p)
	if rsp, err := f2.Send(e.ctx, 0, []byte("again")); err != nil || string(rsp) != "rsp:again" {
		t.Fatalf("after reopen: %q, %v", rsp, err)
	}
	f2.Close(e.ctx)
}

func TestTransactionRetry(t *testing.T) {
	e := newEnv(t)
	d, p := e.addDevice(5)
	e.x.Store.SetFailCommits(3)
	f := openFront(e, d, p)
	if rsp, err := f.Send(e.ctx, 0, []byte("x")); err != nil || string(rsp) != "rsp:x" {
		t.Fatalf("Send = %q, %v", rsp, err)
	}
}

func TestTimeoutAndCancel(t *testing.T) {
	e := newEnv(t)
	release := make(chan struct{})
	e.setHandler(func(fe *tpmback.Frontend, loc uint8, cmd []byte) []byte {
		if string(cmd) == "slow" {
			<-release
		}
		return echo(fe, loc, cmd)
	})
	d, p := e.addDevice(5)
	f := openFront(e, d, p)
	ctx, cancel := context.WithTimeout(e.ctx, 20*time.Millisecond)
	_, err := f.Send(ctx, 0, []byte("slow"))
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("slow command: %v", err)
	}
	// The next command waits for the backend to finish the cancelled one.
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		rsp, err := f.Send(e.ctx, 0, []byte("next"))
		if err != nil || string(rsp) != "rsp:next" {
			t.Errorf("after cancel: %q, %v", rsp, err)
		}
	}()
	close(release)
	wg.Wait()
	f.Close(e.ctx)
}

func TestBackendRefuses(t *testing.T) {
	e := newEnv(t)
	e.shutdown() // no backend running: the state below stays as written
	d, p := e.addDevice(5)
	if err := e.x.Write(e.ctx, p.Backend+"/state", "6"); err != nil {
		t.Fatal(err)
	}
	_, err := tpmfront.Open(e.ctx, tpmfront.Config{Store: d.Store, Pages: d.Sharer(), Events: d.Events})
	if err == nil {
		t.Fatal("Open succeeded against a Closed backend")
	}
	if s, _ := e.x.Store.Get(p.Frontend + "/state"); s != "6" {
		t.Errorf("frontend state %q after a failed Open, want 6 (Closed)", s)
	}
	if d.Grants.Free() != d.Grants.Len()-8 || d.Ports() != 0 {
		t.Errorf("failed Open leaked: %d/%d grants free, %d ports", d.Grants.Free(), d.Grants.Len()-8, d.Ports())
	}
	if _, err := tpmfront.Open(e.ctx, tpmfront.Config{}); err == nil {
		t.Error("empty Config accepted")
	}
	if _, err := tpmfront.Open(e.ctx, tpmfront.Config{Store: d.Store, Pages: d.Sharer(), Events: d.Events, Node: "device/vtpm/9"}); err == nil {
		t.Error("Open of a missing device succeeded")
	}
}

// go-tpm drives our frontend through transport.TPM; the backend answers
// GetRandom by hand.
func TestGoTPM(t *testing.T) {
	e := newEnv(t)
	e.setHandler(func(fe *tpmback.Frontend, loc uint8, cmd []byte) []byte {
		// TPM2_GetRandom response: tag, size, rc, TPM2B_DIGEST of 4 bytes.
		return []byte{0x80, 0x01, 0, 0, 0, 16, 0, 0, 0, 0, 0, 4, 1, 2, 3, 4}
	})
	d, p := e.addDevice(5)
	f := openFront(e, d, p)
	defer f.Close(e.ctx)
	rsp, err := tpm2.GetRandom{BytesRequested: 4}.Execute(f.TPM(0))
	if err != nil {
		t.Fatal(err)
	}
	if string(rsp.RandomBytes.Buffer) != "\x01\x02\x03\x04" {
		t.Fatalf("random bytes % x", rsp.RandomBytes.Buffer)
	}
}

// The backend's domain dies with a command in flight: the toolstack
// removes its directory, and Send fails at once with ErrGone instead of
// waiting out its context; later Sends too.
func TestBackendGone(t *testing.T) {
	e := newEnv(t)
	d, p := e.addDevice(5)
	f := openFront(e, d, p)
	block := make(chan struct{})
	defer close(block)
	e.setHandler(func(fe *tpmback.Frontend, loc uint8, cmd []byte) []byte {
		<-block
		return nil
	})
	ctx, cancel := context.WithTimeout(e.ctx, time.Minute)
	defer cancel()
	sent := make(chan error, 1)
	go func() {
		_, err := f.Send(ctx, 0, []byte("never answered"))
		sent <- err
	}()
	time.Sleep(50 * time.Millisecond)
	c := e.x.Store.Connect(0)
	defer c.Close()
	t0 := time.Now()
	if err := c.Rm(e.ctx, p.Backend); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-sent:
		if !errors.Is(err, tpmfront.ErrGone) {
			t.Fatalf("Send with the backend gone = %v, want ErrGone", err)
		}
		t.Logf("Send failed %v after the backend vanished: %v", time.Since(t0).Round(time.Millisecond), err)
	case <-time.After(10 * time.Second):
		t.Fatal("Send still waiting 10 s after its backend vanished")
	}
	if _, err := f.Send(e.ctx, 0, []byte("x")); !errors.Is(err, tpmfront.ErrGone) || f.Gone() == nil {
		t.Fatalf("Send after the backend vanished = %v (Gone %v)", err, f.Gone())
	}
}

// A backend that stops (its domain shuts down) says Closed on its way
// out, and a connected frontend fails at once.
func TestBackendStopSaysClosed(t *testing.T) {
	e := newEnv(t)
	d, p := e.addDevice(5)
	f := openFront(e, d, p)
	if _, err := f.Send(e.ctx, 0, []byte("x")); err != nil {
		t.Fatal(err)
	}
	e.shutdown()
	if s, _ := e.x.Store.Get(p.Backend + "/state"); s != "6" {
		t.Fatalf("backend state %q after the backend stopped, want 6 (Closed)", s)
	}
	eventually(t, "the frontend sees its backend gone", func() bool { return f.Gone() != nil })
	if _, err := f.Send(e.ctx, 0, []byte("x")); !errors.Is(err, tpmfront.ErrGone) {
		t.Fatalf("Send after the backend stopped = %v, want ErrGone", err)
	}
}
