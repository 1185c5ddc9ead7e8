package tpmtis

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	legacy "github.com/google/go-tpm/tpm"
	"github.com/google/go-tpm/tpm2"
	"github.com/google/go-tpm/tpm2/transport"
)

var _ transport.TPM = (*TPM)(nil)
var _ io.ReadWriter = (*TPM)(nil)

type rig struct {
	clk *fakeClock
	tis *fakeTIS
	toy *toyTPM
}

func newRig(f Family) *rig {
	clk := newFakeClock()
	toy := &toyTPM{family: f}
	return &rig{clk: clk, toy: toy, tis: newFakeTIS(clk, f, toy.handle)}
}

func (r *rig) cfg(loc int) Config {
	return Config{Locality: loc, Clock: r.clk, PollInterval: time.Millisecond}
}

func (r *rig) open(t *testing.T, loc int) *TPM {
	t.Helper()
	d, err := New(r.tis.page(loc), r.cfg(loc))
	if err != nil {
		t.Fatalf("New at locality %d: %v", loc, err)
	}
	return d
}

func getRandom2(n uint16) []byte {
	b := []byte{0x80, 0x01, 0, 0, 0, 12, 0, 0, 0x01, 0x7B}
	return binary.BigEndian.AppendUint16(b, n)
}

func TestIdentifyTPM20(t *testing.T) {
	r := newRig(Family20)
	d := r.open(t, 0)
	in := d.Info()
	if in.Family != Family20 || in.RegisterFamily != Family20 {
		t.Fatalf("family %v, registers say %v; want 2.0", in.Family, in.RegisterFamily)
	}
	if in.VendorID != 0x1014 || in.DeviceID != 0x0001 || in.RevisionID != 1 {
		t.Errorf("DID_VID/RID = %04x:%04x rev %d; want 1014:0001 rev 1", in.VendorID, in.DeviceID, in.RevisionID)
	}
	if in.Timeouts != TPM2Timeouts {
		t.Errorf("timeouts %+v; want the TPM 2.0 defaults %+v", in.Timeouts, TPM2Timeouts)
	}
	if in.InterfaceVersion != intfVersionPTPFIF {
		t.Errorf("interface version %d; want %d", in.InterfaceVersion, intfVersionPTPFIF)
	}
}

func TestIdentifyTPM12ReportedTimings(t *testing.T) {
	r := newRig(Family12)
	// A: 1 s, B: 5 s (above the defaults, kept), C: 10 µs, D: 0 (below or
	// missing, raised to the defaults). Durations in µs: 30 ms, 3 s, 400 s.
	r.toy.timeouts = []uint32{1_000_000, 5_000_000, 10, 0}
	r.toy.durs = []uint32{30_000, 3_000_000, 400_000_000}
	d := r.open(t, 0)
	in := d.Info()
	if in.Family != Family12 || in.RegisterFamily != Family12 || !in.ReportedTimings {
		t.Fatalf("family %v/%v reported=%v; want 1.2 with reported timings", in.Family, in.RegisterFamily, in.ReportedTimings)
	}
	want := Timeouts{A: time.Second, B: 5 * time.Second, C: TPM12Timeouts.C, D: TPM12Timeouts.D}
	if in.Timeouts != want {
		t.Errorf("timeouts %+v; want %+v", in.Timeouts, want)
	}
	if in.Durations.Medium != 3*time.Second || in.Durations.Long != 400*time.Second || in.Durations.Short != TPM12Durations.Short {
		t.Errorf("durations %+v", in.Durations)
	}
}

func TestIdentifyTPM12TimeoutsInMilliseconds(t *testing.T) {
	r := newRig(Family12)
	// Some TPM 1.2 parts report milliseconds: every value below 1000.
	r.toy.timeouts = []uint32{800, 900, 999, 950}
	// Short below 10 ms means the durations are in ms as well.
	r.toy.durs = []uint32{5, 3000, 500000}
	in := r.open(t, 0).Info()
	want := Timeouts{A: 800 * time.Millisecond, B: TPM12Timeouts.B, C: 999 * time.Millisecond, D: 950 * time.Millisecond}
	if in.Timeouts != want {
		t.Errorf("timeouts %+v; want %+v", in.Timeouts, want)
	}
	if in.Durations.Medium != 3*time.Second || in.Durations.Long != 500*time.Second {
		t.Errorf("durations %+v; want medium 3s long 500s", in.Durations)
	}
}

