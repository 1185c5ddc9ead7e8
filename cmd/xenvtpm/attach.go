package main

import (
	"context"
	"fmt"
	"time"

	"github.com/xenvtpm/xenvtpm/board/dom0"
	"github.com/xenvtpm/xenvtpm/toolstack"
	"github.com/xenvtpm/xenvtpm/toolstack/vtpmdev"
)

// AttachTimeout bounds connecting to a vTPM domain.
const AttachTimeout = time.Minute

// attachment is dom0's vtpm device on a vTPM domain.
type attachment struct {
	plat *dom0.Platform
	dev  *vtpmdev.Device
	name string
}

// attach opens dom0's Xen devices and attaches to the vTPM domain (or
// the manager domain) named (by name or id).
func attach(ctx context.Context, vtpmDomain string) (*attachment, error) {
	plat, err := dom0.Open(ctx)
	if err != nil {
		return nil, err
	}
	id, err := toolstack.DomainID(ctx, plat.Store, vtpmDomain)
	if err != nil {
		plat.Close()
		return nil, err
	}
	actx, cancel := context.WithTimeout(ctx, AttachTimeout)
	defer cancel()
	dev, err := vtpmdev.Attach(actx, vtpmdev.Config{Store: plat.Store, Pages: plat.Pages, Events: plat.Events,
		Self: plat.ID, Backend: id, Logf: logf})
	if err != nil {
		plat.Close()
		return nil, fmt.Errorf("domain %s (%d): %w", vtpmDomain, id, err)
	}
	logf("attached to domain %s (%d) through %s", vtpmDomain, id, dev.Paths.Frontend)
	return &attachment{plat: plat, dev: dev, name: vtpmDomain}, nil
}

// close detaches and releases dom0's devices.
func (a *attachment) close() error {
	err := a.dev.Close(context.Background())
	if cerr := a.plat.Close(); err == nil {
		err = cerr
	}
	return err
}
