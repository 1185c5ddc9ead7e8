package manager

import (
	"bytes"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/xenvtpm/xenvtpm/mgrdomain/hwtpm"
	"github.com/xenvtpm/xenvtpm/mgrdomain/proto"
	"github.com/xenvtpm/xenvtpm/mgrdomain/store"
	"github.com/xenvtpm/xenvtpm/ratelimit"
)

// Saves and the hardware's NV memory.
//
// Every group commit costs one hardware NV write (the counter increment),
// and hardware TPMs wear out after a finite number of them. One committer
// goroutine (started by the first waiting save, gone when none waits)
// turns saves into group commits under three rules:
//
//   - One pending save per vTPM: a save from a vTPM that already has one
//     waiting replaces its state (the newest state wins) and its caller
//     waits for the same commit. A batch takes every waiting vTPM in
//     order of arrival (at most maxBatch), so no vTPM's flood can push
//     another's save back: it waits for the commit in flight and then
//     goes in the next one.
//   - A cap on NV writes (Config.NVWriteRate, NVWriteBurst; a token
//     bucket): a batch starts only when a write is allowed, and saves
//     arriving meanwhile join it. A vTPM's share is half the burst at once
//     and half the rate after; a batch made only of vTPMs past their share
//     may not use the last half of the burst, which stays for the others.
//     So while one vTPM floods, another's save still finds a write allowed
//     and does not wait for the next one.
//   - Back-pressure: when the hardware answers an increment with "retry
//     later" (hwtpm.IsBusy: TPM_RC_NV_RATE and the like, TPM 1.2's
//     TPM_RETRY), the manager retries with back-off until the oldest save
//     of the batch has waited Config.BusyAfter, then answers the batch
//     TPM_RETRY (proto.ErrBusy). The store then binds one more than the
//     hardware counter, which start-up accepts; that increment is made
//     before the next commit, so the gap never grows. Only other
//     increment errors stop all saves until a restart.
//
// A save that waited Config.BusyAfter without a write allowed (a cap too
// low for the load, or back-pressure that lasts) is answered TPM_RETRY
// too, never acknowledged.

// maxBatch bounds how many vTPMs one group commit takes; the rest go in
// the next, first come first served. It is a host's worth of vTPMs: every
// write the cap allows should acknowledge every vTPM waiting for one, or a
// host whose vTPMs save together (a boot storm) gets TPM_RETRY where one
// write would have done. The bound only keeps one commit's disk write
// finite.
const maxBatch = 1024

// clock is the time the committer uses; tests substitute a fake one.
// Waits end at a moment, not after a duration: the committer computes
// when a write is allowed from the Now it read, and a duration counted
// from a later moment would overshoot by whatever ran in between.
type clock interface {
	Now() time.Time
	At(t time.Time) <-chan time.Time // fires once t has come
}

type realClock struct{}

func (realClock) Now() time.Time                  { return time.Now() }
func (realClock) At(t time.Time) <-chan time.Time { return time.After(time.Until(t)) }

// newManager makes a Manager with its save scheduler; Open then opens
// the disk.
func newManager(dev store.Device, hw Hardware, cfg Config) *Manager {
	if cfg.BusyAfter <= 0 {
		cfg.BusyAfter = DefaultBusyAfter
	}
	clk := cfg.clock
	if clk == nil {
		clk = realClock{}
	}
	m := &Manager{hw: hw, cfg: cfg, clk: clk, dev: dev,
		pending: map[store.UUID]*saveReq{}, shares: map[store.UUID]*ratelimit.Bucket{},
		groups: map[uint32]*group{}, connected: map[store.UUID]int{},
		wake: make(chan struct{}, 1), stop: make(chan struct{})}
	m.idle = sync.NewCond(&m.mu)
	if b := cfg.NVWriteBurst; b > 0 && !cfg.NVWriteRate.Unlimited() {
		m.nv = ratelimit.NewBucket(b, cfg.NVWriteRate, clk.Now())
		m.reserve = float64(b / 2)
		m.shareRate = ratelimit.Rate{N: cfg.NVWriteRate.N, Per: 2 * cfg.NVWriteRate.Per}
	}
	return m
}

// SaveHashKey stores the blob durably and increments the hardware counter
// before returning, so an acknowledged save survives a power cut and an
// older disk is refused afterwards. Saves are committed in groups, one
// store commit and one NV increment each, under the rules above. A save
// that cannot be made durable in time is answered with an error wrapping
// proto.ErrBusy (TPM_RETRY): nothing of it is acknowledged.
func (m *Manager) SaveHashKey(uuid [16]byte, blob []byte) error {
	if len(blob) > store.MaxBlob {
		return fmt.Errorf("manager: blob of %d bytes exceeds %d", len(blob), store.MaxBlob)
	}
	done := make(chan error, 1)
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return ErrClosed
	}
	if r := m.pending[uuid]; r != nil {
		r.blob = bytes.Clone(blob)
		r.done = append(r.done, done)
		m.stats.Coalesced++
	} else {
		m.pending[uuid] = &saveReq{uuid: uuid, blob: bytes.Clone(blob), since: m.clk.Now(), done: []chan error{done}}
		m.order = append(m.order, uuid)
	}
	if !m.running {
		m.running = true
		go m.commitLoop()
	} else {
		select {
		case m.wake <- struct{}{}:
		default:
		}
	}
	m.mu.Unlock()
	return <-done
}

