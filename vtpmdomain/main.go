//go:build tamago

// Command vtpmdomain is the vTPM domain: a Xen PVH domain that serves one
// software TPM 2.0 (emulator/tpm2) to its guest through the tpmif v2 ring
// (drivers/tpmback), so a stock Linux guest with xen-tpmfront sees
// /dev/tpm0. It takes vtpm-stubdom's options (see package vtpm and the
// README).
package main

import (
	"context"
	"time"

	"github.com/xenvtpm/xenvtpm/board/xen"
	"github.com/xenvtpm/xenvtpm/domain"
	"github.com/xenvtpm/xenvtpm/drivers/tpmback"
	"github.com/xenvtpm/xenvtpm/grant"
	"github.com/xenvtpm/xenvtpm/vtpmdomain/vtpm"
)

// Version is set by the build.
var Version = "dev"

func main() {
	d := domain.Start("vtpm", vtpm.Spec())
	opts, err := vtpm.ParseOptions(d.Config)
	if err != nil {
		d.Log.Errorf("bad command line: %v", err)
		d.Exit(1)
	}
	d.Log.Infof("xenvtpm vTPM domain %s, domid %d", Version, d.ID)
	d.Log.Infof("state is not persisted yet: this TPM's keys, NV indices and seeds live only as long as this domain")
	if len(opts.HWInitPCR) > 0 {
		d.Log.Infof("hwinitpcr=%s: not available until the manager domain exists; PCRs start at their reset values", d.Config.Get("hwinitpcr"))
	}
	srv, err := vtpm.NewServer(opts, d.Log)
	if err != nil {
		d.Log.Errorf("starting the TPM: %v", err)
		d.Exit(1)
	}

	mapper, err := grant.NewMapper(xen.GrantOps{H: d.Xen}, grant.BackendWindow, 0)
	if err != nil {
		d.Log.Errorf("grant mapper: %v", err)
		d.Exit(1)
	}
	back, err := tpmback.New(tpmback.Config{
		Store:  d.Store,
		Grants: mapper,
		Events: d.Events,
		Log:    d.Log,
		Handler: func(fe *tpmback.Frontend, locality uint8, cmd []byte) []byte {
			return srv.Handle(fe.String(), locality, cmd)
		},
	})
	if err != nil {
		d.Log.Errorf("tpmback: %v", err)
		d.Exit(1)
	}
	// Issue 4's fault tests count foreign mappings after each detach: a
	// destroyed frontend must leave none behind.
	go func() {
		for last := 0; ; time.Sleep(500 * time.Millisecond) {
			if n := mapper.Live(); n != last {
				d.Log.Infof("grant mappings live: %d", n)
				last = n
			}
		}
	}()
	d.Log.Infof("serving TPM 2.0 (startup mode %s) to frontends through backend/vtpm", opts.Startup)
	if err := back.Run(context.Background()); err != nil {
		d.Log.Errorf("tpmback stopped: %v", err)
		d.Exit(1)
	}
}
