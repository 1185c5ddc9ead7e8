package manager

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-tpm/tpm2"
	"github.com/google/go-tpm/tpm2/transport"

	"github.com/xenvtpm/xenvtpm/mgrdomain/hwtpm"
	"github.com/xenvtpm/xenvtpm/mgrdomain/internal/swtpmtest"
	"github.com/xenvtpm/xenvtpm/mgrdomain/proto"
	"github.com/xenvtpm/xenvtpm/ratelimit"
)

// nvHW is sealHW made safe for concurrent use, counting its NV writes and
// able to hold each increment at a gate or answer it "retry later".
type nvHW struct {
	mu      sync.Mutex
	hw      sealHW
	writes  int           // successful increments
	busy    int           // the next busy increments answer busyErr
	busyErr error         // what a busy increment answers
	entered chan struct{} // if set: told when an increment starts
	gate    chan struct{} // if set: each increment waits for a token
}

func (h *nvHW) Seal(key []byte, pcrs []uint) (*hwtpm.SealedBlob, error) { return h.hw.Seal(key, pcrs) }
func (h *nvHW) Unseal(b *hwtpm.SealedBlob) ([]byte, error)              { return h.hw.Unseal(b) }
func (h *nvHW) Reseal(key []byte, pcrs []uint) (*hwtpm.SealedBlob, error) {
	return h.hw.Reseal(key, pcrs)
}
func (h *nvHW) Retire(b *hwtpm.SealedBlob) error   { return h.hw.Retire(b) }
func (h *nvHW) CounterIndex() uint32               { return h.hw.CounterIndex() }
func (h *nvHW) GetRandom(n int) ([]byte, error)    { return h.hw.GetRandom(n) }
func (h *nvHW) PCRRead(i uint32) ([20]byte, error) { return h.hw.PCRRead(i) }

func (h *nvHW) ReadCounter() (uint64, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.hw.ReadCounter()
}

func (h *nvHW) CreateCounter() (uint64, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.hw.CreateCounter()
}

func (h *nvHW) IncrementCounter() error {
	if h.entered != nil {
		h.entered <- struct{}{}
	}
	if h.gate != nil {
		<-h.gate
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.busy > 0 {
		h.busy--
		return h.busyErr
	}
	h.writes++
	return h.hw.IncrementCounter()
}

func (h *nvHW) setBusy(n int, err error) {
	h.mu.Lock()
	h.busy, h.busyErr = n, err
	h.mu.Unlock()
}

func (h *nvHW) nvWrites() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.writes
}

// nvRate is what hwtpm returns for a TPM 2.0 that keeps answering
// TPM2_NV_Increment with TPM_RC_NV_RATE past its retry budget.
var nvRate = fmt.Errorf("hwtpm: TPM2_NV_Increment(0x0100c1c0): %w", tpm2.TPMRCNVRate)

// fakeClock is a clock that moves only when told.
type fakeClock struct {
	mu      sync.Mutex
	now     time.Time
	waiters []fakeWaiter
	parked  chan struct{} // a token each time someone starts waiting

	// The clock moves by jump right after the jumpAt-th reading from now
	// (0: never), as if time passed between reading it and waiting.
	jumpAt int
	jump   time.Duration
}

type fakeWaiter struct {
	at time.Time
	ch chan time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Unix(1_000_000, 0), parked: make(chan struct{}, 100)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	now := c.now
	c.jumpAt--
	jump := c.jumpAt == 0
	c.mu.Unlock()
	if jump {
		c.Advance(c.jump)
	}
	return now
}

// jumpAfter makes the clock move by d right after its n-th reading from now.
func (c *fakeClock) jumpAfter(n int, d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.jumpAt, c.jump = n, d
}

func (c *fakeClock) At(t time.Time) <-chan time.Time {
	c.mu.Lock()
	ch := make(chan time.Time, 1)
	if !t.After(c.now) {
		ch <- c.now
	} else {
		c.waiters = append(c.waiters, fakeWaiter{at: t, ch: ch})
	}
	c.mu.Unlock()
	select {
	case c.parked <- struct{}{}:
	default:
	}
	return ch
}

// Advance moves the clock and fires the waits that are due.
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	keep := c.waiters[:0]
	for _, w := range c.waiters {
		if !w.at.After(c.now) {
			w.ch <- c.now
			continue
		}
		keep = append(keep, w)
	}
	c.waiters = keep
}

