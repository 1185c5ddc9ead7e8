// Package tpmback is the backend of the Xen virtual TPM split driver
// (device type "vtpm"): it serves frontends' TPM commands over the tpmif v2
// shared page (xen/include/public/io/tpmif.h, see package ring) after the
// xenbus handshake of xen/include/public/io/xenbus.h.
//
// Wiring inside a domain:
//
//	mapper, _ := grant.NewMapper(xen.GrantOps{H: d.Xen}, grant.BackendWindow, 0)
//	b, err := tpmback.New(tpmback.Config{
//		Store:   d.Store,  // *xenbus.Client
//		Grants:  mapper,   // *grant.Mapper
//		Events:  d.Events, // *evtchn.Mux
//		Log:     d.Log,    // *domain.Logger
//		Handler: func(fe *tpmback.Frontend, locality uint8, cmd []byte) []byte { ... },
//	})
//	go b.Run(ctx)
//
// Run watches the relative path backend/vtpm, then walks what is already
// there (frontends that appeared before the watch get no event). Each
// backend/vtpm/<domid>/<devid> directory becomes an instance with its own
// goroutine: it checks the uuid (canonical 36-character form), writes
// feature-protocol-v2=1 and reaches InitWait at once (libxl waits for it),
// then watches the frontend's state. On frontend Initialised or Connected
// (Linux goes through Initialised, mini-os writes Connected directly) it
// requires feature-protocol-v2, maps ring-ref, binds event-channel, writes
// ready=1 and goes Connected. On frontend Closing it disconnects and
// answers Closing; on Closed it disconnects and returns to InitWait so the
// guest can reconnect (a frontend driver reloaded, kexec). When the
// toolstack removes the device (`xl vtpm-detach`, `xl destroy`: libxl
// writes online=0 and state=Closing, then waits for Closed and, for a
// backend in a driver domain, for the backend directory to disappear), the
// instance disconnects, goes Closed and removes its backend directory, as
// Linux backends do when their device is no longer online. When the
// frontend's directory vanishes it disconnects and goes Closed; when the
// backend directory vanishes the instance ends. A connect failure (bad
// ring-ref, revoked grant, no protocol v2) is logged and answered with
// Closing.
//
// Requests run the Handler in a separate goroutine, so a slow command never
// blocks the handshake; the response is written only if the same
// connection is still up. Calls for one frontend never overlap: when a
// frontend reconnects while its command runs (a reboot, kexec), the first
// request on the new connection runs once that command returns, and the
// old response is dropped. A CANCEL of a request that has not started is
// answered with IDLE; a request already running completes (as mini-os's
// backend does); Linux treats either as done. A malformed request (length
// past the page) or a response that cannot fit (more than 4088 bytes) is
// logged and answered with a 10-byte TPM error response (TPM_RC_FAILURE for
// TPM 2.0 tags, TPM_FAIL for TPM 1.2), never left unanswered. What a
// frontend causes this way is logged at most five lines at once, then one
// per 10 s; a later line, and the disconnect, say how many were held back.
// Frontends are independent: one misbehaving frontend affects no other.
package tpmback

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/xenvtpm/xenvtpm/evtchn"
	"github.com/xenvtpm/xenvtpm/grant"
	"github.com/xenvtpm/xenvtpm/xenbus"
)

// Store is the part of the xenstore client the backend uses;
// *xenbus.Client implements it.
type Store interface {
	Read(ctx context.Context, path string) ([]byte, error)
	ReadString(ctx context.Context, path string) (string, error)
	ReadUint(ctx context.Context, path string, bits int) (uint64, error)
	WriteString(ctx context.Context, path, value string) error
	Directory(ctx context.Context, path string) ([]string, error)
	ReadState(ctx context.Context, dir string) (xenbus.State, error)
	SwitchState(ctx context.Context, dir string, s xenbus.State) error
	Watch(ctx context.Context, path string) (*xenbus.Watch, error)
	Transaction(ctx context.Context, fn func(tx *xenbus.Tx) error) error
	Rm(ctx context.Context, path string) error
}

// Grants maps frontends' grants; *grant.Mapper implements it.
type Grants interface {
	Map(dom uint16, ref grant.Ref, readonly bool) (*grant.Mapping, error)
	Unmap(*grant.Mapping) error
}

// Events binds frontends' event channels; *evtchn.Mux implements it.
type Events interface {
	BindInterdomain(remoteDom uint16, remotePort evtchn.Port) (*evtchn.Channel, error)
}

// Logger receives the backend's messages; *domain.Logger implements it.
type Logger interface {
	Errorf(format string, a ...any)
	Infof(format string, a ...any)
	Debugf(format string, a ...any)
}

// Handler executes one TPM command for a frontend and returns the
// response. It runs in its own goroutine per request; requests of one
// frontend never overlap. It must return a response (an error response if
// need be); nil is answered with a TPM error response.
type Handler func(fe *Frontend, locality uint8, cmd []byte) []byte

