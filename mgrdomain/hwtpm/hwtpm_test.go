package hwtpm

import (
	"bytes"
	"crypto/sha1"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/xenvtpm/xenvtpm/mgrdomain/internal/swtpmtest"

	"github.com/google/go-tpm/tpm2"
)

func openTPM(t testing.TB, s *swtpmtest.Swtpm, cfg Config) *TPM {
	t.Helper()
	tp, err := Open(s.TPM(), cfg)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return tp
}

func TestDetect(t *testing.T) {
	s := swtpmtest.StartSwtpm(t, "")
	f, err := Detect(s.TPM())
	if err != nil || f != Family20 {
		t.Fatalf("Detect = %v, %v; want TPM 2.0", f, err)
	}
}

// fake12 answers every command as a TPM 1.2 does to an unknown tag.
type fake12 struct{}

func (fake12) Send([]byte) ([]byte, error) {
	return []byte{0x00, 0xC4, 0, 0, 0, 10, 0, 0, 0, 0x1E}, nil
}

func TestTPM12Refused(t *testing.T) {
	_, err := Open(fake12{}, Config{})
	if !errors.Is(err, ErrTPM12) || !strings.Contains(err.Error(), "Open12") {
		t.Fatalf("Open(TPM 1.2) = %v, want ErrTPM12", err)
	}
}

// hardware is what both families' layers offer the manager.
type hardware interface {
	Seal(key []byte, pcrs []uint) (*SealedBlob, error)
	Reseal(key []byte, pcrs []uint) (*SealedBlob, error)
	Retire(b *SealedBlob) error
	Unseal(b *SealedBlob) ([]byte, error)
	ReadCounter() (uint64, error)
	CreateCounter() (uint64, error)
	IncrementCounter() error
	GetRandom(n int) ([]byte, error)
	PCRRead(index uint32) ([20]byte, error)
}

// roundTrips seals a key to no PCRs, the default ones and 18, and unseals
// each blob after a trip through the disk encoding, as the manager keeps
// it; check looks at each decoded blob.
func roundTrips(t *testing.T, tp hardware, check func(dec *SealedBlob, pcrs []uint)) {
	t.Helper()
	key := bytes.Repeat([]byte{0x5a}, 32)
	for _, pcrs := range [][]uint{{}, DefaultSealPCRs, {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 23}} {
		blob, err := tp.Seal(key, pcrs)
		if err != nil {
			t.Fatalf("Seal(%v): %v", pcrs, err)
		}
		enc := blob.Marshal()
		dec, err := UnmarshalSealedBlob(enc)
		if err != nil {
			t.Fatalf("UnmarshalSealedBlob: %v", err)
		}
		check(dec, pcrs)
		got, err := tp.Unseal(dec)
		if err != nil || !bytes.Equal(got, key) {
			t.Fatalf("Unseal(sealed to %s) = %x, %v", FormatPCRs(pcrs), got, err)
		}
		t.Logf("%s, sealed to %s: blob of %d bytes", dec.Family, FormatPCRs(pcrs), len(enc))
	}
}

// exercise calls every method once over a TPM that may answer anything:
// only a panic fails.
func exercise(tp hardware) {
	tp.GetRandom(40)
	tp.PCRRead(7)
	tp.ReadCounter()
	tp.CreateCounter()
	tp.IncrementCounter()
	if blob, err := tp.Seal([]byte("k"), []uint{0}); err == nil {
		tp.Unseal(blob)
	}
	if blob, err := tp.Reseal([]byte("k"), nil); err == nil {
		tp.Retire(blob)
		tp.Unseal(blob)
	}
	tp.Unseal(blob12)
	at0 := *blob20
	at0.Locality = 0
	tp.Unseal(&at0)
}

func TestSealUnsealRoundTrip(t *testing.T) {
	s := swtpmtest.StartSwtpm(t, "")
	roundTrips(t, openTPM(t, s, Config{}), func(dec *SealedBlob, _ []uint) {
		if dec.Family != Family20 {
			t.Fatalf("decoded blob: %v", dec.Family)
		}
	})
}

