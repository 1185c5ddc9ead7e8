// Package vtpmdev attaches a vtpm frontend in this domain (dom0, or the
// domain running the project's dom0 command) to a vTPM domain, the way
// libxl attaches a guest's `vtpm=["backend=..."]` device
// (tools/libs/light/libxl_vtpm.c and libxl_device.c): it writes the
// frontend and backend directories with libxl's keys and permissions in
// one transaction, connects drivers/tpmfront through them, and on Close
// disconnects and removes them as `xl vtpm-detach` does. The vTPM domain's
// tpmback sees an ordinary frontend whose domain is this one.
package vtpmdev

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/xenvtpm/xenvtpm/drivers/tpmfront"
	"github.com/xenvtpm/xenvtpm/grant"
	"github.com/xenvtpm/xenvtpm/xenbus"
)

// Store is the part of the xenstore client used here; *xenbus.Client
// implements it.
type Store interface {
	tpmfront.Store
	Read(ctx context.Context, path string) ([]byte, error)
	Directory(ctx context.Context, path string) ([]string, error)
	SetPerms(ctx context.Context, path string, perms []xenbus.Perm) error
	Mkdir(ctx context.Context, path string) error
}

// Config says which vTPM domain to attach to and with what.
type Config struct {
	Store  Store
	Pages  grant.Sharer
	Events tpmfront.Events
	// Self is this domain's id (the frontend's domain).
	Self uint16
	// Backend is the vTPM domain (or the manager domain, whose tpmback
	// serves dom0's management requests the same way).
	Backend uint16
	// UUID is written to the backend directory as libxl does. A vTPM
	// domain does not use it; a manager identifies vTPMs by it, but takes
	// management requests by the frontend's domain, so a dom0 frontend
	// needs none of its own. Empty: a random one.
	UUID string
	// Logf receives progress; nil discards it.
	Logf func(format string, a ...any)
}

// Paths are the device's two xenstore directories.
type Paths struct {
	Frontend, Backend string
	Devid             int
}

// Device is an attached vtpm frontend.
type Device struct {
	*tpmfront.Front
	Paths Paths
	cfg   Config
}

// DetachTimeout bounds waiting for the backend to let go on Close, as
// libxl's device removal timeout does.
const DetachTimeout = 10 * time.Second

// ErrNotVTPM is wrapped by Attach when the backend domain does not answer
// as a vTPM backend.
var ErrNotVTPM = errors.New("no vTPM backend answered")

// Attach writes the device, opens the frontend and waits until the vTPM
// domain's backend is connected (ctx bounds the wait). On failure nothing
// is left in xenstore.
func Attach(ctx context.Context, cfg Config) (_ *Device, err error) {
	if cfg.Store == nil || cfg.Pages == nil || cfg.Events == nil {
		return nil, errors.New("vtpmdev: Config needs Store, Pages and Events")
	}
	if cfg.Backend == cfg.Self {
		return nil, fmt.Errorf("vtpmdev: domain %d cannot be its own vTPM backend", cfg.Self)
	}
	if cfg.Logf == nil {
		cfg.Logf = func(string, ...any) {}
	}
	if cfg.UUID == "" {
		cfg.UUID = newUUID()
	}
	st := cfg.Store
	if _, err := st.Read(ctx, fmt.Sprintf("/local/domain/%d/domid", cfg.Backend)); err != nil {
		return nil, fmt.Errorf("vtpmdev: vTPM domain %d: %w", cfg.Backend, err)
	}
	var p Paths
	err = st.Transaction(ctx, func(tx *xenbus.Tx) error {
		p, err = add(ctx, tx, cfg)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("vtpmdev: writing the device: %w", err)
	}
	d := &Device{Paths: p, cfg: cfg}
	defer func() {
		if err != nil {
			cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), DetachTimeout)
			d.remove(cctx)
			cancel()
		}
	}()
	cfg.Logf("attaching to domain %d as %s", cfg.Backend, p.Frontend)
	d.Front, err = tpmfront.Open(ctx, tpmfront.Config{Store: st, Pages: cfg.Pages, Events: cfg.Events, Node: p.Frontend})
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			err = fmt.Errorf("%w from domain %d (is it a vTPM domain, and running?): %w", ErrNotVTPM, cfg.Backend, err)
		}
		return nil, fmt.Errorf("vtpmdev: %w", err)
	}
	return d, nil
}