// Config gathers the backend's dependencies.
type Config struct {
	Store   Store
	Grants  Grants
	Events  Events
	Log     Logger
	Handler Handler
	// Dir is the watched backend directory, relative to the domain's home;
	// empty means "backend/vtpm".
	Dir string
	// Mapped, if set, is told each time the backend maps a frontend's
	// shared page (mapped true) and each time it unmaps one (false), right
	// after Grants did so, from that frontend's goroutine (calls for
	// different frontends may overlap). A page Xen refused to unmap stays
	// mapped and is not reported.
	Mapped func(fe *Frontend, mapped bool)
	// Rescan is how often the backend reads its directory and each
	// frontend's state again, for what a watch event xenstored dropped
	// would have told it (C xenstored drops one a domain left unread for
	// 20 s, or one beyond its quota); 0 means DefaultRescan.
	Rescan time.Duration
}

// DefaultRescan is Config.Rescan's default: a device a dropped event hid
// is served within a minute, at a cost of a few reads per device.
const DefaultRescan = time.Minute

// Backend serves every vtpm frontend configured against this domain.
type Backend struct {
	cfg Config

	mu        sync.Mutex
	instances map[key]*instance
	wg        sync.WaitGroup
	// now is the clock of the log limits; tests replace it.
	now func() time.Time
}

type key struct {
	dom    uint16
	handle uint32
}

// New checks cfg and returns a backend; Run starts it.
func New(cfg Config) (*Backend, error) {
	switch {
	case cfg.Store == nil:
		return nil, errors.New("tpmback: Config.Store is nil")
	case cfg.Grants == nil:
		return nil, errors.New("tpmback: Config.Grants is nil")
	case cfg.Events == nil:
		return nil, errors.New("tpmback: Config.Events is nil")
	case cfg.Handler == nil:
		return nil, errors.New("tpmback: Config.Handler is nil")
	}
	if cfg.Log == nil {
		cfg.Log = nopLogger{}
	}
	if cfg.Dir == "" {
		cfg.Dir = "backend/vtpm"
	}
	return &Backend{cfg: cfg, instances: map[key]*instance{}, now: time.Now}, nil
}

type nopLogger struct{}

func (nopLogger) Errorf(string, ...any) {}
func (nopLogger) Infof(string, ...any)  {}
func (nopLogger) Debugf(string, ...any) {}

