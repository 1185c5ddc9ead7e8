package hwtpm

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/google/go-tpm/tpm2"
)

// counterAttrs are the NV counter's attributes: TPM_NT_COUNTER, read and
// incremented with the index's own (empty) authValue, noDA. Not orderly:
// an orderly counter's RAM copy jumps ahead after every unorderly
// shutdown, which would look like a rollback after each power loss.
// Anyone who can send commands to the hardware TPM can increment it; that
// makes the manager refuse its disk (denial of service, the same power as
// TPM2_Clear), but can never make an old disk acceptable: the counter
// only moves forward.
var counterAttrs = tpm2.TPMANV{
	NT:        tpm2.TPMNTCounter,
	AuthWrite: true,
	AuthRead:  true,
	NoDA:      true,
}

func (t *TPM) nvHandle() tpm2.TPMHandle { return tpm2.TPMHandle(t.cfg.CounterIndex) }

// nvAuth is the index authorising itself with its empty authValue.
func (t *TPM) nvAuth() (tpm2.AuthHandle, tpm2.NamedHandle, error) {
	if len(t.nvName.Buffer) == 0 {
		rsp, err := tpm2.NVReadPublic{NVIndex: t.nvHandle()}.Execute(t.tr)
		if err != nil {
			if errors.Is(err, tpm2.TPMRCHandle) {
				return tpm2.AuthHandle{}, tpm2.NamedHandle{}, fmt.Errorf("%w at index %#08x", ErrNoCounter, t.cfg.CounterIndex)
			}
			return tpm2.AuthHandle{}, tpm2.NamedHandle{}, fmt.Errorf("hwtpm: TPM2_NV_ReadPublic(%#08x): %w", t.cfg.CounterIndex, err)
		}
		pub, err := rsp.NVPublic.Contents()
		if err != nil {
			return tpm2.AuthHandle{}, tpm2.NamedHandle{}, fmt.Errorf("hwtpm: NV index %#08x: public area: %w", t.cfg.CounterIndex, err)
		}
		if pub.Attributes.NT != tpm2.TPMNTCounter || pub.DataSize != 8 || !pub.Attributes.AuthWrite || !pub.Attributes.AuthRead || pub.Attributes.Orderly {
			return tpm2.AuthHandle{}, tpm2.NamedHandle{}, fmt.Errorf("hwtpm: NV index %#08x exists but is not the manager's counter (type %d, %d bytes); choose another index or undefine it", t.cfg.CounterIndex, pub.Attributes.NT, pub.DataSize)
		}
		t.nvName = rsp.NVName
	}
	return tpm2.AuthHandle{Handle: t.nvHandle(), Name: t.nvName, Auth: tpm2.PasswordAuth(nil)},
		tpm2.NamedHandle{Handle: t.nvHandle(), Name: t.nvName}, nil
}

// ReadCounter returns the NV counter's value (TPM2_NV_Read). ErrNoCounter
// if the index is not defined.
func (t *TPM) ReadCounter() (uint64, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.readCounter()
}

func (t *TPM) readCounter() (uint64, error) {
	auth, idx, err := t.nvAuth()
	if err != nil {
		return 0, err
	}
	var rsp *tpm2.NVReadResponse
	err = t.retry(func() (err error) {
		rsp, err = tpm2.NVRead{AuthHandle: auth, NVIndex: idx, Size: 8}.Execute(t.tr)
		return err
	})
	if err != nil {
		if errors.Is(err, tpm2.TPMRCNVUninitialized) {
			return 0, fmt.Errorf("%w: index %#08x defined but never incremented (interrupted creation; CreateCounter finishes it)", ErrNoCounter, t.cfg.CounterIndex)
		}
		return 0, fmt.Errorf("hwtpm: TPM2_NV_Read(%#08x): %w", t.cfg.CounterIndex, err)
	}
	if len(rsp.Data.Buffer) != 8 {
		return 0, fmt.Errorf("hwtpm: TPM2_NV_Read(%#08x): %d bytes", t.cfg.CounterIndex, len(rsp.Data.Buffer))
	}
	return binary.BigEndian.Uint64(rsp.Data.Buffer), nil
}

// IncrementCounter adds one to the counter: one TPM2_NV_Increment, one
// hardware NV write.
func (t *TPM) IncrementCounter() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.increment()
}

func (t *TPM) increment() error {
	auth, idx, err := t.nvAuth()
	if err != nil {
		return err
	}
	err = t.retry(func() error {
		_, err := tpm2.NVIncrement{AuthHandle: auth, NVIndex: idx}.Execute(t.tr)
		return err
	})
	if err != nil {
		t.nvName = tpm2.TPM2BName{} // re-read: the name changes with TPMA_NV_WRITTEN
		return fmt.Errorf("hwtpm: TPM2_NV_Increment(%#08x): %w", t.cfg.CounterIndex, err)
	}
	return nil
}

// CreateCounter defines the counter index with owner authorisation
// (owner_auth=) if it does not exist, and increments it once if it was
// never written: a TPM 2.0 counter has no value until its first
// increment, which sets it to at least the highest value any counter of
// this TPM ever had — so a recreated counter never goes back. Returns the
// value. An existing, written counter is only read.
func (t *TPM) CreateCounter() (uint64, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, _, err := t.nvAuth(); errors.Is(err, ErrNoCounter) {
		err := t.withSalt(func(k *saltKey) error {
			_, err := tpm2.NVDefineSpace{
				AuthHandle: t.owner(k),
				PublicInfo: tpm2.New2B(tpm2.TPMSNVPublic{
					NVIndex:    t.nvHandle(),
					NameAlg:    tpm2.TPMAlgSHA256,
					Attributes: counterAttrs,
					DataSize:   8,
				}),
			}.Execute(t.tr)
			return ownerRefused(err)
		})
		if err != nil {
			return 0, fmt.Errorf("hwtpm: TPM2_NV_DefineSpace(%#08x): %w", t.cfg.CounterIndex, err)
		}
	} else if err != nil {
		return 0, err
	}
	v, err := t.readCounter()
	if errors.Is(err, ErrNoCounter) {
		if err := t.increment(); err != nil {
			return 0, err
		}
		t.nvName = tpm2.TPM2BName{}
		v, err = t.readCounter()
	}
	return v, err
}

// retryBudget bounds the time spent waiting out a TPM's "try later"
// warnings for one command. TPMs rate-limit NV writes to limit wear
// (TPM_RC_NV_RATE) and may ask for a retry while busy; a save must not
// fail for that, but must not hang either.
const retryBudget = 10 * time.Second

// retry runs cmd again while the TPM answers with a warning that means
// "not now" (TPM 2.0 Part 2, TPM_RC_NV_RATE, _RETRY, _YIELDED, _TESTING,
// _NV_UNAVAILABLE), backing off from 10 ms to 1 s, within retryBudget.
func (t *TPM) retry(cmd func() error) error {
	wait, waited := 10*time.Millisecond, time.Duration(0)
	for {
		err := cmd()
		if err == nil || !retryable(err) || waited >= retryBudget {
			return err
		}
		t.sleep(wait)
		waited += wait
		wait = min(2*wait, time.Second)
	}
}

func retryable(err error) bool {
	for _, rc := range []tpm2.TPMRC{tpm2.TPMRCNVRate, tpm2.TPMRCRetry, tpm2.TPMRCYielded, tpm2.TPMRCTesting, tpm2.TPMRCNVUnavailable} {
		if errors.Is(err, rc) {
			return true
		}
	}
	return false
}
