// Package tpmfront is the frontend of the Xen virtual TPM split driver
// (device type "vtpm"): it sends TPM commands to a backend over the tpmif
// v2 shared page (xen/include/public/io/tpmif.h, see package ring) after
// the xenbus handshake of xen/include/public/io/xenbus.h, done the way
// Linux's xen-tpmfront does it.
//
// Wiring inside a domain:
//
//	table, _ := grant.NewTable(xen.GrantOps{H: d.Xen}, grant.FrontendWindow, 0)
//	f, err := tpmfront.Open(ctx, tpmfront.Config{
//		Store:  d.Store,                          // *xenbus.Client
//		Pages:  grant.TableSharer{Table: table}, // or board/dom0's gntalloc in a Linux dom0
//		Events: d.Events,                         // *evtchn.Mux
//		Node:   "device/vtpm/0",
//	})
//	rsp, err := f.Send(ctx, 0, cmd)
//	tpm := f.TPM(0) // go-tpm transport.TPM with the default timeout
//	f.Close(ctx)
//
// Open reads backend and backend-id, shares a fresh zeroed page and
// allocates an unbound event channel for the backend, writes ring-ref,
// event-channel and feature-protocol-v2=1 in one transaction (retried on
// EAGAIN), switches to Initialised, waits for the backend to be Connected
// (or Initialised) with feature-protocol-v2, and switches to Connected.
//
// Send submits one command at a time. If ctx ends first it writes CANCEL
// and notifies, as Linux does on a timeout, and the next Send waits for
// the backend to leave SUBMIT/CANCEL before reusing the page. Once the
// backend goes Closing or Closed, or its directory disappears (its domain
// died), Send fails at once with ErrGone.
//
// Close: Closing, remove ring-ref and event-channel, Closed, wait for the
// backend to be Closed or InitWait (or gone), Initialising (so the device
// can be opened again), then unbind the channel and end the grant. A
// grant the backend still maps is not reused: the page is kept for ever.
package tpmfront

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/google/go-tpm/tpm2/transport"

	"github.com/xenvtpm/xenvtpm/drivers/internal/xenfront"
	"github.com/xenvtpm/xenvtpm/grant"
	"github.com/xenvtpm/xenvtpm/ring"
	"github.com/xenvtpm/xenvtpm/xenbus"
)

// Store is the part of the xenstore client the frontend uses;
// *xenbus.Client implements it.
type Store interface {
	xenfront.Store
	xenfront.WatchStore
	Rm(ctx context.Context, path string) error
	WaitForState(ctx context.Context, dir string, states ...xenbus.State) (xenbus.State, error)
}

// Events allocates the event channel; *evtchn.Mux implements it.
type Events = xenfront.Events

// Config gathers the frontend's dependencies.
type Config struct {
	Store Store
	// Pages shares the ring page with the backend's domain.
	Pages  grant.Sharer
	Events Events
	// Node is the device directory, relative or absolute; empty means
	// "device/vtpm/0".
	Node string
}

// DefaultTimeout bounds a command sent through the transport.TPM adapter
// when none is given. TPM 2.0 key generation on an emulated TPM can take
// tens of seconds.
const DefaultTimeout = 2 * time.Minute

var (
	// ErrCanceled is returned when the backend answered IDLE: the command
	// was cancelled and produced no response.
	ErrCanceled = errors.New("tpmfront: command cancelled by the backend")
	// ErrClosed is returned by Send after Close.
	ErrClosed = errors.New("tpmfront: device closed")
	// ErrGone is wrapped by Send's error once the backend closed or its
	// domain went away: no answer will come.
	ErrGone = errors.New("tpmfront: backend gone")
)

// Front is an open vtpm frontend.
type Front struct {
	cfg       Config
	node      string
	backend   string
	backendID uint16
	sh        *xenfront.Ring // the shared page and its event channel
	ring      *ring.Page

	mu     sync.Mutex // one command at a time
	closed bool
	rsp    []byte

	watch   *xenfront.BackendWatch
	goneMu  sync.Mutex
	goneErr error         // why the backend is gone, once it is
	goneCh  chan struct{} // closed then
}

// Open connects to the backend named in cfg.Node.
func Open(ctx context.Context, cfg Config) (_ *Front, err error) {
	if cfg.Store == nil || cfg.Pages == nil || cfg.Events == nil {
		return nil, errors.New("tpmfront: Config needs Store, Pages and Events")
	}
	node := cfg.Node
	if node == "" {
		node = "device/vtpm/0"
	}
	f := &Front{cfg: cfg, node: node, goneCh: make(chan struct{})}
	st := cfg.Store
	if f.backend, f.backendID, err = xenfront.Backend(ctx, st, node); err != nil {
		return nil, fmt.Errorf("tpmfront: %w", err)
	}

	if f.sh, err = xenfront.Share(cfg.Pages, cfg.Events, f.backendID); err != nil {
		return nil, fmt.Errorf("tpmfront: %s: %w", node, err)
	}
	defer func() {
		if err != nil {
			f.release()
		}
	}()
	if f.ring, err = ring.New(f.sh.Page.Mem); err != nil {
		return nil, err
	}
	if err = f.sh.Publish(ctx, st, node, [2]string{"feature-protocol-v2", "1"}); err != nil {
		return nil, fmt.Errorf("tpmfront: %w", err)
	}
	defer func() {
		if err != nil {
			// Tell the backend to let go (Linux's xenbus_dev_fatal ends
			// in Closing/Closed the same way); best effort.
			cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
			st.SwitchState(cctx, node, xenbus.StateClosed)
			cancel()
		}
	}()
	s, err := st.WaitForState(ctx, f.backend, xenbus.StateInitialised, xenbus.StateConnected, xenbus.StateClosing, xenbus.StateClosed)
	if err != nil {
		return nil, fmt.Errorf("tpmfront: %s: wait for backend: %w", node, err)
	}
	if s == xenbus.StateClosing || s == xenbus.StateClosed {
		err = fmt.Errorf("tpmfront: %s: backend %s is %v", node, f.backend, s)
		return nil, err
	}
	if v, rerr := st.ReadString(ctx, f.backend+"/feature-protocol-v2"); rerr != nil || v != "1" {
		err = fmt.Errorf("tpmfront: %s: vTPM protocol 2 required (backend feature-protocol-v2 %q, %v)", node, v, rerr)
		return nil, err
	}
	if err = st.SwitchState(ctx, node, xenbus.StateConnected); err != nil {
		return nil, fmt.Errorf("tpmfront: %w", err)
	}
	f.watch, err = xenfront.WatchBackend(ctx, st, f.backend, f.backendGone, func(string, ...any) {})
	if err != nil {
		return nil, fmt.Errorf("tpmfront: %s: %w", node, err)
	}
	return f, nil
}

