package tpmback

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/xenvtpm/xenvtpm/evtchn"
	"github.com/xenvtpm/xenvtpm/grant"
	"github.com/xenvtpm/xenvtpm/ring"
	"github.com/xenvtpm/xenvtpm/xenbus"
	"github.com/xenvtpm/xenvtpm/xenbus/xswire"
)

// unwatchTimeout bounds the clean-up calls made after a context ended.
const unwatchTimeout = time.Second

// Frontend describes one connected or connecting frontend. The fields are
// fixed when the instance starts.
type Frontend struct {
	// Domid is the frontend's domain and Handle its device number.
	Domid  uint16
	Handle uint32
	// UUID is the vTPM's uuid from the backend directory (canonical form);
	// it is what the manager identifies the vTPM by.
	UUID string
	// BackendPath and FrontendPath are the two xenstore directories.
	BackendPath, FrontendPath string
}

func (fe *Frontend) String() string { return fmt.Sprintf("%d/%d", fe.Domid, fe.Handle) }

// conn is a live connection: the mapped page and the bound channel.
type conn struct {
	gen  uint64
	m    *grant.Mapping
	page *ring.Page
	ch   *evtchn.Channel
}

type result struct {
	gen uint64
	req ring.Request
	rsp []byte
}

// instance is one backend/vtpm/<domid>/<devid> directory, driven by one
// goroutine.
type instance struct {
	b     *Backend
	fe    *Frontend
	dir   string // relative backend directory
	state xenbus.State
	conn  *conn
	gen   uint64
	// busy is set while a Handler call runs, for this connection or an
	// earlier one: calls for one frontend never overlap, so a request on
	// a new connection waits for the previous call to return.
	busy bool
	done chan result
	// guestLog limits the lines a guest can cause by what it writes on
	// its page (one per bad request at most).
	guestLog logLimit
	quit     chan struct{}
	quitOne  sync.Once
	kick     chan struct{} // a key of the backend directory changed
	rescan   chan struct{} // the backend's periodic rescan
	feState  xenbus.State  // the frontend state last acted on
	buf      []byte
}

func newInstance(b *Backend, k key, dir, fePath, uuid string) *instance {
	return &instance{
		b:        b,
		fe:       &Frontend{Domid: k.dom, Handle: k.handle, BackendPath: dir, FrontendPath: fePath, UUID: uuid},
		dir:      dir,
		done:     make(chan result, 1),
		quit:     make(chan struct{}),
		kick:     make(chan struct{}, 1),
		rescan:   make(chan struct{}, 1),
		guestLog: logLimit{now: b.now},
	}
}

// guestErrorf logs a problem the frontend caused, within guestLog's
// limit; a line after suppressed ones says how many there were.
func (in *instance) guestErrorf(format string, a ...any) {
	ok, n := in.guestLog.allow()
	if !ok {
		return
	}
	msg := fmt.Sprintf(format, a...)
	if n > 0 {
		msg += fmt.Sprintf(" (%d similar messages about this frontend suppressed)", n)
	}
	in.log().Errorf("tpmback: frontend %v: %s", in.fe, msg)
}

// flushGuestLog reports messages still suppressed when the connection
// ends, so the count is never lost.
func (in *instance) flushGuestLog() {
	if n := in.guestLog.take(); n > 0 {
		in.log().Errorf("tpmback: frontend %v: %d more messages about its requests suppressed", in.fe, n)
	}
}

func (in *instance) kickToolstack() {
	select {
	case in.kick <- struct{}{}:
	default:
	}
}

// recheck asks the instance to read its online key and its frontend's
// state again, for events xenstored may have dropped.
func (in *instance) recheck() {
	select {
	case in.rescan <- struct{}{}:
	default:
	}
}

// online reads the backend's online key; libxl writes 1 at creation and 0
// when it removes the device. A missing key counts as online.
func (in *instance) online(ctx context.Context) bool {
	v, err := in.b.cfg.Store.ReadString(ctx, in.dir+"/online")
	return err != nil || v != "0"
}

// removedByToolstack detaches the device when the toolstack has taken it
// offline (online = 0: xl vtpm-detach, the frontend's domain destroyed),
// and reports whether it did.
func (in *instance) removedByToolstack(ctx context.Context, w *xenbus.Watch) bool {
	if in.online(ctx) {
		return false
	}
	in.detach(ctx, "device removed by the toolstack", w)
	return true
}