func TestPCRChangeRefused(t *testing.T) {
	s := swtpmtest.StartSwtpm(t, "")
	tp := openTPM(t, s, Config{})
	key := []byte("0123456789abcdef0123456789abcdef")
	blob, err := tp.Seal(key, []uint{0, 7, 16})
	if err != nil {
		t.Fatal(err)
	}
	swtpmtest.ExtendPCR(t, s.TPM(), 16)
	// Repeated refusals must not leak policy sessions or objects (a TPM
	// holds only a few at once), so every attempt gets the same answer.
	for range 6 {
		_, err = tp.Unseal(blob)
		if !errors.Is(err, ErrPCRPolicy) {
			t.Fatalf("Unseal after PCR change = %v, want ErrPCRPolicy", err)
		}
	}
	if !strings.Contains(err.Error(), "changed since sealing: 16") {
		t.Errorf("error does not name PCR 16: %v", err)
	}
	t.Logf("error: %v", err)
	// A reboot resets PCR 16: unsealable again.
	s.Restart()
	tp = openTPM(t, s, Config{})
	if got, err := tp.Unseal(blob); err != nil || !bytes.Equal(got, key) {
		t.Fatalf("Unseal after reboot = %x, %v", got, err)
	}
}

func TestDeterministicPrimaryAcrossRestart(t *testing.T) {
	s := swtpmtest.StartSwtpm(t, "")
	tp := openTPM(t, s, Config{})
	n1, err := tp.PrimaryName()
	if err != nil {
		t.Fatal(err)
	}
	key := bytes.Repeat([]byte{7}, 32)
	blob, err := tp.Seal(key, DefaultSealPCRs)
	if err != nil {
		t.Fatal(err)
	}
	s.Restart()
	tp = openTPM(t, s, Config{})
	n2, err := tp.PrimaryName()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(n1, n2) {
		t.Fatalf("primary name changed across restart: %x vs %x", n1, n2)
	}
	if got, err := tp.Unseal(blob); err != nil || !bytes.Equal(got, key) {
		t.Fatalf("Unseal after restart = %x, %v", got, err)
	}
	// Another TPM (fresh seeds) cannot load the blob.
	other := openTPM(t, swtpmtest.StartSwtpm(t, ""), Config{})
	if _, err := other.Unseal(blob); !errors.Is(err, ErrWrongParent) {
		t.Fatalf("Unseal on another TPM = %v, want ErrWrongParent", err)
	}
}

