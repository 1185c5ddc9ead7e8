package store

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
)

var testKey = bytes.Repeat([]byte{0x42}, KeySize)

func uuidN(i int) UUID {
	var u UUID
	r := rand.New(rand.NewPCG(uint64(i), 0x5eed))
	for j := range u {
		u[j] = byte(r.Uint32())
	}
	return u
}

func recN(i, gen int) Record {
	n := 52 + (i+gen)%13
	b := make([]byte, n)
	for j := range b {
		b[j] = byte(i*7 + gen*13 + j)
	}
	return Record{Blob: b, Flags: uint32(i % 3), Group: uint32(gen)}
}

type kv struct {
	k UUID
	r Record
}

func dump(t testing.TB, s *Store) []kv {
	t.Helper()
	var out []kv
	if err := s.Range(func(k UUID, r Record) bool { out = append(out, kv{k, r}); return true }); err != nil {
		t.Fatalf("Range: %v", err)
	}
	return out
}

func sameState(a, b []kv) bool {
	return slices.EqualFunc(a, b, func(x, y kv) bool {
		return x.k == y.k && bytes.Equal(x.r.Blob, y.r.Blob) && x.r.Flags == y.r.Flags && x.r.Group == y.r.Group
	})
}

// small makes a store split early so few records give a tall tree.
func small(s *Store) *Store { s.leafCap, s.branchCap = 4, 3; return s }

func mustOpen(t testing.TB, d Device, opt Options) *Store {
	t.Helper()
	s, err := Open(d, testKey, opt)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return small(s)
}

func check(t testing.TB, s *Store) {
	t.Helper()
	if _, err := s.Check(); err != nil {
		t.Fatalf("Check: %v", err)
	}
}

func TestPutGetDelete(t *testing.T) {
	d := newMemDev(512, 4096)
	s, err := Format(d, testKey, 7)
	if err != nil {
		t.Fatal(err)
	}
	small(s)
	want := map[UUID]Record{}
	for i := range 200 {
		if err := s.Put(uuidN(i), recN(i, 0)); err != nil {
			t.Fatalf("Put %d: %v", i, err)
		}
		want[uuidN(i)] = recN(i, 0)
	}
	for i := 0; i < 200; i += 3 {
		if err := s.Delete(uuidN(i)); err != nil {
			t.Fatalf("Delete %d: %v", i, err)
		}
		delete(want, uuidN(i))
	}
	if err := s.Delete(uuidN(0)); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Delete of a deleted key: %v, want ErrNotFound", err)
	}
	if got := s.Counter(); got != 7+200+67 {
		t.Fatalf("counter %d, want %d", got, 7+200+67)
	}
	check(t, s)
	for _, s := range []*Store{s, mustOpen(t, d, Options{MinCounter: 274})} {
		if s.Len() != uint64(len(want)) {
			t.Fatalf("Len %d, want %d", s.Len(), len(want))
		}
		for i := range 200 {
			r, err := s.Get(uuidN(i))
			w, ok := want[uuidN(i)]
			if !ok {
				if !errors.Is(err, ErrNotFound) {
					t.Fatalf("Get deleted %d: %v", i, err)
				}
				continue
			}
			if err != nil || !bytes.Equal(r.Blob, w.Blob) || r.Flags != w.Flags || r.Group != w.Group {
				t.Fatalf("Get %d: %+v %v, want %+v", i, r, err, w)
			}
		}
		if info := s.Info(); info.Height < 4 {
			t.Fatalf("height %d: the test wants a tall tree", info.Height)
		}
	}
	// Delete everything: the tree collapses to empty and stays usable.
	s2 := mustOpen(t, d, Options{})
	for k := range want {
		if err := s2.Delete(k); err != nil {
			t.Fatal(err)
		}
	}
	if s2.Len() != 0 || s2.Info().Height != 0 {
		t.Fatalf("after deleting all: %+v", s2.Info())
	}
	check(t, s2)
	if err := s2.Put(uuidN(1), recN(1, 1)); err != nil {
		t.Fatal(err)
	}
	check(t, mustOpen(t, d, Options{}))
}