// detach ends a device the toolstack is removing: Closed, then the backend
// directory goes (libxl waits for both when the backend is not in dom0).
// The directory goes a moment after Closed: libxl reads our state when its
// watch on it fires, and if the directory is already gone that read fails
// and libxl reports the removal as failed (seen with xl vtpm-detach).
func (in *instance) detach(ctx context.Context, why string, w *xenbus.Watch) {
	in.disconnect(why)
	in.switchState(ctx, xenbus.StateClosed)
	in.waitFrontendGone(ctx, w)
	if err := in.b.cfg.Store.Rm(ctx, in.dir); err != nil && !errors.Is(err, xenbus.ErrNoEnt) {
		in.log().Errorf("tpmback: frontend %v: remove %s: %v", in.fe, in.dir, err)
	}
	in.log().Infof("VTPM detached from Frontend %v (%s)", in.fe, why)
}

// closedGrace is how long the backend keeps its directory after writing
// Closed, unless the frontend's directory goes first: time for libxl (in a
// slow dom0) to see Closed, well inside libxl's own 10 s device timeout.
const closedGrace = 2 * time.Second

func (in *instance) waitFrontendGone(ctx context.Context, w *xenbus.Watch) {
	ctx, cancel := context.WithTimeout(ctx, closedGrace)
	defer cancel()
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	var events <-chan string
	if w != nil {
		events = w.Events()
	}
	for {
		if s, err := in.b.cfg.Store.ReadState(ctx, in.fe.FrontendPath); err != nil || s == xenbus.StateUnknown {
			return
		}
		select {
		case <-events:
		case <-tick.C:
		case <-ctx.Done():
			return
		}
	}
}

func (in *instance) stop() { in.quitOne.Do(func() { close(in.quit) }) }

func (in *instance) log() Logger { return in.b.cfg.Log }

// writeIfPresent writes dir/key only while the backend directory still
// exists, so a late write does not recreate a directory the toolstack
// removed.
func (in *instance) writeIfPresent(ctx context.Context, key, value string) error {
	return in.b.cfg.Store.Transaction(ctx, func(tx *xenbus.Tx) error {
		if _, err := tx.Read(ctx, in.dir+"/frontend"); err != nil {
			return err
		}
		return tx.WriteString(ctx, in.dir+"/"+key, value)
	})
}

func (in *instance) switchState(ctx context.Context, s xenbus.State) {
	if err := in.b.cfg.Store.SwitchState(ctx, in.dir, s); err != nil {
		if !errors.Is(err, xenbus.ErrNoEnt) && ctx.Err() == nil {
			in.log().Errorf("tpmback: frontend %v: %v", in.fe, err)
		}
		return
	}
	in.state = s
}

func (in *instance) run(ctx context.Context) {
	st := in.b.cfg.Store
	defer func() {
		in.disconnect("backend stopped")
		if ctx.Err() != nil {
			// The whole backend is stopping (its domain shuts down):
			// say so, so the frontend fails its requests at once
			// instead of waiting on a backend that is gone.
			cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
			in.switchState(cctx, xenbus.StateClosed)
			cancel()
		}
	}()
	uuid := in.fe.UUID
	if !ValidUUID(uuid) {
		in.log().Errorf("tpmback: frontend %v rejected: uuid %q is not in canonical 36-character form", in.fe, uuid)
		in.switchState(ctx, xenbus.StateClosed)
		for {
			select {
			case <-in.kick:
			case <-in.rescan:
			case <-in.quit:
				return
			case <-ctx.Done():
				return
			}
			if in.removedByToolstack(ctx, nil) {
				return
			}
		}
	}
	// feature-protocol-v2 first: a frontend may check it as soon as it
	// sees InitWait.
	if err := in.writeIfPresent(ctx, "feature-protocol-v2", "1"); err != nil {
		in.log().Errorf("tpmback: frontend %v: write feature-protocol-v2: %v", in.fe, err)
		return
	}
	in.switchState(ctx, xenbus.StateInitWait)
	in.log().Debugf("tpmback: frontend %v (uuid %s) at %s: InitWait", in.fe, uuid, in.fe.FrontendPath)

	w, err := st.Watch(ctx, in.fe.FrontendPath+"/state")
	if err != nil {
		why := ""
		if errors.Is(err, xswire.Err2Big) {
			why = fmt.Sprintf(" (xenstored's quota of watches for this domain is reached: it needs one for each vTPM device it serves, %d here, and a few of its own; raise the quota, e.g. C xenstored's --watch-nb)", in.b.count())
		}
		in.log().Errorf("tpmback: frontend %v refused: cannot watch its state: %v%s", in.fe, err, why)
		// Closed, so that the frontend fails at once rather than wait
		// for a backend that cannot follow it.
		in.switchState(ctx, xenbus.StateClosed)
		return
	}
	defer func() {
		uctx, c := context.WithTimeout(context.WithoutCancel(ctx), unwatchTimeout)
		w.Unwatch(uctx)
		c()
	}()
	for {
		var evc <-chan struct{}
		if in.conn != nil {
			evc = in.conn.ch.C
		}
		select {
		case _, ok := <-w.Events():
			if !ok {
				in.log().Errorf("tpmback: frontend %v: state watch ended: %v", in.fe, w.Err())
				return
			}
			in.frontendChanged(ctx)
		case <-evc:
			in.serve()
		case r := <-in.done:
			in.busy = false
			if in.respond(r) {
				// The call was for a connection that has gone; its
				// successor's first request may be waiting on the
				// page, its event spent while the call ran.
				in.serve()
			}
		case <-in.kick:
			if in.removedByToolstack(ctx, w) {
				return
			}
		case <-in.rescan:
			if in.removedByToolstack(ctx, w) {
				return
			}
			in.frontendRechecked(ctx)
		case <-in.quit:
			in.log().Infof("VTPM detached from Frontend %v", in.fe)
			return
		case <-ctx.Done():
			return
		}
	}
}

