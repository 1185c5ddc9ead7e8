package vstate

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"strings"
	"testing"
)

// sectors of a test disk: exactly two test slots.
func testSectors(ss int) uint64 { return 2 * testSlot / uint64(ss) }

func TestRoundTripAlternates(t *testing.T) {
	for _, ss := range []int{512, 4096} {
		dev, mgr := newMemDev(ss, testSectors(ss)), &fakeMgr{}
		s := newTestStore(t, dev, mgr)
		if _, err := s.Load(); !errors.Is(err, ErrFresh) {
			t.Fatalf("ss %d: blank disk, no record: %v, want ErrFresh", ss, err)
		}
		for i := range 5 {
			want := testState(1000+i*777, byte(i))
			if err := s.Save(want); err != nil {
				t.Fatalf("ss %d: save %d: %v", ss, i, err)
			}
			st := s.Stats()
			if st.Slot != i%2 || st.Generation != uint64(i+1) || st.Last.Generation != uint64(i+1) {
				t.Fatalf("ss %d: save %d: slot %d generation %d", ss, i, st.Slot, st.Generation)
			}
			if off := int64(st.Slot)*int64(testSlot) + int64(ss); st.Last.PayloadOffset != off {
				t.Fatalf("ss %d: save %d: payload at byte %d, want %d (slot %d after its header)", ss, i, st.Last.PayloadOffset, off, st.Slot)
			}
			if st.Last.BytesWritten < ss+len(want)+tagLen || st.Last.BytesWritten%ss != 0 {
				t.Fatalf("ss %d: %d bytes written for %d", ss, st.Last.BytesWritten, len(want))
			}
			got, err := loadFrom(t, ss, dev.afterCut(nil), mgr)
			if err != nil || !bytes.Equal(got, want) {
				t.Fatalf("ss %d: reload after save %d: %v", ss, i, err)
			}
		}
		// A store that loaded carries on where the last one stopped.
		s2 := newTestStore(t, dev, mgr)
		if _, err := s2.Load(); err != nil {
			t.Fatal(err)
		}
		if err := s2.Save(testState(10, 9)); err != nil {
			t.Fatal(err)
		}
		if st := s2.Stats(); st.Slot != 1 || st.Generation != 6 {
			t.Fatalf("after reopen: slot %d generation %d, want 1, 6", st.Slot, st.Generation)
		}
	}
}

func TestEmptyState(t *testing.T) {
	dev, mgr := newMemDev(512, testSectors(512)), &fakeMgr{}
	s := newTestStore(t, dev, mgr)
	s.Load()
	if err := s.Save(nil); err != nil {
		t.Fatal(err)
	}
	got, err := loadFrom(t, 512, dev.live, mgr)
	if err != nil || len(got) != 0 {
		t.Fatalf("empty state: %x, %v", got, err)
	}
}

func TestSaveNeedsLoad(t *testing.T) {
	dev, mgr := newMemDev(512, testSectors(512)), &fakeMgr{}
	s := newTestStore(t, dev, mgr)
	if err := s.Save([]byte("x")); !errors.Is(err, ErrNotLoaded) {
		t.Fatalf("save before load: %v", err)
	}
}

// saved returns a disk holding two saves (a then b) and its manager.
func saved(t *testing.T, ss int, a, b []byte) (*memDev, *fakeMgr) {
	t.Helper()
	dev, mgr := newMemDev(ss, testSectors(ss)), &fakeMgr{}
	s := newTestStore(t, dev, mgr)
	s.Load()
	for _, st := range [][]byte{a, b} {
		if st == nil {
			continue
		}
		if err := s.Save(st); err != nil {
			t.Fatal(err)
		}
	}
	return dev, mgr
}

