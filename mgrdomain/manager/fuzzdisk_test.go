package manager

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/google/go-tpm/tpm2"

	"github.com/xenvtpm/xenvtpm/mgrdomain/hwtpm"
)

// sealHW is a hardware TPM for disk fuzzing: sealing keeps the key in the
// blob's private area (so a disk written with it opens again without a
// TPM), the counter is a number. What it protects is not the point here;
// what the manager makes of a hostile disk is.
type sealHW struct {
	counter    uint64
	hasCounter bool
}

// sealHWPublic is the public area of every object sealHW seals.
var sealHWPublic = tpm2.Marshal(tpm2.New2B(tpm2.TPMTPublic{Type: tpm2.TPMAlgKeyedHash, NameAlg: tpm2.TPMAlgSHA256,
	ObjectAttributes: tpm2.TPMAObject{FixedTPM: true, FixedParent: true},
	Parameters:       tpm2.NewTPMUPublicParms(tpm2.TPMAlgKeyedHash, &tpm2.TPMSKeyedHashParms{Scheme: tpm2.TPMTKeyedHashScheme{Scheme: tpm2.TPMAlgNull}})}))

func (h *sealHW) Seal(key []byte, pcrs []uint) (*hwtpm.SealedBlob, error) {
	b := &hwtpm.SealedBlob{PCRs: slices.Clone(pcrs), Public: sealHWPublic,
		Private:     tpm2.Marshal(&tpm2.TPM2BPrivate{Buffer: bytes.Clone(key)}),
		PrimaryName: []byte("sealHW"), EpochIndex: hwtpm.DefaultEpochIndex}
	for range pcrs {
		b.PCRValues = append(b.PCRValues, make([]byte, 32))
	}
	return b, nil
}

func (h *sealHW) Reseal(key []byte, pcrs []uint) (*hwtpm.SealedBlob, error) { return h.Seal(key, pcrs) }

func (h *sealHW) Retire(*hwtpm.SealedBlob) error { return nil }

func (h *sealHW) Unseal(b *hwtpm.SealedBlob) ([]byte, error) {
	priv, err := tpm2.Unmarshal[tpm2.TPM2BPrivate](b.Private)
	if !bytes.Equal(b.Public, sealHWPublic) || err != nil || len(priv.Buffer) != 32 {
		return nil, errors.New("sealHW: not a blob this TPM sealed")
	}
	return bytes.Clone(priv.Buffer), nil
}

func (h *sealHW) ReadCounter() (uint64, error) {
	if !h.hasCounter {
		return 0, hwtpm.ErrNoCounter
	}
	return h.counter, nil
}

func (h *sealHW) CreateCounter() (uint64, error) {
	h.hasCounter = true
	return h.counter, nil
}

func (h *sealHW) IncrementCounter() error {
	if !h.hasCounter {
		return hwtpm.ErrNoCounter
	}
	h.counter++
	return nil
}

func (h *sealHW) CounterIndex() uint32 { return hwtpm.DefaultCounterIndex }

func (h *sealHW) GetRandom(n int) ([]byte, error) { return make([]byte, n), nil }

func (h *sealHW) PCRRead(uint32) ([20]byte, error) { return [20]byte{}, nil }

// fuzzDiskBytes is the disk of the fuzzer: the header region and a store
// with room for a few records.
const fuzzDiskBytes = headerBytes + 24*4096

// FuzzOpenDisk opens the manager on a disk an attacker wrote, header and
// store together: a blank disk, a formatted one with records, or garbage,
// with two patches anywhere, against a hardware counter that may be
// behind, ahead or missing, and with every start-up option. Open either
// refuses with one of its errors and leaves the disk untouched, or serves
// only records that were saved, takes a new one and opens again.
func FuzzOpenDisk(f *testing.F) {
	hw := &sealHW{hasCounter: true}
	d := newMemDisk(512, fuzzDiskBytes)
	m, err := Open(d, hw, Config{})
	if err != nil {
		f.Fatal(err)
	}
	for i := range 3 {
		if err := m.SaveHashKey(uuidN(i), blobN(i, 1)); err != nil {
			f.Fatal(err)
		}
	}
	m.Close()
	formatted, formattedCounter := d.image(), hw.counter
	garbage := bytes.Repeat([]byte("not a manager disk "), fuzzDiskBytes/19+1)[:fuzzDiskBytes]
	bases := [][]byte{make([]byte, fuzzDiskBytes), formatted, garbage}

	f.Add([]byte{}, uint32(0), []byte{}, uint32(0), int8(0), uint8(1))
	f.Add([]byte{0xFF}, uint32(100), []byte{1}, uint32(headerBytes+10), int8(0), uint8(1))
	f.Add([]byte("XVTPMMH1"), uint32(slotSize), []byte{}, uint32(0), int8(-1), uint8(1|8))
	f.Add([]byte{0}, uint32(headerBytes), []byte{}, uint32(0), int8(2), uint8(1|16))
	f.Add([]byte{}, uint32(0), []byte{}, uint32(0), int8(0), uint8(2|4))
	f.Add([]byte{}, uint32(0), []byte{}, uint32(0), int8(0), uint8(1|32))
	f.Fuzz(func(t *testing.T, p1 []byte, off1 uint32, p2 []byte, off2 uint32, counterDelta int8, mode uint8) {
		base := bases[int(mode%4)%len(bases)]
		img := bytes.Clone(base)
		copy(img[int(off1%fuzzDiskBytes):], p1)
		copy(img[int(off2%fuzzDiskBytes):], p2)
		hw := &sealHW{hasCounter: mode&64 == 0, counter: uint64(int64(formattedCounter) + int64(counterDelta))}
		if int64(formattedCounter)+int64(counterDelta) < 0 {
			hw.counter = 0
		}
		cfg := Config{Reformat: mode&8 != 0, AllowRollback: mode&16 != 0}
		if mode&32 != 0 {
			cfg.SealPCRs = []uint{} // another selection: a reseal at start-up
		}
		d := newMemDisk(512, fuzzDiskBytes)
		d.restore(img)
		m, err := Open(d, hw, cfg)
		if err != nil {
			known := false
			for _, e := range []error{ErrGarbageDisk, ErrBadDisk, ErrUnseal, ErrRollback, ErrCounterMissing} {
				known = known || errors.Is(err, e)
			}
			if !known {
				t.Fatalf("unclassified error: %v", err)
			}
			if !bytes.Equal(d.image(), img) {
				t.Fatalf("refused the disk (%v) but wrote to it", err)
			}
			return
		}
		if c, _ := hw.ReadCounter(); m.st.Counter() != c {
			t.Fatalf("opened with store counter %d, hardware %d", m.st.Counter(), c)
		}
		for i := range 3 {
			if got, err := m.LoadHashKey(uuidN(i)); err == nil && !bytes.Equal(got, blobN(i, 1)) {
				t.Fatalf("record %d reads %x, which was never saved", i, got)
			}
		}
		if err := m.SaveHashKey(uuidN(9), blobN(9, 2)); err != nil {
			t.Fatalf("an opened disk refuses a save: %v", err)
		}
		m.Close()
		m, err = Open(d, hw, Config{SealPCRs: cfg.SealPCRs})
		if err != nil {
			t.Fatalf("reopening after a save: %v", err)
		}
		defer m.Close()
		if got, err := m.LoadHashKey(uuidN(9)); err != nil || !bytes.Equal(got, blobN(9, 2)) {
			t.Fatal(fmt.Errorf("the save is gone after reopening: %x, %w", got, err))
		}
	})
}