// add picks the first free device number under this domain's
// device/vtpm and writes both directories, with libxl's permissions: each
// side owns its directory and the other side may read it.
func add(ctx context.Context, tx *xenbus.Tx, cfg Config) (Paths, error) {
	used := map[string]bool{}
	names, err := tx.Directory(ctx, fmt.Sprintf("/local/domain/%d/device/vtpm", cfg.Self))
	if err != nil && !errors.Is(err, xenbus.ErrNoEnt) {
		return Paths{}, err
	}
	for _, n := range names {
		used[n] = true
	}
	devid := 0
	for used[strconv.Itoa(devid)] {
		devid++
	}
	p := Paths{
		Frontend: fmt.Sprintf("/local/domain/%d/device/vtpm/%d", cfg.Self, devid),
		Backend:  fmt.Sprintf("/local/domain/%d/backend/vtpm/%d/%d", cfg.Backend, cfg.Self, devid),
		Devid:    devid,
	}
	// A leftover backend directory (a previous run killed before it
	// detached) would be taken for this device's.
	if _, err := tx.Read(ctx, p.Backend); err == nil {
		return Paths{}, fmt.Errorf("%s exists without its frontend: remove it (xenstore-rm) or detach it first", p.Backend)
	}
	// The directories get their permissions before their keys are
	// written, so the keys inherit them (xenstored gives a new node its
	// parent's): the backend must own what it will write, as libxl does.
	fe := []xenbus.Perm{{Domid: cfg.Self, Access: xenbus.AccessNone}, {Domid: cfg.Backend, Access: xenbus.AccessRead}}
	be := []xenbus.Perm{{Domid: cfg.Backend, Access: xenbus.AccessNone}, {Domid: cfg.Self, Access: xenbus.AccessRead}}
	for _, d := range []struct {
		dir   string
		perms []xenbus.Perm
	}{{p.Frontend, fe}, {p.Backend, be}} {
		if err := tx.Mkdir(ctx, d.dir); err != nil {
			return Paths{}, err
		}
		if err := tx.SetPerms(ctx, d.dir, d.perms); err != nil {
			return Paths{}, err
		}
	}
	id := strconv.Itoa(devid)
	for _, kv := range [][2]string{
		{p.Frontend + "/backend", p.Backend},
		{p.Frontend + "/backend-id", strconv.Itoa(int(cfg.Backend))},
		{p.Frontend + "/state", strconv.Itoa(int(xenbus.StateInitialising))},
		{p.Frontend + "/handle", id},
		{p.Backend + "/frontend", p.Frontend},
		{p.Backend + "/frontend-id", strconv.Itoa(int(cfg.Self))},
		{p.Backend + "/online", "1"},
		{p.Backend + "/state", strconv.Itoa(int(xenbus.StateInitialising))},
		{p.Backend + "/handle", id},
		{p.Backend + "/uuid", cfg.UUID},
		{p.Backend + "/resume", "False"},
	} {
		if err := tx.WriteString(ctx, kv[0], kv[1]); err != nil {
			return Paths{}, err
		}
	}
	return p, nil
}

// Close disconnects the frontend and removes the device as `xl
// vtpm-detach` does: online=0 and Closing on the backend, a wait (at most
// DetachTimeout) for it to reach Closed or remove its directory, then both
// directories removed. A vTPM domain that is gone is no error.
func (d *Device) Close(ctx context.Context) error {
	var errs []error
	cctx, cancel := context.WithTimeout(ctx, DetachTimeout)
	defer cancel()
	if d.Front.Gone() == nil {
		if err := d.Front.Close(cctx); err != nil {
			errs = append(errs, err)
		}
	}
	if err := d.remove(cctx); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// remove is the toolstack's half of a detach.
func (d *Device) remove(ctx context.Context) error {
	st := d.cfg.Store
	p := d.Paths
	active := false // a backend took the device up: wait for it to let go
	err := st.Transaction(ctx, func(tx *xenbus.Tx) error {
		s, err := tx.ReadString(ctx, p.Backend+"/state")
		if err != nil {
			return nil // the backend's domain (and directory) is gone
		}
		active = s != strconv.Itoa(int(xenbus.StateInitialising))
		if err := tx.WriteString(ctx, p.Backend+"/online", "0"); err != nil {
			return err
		}
		if s != strconv.Itoa(int(xenbus.StateClosed)) {
			return tx.WriteString(ctx, p.Backend+"/state", strconv.Itoa(int(xenbus.StateClosing)))
		}
		return nil
	})
	var errs []error
	switch {
	case err != nil:
		errs = append(errs, err)
	case active:
		if _, err := st.WaitForState(ctx, p.Backend, xenbus.StateClosed, xenbus.StateUnknown); err != nil {
			d.cfg.Logf("vTPM domain %d did not close %s: %v; removing it anyway", d.cfg.Backend, p.Backend, err)
		}
	}
	rctx := context.WithoutCancel(ctx)
	if err := st.Transaction(rctx, func(tx *xenbus.Tx) error {
		for _, dir := range []string{p.Frontend, p.Backend} {
			if err := tx.Rm(rctx, dir); err != nil && !errors.Is(err, xenbus.ErrNoEnt) && !errors.Is(err, xenbus.ErrAccess) {
				return err
			}
		}
		return nil
	}); err != nil {
		errs = append(errs, fmt.Errorf("removing %s and %s: %w", p.Frontend, p.Backend, err))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("vtpmdev: detach: %w", err)
	}
	return nil
}

// newUUID is a random (version 4) UUID in canonical form.
func newUUID() string {
	var b [16]byte
	rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}
