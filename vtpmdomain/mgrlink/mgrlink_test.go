package mgrlink

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/xenvtpm/xenvtpm/drivers/tpmback"
	"github.com/xenvtpm/xenvtpm/internal/xentest"
)

const uuid = "76747069-7065-7273-6973-740000000001"

// manager starts a backend in domain id that answers every command with
// its domain's name, and returns a stop function: the domain dying, its
// backend stopped and its event channels closed, so nothing it was sent
// is answered any more.
func manager(t *testing.T, x *xentest.Xen, id uint16, name string) func() {
	t.Helper()
	d := x.AddDomain(t, id, 0)
	b, err := tpmback.New(tpmback.Config{Store: d.Store, Grants: d.Mapper, Events: d.Events,
		Handler: func(*tpmback.Frontend, uint8, []byte) []byte { return []byte(name) }})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { b.Run(ctx); close(done) }()
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			cancel()
			<-done
			d.Destroy()
		}
	}
	t.Cleanup(stop)
	return stop
}

func TestReconnectAfterManagerRestart(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	x := xentest.New()
	stopFirst := manager(t, x, 1, "first")
	vtpm := x.AddDomain(t, 5, 0)
	p0, err := x.AddVTPM(ctx, 1, 5, 0, uuid)
	if err != nil {
		t.Fatal(err)
	}
	var logs []string
	l, err := Open(ctx, Config{Store: vtpm.Store, Pages: vtpm.Sharer(), Events: vtpm.Events,
		Logf: func(f string, a ...any) { logs = append(logs, f) }})
	if err != nil {
		t.Fatal(err)
	}
	if rsp, err := l.Send(ctx, []byte("cmd")); err != nil || string(rsp) != "first" {
		t.Fatalf("Send = %q, %v", rsp, err)
	}

	// The manager's domain dies, then the toolstack removes its
	// directories. Whether the link has seen that yet or not, nothing
	// answers now: Send fails with ErrNoManager, not with its context's
	// deadline.
	stopFirst()
	if err := x.RemoveVTPM(ctx, xentest.VTPMPaths{Backend: p0.Backend}); err != nil {
		t.Fatal(err)
	}
	_, err = l.Send(ctx, []byte("cmd"))
	if !errors.Is(err, ErrNoManager) || !strings.Contains(err.Error(), "xl vtpm-attach") {
		t.Fatalf("Send with the manager gone = %v, want ErrNoManager saying what to do", err)
	}
	if _, id := l.Backend(); id != -1 {
		t.Fatalf("still connected to domain %d", id)
	}
	if _, err := l.Send(ctx, []byte("cmd")); !errors.Is(err, ErrNoManager) {
		t.Fatalf("second Send with no manager = %v", err)
	}

	// A new manager domain; the vTPM is attached to it again.
	manager(t, x, 7, "second")
	if _, err := x.AddVTPM(ctx, 7, 5, 1, uuid); err != nil {
		t.Fatal(err)
	}
	if rsp, err := l.Send(ctx, []byte("cmd")); err != nil || string(rsp) != "second" {
		t.Fatalf("Send after vtpm-attach = %q, %v", rsp, err)
	}
	if path, id := l.Backend(); id != 7 || !strings.Contains(path, "/local/domain/7/") {
		t.Fatalf("connected to %q (domain %d), want domain 7", path, id)
	}
}