func TestIdentifyTPM12NotStartedKeepsDefaults(t *testing.T) {
	r := newRig(Family12) // toy answers the capability with an error
	in := r.open(t, 0).Info()
	if in.ReportedTimings || in.Timeouts != TPM12Timeouts || in.Durations != TPM12Durations {
		t.Errorf("reported=%v timeouts %+v durations %+v; want the TIS defaults", in.ReportedTimings, in.Timeouts, in.Durations)
	}
}

func TestGoTPM2ClientOverDriver(t *testing.T) {
	r := newRig(Family20)
	d := r.open(t, 0)
	got, err := tpm2.GetRandom{BytesRequested: 32}.Execute(d)
	if err != nil {
		t.Fatalf("GetRandom: %v", err)
	}
	if len(got.RandomBytes.Buffer) != 32 || got.RandomBytes.Buffer[1] != 8 {
		t.Errorf("GetRandom = %x", got.RandomBytes.Buffer)
	}
}

func TestLegacyTPM12ClientOverDriver(t *testing.T) {
	r := newRig(Family12)
	d := r.open(t, 0)
	b, err := legacy.GetRandom(d, 16)
	if err != nil {
		t.Fatalf("legacy GetRandom: %v", err)
	}
	if len(b) != 16 || b[1] != 5 {
		t.Errorf("GetRandom = %x", b)
	}
	var digest [20]byte
	digest[0] = 1
	if _, err := legacy.PcrExtend(d, 10, digest); err != nil {
		t.Fatalf("PcrExtend: %v", err)
	}
	v, err := legacy.ReadPCR(d, 10)
	if err != nil {
		t.Fatalf("ReadPCR: %v", err)
	}
	if !bytes.Equal(v, r.toy.pcr12[10][:]) || bytes.Equal(v, make([]byte, 20)) {
		t.Errorf("PCR10 = %x; want %x", v, r.toy.pcr12[10])
	}
}

func extend2(d transport.TPM, pcr uint32) error {
	_, err := tpm2.PCRExtend{
		PCRHandle: tpm2.AuthHandle{Handle: tpm2.TPMHandle(pcr), Auth: tpm2.PasswordAuth(nil)},
		Digests: tpm2.TPMLDigestValues{Digests: []tpm2.TPMTHA{{
			HashAlg: tpm2.TPMAlgSHA256, Digest: bytes.Repeat([]byte{0xAB}, 32),
		}}},
	}.Execute(d)
	return err
}

// PCR 21 may only be extended from locality 2: the locality the driver was
// given is the one the TPM sees.
func TestLocalityReachesTPM(t *testing.T) {
	r := newRig(Family20)
	d0 := r.open(t, 0)
	d2 := r.open(t, 2)
	if err := extend2(d2, 21); err != nil {
		t.Fatalf("extend PCR21 at locality 2: %v", err)
	}
	err := extend2(d0, 21)
	var rc tpm2.TPMRC
	if !errors.As(err, &rc) || rc != tpm2.TPMRCLocality {
		t.Fatalf("extend PCR21 at locality 0: %v; want TPM_RC_LOCALITY", err)
	}
	if err := extend2(d0, 16); err != nil {
		t.Fatalf("extend PCR16 at locality 0: %v", err)
	}
}

func TestOnlyOwnPageTouched(t *testing.T) {
	for loc := range 4 {
		r := newRig(Family20)
		d := r.open(t, loc)
		if _, err := d.Send(getRandom2(8)); err != nil {
			t.Fatalf("locality %d: %v", loc, err)
		}
		for l := range r.tis.touched {
			if l != loc {
				t.Errorf("driver at locality %d touched locality %d's page", loc, l)
			}
		}
		for _, l := range r.toy.locs {
			if l != loc {
				t.Errorf("command ran at locality %d; want %d", l, loc)
			}
		}
	}
}

func TestBadLocality(t *testing.T) {
	r := newRig(Family20)
	for _, loc := range []int{-1, 5} {
		if _, err := New(r.tis.page(0), r.cfg(loc)); !errors.Is(err, ErrBadLocality) {
			t.Errorf("locality %d: %v; want ErrBadLocality", loc, err)
		}
	}
}

