package tpm2

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"testing"
	"time"

	gt "github.com/google/go-tpm/tpm2"
	"github.com/google/go-tpm/tpm2/transport"
)

// What a command costs in saves: only a real change of durable state is
// reported by NVChanged; the clock, the dictionary-attack counters and
// the orderly-shutdown state are written lazily, and still survive a
// restart.

// testClock is the host time a TPM under test sees.
type testClock struct{ t time.Time }

func (c *testClock) now() time.Time { return c.t }

func (c *testClock) advance(d time.Duration) { c.t = c.t.Add(d) }

func newTestClock() *testClock { return &testClock{t: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)} }

// startClocked makes a TPM from state (nil: manufacture) on clk and
// starts it with Startup(CLEAR).
func startClocked(t *testing.T, clk *testClock, state []byte) (*TPM, transport.TPM) {
	t.Helper()
	tp, err := New(Config{State: state, Now: clk.now})
	if err != nil {
		t.Fatal(err)
	}
	tr := engineTransport{tp}
	if _, err := (gt.Startup{StartupType: gt.TPMSUClear}).Execute(tr); err != nil {
		t.Fatalf("Startup: %v", err)
	}
	tp.NVChanged()
	return tp, tr
}

// defineIndex defines an ordinary 8-byte NV index whose own password
// authorizes reads and writes; noDA makes it DA-exempt.
func defineIndex(t *testing.T, tr transport.TPM, h uint32, noDA bool) gt.TPM2BName {
	t.Helper()
	if _, err := (gt.NVDefineSpace{AuthHandle: gt.TPMRHOwner, Auth: gt.TPM2BAuth{Buffer: []byte("pw")},
		PublicInfo: gt.New2B(gt.TPMSNVPublic{
			NVIndex: gt.TPMHandle(h), NameAlg: gt.TPMAlgSHA256,
			Attributes: gt.TPMANV{AuthRead: true, AuthWrite: true, NoDA: noDA, NT: gt.TPMNTOrdinary}, DataSize: 8,
		})}).Execute(tr); err != nil {
		t.Fatal(err)
	}
	return nvName(t, tr, gt.TPMHandle(h))
}

// writeIndex writes data to index h with password pw.
func writeIndex(tr transport.TPM, h uint32, name gt.TPM2BName, pw string, data []byte) error {
	_, err := (gt.NVWrite{
		AuthHandle: gt.AuthHandle{Handle: gt.TPMHandle(h), Name: name, Auth: gt.PasswordAuth([]byte(pw))},
		NVIndex:    gt.NamedHandle{Handle: gt.TPMHandle(h), Name: name},
		Data:       gt.TPM2BMaxNVBuffer{Buffer: data},
	}).Execute(tr)
	return err
}

// lockoutCounter reads TPM_PT_LOCKOUT_COUNTER (failedTries).
func lockoutCounter(t *testing.T, tr transport.TPM) uint32 {
	t.Helper()
	r, err := (gt.GetCapability{Capability: gt.TPMCapTPMProperties, Property: uint32(gt.TPMPTLockoutCounter), PropertyCount: 1}).Execute(tr)
	if err != nil {
		t.Fatal(err)
	}
	p, err := r.CapabilityData.Data.TPMProperties()
	if err != nil || len(p.TPMProperty) == 0 || p.TPMProperty[0].Property != gt.TPMPTLockoutCounter {
		t.Fatalf("TPM_PT_LOCKOUT_COUNTER: %v %+v", err, p)
	}
	return p.TPMProperty[0].Value
}

// readClock returns TPM2_ReadClock's clock and safe flag.
func readClock(t *testing.T, tr transport.TPM) (uint64, bool) {
	t.Helper()
	r, err := (gt.ReadClock{}).Execute(tr)
	if err != nil {
		t.Fatal(err)
	}
	return r.CurrentTime.ClockInfo.Clock, bool(r.CurrentTime.ClockInfo.Safe)
}

// lockReset sends TPM2_DictionaryAttackLockReset with lockoutAuth pw
// and returns the response code (go-tpm has no structure for it).
func lockReset(tp *TPM, pw string) uint32 {
	return responseCode(tp.Process(rawCommand(uint32(gt.TPMCCDictionaryAttackLockReset), []uint32{rhLockout}, passwordAuth([]byte(pw)), nil), 0))
}

func asError(rc uint32) error {
	if rc == 0 {
		return nil
	}
	return gt.TPMRC(rc)
}

