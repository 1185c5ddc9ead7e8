package xentest

import (
	"context"
	"fmt"
	"strconv"

	"github.com/xenvtpm/xenvtpm/board/xen/shm"
	"github.com/xenvtpm/xenvtpm/evtchn"
	"github.com/xenvtpm/xenvtpm/grant"
	"github.com/xenvtpm/xenvtpm/xenbus"
)

// RawBackend is a vtpm backend in domain D whose every answer a test
// writes: the values it publishes in the handshake and the bytes it puts
// on the shared page, well formed or not. Tests play a broken or hostile
// backend (or manager) with it.
type RawBackend struct {
	D     *Domain
	Paths VTPMPaths
	Page  *shm.Page

	m  *grant.Mapping
	ch *evtchn.Channel
}

// AcceptRaw waits for the frontend of device p (in domain fe) to publish
// its ring and go Initialised, maps its page and binds its channel, then
// publishes feature-protocol-v2=feature (nothing if empty) and state.
func (d *Domain) AcceptRaw(ctx context.Context, p VTPMPaths, fe uint16, feature string, state xenbus.State) (*RawBackend, error) {
	if _, err := d.Store.WaitForState(ctx, p.Frontend, xenbus.StateInitialised, xenbus.StateConnected); err != nil {
		return nil, fmt.Errorf("raw backend: waiting for the frontend: %w", err)
	}
	ref, err := d.Store.ReadUint(ctx, p.Frontend+"/ring-ref", 32)
	if err != nil {
		return nil, fmt.Errorf("raw backend: %w", err)
	}
	port, err := d.Store.ReadUint(ctx, p.Frontend+"/event-channel", 32)
	if err != nil {
		return nil, fmt.Errorf("raw backend: %w", err)
	}
	m, err := d.Mapper.Map(fe, grant.Ref(ref), false)
	if err != nil {
		return nil, fmt.Errorf("raw backend: %w", err)
	}
	ch, err := d.Events.BindInterdomain(fe, evtchn.Port(port))
	if err != nil {
		d.Mapper.Unmap(m)
		return nil, fmt.Errorf("raw backend: %w", err)
	}
	r := &RawBackend{D: d, Paths: p, Page: m.Page, m: m, ch: ch}
	if feature != "" {
		if err := d.Store.WriteString(ctx, p.Backend+"/feature-protocol-v2", feature); err != nil {
			r.Close()
			return nil, fmt.Errorf("raw backend: %w", err)
		}
	}
	if err := d.Store.WriteString(ctx, p.Backend+"/state", strconv.Itoa(int(state))); err != nil {
		r.Close()
		return nil, fmt.Errorf("raw backend: %w", err)
	}
	return r, nil
}

// Answer writes the page header (length, state, nr_extra_pages) and data
// after it as they are, and notifies the frontend.
func (r *RawBackend) Answer(length uint32, state, nrExtra uint8, data []byte) error {
	b := r.Page.Bytes()
	copy(b[8:], data)
	r.Page.Store32(0, length)
	r.Page.Store8(7, nrExtra)
	r.Page.Store8(4, state)
	return r.ch.Notify()
}

// Wait waits for a notification from the frontend.
func (r *RawBackend) Wait(ctx context.Context) error {
	select {
	case <-r.ch.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Close unbinds the channel and unmaps the page.
func (r *RawBackend) Close() {
	r.ch.Close()
	r.D.Mapper.Unmap(r.m)
}
