package vstate

import (
	"bytes"
	"errors"
	"testing"
)

// FuzzOpen boots on damaged disks with arbitrary manager answers. It must
// never panic, every failure must be one of the package's outcomes, and a
// state it returns must be one that was saved.
func FuzzOpen(f *testing.F) {
	f.Add([]byte{}, uint32(0), []byte{}, uint8(0))
	f.Add([]byte{0xff}, uint32(600), []byte{}, uint8(1))
	f.Add([]byte("XVTPM-VS\x00\x01\x01\x00"), uint32(0), make([]byte, 64), uint8(2))
	f.Add([]byte{1, 2, 3}, uint32(testSlot+20), make([]byte, 52), uint8(5))
	f.Fuzz(func(t *testing.T, patch []byte, off uint32, blob []byte, mode uint8) {
		ss := 512
		a, b := testState(700, 1), testState(1500, 2)
		var img []byte
		mgr := &fakeMgr{}
		if mode&1 == 0 {
			dev, m := saved(t, ss, a, b)
			img, mgr = dev.live, m
		} else {
			img = make([]byte, 2*testSlot)
		}
		copy(img[int(off)%len(img):], patch)
		switch mode >> 1 % 4 {
		case 1:
			mgr.blob = blob
		case 2:
			mgr.blob = nil
		case 3:
			mgr.loadErr = errors.New("down")
		}
		s := newTestStore(t, memDevFrom(ss, img), mgr)
		got, err := s.Load()
		if err == nil {
			if !bytes.Equal(got, a) && !bytes.Equal(got, b) {
				t.Fatalf("loaded %d bytes that were never saved", len(got))
			}
			return
		}
		for _, e := range []error{ErrFresh, ErrNoMatchingSlot, ErrCorrupt, ErrForeignDisk, ErrManager} {
			if errors.Is(err, e) {
				return
			}
		}
		t.Fatalf("unclassified error %v", err)
	})
}