func save(t *testing.T, tp *TPM) []byte {
	t.Helper()
	b, err := tp.Save()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestOnlyRealChangesNeedASave(t *testing.T) {
	tp, tr := startClocked(t, newTestClock(), nil)
	const da, noDA = 0x01500010, 0x01500011
	daName := defineIndex(t, tr, da, false)
	noDAName := defineIndex(t, tr, noDA, true)
	if !tp.NVChanged() {
		t.Fatal("NV_DefineSpace not reported as a change")
	}
	cases := []struct {
		what string
		do   func() error
		want bool // a save is needed
	}{
		{"first write", func() error { return writeIndex(tr, noDA, noDAName, "pw", []byte("12345678")) }, true},
		{"the same data again", func() error { return writeIndex(tr, noDA, noDAName, "pw", []byte("12345678")) }, false},
		{"other data", func() error { return writeIndex(tr, noDA, noDAName, "pw", []byte("87654321")) }, true},
		{"Shutdown(CLEAR)", func() error { _, err := (gt.Shutdown{ShutdownType: gt.TPMSUClear}).Execute(tr); return err }, false},
		{"Shutdown(CLEAR) again", func() error { _, err := (gt.Shutdown{ShutdownType: gt.TPMSUClear}).Execute(tr); return err }, false},
		{"Shutdown(STATE)", func() error { _, err := (gt.Shutdown{ShutdownType: gt.TPMSUState}).Execute(tr); return err }, false},
		{"wrong password, DA-exempt index", func() error { return writeIndex(tr, noDA, noDAName, "bad", []byte("x")) }, false},
		{"wrong password, DA-exempt index again", func() error { return writeIndex(tr, noDA, noDAName, "bad", []byte("x")) }, false},
		// The first DA-protected failure of a run is recorded durably
		// (DAUsed); the counters after it are written lazily.
		{"wrong password, DA-protected index", func() error { return writeIndex(tr, da, daName, "bad", []byte("x")) }, true},
		{"wrong password, DA-protected index again", func() error { return writeIndex(tr, da, daName, "bad", []byte("x")) }, false},
		{"DictionaryAttackLockReset", func() error { return asError(lockReset(tp, "")) }, false},
	}
	for _, c := range cases {
		err := c.do()
		if got := tp.NVChanged(); got != c.want {
			t.Errorf("%s (%v): NVChanged = %v, want %v", c.what, err, got, c.want)
		}
	}
}

// The commands WritesNV lets through without a save budget are those
// that change only what is written lazily.
func TestWritesNV(t *testing.T) {
	tp, _ := newStarted(t)
	for cc, want := range map[gt.TPMCC]bool{
		gt.TPMCCNVWrite: true, gt.TPMCCNVDefineSpace: true, gt.TPMCCEvictControl: true, gt.TPMCCHierarchyChanegAuth: true,
		gt.TPMCCShutdown: false, gt.TPMCCClockSet: false, gt.TPMCCDictionaryAttackLockReset: false,
		gt.TPMCCGetRandom: false, gt.TPMCCPCRExtend: false,
	} {
		if got := tp.WritesNV(uint32(cc)); got != want {
			t.Errorf("WritesNV(%#x) = %v, want %v", cc, got, want)
		}
	}
}

// A lockout outlives a restart: the DA timers are part of the state, and
// the clock continues from the saved value.
func TestDALockoutSurvivesRestart(t *testing.T) {
	clk := newTestClock()
	tp, tr := startClocked(t, clk, nil)
	// Well past recoveryTime (1000 s), so a timer lost on restart would
	// read as "the last failure was long ago".
	clk.advance(3 * time.Hour)
	const da = 0x01500010
	name := defineIndex(t, tr, da, false)
	for i := 0; i < 3; i++ {
		if err := writeIndex(tr, da, name, "bad", []byte("x")); !errors.Is(err, gt.TPMRCAuthFail) {
			t.Fatalf("failure %d: %v", i, err)
		}
	}
	if err := writeIndex(tr, da, name, "pw", []byte("x")); !errors.Is(err, gt.TPMRCLockout) {
		t.Fatalf("after 3 failures: %v, want TPM_RC_LOCKOUT", err)
	}
	// lockoutAuth locked too.
	if rc := lockReset(tp, "bad"); rc&^0xF00 != rcAuthFail {
		t.Fatalf("wrong lockoutAuth: rc %#x", rc)
	}
	blob, err := tp.SaveAtStop()
	if err != nil {
		t.Fatal(err)
	}
	clk.advance(time.Hour) // the TPM was off: its clock does not run
	tp2, tr2 := startClocked(t, clk, blob)
	if err := writeIndex(tr2, da, name, "pw", []byte("x")); !errors.Is(err, gt.TPMRCLockout) {
		t.Fatalf("after a restart: %v, want TPM_RC_LOCKOUT", err)
	}
	if rc := lockReset(tp2, ""); rc != rcLockout {
		t.Fatalf("lockoutAuth after a restart: rc %#x, want TPM_RC_LOCKOUT", rc)
	}
	// Time heals them as before: one failure per recoveryTime, lockoutAuth
	// after lockoutRecovery (both 1000 s).
	clk.advance(1001 * time.Second)
	if err := writeIndex(tr2, da, name, "pw", []byte("12345678")); err != nil {
		t.Fatalf("after recoveryTime: %v", err)
	}
	if rc := lockReset(tp2, ""); rc != 0 {
		t.Fatalf("lockoutAuth after lockoutRecovery: rc %#x", rc)
	}
}

// DA failures after the last save are lost if the TPM stops without
// SaveAtStop; the next Startup counts one for them. An orderly stop
// loses nothing and counts nothing.
func TestLostDAFailuresCountOne(t *testing.T) {
	for _, orderly := range []bool{false, true} {
		clk := newTestClock()
		tp, tr := startClocked(t, clk, nil)
		const da = 0x01500010
		name := defineIndex(t, tr, da, false)
		writeIndex(tr, da, name, "bad", []byte("x"))
		if !tp.NVChanged() {
			t.Fatal("the first DA failure of a run is not saved")
		}
		blob := save(t, tp) // failedTries 1, DAUsed
		writeIndex(tr, da, name, "bad", []byte("x"))
		if tp.NVChanged() {
			t.Fatal("the second DA failure asks for a save")
		}
		want := uint32(2) // the unsaved second failure, counted at Startup
		if orderly {
			b, err := tp.SaveAtStop()
			if err != nil {
				t.Fatal(err)
			}
			blob = b
		}
		_, tr2 := startClocked(t, clk, blob)
		if got := lockoutCounter(t, tr2); got != want {
			t.Errorf("orderly %v: failedTries after restart %d, want %d", orderly, got, want)
		}
	}
}

// A failed save is undone with RestorePersistent; a DA failure counted
// meanwhile stays counted.
func TestRestorePersistentKeepsDACounters(t *testing.T) {
	tp, tr := startClocked(t, newTestClock(), nil)
	const da = 0x01500010
	name := defineIndex(t, tr, da, false)
	before := save(t, tp)
	writeIndex(tr, da, name, "bad", []byte("x"))
	if err := tp.RestorePersistent(before); err != nil {
		t.Fatal(err)
	}
	if got := lockoutCounter(t, tr); got != 1 {
		t.Fatalf("failedTries after undoing the save = %d, want 1", got)
	}
}

// The state Save writes after Shutdown(STATE) resumes with
// Startup(STATE), though the Shutdown itself asked for no save.
func TestShutdownStateWrittenLazily(t *testing.T) {
	clk := newTestClock()
	tp, tr := startClocked(t, clk, nil)
	d := bytes.Repeat([]byte{7}, 32)
	if _, err := (gt.PCRExtend{PCRHandle: gt.AuthHandle{Handle: 5, Auth: gt.PasswordAuth(nil)},
		Digests: gt.TPMLDigestValues{Digests: []gt.TPMTHA{{HashAlg: gt.TPMAlgSHA256, Digest: d}}}}).Execute(tr); err != nil {
		t.Fatal(err)
	}
	pcr := readPCR(t, tr, 5)
	if _, err := (gt.Shutdown{ShutdownType: gt.TPMSUState}).Execute(tr); err != nil {
		t.Fatal(err)
	}
	if tp.NVChanged() {
		t.Fatal("Shutdown(STATE) asks for a save")
	}
	blob, err := tp.SaveAtStop()
	if err != nil {
		t.Fatal(err)
	}
	tp2, err := New(Config{State: blob, Now: clk.now})
	if err != nil {
		t.Fatal(err)
	}
	tr2 := engineTransport{tp2}
	if _, err := (gt.Startup{StartupType: gt.TPMSUState}).Execute(tr2); err != nil {
		t.Fatalf("Startup(STATE): %v", err)
	}
	if got := readPCR(t, tr2, 5); !bytes.Equal(got, pcr) {
		t.Fatalf("PCR 5 after resume %x, want %x", got, pcr)
	}
	// A resumed PCR extends from its resumed value.
	if _, err := (gt.PCRExtend{PCRHandle: gt.AuthHandle{Handle: 5, Auth: gt.PasswordAuth(nil)},
		Digests: gt.TPMLDigestValues{Digests: []gt.TPMTHA{{HashAlg: gt.TPMAlgSHA256, Digest: d}}}}).Execute(tr2); err != nil {
		t.Fatal(err)
	}
	want := sha256.Sum256(append(append([]byte{}, pcr...), d...))
	if got := readPCR(t, tr2, 5); !bytes.Equal(got, want[:]) {
		t.Fatalf("PCR 5 extended after resume %x, want %x", got, want)
	}
}
