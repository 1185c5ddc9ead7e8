package hwtpm

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-tpm/tpm"
	"github.com/xenvtpm/xenvtpm/mgrdomain/internal/swtpmtest"
)

// The TPM 1.2 peer: swtpm set up by swtpm_setup with these passwords,
// which owner_auth=/srk_auth= name in their text: form.
const ownerPass, srkPass = "owner-pw", "srk-pw"

func auth12(t testing.TB) (Auth, Auth) {
	t.Helper()
	o, err := ParseAuth("text:" + ownerPass)
	if err != nil {
		t.Fatal(err)
	}
	s, err := ParseAuth("text:" + srkPass)
	if err != nil {
		t.Fatal(err)
	}
	return o, s
}

func open12(t testing.TB, s *swtpmtest.Swtpm, loc uint8) *TPM12 {
	t.Helper()
	o, k := auth12(t)
	tp, err := Open12(s.TPM(), Config{OwnerAuth: o, SRKAuth: k, Locality: loc})
	if err != nil {
		t.Fatalf("Open12: %v", err)
	}
	return tp
}

func extend12(t testing.TB, s *swtpmtest.Swtpm, pcr uint32) {
	t.Helper()
	var d [20]byte
	d[0] = 1
	if _, err := tpm.PcrExtend(&sendRW{tr: s.TPM()}, pcr, d); err != nil {
		t.Fatalf("TPM_Extend(%d): %v", pcr, err)
	}
}

func TestTPM12DetectAndOpen(t *testing.T) {
	s := swtpmtest.StartSwtpm12(t, ownerPass, srkPass)
	if f, err := Detect(s.TPM()); err != nil || f != Family12 {
		t.Fatalf("Detect = %v, %v; want TPM 1.2", f, err)
	}
	if _, err := Open(s.TPM(), Config{}); !errors.Is(err, ErrTPM12) {
		t.Fatalf("Open(TPM 1.2) = %v, want ErrTPM12", err)
	}
	open12(t, s, 0)
	if _, err := Open12(s.TPM(), Config{Locality: 5}); err == nil {
		t.Fatal("Open12 accepted locality 5")
	}
	s20 := swtpmtest.StartSwtpm(t, "")
	if _, err := Open12(s20.TPM(), Config{}); err == nil || !strings.Contains(err.Error(), "TPM 2.0") {
		t.Fatalf("Open12(TPM 2.0) = %v", err)
	}
}

func TestTPM12Unowned(t *testing.T) {
	s := swtpmtest.StartSwtpm12(t, "", "")
	_, err := Open12(s.TPM(), Config{})
	if !errors.Is(err, ErrNotReady) || !strings.Contains(err.Error(), "no owner") {
		t.Fatalf("Open12(unowned) = %v, want ErrNotReady naming the missing owner", err)
	}
}

func TestTPM12SealUnseal(t *testing.T) {
	s := swtpmtest.StartSwtpm12(t, ownerPass, srkPass)
	tp := open12(t, s, 0)
	roundTrips(t, tp, func(dec *SealedBlob, pcrs []uint) {
		if dec.Family != Family12 || dec.Locality != 0 || len(dec.PCRValues) != len(pcrs) {
			t.Fatalf("decoded blob: family %v locality %d, %d PCR values", dec.Family, dec.Locality, len(dec.PCRValues))
		}
	})
	if _, err := tp.Seal(nil, nil); err == nil {
		t.Fatal("sealed an empty key")
	}
	if _, err := tp.Seal([]byte("k"), []uint{24}); err == nil {
		t.Fatal("sealed to PCR 24")
	}
}

func TestTPM12PCRChangeRefused(t *testing.T) {
	s := swtpmtest.StartSwtpm12(t, ownerPass, srkPass)
	tp := open12(t, s, 0)
	blob, err := tp.Seal([]byte("0123456789abcdef0123456789abcdef"), []uint{0, 7, 16})
	if err != nil {
		t.Fatal(err)
	}
	extend12(t, s, 16)
	for range 3 { // refusals leak no sessions: the same answer each time
		_, err = tp.Unseal(blob)
		if !errors.Is(err, ErrPCRPolicy) || !strings.Contains(err.Error(), "changed since sealing: 16") {
			t.Fatalf("Unseal after extending PCR 16 = %v, want ErrPCRPolicy naming PCR 16", err)
		}
	}
	// A PCR outside the selection does not matter.
	b2, err := tp.Seal([]byte("k"), []uint{0, 7})
	if err != nil {
		t.Fatal(err)
	}
	extend12(t, s, 16)
	if _, err := tp.Unseal(b2); err != nil {
		t.Fatalf("Unseal with only an unselected PCR changed: %v", err)
	}
}

