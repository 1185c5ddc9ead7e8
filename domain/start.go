//go:build tamago

package domain

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/xenvtpm/xenvtpm/board/xen"
	"github.com/xenvtpm/xenvtpm/board/xen/pvh"
	"github.com/xenvtpm/xenvtpm/board/xen/shm"
	"github.com/xenvtpm/xenvtpm/cmdline"
	"github.com/xenvtpm/xenvtpm/evtchn"
	"github.com/xenvtpm/xenvtpm/xenbus"
)

// Domain is a started image.
type Domain struct {
	Name   string
	Config cmdline.Values
	Log    *Logger
	Store  *xenbus.Client
	ID     uint16
	Events *evtchn.Mux
	Xen    *xen.Hypervisor
}

// Start parses the command line against spec (plus loglevel=), connects to
// xenstore and reads the domain ID. It never returns half-configured: a bad
// command line or an unreachable xenstore ends the domain with a message.
func Start(name string, spec cmdline.Spec) *Domain {
	spec = Spec(spec)
	vals, err := spec.Parse(pvh.Info.Cmdline)
	if err != nil {
		fmt.Printf("%s: bad command line (xl extra=): %v\n", name, err)
		os.Exit(1)
	}
	lv, _ := ParseLevel(vals.Get("loglevel"))
	d := &Domain{Name: name, Config: vals, Log: NewLogger(os.Stdout, name, lv), Events: pvh.Events, Xen: pvh.Hypervisor}
	if err := d.connectStore(); err != nil {
		d.Log.Errorf("xenstore: %v", err)
		os.Exit(1)
	}
	return d
}

func (d *Domain) connectStore() error {
	pfn, err := d.Xen.GetParam(xen.ParamStorePFN)
	if err != nil {
		return err
	}
	port, err := d.Xen.GetParam(xen.ParamStoreEvtchn)
	if err != nil {
		return err
	}
	page := shm.At(uintptr(pfn<<12), 4096)
	if p := xenbus.RingEvtchnPort(page); p != 0 {
		port = uint64(p)
	}
	ch, err := d.Events.Bind(evtchn.Port(port))
	if err != nil {
		return err
	}
	ring, err := xenbus.NewRing(page, ch.Notify, ch.C)
	if err != nil {
		return err
	}
	d.Store = xenbus.NewClient(ring, xenbus.WithErrorHandler(func(err error) { d.Log.Errorf("xenstore: %v", err) }))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	id, err := d.Store.ReadUint(ctx, "domid", 16)
	if err != nil {
		return fmt.Errorf("reading own domid: %w", err)
	}
	d.ID = uint16(id)
	return nil
}

// Exit ends the domain: status 0 powers it off, anything else is a crash.
func (d *Domain) Exit(status int) { os.Exit(status) }

// WallClock returns the time of day from Xen's wall clock
// (pvh.WallClock), for what must be dated (certificates): Go's own clock
// in a domain counts from its start. It returns nil, after saying so,
// when Xen gives none.
func (d *Domain) WallClock() func() time.Time {
	if t, ok := pvh.WallClock(); ok {
		d.Log.Infof("time of day from Xen's wall clock: %s", t.UTC().Format(time.RFC3339))
		return func() time.Time {
			if t, ok := pvh.WallClock(); ok {
				return t
			}
			return time.Now()
		}
	}
	d.Log.Infof("Xen gives no wall clock: certificates are dated by the domain's own clock, which starts at 1970")
	return nil
}
