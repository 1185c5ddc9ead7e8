package stateblob

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"testing"
)

var magic = [8]byte{'T', 'E', 'S', 'T', 'B', 'L', 'O', 'B'}

func TestSealLayout(t *testing.T) {
	payload := []byte(`{"a":1}`)
	want := append(magic[:], 0, 0, 0, 3, 0, 0, 0, byte(len(payload)))
	want = append(want, payload...)
	sum := sha256.Sum256(want)
	want = append(want, sum[:]...)
	if got := Seal(magic, 3, payload); !bytes.Equal(got, want) {
		t.Fatalf("Seal:\n got %x\nwant %x", got, want)
	}
}

func TestOpen(t *testing.T) {
	payload := []byte("payload")
	blob := Seal(magic, 1, payload)
	if got, err := Open(magic, 1, 1<<20, blob); err != nil || !bytes.Equal(got, payload) {
		t.Fatalf("Open: %q, %v", got, err)
	}
	flip := func(i int) []byte {
		b := bytes.Clone(blob)
		b[i] ^= 1
		return b
	}
	longer := bytes.Clone(blob)
	binary.BigEndian.PutUint32(longer[12:], uint32(len(payload)+1))
	for name, tc := range map[string]struct {
		blob []byte
		max  int
	}{
		"other magic":   {flip(0), 1 << 20},
		"other version": {flip(11), 1 << 20},
		"wrong length":  {longer, 1 << 20},
		"payload bit":   {flip(16), 1 << 20},
		"checksum bit":  {flip(len(blob) - 1), 1 << 20},
		"truncated":     {blob[:len(blob)-1], 1 << 20},
		"too short":     {blob[:20], 1 << 20},
		"over max":      {blob, len(blob) - 1},
	} {
		if _, err := Open(magic, 1, tc.max, tc.blob); err == nil {
			t.Errorf("%s: accepted", name)
		} else if (name == "other magic") != errors.Is(err, ErrMagic) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func FuzzOpen(f *testing.F) {
	f.Add(Seal(magic, 1, []byte("x")))
	f.Add([]byte("short"))
	f.Fuzz(func(t *testing.T, blob []byte) {
		payload, err := Open(magic, 1, 1<<16, blob)
		if err == nil && !bytes.Equal(Seal(magic, 1, payload), blob) {
			t.Fatalf("accepted a blob Seal would not make: %x", blob)
		}
	})
}