func TestNoTPM(t *testing.T) {
	r := newRig(Family20)
	r.tis.allOnes = true
	_, err := New(r.tis.page(0), r.cfg(0))
	if !errors.Is(err, ErrNoTPM) {
		t.Fatalf("New on all-ones registers: %v; want ErrNoTPM", err)
	}
}

// QEMU drops every write to locality 4's page, so the locality is never
// granted: a clear error after timeout A, not a hang.
func TestLocalityNeverGranted(t *testing.T) {
	r := newRig(Family20)
	start := r.clk.Now()
	_, err := New(r.tis.page(4), r.cfg(4))
	if !errors.Is(err, ErrLocality) {
		t.Fatalf("New at locality 4: %v; want ErrLocality", err)
	}
	if waited := r.clk.Now().Sub(start); waited > 2*probeTimeouts.A {
		t.Errorf("gave up after %v of virtual time; want about timeout A", waited)
	}
}

// Another OS holds locality 0 for 3 s (longer than timeout A): the driver at
// locality 2 waits for it rather than failing, and gets the TPM afterwards.
func TestLocalityBusyIsWaitedOut(t *testing.T) {
	r := newRig(Family20)
	d := r.open(t, 2)
	r.tis.holdLocality(0, r.clk.Now().Add(3*time.Second))
	before := r.clk.Now()
	if _, err := d.Send(getRandom2(4)); err != nil {
		t.Fatalf("Send while locality 0 busy: %v", err)
	}
	if waited := r.clk.Now().Sub(before); waited < 3*time.Second {
		t.Errorf("command finished after %v, before the other locality let go", waited)
	}
	if st := d.Stats(); st.BusyWaits != 1 {
		t.Errorf("stats %+v; want one busy wait", st)
	}
}

// Firmware left locality 0 active and went away: with Seize the driver at
// locality 2 takes the TPM after timeout A instead of waiting BusyTimeout.
func TestLocalitySeized(t *testing.T) {
	r := newRig(Family20)
	cfg := r.cfg(2)
	cfg.Seize = true
	d, err := New(r.tis.page(2), cfg)
	if err != nil {
		t.Fatal(err)
	}
	r.tis.holdLocality(0, time.Time{})
	before := r.clk.Now()
	if _, err := d.Send(getRandom2(4)); err != nil {
		t.Fatalf("Send with locality 0 held forever and Seize: %v", err)
	}
	if waited := r.clk.Now().Sub(before); waited > 2*probeTimeouts.A {
		t.Errorf("seized after %v; want about timeout A", waited)
	}
	if st := d.Stats(); st.Seizes != 1 {
		t.Errorf("stats %+v; want one seize", st)
	}
	if r.tis.loc[0].access&accessBeenSeized == 0 {
		t.Errorf("locality 0 not told it was seized")
	}
	// A higher locality cannot be seized: a clear error, no hang.
	r.tis.holdLocality(3, time.Time{})
	_, err = d.Send(getRandom2(4))
	if !errors.Is(err, ErrLocality) || !strings.Contains(err.Error(), "not seized") {
		t.Fatalf("Send with locality 3 held: %v; want ErrLocality (not seized)", err)
	}
	if r.tis.loc[2].access&accessRequestUse != 0 {
		t.Errorf("request left pending after giving up")
	}
}

func TestLocalityBusyForeverIsBounded(t *testing.T) {
	r := newRig(Family20)
	cfg := r.cfg(2)
	cfg.BusyTimeout = 5 * time.Second
	d, err := New(r.tis.page(2), cfg)
	if err != nil {
		t.Fatal(err)
	}
	r.tis.holdLocality(0, time.Time{})
	_, err = d.Send(getRandom2(4))
	if !errors.Is(err, ErrLocality) {
		t.Fatalf("Send with locality 0 held forever: %v; want ErrLocality", err)
	}
	if r.tis.loc[2].access&accessRequestUse != 0 {
		t.Errorf("request left pending after giving up")
	}
}

func TestDataAvailNeverSetCancelsAndRecovers(t *testing.T) {
	r := newRig(Family20)
	d := r.open(t, 0)
	r.tis.neverDone = true
	_, err := d.Send(getRandom2(8))
	if !errors.Is(err, ErrTimeout) {
		t.Fatalf("Send to a TPM that never finishes: %v; want ErrTimeout", err)
	}
	if r.tis.cancels != 1 || d.Stats().Aborts != 1 {
		t.Errorf("%d cancels, stats %+v; want one abort", r.tis.cancels, d.Stats())
	}
	r.tis.neverDone = false
	if _, err := d.Send(getRandom2(8)); err != nil {
		t.Fatalf("Send after a cancelled command: %v", err)
	}
}