func TestBadRecord(t *testing.T) {
	s, err := Format(newMemDev(512, 64), testKey, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Put(uuidN(1), Record{Blob: make([]byte, MaxBlob+1)}); err == nil {
		t.Fatal("oversize blob accepted")
	}
	if _, err := Format(newMemDev(512, 64), testKey[:16], 0); err == nil {
		t.Fatal("short key accepted")
	}
	if _, err := Format(newMemDev(512, 16), testKey, 0); err == nil {
		t.Fatal("tiny device accepted")
	}
	if _, err := Format(newMemDev(520, 64), testKey, 0); err == nil {
		t.Fatal("odd sector size accepted")
	}
}

// crashOps are the operations whose every write is cut short.
func crashOps() []struct {
	name string
	fn   func(*Store) error
} {
	batch := func(lo, hi, gen int, del ...int) func(*Store) error {
		return func(s *Store) error {
			var b Batch
			for i := lo; i < hi; i++ {
				b.Put(uuidN(i), recN(i, gen))
			}
			for _, i := range del {
				b.Delete(uuidN(i))
			}
			return s.Commit(&b)
		}
	}
	return []struct {
		name string
		fn   func(*Store) error
	}{
		{"insert", func(s *Store) error { return s.Put(uuidN(1000), recN(1000, 0)) }},
		{"update", func(s *Store) error { return s.Put(uuidN(5), recN(5, 9)) }},
		{"delete", func(s *Store) error { return s.Delete(uuidN(6)) }},
		{"batch-insert-splits", batch(2000, 2020, 1)},
		{"batch-mixed", batch(10, 15, 2, 20, 21, 22, 23, 24, 25, 26, 27)},
		{"rebind", func(s *Store) error { return s.Rebind(1 << 40) }},
	}
}

// TestCrashSafety cuts power after every sector write of every operation
// — cleanly, tearing the sector being written, and persisting a random
// subset of the unflushed writes — then recovers and requires exactly the
// old or the new state, the new one if the operation had returned nil.
func TestCrashSafety(t *testing.T) {
	for _, ss := range []int{512, 4096} {
		t.Run(fmt.Sprint("sector", ss), func(t *testing.T) { crashSafety(t, ss) })
	}
}

func crashSafety(t *testing.T, ss int) {
	base := newMemDev(ss, uint64(96*PageSize/ss))
	s, err := Format(base, testKey, 100)
	if err != nil {
		t.Fatal(err)
	}
	small(s)
	var b Batch
	for i := range 60 {
		b.Put(uuidN(i), recN(i, 0))
	}
	if err := s.Commit(&b); err != nil {
		t.Fatal(err)
	}
	cuts := 0
	for _, op := range crashOps() {
		pre := base.image()
		preCounter := s.Counter()
		old := dump(t, s)
		// A clean run gives the new state and the number of writes.
		clean := devFromImage(ss, pre)
		cs := mustOpen(t, clean, Options{MinCounter: preCounter})
		if err := op.fn(cs); err != nil {
			t.Fatalf("%s: %v", op.name, err)
		}
		newState := dump(t, cs)
		writes := clean.sectorWrites
		if sameState(old, newState) && op.name != "rebind" {
			t.Fatalf("%s changes nothing", op.name)
		}
		for k := 0; k <= writes; k++ {
			for mode := range 4 {
				d := devFromImage(ss, pre)
				d.cutAfter, d.tear = k, mode == 1 || mode == 3
				if mode >= 2 {
					d.reorder = rand.New(rand.NewPCG(uint64(k), uint64(mode)))
				}
				ds := mustOpen(t, d, Options{MinCounter: preCounter})
				opErr := op.fn(ds)
				img := d.afterCut()
				rd := devFromImage(ss, img)
				img = nil
				rs, err := Open(rd, testKey, Options{MinCounter: preCounter})
				if err != nil {
					t.Fatalf("%s: cut after %d/%d writes (mode %d): reopen: %v", op.name, k, writes, mode, err)
				}
				small(rs)
				got := dump(t, rs)
				switch {
				case sameState(got, newState):
				case opErr != nil && sameState(got, old):
				default:
					t.Fatalf("%s: cut after %d/%d writes (mode %d, op error %v): state is neither old nor new", op.name, k, writes, mode, opErr)
				}
				if opErr == nil && rs.Counter() != cs.Counter() {
					t.Fatalf("%s: completed commit recovered with counter %d, want %d", op.name, rs.Counter(), cs.Counter())
				}
				cuts++
				if mode != 1 {
					continue // the full check below is the slow part
				}
				check(t, rs)
				// The recovered store takes further writes and reopens.
				if err := rs.Put(uuidN(3000+k), recN(k, 5)); err != nil {
					t.Fatalf("%s: put after recovery: %v", op.name, err)
				}
				check(t, mustOpen(t, rd, Options{MinCounter: preCounter}))
			}
		}
		// Advance the base to the new state for the next operation.
		if err := op.fn(s); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("sector size %d: %d power cuts recovered", ss, cuts)
}

func TestRollback(t *testing.T) {
	d := newMemDev(512, 1024)
	s, err := Format(d, testKey, 40)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Put(uuidN(1), recN(1, 0)); err != nil {
		t.Fatal(err)
	}
	oldImg := d.image() // counter 41
	if err := s.Put(uuidN(1), recN(1, 1)); err != nil {
		t.Fatal(err)
	}
	if err := s.Put(uuidN(2), recN(2, 1)); err != nil {
		t.Fatal(err)
	}
	hw := s.Counter() // the manager increments the hardware counter to 43
	if hw != 43 {
		t.Fatalf("counter %d, want 43", hw)
	}
	_, err = Open(devFromImage(512, oldImg), testKey, Options{MinCounter: hw})
	if !errors.Is(err, ErrRollback) {
		t.Fatalf("old image opened with hardware counter %d: %v, want ErrRollback", hw, err)
	}
	t.Logf("rollback error: %v", err)
	// An operator may still recover it explicitly.
	rs, err := Open(devFromImage(512, oldImg), testKey, Options{MinCounter: hw, AllowRollback: true})
	if err != nil {
		t.Fatal(err)
	}
	if r, _ := rs.Get(uuidN(1)); !bytes.Equal(r.Blob, recN(1, 0).Blob) {
		t.Fatal("rolled-back store has the wrong record")
	}
	// The current image opens, also when the hardware counter lags one
	// increment behind (a cut between the commit and the NV increment).
	for _, c := range []uint64{hw, hw - 1, 0} {
		if _, err := Open(devFromImage(512, d.image()), testKey, Options{MinCounter: c}); err != nil {
			t.Fatalf("MinCounter %d: %v", c, err)
		}
	}
}

func TestBadDisks(t *testing.T) {
	d := newMemDev(512, 1024)
	s, err := Format(d, testKey, 1)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 50 {
		if err := s.Put(uuidN(i), recN(i, 0)); err != nil {
			t.Fatal(err)
		}
	}
	img := d.image()
	garbage := make([]byte, len(img))
	r := rand.New(rand.NewPCG(1, 2))
	for i := range garbage {
		garbage[i] = byte(r.Uint32())
	}
	cases := []struct {
		name string
		dev  Device
		key  []byte
		want error
	}{
		{"blank", newMemDev(512, 1024), testKey, ErrNotFormatted},
		{"garbage", devFromImage(512, garbage), testKey, ErrNotFormatted},
		{"wrong key", devFromImage(512, img), bytes.Repeat([]byte{1}, KeySize), ErrAuth},
		{"truncated", devFromImage(512, img[:len(img)/2]), testKey, ErrTruncated},
		{"truncated to nothing", devFromImage(512, img[:4096]), testKey, ErrTruncated},
	}
	for _, c := range cases {
		_, err := Open(c.dev, c.key, Options{})
		if !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		} else {
			t.Logf("%s: %v", c.name, err)
		}
	}
	// Superblocks with garbage after valid magic: corrupt, not a panic.
	g2 := append([]byte(nil), garbage...)
	copy(g2, sbMagic[:])
	copy(g2[PageSize:], sbMagic[:])
	if _, err := Open(devFromImage(512, g2), testKey, Options{}); !errors.Is(err, ErrCorrupt) {
		t.Errorf("garbage with magic: %v, want ErrCorrupt", err)
	}
}

// TestBitFlips flips one bit at many places of a store image (every
// page, both superblocks): the store must then open to the current or
// the previous state and read it back intact, or fail with one of the
// package's errors — never return wrong data or panic.
func TestBitFlips(t *testing.T) {
	d := newMemDev(512, 8*40)
	s, err := Format(d, testKey, 1)
	if err != nil {
		t.Fatal(err)
	}
	small(s)
	for i := range 30 {
		if err := s.Put(uuidN(i), recN(i, 0)); err != nil {
			t.Fatal(err)
		}
	}
	prev := dump(t, s)
	if err := s.Put(uuidN(3), recN(3, 1)); err != nil {
		t.Fatal(err)
	}
	cur := dump(t, s)
	img := d.image()
	known := []error{ErrCorrupt, ErrAuth, ErrNotFormatted, ErrRollback}
	isKnown := func(err error) bool {
		for _, k := range known {
			if errors.Is(err, k) {
				return true
			}
		}
		return false
	}
	var opened, refused, readFail int
	for off := 0; off < len(img); off += 37 {
		bad := append([]byte(nil), img...)
		bad[off] ^= 1 << (off % 8)
		bs, err := Open(devFromImage(512, bad), testKey, Options{})
		if err != nil {
			if !isKnown(err) {
				t.Fatalf("flip at %d: open: unexpected error %v", off, err)
			}
			refused++
			continue
		}
		opened++
		var got []kv
		rerr := bs.Range(func(k UUID, r Record) bool { got = append(got, kv{k, r}); return true })
		if rerr != nil {
			if !isKnown(rerr) {
				t.Fatalf("flip at %d: read: unexpected error %v", off, rerr)
			}
			readFail++
			continue
		}
		if !sameState(got, cur) && !sameState(got, prev) {
			t.Fatalf("flip at %d: store returned a state that never existed", off)
		}
	}
	// A flip in the newest superblock: the previous copy is still there,
	// refused as a rollback against the hardware counter but intact.
	newest := int(s.Info().Generation%2) * PageSize
	bad := append([]byte(nil), img...)
	bad[newest+40] ^= 1
	if _, err := Open(devFromImage(512, bad), testKey, Options{MinCounter: s.Counter()}); !errors.Is(err, ErrRollback) {
		t.Fatalf("damaged newest superblock: %v, want ErrRollback", err)
	}
	bs, err := Open(devFromImage(512, bad), testKey, Options{MinCounter: s.Counter(), AllowRollback: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(bs.Info().Rejected) == 0 || !sameState(dump(t, bs), prev) {
		t.Fatalf("fallback copy not intact: %+v", bs.Info())
	}
	t.Logf("bit flips: %d opened, %d refused at open, %d refused at read", opened, refused, readFail)
}

func TestNoSpace(t *testing.T) {
	d := newMemDev(512, 8*12) // 12 pages: 10 for the tree
	s, err := Format(d, testKey, 0)
	if err != nil {
		t.Fatal(err)
	}
	small(s)
	var i int
	for i = 0; i < 1000; i++ {
		if err = s.Put(uuidN(i), recN(i, 0)); err != nil {
			break
		}
	}
	if !errors.Is(err, ErrNoSpace) {
		t.Fatalf("filling the disk: %v, want ErrNoSpace", err)
	}
	// The failed commit left the store as it was, and usable.
	if s.Len() != uint64(i) {
		t.Fatalf("Len %d after %d successful puts", s.Len(), i)
	}
	check(t, s)
	if err := s.Delete(uuidN(0)); err != nil {
		t.Fatalf("delete on a full disk: %v", err)
	}
	check(t, mustOpen(t, d, Options{}))
}

func TestDeviceErrors(t *testing.T) {
	d := newMemDev(512, 1024)
	s, err := Format(d, testKey, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Put(uuidN(1), recN(1, 0)); err != nil {
		t.Fatal(err)
	}
	d.failFlush = true
	if err := s.Put(uuidN(2), recN(2, 0)); err == nil || errors.Is(err, ErrBroken) {
		t.Fatalf("flush failure before the superblock: %v, want a plain error", err)
	}
	d.failFlush = false
	if _, err := s.Get(uuidN(2)); !errors.Is(err, ErrNotFound) {
		t.Fatalf("failed commit visible: %v", err)
	}
	d.failSuperblock = true
	if err := s.Put(uuidN(3), recN(3, 0)); !errors.Is(err, ErrBroken) {
		t.Fatalf("superblock write failure: %v, want ErrBroken", err)
	}
	if _, err := s.Get(uuidN(1)); !errors.Is(err, ErrBroken) {
		t.Fatalf("broken store still serving: %v", err)
	}
	d.failSuperblock = false
	s2, err := Open(d, testKey, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s2.Get(uuidN(1)); err != nil {
		t.Fatal(err)
	}
}

func TestConcurrent(t *testing.T) {
	d := &exclusiveDev{t: t, memDev: newMemDev(512, 8192)}
	s, err := Format(d, testKey, 0)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 100 {
		if err := s.Put(uuidN(i), recN(i, 0)); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 50 {
				if w%2 == 0 {
					if err := s.Put(uuidN(i+(w+1)*1000), recN(i, w)); err != nil {
						t.Error(err)
						return
					}
				} else if _, err := s.Get(uuidN(i)); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if n, err := s.Check(); err != nil || n != 200 {
		t.Fatalf("Check: %d %v", n, err)
	}
}

// exclusiveDev fails the test if the store ever calls the device from
// two goroutines at once (Device promises implementations need not be
// safe for concurrent use).
type exclusiveDev struct {
	t     *testing.T
	busy  atomic.Bool
	calls atomic.Int64
	*memDev
}

func (d *exclusiveDev) enter() {
	if !d.busy.CompareAndSwap(false, true) {
		d.t.Error("overlapping device calls")
	}
}

func (d *exclusiveDev) ReadAt(p []byte, s uint64) error {
	d.enter()
	defer d.busy.Store(false)
	return d.memDev.ReadAt(p, s)
}

func (d *exclusiveDev) WriteAt(p []byte, s uint64) error {
	d.enter()
	defer d.busy.Store(false)
	return d.memDev.WriteAt(p, s)
}

func (d *exclusiveDev) Flush() error {
	d.enter()
	defer d.busy.Store(false)
	return d.memDev.Flush()
}

// TestScale inserts in random order, updates and deletes a few thousand
// records at the real page capacities and checks the tree and its height
// (lookups touch height−1 cached branches and one leaf).
func TestScale(t *testing.T) {
	n := 20000
	if testing.Short() {
		n = 3000
	}
	d := newMemDev(512, uint64(n/10+64)*8)
	s, err := Format(d, testKey, 0)
	if err != nil {
		t.Fatal(err)
	}
	perm := rand.New(rand.NewPCG(3, 4)).Perm(n)
	for lo := 0; lo < n; lo += 1000 {
		var b Batch
		for _, i := range perm[lo:min(lo+1000, n)] {
			b.Put(uuidN(i), recN(i, 0))
		}
		if err := s.Commit(&b); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < n; i += 97 {
		if err := s.Put(uuidN(i), recN(i, 1)); err != nil {
			t.Fatal(err)
		}
	}
	s2 := mustOpen(t, d, Options{})
	if got, err := s2.Check(); err != nil || got != uint64(n) {
		t.Fatalf("Check: %d, %v", got, err)
	}
	for i := 0; i < n; i += 13 {
		r, err := s2.Get(uuidN(i))
		gen := 0
		if i%97 == 0 {
			gen = 1
		}
		if err != nil || !bytes.Equal(r.Blob, recN(i, gen).Blob) {
			t.Fatalf("Get %d: %v", i, err)
		}
	}
	info := s2.Info()
	t.Logf("%d records: height %d, %d pages used (incl. previous state), %.0f bytes/record", n, info.Height, info.UsedPages, float64(info.UsedPages*PageSize)/float64(n))
	if info.Height > 3 {
		t.Fatalf("height %d for %d records", info.Height, n)
	}
}
