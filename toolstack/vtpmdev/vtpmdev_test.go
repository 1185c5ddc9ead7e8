package vtpmdev

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/xenvtpm/xenvtpm/drivers/tpmback"
	"github.com/xenvtpm/xenvtpm/drivers/tpmfront"
	"github.com/xenvtpm/xenvtpm/internal/xentest"
	"github.com/xenvtpm/xenvtpm/xenbus"
)

// vtpmDomain starts a tpmback in domain id that answers "from <frontend
// domain>:" + the command, and returns it with a function that stops it.
func vtpmDomain(t *testing.T, x *xentest.Xen, id uint16) (*xentest.Domain, func()) {
	t.Helper()
	d := x.AddDomain(t, id, 4)
	b, err := tpmback.New(tpmback.Config{Store: d.Store, Grants: d.Mapper, Events: d.Events,
		Handler: func(fe *tpmback.Frontend, _ uint8, cmd []byte) []byte {
			return append([]byte(fmt.Sprintf("from %d:", fe.Domid)), cmd...)
		}})
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
		}
	}
	t.Cleanup(stop)
	return d, stop
}

func config(dom0 *xentest.Domain, backend uint16) Config {
	return Config{Store: dom0.Store, Pages: dom0.Sharer(), Events: dom0.Events, Self: dom0.ID, Backend: backend, Logf: func(string, ...any) {}}
}

// Attach writes what libxl writes, with libxl's permissions; commands go
// through; Close leaves nothing behind: no xenstore node, no mapping, no
// grant, no event channel.
func TestAttachSendDetach(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	x := xentest.New()
	dom0 := x.AddDomain(t, 0, 0)
	vtpm, _ := vtpmDomain(t, x, 7)
	freeGrants, ports := dom0.Grants.Free(), dom0.Ports()

	d, err := Attach(ctx, config(dom0, 7))
	if err != nil {
		t.Fatal(err)
	}
	if d.Paths.Frontend != "/local/domain/0/device/vtpm/0" || d.Paths.Backend != "/local/domain/7/backend/vtpm/0/0" {
		t.Fatalf("paths %+v", d.Paths)
	}
	for _, c := range []struct {
		dir   string
		perms []xenbus.Perm
	}{
		{d.Paths.Frontend, []xenbus.Perm{{Domid: 0, Access: xenbus.AccessNone}, {Domid: 7, Access: xenbus.AccessRead}}},
		{d.Paths.Backend, []xenbus.Perm{{Domid: 7, Access: xenbus.AccessNone}, {Domid: 0, Access: xenbus.AccessRead}}},
	} {
		got, err := dom0.Store.GetPerms(ctx, c.dir)
		if err != nil || fmt.Sprint(got) != fmt.Sprint(c.perms) {
			t.Errorf("%s perms %v, %v; want %v", c.dir, got, err, c.perms)
		}
	}
	// Keys inherit their directory's permissions: the backend owns its
	// state node, or it could not write it.
	for _, key := range []string{d.Paths.Backend + "/state", d.Paths.Backend + "/uuid"} {
		if got, err := dom0.Store.GetPerms(ctx, key); err != nil || len(got) == 0 || got[0].Domid != 7 {
			t.Errorf("%s perms %v, %v; want owned by the vTPM domain", key, got, err)
		}
	}
	for key, want := range map[string]string{
		d.Paths.Backend + "/frontend-id": "0", d.Paths.Backend + "/online": "1",
		d.Paths.Frontend + "/backend-id": "7", d.Paths.Frontend + "/handle": "0",
	} {
		if v, err := dom0.Store.ReadString(ctx, key); err != nil || v != want {
			t.Errorf("%s = %q, %v; want %q", key, v, err, want)
		}
	}
	if u, err := dom0.Store.ReadString(ctx, d.Paths.Backend+"/uuid"); err != nil || len(u) != 36 || u[14] != '4' {
		t.Errorf("uuid %q, %v", u, err)
	}
	rsp, err := d.Send(ctx, 0, []byte("hello"))
	if err != nil || !bytes.Equal(rsp, []byte("from 0:hello")) {
		t.Fatalf("Send = %q, %v", rsp, err)
	}

	// A second device gets the next number and its own connection.
	d2, err := Attach(ctx, config(dom0, 7))
	if err != nil {
		t.Fatal(err)
	}
	if d2.Paths.Devid != 1 {
		t.Fatalf("second device number %d", d2.Paths.Devid)
	}
	if err := d2.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if err := d.Close(ctx); err != nil {
		t.Fatal(err)
	}
	for _, dir := range []string{d.Paths.Frontend, d.Paths.Backend, d2.Paths.Frontend, d2.Paths.Backend} {
		if _, err := dom0.Store.Read(ctx, dir); !errors.Is(err, xenbus.ErrNoEnt) {
			t.Errorf("%s still there after Close (%v)", dir, err)
		}
	}
	waitFor(t, "vTPM domain unmaps the pages", func() bool { return vtpm.Mapped() == 0 })
	if dom0.Grants.Free() != freeGrants || dom0.Ports() != ports {
		t.Errorf("after Close: %d free grants (was %d), %d ports (was %d)", dom0.Grants.Free(), freeGrants, dom0.Ports(), ports)
	}
}

// Attaching to a domain that does not exist, or that runs no vTPM
// backend, fails with a clear error and writes nothing that stays.
func TestAttachFailures(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	x := xentest.New()
	dom0 := x.AddDomain(t, 0, 0)
	if _, err := Attach(ctx, config(dom0, 9)); err == nil {
		t.Fatal("attached to a domain that does not exist")
	}
	x.AddDomain(t, 8, 0) // no backend runs there
	short, cancel2 := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel2()
	_, err := Attach(short, config(dom0, 8))
	if !errors.Is(err, ErrNotVTPM) {
		t.Fatalf("Attach to a domain without a vTPM backend = %v, want ErrNotVTPM", err)
	}
	for _, dir := range []string{"/local/domain/0/device/vtpm/0", "/local/domain/8/backend/vtpm/0/0"} {
		if _, err := dom0.Store.Read(ctx, dir); !errors.Is(err, xenbus.ErrNoEnt) {
			t.Errorf("%s left behind (%v)", dir, err)
		}
	}
	if _, err := Attach(ctx, config(dom0, 0)); err == nil {
		t.Fatal("attached dom0 to itself")
	}
}

// A vTPM domain that dies under the device: Send fails with
// tpmfront.ErrGone, and Close still cleans up.
func TestVTPMDomainGone(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	x := xentest.New()
	dom0 := x.AddDomain(t, 0, 0)
	vtpm, stop := vtpmDomain(t, x, 7)
	d, err := Attach(ctx, config(dom0, 7))
	if err != nil {
		t.Fatal(err)
	}
	stop()
	vtpm.Destroy()
	if err := x.RemoveVTPM(ctx, xentest.VTPMPaths{Backend: "/local/domain/7"}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the frontend notices", func() bool { return d.Gone() != nil })
	if _, err := d.Send(ctx, 0, []byte("x")); !errors.Is(err, tpmfront.ErrGone) {
		t.Fatalf("Send after the vTPM domain died = %v", err)
	}
	if err := d.Close(ctx); err != nil {
		t.Fatalf("Close after the vTPM domain died: %v", err)
	}
	if _, err := dom0.Store.Read(ctx, d.Paths.Frontend); !errors.Is(err, xenbus.ErrNoEnt) {
		t.Errorf("frontend directory left behind (%v)", err)
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for end := time.Now().Add(10 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatalf("timed out waiting until %s", what)
		}
	}
}