func TestCommandDurationClassBoundsTheWait(t *testing.T) {
	r := newRig(Family20)
	d := r.open(t, 0)
	r.tis.neverDone = true
	start := r.clk.Now()
	_, _ = d.Send(getRandom2(8)) // GetRandom: long class, 2 s
	waited := r.clk.Now().Sub(start)
	if waited < TPM2Durations.Long || waited > TPM2Durations.Long+TPM2Timeouts.B+time.Second {
		t.Errorf("GetRandom gave up after %v; want about %v", waited, TPM2Durations.Long)
	}
}

func TestSlowTPMWithinDuration(t *testing.T) {
	r := newRig(Family20)
	d := r.open(t, 0)
	r.tis.execTime = 1500 * time.Millisecond // under GetRandom's 2 s
	if _, err := d.Send(getRandom2(8)); err != nil {
		t.Fatalf("slow but in-time command: %v", err)
	}
}

func responseFault(t *testing.T, bad []byte, want error) {
	t.Helper()
	r := newRig(Family20)
	d := r.open(t, 0)
	r.tis.handler = func(int, []byte) []byte { return bad }
	_, err := d.Send(getRandom2(8))
	if !errors.Is(err, want) {
		t.Fatalf("response %x: %v; want %v", bad[:min(len(bad), 16)], err, want)
	}
	r.tis.handler = r.toy.handle
	if _, err := d.Send(getRandom2(8)); err != nil {
		t.Fatalf("driver unusable after %v: %v", want, err)
	}
}

func TestResponseLargerThanBuffer(t *testing.T) {
	b := rsp(0x8001, 0, make([]byte, 100)...)
	binary.BigEndian.PutUint32(b[2:], MaxBuffer+1)
	responseFault(t, b, ErrBadResponse)
}

func TestResponseSmallerThanHeader(t *testing.T) {
	b := rsp(0x8001, 0, make([]byte, 100)...)
	binary.BigEndian.PutUint32(b[2:], 6)
	responseFault(t, b, ErrBadResponse)
}

func TestResponseLengthZero(t *testing.T) {
	b := rsp(0x8001, 0)
	binary.BigEndian.PutUint32(b[2:], 0)
	responseFault(t, b, ErrBurstCount) // QEMU's burstCount is then 0
}

func TestBurstCountStuckAtZero(t *testing.T) {
	r := newRig(Family20)
	d := r.open(t, 0)
	r.tis.burstZero = true
	_, err := d.Send(getRandom2(8))
	if !errors.Is(err, ErrBurstCount) {
		t.Fatalf("Send with burstCount 0: %v; want ErrBurstCount", err)
	}
	r.tis.burstZero = false
	if _, err := d.Send(getRandom2(8)); err != nil {
		t.Fatalf("driver unusable afterwards: %v", err)
	}
}

func TestMalformedCommands(t *testing.T) {
	r := newRig(Family20)
	d := r.open(t, 0)
	before := r.tis.commands
	long := make([]byte, MaxBuffer+1)
	binary.BigEndian.PutUint32(long[2:], uint32(len(long)))
	for name, cmd := range map[string][]byte{
		"empty":           nil,
		"short":           {0x80, 0x01, 0, 0},
		"size mismatch":   {0x80, 0x01, 0, 0, 0, 20, 0, 0, 1, 0x7B, 0, 8},
		"over the buffer": long,
	} {
		if _, err := d.Send(cmd); !errors.Is(err, ErrBadCommand) {
			t.Errorf("%s: %v; want ErrBadCommand", name, err)
		}
	}
	if r.tis.commands != before {
		t.Errorf("a malformed command reached the TPM")
	}
}