func TestSRKAuth(t *testing.T) {
	s := swtpmtest.StartSwtpm(t, "")
	a, _ := ParseAuth("text:srk secret")
	tp := openTPM(t, s, Config{SRKAuth: a})
	key := []byte("k")
	blob, err := tp.Seal(key, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := tp.Unseal(blob); err != nil || !bytes.Equal(got, key) {
		t.Fatalf("Unseal with srk_auth = %x, %v", got, err)
	}
	// The primary is re-derived with whatever srk_auth is configured, so
	// srk_auth does not gate the key on TPM 2.0 (documented): owner_auth
	// does, since creating the primary needs it.
	if got, err := openTPM(t, s, Config{}).Unseal(blob); err != nil || !bytes.Equal(got, key) {
		t.Fatalf("Unseal with another srk_auth = %x, %v", got, err)
	}
}

func TestOwnerAuthGatesUnseal(t *testing.T) {
	s := swtpmtest.StartSwtpm(t, "")
	key := []byte("k")
	blob, err := openTPM(t, s, Config{}).Seal(key, nil)
	if err != nil {
		t.Fatal(err)
	}
	bad, _ := ParseAuth("text:wrong")
	if _, err := openTPM(t, s, Config{OwnerAuth: bad}).Unseal(blob); err == nil || !strings.Contains(err.Error(), "owner_auth refused") {
		t.Fatalf("Unseal with a wrong owner_auth = %v", err)
	}
}

func TestCounter(t *testing.T) {
	s := swtpmtest.StartSwtpm(t, "")
	tp := openTPM(t, s, Config{})
	if _, err := tp.ReadCounter(); !errors.Is(err, ErrNoCounter) {
		t.Fatalf("ReadCounter before creation = %v, want ErrNoCounter", err)
	}
	if err := tp.IncrementCounter(); !errors.Is(err, ErrNoCounter) {
		t.Fatalf("IncrementCounter before creation = %v, want ErrNoCounter", err)
	}
	v0, err := tp.CreateCounter()
	if err != nil {
		t.Fatal(err)
	}
	if v, err := tp.CreateCounter(); err != nil || v != v0 {
		t.Fatalf("second CreateCounter = %d, %v; want %d (no redefinition)", v, err, v0)
	}
	for i := range uint64(3) {
		if err := tp.IncrementCounter(); err != nil {
			t.Fatal(err)
		}
		if v, err := tp.ReadCounter(); err != nil || v != v0+i+1 {
			t.Fatalf("after %d increments: %d, %v", i+1, v, err)
		}
	}
	s.Restart()
	tp = openTPM(t, s, Config{})
	if v, err := tp.ReadCounter(); err != nil || v != v0+3 {
		t.Fatalf("after restart: %d, %v; want %d", v, err, v0+3)
	}
	if v, err := tp.CreateCounter(); err != nil || v != v0+3 {
		t.Fatalf("CreateCounter after restart = %d, %v; want %d", v, err, v0+3)
	}
}

func TestCounterOwnerAuth(t *testing.T) {
	s := swtpmtest.StartSwtpm(t, "")
	bad, _ := ParseAuth("text:wrong")
	tp := openTPM(t, s, Config{OwnerAuth: bad})
	if _, err := tp.CreateCounter(); err == nil || !strings.Contains(err.Error(), "owner_auth") {
		t.Fatalf("CreateCounter with a wrong owner_auth = %v", err)
	}
}

func TestRandomAndPCRRead(t *testing.T) {
	s := swtpmtest.StartSwtpm(t, "")
	tp := openTPM(t, s, Config{})
	for _, n := range []int{0, 1, 64, 65, 300} {
		r, err := tp.GetRandom(n)
		if err != nil || len(r) != n {
			t.Fatalf("GetRandom(%d) = %d bytes, %v", n, len(r), err)
		}
	}
	d, err := tp.PCRRead(0)
	if err != nil || d != [20]byte{} {
		t.Fatalf("PCRRead(0) = %x, %v; want zeros on a fresh swtpm", d, err)
	}
	if _, err := tp.PCRRead(24); err == nil {
		t.Fatal("PCRRead(24) succeeded")
	}
	vals, err := tp.PCRValues([]uint{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23})
	if err != nil || len(vals) != 24 {
		t.Fatalf("PCRValues(all) = %d, %v", len(vals), err)
	}
}

func TestParseAuth(t *testing.T) {
	text := sha1.Sum([]byte("hello"))
	for _, tc := range []struct {
		in      string
		tpm2    []byte
		tpm12   [20]byte
		wantErr bool
	}{
		{in: "", tpm2: nil},
		{in: "well-known", tpm2: nil},
		{in: "hash:000102030405060708090a0b0c0d0e0f10111213", tpm2: []byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19},
			tpm12: [20]byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19}},
		{in: "HASH:00", wantErr: true},
		{in: "hash:0001", wantErr: true},
		{in: "hash:zz0102030405060708090a0b0c0d0e0f10111213", wantErr: true},
		{in: "text:hello", tpm2: text[:], tpm12: text},
		{in: "text:", tpm2: func() []byte { h := sha1.Sum(nil); return h[:] }(), tpm12: sha1.Sum(nil)},
		{in: "wellknown", wantErr: true},
		{in: "secret", wantErr: true},
	} {
		a, err := ParseAuth(tc.in)
		if (err != nil) != tc.wantErr {
			t.Errorf("ParseAuth(%q) error = %v, want error %v", tc.in, err, tc.wantErr)
			continue
		}
		if err != nil {
			continue
		}
		if !bytes.Equal(a.TPM2(), tc.tpm2) || a.TPM12() != tc.tpm12 {
			t.Errorf("ParseAuth(%q) = TPM2 %x TPM12 %x", tc.in, a.TPM2(), a.TPM12())
		}
		if s := a.String(); strings.Contains(s, "hello") {
			t.Errorf("String leaks the secret: %q", s)
		}
	}
}

func TestParsePCRs(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want string
		err  bool
	}{
		{"none", "none", false},
		{"", "0,2,4,7", false},
		{"default", "0,2,4,7", false},
		{"7,0,2,2", "0,2,7", false},
		{"0-3,7", "0,1,2,3,7", false},
		{"23", "23", false},
		{"24", "", true},
		{"3-1", "", true},
		{"a", "", true},
		{"1,,2", "", true},
		{"-1", "", true},
	} {
		got, err := ParsePCRs(tc.in)
		if (err != nil) != tc.err {
			t.Errorf("ParsePCRs(%q) error %v", tc.in, err)
			continue
		}
		if err == nil && FormatPCRs(got) != tc.want {
			t.Errorf("ParsePCRs(%q) = %s, want %s", tc.in, FormatPCRs(got), tc.want)
		}
	}
}

