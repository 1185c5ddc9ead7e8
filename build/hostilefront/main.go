//go:build tamago

// Command hostilefront is a test domain that is a deliberately misbehaving
// frontend of a vTPM domain, for the bad-input-and-faults scenario. It
// speaks the vtpm split-driver protocol of xen/include/public/io/tpmif.h
// (tpmif v2 shared page) and xen/include/public/io/xenbus.h (state
// machine) through the low-level packages (grant.Table, evtchn, ring,
// xenbus) rather than drivers/tpmfront, so that it can break the rules
// tpmfront keeps.
//
// One behaviour per run, chosen with attack= on xl's extra= line (the
// attack functions below; options in build/hostilefront/options,
// documented in docs/options.md). Each step prints a "HOSTILE <attack>:
// <what was done> -> <what came back>" line; the run ends with HOSTILE-DONE
// (or, for destroy-mid-command, HOSTILE-SUBMITTED and then waits for dom0
// to destroy the domain). Judging the backend (its log, its live mappings, its
// other frontends) is the scenario's job: build/hostilefront/testbed.
package main

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"time"

	gt "github.com/google/go-tpm/tpm2"

	"github.com/xenvtpm/xenvtpm/board/xen"
	"github.com/xenvtpm/xenvtpm/build/hostilefront/options"
	"github.com/xenvtpm/xenvtpm/domain"
	"github.com/xenvtpm/xenvtpm/evtchn"
	"github.com/xenvtpm/xenvtpm/grant"
	"github.com/xenvtpm/xenvtpm/ring"
	"github.com/xenvtpm/xenvtpm/xenbus"
)

// Version is set by the build.
var Version = "dev"

// tpmif v2 header offsets (struct tpmif_shared_page), written here by hand
// because package ring refuses to write a malformed page.
const (
	offLength  = 0
	offState   = 4
	offNrExtra = 7
)

const node = "device/vtpm/0"

// attacks holds the function of each of options.Attacks.
var attacks = map[string]func(*front) error{
	"length":              attackLength,
	"states":              attackStates,
	"cancel":              attackCancel,
	"flood":               attackFlood,
	"revoke":              attackRevoke,
	"never-initialised":   attackNeverInitialised,
	"destroy-mid-command": attackDestroyMidCommand,
}

func main() {
	d := domain.Start("hostilefront", options.Spec())
	a := d.Config.Get("attack")
	d.Log.Infof("xenvtpm hostilefront %s, domid %d, attack=%s", Version, d.ID, a)
	attack := attacks[a]
	if attack == nil {
		d.Log.Errorf("HOSTILE-ERROR %s: listed in options.Attacks but not in this image's attacks table", a)
		d.Exit(1)
	}
	f, err := newFront(d, a)
	if err == nil {
		err = attack(f)
	}
	if err != nil {
		d.Log.Errorf("HOSTILE-ERROR %s: %v", a, err)
		d.Exit(1)
	}
	d.Log.Infof("HOSTILE-DONE attack=%s", a)
}

// front is this domain's end of device/vtpm/0, set up by hand.
type front struct {
	d         *domain.Domain
	attack    string
	tab       *grant.Table
	backend   string
	backendID uint16
	page      *grant.Page
	ring      *ring.Page
	ref       grant.Ref
	ch        *evtchn.Channel
}

func newFront(d *domain.Domain, attack string) (*front, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	f := &front{d: d, attack: attack}
	var err error
	if f.tab, err = grant.NewTable(xen.GrantOps{H: d.Xen}, grant.FrontendWindow, 0); err != nil {
		return nil, fmt.Errorf("grant table: %w", err)
	}
	if f.backend, err = d.Store.ReadString(ctx, node+"/backend"); err != nil {
		return nil, fmt.Errorf("%s/backend (is vtpm=[...] in the xl config?): %w", node, err)
	}
	id, err := d.Store.ReadUint(ctx, node+"/backend-id", 16)
	if err != nil {
		return nil, fmt.Errorf("%s/backend-id: %w", node, err)
	}
	f.backendID = uint16(id)
	return f, nil
}

func (f *front) logf(format string, args ...any) {
	f.d.Log.Infof("HOSTILE %s: %s", f.attack, fmt.Sprintf(format, args...))
}

