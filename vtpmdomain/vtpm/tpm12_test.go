package vtpm

import (
	"bytes"
	"crypto/sha1"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand"
	"strings"
	"sync"
	"testing"

	"github.com/xenvtpm/xenvtpm/ratelimit"
	"github.com/xenvtpm/xenvtpm/vtpmdomain/platform"
)

// TPM 1.2 ordinals and codes (TPM Main Part 2 rev 116).
const (
	ord12Extend    = 0x14
	ord12PCRRead   = 0x15
	ord12SaveState = 0x98
	ord12Startup   = 0x99

	rc12BadLocality     = 0x3D
	rc12Fail            = 0x09
	rc12Retry           = 0x800
	rc12InvalidPostinit = 0x26
)

func cmd12(ord uint32, params ...[]byte) []byte {
	b := []byte{0x00, 0xC1, 0, 0, 0, 0}
	b = binary.BigEndian.AppendUint32(b, ord)
	for _, p := range params {
		b = append(b, p...)
	}
	binary.BigEndian.PutUint32(b[2:], uint32(len(b)))
	return b
}

func be32(v uint32) []byte { return binary.BigEndian.AppendUint32(nil, v) }

// rc12Of checks that rsp is a well-formed TPM 1.2 response and returns
// its code.
func rc12Of(t *testing.T, rsp []byte) uint32 {
	t.Helper()
	if len(rsp) < 10 || binary.BigEndian.Uint16(rsp) != 0x00C4 || int(binary.BigEndian.Uint32(rsp[2:])) != len(rsp) {
		t.Fatalf("not a TPM 1.2 response: % x", rsp)
	}
	return binary.BigEndian.Uint32(rsp[6:])
}

var guest = Peer{Name: "5/0"}

func send12(t *testing.T, s *Server, cmd []byte) []byte {
	t.Helper()
	rsp := s.Handle(guest, 0, cmd)
	if rc := rc12Of(t, rsp); rc != 0 {
		t.Fatalf("ordinal %#x: rc %#x", binary.BigEndian.Uint32(cmd[6:]), rc)
	}
	return rsp[10:]
}

func pcr12(t *testing.T, s *Server, i uint32) []byte {
	t.Helper()
	return send12(t, s, cmd12(ord12PCRRead, be32(i)))
}

