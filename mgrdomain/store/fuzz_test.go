package store

import (
	"bytes"
	"errors"
	"testing"
)

// FuzzSuperblock: any sector decodes to a superblock or a clear error.
func FuzzSuperblock(f *testing.F) {
	f.Add(make([]byte, 512))
	f.Fuzz(func(t *testing.T, b []byte) {
		sec := make([]byte, 512)
		copy(sec, b)
		id, err := peekSuperblock(sec)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrNotFormatted) {
				t.Fatalf("unclassified error %v", err)
			}
			return
		}
		k, err := deriveKeys(testKey, id)
		if err != nil {
			t.Fatal(err)
		}
		sb, err := decodeSuperblock(sec, k)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrAuth) {
				t.Fatalf("unclassified error %v", err)
			}
			return
		}
		// A superblock that verifies re-encodes to itself.
		out := make([]byte, 512)
		encodeSuperblock(out, sb, k)
		if !bytes.Equal(out[:sbLen], sec[:sbLen]) {
			t.Fatal("superblock does not round-trip")
		}
	})
}

// FuzzNode: any plaintext decodes to a valid node or a clear error, and
// a decoded node re-encodes to a page that decodes the same.
func FuzzNode(f *testing.F) {
	f.Add(make([]byte, 8), uint8(0))
	f.Add(make([]byte, 8), uint8(1))
	f.Fuzz(func(t *testing.T, b []byte, level uint8) {
		plain := make([]byte, plainLen)
		copy(plain, b)
		lv := int(level % 3)
		n, err := decodeNode(plain, lv, 1000)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("unclassified error %v", err)
			}
			return
		}
		again := make([]byte, plainLen)
		encodeNode(again, n)
		m, err := decodeNode(again, lv, 1000)
		if err != nil {
			t.Fatalf("re-encoded node does not decode: %v", err)
		}
		if len(m.ents) != len(n.ents) || len(m.kids) != len(n.kids) {
			t.Fatal("node does not round-trip")
		}
		for i := range n.ents {
			if m.ents[i] != n.ents[i] {
				t.Fatalf("leaf entry %d does not round-trip", i)
			}
		}
		for i := range n.kids {
			if m.keys[i] != n.keys[i] || m.kids[i].page != n.kids[i].page || m.kids[i].tag != n.kids[i].tag {
				t.Fatalf("branch entry %d does not round-trip", i)
			}
		}
	})
}

// FuzzOpen: any small disk image opens to a readable store or fails with
// one of the package's errors; nothing panics or hangs.
func FuzzOpen(f *testing.F) {
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, img []byte) {
		const pages = 8
		if len(img) > pages*PageSize {
			img = img[:pages*PageSize]
		}
		buf := make([]byte, pages*PageSize)
		copy(buf, img)
		s, err := Open(devFromImage(512, buf), testKey, Options{})
		known := func(err error) bool {
			for _, k := range []error{ErrCorrupt, ErrAuth, ErrNotFormatted, ErrTruncated, ErrRollback} {
				if errors.Is(err, k) {
					return true
				}
			}
			return false
		}
		if err != nil {
			if !known(err) {
				t.Fatalf("unclassified error %v", err)
			}
			return
		}
		if err := s.Range(func(UUID, Record) bool { return true }); err != nil && !known(err) {
			t.Fatalf("unclassified error %v", err)
		}
		if _, err := s.Check(); err != nil && !known(err) {
			t.Fatalf("unclassified error %v", err)
		}
		// Whatever opened also takes a write (unless the tree is damaged).
		if err := s.Put(UUID{1}, Record{Blob: []byte{1}}); err != nil && !known(err) && !errors.Is(err, ErrNoSpace) {
			t.Fatalf("put: unclassified error %v", err)
		}
	})
}