// backendGone makes every Send, waiting or to come, fail with ErrGone.
func (f *Front) backendGone(why string) {
	f.goneMu.Lock()
	defer f.goneMu.Unlock()
	if f.goneErr == nil {
		f.goneErr = fmt.Errorf("%w: %s", ErrGone, why)
		close(f.goneCh)
	}
}

// Lost returns a channel that is closed once the backend is gone.
func (f *Front) Lost() <-chan struct{} { return f.goneCh }

// Gone returns why the backend is gone, or nil while it is there.
func (f *Front) Gone() error {
	f.goneMu.Lock()
	defer f.goneMu.Unlock()
	return f.goneErr
}

// release unbinds the channel and ends the grant.
func (f *Front) release() error {
	return f.sh.Release()
}

// Node is the device directory the frontend uses.
func (f *Front) Node() string { return f.node }

// Backend returns the backend directory and domain.
func (f *Front) Backend() (path string, domid uint16) { return f.backend, f.backendID }

// Send sends cmd at locality and returns the response. If ctx ends before
// the backend answers, it writes CANCEL and returns ctx's error.
func (f *Front) Send(ctx context.Context, locality uint8, cmd []byte) ([]byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return nil, ErrClosed
	}
	if err := f.Gone(); err != nil {
		return nil, err
	}
	// A cancelled command may still be with the backend: wait until it
	// leaves the page to us.
	if err := f.wait(ctx, func(s ring.State) bool { return s == ring.StateIdle || s == ring.StateFinish }); err != nil {
		return nil, fmt.Errorf("tpmfront: backend still busy with a previous command: %w", err)
	}
	// Drain a stale wake-up so the wait below starts from this command.
	select {
	case <-f.sh.Ch.C:
	default:
	}
	if err := f.ring.Submit(locality, cmd); err != nil {
		return nil, err
	}
	if err := f.sh.Ch.Notify(); err != nil {
		return nil, err
	}
	err := f.wait(ctx, func(s ring.State) bool { return s == ring.StateIdle || s == ring.StateFinish })
	if err != nil {
		f.ring.Cancel()
		f.sh.Ch.Notify()
		return nil, fmt.Errorf("tpmfront: command cancelled: %w", err)
	}
	if f.ring.State() == ring.StateIdle {
		return nil, ErrCanceled
	}
	rsp, err := f.ring.Response(f.rsp)
	if err != nil {
		return nil, err
	}
	f.rsp = rsp
	return append([]byte(nil), rsp...), nil
}

// wait blocks until done(state) holds, waking on events.
func (f *Front) wait(ctx context.Context, done func(ring.State) bool) error {
	for {
		if done(f.ring.State()) {
			return nil
		}
		select {
		case <-f.sh.Ch.C:
		case <-f.goneCh:
			return f.Gone()
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Close disconnects from the backend (see the package doc for the order).
// The Front is unusable afterwards, even if Close returns an error.
func (f *Front) Close(ctx context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return ErrClosed
	}
	f.closed = true
	f.watch.Stop()
	st := f.cfg.Store
	var errs []error
	if err := st.SwitchState(ctx, f.node, xenbus.StateClosing); err != nil {
		errs = append(errs, err)
	}
	for _, k := range []string{"event-channel", "ring-ref"} {
		if err := st.Rm(ctx, f.node+"/"+k); err != nil && !errors.Is(err, xenbus.ErrNoEnt) {
			errs = append(errs, err)
		}
	}
	if err := st.SwitchState(ctx, f.node, xenbus.StateClosed); err != nil {
		errs = append(errs, err)
	}
	if _, err := st.WaitForState(ctx, f.backend, xenbus.StateClosed, xenbus.StateInitWait, xenbus.StateUnknown); err != nil {
		errs = append(errs, err)
	}
	if err := st.SwitchState(ctx, f.node, xenbus.StateInitialising); err != nil {
		errs = append(errs, err)
	}
	if err := f.release(); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("tpmfront: close %s: %w", f.node, err)
	}
	return nil
}

// TPM returns a go-tpm transport over f; each command gets timeout
// (DefaultTimeout if 0) and locality 0.
func (f *Front) TPM(timeout time.Duration) transport.TPM {
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	return tpmTransport{f: f, timeout: timeout}
}

type tpmTransport struct {
	f       *Front
	timeout time.Duration
}

// Send implements transport.TPM.
func (t tpmTransport) Send(cmd []byte) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), t.timeout)
	defer cancel()
	return t.f.Send(ctx, 0, cmd)
}

var _ transport.TPM = tpmTransport{}