func new12(t *testing.T, c Config) *Server {
	t.Helper()
	c.Options.Family = Family12
	if c.Log == nil {
		c.Log = nopLog{}
	}
	s, err := NewServer(c)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestTPM12Options(t *testing.T) {
	v, err := Spec().Parse("tpm=1.2 save")
	if err != nil {
		t.Fatal(err)
	}
	if o, err := ParseOptions(v); err != nil || o.Family != Family12 || o.Startup != StartupSave {
		t.Fatalf("tpm=1.2 save: %+v %v", o, err)
	}
	v, _ = Spec().Parse("")
	if o, _ := ParseOptions(v); o.Family != Family20 {
		t.Fatalf("default family %q", o.Family)
	}
	if _, err := Spec().Parse("tpm=1.1"); err == nil {
		t.Fatal("tpm=1.1 accepted")
	}
	v, _ = Spec().Parse("tpm=1.2 hwinitpcr=0-7 pp=1 maintcmds=1")
	if o, err := ParseOptions(v); err != nil || len(o.HWInitPCR) != 8 || !o.PhysicalPresence || !o.MaintCmds {
		t.Fatalf("tpm=1.2 hwinitpcr=0-7 pp=1 maintcmds=1: %+v %v", o, err)
	}
	v, _ = Spec().Parse("tpm=1.2")
	if o, _ := ParseOptions(v); o.PhysicalPresence || o.MaintCmds {
		t.Fatalf("pp= and maintcmds= default to 0: %+v", o)
	}
	if _, err := Spec().Parse("pp=2"); err == nil {
		t.Fatal("pp=2 accepted")
	}
	v, _ = Spec().Parse("tpm=1.2 hwinitpcr=none")
	if _, err := ParseOptions(v); err != nil {
		t.Fatalf("tpm=1.2 hwinitpcr=none: %v", err)
	}
}

// clear starts the TPM (xen-tpmfront never sends TPM_Startup);
// deactivated leaves that to the guest.
func TestTPM12StartsAsTold(t *testing.T) {
	s := new12(t, Config{Options: Options{Startup: StartupClear}})
	if v := pcr12(t, s, 0); !bytes.Equal(v, make([]byte, 20)) {
		t.Fatalf("PCR 0 = %x", v)
	}
	d := new12(t, Config{Options: Options{Startup: StartupDeactivated}})
	if rc := rc12Of(t, d.Handle(guest, 0, cmd12(ord12PCRRead, be32(0)))); rc != rc12InvalidPostinit {
		t.Fatalf("un-started TPM answered rc %#x, want TPM_INVALID_POSTINIT", rc)
	}
	send12(t, d, cmd12(ord12Startup, []byte{0, 1}))
	pcr12(t, d, 0)
}

// TPM_SaveState is saved before its answer; save resumes the PCRs with
// TPM_Startup(ST_STATE); a state with nothing to resume falls back to
// CLEAR and leaves a working TPM (a TPM 1.2 that refused ST_STATE is in
// failure mode until _TPM_Init).
func TestTPM12Persistence(t *testing.T) {
	sv := &memSaver{}
	s := new12(t, Config{Options: Options{Startup: StartupClear}, Saver: sv})
	if len(sv.blobs) != 1 {
		t.Fatalf("a new TPM was saved %d times at start, want 1", len(sv.blobs))
	}
	m := sha1.Sum([]byte("kernel"))
	ext := send12(t, s, cmd12(ord12Extend, be32(4), m[:]))
	if len(sv.blobs) != 1 {
		t.Fatal("TPM_Extend caused a save")
	}
	send12(t, s, cmd12(ord12SaveState))
	if len(sv.blobs) != 2 {
		t.Fatalf("TPM_SaveState: %d saves, want 1", len(sv.blobs)-1)
	}
	s.Close()

	var log testLog
	r := new12(t, Config{Options: Options{Startup: StartupSave}, State: sv.last(), Saver: sv, Log: &log})
	if v := pcr12(t, r, 4); !bytes.Equal(v, ext) {
		t.Fatalf("PCR 4 after save start = %x, want %x", v, ext)
	}
	if !log.has("resumed with TPM_Startup(STATE)") {
		t.Fatalf("log: %q", log.lines)
	}
	// ST_STATE used the saved state up: that was saved too.
	r.Close()
	log = testLog{}
	c := new12(t, Config{Options: Options{Startup: StartupSave}, State: sv.last(), Saver: sv, Log: &log})
	if v := pcr12(t, c, 4); !bytes.Equal(v, make([]byte, 20)) {
		t.Fatalf("PCR 4 after a save start with nothing saved = %x", v)
	}
	if !log.has("starting with Startup(CLEAR)") {
		t.Fatalf("log: %q", log.lines)
	}
}

type testLog struct {
	mu    sync.Mutex
	lines []string
}

func (l *testLog) add(f string, a ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, fmt.Sprintf(f, a...))
}
func (l *testLog) Infof(f string, a ...any)  { l.add(f, a...) }
func (l *testLog) Debugf(string, ...any)     {}
func (l *testLog) Errorf(f string, a ...any) { l.add(f, a...) }
func (l *testLog) has(sub string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, s := range l.lines {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}

// A saved state of the other family is refused, `clear` or not, and
// nothing is saved over it.
func TestOtherFamilyRefused(t *testing.T) {
	sv20, sv12 := &memSaver{}, &memSaver{}
	if _, err := NewServer(Config{Options: Options{Startup: StartupClear}, Saver: sv20, Log: nopLog{}}); err != nil {
		t.Fatal(err)
	}
	new12(t, Config{Options: Options{Startup: StartupClear}, Saver: sv12})
	for _, tc := range []struct {
		family, other string
		state         []byte
	}{{Family12, Family20, sv20.last()}, {Family20, Family12, sv12.last()}} {
		for _, clear := range []bool{false, true} {
			sv := &memSaver{}
			_, err := NewServer(Config{Options: Options{Family: tc.family, Startup: StartupClear, ClearGiven: clear},
				State: tc.state, Saver: sv, Log: nopLog{}})
			if !errors.Is(err, ErrOtherFamily) || !strings.Contains(err.Error(), "is a TPM "+tc.other) || !strings.Contains(err.Error(), "tpm="+tc.other) {
				t.Fatalf("tpm=%s given a %s state: %v", tc.family, tc.other, err)
			}
			if len(sv.blobs) != 0 {
				t.Fatalf("tpm=%s given a %s state saved %d blobs", tc.family, tc.other, len(sv.blobs))
			}
		}
	}
	// A damaged blob is no family's: the engine's own error.
	bad := append([]byte(nil), sv12.last()...)
	bad[len(bad)-1] ^= 1
	if _, err := NewServer(Config{Options: Options{Family: Family12}, State: bad, Log: nopLog{}}); err == nil || errors.Is(err, ErrOtherFamily) {
		t.Fatalf("damaged 1.2 blob: %v", err)
	}
}

// A guest outside its localities, past its save budget, with garbage or
// with platform commands gets TPM 1.2 answers and changes nothing; the
// TPM keeps serving.
func TestTPM12HostileFrontend(t *testing.T) {
	clk := newFakeClock()
	sv := &memSaver{}
	s := new12(t, Config{Options: Options{Startup: StartupClear, SaveBudget: 1, SaveRefill: ratelimit.Rate{N: 1, Per: 60e9}},
		Saver: sv, Now: clk.now})
	m := sha1.Sum([]byte("x"))
	// Locality 4 (PCR 17's) is not in the default set.
	if rc := rc12Of(t, s.Handle(guest, 4, cmd12(ord12Extend, be32(17), m[:]))); rc != rc12BadLocality {
		t.Fatalf("command at locality 4: rc %#x, want TPM_BAD_LOCALITY", rc)
	}
	if v := pcr12(t, s, 17); !bytes.Equal(v, bytes.Repeat([]byte{0xFF}, 20)) {
		t.Fatalf("PCR 17 after a refused extend = %x", v)
	}
	// Garbage of every length: a well-formed answer each time.
	rnd := rand.New(rand.NewSource(1))
	for i := range 2000 {
		n := rnd.Intn(64)
		cmd := make([]byte, n)
		rnd.Read(cmd)
		if i%2 == 0 && n >= 10 {
			copy(cmd, []byte{0x00, 0xC1})
			binary.BigEndian.PutUint32(cmd[2:], uint32(n))
			binary.BigEndian.PutUint32(cmd[6:], uint32(rnd.Intn(0x100)))
		}
		if rsp := s.Handle(guest, 0, cmd); len(rsp) < 10 || int(binary.BigEndian.Uint32(rsp[2:])) != len(rsp) {
			t.Fatalf("% x answered % x", cmd, rsp)
		}
	}
	// A platform reset from a guest is refused; the TPM stays started.
	if rsp := s.Handle(guest, 0, platform.Marshal(platform.CCPlatformReset)); binary.BigEndian.Uint32(rsp[6:]) != platform.RCCommandCode {
		t.Fatalf("platform reset from a guest: % x", rsp)
	}
	pcr12(t, s, 0)
	// The save budget: one save, then TPM_RETRY before the command runs.
	send12(t, s, cmd12(ord12SaveState))
	saves := len(sv.blobs)
	if rc := rc12Of(t, s.Handle(guest, 0, cmd12(ord12SaveState))); rc != rc12Retry {
		t.Fatalf("SaveState past the budget: rc %#x, want TPM_RETRY", rc)
	}
	if len(sv.blobs) != saves {
		t.Fatal("a refused command was saved")
	}
	if st := s.Stats(); st.LocalityRefused != 1 || st.RateRefused != 1 {
		t.Fatalf("stats %+v", st)
	}
	clk.t = clk.t.Add(61e9)
	send12(t, s, cmd12(ord12SaveState))
	// While SaveState's state is pending every command may write NV
	// (running one discards that state): the budget is spent again.
	clk.t = clk.t.Add(61e9)
	// The control domain's platform reset is _TPM_Init.
	if rsp := s.Handle(Peer{Name: "0/0", Control: true}, 0, platform.Marshal(platform.CCPlatformReset)); binary.BigEndian.Uint32(rsp[6:]) != 0 {
		t.Fatalf("platform reset from dom0: % x", rsp)
	}
	if rc := rc12Of(t, s.Handle(guest, 0, cmd12(ord12PCRRead, be32(0)))); rc != rc12InvalidPostinit {
		t.Fatalf("after a platform reset: rc %#x, want TPM_INVALID_POSTINIT", rc)
	}
}

// A change whose save fails is undone: the command is answered
// TPM_FAIL and had no effect; the TPM keeps serving, and the guest
// retries.
func TestTPM12SaveFailure(t *testing.T) {
	sv := &memSaver{}
	s := new12(t, Config{Options: Options{Startup: StartupClear}, Saver: sv})
	m := sha1.Sum([]byte("y"))
	ext := send12(t, s, cmd12(ord12Extend, be32(5), m[:]))
	sv.fail = errors.New("disk gone")
	if rc := rc12Of(t, s.Handle(guest, 0, cmd12(ord12SaveState))); rc != rc12Fail {
		t.Fatalf("SaveState with a failing saver: rc %#x, want TPM_FAIL", rc)
	}
	// PCRs are volatile: they stay.
	if v := pcr12(t, s, 5); !bytes.Equal(v, ext) {
		t.Fatalf("PCR 5 after the undone SaveState = %x", v)
	}
	sv.fail = nil
	saves := len(sv.blobs)
	send12(t, s, cmd12(ord12SaveState))
	if len(sv.blobs) != saves+1 {
		t.Fatalf("the retried SaveState: %d saves, want 1", len(sv.blobs)-saves)
	}
	if _, unsaved := s.Close(); unsaved {
		t.Fatal("unsaved although the failed change was undone")
	}
	r := new12(t, Config{Options: Options{Startup: StartupSave}, State: sv.last()})
	if v := pcr12(t, r, 5); !bytes.Equal(v, ext) {
		t.Fatalf("PCR 5 after resuming = %x, want %x", v, ext)
	}
}

// hwinitpcr= copies the hardware's SHA-1 values into the TPM 1.2's PCRs.
func TestTPM12HWInitPCR(t *testing.T) {
	hw := func(i int) ([20]byte, error) { return sha1.Sum([]byte{byte(i)}), nil }
	s := new12(t, Config{Options: Options{Startup: StartupClear, HWInitPCR: []int{0, 7, 17}}, HWPCR: hw})
	for _, i := range []int{0, 7, 17} {
		want, _ := hw(i)
		if v := pcr12(t, s, uint32(i)); !bytes.Equal(v, want[:]) {
			t.Fatalf("PCR %d = %x, want the hardware's %x", i, v, want)
		}
	}
	if v := pcr12(t, s, 1); !bytes.Equal(v, make([]byte, 20)) {
		t.Fatalf("PCR 1 = %x", v)
	}
	if _, err := NewServer(Config{Options: Options{Family: Family12, Startup: StartupClear, HWInitPCR: []int{0}}, Log: nopLog{}}); err == nil {
		t.Fatal("hwinitpcr= without the manager started")
	}
}

// pp=: the domain locks TPM 1.2 physical presence after its Startup, or
// with pp=1 asserts it for the guest, who can then re-enable its TPM
// after tpm_clear; with deactivated the guest's firmware decides.
func TestTPM12PhysicalPresence(t *testing.T) {
	const (
		ordTSCPP, ordPhysicalEnable, ordForceClear = 0x4000000A, 0x6F, 0x5D
		rcBadPresence, rcBadParameter              = 0x2D, 0x03
	)
	present := []byte{0, 0x08}
	lg := &testLog{}
	s := new12(t, Config{Options: Options{Startup: StartupClear}, Log: lg})
	if rc := rc12Of(t, s.Handle(guest, 0, cmd12(ordTSCPP, present))); rc != rcBadParameter {
		t.Fatalf("guest asserting presence after the lock: rc %#x", rc)
	}
	if rc := rc12Of(t, s.Handle(guest, 0, cmd12(ordForceClear))); rc != rcBadPresence {
		t.Fatalf("ForceClear: rc %#x", rc)
	}
	if !lg.has("physical presence locked") {
		t.Fatalf("no console line for the lock: %q", lg.lines)
	}
	lg = &testLog{}
	p := new12(t, Config{Options: Options{Startup: StartupClear, PhysicalPresence: true, MaintCmds: true}, Log: lg})
	send12(t, p, cmd12(ordForceClear))
	send12(t, p, cmd12(ordPhysicalEnable))
	if !lg.has("pp=1: physical presence asserted") || !lg.has("maintcmds=1: the TPM 1.2 maintenance commands") {
		t.Fatalf("console lines %q", lg.lines)
	}
	// The guest's own lock holds until its next reboot.
	send12(t, p, cmd12(ordTSCPP, []byte{0, 0x14}))
	if rc := rc12Of(t, p.Handle(guest, 0, cmd12(ordPhysicalEnable))); rc != rcBadPresence {
		t.Fatalf("PhysicalEnable after the guest's lock: rc %#x", rc)
	}
	d := new12(t, Config{Options: Options{Startup: StartupDeactivated}})
	send12(t, d, cmd12(ord12Startup, []byte{0, 1}))
	send12(t, d, cmd12(ordTSCPP, present))
	send12(t, d, cmd12(ordPhysicalEnable))
}