// commitLoop is the committer: it runs while saves wait.
func (m *Manager) commitLoop() {
	m.mu.Lock()
	defer m.mu.Unlock()
	defer m.idle.Broadcast()
	for len(m.order) > 0 {
		now := m.clk.Now()
		switch {
		case m.closed:
			m.answerAll(ErrClosed)
			continue
		case m.broken != nil:
			m.answerAll(m.broken)
			continue
		}
		m.expire(now)
		if len(m.order) == 0 {
			break
		}
		if wait := m.writeWait(now); wait > 0 {
			wait = min(wait, m.firstExpiry(now))
			m.mu.Unlock()
			select {
			case <-m.clk.At(now.Add(wait)):
			case <-m.wake:
			case <-m.stop:
			}
			m.mu.Lock()
			continue
		}
		if m.owed {
			// The last commit's increment is still to be made: it comes
			// first, as a write of its own.
			deadline := m.pending[m.order[0]].since.Add(m.cfg.BusyAfter)
			m.mu.Unlock()
			// Under cmu, so a management commit does not make the same
			// increment meanwhile: owed is looked at again, and cleared
			// before cmu is let go.
			m.cmu.Lock()
			m.mu.Lock()
			still := m.owed
			m.mu.Unlock()
			var err error
			if still {
				err = m.increment(deadline)
			}
			m.mu.Lock()
			switch {
			case !still:
			case err == nil:
				m.owed = false
				m.wrote(m.clk.Now())
			case hwtpm.IsBusy(err):
				m.pressure(err) // expire answers those that waited long enough
			default:
				m.broken = fmt.Errorf("manager: hardware counter increment: %w (restart the manager)", err)
			}
			m.cmu.Unlock()
			continue
		}
		batch := m.take(now)
		m.mu.Unlock()
		m.cmu.Lock()
		m.commitBatch(batch)
		m.cmu.Unlock()
		m.mu.Lock()
	}
	m.running = false
}

// answerAll answers every waiting save with err (mu held).
func (m *Manager) answerAll(err error) {
	for _, u := range m.order {
		answer(m.pending[u], err)
		delete(m.pending, u)
	}
	m.order = m.order[:0]
}

func answer(r *saveReq, err error) {
	for _, d := range r.done {
		d <- err
	}
}

// expire answers TPM_RETRY to the saves that have waited BusyAfter (mu
// held).
func (m *Manager) expire(now time.Time) {
	keep := m.order[:0]
	for _, u := range m.order {
		r := m.pending[u]
		if waited := now.Sub(r.since); waited >= m.cfg.BusyAfter {
			m.stats.Busy += uint64(len(r.done))
			answer(r, fmt.Errorf("%w: no hardware NV write in %v (the NV write cap, or the hardware TPM asking to retry later)", proto.ErrBusy, waited.Round(time.Millisecond)))
			delete(m.pending, u)
			continue
		}
		keep = append(keep, u)
	}
	m.order = keep
}

// firstExpiry is the time until the oldest waiting save expires (mu held).
func (m *Manager) firstExpiry(now time.Time) time.Duration {
	first := m.cfg.BusyAfter
	for _, u := range m.order {
		first = min(first, m.pending[u].since.Add(m.cfg.BusyAfter).Sub(now))
	}
	return max(first, time.Millisecond)
}

// light reports whether a vTPM is within its share of the NV writes
// (mu held).
func (m *Manager) light(u store.UUID, now time.Time) bool {
	b := m.shares[u]
	return m.reserve == 0 || b == nil || b.Has(now)
}

// writeWait is how long until the next NV write is allowed for the
// waiting saves: any write if one of their vTPMs is within its share,
// else only one above the reserve (mu held).
func (m *Manager) writeWait(now time.Time) time.Duration {
	if m.nv == nil {
		return 0
	}
	floor := m.reserve
	for _, u := range m.order {
		if m.light(u, now) {
			floor = 0
			break
		}
	}
	return m.nv.Until(now, floor+1)
}

// take removes the next batch from the waiting saves: vTPMs within their
// share first, each group in order of arrival (mu held).
func (m *Manager) take(now time.Time) []*saveReq {
	var batch []*saveReq
	for _, wantLight := range []bool{true, false} {
		for _, u := range m.order {
			if len(batch) == maxBatch || m.pending[u] == nil || m.light(u, now) != wantLight {
				continue
			}
			batch = append(batch, m.pending[u])
			delete(m.pending, u)
		}
	}
	// Those left keep their places.
	keep := m.order[:0]
	for _, u := range m.order {
		if m.pending[u] != nil {
			keep = append(keep, u)
		}
	}
	m.order = keep
	return batch
}