// A command the TPM's buffer cannot hold. QEMU then reports burstCount 0 with
// Expect still set; a TPM that drops Expect early is caught as ErrProtocol.
func TestCommandLargerThanTPMBuffer(t *testing.T) {
	r := newRig(Family20)
	d := r.open(t, 0)
	r.tis.bufSize = 1024
	cmd := make([]byte, 2000)
	copy(cmd, []byte{0x80, 0x01, 0, 0, 0x07, 0xD0, 0, 0, 0x01, 0x7B})
	if _, err := d.Send(cmd); !errors.Is(err, ErrBurstCount) && !errors.Is(err, ErrProtocol) {
		t.Fatalf("oversized command: %v; want ErrBurstCount or ErrProtocol", err)
	}
	if _, err := d.Send(getRandom2(8)); err != nil {
		t.Fatalf("driver unusable afterwards: %v", err)
	}
}

// A TPM that stops expecting data before the command's last byte: the
// driver must not write tpmGo for a truncated command (QEMU would run it).
func TestExpectDroppedEarly(t *testing.T) {
	r := newRig(Family20)
	d := r.open(t, 0)
	r.tis.expectCap = 8
	before := r.tis.commands
	if _, err := d.Send(getRandom2(8)); !errors.Is(err, ErrProtocol) {
		t.Fatalf("Expect dropped after 8 of 12 bytes: %v; want ErrProtocol", err)
	}
	if r.tis.commands != before {
		t.Errorf("the truncated command was started")
	}
	r.tis.expectCap = 0
	if _, err := d.Send(getRandom2(8)); err != nil {
		t.Fatalf("driver unusable afterwards: %v", err)
	}
}

func TestRetryIsBounded(t *testing.T) {
	for _, f := range []Family{Family20, Family12} {
		r := newRig(f)
		d := r.open(t, 0)
		cmd := getRandom2(4)
		if f == Family12 {
			cmd = []byte{0, 0xC1, 0, 0, 0, 14, 0, 0, 0, 0x46, 0, 0, 0, 4}
		}
		r.toy.retries = 3
		n := r.tis.commands
		rsp, err := d.Send(cmd)
		if err != nil || be32(rsp[6:]) != 0 {
			t.Fatalf("%v: after 3 retries: rc=%x err=%v", f, rsp, err)
		}
		if got := r.tis.commands - n; got != 4 || d.Stats().Retries != 3 {
			t.Errorf("%v: %d sends, stats %+v; want 4 sends, 3 retries", f, got, d.Stats())
		}
		r.toy.retries = 1000
		if _, err := d.Send(cmd); !errors.Is(err, ErrRetryExhausted) {
			t.Errorf("%v: endless retry: %v; want ErrRetryExhausted", f, err)
		}
	}
}

func TestReadWriterSemantics(t *testing.T) {
	r := newRig(Family20)
	d := r.open(t, 0)
	if n, err := d.Read(make([]byte, 10)); n != 0 || err != io.EOF {
		t.Fatalf("Read before Write = %d, %v; want 0, EOF", n, err)
	}
	if _, err := d.Write(getRandom2(6)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 10)
	n, err := d.Read(buf) // header only
	if n != 10 || err != nil {
		t.Fatalf("first Read = %d, %v", n, err)
	}
	n, err = d.Read(buf) // the rest, without EOF
	if n != 8 || err != nil {
		t.Fatalf("second Read = %d, %v; want 8, nil", n, err)
	}
	if n, err = d.Read(buf); n != 0 || err != io.EOF {
		t.Fatalf("third Read = %d, %v; want 0, EOF", n, err)
	}
}

func TestClose(t *testing.T) {
	r := newRig(Family20)
	d := r.open(t, 0)
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Send(getRandom2(4)); !errors.Is(err, ErrClosed) {
		t.Errorf("Send after Close: %v; want ErrClosed", err)
	}
}

