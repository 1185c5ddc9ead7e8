// Package mgrlink is the vTPM domain's connection to the manager domain:
// a drivers/tpmfront frontend on one of its vtpm devices (xl
// vtpm=["backend=<manager>,uuid=<uuid>"]) that is made again when the
// manager comes back.
//
// When the manager domain stops (xl shutdown, a crash) the toolstack
// removes its backend directory and the frontend fails at once
// (tpmfront.ErrGone). A restarted manager is a new domain, and the old
// device still names the dead one, so the vTPM cannot reconnect by itself:
// the administrator attaches the vTPM to the new manager with
// `xl vtpm-attach <vtpm domain> backend=<manager> uuid=<same uuid>`, which
// adds a device under device/vtpm. The next Send finds it and connects.
// Until then every Send fails with ErrNoManager, at once, so the vTPM
// answers state-changing commands with TPM_RC_NV_UNAVAILABLE instead of
// stalling its guest.
package mgrlink

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/xenvtpm/xenvtpm/drivers/tpmfront"
	"github.com/xenvtpm/xenvtpm/grant"
	"github.com/xenvtpm/xenvtpm/xenbus"
)

// ErrNoManager: no vtpm device leads to a live manager.
var ErrNoManager = errors.New("mgrlink: no manager connected (after a manager restart, attach this vTPM to it again: xl vtpm-attach <vTPM domain> backend=<manager> uuid=<this vTPM's uuid>)")

// Store is the xenstore client the link uses; *xenbus.Client implements it.
type Store interface {
	tpmfront.Store
	Directory(ctx context.Context, path string) ([]string, error)
}

// Config gathers the link's dependencies (those of tpmfront.Config).
type Config struct {
	Store  Store
	Pages  grant.Sharer
	Events tpmfront.Events
	// Logf receives connections and losses.
	Logf func(format string, a ...any)
	// OpenTimeout bounds connecting to a device (default 10 s).
	OpenTimeout time.Duration
}

// Link is the connection; its methods are safe for concurrent use.
type Link struct {
	cfg   Config
	mu    sync.Mutex
	front *tpmfront.Front // nil while disconnected
	dead  map[string]bool // devices whose backend went away
}

// Open connects through the newest vtpm device whose backend is there.
func Open(ctx context.Context, cfg Config) (*Link, error) {
	if cfg.Logf == nil {
		cfg.Logf = func(string, ...any) {}
	}
	if cfg.OpenTimeout <= 0 {
		cfg.OpenTimeout = 10 * time.Second
	}
	l := &Link{cfg: cfg, dead: map[string]bool{}}
	if err := l.connect(ctx); err != nil {
		return nil, err
	}
	return l, nil
}

// Backend names the manager connected to (domid -1 while disconnected).
func (l *Link) Backend() (path string, domid int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.front == nil {
		return "", -1
	}
	p, id := l.front.Backend()
	return p, int(id)
}

// Send sends a manager command and returns the response, reconnecting
// first if the manager went away and a new device has been attached.
func (l *Link) Send(ctx context.Context, cmd []byte) ([]byte, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.front != nil {
		rsp, err := l.front.Send(ctx, 0, cmd)
		if !errors.Is(err, tpmfront.ErrGone) {
			return rsp, err
		}
		l.cfg.Logf("manager link: %v", err)
		l.drop()
	}
	if err := l.connect(ctx); err != nil {
		return nil, err
	}
	return l.front.Send(ctx, 0, cmd)
}

// drop lets go of a frontend whose backend is gone, marking its device
// dead; Close tells the toolstack the frontend is Closed so the device
// can be detached.
func (l *Link) drop() {
	node := l.front.Node()
	l.dead[node] = true
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := l.front.Close(ctx); err != nil {
		l.cfg.Logf("manager link: closing %s: %v", node, err)
	}
	l.front = nil
}

// connect opens the newest device under device/vtpm that is not dead and
// whose backend is there and not closing (a backend still Initialising
// is one the manager has not picked up yet: Open waits for it).
func (l *Link) connect(ctx context.Context) error {
	st := l.cfg.Store
	names, err := st.Directory(ctx, "device/vtpm")
	if err != nil {
		return fmt.Errorf("%w: list device/vtpm: %w", ErrNoManager, err)
	}
	var ids []int
	for _, n := range names {
		if id, err := strconv.Atoi(n); err == nil {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	var tried []string
	for _, id := range slices.Backward(ids) {
		node := "device/vtpm/" + strconv.Itoa(id)
		if l.dead[node] {
			continue
		}
		be, err := st.ReadString(ctx, node+"/backend")
		if err != nil {
			continue
		}
		switch s, _ := st.ReadState(ctx, be); s {
		case xenbus.StateInitialising, xenbus.StateInitWait, xenbus.StateInitialised, xenbus.StateConnected:
		default:
			tried = append(tried, fmt.Sprintf("%s: backend %s", node, s))
			continue
		}
		octx, cancel := context.WithTimeout(ctx, l.cfg.OpenTimeout)
		f, err := tpmfront.Open(octx, tpmfront.Config{Store: st, Pages: l.cfg.Pages, Events: l.cfg.Events, Node: node})
		cancel()
		if err != nil {
			tried = append(tried, fmt.Sprintf("%s: %v", node, err))
			continue
		}
		l.front = f
		_, domid := f.Backend()
		l.cfg.Logf("manager link: connected to the manager in domain %d through %s", domid, node)
		return nil
	}
	if len(tried) == 0 {
		return ErrNoManager
	}
	return fmt.Errorf("%w (devices: %v)", ErrNoManager, tried)
}
