//go:build tamago

// Command vtpmdomain is the vTPM domain: a Xen PVH domain that serves one
// software TPM 2.0 (emulator/tpm2), or with tpm=1.2 one TPM 1.2
// (emulator/tpm12), to its guest through the tpmif v2 ring
// (drivers/tpmback), so a stock Linux guest with xen-tpmfront sees
// /dev/tpm0. It takes vtpm-stubdom's options, declared in package vtpm and
// documented in docs/options.md.
//
// With a disk (xl disk=[...]) and a vtpm device whose backend is the
// manager domain (xl vtpm=["backend=<manager>,uuid=..."]), the TPM's state
// outlives the domain: package vstate keeps it on the disk, encrypted, with
// its key held by the manager, saved after every command that changed it.
// With neither, the state lives only as long as the domain.
package main

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/xenvtpm/xenvtpm/board/xen"
	"github.com/xenvtpm/xenvtpm/domain"
	"github.com/xenvtpm/xenvtpm/drivers/blkfront"
	"github.com/xenvtpm/xenvtpm/drivers/tpmback"
	"github.com/xenvtpm/xenvtpm/grant"
	"github.com/xenvtpm/xenvtpm/mgrdomain/proto"
	"github.com/xenvtpm/xenvtpm/vtpmdomain/mgrlink"
	"github.com/xenvtpm/xenvtpm/vtpmdomain/platform"
	"github.com/xenvtpm/xenvtpm/vtpmdomain/vstate"
	"github.com/xenvtpm/xenvtpm/vtpmdomain/vtpm"
)

// Version is set by the build.
var Version = "dev"

var d *domain.Domain

// refuse ends the domain with one console line that says why, so that
// `xl create` users find the reason in the console log.
func refuse(format string, a ...any) {
	d.Log.Errorf("vTPM REFUSED to start: "+format, a...)
	d.Exit(1)
}