// frontendChanged follows the frontend's state after its watch fired.
func (in *instance) frontendChanged(ctx context.Context) {
	if s, ok := in.frontendState(ctx); ok {
		in.follow(ctx, s)
	}
}

// frontendRechecked follows the frontend's state if it is not the one last
// followed: a change whose watch event xenstored dropped.
func (in *instance) frontendRechecked(ctx context.Context) {
	if s, ok := in.frontendState(ctx); ok && s != in.feState {
		in.log().Infof("tpmback: frontend %v is %v, which no watch event said (was %v)", in.fe, s, in.feState)
		in.follow(ctx, s)
	}
}

func (in *instance) frontendState(ctx context.Context) (xenbus.State, bool) {
	s, err := in.b.cfg.Store.ReadState(ctx, in.fe.FrontendPath)
	if errors.Is(err, xenbus.ErrAccess) {
		// xenstored answers EACCES, not ENOENT, under a destroyed
		// domain's directory: the frontend is gone.
		s, err = xenbus.StateUnknown, nil
	}
	if err != nil {
		in.log().Errorf("tpmback: frontend %v: %v", in.fe, err)
		return 0, false
	}
	return s, true
}

func (in *instance) follow(ctx context.Context, s xenbus.State) {
	in.feState = s
	in.log().Debugf("tpmback: frontend %v is %v, backend %v", in.fe, s, in.state)
	switch s {
	case xenbus.StateInitialised, xenbus.StateConnected:
		if in.conn == nil && in.state == xenbus.StateInitWait {
			if err := in.connect(ctx); err != nil {
				in.guestErrorf("connect: %v", err)
				in.switchState(ctx, xenbus.StateClosing)
			}
		}
	case xenbus.StateClosing:
		in.disconnect("frontend closing")
		in.switchState(ctx, xenbus.StateClosing)
	case xenbus.StateClosed:
		in.disconnect("frontend closed")
		if in.online(ctx) {
			in.switchState(ctx, xenbus.StateInitWait)
		} else {
			in.switchState(ctx, xenbus.StateClosed)
		}
	case xenbus.StateInitialising:
		// A frontend starting over (reboot, reattach) after we closed.
		if in.conn != nil {
			in.disconnect("frontend restarted")
		}
		if in.state != xenbus.StateInitWait {
			in.switchState(ctx, xenbus.StateInitWait)
		}
	case xenbus.StateUnknown:
		// The frontend directory is gone (domain destroyed): let go of its
		// page now rather than when the toolstack removes our directory.
		if in.conn != nil {
			in.disconnect("frontend gone")
			in.switchState(ctx, xenbus.StateClosed)
		}
	}
}