func TestTPM12Locality(t *testing.T) {
	s := swtpmtest.StartSwtpm12(t, ownerPass, srkPass)
	s.SetLocality(2)
	tp := open12(t, s, 2)
	key := []byte("released at locality 2 only")
	blob, err := tp.Seal(key, DefaultSealPCRs)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := tp.Unseal(blob); err != nil || !bytes.Equal(got, key) {
		t.Fatalf("Unseal at locality 2 = %q, %v", got, err)
	}
	s.SetLocality(0)
	_, err = open12(t, s, 0).Unseal(blob)
	if !errors.Is(err, ErrLocality) || !strings.Contains(err.Error(), "locality 2") {
		t.Fatalf("Unseal at locality 0 = %v, want ErrLocality", err)
	}
}

func TestTPM12Auth(t *testing.T) {
	s := swtpmtest.StartSwtpm12(t, ownerPass, srkPass)
	tp := open12(t, s, 0)
	blob, err := tp.Seal([]byte("key"), nil)
	if err != nil {
		t.Fatal(err)
	}
	o, _ := auth12(t)
	wrong, err := Open12(s.TPM(), Config{OwnerAuth: o, SRKAuth: WellKnown})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := wrong.Unseal(blob); !errors.Is(err, ErrWrongParent) {
		t.Fatalf("Unseal with the wrong srk_auth = %v, want ErrWrongParent", err)
	}
	if _, err := wrong.Seal([]byte("key"), nil); err == nil || !strings.Contains(err.Error(), "srk_auth refused") {
		t.Fatalf("Seal with the wrong srk_auth = %v", err)
	}
	// A tampered blob.
	bad := *blob
	bad.StoredData = bytes.Clone(blob.StoredData)
	bad.StoredData[len(bad.StoredData)-5] ^= 0x40
	if _, err := tp.Unseal(&bad); !errors.Is(err, ErrWrongParent) {
		t.Fatalf("Unseal of a tampered blob = %v, want ErrWrongParent", err)
	}
	// A blob of the other family.
	s20 := swtpmtest.StartSwtpm(t, "")
	b20, err := openTPM(t, s20, Config{}).Seal([]byte("key"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tp.Unseal(b20); !errors.Is(err, ErrWrongParent) {
		t.Fatalf("TPM 1.2 unsealing a TPM 2.0 blob = %v", err)
	}
	if _, err := openTPM(t, s20, Config{}).Unseal(blob); !errors.Is(err, ErrWrongParent) {
		t.Fatalf("TPM 2.0 unsealing a TPM 1.2 blob = %v", err)
	}
}

func TestTPM12Counter(t *testing.T) {
	s := swtpmtest.StartSwtpm12(t, ownerPass, srkPass)
	tp := open12(t, s, 0)
	if _, err := tp.ReadCounter(); !errors.Is(err, ErrNoCounter) {
		t.Fatalf("ReadCounter before creation = %v, want ErrNoCounter", err)
	}
	_, k := auth12(t)
	wrongOwner, err := Open12(s.TPM(), Config{OwnerAuth: WellKnown, SRKAuth: k})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := wrongOwner.CreateCounter(); err == nil || !strings.Contains(err.Error(), "owner_auth refused") {
		t.Fatalf("CreateCounter with the wrong owner_auth = %v", err)
	}
	v0, err := tp.CreateCounter()
	if err != nil {
		t.Fatalf("CreateCounter: %v", err)
	}
	id := tp.CounterIndex()
	for i := range uint64(3) {
		if err := tp.IncrementCounter(); err != nil {
			t.Fatalf("IncrementCounter: %v", err)
		}
		if v, err := tp.ReadCounter(); err != nil || v != v0+i+1 {
			t.Fatalf("ReadCounter = %d, %v; want %d", v, err, v0+i+1)
		}
	}
	// Creating again finds the same counter.
	if v, err := tp.CreateCounter(); err != nil || v != v0+3 || tp.CounterIndex() != id {
		t.Fatalf("second CreateCounter = %d, %v (id %#x, was %#x)", v, err, tp.CounterIndex(), id)
	}
	// After a host reboot a fresh TPM12 finds it by its label.
	s.Restart()
	tp2 := open12(t, s, 0)
	if v, err := tp2.ReadCounter(); err != nil || v != v0+3 || tp2.CounterIndex() != id {
		t.Fatalf("after restart: ReadCounter = %d, %v, id %#x; want %d, %#x", v, err, tp2.CounterIndex(), v0+3, id)
	}
	if err := tp2.IncrementCounter(); err != nil {
		t.Fatalf("IncrementCounter after restart: %v", err)
	}
	t.Logf("TPM 1.2 counter %#x: %d → %d", id, v0, v0+4)
}

func TestTPM12RandomAndPCR(t *testing.T) {
	s := swtpmtest.StartSwtpm12(t, ownerPass, srkPass)
	tp := open12(t, s, 0)
	r, err := tp.GetRandom(300)
	if err != nil || len(r) != 300 || bytes.Equal(r[:32], make([]byte, 32)) {
		t.Fatalf("GetRandom(300) = %d bytes, %v", len(r), err)
	}
	before, err := tp.PCRRead(16)
	if err != nil {
		t.Fatal(err)
	}
	extend12(t, s, 16)
	after, err := tp.PCRRead(16)
	if err != nil || after == before {
		t.Fatalf("PCR 16 after extend = %x, %v (before %x)", after, err, before)
	}
	if _, err := tp.PCRRead(24); err == nil {
		t.Fatal("PCRRead(24) accepted")
	}
}

func TestStoredDataFrame(t *testing.T) {
	good := []byte{0, 0x16, 0, 0, 0, 0, 0, 2, 9, 9, 0, 0, 0, 1, 7}
	if err := checkStoredData(good); err != nil {
		t.Fatalf("good frame: %v", err)
	}
	for name, p := range map[string][]byte{
		"short":    good[:8],
		"tag":      append([]byte{0, 0x17}, good[2:]...),
		"overrun":  {0, 0x16, 0, 0, 0, 0, 0, 9, 9, 9, 0, 0, 0, 1, 7},
		"trailing": append(bytes.Clone(good), 0),
		"no enc":   good[:10],
	} {
		if err := checkStoredData(p); !errors.Is(err, ErrBadBlob) {
			t.Errorf("%s: %v, want ErrBadBlob", name, err)
		}
	}
}

// answer is a TPM that answers every command with the given bytes.
type answer []byte

func (a answer) Send([]byte) ([]byte, error) { return a, nil }

func TestStartup(t *testing.T) {
	for _, c := range []struct {
		name string
		tr   interface{ Send([]byte) ([]byte, error) }
		f    Family
	}{
		{"TPM 2.0", swtpmtest.StartSwtpm(t, "").TPM(), Family20},
		{"TPM 1.2", swtpmtest.StartSwtpm12(t, ownerPass, srkPass).TPM(), Family12},
	} {
		if sent, err := Startup(c.tr, c.f); sent || err != nil {
			t.Errorf("%s, already started: Startup = %v, %v; want not sent, no error", c.name, sent, err)
		}
	}
	if sent, err := Startup(answer{0x00, 0xC4, 0, 0, 0, 10, 0, 0, 0, 0}, Family12); !sent || err != nil {
		t.Errorf("unstarted TPM 1.2: Startup = %v, %v; want sent", sent, err)
	}
	for _, rsp := range []answer{{0x80, 0x01, 0, 0, 0, 10, 0, 0, 0x01, 0x01}, {0x80, 0x01, 0}} {
		if _, err := Startup(rsp, Family20); err == nil {
			t.Errorf("Startup answered % x: no error", []byte(rsp))
		}
	}
}

// scripted answers each command with the next of its responses (the last
// one again when they run out): a TPM 1.2 that says anything.
type scripted struct {
	rsps [][]byte
	i    int
}

func (s *scripted) Send([]byte) ([]byte, error) {
	r := s.rsps[min(s.i, len(s.rsps)-1)]
	s.i++
	return r, nil
}

// FuzzTPM12Responses feeds the TPM 1.2 layer arbitrary responses after a
// well-formed start: every method must return (an error or a value),
// never panic or hang.
func FuzzTPM12Responses(f *testing.F) {
	ok := []byte{0, 0xC4, 0, 0, 0, 10, 0, 0, 0, 0}
	f.Add(ok, ok)
	f.Add([]byte{0, 0xC4, 0, 0, 0, 14, 0, 0, 0, 0, 0, 1, 0, 0}, []byte{0, 0xC5, 0, 0, 0, 10, 0, 0, 0, 1})
	f.Add([]byte{0, 0xC4, 0, 0, 0, 20, 0, 0, 0, 0, 0, 0, 0, 0x0a, 0, 0xE, 'X', 'V', 'T', 'M'}, ok)
	f.Fuzz(func(t *testing.T, a, b []byte) {
		// Detect's probe answer, the permanent flags (all clear) and
		// TPM_CAP_PROP_OWNER (owned) let Open12 succeed; then a and b.
		flags := append([]byte{0, 0xC4, 0, 0, 0, 0x24, 0, 0, 0, 0, 0, 0, 0, 22, 0, 0x1F}, make([]byte, 20)...)
		owned := []byte{0, 0xC4, 0, 0, 0, 15, 0, 0, 0, 0, 0, 0, 0, 1, 1}
		tr := &scripted{rsps: [][]byte{{0, 0xC4, 0, 0, 0, 10, 0, 0, 0, 0x1E}, flags, owned}}
		tp, err := Open12(tr, Config{})
		if err != nil {
			t.Fatalf("Open12 on the scripted start: %v", err)
		}
		tr.rsps = append(tr.rsps, a, b)
		exercise(tp)
		tp.SealComposite([]byte("k"), []uint{0}, [20]byte{})
	})
}
