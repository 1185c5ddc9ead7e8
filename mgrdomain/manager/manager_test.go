package manager

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/xenvtpm/xenvtpm/mgrdomain/internal/swtpmtest"

	"github.com/google/go-tpm/tpm2"
	"github.com/google/go-tpm/tpm2/transport"

	"github.com/xenvtpm/xenvtpm/mgrdomain/hwtpm"
	"github.com/xenvtpm/xenvtpm/mgrdomain/proto"
	"github.com/xenvtpm/xenvtpm/mgrdomain/store"
)

// memDisk is an in-memory store.Device with a flush count.
type memDisk struct {
	mu      sync.Mutex
	ss      int
	data    []byte
	flushes int
}

func newMemDisk(ss int, bytes int) *memDisk { return &memDisk{ss: ss, data: make([]byte, bytes)} }

func (d *memDisk) check(p []byte, sector uint64) error {
	if len(p)%d.ss != 0 || sector*uint64(d.ss)+uint64(len(p)) > uint64(len(d.data)) {
		return fmt.Errorf("memDisk: bad I/O of %d bytes at sector %d", len(p), sector)
	}
	return nil
}
func (d *memDisk) ReadAt(p []byte, sector uint64) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.check(p, sector); err != nil {
		return err
	}
	copy(p, d.data[sector*uint64(d.ss):])
	return nil
}
func (d *memDisk) WriteAt(p []byte, sector uint64) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.check(p, sector); err != nil {
		return err
	}
	copy(d.data[sector*uint64(d.ss):], p)
	return nil
}
func (d *memDisk) SectorSize() int { return d.ss }
func (d *memDisk) Sectors() uint64 { return uint64(len(d.data) / d.ss) }
func (d *memDisk) Flush() error {
	d.mu.Lock()
	d.flushes++
	d.mu.Unlock()
	return nil
}
func (d *memDisk) image() []byte {
	d.mu.Lock()
	defer d.mu.Unlock()
	return bytes.Clone(d.data)
}
func (d *memDisk) restore(img []byte) {
	d.mu.Lock()
	defer d.mu.Unlock()
	copy(d.data, img)
}

const diskBytes = 1 << 20

func uuidN(i int) [16]byte {
	var u [16]byte
	u[0], u[15] = 0xA0, byte(i)
	u[14] = byte(i >> 8)
	return u
}

func blobN(i, version int) []byte {
	b := bytes.Repeat([]byte{byte(i)}, 64)
	b[0] = byte(version)
	return b
}

func hwOf(t testing.TB, s *swtpmtest.Swtpm) *hwtpm.TPM {
	t.Helper()
	h, err := hwtpm.Open(s.TPM(), hwtpm.Config{})
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func openMgr(t testing.TB, d store.Device, hw Hardware, cfg Config) *Manager {
	t.Helper()
	m, err := Open(d, hw, cfg)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return m
}

func mustLoad(t testing.TB, m *Manager, u [16]byte, want []byte) {
	t.Helper()
	got, err := m.LoadHashKey(u)
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("LoadHashKey(%x) = %x, %v; want %x", u, got, err, want)
	}
}

