package xenfront

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/xenvtpm/xenvtpm/evtchn"
	"github.com/xenvtpm/xenvtpm/internal/xentest"
	"github.com/xenvtpm/xenvtpm/xenbus"
)

func TestShareAndPublish(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	x := xentest.New()
	back := x.AddDomain(t, 1, 4)
	front := x.AddDomain(t, 2, 4)
	p, err := x.AddVTPM(ctx, 1, 2, 0, "00000000-0000-0000-0000-000000000001")
	if err != nil {
		t.Fatal(err)
	}
	be, id, err := Backend(ctx, front.Store, p.Frontend)
	if err != nil || be != p.Backend || id != 1 {
		t.Fatalf("Backend = %q, %d, %v; want %q, 1", be, id, err, p.Backend)
	}
	if _, _, err := Backend(ctx, front.Store, "device/vtpm/9"); err == nil || !strings.Contains(err.Error(), "device/vtpm/9") {
		t.Fatalf("Backend of a missing device = %v", err)
	}

	r, err := Share(front.Sharer(), front.Events, id)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Publish(ctx, front.Store, p.Frontend, [2]string{"feature-protocol-v2", "1"}); err != nil {
		t.Fatal(err)
	}
	for key, want := range map[string]uint64{"ring-ref": uint64(r.Ref), "event-channel": uint64(r.Ch.Port), "feature-protocol-v2": 1} {
		if v, err := back.Store.ReadUint(ctx, p.Frontend+"/"+key, 32); err != nil || v != want {
			t.Errorf("%s = %d, %v; want %d", key, v, err, want)
		}
	}
	if s, err := back.Store.ReadState(ctx, p.Frontend); err != nil || s != xenbus.StateInitialised {
		t.Errorf("frontend state %v, %v; want Initialised", s, err)
	}

	// While the backend maps the page its grant cannot end: Release
	// reports it and leaks the page rather than reuse it.
	m, err := back.Mapper.Map(2, r.Ref, false)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Release(); err == nil {
		t.Fatal("Release succeeded while the backend maps the page")
	}
	back.Mapper.Unmap(m)
	if err := r.Release(); err != nil {
		t.Fatalf("second Release: %v", err)
	}
	var none *Ring
	if err := none.Release(); err != nil {
		t.Fatalf("Release of nil: %v", err)
	}
}

// failEvents refuses every event channel.
type failEvents struct{}

func (failEvents) AllocUnbound(uint16) (*evtchn.Channel, error) { return nil, errors.New("no ports") }

// A failed Share leaves no grant behind.
func TestShareUndone(t *testing.T) {
	x := xentest.New()
	x.AddDomain(t, 1, 4)
	front := x.AddDomain(t, 2, 4)
	free := front.Grants.Free()
	if _, err := Share(front.Sharer(), failEvents{}, 1); err == nil || !strings.Contains(err.Error(), "no ports") {
		t.Fatalf("Share with no event channel = %v", err)
	}
	if got := front.Grants.Free(); got != free {
		t.Fatalf("%d free grant entries after a failed Share, %d before", got, free)
	}
}