func TestConcurrentSendersAreSerialised(t *testing.T) {
	r := newRig(Family20)
	d := r.open(t, 0)
	var wg sync.WaitGroup
	errs := make(chan error, 40)
	for range 4 {
		wg.Go(func() {
			for range 10 {
				if _, err := d.Send(getRandom2(16)); err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// Two drivers at different localities interleaving commands, as dom0 and the
// manager domain would: each waits for the other's locality, neither fails.
func TestTwoLocalitiesShareTheTPM(t *testing.T) {
	r := newRig(Family20)
	d0 := r.open(t, 0)
	d2 := r.open(t, 2)
	var wg sync.WaitGroup
	errs := make(chan error, 100)
	for _, d := range []*TPM{d0, d2} {
		wg.Go(func() {
			for range 25 {
				if _, err := d.Send(getRandom2(16)); err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// The cost of one command in register accesses, against the QEMU model with
// a TPM that answers at once (no extra status polls).
func TestRegisterAccessesPerCommand(t *testing.T) {
	r := newRig(Family20)
	d := r.open(t, 0)
	// Warm up: the first command also moves the FIFO out of idle.
	if _, err := d.Send(getRandom2(32)); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		run  func() error
		io   int // FIFO bytes moved: command + response
	}{
		{"GetRandom(32)", func() error { _, err := d.Send(getRandom2(32)); return err }, 12 + 44},
		{"PCR_Extend(16, SHA-256)", func() error { return extend2(d, 16) }, 65 + 19},
	}
	for _, c := range cases {
		before := d.Accesses()
		if err := c.run(); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		n := int(d.Accesses() - before)
		t.Logf("%s: %d register accesses (%d FIFO bytes + %d control)", c.name, n, c.io, n-c.io)
		// Control overhead is a fixed handful of ACCESS/STS accesses,
		// independent of the payload size.
		if n < c.io || n > c.io+20 {
			t.Errorf("%s: %d accesses; want %d FIFO bytes plus at most 20", c.name, n, c.io)
		}
	}
}

// A 4000-byte command goes out in one burst: STS is read as 32 bits, so
// QEMU's 0xFF cap on byte reads of burstCount does not apply.
func TestLargeCommandSingleBurst(t *testing.T) {
	r := newRig(Family20)
	d := r.open(t, 0)
	cmd := make([]byte, 4000)
	copy(cmd, []byte{0x80, 0x01, 0, 0, 0x0F, 0xA0, 0, 0, 0x01, 0x99})
	before := d.Accesses()
	if _, err := d.Send(cmd); err != nil {
		t.Fatal(err)
	}
	if n := int(d.Accesses() - before); n > len(cmd)+10+20 {
		t.Errorf("%d accesses for a %d-byte command", n, len(cmd))
	}
}

// A command that runs for a second is not polled 50,000 times at the 20µs
// interval: the pause backs off to 1 ms after the first 2 ms.
func TestLongCommandPollsSparingly(t *testing.T) {
	r := newRig(Family20)
	cfg := r.cfg(0)
	cfg.PollInterval = 20 * time.Microsecond
	d, err := New(r.tis.page(0), cfg)
	if err != nil {
		t.Fatal(err)
	}
	r.tis.execTime = time.Second
	before := d.Accesses()
	if _, err := d.Send(getRandom2(8)); err != nil {
		t.Fatal(err)
	}
	if n := d.Accesses() - before; n > 1300 {
		t.Errorf("%d register accesses for a 1 s command; want the polling to back off", n)
	}
}

// TPM_ACCESS never shows tpmRegValidSts: nothing usable answers there.
func TestAccessNeverValid(t *testing.T) {
	r := newRig(Family20)
	r.tis.loc[0].access = 0
	if _, err := New(r.tis.page(0), r.cfg(0)); !errors.Is(err, ErrNoTPM) {
		t.Fatalf("New with TPM_ACCESS=0: %v; want ErrNoTPM", err)
	}
}

// WideFIFO: the same commands with 4-byte FIFO accesses, through go-tpm,
// at two localities, with far fewer register accesses.
func TestWideFIFO(t *testing.T) {
	r := newRig(Family20)
	cfg := r.cfg(2)
	cfg.WideFIFO = true
	d, err := New(r.tis.page(2), cfg)
	if err != nil {
		t.Fatal(err)
	}
	got, err := tpm2.GetRandom{BytesRequested: 31}.Execute(d) // odd sizes end in byte accesses
	if err != nil {
		t.Fatal(err)
	}
	for i, b := range got.RandomBytes.Buffer {
		if b != byte(i*7+1) {
			t.Fatalf("byte %d = %#x; want %#x (FIFO byte order)", i, b, byte(i*7+1))
		}
	}
	before := d.Accesses()
	if err := extend2(d, 21); err != nil {
		t.Fatalf("extend at locality 2: %v", err)
	}
	n := d.Accesses() - before
	t.Logf("PCR_Extend(16, SHA-256) with WideFIFO: %d register accesses", n)
	if n > 98/2 {
		t.Errorf("%d accesses; want well under the 98 of byte accesses", n)
	}
	var zero [32]byte
	if r.toy.pcr20[21] == zero {
		t.Errorf("PCR 21 not extended")
	}
}