func TestSaveLoadAcrossRestart(t *testing.T) {
	s := swtpmtest.StartSwtpm(t, "")
	d := newMemDisk(512, diskBytes)
	m := openMgr(t, d, hwOf(t, s), Config{})
	c0 := m.Stats().Counter
	for i := range 3 {
		if err := m.SaveHashKey(uuidN(i), blobN(i, 1)); err != nil {
			t.Fatal(err)
		}
	}
	flushes := d.flushes
	if err := m.SaveHashKey(uuidN(0), blobN(0, 2)); err != nil {
		t.Fatal(err)
	}
	t.Logf("one save: %d device flushes, 1 NV increment", d.flushes-flushes)
	mustLoad(t, m, uuidN(0), blobN(0, 2))
	if st := m.Stats(); st.Counter != c0+4 || st.Commits != 4 || st.Records != 3 {
		t.Fatalf("stats %+v", st)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := m.LoadHashKey(uuidN(0)); !errors.Is(err, ErrClosed) {
		t.Fatalf("LoadHashKey after Close = %v", err)
	}
	s.Restart()
	hw := hwOf(t, s)
	m = openMgr(t, d, hw, Config{})
	mustLoad(t, m, uuidN(0), blobN(0, 2))
	mustLoad(t, m, uuidN(1), blobN(1, 1))
	mustLoad(t, m, uuidN(2), blobN(2, 1))
	if _, err := m.LoadHashKey(uuidN(9)); !errors.Is(err, proto.ErrNotFound) {
		t.Fatalf("LoadHashKey(unknown) = %v", err)
	}
	if c, err := hw.ReadCounter(); err != nil || c != m.Stats().Counter {
		t.Fatalf("hardware counter %d, %v; store %d", c, err, m.Stats().Counter)
	}
}

func TestRollbackRefused(t *testing.T) {
	s := swtpmtest.StartSwtpm(t, "")
	d := newMemDisk(4096, diskBytes)
	hw := hwOf(t, s)
	m := openMgr(t, d, hw, Config{})
	u := uuidN(1)
	if err := m.SaveHashKey(u, blobN(1, 1)); err != nil {
		t.Fatal(err)
	}
	m.Close()
	old := d.image()
	m = openMgr(t, d, hw, Config{})
	if err := m.SaveHashKey(u, blobN(1, 2)); err != nil {
		t.Fatal(err)
	}
	m.Close()
	d.restore(old)
	_, err := Open(d, hw, Config{})
	if !errors.Is(err, ErrRollback) || !errors.Is(err, store.ErrRollback) {
		t.Fatalf("Open(old image) = %v, want ErrRollback", err)
	}
	t.Logf("error: %v", err)
	// The operator's explicit recovery: accept the old disk, rebound.
	m = openMgr(t, d, hw, Config{AllowRollback: true})
	mustLoad(t, m, u, blobN(1, 1))
	m.Close()
	m = openMgr(t, d, hw, Config{})
	mustLoad(t, m, u, blobN(1, 1))
}

func TestPCRChangeRefused(t *testing.T) {
	s := swtpmtest.StartSwtpm(t, "")
	d := newMemDisk(512, diskBytes)
	m := openMgr(t, d, hwOf(t, s), Config{}) // default: PCRs 0,2,4,7
	if err := m.SaveHashKey(uuidN(1), blobN(1, 1)); err != nil {
		t.Fatal(err)
	}
	m.Close()
	swtpmtest.ExtendPCR(t, s.TPM(), 4)
	_, err := Open(d, hwOf(t, s), Config{})
	if !errors.Is(err, ErrUnseal) || !errors.Is(err, hwtpm.ErrPCRPolicy) || !strings.Contains(err.Error(), "changed since sealing: 4") {
		t.Fatalf("Open after PCR 4 changed = %v", err)
	}
	t.Logf("error: %v", err)
	s.Restart() // the same boot chain again
	m = openMgr(t, d, hwOf(t, s), Config{})
	mustLoad(t, m, uuidN(1), blobN(1, 1))
}

func TestGarbageDisk(t *testing.T) {
	s := swtpmtest.StartSwtpm(t, "")
	d := newMemDisk(512, diskBytes)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range d.data {
		d.data[i] = byte(r.Uint32())
	}
	img := d.image()
	_, err := Open(d, hwOf(t, s), Config{})
	if !errors.Is(err, ErrGarbageDisk) {
		t.Fatalf("Open(garbage) = %v", err)
	}
	t.Logf("error: %v", err)
	if !bytes.Equal(d.image(), img) {
		t.Fatal("a refused garbage disk was written to")
	}
	m := openMgr(t, d, hwOf(t, s), Config{Reformat: true})
	if err := m.SaveHashKey(uuidN(1), blobN(1, 1)); err != nil {
		t.Fatal(err)
	}
}

func TestDamagedDisk(t *testing.T) {
	s := swtpmtest.StartSwtpm(t, "")
	hw := hwOf(t, s)
	d := newMemDisk(512, diskBytes)
	m := openMgr(t, d, hw, Config{})
	m.SaveHashKey(uuidN(1), blobN(1, 1))
	m.Close()
	good := d.image()
	// One damaged header slot: the other copy serves.
	d.data[slotSize+100] ^= 1
	m = openMgr(t, d, hw, Config{})
	mustLoad(t, m, uuidN(1), blobN(1, 1))
	m.Close()
	// ... and start-up repaired the damaged one.
	if hs, _, err, _ := readHeaders(d); hs[1] == nil {
		t.Fatalf("damaged header slot not rewritten: %v", err)
	}
	good = d.image()
	for _, tc := range []struct {
		name string
		mod  func(b []byte)
		want error
	}{
		{"both header slots garbage", func(b []byte) { copy(b[0:], bytes.Repeat([]byte{0xEE}, headerBytes)) }, ErrGarbageDisk},
		{"both header slots damaged (CRC)", func(b []byte) { b[100] ^= 1; b[slotSize+100] ^= 1 }, ErrBadDisk},
		{"store superblocks wiped after saves", func(b []byte) { clear(b[headerBytes : headerBytes+2*4096]) }, ErrBadDisk},
		{"store page garbage", func(b []byte) { copy(b[headerBytes+2*4096:], bytes.Repeat([]byte{0x55}, 3*4096)) }, ErrBadDisk},
	} {
		d.restore(good)
		tc.mod(d.data)
		_, err := Open(d, hw, Config{})
		if !errors.Is(err, tc.want) {
			t.Errorf("%s: Open = %v, want %v", tc.name, err, tc.want)
		} else {
			t.Logf("%s: %v", tc.name, err)
		}
	}
}

func TestInterruptedFormat(t *testing.T) {
	s := swtpmtest.StartSwtpm(t, "")
	hw := hwOf(t, s)
	d := newMemDisk(512, diskBytes)
	m := openMgr(t, d, hw, Config{})
	m.Close()
	// A cut between header and store format: the store has no superblock.
	clear(d.data[headerBytes : headerBytes+2*4096])
	var logs []string
	m = openMgr(t, d, hw, Config{Logf: func(f string, a ...any) { logs = append(logs, fmt.Sprintf(f, a...)) }})
	if !strings.Contains(strings.Join(logs, "\n"), "interrupted format") {
		t.Fatalf("no store format logged: %q", logs)
	}
	if err := m.SaveHashKey(uuidN(1), blobN(1, 1)); err != nil {
		t.Fatal(err)
	}
}

// flakyHW fails the next counter increment when told to.
type flakyHW struct {
	*hwtpm.TPM
	fail bool
}

func (f *flakyHW) IncrementCounter() error {
	if f.fail {
		f.fail = false
		return errors.New("injected: TPM did not answer")
	}
	return f.TPM.IncrementCounter()
}

func TestDiskAheadAfterCut(t *testing.T) {
	s := swtpmtest.StartSwtpm(t, "")
	hw := &flakyHW{TPM: hwOf(t, s)}
	d := newMemDisk(512, diskBytes)
	m := openMgr(t, d, hw, Config{})
	if err := m.SaveHashKey(uuidN(1), blobN(1, 1)); err != nil {
		t.Fatal(err)
	}
	hw.fail = true
	if err := m.SaveHashKey(uuidN(1), blobN(1, 2)); err == nil {
		t.Fatal("save acknowledged without the counter increment")
	}
	if err := m.SaveHashKey(uuidN(2), blobN(2, 1)); err == nil || !strings.Contains(err.Error(), "restart the manager") {
		t.Fatalf("save after a failed increment = %v", err)
	}
	m.Close()
	var logs []string
	m = openMgr(t, d, hw, Config{Logf: func(f string, a ...any) { logs = append(logs, fmt.Sprintf(f, a...)) }})
	if !strings.Contains(strings.Join(logs, "\n"), "catching up") {
		t.Fatalf("no catch-up logged: %q", logs)
	}
	mustLoad(t, m, uuidN(1), blobN(1, 2)) // the unacknowledged save was kept
	if c, _ := hw.ReadCounter(); c != m.Stats().Counter {
		t.Fatalf("hardware %d, store %d after catch-up", c, m.Stats().Counter)
	}
}

func TestCounterMissing(t *testing.T) {
	s := swtpmtest.StartSwtpm(t, "")
	hw := hwOf(t, s)
	d := newMemDisk(512, diskBytes)
	m := openMgr(t, d, hw, Config{})
	m.SaveHashKey(uuidN(1), blobN(1, 1))
	m.Close()
	_, err := tpm2.NVUndefineSpace{
		AuthHandle: tpm2.TPMRHOwner,
		NVIndex:    tpm2.NamedHandle{Handle: tpm2.TPMHandle(hwtpm.DefaultCounterIndex)},
	}.Execute(s.TPM())
	if err != nil {
		t.Fatal(err)
	}
	hw = hwOf(t, s)
	if _, err := Open(d, hw, Config{}); !errors.Is(err, ErrCounterMissing) {
		t.Fatalf("Open without counter = %v", err)
	}
	m = openMgr(t, d, hw, Config{AllowRollback: true})
	mustLoad(t, m, uuidN(1), blobN(1, 1))
	m.Close()
	m = openMgr(t, d, hw, Config{})
	mustLoad(t, m, uuidN(1), blobN(1, 1))
}

func TestAutocreateOff(t *testing.T) {
	s := swtpmtest.StartSwtpm(t, "")
	d := newMemDisk(512, diskBytes)
	hw := hwOf(t, s)
	m := openMgr(t, d, hw, Config{})
	m.SaveHashKey(uuidN(1), blobN(1, 1))
	m.Close()
	m = openMgr(t, d, hw, Config{NoAutocreate: true})
	if err := m.SaveHashKey(uuidN(2), blobN(2, 1)); !errors.Is(err, proto.ErrNotFound) {
		t.Fatalf("save of an unknown UUID with autocreate off = %v", err)
	}
	if err := m.SaveHashKey(uuidN(1), blobN(1, 2)); err != nil {
		t.Fatalf("save of a known UUID with autocreate off = %v", err)
	}
}

func TestReseal(t *testing.T) {
	s := swtpmtest.StartSwtpm(t, "")
	d := newMemDisk(512, diskBytes)
	hw := hwOf(t, s)
	m := openMgr(t, d, hw, Config{SealPCRs: []uint{}})
	m.SaveHashKey(uuidN(1), blobN(1, 1))
	m.Close()
	gen := m.Stats().HeaderGen
	m = openMgr(t, d, hw, Config{SealPCRs: []uint{7, 16}})
	if st := m.Stats(); st.HeaderGen != gen+2 || !slices.Equal(st.SealPCRs, []uint{7, 16}) {
		t.Fatalf("after reseal: header generation %d (was %d), PCRs %v", st.HeaderGen, gen, st.SealPCRs)
	}
	mustLoad(t, m, uuidN(1), blobN(1, 1))
	m.Close()
	swtpmtest.ExtendPCR(t, s.TPM(), 16)
	if _, err := Open(d, hw, Config{SealPCRs: []uint{7, 16}}); !errors.Is(err, hwtpm.ErrPCRPolicy) {
		t.Fatalf("Open after resealing to PCR 16 and changing it = %v", err)
	}
}

// TestProtocol runs the wire protocol against the manager.
func TestProtocol(t *testing.T) {
	s := swtpmtest.StartSwtpm(t, "")
	m := openMgr(t, newMemDisk(512, diskBytes), hwOf(t, s), Config{})
	h := &proto.Handler{Backend: m}
	peer := proto.PeerInfo{DomID: 5, UUID: uuidN(3)}
	req, _ := proto.EncodeSaveHashKey(blobN(3, 1)[:52])
	if _, err := h.Serve(req, peer); err != nil {
		t.Fatalf("SAVEHASHKEY: %v", err)
	}
	rsp, err := h.Serve(proto.EncodeLoadHashKey(), peer)
	if err != nil {
		t.Fatal(err)
	}
	got, err := proto.DecodeLoadHashKeyResponse(rsp)
	if err != nil || !bytes.Equal(got, blobN(3, 1)[:52]) {
		t.Fatalf("LOADHASHKEY = %x, %v", got, err)
	}
	// Another peer sees only its own (absent) record.
	if _, err := h.Serve(proto.EncodeLoadHashKey(), proto.PeerInfo{DomID: 6, UUID: uuidN(4)}); !errors.Is(err, proto.ErrNotFound) {
		t.Fatalf("LOADHASHKEY of another peer = %v", err)
	}
	// No UUID: refused, and refused again on repeat.
	for range 2 {
		if _, err := h.Serve(proto.EncodeLoadHashKey(), proto.PeerInfo{DomID: 7}); !errors.Is(err, proto.ErrForbidden) {
			t.Fatalf("peer without UUID = %v", err)
		}
	}
	rsp, err = h.Serve(proto.EncodeGetRandom(100), peer)
	if err != nil {
		t.Fatal(err)
	}
	if r, err := proto.DecodeGetRandomResponse(rsp); err != nil || len(r) != 100 {
		t.Fatalf("GetRandom = %d bytes, %v", len(r), err)
	}
	if _, err := h.Serve(proto.EncodePCRRead(0), peer); err != nil {
		t.Fatalf("PcrRead: %v", err)
	}
	m.Close()
	if _, err := h.Serve(proto.EncodeLoadHashKey(), peer); err == nil {
		t.Fatal("request served after Close")
	}
}

func TestConcurrentSaves(t *testing.T) {
	s := swtpmtest.StartSwtpm(t, "")
	hw := hwOf(t, s)
	m := openMgr(t, newMemDisk(512, diskBytes), hw, Config{})
	const workers, each = 8, 10
	var wg sync.WaitGroup
	errs := make(chan error, workers*each)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				errs <- m.SaveHashKey(uuidN(w), blobN(w, i))
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	for w := range workers {
		mustLoad(t, m, uuidN(w), blobN(w, each-1))
	}
	st := m.Stats()
	if st.Saves != workers*each || st.Commits > st.Saves {
		t.Fatalf("stats %+v", st)
	}
	if c, _ := hw.ReadCounter(); c != st.Counter {
		t.Fatalf("hardware %d, store %d", c, st.Counter)
	}
	t.Logf("%d saves in %d group commits (= NV increments)", st.Saves, st.Commits)
}

// countingTPM counts the commands sent to the hardware TPM.
type countingTPM struct {
	tr transport.TPM
	n  atomic.Int64
}

func (c *countingTPM) Send(cmd []byte) ([]byte, error) {
	c.n.Add(1)
	return c.tr.Send(cmd)
}

func countedHW(b testing.TB) (*hwtpm.TPM, *countingTPM) {
	s := swtpmtest.StartSwtpm(b, "")
	ct := &countingTPM{tr: s.TPM()}
	hw, err := hwtpm.Open(ct, hwtpm.Config{})
	if err != nil {
		b.Fatal(err)
	}
	return hw, ct
}

// BenchmarkSave is one SAVEHASHKEY end to end: store commit on an
// in-memory disk (2 flushes) and the NV increment on swtpm.
func BenchmarkSave(b *testing.B) {
	hw, ct := countedHW(b)
	benchSaves(b, hw, ct)
}

// benchSaves times saves of 10 vTPMs in turn through a manager on hw,
// whose TPM commands ct counts, on an in-memory disk.
func benchSaves(b *testing.B, hw Hardware, ct *countingTPM) {
	d := newMemDisk(512, 4<<20)
	m := openMgr(b, d, hw, Config{})
	for i := range 10 {
		m.SaveHashKey(uuidN(i), blobN(i, 0))
	}
	n0, f0 := ct.n.Load(), d.flushes
	ops := 0
	for i := 0; b.Loop(); i++ {
		if err := m.SaveHashKey(uuidN(i%10), blobN(i%10, i)); err != nil {
			b.Fatal(err)
		}
		ops++
	}
	b.ReportMetric(float64(ct.n.Load()-n0)/float64(ops), "TPM-cmds/op")
	b.ReportMetric(float64(d.flushes-f0)/float64(ops), "flushes/op")
}

// BenchmarkSaveParallel: 8 vTPMs saving at once; group commit shares the
// commit and the NV increment.
func BenchmarkSaveParallel(b *testing.B) {
	hw, ct := countedHW(b)
	m := openMgr(b, newMemDisk(512, 4<<20), hw, Config{})
	n0 := ct.n.Load()
	var next atomic.Int64
	b.SetParallelism(4) // 2 cores × 4 = 8 savers
	b.RunParallel(func(pb *testing.PB) {
		u := uuidN(int(next.Add(1)))
		for i := 0; pb.Next(); i++ {
			if err := m.SaveHashKey(u, blobN(1, i)); err != nil {
				b.Error(err)
				return
			}
		}
	})
	st := m.Stats()
	b.ReportMetric(float64(ct.n.Load()-n0)/float64(st.Saves), "TPM-cmds/op")
	b.ReportMetric(float64(st.Saves)/float64(max(st.Commits, 1)), "saves/commit")
}

// BenchmarkStartup10 is manager start-up with 10 records: header read,
// unseal on swtpm, counter read, store open.
func BenchmarkStartup10(b *testing.B) {
	hw, ct := countedHW(b)
	d := newMemDisk(512, 4<<20)
	m := openMgr(b, d, hw, Config{})
	for i := range 10 {
		m.SaveHashKey(uuidN(i), blobN(i, 0))
	}
	m.Close()
	n0 := ct.n.Load()
	ops := 0
	for b.Loop() {
		m, err := Open(d, hw, Config{})
		if err != nil {
			b.Fatal(err)
		}
		m.Close()
		ops++
	}
	b.ReportMetric(float64(ct.n.Load()-n0)/float64(ops), "TPM-cmds/op")
}

func FuzzDecodeHeader(f *testing.F) {
	h := &header{gen: 2, formatCounter: 9, counterIndex: hwtpm.DefaultCounterIndex,
		blob: (&hwtpm.SealedBlob{PCRs: []uint{0}, PCRValues: [][]byte{make([]byte, 32)}, Public: []byte{0, 2, 0, 8}, Private: []byte{0, 1, 9}}).Marshal()}
	h.sign(make([]byte, 32))
	b, _ := h.encode()
	f.Add(b[:200])
	f.Add([]byte(hdrMagic))
	// Version 2: an approval list and a second blob.
	h.list, h.extra = []byte("XVTPMCFG list"), [][]byte{h.blob}
	h.sign(make([]byte, 32))
	b, _ = h.encode()
	f.Add(b[:1200])
	f.Fuzz(func(t *testing.T, p []byte) {
		slot := make([]byte, slotSize)
		copy(slot, p)
		got, err := decodeHeader(slot, 0)
		if err != nil {
			return
		}
		if got.gen%2 != 0 {
			t.Fatalf("generation %d accepted in slot 0", got.gen)
		}
		re, err := got.encode()
		if err != nil || !bytes.Equal(re, slot) {
			t.Fatalf("re-encoding differs: %v", err)
		}
	})
}

// cutDisk loses power after a number of sector writes: the next sector
// is torn (its first half new, like a partly programmed 4 KiB sector) and
// every later write is lost.
type cutDisk struct {
	*memDisk
	left int
	cut  bool
}

var errPowerCut = errors.New("power cut")

func (d *cutDisk) WriteAt(p []byte, sector uint64) error {
	for i := 0; i < len(p); i += d.ss {
		if d.cut {
			return errPowerCut
		}
		s := p[i : i+d.ss]
		if d.left == 0 {
			d.cut = true
			s = s[:d.ss/2]
		}
		d.left--
		d.memDisk.mu.Lock()
		copy(d.data[(sector+uint64(i/d.ss))*uint64(d.ss):], s)
		d.memDisk.mu.Unlock()
	}
	return nil
}

func (d *cutDisk) Flush() error {
	if d.cut {
		return errPowerCut
	}
	return d.memDisk.Flush()
}

// TestPowerCut cuts power at every sector write of a first format
// (header writes and store format) and of a reseal (two header writes):
// the next start must come up with a working manager on that disk, never
// refuse it, and keep what was saved.
func TestPowerCut(t *testing.T) {
	s := swtpmtest.StartSwtpm(t, "")
	hw := hwOf(t, s)
	resealTo := Config{SealPCRs: []uint{7}}
	for _, ss := range []int{512, 4096} {
		for _, phase := range []string{"format", "reseal"} {
			// prepare builds the disk before the operation (each time
			// anew: the saves below move the hardware counter, so an
			// image copied earlier would be a rollback).
			cfg := Config{}
			prepare := func(d *cutDisk) {
				if phase == "reseal" {
					left := d.left
					d.left = 1 << 30
					m := openMgr(t, d, hw, Config{SealPCRs: []uint{}})
					if err := m.SaveHashKey(uuidN(2), blobN(2, 1)); err != nil {
						t.Fatal(err)
					}
					m.Close()
					d.left = left
					cfg = resealTo
				}
			}
			probe := &cutDisk{memDisk: newMemDisk(ss, diskBytes), left: 1 << 30}
			prepare(probe)
			m := openMgr(t, probe, hw, cfg)
			m.Close()
			total := 1<<30 - probe.left
			for k := 0; k <= total; k++ {
				d := &cutDisk{memDisk: newMemDisk(ss, diskBytes), left: k}
				prepare(d)
				if m, err := Open(d, hw, cfg); err == nil {
					m.Close()
				}
				m, err := Open(d.memDisk, hw, cfg)
				if err != nil {
					t.Fatalf("%d-byte sectors, %s cut after %d of %d sector writes: restart: %v", ss, phase, k, total, err)
				}
				if phase == "reseal" {
					mustLoad(t, m, uuidN(2), blobN(2, 1))
				}
				if err := m.SaveHashKey(uuidN(1), blobN(1, k)); err != nil {
					t.Fatalf("%s cut after %d: save: %v", phase, k, err)
				}
				m.Close()
				m = openMgr(t, d.memDisk, hw, cfg)
				mustLoad(t, m, uuidN(1), blobN(1, k))
				if phase == "reseal" {
					// Both slots now carry the key sealed to the new selection.
					for slot := range headerSlots {
						buf := make([]byte, slotSize)
						d.memDisk.ReadAt(buf, uint64(slot*slotSize/ss))
						h, err := decodeHeader(buf, slot)
						if err != nil {
							t.Fatalf("reseal cut after %d: slot %d: %v", k, slot, err)
						}
						b, _ := hwtpm.UnmarshalSealedBlob(h.blob)
						if !slices.Equal(b.PCRs, []uint{7}) {
							t.Fatalf("reseal cut after %d: slot %d sealed to %v", k, slot, b.PCRs)
						}
					}
				}
				m.Close()
			}
			t.Logf("%d-byte sectors, %s: %d power cuts recovered", ss, phase, total+1)
		}
	}
}