func main() {
	d = domain.Start("vtpm", vtpm.Spec())
	t0 := time.Now()
	opts, err := vtpm.ParseOptions(d.Config)
	if err != nil {
		d.Log.Errorf("bad command line: %v", err)
		d.Exit(1)
	}
	d.Log.Infof("xenvtpm vTPM domain %s, domid %d, TPM %s", Version, d.ID, opts.Family)

	cfg := vtpm.Config{Options: opts, Log: d.Log}
	if disk, mgr := hasDevice("device/vbd"), hasDevice("device/vtpm"); disk || mgr {
		persist(&cfg, disk, mgr)
	} else {
		d.Log.Infof("no disk and no manager (xl disk=[...] and vtpm=[\"backend=<manager>\"]): this TPM's keys, NV indices and seeds live only as long as this domain")
		if len(opts.HWInitPCR) > 0 {
			refuse("hwinitpcr= needs the manager domain: give this domain vtpm=[\"backend=<manager>,uuid=...\"]")
		}
	}
	srv, err := vtpm.NewServer(cfg)
	if err != nil {
		refuse("%v", err)
	}

	mapper, err := grant.NewMapper(xen.GrantOps{H: d.Xen}, grant.BackendWindow, 0)
	if err != nil {
		d.Log.Errorf("grant mapper: %v", err)
		d.Exit(1)
	}
	// The count of live foreign mappings is logged whenever it changes,
	// so a frontend that is gone can be seen to have left none behind (the
	// hostile-frontend scenario, build/hostilefront/testbed, checks it).
	var liveMu sync.Mutex
	lastLive := 0
	logLive := func(*tpmback.Frontend, bool) {
		liveMu.Lock()
		defer liveMu.Unlock()
		if n := mapper.Live(); n != lastLive {
			d.Log.Infof("grant mappings live: %d", n)
			lastLive = n
		}
	}
	back, err := tpmback.New(tpmback.Config{
		Store:  d.Store,
		Grants: mapper,
		Events: d.Events,
		Log:    d.Log,
		Handler: func(fe *tpmback.Frontend, locality uint8, cmd []byte) []byte {
			return srv.Handle(vtpm.Peer{Name: fe.String(), Control: fe.Domid == platform.Control}, locality, cmd)
		},
		Mapped: logLive,
	})
	if err != nil {
		d.Log.Errorf("tpmback: %v", err)
		d.Exit(1)
	}
	// Every state change is on the disk before its response leaves, so a
	// shutdown only has to let the command in progress finish and store
	// what the TPM keeps lazily (srv.Close).
	runCtx, stop := context.WithCancel(context.Background())
	runDone := make(chan struct{})
	if err := d.OnShutdown(context.Background(), func(string) {
		// Stop serving first: the command in progress finishes, then
		// tpmback tells each guest the backend is Closed.
		stop()
		select {
		case <-runDone:
		case <-time.After(3 * time.Second):
		}
		st, unsaved := srv.Close()
		if unsaved {
			d.Log.Errorf("powering off with the last state change unsaved (its save failed)")
		}
		d.LogMemory()
		d.Log.Infof("%d commands served, %d state saves, %d commands answered TPM_RC_NV_RATE: powering off", st.Commands, st.Saves, st.RateRefused)
		d.Exit(0)
	}); err != nil {
		d.Log.Errorf("control/shutdown watch: %v; `xl shutdown` will not be seen", err)
	}
	budget := "no save budget (state in memory only)"
	if cfg.Saver != nil {
		budget = fmt.Sprintf("save budget %d, refill %v", opts.SaveBudget, opts.SaveRefill)
	}
	d.Log.Infof("serving TPM %s (startup mode %s) to frontends through backend/vtpm at localities %v, %s (start-up took %v)",
		opts.Family, opts.Startup, opts.Localities, budget, time.Since(t0).Round(time.Millisecond))
	err = back.Run(runCtx)
	close(runDone)
	if runCtx.Err() != nil {
		select {} // shutting down: the OnShutdown handler exits the domain
	}
	d.Log.Errorf("tpmback stopped: %v", err)
	d.Exit(1)
}

// hasDevice reports whether this domain has a device of the given class
// (a non-empty device/<class> directory in xenstore).
func hasDevice(dir string) bool {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	names, err := d.Store.Directory(ctx, dir)
	return err == nil && len(names) > 0
}