func TestRefusals(t *testing.T) {
	a, b := testState(3000, 1), testState(2000, 2)

	t.Run("foreign disk", func(t *testing.T) {
		dev, _ := saved(t, 512, a, b)
		s := newTestStore(t, memDevFrom(512, dev.live), &fakeMgr{})
		if _, err := s.Load(); !errors.Is(err, ErrForeignDisk) || !strings.Contains(err.Error(), "generation 2") {
			t.Fatalf("got %v, want ErrForeignDisk", err)
		}
		if err := s.Save(a); !errors.Is(err, ErrNotLoaded) || !errors.Is(err, ErrForeignDisk) {
			t.Fatalf("save after refusal: %v", err)
		}
	})
	t.Run("foreign disk after one save", func(t *testing.T) {
		dev, _ := saved(t, 512, a, nil)
		if _, err := loadFrom(t, 512, dev.live, &fakeMgr{}); !errors.Is(err, ErrForeignDisk) || !strings.Contains(err.Error(), "marker") {
			t.Fatalf("got %v, want ErrForeignDisk (marker)", err)
		}
	})
	t.Run("disk replaced", func(t *testing.T) {
		_, mgr := saved(t, 512, a, b)
		if _, err := loadFrom(t, 512, make([]byte, 2*testSlot), mgr); !errors.Is(err, ErrNoMatchingSlot) || !strings.Contains(err.Error(), "blank") {
			t.Fatalf("got %v, want ErrNoMatchingSlot", err)
		}
	})
	t.Run("disk rolled back", func(t *testing.T) {
		dev, mgr := saved(t, 512, a, nil)
		old := bytes.Clone(dev.live)
		s := newTestStore(t, dev, mgr)
		s.Load()
		s.Save(b)
		s.Save(a) // the same state again, under a new key
		if _, err := loadFrom(t, 512, old, mgr); !errors.Is(err, ErrNoMatchingSlot) {
			t.Fatalf("got %v, want ErrNoMatchingSlot", err)
		}
	})
	t.Run("wrong key", func(t *testing.T) {
		dev, mgr := saved(t, 512, a, b)
		mgr.blob[0] ^= 1
		if _, err := loadFrom(t, 512, dev.live, mgr); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("got %v, want ErrCorrupt", err)
		}
	})
	t.Run("header from another version", func(t *testing.T) {
		dev, mgr := saved(t, 512, a, nil)
		img := bytes.Clone(dev.live)
		img[9] = 2 // format version 2, then rehash as if the manager agreed
		n := 512 + (len(a)+tagLen+511)/512*512
		sum := sha256.Sum256(img[:n])
		copy(mgr.blob[keyLen:], sum[:])
		if _, err := loadFrom(t, 512, img, mgr); !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "version 2") {
			t.Fatalf("got %v, want ErrCorrupt (version)", err)
		}
	})
	t.Run("other slot size", func(t *testing.T) {
		dev, mgr := saved(t, 512, a, nil)
		s, err := New(Config{Device: memDevFrom(512, dev.live), Manager: mgr, SlotSize: testSlot / 2})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Load(); !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "32-sector slots") {
			t.Fatalf("got %v, want ErrCorrupt (geometry)", err)
		}
	})
	t.Run("manager down", func(t *testing.T) {
		dev, mgr := saved(t, 512, a, b)
		mgr.loadErr = errors.New("ring closed")
		s := newTestStore(t, dev, mgr)
		if _, err := s.Load(); !errors.Is(err, ErrManager) || !strings.Contains(err.Error(), "ring closed") {
			t.Fatalf("got %v, want ErrManager", err)
		}
		if err := s.Save(a); !errors.Is(err, ErrNotLoaded) {
			t.Fatalf("save: %v", err)
		}
		if err := s.Reset(); !errors.Is(err, ErrManager) {
			t.Fatalf("reset with the manager down: %v", err)
		}
	})
	t.Run("malformed blob", func(t *testing.T) {
		dev, mgr := saved(t, 512, a, b)
		mgr.blob = mgr.blob[:40]
		if _, err := loadFrom(t, 512, dev.live, mgr); !errors.Is(err, ErrManager) {
			t.Fatalf("got %v, want ErrManager", err)
		}
	})
	t.Run("short blob is padded", func(t *testing.T) {
		// vtpmmgr answers 52 bytes for a 64-byte blob ending in zeros.
		dev, mgr := saved(t, 512, a, b)
		mgr.blob = mgr.blob[:52]
		if _, err := loadFrom(t, 512, dev.live, mgr); !errors.Is(err, ErrNoMatchingSlot) {
			t.Fatalf("got %v, want ErrNoMatchingSlot", err)
		}
	})
}

