package hwtpm

import (
	"bytes"
	"crypto/sha1"
	"encoding/binary"
	"errors"
	"strings"
	"testing"

	"github.com/xenvtpm/xenvtpm/mgrdomain/internal/swtpmtest"
	"github.com/xenvtpm/xenvtpm/mgrdomain/saa"
)

// storedData12 frames a TPM_STORED_DATA12 around sealInfo.
func storedData12(sealInfo []byte) []byte {
	b := binary.BigEndian.AppendUint16(nil, tag12StoredData12)
	b = append(b, 0, 0)
	b = binary.BigEndian.AppendUint32(b, uint32(len(sealInfo)))
	b = append(b, sealInfo...)
	b = binary.BigEndian.AppendUint32(b, 1)
	return append(b, 7)
}

func TestTPM12SealComposite(t *testing.T) {
	s := swtpmtest.StartSwtpm12(t, ownerPass, srkPass)
	tp := open12(t, s, 0)
	key := bytes.Repeat([]byte{0x77}, 32)
	pcrs := []uint{0, 7, 16}
	vals, err := tp.readPCRs(pcrs)
	if err != nil {
		t.Fatal(err)
	}
	now, err := saa.Composite12(pcrs, vals)
	if err != nil {
		t.Fatal(err)
	}
	// saa.Composite12 is what TPM_Seal itself records for the current
	// values.
	plain, err := tp.Seal(key, pcrs)
	if err != nil {
		t.Fatal(err)
	}
	info, err := parseSealInfo12(plain.StoredData)
	if err != nil {
		t.Fatal(err)
	}
	if info.DigestAtRelease != now || FormatPCRs(info.PCRs) != "0,7,16" || info.Locality != 1 {
		t.Fatalf("Seal recorded PCRs %s, locality %#x, digest %x; saa.Composite12 gives %x", FormatPCRs(info.PCRs), info.Locality, info.DigestAtRelease, now)
	}

	blob, err := tp.SealComposite(key, pcrs, now)
	if err != nil {
		t.Fatalf("SealComposite(current values): %v", err)
	}
	dec, err := UnmarshalSealedBlob(blob.Marshal())
	if err != nil {
		t.Fatal(err)
	}
	if dec.Family != Family12 || len(dec.PCRValues) != 0 || FormatPCRs(dec.PCRs) != "0,7,16" {
		t.Fatalf("decoded blob: %+v", dec)
	}
	if got, err := tp.Unseal(dec); err != nil || !bytes.Equal(got, key) {
		t.Fatalf("Unseal(sealed to the current composite) = %x, %v", got, err)
	}

	// Sealed to the values PCR 16 will have after the next extend.
	var d [20]byte
	d[0] = 1 // extend12's measurement
	next := sha1.Sum(append(bytes.Clone(vals[2]), d[:]...))
	future, err := saa.Composite12(pcrs, [][]byte{vals[0], vals[1], next[:]})
	if err != nil {
		t.Fatal(err)
	}
	ahead, err := tp.SealComposite(key, pcrs, future)
	if err != nil {
		t.Fatal(err)
	}
	for range 3 { // refusals leak no sessions
		_, err = tp.Unseal(ahead)
		if !errors.Is(err, ErrPCRPolicy) || !strings.Contains(err.Error(), "current values do not give") {
			t.Fatalf("Unseal(sealed to other values) = %v, want ErrPCRPolicy", err)
		}
	}
	t.Logf("refusal: %v", err)
	extend12(t, s, 16)
	if got, err := tp.Unseal(ahead); err != nil || !bytes.Equal(got, key) {
		t.Fatalf("Unseal once the PCRs hold the approved values = %x, %v", got, err)
	}
	if _, err := tp.Unseal(blob); !errors.Is(err, ErrPCRPolicy) {
		t.Fatalf("Unseal(sealed to the old values) after the extend = %v, want ErrPCRPolicy", err)
	}

	for name, c := range map[string]struct {
		key  []byte
		pcrs []uint
	}{"no PCRs": {key, nil}, "PCR 24": {key, []uint{24}}, "no key": {nil, pcrs}} {
		if _, err := tp.SealComposite(c.key, c.pcrs, now); err == nil {
			t.Errorf("SealComposite with %s accepted", name)
		}
	}
	o, _ := auth12(t)
	wrong, err := Open12(s.TPM(), Config{OwnerAuth: o, SRKAuth: WellKnown})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := wrong.SealComposite(key, pcrs, now); err == nil || !strings.Contains(err.Error(), "srk_auth refused") {
		t.Fatalf("SealComposite with the wrong srk_auth = %v", err)
	}
}

func TestTPM12SealCompositeLocality(t *testing.T) {
	s := swtpmtest.StartSwtpm12(t, ownerPass, srkPass)
	s.SetLocality(2)
	tp := open12(t, s, 2)
	vals, err := tp.readPCRs([]uint{0})
	if err != nil {
		t.Fatal(err)
	}
	c, _ := saa.Composite12([]uint{0}, vals)
	blob, err := tp.SealComposite([]byte("k"), []uint{0}, c)
	if err != nil {
		t.Fatal(err)
	}
	if info, err := parseSealInfo12(blob.StoredData); err != nil || info.Locality != 1<<2 {
		t.Fatalf("localityAtRelease %+v, %v", info, err)
	}
	if _, err := tp.Unseal(blob); err != nil {
		t.Fatalf("Unseal at locality 2: %v", err)
	}
	s.SetLocality(0)
	if _, err := open12(t, s, 0).Unseal(blob); !errors.Is(err, ErrLocality) {
		t.Fatalf("Unseal at locality 0 = %v, want ErrLocality", err)
	}
}

func TestParseSealInfo12(t *testing.T) {
	var dig [20]byte
	dig[3] = 9
	good := storedData12(pcrInfoLong([]uint{0, 7, 23}, 3, dig))
	info, err := parseSealInfo12(good)
	if err != nil || FormatPCRs(info.PCRs) != "0,7,23" || info.Locality != 8 || info.DigestAtRelease != dig {
		t.Fatalf("parseSealInfo12 = %+v, %v", info, err)
	}
	info12 := pcrInfoLong([]uint{1}, 0, dig)
	for name, p := range map[string][]byte{
		"frame":     good[:len(good)-1],
		"tag":       storedData12(append([]byte{0, 5}, info12[2:]...)),
		"short":     storedData12(info12[:len(info12)-1]),
		"long":      storedData12(append(bytes.Clone(info12), 0)),
		"selection": storedData12(append(append(bytes.Clone(info12[:4]), 0, 4), info12[6:]...)),
		"empty":     storedData12(nil),
	} {
		if _, err := parseSealInfo12(p); !errors.Is(err, ErrBadBlob) {
			t.Errorf("%s: %v, want ErrBadBlob", name, err)
		}
	}
}

func FuzzParseSealInfo12(f *testing.F) {
	f.Add(storedData12(pcrInfoLong([]uint{0, 7, 16}, 0, [20]byte{1})))
	f.Add(storedData12(pcrInfoLong([]uint{23}, 4, [20]byte{})))
	f.Add(blob12.StoredData)
	f.Fuzz(func(t *testing.T, p []byte) {
		info, err := parseSealInfo12(p)
		if err != nil {
			if !errors.Is(err, ErrBadBlob) {
				t.Fatalf("error not ErrBadBlob: %v", err)
			}
			return
		}
		for i, pcr := range info.PCRs {
			if pcr > MaxPCR || (i > 0 && pcr <= info.PCRs[i-1]) {
				t.Fatalf("PCRs %v", info.PCRs)
			}
		}
	})
}
