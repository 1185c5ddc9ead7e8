//go:build tamago

package domain

import (
	"context"
	"time"
)

// OnShutdown calls stop once when the toolstack asks the domain to end
// (`xl shutdown`, `xl reboot`: xenstore control/shutdown = poweroff, halt
// or reboot, per xen/include/public/io/xs_wire.h's control protocol). The
// request is acknowledged first by clearing the key, as Linux does, so xl
// sees it taken. stop does the image's own closing and ends the domain
// (Exit(0) powers off; a reboot's restart is the toolstack's on_reboot
// decision). Other values are logged and ignored.
func (d *Domain) OnShutdown(ctx context.Context, stop func(request string)) error {
	w, err := d.Store.Watch(ctx, "control/shutdown")
	if err != nil {
		return err
	}
	go func() {
		for range w.Events() {
			rctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			v, err := d.Store.ReadString(rctx, "control/shutdown")
			cancel()
			if err != nil || v == "" {
				continue // the initial event, or our own acknowledgement
			}
			switch v {
			case "poweroff", "halt", "reboot":
			default:
				d.Log.Infof("control/shutdown=%q ignored (not poweroff, halt or reboot)", v)
				continue
			}
			d.Log.Infof("shutdown requested (%s)", v)
			actx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			if err := d.Store.WriteString(actx, "control/shutdown", ""); err != nil {
				d.Log.Infof("acknowledging control/shutdown: %v", err)
			}
			cancel()
			stop(v)
			return
		}
		if err := w.Err(); err != nil && ctx.Err() == nil {
			d.Log.Errorf("control/shutdown watch ended: %v; `xl shutdown` will not be seen", err)
		}
	}()
	return nil
}
