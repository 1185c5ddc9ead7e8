// Package xenfront is the part of a Xen PV frontend's set-up that every
// split driver repeats (Xen's xen/include/public/io/xenbus.h state machine
// and the ring-ref / event-channel keys of io/blkif.h and io/tpmif.h):
// finding the backend from the device directory, granting the shared ring
// page to the backend's domain with an event channel bound to it, and
// publishing both in one xenstore transaction before switching to
// Initialised. drivers/blkfront and drivers/tpmfront use it; what follows
// (which states to wait for, what the backend publishes) is theirs.
package xenfront

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/xenvtpm/xenvtpm/evtchn"
	"github.com/xenvtpm/xenvtpm/grant"
	"github.com/xenvtpm/xenvtpm/xenbus"
)

// Store is the part of the xenstore client used here; *xenbus.Client
// implements it.
type Store interface {
	ReadString(ctx context.Context, path string) (string, error)
	ReadUint(ctx context.Context, path string, bits int) (uint64, error)
	Transaction(ctx context.Context, fn func(tx *xenbus.Tx) error) error
	SwitchState(ctx context.Context, dir string, s xenbus.State) error
}

// Grants grants pages to another domain; *grant.Table implements it.
type Grants interface {
	Grant(domid uint16, gfn uint64, readonly bool) (grant.Ref, error)
	EndAccess(ref grant.Ref) error
}

// Events allocates event channels; *evtchn.Mux implements it.
type Events interface {
	AllocUnbound(remoteDom uint16) (*evtchn.Channel, error)
}

// Backend reads the device directory node's backend path and backend
// domain, which the toolstack wrote.
func Backend(ctx context.Context, st Store, node string) (path string, domid uint16, err error) {
	if path, err = st.ReadString(ctx, node+"/backend"); err != nil {
		return "", 0, fmt.Errorf("%s: %w", node, err)
	}
	id, err := st.ReadUint(ctx, node+"/backend-id", 16)
	if err != nil {
		return "", 0, fmt.Errorf("%s: %w", node, err)
	}
	return path, uint16(id), nil
}

// Ring is a shared ring page granted to the backend's domain, and the
// event channel that goes with it.
type Ring struct {
	Page   *grant.Page
	Ref    grant.Ref
	Ch     *evtchn.Channel
	sharer grant.Sharer
}

// Share shares a fresh page with domain backend (writable) and allocates
// an event channel for it. On error nothing is left granted or allocated.
func Share(s grant.Sharer, ev Events, backend uint16) (*Ring, error) {
	page, ref, err := s.Share(backend, false)
	if err != nil {
		return nil, fmt.Errorf("grant ring page: %w", err)
	}
	r := &Ring{Page: page, Ref: ref, sharer: s}
	if r.Ch, err = ev.AllocUnbound(backend); err != nil {
		return nil, errors.Join(err, r.Release())
	}
	return r, nil
}

// Publish writes ring-ref, event-channel and the extra keys under node in
// one transaction, so the backend never sees a ring-ref without its event
// channel (as Linux's frontends do), then switches node to Initialised.
func (r *Ring) Publish(ctx context.Context, st Store, node string, extra ...[2]string) error {
	keys := append([][2]string{
		{"ring-ref", strconv.FormatUint(uint64(r.Ref), 10)},
		{"event-channel", strconv.FormatUint(uint64(r.Ch.Port), 10)},
	}, extra...)
	err := st.Transaction(ctx, func(tx *xenbus.Tx) error {
		for _, kv := range keys {
			if err := tx.WriteString(ctx, node+"/"+kv[0], kv[1]); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("%s: write ring details: %w", node, err)
	}
	return st.SwitchState(ctx, node, xenbus.StateInitialised)
}

// Release closes the event channel and ends the page's grant. A grant the
// backend still maps cannot end: the page is then kept for ever (never
// reused) and the error returned.
func (r *Ring) Release() error {
	if r == nil {
		return nil
	}
	var errs []error
	if r.Ch != nil {
		if err := r.Ch.Close(); err != nil {
			errs = append(errs, err)
		}
		r.Ch = nil
	}
	if r.Page != nil {
		if err := r.sharer.Unshare(r.Page, r.Ref); err != nil {
			errs = append(errs, err)
		}
		r.Page = nil
	}
	return errors.Join(errs...)
}

// WatchStore is the part of the xenstore client WatchBackend uses;
// *xenbus.Client implements it.
type WatchStore interface {
	Watch(ctx context.Context, path string) (*xenbus.Watch, error)
	ReadState(ctx context.Context, dir string) (xenbus.State, error)
}

// BackendWatch follows a backend's state; see WatchBackend.
type BackendWatch struct {
	cancel context.CancelFunc
	done   chan struct{}
}

// WatchBackend calls gone once, with the reason, when the backend's state
// becomes Closing or Closed or its directory disappears or becomes
// unreadable (the toolstack removes it when the backend domain dies), so a frontend fails its
// requests at once instead of waiting on a peer that will never answer.
// logf receives watch trouble that does not end the watch.
func WatchBackend(ctx context.Context, st WatchStore, backend string, gone func(why string), logf func(string, ...any)) (*BackendWatch, error) {
	w, err := st.Watch(ctx, backend+"/state")
	if err != nil {
		return nil, fmt.Errorf("watch backend state: %w", err)
	}
	wctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	b := &BackendWatch{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(b.done)
		defer w.Unwatch(context.WithoutCancel(wctx))
		for {
			select {
			case _, ok := <-w.Events():
				if !ok {
					logf("watch on backend state ended: %v", w.Err())
					return
				}
			case <-wctx.Done():
				return
			}
			s, err := st.ReadState(wctx, backend)
			if errors.Is(err, xenbus.ErrAccess) {
				// Removed with its domain's whole directory:
				// xenstored answers EACCES for a path under
				// a parent we cannot read, not ENOENT.
				s, err = xenbus.StateUnknown, nil
			}
			if err != nil {
				if wctx.Err() == nil {
					logf("read backend state: %v", err)
				}
				continue
			}
			switch s {
			case xenbus.StateClosing, xenbus.StateClosed, xenbus.StateUnknown:
				what := s.String()
				if s == xenbus.StateUnknown {
					what = "gone"
				}
				gone(fmt.Sprintf("backend %s is %s", backend, what))
				return
			}
		}
	}()
	return b, nil
}

// Stop ends the watch and waits for it.
func (b *BackendWatch) Stop() {
	b.cancel()
	<-b.done
}