// wrote accounts one hardware NV write (mu held).
func (m *Manager) wrote(now time.Time) {
	m.stats.HWWrites++
	m.nv.Spend(now)
	if m.pressured {
		m.pressured = false
		m.logf("manager: the hardware TPM takes NV writes again")
	}
	for u, b := range m.shares {
		if b.Tokens(now) >= b.Burst() {
			delete(m.shares, u) // back within its share: forget it
		}
	}
}

// pressure notes the hardware's back-pressure, logged once per episode
// (mu held).
func (m *Manager) pressure(err error) {
	if !m.pressured {
		m.pressured = true
		m.logf("manager: the hardware TPM asks to retry NV writes later (%v): saves wait up to %v, then are answered TPM_RETRY; the manager goes on", err, m.cfg.BusyAfter)
	}
}

// increment makes one hardware NV increment, retrying with back-off
// while the hardware asks to retry later, until deadline (or Close).
func (m *Manager) increment(deadline time.Time) error {
	wait := 10 * time.Millisecond
	for {
		err := m.hw.IncrementCounter()
		if err == nil || !hwtpm.IsBusy(err) {
			return err
		}
		now := m.clk.Now()
		if !deadline.After(now) {
			return err
		}
		m.mu.Lock()
		m.pressure(err)
		m.mu.Unlock()
		select {
		case <-m.clk.At(now.Add(min(wait, deadline.Sub(now)))):
		case <-m.stop:
			return err
		}
		wait = min(2*wait, time.Second)
	}
}

// commitBatch commits one group of saves and answers each.
func (m *Manager) commitBatch(batch []*saveReq) {
	var b store.Batch
	keep := batch[:0]
	oldest := m.clk.Now()
	for _, r := range batch {
		rec, err := m.st.Get(r.uuid)
		switch {
		case errors.Is(err, store.ErrNotFound) && m.cfg.NoAutocreate:
			answer(r, fmt.Errorf("%w: %x is not a vTPM of this manager (autocreate=0: create it with `xenvtpm vtpm add`)", proto.ErrNotFound, r.uuid))
			continue
		case errors.Is(err, store.ErrNotFound):
			rec = store.Record{Group: m.cfg.AutocreateGroup}
		case err != nil:
			answer(r, fmt.Errorf("manager: reading record %x: %w", r.uuid, err))
			continue
		}
		m.mu.Lock()
		err = m.usableGroup(r.uuid, rec.Group)
		m.mu.Unlock()
		if err != nil {
			answer(r, err)
			continue
		}
		rec.Blob = r.blob
		b.Put(r.uuid, rec)
		keep = append(keep, r)
		if r.since.Before(oldest) {
			oldest = r.since
		}
	}
	batch = keep
	if len(batch) == 0 {
		return
	}
	answerBatch := func(err error) {
		for _, r := range batch {
			answer(r, err)
		}
	}
	if err := m.st.Commit(&b); err != nil {
		if errors.Is(err, store.ErrNoSpace) {
			err = fmt.Errorf("%w: %w", proto.ErrNoSpace, err)
		} else if errors.Is(err, store.ErrBroken) {
			m.mu.Lock()
			if m.broken == nil {
				m.broken = fmt.Errorf("manager: store commit: %w", err)
			}
			m.mu.Unlock()
		}
		answerBatch(fmt.Errorf("manager: store commit: %w", err))
		return
	}
	m.mu.Lock()
	m.stats.Commits++
	m.mu.Unlock()
	// The disk now binds c+1. Until the hardware says c+1 too, a power
	// cut leaves the disk one ahead, which start-up accepts; the save is
	// only acknowledged after the increment.
	err := m.increment(oldest.Add(m.cfg.BusyAfter))
	m.mu.Lock()
	defer m.mu.Unlock()
	waiters := uint64(0)
	for _, r := range batch {
		waiters += uint64(len(r.done))
	}
	switch {
	case err == nil:
		now := m.clk.Now()
		m.wrote(now)
		if m.reserve > 0 {
			for _, r := range batch {
				s := m.shares[r.uuid]
				if s == nil {
					s = ratelimit.NewBucket(int(m.reserve), m.shareRate, now)
					m.shares[r.uuid] = s
				}
				s.Spend(now)
			}
		}
		m.stats.Saves += waiters
		answerBatch(nil)
	case hwtpm.IsBusy(err):
		m.owed = true
		m.pressure(err)
		m.stats.Busy += waiters
		answerBatch(fmt.Errorf("%w: the hardware TPM asks to retry NV writes later (%v); the save is not acknowledged", proto.ErrBusy, err))
	default:
		err = fmt.Errorf("manager: hardware counter increment after commit: %w (restart the manager)", err)
		if m.broken == nil {
			m.broken = err
		}
		answerBatch(err)
	}
}