// publish grants a fresh page, allocates an event channel and writes
// ring-ref, event-channel and feature-protocol-v2 (tpmfront's first half
// of the handshake, without the state change).
func (f *front) publish(ctx context.Context) error {
	f.page = grant.NewPage()
	var err error
	if f.ring, err = ring.New(f.page.Mem); err != nil {
		return err
	}
	if f.ref, err = f.tab.Grant(f.backendID, f.page.GFN, false); err != nil {
		return fmt.Errorf("grant shared page: %w", err)
	}
	if f.ch, err = f.d.Events.AllocUnbound(f.backendID); err != nil {
		return fmt.Errorf("event channel: %w", err)
	}
	return f.d.Store.Transaction(ctx, func(tx *xenbus.Tx) error {
		for _, kv := range [][2]string{
			{"ring-ref", strconv.FormatUint(uint64(f.ref), 10)},
			{"event-channel", strconv.FormatUint(uint64(f.ch.Port), 10)},
			{"feature-protocol-v2", "1"},
		} {
			if err := tx.WriteString(ctx, node+"/"+kv[0], kv[1]); err != nil {
				return fmt.Errorf("write %s: %w", kv[0], err)
			}
		}
		return nil
	})
}

// connect does the whole well-behaved handshake.
func (f *front) connect() error {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := f.publish(ctx); err != nil {
		return err
	}
	st := f.d.Store
	if err := st.SwitchState(ctx, node, xenbus.StateInitialised); err != nil {
		return err
	}
	s, err := st.WaitForState(ctx, f.backend, xenbus.StateConnected, xenbus.StateClosing, xenbus.StateClosed)
	if err != nil {
		return fmt.Errorf("waiting for the backend to connect: %w", err)
	}
	if s != xenbus.StateConnected {
		return fmt.Errorf("backend went %v instead of Connected", s)
	}
	if err := st.SwitchState(ctx, node, xenbus.StateConnected); err != nil {
		return err
	}
	f.logf("connected to %s (backend domain %d), ring-ref %d, port %d", f.backend, f.backendID, f.ref, f.ch.Port)
	return nil
}

// backendState reads the backend's xenbus state for the log.
func (f *front) backendState() string {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := f.d.Store.ReadState(ctx, f.backend)
	if err != nil {
		return "unreadable: " + err.Error()
	}
	return s.String()
}

// kick notifies the backend.
func (f *front) kick() error { return f.ch.Notify() }

// wait waits up to timeout for the page to leave SUBMIT/CANCEL and says
// what the backend left there.
func (f *front) wait(timeout time.Duration) string {
	deadline := time.After(timeout)
	for {
		switch s := f.ring.State(); s {
		case ring.StateSubmit, ring.StateCancel:
		case ring.StateFinish:
			return "FINISH " + describe(f.page.Mem.Bytes())
		default:
			return s.String()
		}
		select {
		case <-f.ch.C:
		case <-deadline:
			return fmt.Sprintf("no answer within %v (state %v)", timeout, f.ring.State())
		}
	}
}

// describe summarises the response in a page the backend marked FINISH.
func describe(p []byte) string {
	n := binary.LittleEndian.Uint32(p[offLength:])
	off := ring.HeaderSize + 4*int(p[offNrExtra])
	if n < 10 || off+int(n) > ring.PageSize {
		return fmt.Sprintf("length %d at offset %d (not a TPM response)", n, off)
	}
	r := p[off : off+int(n)]
	return fmt.Sprintf("%d-byte response, rc %#x", n, binary.BigEndian.Uint32(r[6:]))
}

// send submits cmd properly and waits for the answer.
func (f *front) send(cmd []byte, timeout time.Duration) string {
	if err := f.ring.Submit(0, cmd); err != nil {
		return "submit: " + err.Error()
	}
	if err := f.kick(); err != nil {
		return "notify: " + err.Error()
	}
	return f.wait(timeout)
}

// getRandom is TPM2_GetRandom(16) (TPM 2.0 Part 3).
var getRandom = []byte{0x80, 0x01, 0, 0, 0, 0x0c, 0, 0, 0x01, 0x7b, 0, 0x10}

// createPrimaryRSA is TPM2_CreatePrimary of an RSA-2048 storage key under
// the owner hierarchy: the slowest ordinary command (prime generation),
// long enough to act while the backend works on it. go-tpm marshals it;
// capture keeps the bytes instead of sending them.
func createPrimaryRSA() []byte {
	var c capture
	gt.CreatePrimary{PrimaryHandle: gt.TPMRHOwner, InPublic: gt.New2B(gt.RSASRKTemplate)}.Execute(&c)
	return c.cmd
}

type capture struct{ cmd []byte }

var errCaptured = errors.New("captured, not sent")

func (c *capture) Send(cmd []byte) ([]byte, error) {
	c.cmd = append([]byte(nil), cmd...)
	return nil, errCaptured
}

// rawSubmit writes cmd at offset 8, then overrides length and
// nr_extra_pages, and sets SUBMIT: what package ring refuses to do.
func (f *front) rawSubmit(cmd []byte, length uint32, nrExtra uint8) {
	m := f.page.Mem
	copy(m.Bytes()[ring.HeaderSize:], cmd)
	m.Store8(offNrExtra, nrExtra)
	m.Store32(offLength, length)
	m.Store8(offState, uint8(ring.StateSubmit))
}