// Run serves until ctx ends, then disconnects every frontend (unmapping
// and unbinding; xenstore is left as is) and returns ctx's error. It
// returns early only if the watch on the backend directory cannot be set
// or ends.
func (b *Backend) Run(ctx context.Context) error {
	defer b.wg.Wait()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	w, err := b.cfg.Store.Watch(ctx, b.cfg.Dir)
	if err != nil {
		return fmt.Errorf("tpmback: watch %s: %w", b.cfg.Dir, err)
	}
	defer func() {
		uctx, c := context.WithTimeout(context.WithoutCancel(ctx), unwatchTimeout)
		w.Unwatch(uctx)
		c()
	}()
	every := b.cfg.Rescan
	if every <= 0 {
		every = DefaultRescan
	}
	rescan := time.NewTicker(every)
	defer rescan.Stop()
	for {
		select {
		case p, ok := <-w.Events():
			if !ok {
				return fmt.Errorf("tpmback: watch %s ended: %w", b.cfg.Dir, w.Err())
			}
			b.event(ctx, p)
		case <-rescan.C:
			b.scan(ctx)
			b.mu.Lock()
			for _, in := range b.instances {
				in.recheck()
			}
			b.mu.Unlock()
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// count is the number of instances.
func (b *Backend) count() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.instances)
}

// Frontends lists the current instances.
func (b *Backend) Frontends() []*Frontend {
	b.mu.Lock()
	defer b.mu.Unlock()
	var fs []*Frontend
	for _, in := range b.instances {
		fs = append(fs, in.fe)
	}
	return fs
}

// event handles one watch event. Its path is the watched directory or a
// node under it; whatever it is, the affected subtree is re-read, so
// coalesced or spurious events are harmless.
func (b *Backend) event(ctx context.Context, p string) {
	rel, ok := strings.CutPrefix(p, b.cfg.Dir)
	if !ok || (rel != "" && rel[0] != '/') {
		b.cfg.Log.Debugf("tpmback: ignoring watch event %q", p)
		return
	}
	parts := strings.Split(strings.TrimPrefix(rel, "/"), "/")
	if rel == "" {
		b.scan(ctx)
		return
	}
	dom, err := strconv.ParseUint(parts[0], 10, 16)
	if err != nil {
		b.cfg.Log.Debugf("tpmback: ignoring %s: not a domain id", p)
		return
	}
	if len(parts) == 1 {
		b.scanDomain(ctx, uint16(dom))
		return
	}
	h, err := strconv.ParseUint(parts[1], 10, 32)
	if err != nil {
		b.cfg.Log.Debugf("tpmback: ignoring %s: not a device handle", p)
		return
	}
	k := key{uint16(dom), uint32(h)}
	if len(parts) > 2 {
		// A key of the device changed: the toolstack may have set
		// online=0 (detach, destroy); the instance looks.
		b.mu.Lock()
		in := b.instances[k]
		b.mu.Unlock()
		if in != nil {
			in.kickToolstack()
			return
		}
	}
	b.check(ctx, k, len(parts) == 2)
}

func (b *Backend) scan(ctx context.Context) {
	doms, err := b.cfg.Store.Directory(ctx, b.cfg.Dir)
	if err != nil && !errors.Is(err, xenbus.ErrNoEnt) {
		b.cfg.Log.Errorf("tpmback: list %s: %v", b.cfg.Dir, err)
		return
	}
	seen := map[uint16]bool{}
	for _, d := range doms {
		dom, err := strconv.ParseUint(d, 10, 16)
		if err != nil {
			continue
		}
		seen[uint16(dom)] = true
		b.scanDomain(ctx, uint16(dom))
	}
	// Instances whose domain directory went away with the whole tree.
	b.mu.Lock()
	var gone []key
	for k := range b.instances {
		if !seen[k.dom] {
			gone = append(gone, k)
		}
	}
	b.mu.Unlock()
	for _, k := range gone {
		b.check(ctx, k, true)
	}
}

func (b *Backend) scanDomain(ctx context.Context, dom uint16) {
	dir := fmt.Sprintf("%s/%d", b.cfg.Dir, dom)
	hs, err := b.cfg.Store.Directory(ctx, dir)
	if err != nil && !errors.Is(err, xenbus.ErrNoEnt) {
		b.cfg.Log.Errorf("tpmback: list %s: %v", dir, err)
		return
	}
	seen := map[uint32]bool{}
	for _, hs := range hs {
		h, err := strconv.ParseUint(hs, 10, 32)
		if err != nil {
			continue
		}
		seen[uint32(h)] = true
		b.check(ctx, key{dom, uint32(h)}, false)
	}
	b.mu.Lock()
	var gone []key
	for k := range b.instances {
		if k.dom == dom && !seen[k.handle] {
			gone = append(gone, k)
		}
	}
	b.mu.Unlock()
	for _, k := range gone {
		b.check(ctx, k, true)
	}
}

// check creates the instance for k if its directory is complete and it has
// none, or stops it if the directory is gone. maybeGone says whether the
// event could mean a removal; other events only matter for a new
// instance.
func (b *Backend) check(ctx context.Context, k key, maybeGone bool) {
	dir := fmt.Sprintf("%s/%d/%d", b.cfg.Dir, k.dom, k.handle)
	b.mu.Lock()
	in := b.instances[k]
	b.mu.Unlock()
	if in != nil && !maybeGone {
		return
	}
	// The frontend key is written by libxl with the rest in one
	// transaction; its presence means the directory is complete, its
	// absence (after a removal) that the device is gone.
	fePath, err := b.cfg.Store.ReadString(ctx, dir+"/frontend")
	switch {
	case errors.Is(err, xenbus.ErrNoEnt):
		if in != nil {
			b.mu.Lock()
			delete(b.instances, k)
			b.mu.Unlock()
			in.stop()
		}
		return
	case err != nil:
		b.cfg.Log.Errorf("tpmback: read %s/frontend: %v", dir, err)
		return
	case in != nil:
		return
	}
	// A device being removed is not served again.
	if online, err := b.cfg.Store.ReadString(ctx, dir+"/online"); err == nil && online == "0" {
		return
	}
	// Read here rather than in the instance so Frontend stays immutable
	// once its goroutine runs; validated there.
	uuid, err := b.cfg.Store.ReadString(ctx, dir+"/uuid")
	if err != nil {
		uuid = ""
	}
	in = newInstance(b, k, dir, fePath, uuid)
	b.mu.Lock()
	if b.instances[k] != nil {
		b.mu.Unlock()
		return
	}
	b.instances[k] = in
	b.mu.Unlock()
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		in.run(ctx)
		b.mu.Lock()
		if b.instances[k] == in {
			delete(b.instances, k)
		}
		b.mu.Unlock()
	}()
}

// Error responses.

// ErrorResponse builds the 10-byte error response for cmd: TPM_RC_FAILURE
// with TPM_ST_NO_SESSIONS for a TPM 2.0 command tag, otherwise TPM_FAIL
// with TPM_TAG_RSP_COMMAND (TPM 1.2).
func ErrorResponse(cmd []byte) []byte {
	rsp := make([]byte, 10)
	binary.BigEndian.PutUint32(rsp[2:], 10)
	if len(cmd) >= 2 {
		if tag := binary.BigEndian.Uint16(cmd); tag == 0x8001 || tag == 0x8002 {
			binary.BigEndian.PutUint16(rsp, 0x8001)
			binary.BigEndian.PutUint32(rsp[6:], 0x101) // TPM_RC_FAILURE
			return rsp
		}
	}
	binary.BigEndian.PutUint16(rsp, 0x00c4) // TPM_TAG_RSP_COMMAND
	binary.BigEndian.PutUint32(rsp[6:], 9)  // TPM_FAIL
	return rsp
}

// ValidUUID reports whether s is a UUID in canonical 8-4-4-4-12 form.
func ValidUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := 0; i < 36; i++ {
		c := s[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
				return false
			}
		}
	}
	return true
}