func TestReset(t *testing.T) {
	a, b, c := testState(3000, 1), testState(2000, 2), testState(100, 3)
	for _, tc := range []struct {
		name string
		prep func(dev *memDev, mgr *fakeMgr) (*memDev, *fakeMgr)
		want error
	}{
		{"foreign disk", func(dev *memDev, _ *fakeMgr) (*memDev, *fakeMgr) { return dev, &fakeMgr{} }, ErrForeignDisk},
		{"replaced disk", func(_ *memDev, mgr *fakeMgr) (*memDev, *fakeMgr) {
			return newMemDev(512, testSectors(512)), mgr
		}, ErrNoMatchingSlot},
		{"corrupt slot", func(dev *memDev, mgr *fakeMgr) (*memDev, *fakeMgr) { mgr.blob[5] ^= 1; return dev, mgr }, ErrCorrupt},
	} {
		dev, mgr := saved(t, 512, a, b)
		dev, mgr = tc.prep(dev, mgr)
		s := newTestStore(t, dev, mgr)
		if _, err := s.Load(); !errors.Is(err, tc.want) {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if err := s.Reset(); err != nil {
			t.Fatalf("%s: reset: %v", tc.name, err)
		}
		if err := s.Save(c); err != nil {
			t.Fatalf("%s: save after reset: %v", tc.name, err)
		}
		if got, err := loadFrom(t, 512, dev.live, mgr); err != nil || !bytes.Equal(got, c) {
			t.Fatalf("%s: after reset: %v", tc.name, err)
		}
	}
}

func TestTooLarge(t *testing.T) {
	for _, ss := range []int{512, 4096} {
		a := testState(50, 1)
		dev, mgr := saved(t, ss, a, nil)
		s := newTestStore(t, dev, mgr)
		if _, err := s.Load(); err != nil {
			t.Fatal(err)
		}
		if max := testSlot - ss - tagLen; s.MaxState() != max {
			t.Fatalf("ss %d: MaxState %d, want %d", ss, s.MaxState(), max)
		}
		if err := s.Save(make([]byte, s.MaxState()+1)); !errors.Is(err, ErrTooLarge) {
			t.Fatalf("ss %d: oversize: %v", ss, err)
		}
		if got, err := loadFrom(t, ss, dev.live, mgr); err != nil || !bytes.Equal(got, a) {
			t.Fatalf("ss %d: after refused save: %v", ss, err)
		}
		full := testState(s.MaxState(), 2)
		if err := s.Save(full); err != nil {
			t.Fatalf("ss %d: full slot: %v", ss, err)
		}
		if got, err := loadFrom(t, ss, dev.live, mgr); err != nil || !bytes.Equal(got, full) {
			t.Fatalf("ss %d: full slot reload: %v", ss, err)
		}
	}
}

func TestGeometry(t *testing.T) {
	mgr := &fakeMgr{}
	for _, tc := range []struct {
		ss      int
		sectors uint64
		slot    int
		want    error
	}{
		{512, 63, testSlot, ErrDiskTooSmall},
		{4096, 7, testSlot, ErrDiskTooSmall},
		{512, 1 << 12, 0, ErrDiskTooSmall}, // 2 MiB < two default slots
		{512, 64, testSlot, nil},
		{4096, 8, testSlot, nil},
		{4096, 1024, 0, nil},
	} {
		_, err := New(Config{Device: newMemDev(tc.ss, tc.sectors), Manager: mgr, SlotSize: tc.slot})
		if !errors.Is(err, tc.want) {
			t.Errorf("ss %d, %d sectors, slot %d: %v, want %v", tc.ss, tc.sectors, tc.slot, err, tc.want)
		}
	}
	for _, slot := range []int{512, 1000, 4096 + 512} {
		if _, err := New(Config{Device: newMemDev(4096, 64), Manager: mgr, SlotSize: slot}); err == nil {
			t.Errorf("slot size %d on 4096-byte sectors accepted", slot)
		}
	}
	if _, err := New(Config{Device: newMemDev(1000, 64), Manager: mgr}); err == nil {
		t.Error("1000-byte sectors accepted")
	}
	// A disk larger than two slots keeps them at fixed places.
	dev, mgr2 := newMemDev(512, 1000), &fakeMgr{}
	s := newTestStore(t, dev, mgr2)
	s.Load()
	s.Save([]byte("one"))
	s.Save([]byte("two"))
	if !hasMagic(dev.live[testSlot:]) {
		t.Error("slot 1 is not at SlotSize")
	}
}

// TestByteFlips: any damage to the current slot is refused; damage to the
// stale one is not noticed.
func TestByteFlips(t *testing.T) {
	ss := 512
	a, b := testState(700, 1), testState(900, 2)
	dev, mgr := saved(t, ss, a, b) // b current, in slot 1
	img := dev.live
	extent := func(n int) int { return ss + (n+tagLen+ss-1)/ss*ss }
	for off := range extent(len(b)) {
		bad := bytes.Clone(img)
		bad[testSlot+off] ^= 0x40
		if _, err := loadFrom(t, ss, bad, mgr); !errors.Is(err, ErrNoMatchingSlot) && !errors.Is(err, ErrCorrupt) {
			t.Fatalf("current slot byte %d flipped: %v", off, err)
		}
	}
	for off := range extent(len(a)) {
		bad := bytes.Clone(img)
		bad[off] ^= 0x40
		if got, err := loadFrom(t, ss, bad, mgr); err != nil || !bytes.Equal(got, b) {
			t.Fatalf("stale slot byte %d flipped: %v", off, err)
		}
	}
}