// drain forgets earlier parking tokens.
func (c *fakeClock) drain() {
	for {
		select {
		case <-c.parked:
		default:
			return
		}
	}
}

func saveAsync(m *Manager, u [16]byte, blob []byte) chan error {
	ch := make(chan error, 1)
	go func() { ch <- m.SaveHashKey(u, blob) }()
	return ch
}

func notYet(t *testing.T, ch chan error, what string) {
	t.Helper()
	select {
	case err := <-ch:
		t.Fatalf("%s answered (%v) before it could be", what, err)
	default:
	}
}

// One vTPM flooding SAVEHASHKEY (from several frontends, saves arriving
// during every group commit) must not hold another vTPM's save back: it
// is answered as soon as its own group commit is done. (Before, the first
// saver led every following group commit itself and returned only once no
// save was waiting at the end of one: under a flood, never.)
func TestFloodDoesNotHoldOthersBack(t *testing.T) {
	hw := &nvHW{entered: make(chan struct{}, 1000), gate: make(chan struct{})}
	m := openMgr(t, newMemDisk(512, diskBytes), hw, Config{})
	var flood []chan error
	defer func() {
		close(hw.gate) // every increment goes through from now on
		for _, ch := range flood {
			if err := <-ch; err != nil {
				t.Error(err)
			}
		}
		m.Close()
	}()
	other := saveAsync(m, uuidN(2), blobN(2, 1))
	<-hw.entered // its group commit is at the NV increment
	for f := range 4 {
		flood = append(flood, saveAsync(m, uuidN(1), blobN(1, f)))
	}
	time.Sleep(5 * time.Millisecond) // the flood's saves are waiting
	hw.gate <- struct{}{}
	select {
	case err := <-other:
		if err != nil {
			t.Fatal(err)
		}
	case <-hw.entered:
		// The flood's group commit started: the other save was answered
		// before it.
		select {
		case err := <-other:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("the other vTPM's save is held back by the flood's group commit")
		}
	}
	mustLoad(t, m, uuidN(2), blobN(2, 1))
}

// Saves of one vTPM waiting together are one write with the newest state.
func TestSavesOfOneVTPMCoalesce(t *testing.T) {
	hw := &nvHW{entered: make(chan struct{}, 100), gate: make(chan struct{})}
	m := openMgr(t, newMemDisk(512, diskBytes), hw, Config{})
	defer m.Close()
	first := saveAsync(m, uuidN(9), blobN(9, 0))
	<-hw.entered // its commit is at the increment: the next saves wait
	var later []chan error
	for v := 1; v <= 5; v++ {
		later = append(later, saveAsync(m, uuidN(1), blobN(1, v)))
		for m.Stats().Waiting < v {
			time.Sleep(time.Millisecond) // in order: the newest is the last
		}
	}
	hw.gate <- struct{}{}
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	<-hw.entered
	hw.gate <- struct{}{}
	for _, ch := range later {
		if err := <-ch; err != nil {
			t.Fatal(err)
		}
	}
	mustLoad(t, m, uuidN(1), blobN(1, 5))
	if st := m.Stats(); hw.nvWrites() != 2 || st.Saves != 6 || st.Coalesced != 4 {
		t.Fatalf("%d NV writes, stats %+v; want 2 writes for 6 saves, 4 coalesced", hw.nvWrites(), st)
	}
}

