package vstate

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"
)

// cutScenario is one save to interrupt: the disk and manager before it,
// the state the next boot must find if the save is lost (nil: ErrFresh),
// and the state being saved.
type cutScenario struct {
	name     string
	ss       int
	img      []byte
	blob     []byte
	old, new []byte
	// lostReply: before the save, a SAVEHASHKEY of old was committed but
	// its answer lost, so the store must ask the manager before writing.
	lostReply bool
	// refused: the disk was refused and Reset before the save.
	refused bool
}

func scenarios(t *testing.T) []cutScenario {
	var out []cutScenario
	for _, ss := range []int{512, 4096} {
		a, b, c := testState(5000, 1), testState(7000, 2), testState(300, 3)
		out = append(out, cutScenario{name: "first save", ss: ss, img: make([]byte, 2*testSlot), new: a})
		dev, mgr := saved(t, ss, a, nil)
		out = append(out, cutScenario{name: "second save", ss: ss, img: bytes.Clone(dev.live), blob: mgr.blob, old: a, new: b})
		dev, mgr = saved(t, ss, a, b)
		out = append(out, cutScenario{name: "third save", ss: ss, img: bytes.Clone(dev.live), blob: mgr.blob, old: b, new: c})
		out = append(out, cutScenario{name: "after lost reply", ss: ss, img: bytes.Clone(dev.live), blob: mgr.blob, old: c, new: a, lostReply: true})
		// A foreign disk being reset: before the save it is refused.
		out = append(out, cutScenario{name: "reset", ss: ss, img: bytes.Clone(dev.live), old: nil, new: c, refused: true})
	}
	for i := range out {
		out[i].name = fmt.Sprintf("%s/%d", out[i].name, out[i].ss)
	}
	return out
}

// start returns a store that loaded (or reset) the scenario's disk, ready
// to save sc.new.
func (sc cutScenario) start(t *testing.T) (*memDev, *fakeMgr, *Store) {
	t.Helper()
	dev, mgr := memDevFrom(sc.ss, sc.img), &fakeMgr{blob: bytes.Clone(sc.blob)}
	s := newTestStore(t, dev, mgr)
	if _, err := s.Load(); err != nil && !errors.Is(err, ErrFresh) {
		if err := s.Reset(); err != nil {
			t.Fatal(err)
		}
	}
	if sc.lostReply {
		mgr.saveMode = saveCommitThenFail
		if err := s.Save(sc.old); !errors.Is(err, ErrManager) {
			t.Fatalf("lost reply: %v", err)
		}
		mgr.saveMode = saveOK
	}
	dev.Flush()
	dev.writes = 0
	return dev, mgr, s
}

// check boots on the disk a cut left and demands the old or new state.
func (sc cutScenario) check(t *testing.T, what string, img []byte, mgr *fakeMgr, saveErr error) {
	t.Helper()
	got, err := loadFrom(t, sc.ss, img, &fakeMgr{blob: bytes.Clone(mgr.blob)})
	switch {
	case err == nil && bytes.Equal(got, sc.new):
	case saveErr != nil && err == nil && sc.old != nil && bytes.Equal(got, sc.old):
	case saveErr != nil && sc.old == nil && sc.blob == nil && errors.Is(err, ErrFresh):
	case saveErr != nil && sc.refused && errors.Is(err, ErrForeignDisk):
		// A reset cut before the wipe landed: still the refused disk.
	default:
		t.Fatalf("%s: %s: save returned %v; boot found %d bytes, %v: neither the old nor the new state",
			sc.name, what, saveErr, len(got), err)
	}
}

// TestPowerCut cuts power after every sector write of a save, whole or
// torn, with the unflushed writes landing all or in part, and boots.
func TestPowerCut(t *testing.T) {
	for _, sc := range scenarios(t) {
		dev, _, s := sc.start(t)
		if err := s.Save(sc.new); err != nil {
			t.Fatalf("%s: clean save: %v", sc.name, err)
		}
		total := dev.writes
		for k := 0; k <= total; k++ {
			for _, tear := range []bool{false, true} {
				for seed := range 4 {
					dev, mgr, s := sc.start(t)
					dev.cutAfter, dev.tear = k, tear
					err := s.Save(sc.new)
					var r *rand.Rand
					if seed > 0 {
						r = rand.New(rand.NewPCG(uint64(k), uint64(seed)))
					}
					sc.check(t, fmt.Sprintf("cut after %d of %d writes, tear %v, seed %d", k, total, tear, seed), dev.afterCut(r), mgr, err)
				}
			}
		}
	}
}

// TestManagerCut: the manager fails before or after committing the blob.
// Either way the next boot finds a state, and the same store's next save,
// cut anywhere, does not lose it: after a failed SAVEHASHKEY the store
// must ask the manager which slot it holds before writing.
func TestManagerCut(t *testing.T) {
	next := testState(4000, 9)
	for _, sc := range scenarios(t) {
		for _, mode := range []int{saveFailBefore, saveCommitThenFail} {
			failed := func() (*memDev, *fakeMgr, *Store) {
				dev, mgr, s := sc.start(t)
				mgr.saveMode = mode
				if err := s.Save(sc.new); !errors.Is(err, ErrManager) {
					t.Fatalf("%s: mode %d: %v", sc.name, mode, err)
				}
				mgr.saveMode = saveOK
				return dev, mgr, s
			}
			dev, mgr, _ := failed()
			got, err := loadFrom(t, sc.ss, dev.afterCut(nil), mgr)
			if mode == saveCommitThenFail && (err != nil || !bytes.Equal(got, sc.new)) {
				t.Fatalf("%s: committed, then boot found %v", sc.name, err)
			}
			if mode == saveFailBefore {
				sc.check(t, "manager failed", dev.afterCut(nil), mgr, ErrManager)
			}

			after := sc
			after.old, after.new = sc.old, next
			if mode == saveCommitThenFail {
				after.old, after.blob = sc.new, mgr.blob
			}
			for k := 0; ; k++ {
				dev, mgr, s := failed()
				dev.writes, dev.cutAfter = 0, k
				err := s.Save(next)
				after.check(t, fmt.Sprintf("mode %d, next save cut after %d", mode, k), dev.afterCut(nil), mgr, err)
				if err == nil {
					break
				}
			}
		}
	}
}
