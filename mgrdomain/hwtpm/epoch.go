package hwtpm

import (
	"errors"
	"fmt"

	"github.com/google/go-tpm/tpm2"
)

// The seal epoch (TPM 2.0). A reseal (a sealpcrs= change) writes a new
// blob for the same storage key, but a copy of the disk taken before
// holds the old blob, maybe sealed to a weaker selection (the upgrade
// advice is to boot once with sealpcrs=none), and whoever unseals that
// copy can read today's store with the key. So every blob's policy ends
// in TPM2_PolicyNV(epoch ≤ bound) over an NV counter, the seal epoch: a
// format seals with bound = the epoch's value, a reseal with bound =
// value + 1, and once the new blob is on disk Retire increments the epoch
// to that bound. From then on no older blob satisfies its policy, on this
// disk or on any copy, whoever asks: the TPM refuses it (TPM_RC_POLICY).
//
// Why a counter: an NV counter only moves forward, and an index that is
// undefined and defined again starts, at its first increment, above
// every value a counter of the TPM had when it was undefined (Part 3,
// TPM2_NV_Increment), so nobody, the owner included, can
// bring the epoch back to a retired blob's bound. The cost of that
// strength is availability: whoever holds owner_auth= can increment the
// epoch, or undefine it, and so make the current blob unsealable for
// good — the same power TPM2_Clear gives whoever holds the lockout
// authorisation, which a TPM fresh from the factory leaves as empty as
// the owner's. Only owner authorisation writes it (TPMA_NV_OWNERWRITE):
// the manager has owner_auth= and nobody else needs to. Its value is not
// secret; it is read with its own empty authValue (TPMA_NV_AUTHREAD), so
// unsealing needs no second owner authorisation.
//
// One epoch serves every disk sealed on the TPM: a reseal retires the
// blobs of every other manager disk on this TPM too (one manager owns a
// TPM; its rollback counter is shared the same way). A format does not
// move it, so attaching a blank disk by mistake retires nothing.

// DefaultEpochIndex is the NV index of the seal epoch, next to
// DefaultCounterIndex in the owner range.
const DefaultEpochIndex = 0x0100C1C1

// ErrRetired: the blob's policy requires a seal epoch the TPM has moved
// past: a later reseal on this TPM replaced it (an old copy of the disk),
// or the epoch index was undefined or incremented by the TPM owner.
var ErrRetired = errors.New("hwtpm: this sealed key was retired (a later reseal on this TPM replaced it; an old copy of the disk?)")

// epoch is the seal epoch at idx as an ownerCounter (nvcounter.go).
func epoch(idx uint32) ownerCounter {
	return ownerCounter{idx: idx, what: "seal epoch", missing: errNoEpoch}
}

// epochHandle is the epoch with the name it has in state written,
// computed here rather than read from the TPM.
func epochHandle(idx uint32, written bool) (tpm2.NamedHandle, error) {
	return counterHandle(idx, written)
}

// errNoEpoch: the epoch index is not defined.
var errNoEpoch = errors.New("hwtpm: seal epoch not defined")

func (t *TPM) epochState(idx uint32) (bool, error)  { return t.counterState(epoch(idx)) }
func (t *TPM) readEpoch(idx uint32) (uint64, error) { return t.readOwnerCounter(epoch(idx)) }
func (t *TPM) incrementEpoch(k *saltKey, idx uint32, written bool) error {
	return t.incrementOwnerCounter(k, epoch(idx), written)
}

// ensureEpoch defines the epoch if it is missing (owner authorisation in
// a session salted to k), gives it its first value if it has none, and
// returns its value. The first increment sets a counter above every
// value any counter of this TPM had, so an epoch defined again never
// revives a blob retired under the one before.
func (t *TPM) ensureEpoch(k *saltKey) (uint64, error) {
	return t.ensureOwnerCounter(k, epoch(t.cfg.EpochIndex))
}

// catchUp moves the epoch up to b's bound, retiring every blob sealed
// with a lower one. b was just unsealed or sealed, so the epoch is at
// most its bound; a reseal leaves it one below.
func (t *TPM) catchUp(k *saltKey, b *SealedBlob) error {
	v, err := t.readEpoch(b.EpochIndex)
	if err != nil {
		return err
	}
	switch {
	case v == b.EpochBound:
		return nil
	case v > b.EpochBound:
		return fmt.Errorf("%w: seal epoch %#08x is %d, the blob needs at most %d", ErrRetired, b.EpochIndex, v, b.EpochBound)
	case b.EpochBound-v > 1:
		return fmt.Errorf("hwtpm: seal epoch %#08x is %d, the blob's bound %d: further apart than a reseal leaves them", b.EpochIndex, v, b.EpochBound)
	}
	return t.incrementEpoch(k, b.EpochIndex, true)
}

// Retire makes every blob sealed on this TPM before b unusable: it moves
// the seal epoch to b's bound (one TPM2_NV_Increment, one NV write, after
// a Reseal; nothing after a Seal). Call it once b is durably where the
// next start will find it: before that, a power cut would leave only
// blobs that no longer unseal. Unsealing b does the same, so a cut
// between the two is finished at the next start.
func (t *TPM) Retire(b *SealedBlob) error {
	if b == nil || b.Family == Family12 || b.Legacy() {
		return fmt.Errorf("%w: Retire needs a TPM 2.0 blob of this version", ErrBadBlob)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, err := t.epochState(b.EpochIndex); err != nil {
		return err
	}
	return t.withSalt(func(k *saltKey) error { return t.catchUp(k, b) })
}