func (in *instance) connect(ctx context.Context) error {
	st := in.b.cfg.Store
	fe := in.fe.FrontendPath
	v2, err := st.ReadString(ctx, fe+"/feature-protocol-v2")
	if err != nil || v2 != "1" {
		return fmt.Errorf("vTPM protocol 2 required (feature-protocol-v2 is %q, %v)", v2, err)
	}
	ref, err := st.ReadUint(ctx, fe+"/ring-ref", 32)
	if err != nil {
		return err
	}
	port, err := st.ReadUint(ctx, fe+"/event-channel", 32)
	if err != nil {
		return err
	}
	m, err := in.b.cfg.Grants.Map(in.fe.Domid, grant.Ref(ref), false)
	if err != nil {
		return err
	}
	in.mapped(true)
	page, err := ring.New(m.Page)
	if err != nil {
		in.unmap(m)
		return err
	}
	ch, err := in.b.cfg.Events.BindInterdomain(in.fe.Domid, evtchn.Port(port))
	if err != nil {
		in.unmap(m)
		return err
	}
	in.gen++
	in.conn = &conn{gen: in.gen, m: m, page: page, ch: ch}
	if err := in.writeIfPresent(ctx, "ready", "1"); err != nil {
		in.disconnect("setup failed")
		return fmt.Errorf("write ready: %w", err)
	}
	in.switchState(ctx, xenbus.StateConnected)
	in.log().Infof("VTPM attached to Frontend %v (uuid %s)", in.fe, in.fe.UUID)
	// A request submitted before the channel was bound raised no event.
	in.serve()
	return nil
}

func (in *instance) disconnect(why string) {
	c := in.conn
	if c == nil {
		return
	}
	in.conn = nil
	in.flushGuestLog()
	if err := c.ch.Close(); err != nil {
		in.log().Errorf("tpmback: frontend %v: %v", in.fe, err)
	}
	in.unmap(c.m)
	in.log().Debugf("tpmback: frontend %v disconnected: %s", in.fe, why)
}

// unmap unmaps the frontend's shared page; if Xen refuses, the page stays
// mapped and the error is logged.
func (in *instance) unmap(m *grant.Mapping) {
	if err := in.b.cfg.Grants.Unmap(m); err != nil {
		in.log().Errorf("tpmback: frontend %v: %v", in.fe, err)
		return
	}
	in.mapped(false)
}

// mapped reports a map or unmap of the frontend's shared page to
// Config.Mapped.
func (in *instance) mapped(mapped bool) {
	if f := in.b.cfg.Mapped; f != nil {
		f(in.fe, mapped)
	}
}

// serve looks at the page after an event.
func (in *instance) serve() {
	c := in.conn
	if c == nil || in.busy {
		// While a command runs, SUBMIT is ours to finish and CANCEL is
		// answered by that finish: nothing to do.
		return
	}
	switch s := c.page.State(); s {
	case ring.StateSubmit:
		req, err := c.page.Request(in.buf)
		if err != nil {
			in.guestErrorf("bad request: %v", err)
			in.finish(c, req, ErrorResponse(req.Cmd))
			return
		}
		in.buf = req.Cmd
		req.Cmd = append([]byte(nil), req.Cmd...)
		in.busy = true
		fe, h, gen := in.fe, in.b.cfg.Handler, c.gen
		go func() {
			in.done <- result{gen: gen, req: req, rsp: h(fe, req.Locality, req.Cmd)}
		}()
	case ring.StateCancel:
		c.page.Idle()
		in.notify(c)
	case ring.StateIdle, ring.StateFinish:
		// Spurious or flooded notification: nothing pending.
	default:
		in.guestErrorf("invalid page state %v", s)
		c.page.Idle()
		in.notify(c)
	}
}

// respond writes a Handler's response on the page, and reports whether it
// was dropped because its connection has closed.
func (in *instance) respond(r result) (stale bool) {
	c := in.conn
	if c == nil || c.gen != r.gen {
		in.log().Debugf("tpmback: frontend %v: dropping the response of a closed connection", in.fe)
		return true
	}
	rsp := r.rsp
	if len(rsp) == 0 {
		in.log().Errorf("tpmback: frontend %v: handler returned no response", in.fe)
		rsp = ErrorResponse(r.req.Cmd)
	} else if len(rsp) > r.req.MaxResponse() {
		// The frontend chose where the response goes (nr_extra_pages).
		in.guestErrorf("%d-byte response does not fit the page (at most %d)", len(rsp), r.req.MaxResponse())
		rsp = ErrorResponse(r.req.Cmd)
	}
	in.finish(c, r.req, rsp)
	// A SUBMIT that raced with the running command (a hostile frontend)
	// is picked up by its own later event.
	return false
}

func (in *instance) finish(c *conn, req ring.Request, rsp []byte) {
	if err := c.page.Finish(req, rsp); err != nil {
		in.guestErrorf("%v", err)
		c.page.Idle()
	}
	in.notify(c)
}

func (in *instance) notify(c *conn) {
	if err := c.ch.Notify(); err != nil {
		in.log().Errorf("tpmback: frontend %v: %v", in.fe, err)
	}
}