// persist opens the disk and the manager, loads the saved state into cfg,
// or decides that this is a new vTPM, and sets cfg's Saver and HWPCR. It
// refuses, ending the domain, when the state cannot be loaded and `clear`
// was not given.
func persist(cfg *vtpm.Config, hasDisk, hasManager bool) {
	if !hasDisk {
		refuse("a manager (vtpm device) but no disk: give this domain disk=[\"...,vdev=xvda,access=rw\"] for its state")
	}
	if !hasManager {
		refuse("a disk but no manager: give this domain vtpm=[\"backend=<manager>,uuid=...\"]; without the manager its state could not be sealed")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	table, err := grant.NewTable(xen.GrantOps{H: d.Xen}, grant.FrontendWindow, 0)
	if err != nil {
		refuse("grant table: %v", err)
	}
	disk, err := blkfront.Open(ctx, blkfront.Config{Store: d.Store, Grants: table, Events: d.Events, Logf: d.Log.Infof})
	if err != nil {
		refuse("disk (xl disk=[...], first device/vbd): %v", err)
	}
	if disk.ReadOnly() {
		refuse("disk %s is read-only: the vTPM writes its state there (give it access=rw)", disk.Node())
	}
	d.Log.Infof("disk %s: %d MiB, sectors of %d bytes, flush %s",
		disk.Node(), disk.Sectors()*uint64(disk.SectorSize())>>20, disk.SectorSize(), disk.FlushMethod())
	// The manager through a vtpm device; after a manager restart the link
	// finds the device `xl vtpm-attach` adds (package mgrlink).
	mgr, err := mgrlink.Open(ctx, mgrlink.Config{Store: d.Store, Pages: grant.TableSharer{Table: table}, Events: d.Events, Logf: d.Log.Infof})
	if err != nil {
		refuse("manager (xl vtpm=[\"backend=<manager>\"]): %v", err)
	}
	send := func(cmd []byte) ([]byte, error) {
		c, cl := context.WithTimeout(context.Background(), time.Minute)
		defer cl()
		return mgr.Send(c, cmd)
	}

	tl := time.Now()
	st, state, err := vstate.Open(vstate.Config{Device: disk, Manager: vstate.NewManagerClient(send), SlotSize: vstate.DefaultSlotSize})
	switch {
	case err == nil:
		ss := st.Stats()
		d.Log.Infof("resumed the saved state: %d bytes, slot %d generation %d, loaded and verified in %v",
			len(state), ss.Slot, ss.Generation, time.Since(tl).Round(time.Millisecond))
		cfg.State = state
	case errors.Is(err, vstate.ErrFresh):
		d.Log.Infof("new vTPM: the manager has no record and the disk no state; manufacturing a TPM (fresh seeds)")
	case st != nil && cfg.Options.ClearGiven && !errors.Is(err, vstate.ErrManager):
		d.Log.Errorf("the saved state cannot be used: %v", err)
		if err := st.Reset(); err != nil {
			refuse("clear: discarding the old state: %v", err)
		}
		d.Log.Infof("clear given: starting a fresh TPM in its place; the old state is discarded at the first save")
	default:
		refuse("%v. Nothing was changed. Start it with extra=\"clear\" to discard that state and make a fresh TPM.", err)
	}
	cfg.Saver = saver{st}
	cfg.HWPCR = func(i int) ([20]byte, error) { return readHWPCR(send, i) }
	// ask sends a vTPM request to the manager and returns its answer.
	ask := func(req []byte, err error) ([]byte, error) {
		if err != nil {
			return nil, err
		}
		rsp, err := send(req)
		if err != nil {
			return nil, err
		}
		return proto.ParseResponse(rsp, proto.TagVTPMReq)
	}
	cfg.CertifyEK = func(m proto.CertifyEK) ([]byte, error) { return ask(proto.EncodeCertifyEK(m)) }
	cfg.DeepQuote = func(m proto.DeepQuote) ([]byte, error) { return ask(proto.EncodeDeepQuote(m)) }
}

// saver logs each save: where the state went and what it cost.
type saver struct{ st *vstate.Store }

func (s saver) Save(state []byte) error {
	if err := s.st.Save(state); err != nil {
		return err
	}
	l := s.st.Stats().Last
	d.Log.Infof("state saved: %d bytes to slot %d (generation %d, payload at byte %d), %d bytes written, disk %v, manager %v",
		l.StateBytes, l.Slot, l.Generation, l.PayloadOffset, l.BytesWritten,
		l.Disk.Round(time.Microsecond), l.Manager.Round(time.Microsecond))
	if l.MarkerErr != nil {
		d.Log.Infof("state saved, but its first-save marker was not written: %v", l.MarkerErr)
	}
	return nil
}

// readHWPCR reads hardware PCR i (SHA-1) through the manager's TPM_PcrRead
// pass-through.
func readHWPCR(send func([]byte) ([]byte, error), i int) ([20]byte, error) {
	var v [20]byte
	rsp, err := send(proto.EncodePCRRead(uint32(i)))
	if err != nil {
		return v, err
	}
	p, err := proto.ParseResponse(rsp, proto.TagTPMReq)
	if err != nil {
		return v, err
	}
	if len(p) != len(v) {
		return v, fmt.Errorf("PcrRead answered %d bytes, want %d", len(p), len(v))
	}
	copy(v[:], p)
	return v, nil
}
