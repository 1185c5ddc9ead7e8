//go:build tamago

// Command hello is the foundation's proof domain: a Go program booted by Xen
// as a PVH domU that shows the board, event channels and xenstore working,
// in a form the test bed checks from its console (see
// build/testbed/scenarios/hello).
//
// Its options (xl extra=), among them a deliberate panic to test crash
// reporting, are declared in build/hello/options and documented in
// docs/options.md.
package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/xenvtpm/xenvtpm/board/xen"
	"github.com/xenvtpm/xenvtpm/build/hello/options"
	"github.com/xenvtpm/xenvtpm/domain"
	"github.com/xenvtpm/xenvtpm/xenbus"
)

// Version is set by the build.
var Version = "dev"

func main() {
	d := domain.Start("hello", options.Spec())
	d.Log.Infof("xenvtpm hello %s on Xen %d.%d: domid=%d", Version, d.Xen.Major, d.Xen.Minor, d.ID)
	if d.Config.Has("panic") {
		panic("deliberate panic requested by the 'panic' option")
	}
	if err := run(d); err != nil {
		d.Log.Errorf("%v", err)
		d.Exit(1)
	}
	d.Log.Infof("HELLO-DONE")
}

func run(d *domain.Domain) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	xs := d.Store

	want := fmt.Sprintf("written-by-domain-%d", d.ID)
	if err := xs.WriteString(ctx, "data/hello", want); err != nil {
		return fmt.Errorf("writing data/hello: %w", err)
	}
	got, err := xs.ReadString(ctx, "data/hello")
	if err != nil || got != want {
		return fmt.Errorf("reading back data/hello: %q, %v", got, err)
	}
	d.Log.Infof("xenstore write/read ok: data/hello=%s", got)

	// Dom0 writes data/ping once it has seen the line above; the watch's
	// first event (fired on setup) finds no key yet.
	w, err := xs.Watch(ctx, "data/ping")
	if err != nil {
		return fmt.Errorf("watching data/ping: %w", err)
	}
	events := 0
	for v := ""; v == ""; {
		select {
		case <-w.Events():
			events++
		case <-ctx.Done():
			return fmt.Errorf("no watch event for data/ping: %w", ctx.Err())
		}
		v, err = xs.ReadString(ctx, "data/ping")
		if err != nil && !errors.Is(err, xenbus.ErrNoEnt) {
			return fmt.Errorf("reading data/ping: %w", err)
		}
		if v != "" {
			d.Log.Infof("watch fired: data/ping=%s (after %d events, the first on setup)", v, events)
		}
	}
	w.Unwatch(ctx)

	// Dom0 wrote data/many's children before data/ping: more names than
	// one xenstore reply holds, so the list comes in parts
	// (XS_DIRECTORY_PART).
	many, err := xs.Directory(ctx, "data/many")
	if err != nil {
		return fmt.Errorf("listing data/many: %w", err)
	}
	d.Log.Infof("xenstore: data/many lists %d children (%d bytes of names)", len(many), namesLen(many))

	// Clock: dom0 stamps each data/tick event with its own clock and
	// compares the span of ticks 0..5 with ours.
	const ticks = 10
	var first time.Time
	for i := 0; i <= ticks; i++ {
		if i > 0 {
			t0 := time.Now()
			time.Sleep(time.Second)
			d.Log.Infof("tick %d: time.Sleep(1s) took %v by our clock", i, time.Since(t0))
		}
		if i == 0 {
			first = time.Now()
		}
		// Each tick carries our clock, so dom0 can pair it with its own.
		if err := xs.WriteString(ctx, "data/tick", fmt.Sprintf("%d %.6f", i, time.Since(first).Seconds())); err != nil {
			return fmt.Errorf("writing data/tick: %w", err)
		}
	}

	if err := waits(ctx, d, ""); err != nil {
		return err
	}
	// The same with more channels than SCHEDOP_poll can name: from then on
	// the board's idle waits for any event, with the callback vector set
	// (board/xen/pvh idle), and must lose no wake-up either.
	for i := 0; i <= xen.MaxPollPorts; i++ {
		c, err := d.Events.AllocUnbound(d.ID)
		if err != nil {
			return fmt.Errorf("channel %d of %d: %w", i+1, xen.MaxPollPorts+1, err)
		}
		defer c.Close()
	}
	return waits(ctx, d, fmt.Sprintf(" past %d channels", xen.MaxPollPorts))
}

// waits reports the figures of the ways the domain waits: a xenstore read
// round trip, an event channel looped back to itself and Xen's one-shot
// timer; a lost wake-up fails or hangs them. label ends each figure's name.
func waits(ctx context.Context, d *domain.Domain, label string) error {
	const n = 200
	t0 := time.Now()
	for i := 0; i < n; i++ {
		if _, err := d.Store.ReadString(ctx, "domid"); err != nil {
			return fmt.Errorf("read round trip %d%s: %w", i, label, err)
		}
	}
	d.Log.Infof("FIGURE xenstore read round trip%s: %v mean over %d", label, time.Since(t0)/n, n)

	// An event channel looped back to ourselves, the floor under every
	// ring protocol's round trip.
	a, err := d.Events.AllocUnbound(d.ID)
	if err != nil {
		return err
	}
	defer a.Close()
	b, err := d.Events.BindInterdomain(d.ID, a.Port)
	if err != nil {
		return err
	}
	defer b.Close()
	t0 = time.Now()
	for i := 0; i < n; i++ {
		if err := b.Notify(); err != nil {
			return err
		}
		select {
		case <-a.C:
		case <-time.After(5 * time.Second):
			return fmt.Errorf("loopback event %d%s never arrived", i, label)
		}
	}
	d.Log.Infof("FIGURE event channel loopback%s: %v mean over %d", label, time.Since(t0)/n, n)

	// Many very short sleeps: each arms Xen's one-shot timer with a
	// deadline that may pass before the vCPU halts. A lost wake-up here
	// once left a domain halted for good.
	const shorts = 3000
	t0 = time.Now()
	for i := 0; i < shorts; i++ {
		time.Sleep(20 * time.Microsecond)
	}
	d.Log.Infof("FIGURE %d x time.Sleep(20µs)%s: %v mean", shorts, label, time.Since(t0)/shorts)
	return nil
}

func namesLen(names []string) int {
	n := 0
	for _, s := range names {
		n += len(s) + 1
	}
	return n
}