// attackLength: lengths past the 4088 bytes of data, and data placed past
// the page by nr_extra_pages. The backend must answer each with a TPM
// error response, not read outside the page or hang.
func attackLength(f *front) error {
	if err := f.connect(); err != nil {
		return err
	}
	for _, c := range []struct {
		what    string
		length  uint32
		nrExtra uint8
	}{
		{"length 4089 (one past the data area)", ring.MaxData + 1, 0},
		{"length 5000", 5000, 0},
		{"length 0xffffffff", 0xffffffff, 0},
		{"nr_extra_pages 255 (data at offset 1028) with length 3500", 3500, 255},
		{"length 0", 0, 0},
	} {
		f.rawSubmit(getRandom, c.length, c.nrExtra)
		if err := f.kick(); err != nil {
			return err
		}
		f.logf("submitted %s -> %s", c.what, f.wait(10*time.Second))
	}
	f.logf("then a well-formed TPM2_GetRandom -> %s", f.send(getRandom, 10*time.Second))
	return nil
}

// attackStates: ring states the frontend must not write, and xenbus state
// changes out of order.
func attackStates(f *front) error {
	if err := f.connect(); err != nil {
		return err
	}
	m := f.page.Mem
	for _, c := range []struct {
		what  string
		state uint8
	}{
		{"wrote a command with state FINISH (a backend state)", uint8(ring.StateFinish)},
		{"wrote a command with state IDLE", uint8(ring.StateIdle)},
		{"wrote a command with undefined state 7", 7},
		{"wrote a command with undefined state 0xff", 0xff},
		{"wrote a command with state CANCEL, never SUBMIT", uint8(ring.StateCancel)},
	} {
		f.ring.Submit(0, getRandom)
		m.Store8(offState, c.state)
		if err := f.kick(); err != nil {
			return err
		}
		time.Sleep(time.Second)
		f.logf("%s and notified -> state byte now %d", c.what, m.Load8(offState))
	}
	f.logf("then a well-formed TPM2_GetRandom -> %s", f.send(getRandom, 10*time.Second))

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	st := f.d.Store
	for _, s := range []xenbus.State{
		xenbus.StateInitialising, xenbus.StateInitWait, xenbus.StateReconfiguring,
		xenbus.StateConnected, xenbus.StateInitialised, xenbus.StateClosing,
		xenbus.StateConnected, xenbus.StateInitialised, xenbus.StateClosed, xenbus.StateConnected,
	} {
		if err := st.SwitchState(ctx, node, s); err != nil {
			return err
		}
		time.Sleep(time.Second)
		f.logf("frontend xenbus state -> %v: backend now %s", s, f.backendState())
	}
	// A garbage state value.
	if err := st.WriteString(ctx, node+"/state", "banana"); err != nil {
		return err
	}
	time.Sleep(time.Second)
	f.logf("frontend xenbus state -> \"banana\": backend now %s", f.backendState())
	if err := st.SwitchState(ctx, node, xenbus.StateInitialised); err != nil {
		return err
	}
	s, err := st.WaitForState(ctx, f.backend, xenbus.StateConnected, xenbus.StateClosing, xenbus.StateClosed)
	f.logf("frontend Initialised again: backend %v (%v)", s, err)
	if s == xenbus.StateConnected {
		f.logf("then a well-formed TPM2_GetRandom -> %s", f.send(getRandom, 10*time.Second))
	}
	return nil
}

// attackCancel: CANCEL while a slow command runs, CANCEL right after a
// fast one, and CANCEL-SUBMIT-CANCEL churn.
func attackCancel(f *front) error {
	if err := f.connect(); err != nil {
		return err
	}
	slow := createPrimaryRSA()
	f.ring.Submit(0, slow)
	f.kick()
	time.Sleep(200 * time.Millisecond)
	f.ring.Cancel()
	f.kick()
	f.logf("TPM2_CreatePrimary(RSA-2048), CANCEL 200ms later -> %s", f.wait(5*time.Minute))

	f.ring.Submit(0, getRandom)
	f.kick()
	f.ring.Cancel()
	f.kick()
	f.logf("TPM2_GetRandom, CANCEL at once -> %s", f.wait(10*time.Second))

	for i := 0; i < 100; i++ {
		f.ring.Submit(0, getRandom)
		f.kick()
		f.ring.Cancel()
		f.kick()
	}
	f.logf("100 x (SUBMIT, CANCEL) without waiting -> %s", f.wait(10*time.Second))
	f.logf("then a well-formed TPM2_GetRandom -> %s", f.send(getRandom, 10*time.Second))
	return nil
}