// The cap holds however hard the vTPMs push: at most burst + rate × time
// NV writes, every save acknowledged, saves arriving meanwhile grouped.
func TestNVWriteCap(t *testing.T) {
	hw := &nvHW{}
	const burst = 4
	rate := ratelimit.Rate{N: 50, Per: time.Second}
	m := openMgr(t, newMemDisk(512, diskBytes), hw, Config{NVWriteRate: rate, NVWriteBurst: burst})
	defer m.Close()
	t0 := time.Now()
	var wg sync.WaitGroup
	var saves atomic.Int64
	for w := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; time.Since(t0) < 400*time.Millisecond; i++ {
				if err := m.SaveHashKey(uuidN(w%9), blobN(w, i)); err != nil {
					t.Error(err)
					return
				}
				saves.Add(1)
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(t0)
	limit := burst + int(rate.PerSecond()*elapsed.Seconds()) + 1
	st := m.Stats()
	t.Logf("%d saves in %v: %d NV writes (cap %d), %d coalesced", saves.Load(), elapsed.Round(time.Millisecond), hw.nvWrites(), limit, st.Coalesced)
	if hw.nvWrites() > limit {
		t.Fatalf("%d NV writes in %v, cap %d + %v allows %d", hw.nvWrites(), elapsed, burst, rate, limit)
	}
	if st.HWWrites != uint64(hw.nvWrites()) || st.Saves != uint64(saves.Load()) {
		t.Fatalf("stats %+v against %d writes, %d saves", st, hw.nvWrites(), saves.Load())
	}
	if c, _ := hw.ReadCounter(); c != st.Counter {
		t.Fatalf("hardware %d, store %d", c, st.Counter)
	}
}

// A vTPM past its share of the writes leaves the last half of the burst
// to the others: while it floods, another vTPM's save finds a write
// allowed at once, and the flooder waits for the refill.
func TestFairShareReserve(t *testing.T) {
	clk := newFakeClock()
	hw := &nvHW{}
	// burst 4: reserve 2; a vTPM's share is 2 at once, then 1 per 2 s.
	m := openMgr(t, newMemDisk(512, diskBytes), hw, Config{clock: clk, NVWriteBurst: 4, NVWriteRate: ratelimit.Rate{N: 1, Per: time.Second}})
	defer m.Close()
	flood, other := uuidN(1), uuidN(2)
	for v := range 2 { // within its share: at once
		if err := m.SaveHashKey(flood, blobN(1, v)); err != nil {
			t.Fatal(err)
		}
	}
	clk.drain()
	third := saveAsync(m, flood, blobN(1, 2))
	<-clk.parked // the committer waits: 2 writes left, both reserved
	notYet(t, third, "a save past the vTPM's share, with only the reserve left,")
	if err := m.SaveHashKey(other, blobN(2, 0)); err != nil { // no time passes
		t.Fatal(err)
	}
	if err := <-third; err != nil { // it rode along: no extra write
		t.Fatal(err)
	}
	if n := hw.nvWrites(); n != 3 {
		t.Fatalf("%d NV writes, want 3", n)
	}
	// One write left, reserved: the flooder waits for two more to refill.
	clk.drain()
	fourth := saveAsync(m, flood, blobN(1, 3))
	<-clk.parked
	clk.Advance(time.Second)
	notYet(t, fourth, "the flooder's save one second later")
	clk.drain()
	clk.Advance(time.Second)
	if err := <-fourth; err != nil {
		t.Fatal(err)
	}
	mustLoad(t, m, flood, blobN(1, 3))
	mustLoad(t, m, other, blobN(2, 0))
	if n := hw.nvWrites(); n != 4 {
		t.Fatalf("%d NV writes, want 4", n)
	}
}

// The hardware answering "retry later" (TPM_RC_NV_RATE) is back-pressure:
// retried, and when it lasts, the save is answered TPM_RETRY (not
// acknowledged) while the manager goes on; it never stops saving for
// everyone. Before, the first such answer stopped all saves until a
// restart.
func TestHardwareBackPressure(t *testing.T) {
	hw := &nvHW{}
	d := newMemDisk(512, diskBytes)
	var logs strings.Builder
	var logMu sync.Mutex
	logf := func(f string, a ...any) { logMu.Lock(); fmt.Fprintf(&logs, f+"\n", a...); logMu.Unlock() }
	// BusyAfter leaves the short burst below (10+20+40 ms of back-off)
	// ample room on a loaded machine.
	m := openMgr(t, d, hw, Config{BusyAfter: time.Second, Logf: logf})
	if err := m.SaveHashKey(uuidN(1), blobN(1, 0)); err != nil {
		t.Fatal(err)
	}
	// A short burst of NV_RATE is waited out.
	hw.setBusy(3, nvRate)
	if err := m.SaveHashKey(uuidN(1), blobN(1, 1)); err != nil {
		t.Fatalf("save through 3 × TPM_RC_NV_RATE: %v", err)
	}
	// One that lasts: TPM_RETRY, through the wire protocol too.
	hw.setBusy(1<<30, nvRate)
	err := m.SaveHashKey(uuidN(1), blobN(1, 2))
	if !errors.Is(err, proto.ErrBusy) {
		t.Fatalf("save while the hardware keeps answering NV_RATE = %v, want proto.ErrBusy", err)
	}
	h := &proto.Handler{Backend: m}
	req, _ := proto.EncodeSaveHashKey(blobN(2, 0))
	if _, err := proto.ParseResponse(h.Handle(req, proto.PeerInfo{UUID: uuidN(2)}), proto.TagVTPMReq); !proto.IsBusy(err) {
		t.Fatalf("wire answer while the hardware keeps answering NV_RATE = %v, want TPM_RETRY", err)
	}
	if st := m.Stats(); st.Busy != 2 || !st.Owed {
		t.Fatalf("stats %+v, want 2 busy, the counter owed", st)
	}
	// The hardware relents: the next saves work, the counter catches up.
	hw.setBusy(0, nil)
	for v := 3; v < 5; v++ {
		if err := m.SaveHashKey(uuidN(1), blobN(1, v)); err != nil {
			t.Fatalf("save after the hardware relented: %v", err)
		}
	}
	mustLoad(t, m, uuidN(1), blobN(1, 4))
	st := m.Stats()
	if c, _ := hw.ReadCounter(); c != st.Counter || st.Owed {
		t.Fatalf("hardware %d, store %d, owed %v", c, st.Counter, st.Owed)
	}
	logMu.Lock()
	out := logs.String()
	logMu.Unlock()
	if !strings.Contains(out, "retry NV writes later") || !strings.Contains(out, "takes NV writes again") {
		t.Fatalf("back-pressure not logged: %q", out)
	}
	// Closed while the counter is owed: start-up catches up.
	hw.setBusy(1<<30, nvRate)
	if err := m.SaveHashKey(uuidN(3), blobN(3, 0)); !errors.Is(err, proto.ErrBusy) {
		t.Fatalf("save = %v, want proto.ErrBusy", err)
	}
	m.Close()
	hw.setBusy(0, nil)
	m = openMgr(t, d, hw, Config{})
	defer m.Close()
	mustLoad(t, m, uuidN(1), blobN(1, 4))
	if c, _ := hw.ReadCounter(); c != m.Stats().Counter {
		t.Fatalf("after restart: hardware %d, store %d", c, m.Stats().Counter)
	}
}

// A save waiting for a write the cap does not allow yet is answered
// TPM_RETRY after BusyAfter, and ErrClosed at Close, never left hanging.
func TestWaitingSaveBoundedAndClosed(t *testing.T) {
	clk := newFakeClock()
	hw := &nvHW{}
	m := openMgr(t, newMemDisk(512, diskBytes), hw, Config{clock: clk, BusyAfter: 10 * time.Second,
		NVWriteBurst: 1, NVWriteRate: ratelimit.Rate{N: 1, Per: time.Minute}})
	if err := m.SaveHashKey(uuidN(1), blobN(1, 0)); err != nil {
		t.Fatal(err)
	}
	clk.drain()
	second := saveAsync(m, uuidN(2), blobN(2, 0))
	<-clk.parked
	clk.Advance(10 * time.Second)
	if err := <-second; !errors.Is(err, proto.ErrBusy) {
		t.Fatalf("save after 10 s without a write allowed = %v, want proto.ErrBusy", err)
	}
	clk.drain()
	third := saveAsync(m, uuidN(3), blobN(3, 0))
	<-clk.parked
	m.Close()
	if err := <-third; !errors.Is(err, ErrClosed) {
		t.Fatalf("save waiting at Close = %v, want ErrClosed", err)
	}
	if n := hw.nvWrites(); n != 1 {
		t.Fatalf("%d NV writes, want 1", n)
	}
}

// retry12 answers TPM_IncrementCounter with TPM_RETRY while n > 0, as a
// busy TPM 1.2 does, and passes everything else to the TPM.
type retry12 struct {
	tr transport.TPM
	n  atomic.Int64
}

func (r *retry12) Send(cmd []byte) ([]byte, error) {
	if len(cmd) >= 10 && binary.BigEndian.Uint32(cmd[6:]) == 0xDD && r.n.Add(-1) >= 0 {
		return []byte{0x00, 0xC4, 0, 0, 0, 10, 0, 0, 0x08, 0x00}, nil
	}
	return r.tr.Send(cmd)
}

// TPM 1.2's TPM_RETRY is back-pressure too.
func TestTPM12Retry(t *testing.T) {
	s := swtpmtest.StartSwtpm12(t, owner12, srk12)
	rt := &retry12{tr: s.TPM()}
	o, _ := hwtpm.ParseAuth("text:" + owner12)
	k, _ := hwtpm.ParseAuth("text:" + srk12)
	hw, err := hwtpm.Open12(rt, hwtpm.Config{OwnerAuth: o, SRKAuth: k})
	if err != nil {
		t.Fatal(err)
	}
	m := openMgr(t, newMemDisk(512, diskBytes), hw, Config{BusyAfter: 2 * time.Second})
	defer m.Close()
	if err := m.SaveHashKey(uuidN(1), blobN(1, 0)); err != nil {
		t.Fatal(err)
	}
	rt.n.Store(2)
	if err := m.SaveHashKey(uuidN(1), blobN(1, 1)); err != nil {
		t.Fatalf("save through 2 × TPM_RETRY: %v", err)
	}
	rt.n.Store(1 << 30)
	if err := m.SaveHashKey(uuidN(1), blobN(1, 2)); !errors.Is(err, proto.ErrBusy) {
		t.Fatalf("save while the TPM 1.2 keeps answering TPM_RETRY = %v, want proto.ErrBusy", err)
	}
	rt.n.Store(0)
	if err := m.SaveHashKey(uuidN(1), blobN(1, 3)); err != nil {
		t.Fatalf("save after the TPM relented: %v", err)
	}
	mustLoad(t, m, uuidN(1), blobN(1, 3))
	if c, _ := hw.ReadCounter(); c != m.Stats().Counter {
		t.Fatalf("hardware %d, store %d", c, m.Stats().Counter)
	}
}

// A save waiting for the write the cap allows next is committed once that
// moment has come, even when the clock moved on between the committer's
// reading it and its starting to wait. (When the committer waited for a
// duration from that reading, the wait ended that much after the moment,
// and a test that moved a fake clock by exactly the wait hung one run in
// ten.)
func TestWriteWaitEndsAtItsMoment(t *testing.T) {
	clk := newFakeClock()
	hw := &nvHW{}
	m := openMgr(t, newMemDisk(512, diskBytes), hw, Config{clock: clk, NVWriteBurst: 1, NVWriteRate: ratelimit.Rate{N: 1, Per: 5 * time.Second}})
	defer m.Close()
	if err := m.SaveHashKey(uuidN(0), blobN(0, 0)); err != nil {
		t.Fatal(err)
	}
	// Readings: the save's arrival, then the committer's, after which the
	// clock reaches the moment the next write is allowed.
	clk.jumpAfter(2, 5*time.Second)
	select {
	case err := <-saveAsync(m, uuidN(1), blobN(1, 0)):
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the save was not committed though the moment its write was allowed had come")
	}
	if n := hw.nvWrites(); n != 2 {
		t.Fatalf("%d NV writes, want 2", n)
	}
}

// Every vTPM of a host saving at once, while the NV write cap allows one
// write, is one group commit: one hardware NV write acknowledges all of
// them. (With batches of at most 64 vTPMs, a thousand vTPMs saving at once
// needed 16 writes, and under the default cap most of them were answered
// TPM_RETRY after waiting 10 s.)
func TestGroupCommitAHost(t *testing.T) {
	clk := newFakeClock()
	hw := &nvHW{}
	m := openMgr(t, newMemDisk(512, 8*diskBytes), hw, Config{clock: clk, NVWriteBurst: 1, NVWriteRate: ratelimit.Rate{N: 1, Per: 5 * time.Second}})
	defer m.Close()
	// Spend the one write the cap allows now.
	if err := m.SaveHashKey(uuidN(0), blobN(0, 0)); err != nil {
		t.Fatal(err)
	}
	before := hw.nvWrites()

	const n = 1000
	done := make([]chan error, n)
	for i := range n {
		done[i] = saveAsync(m, uuidN(1+i), blobN(1+i, 0))
	}
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(time.Millisecond) {
		m.mu.Lock()
		waiting := len(m.order)
		m.mu.Unlock()
		if waiting == n {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d saves waiting", waiting, n)
		}
	}
	clk.Advance(5 * time.Second)
	for i, ch := range done {
		select {
		case err := <-ch:
			if err != nil {
				t.Fatalf("save %d: %v", i, err)
			}
		case <-time.After(20 * time.Second):
			t.Fatalf("save %d not answered after the write the cap allowed", i)
		}
	}
	if w := hw.nvWrites() - before; w != 1 {
		t.Errorf("%d hardware NV writes for %d saves waiting together, want 1", w, n)
	}
	for _, i := range []int{1, n / 2, n} {
		if got, err := m.LoadHashKey(uuidN(i)); err != nil || !bytes.Equal(got, blobN(i, 0)) {
			t.Errorf("vTPM %d loads %x, %v", i, got, err)
		}
	}
}