// blob12 is a well-formed TPM 1.2 blob (its stored data only framed).
var blob12 = &SealedBlob{Family: Family12, PCRs: []uint{0, 7}, PCRValues: [][]byte{make([]byte, 20), make([]byte, 20)},
	Locality: 2, StoredData: []byte{0, 0x16, 0, 0, 0, 0, 0, 2, 9, 9, 0, 0, 0, 1, 7}}

// blob20 is a well-formed current TPM 2.0 blob (its areas only framed).
var blob20 = &SealedBlob{PCRs: []uint{0, 7}, PCRValues: [][]byte{make([]byte, 32), make([]byte, 32)}, Locality: 2,
	PrimaryName: append([]byte{0, 0x0b}, make([]byte, 32)...), EpochIndex: DefaultEpochIndex, EpochBound: 7,
	Public: []byte{0, 2, 0, 8}, Private: []byte{0, 1, 9}}

func TestBadBlobs(t *testing.T) {
	good := (&SealedBlob{PCRs: []uint{1}, PCRValues: [][]byte{make([]byte, 32)}, Public: []byte{0, 2, 0, 8}, Private: []byte{0, 1, 9}}).Marshal()
	for _, good := range [][]byte{good, blob12.Marshal(), blob20.Marshal()} {
		for i := range len(good) {
			if _, err := UnmarshalSealedBlob(good[:i]); !errors.Is(err, ErrBadBlob) {
				t.Errorf("truncated to %d: %v", i, err)
			}
		}
		if _, err := UnmarshalSealedBlob(append(append([]byte{}, good...), 0)); !errors.Is(err, ErrBadBlob) {
			t.Errorf("trailing byte: %v", err)
		}
	}
	loc5 := *blob12
	loc5.Locality = 5
	if _, err := UnmarshalSealedBlob(loc5.Marshal()); !errors.Is(err, ErrBadBlob) {
		t.Errorf("locality 5: %v", err)
	}
	if b, err := UnmarshalSealedBlob(blob12.Marshal()); err != nil || b.Family != Family12 || b.Locality != 2 || !bytes.Equal(b.StoredData, blob12.StoredData) {
		t.Errorf("TPM 1.2 blob round trip: %+v, %v", b, err)
	}
	if b, err := UnmarshalSealedBlob(blob20.Marshal()); err != nil || b.Legacy() || b.Locality != 2 || b.EpochIndex != DefaultEpochIndex || b.EpochBound != 7 || !bytes.Equal(b.PrimaryName, blob20.PrimaryName) {
		t.Errorf("TPM 2.0 blob round trip: %+v, %v", b, err)
	}
	mods := map[string]func(b *SealedBlob){
		"locality 5":   func(b *SealedBlob) { b.Locality = 5 },
		"epoch not NV": func(b *SealedBlob) { b.EpochIndex = 0x81000001 },
	}
	for name, mod := range mods {
		b := *blob20
		mod(&b)
		if _, err := UnmarshalSealedBlob(b.Marshal()); !errors.Is(err, ErrBadBlob) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func FuzzUnmarshalSealedBlob(f *testing.F) {
	f.Add((&SealedBlob{PCRs: []uint{0, 7}, PCRValues: [][]byte{make([]byte, 32), make([]byte, 32)}, Public: []byte{0, 2, 0, 8}, Private: []byte{0, 1, 9}}).Marshal())
	f.Add(blob12.Marshal())
	f.Add(blob20.Marshal())
	for _, k := range fixedSAAKeys() {
		f.Add(blobSAA(k).Marshal())
	}
	f.Add([]byte("XVSK"))
	f.Fuzz(func(t *testing.T, p []byte) {
		b, err := UnmarshalSealedBlob(p)
		if err != nil {
			if !errors.Is(err, ErrBadBlob) {
				t.Fatalf("error not ErrBadBlob: %v", err)
			}
			return
		}
		if !bytes.Equal(b.Marshal(), p) {
			t.Fatalf("re-encoding differs")
		}
	})
}

// rateLimited answers the first n TPM2_NV_Increment commands with
// TPM_RC_NV_RATE, as a TPM limiting NV wear does, and passes everything
// else to the real TPM.
type rateLimited struct {
	tr interface{ Send([]byte) ([]byte, error) }
	n  int
}

func (r *rateLimited) Send(cmd []byte) ([]byte, error) {
	if len(cmd) >= 10 && binary.BigEndian.Uint32(cmd[6:]) == uint32(tpm2.TPMCCNVIncrement) && r.n > 0 {
		r.n--
		return []byte{0x80, 0x01, 0, 0, 0, 10, 0, 0, 0x09, 0x20}, nil
	}
	return r.tr.Send(cmd)
}

func TestIncrementRateLimited(t *testing.T) {
	s := swtpmtest.StartSwtpm(t, "")
	rl := &rateLimited{tr: s.TPM()}
	tp := openTPM(t, s, Config{})
	tp.tr = rl
	var slept time.Duration
	tp.sleep = func(d time.Duration) { slept += d }
	v0, err := tp.CreateCounter()
	if err != nil {
		t.Fatal(err)
	}
	rl.n = 3
	if err := tp.IncrementCounter(); err != nil {
		t.Fatalf("increment through 3 × TPM_RC_NV_RATE: %v", err)
	}
	if v, _ := tp.ReadCounter(); v != v0+1 {
		t.Fatalf("counter %d, want %d", v, v0+1)
	}
	if slept != 70*time.Millisecond {
		t.Errorf("backed off %v, want 10+20+40 ms", slept)
	}
	// A TPM that never relents: an error after the budget, not a hang.
	rl.n, slept = 1<<30, 0
	if err := tp.IncrementCounter(); !errors.Is(err, tpm2.TPMRCNVRate) {
		t.Fatalf("increment against a permanently rate-limited TPM = %v", err)
	}
	if slept < retryBudget {
		t.Errorf("gave up after %v of back-off, budget %v", slept, retryBudget)
	}
}

// FuzzTPM20Responses is FuzzTPM12Responses for the TPM 2.0 layer: after
// the family probe, arbitrary responses to go-tpm's commands must give
// errors, never a panic (a nested manager's "hardware" TPM is another
// domain).
func FuzzTPM20Responses(f *testing.F) {
	ok := []byte{0x80, 0x01, 0, 0, 0, 10, 0, 0, 0, 0}
	f.Add(ok, ok)
	f.Add([]byte{0x80, 0x01, 0, 0, 0, 12, 0, 0, 0, 0, 0, 0}, []byte{0x80, 0x02, 0, 0, 0, 10, 0, 0, 0x09, 0x22})
	f.Fuzz(func(t *testing.T, a, b []byte) {
		tr := &scripted{rsps: [][]byte{ok}}
		tp, err := Open(tr, Config{})
		if err != nil {
			t.Fatalf("Open on the scripted start: %v", err)
		}
		tp.sleep = func(time.Duration) {} // "retry later" answers cost no time
		tr.rsps = append(tr.rsps, a, b)
		exercise(tp)
		exerciseApproved(tp)
	})
}

// IsBusy tells "ask again later" from a refusal in both families.
func TestIsBusy(t *testing.T) {
	for _, c := range []struct {
		err  error
		busy bool
	}{
		{nil, false},
		{errors.New("TPM did not answer"), false},
		{fmt.Errorf("hwtpm: TPM2_NV_Increment(0x0100c1c0): %w", tpm2.TPMRCNVRate), true},
		{fmt.Errorf("x: %w", tpm2.TPMRCRetry), true},
		{fmt.Errorf("x: %w", tpm2.TPMRCYielded), true},
		{fmt.Errorf("x: %w", tpm2.TPMRCAuthFail), false},
		{fmt.Errorf("x: %w", tpm2.TPMRCNVLocked), false},
		{rc12Error{cmd: "TPM_IncrementCounter", rc: rc12Retry}, true},
		{rc12Error{cmd: "TPM_IncrementCounter", rc: rc12DoingSelftest}, true},
		{fmt.Errorf("w: %w", rc12Error{cmd: "TPM_IncrementCounter", rc: rc12DefendLockRunning}), true},
		{rc12Error{cmd: "TPM_IncrementCounter", rc: rc12BadCounter}, false},
		{rc12Error{cmd: "TPM_IncrementCounter", rc: rc12AuthFail}, false},
	} {
		if got := IsBusy(c.err); got != c.busy {
			t.Errorf("IsBusy(%v) = %v, want %v", c.err, got, c.busy)
		}
	}
}