// attackFlood: 100k notifications with a command pending, then 100k with
// none.
func attackFlood(f *front) error {
	if err := f.connect(); err != nil {
		return err
	}
	const n = 100000
	flood := func() (time.Duration, error) {
		t0 := time.Now()
		for i := 0; i < n; i++ {
			if err := f.kick(); err != nil {
				return 0, fmt.Errorf("notify %d: %w", i, err)
			}
		}
		return time.Since(t0), nil
	}
	f.ring.Submit(0, getRandom)
	dt, err := flood()
	if err != nil {
		return err
	}
	f.logf("TPM2_GetRandom then %d notifies in %v -> %s", n, dt, f.wait(30*time.Second))
	if dt, err = flood(); err != nil {
		return err
	}
	f.logf("%d notifies with nothing pending in %v -> state %v", n, dt, f.ring.State())
	f.logf("then a well-formed TPM2_GetRandom -> %s", f.send(getRandom, 30*time.Second))
	return nil
}

// attackRevoke: take the grant away from the backend. Before the backend
// maps it, a revoked grant makes the map fail; once it is mapped Xen
// refuses to revoke it (the entry's GTF_reading/writing bits stay set
// until the backend unmaps), so all a frontend can do is ask, scribble on
// the page while the command runs, and leave without ending access.
func attackRevoke(f *front) error {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	st := f.d.Store
	// 1. Publish a grant, revoke it, then say Initialised.
	if err := f.publish(ctx); err != nil {
		return err
	}
	err := f.tab.EndAccess(f.ref)
	f.logf("ended access to ring-ref %d before the backend mapped it -> %v", f.ref, err)
	if err := st.SwitchState(ctx, node, xenbus.StateInitialised); err != nil {
		return err
	}
	s, err := st.WaitForState(ctx, f.backend, xenbus.StateConnected, xenbus.StateClosing, xenbus.StateClosed)
	f.logf("Initialised with the revoked ring-ref -> backend %v (%v)", s, err)
	// Back to a clean slate: Closed returns the backend to InitWait.
	f.ch.Close()
	if err := st.SwitchState(ctx, node, xenbus.StateClosed); err != nil {
		return err
	}
	s, err = st.WaitForState(ctx, f.backend, xenbus.StateInitWait, xenbus.StateClosed)
	f.logf("frontend Closed -> backend %v (%v)", s, err)
	if err := st.SwitchState(ctx, node, xenbus.StateInitialising); err != nil {
		return err
	}

	// 2. Connect properly, start a slow command, and try to revoke.
	if err := f.connect(); err != nil {
		return err
	}
	f.ring.Submit(0, createPrimaryRSA())
	f.kick()
	time.Sleep(100 * time.Millisecond)
	err = f.tab.EndAccess(f.ref)
	f.logf("EndAccess on the mapped ring-ref while TPM2_CreatePrimary runs -> %v (grant flags %#x)", err, f.tab.Flags(f.ref))
	// Scribble over the command the backend is (or should be) done
	// reading, and over the length it will use for its response.
	clear(f.page.Mem.Bytes()[ring.HeaderSize:])
	f.page.Mem.Store32(offLength, 0xffffffff)
	f.logf("zeroed the page and set length 0xffffffff during the command -> %s", f.wait(5*time.Minute))
	// 3. Leave: remove ring-ref and go Closed without waiting, then
	// end access as soon as the backend lets go.
	st.Rm(ctx, node+"/ring-ref")
	if err := st.SwitchState(ctx, node, xenbus.StateClosed); err != nil {
		return err
	}
	t0 := time.Now()
	for {
		if err = f.tab.EndAccess(f.ref); err == nil || time.Since(t0) > 30*time.Second {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	f.logf("went Closed without a handshake; EndAccess succeeded after %v (%v)", time.Since(t0).Round(time.Millisecond), err)
	return nil
}

// attackNeverInitialised: publish the ring details and stop there.
func attackNeverInitialised(f *front) error {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := f.publish(ctx); err != nil {
		return err
	}
	f.ring.Submit(0, getRandom)
	f.kick()
	time.Sleep(10 * time.Second)
	f.logf("wrote ring-ref/event-channel and submitted a command but never switched to Initialised; 10s later backend %s, ring state %v", f.backendState(), f.ring.State())
	return nil
}

// attackDestroyMidCommand: start a slow command and wait to be destroyed.
func attackDestroyMidCommand(f *front) error {
	if err := f.connect(); err != nil {
		return err
	}
	f.ring.Submit(0, createPrimaryRSA())
	f.kick()
	f.logf("submitted TPM2_CreatePrimary(RSA-2048)")
	f.d.Log.Infof("HOSTILE-SUBMITTED")
	for {
		time.Sleep(time.Hour)
	}
}
