package xentest

import (
	"context"
	"fmt"

	"github.com/xenvtpm/xenvtpm/xenbus"
)

// VTPMPaths are a vtpm device's two xenstore directories.
type VTPMPaths struct {
	Frontend, Backend string
}

// Paths returns the libxl paths of device devid between be and fe.
func Paths(be, fe uint16, devid int) VTPMPaths {
	return VTPMPaths{
		Frontend: fmt.Sprintf("/local/domain/%d/device/vtpm/%d", fe, devid),
		Backend:  fmt.Sprintf("/local/domain/%d/backend/vtpm/%d/%d", be, fe, devid),
	}
}

// AddVTPM writes the nodes libxl writes for `vtpm=["backend=be"]`, in one
// transaction, as libxl__device_generic_add does.
func (x *Xen) AddVTPM(ctx context.Context, be, fe uint16, devid int, uuid string) (VTPMPaths, error) {
	p := Paths(be, fe, devid)
	return p, x.writeAll(ctx, [][2]string{
		{p.Frontend + "/backend", p.Backend},
		{p.Frontend + "/backend-id", fmt.Sprint(be)},
		{p.Frontend + "/state", "1"},
		{p.Frontend + "/handle", fmt.Sprint(devid)},
		{p.Backend + "/frontend", p.Frontend},
		{p.Backend + "/frontend-id", fmt.Sprint(fe)},
		{p.Backend + "/online", "1"},
		{p.Backend + "/state", "1"},
		{p.Backend + "/handle", fmt.Sprint(devid)},
		{p.Backend + "/uuid", uuid},
		{p.Backend + "/resume", "False"},
	})
}

// RemoveVTPM removes both directories, as libxl does after `xl destroy` or
// `xl vtpm-detach`.
func (x *Xen) RemoveVTPM(ctx context.Context, p VTPMPaths) error {
	return x.removeAll(ctx, p.Frontend, p.Backend)
}

// writeAll writes the nodes in one transaction as dom0, as
// libxl__device_generic_add does.
func (x *Xen) writeAll(ctx context.Context, kvs [][2]string) error {
	c := x.Store.Connect(0)
	defer c.Close()
	return c.Transaction(ctx, func(tx *xenbus.Tx) error {
		for _, kv := range kvs {
			if err := tx.WriteString(ctx, kv[0], kv[1]); err != nil {
				return err
			}
		}
		return nil
	})
}

// removeAll removes directories in one transaction as dom0.
func (x *Xen) removeAll(ctx context.Context, dirs ...string) error {
	c := x.Store.Connect(0)
	defer c.Close()
	return c.Transaction(ctx, func(tx *xenbus.Tx) error {
		for _, d := range dirs {
			tx.Rm(ctx, d)
		}
		return nil
	})
}

// Write sets a node as dom0 would.
func (x *Xen) Write(ctx context.Context, path, value string) error {
	c := x.Store.Connect(0)
	defer c.Close()
	return c.WriteString(ctx, path, value)
}

// DetachVTPM removes a device the way libxl does for `xl vtpm-detach` and
// `xl destroy` with a backend in a driver domain: online=0 and
// state=Closing (unless already Closed) in one transaction, wait for the
// backend to reach Closed and then for the backend directory to disappear,
// then remove what is left. It reports whether the backend did its part
// (libxl would time out after 10 s otherwise).
func (x *Xen) DetachVTPM(ctx context.Context, p VTPMPaths) (backendCooperated bool, err error) {
	c := x.Store.Connect(0)
	defer c.Close()
	err = c.Transaction(ctx, func(tx *xenbus.Tx) error {
		s, err := tx.ReadString(ctx, p.Backend+"/state")
		if err != nil {
			return err
		}
		if err := tx.WriteString(ctx, p.Backend+"/online", "0"); err != nil {
			return err
		}
		if s != "6" {
			return tx.WriteString(ctx, p.Backend+"/state", "5")
		}
		return nil
	})
	if err != nil {
		return false, err
	}
	if _, err := c.WaitForState(ctx, p.Backend, xenbus.StateClosed, xenbus.StateUnknown); err != nil {
		return false, err
	}
	w, err := c.Watch(ctx, p.Backend)
	if err != nil {
		return false, err
	}
	defer w.Unwatch(context.WithoutCancel(ctx))
	for backendCooperated = false; !backendCooperated; {
		select {
		case <-w.Events():
		case <-ctx.Done():
			return false, ctx.Err()
		}
		if _, err := c.Read(ctx, p.Backend); err != nil {
			backendCooperated = true
		}
	}
	return true, x.RemoveVTPM(ctx, p)
}
