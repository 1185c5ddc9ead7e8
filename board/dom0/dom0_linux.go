package dom0

import (
	"context"
	"errors"
	"fmt"

	"github.com/xenvtpm/xenvtpm/evtchn"
	"github.com/xenvtpm/xenvtpm/xenbus"
)

// Platform is what a frontend needs in this domain.
type Platform struct {
	// ID is this domain's id (0 in dom0; a driver domain has its own).
	ID     uint16
	Store  *xenbus.Client
	Events *evtchn.Mux
	Pages  *GntAlloc

	evtchn *EvtchnDev
}

// Open connects to xenstored (at $XENSTORED_PATH or its default socket)
// and opens the event-channel and grant-allocation devices.
func Open(ctx context.Context) (_ *Platform, err error) {
	p := &Platform{}
	defer func() {
		if err != nil {
			p.Close()
		}
	}()
	s, err := xenbus.DialSocket(ctx, "")
	if err != nil {
		return nil, err
	}
	p.Store = xenbus.NewClient(s)
	id, err := p.Store.ReadUint(ctx, "domid", 16)
	if err != nil {
		return nil, fmt.Errorf("dom0: reading this domain's id from xenstore: %w", err)
	}
	p.ID = uint16(id)
	if p.evtchn, err = OpenEvtchn(); err != nil {
		return nil, err
	}
	p.Events = p.evtchn.Mux()
	if p.Pages, err = OpenGntAlloc(); err != nil {
		return nil, err
	}
	return p, nil
}

// Close releases the devices and the xenstore connection. Pages still
// shared stay granted until the kernel can end their grants.
func (p *Platform) Close() error {
	var errs []error
	if p.Pages != nil {
		errs = append(errs, p.Pages.Close())
	}
	if p.evtchn != nil {
		errs = append(errs, p.evtchn.Close())
	}
	if p.Store != nil {
		errs = append(errs, p.Store.Close())
	}
	return errors.Join(errs...)
}
