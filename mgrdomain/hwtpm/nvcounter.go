package hwtpm

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/google/go-tpm/tpm2"

	"github.com/xenvtpm/xenvtpm/mgrdomain/saa"
)

// ownerCounter is an NV counter (TPM_NT_COUNTER) that only owner
// authorisation increments (TPMA_NV_OWNERWRITE) and anyone reads with its
// empty authValue (TPMA_NV_AUTHREAD), not orderly, so its value survives
// every power loss: the seal epoch (epoch.go) and the approval counter
// (approved.go). Both sit in policies (TPM2_PolicyNV), which bind their
// names, so their public areas are fixed: saa.ApprovalCounterPublic, with
// TPMA_NV_WRITTEN as it is.
type ownerCounter struct {
	idx     uint32
	what    string // in errors: "seal epoch", "approval counter"
	missing error  // counterState's error when the index is not defined
}

// counterPublic is such a counter's public area before or after its
// first increment (TPMA_NV_WRITTEN is part of it, and so of its name).
func counterPublic(idx uint32, written bool) tpm2.TPMSNVPublic {
	p := saa.ApprovalCounterPublic(idx)
	p.Attributes.Written = written
	return p
}

// counterHandle is the counter with the name it has in state written,
// computed here rather than read from the TPM.
func counterHandle(idx uint32, written bool) (tpm2.NamedHandle, error) {
	pub := counterPublic(idx, written)
	name, err := tpm2.NVName(&pub)
	if err != nil {
		return tpm2.NamedHandle{}, err
	}
	return tpm2.NamedHandle{Handle: tpm2.TPMHandle(idx), Name: *name}, nil
}

// counterState reads the counter's public area: c.missing if the index
// is not defined, an error if it is something else, and whether it was
// written.
func (t *TPM) counterState(c ownerCounter) (written bool, err error) {
	rsp, err := tpm2.NVReadPublic{NVIndex: tpm2.TPMHandle(c.idx)}.Execute(t.tr)
	if errors.Is(err, tpm2.TPMRCHandle) {
		return false, fmt.Errorf("%w at index %#08x", c.missing, c.idx)
	}
	if err != nil {
		return false, fmt.Errorf("hwtpm: TPM2_NV_ReadPublic(%#08x): %w", c.idx, err)
	}
	pub, err := rsp.NVPublic.Contents()
	if err != nil {
		return false, fmt.Errorf("hwtpm: NV index %#08x: public area: %w", c.idx, err)
	}
	written = pub.Attributes.Written
	want := counterPublic(c.idx, written)
	if pub.NVIndex != want.NVIndex || pub.NameAlg != want.NameAlg || pub.Attributes != want.Attributes ||
		len(pub.AuthPolicy.Buffer) != 0 || pub.DataSize != want.DataSize {
		return false, fmt.Errorf("hwtpm: NV index %#08x exists but is not the manager's %s (type %d, %d bytes, attributes %#08x); choose another index or undefine it",
			c.idx, c.what, pub.Attributes.NT, pub.DataSize, marshalled(pub.Attributes))
	}
	return written, nil
}

func marshalled(a tpm2.TPMANV) []byte { return tpm2.Marshal(a) }

// readOwnerCounter is TPM2_NV_Read of the counter, authorised by its
// empty authValue.
func (t *TPM) readOwnerCounter(c ownerCounter) (uint64, error) {
	h, err := counterHandle(c.idx, true)
	if err != nil {
		return 0, err
	}
	var rsp *tpm2.NVReadResponse
	err = t.retry(func() (err error) {
		rsp, err = tpm2.NVRead{AuthHandle: tpm2.AuthHandle{Handle: h.Handle, Name: h.Name, Auth: tpm2.PasswordAuth(nil)}, NVIndex: h, Size: 8}.Execute(t.tr)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("hwtpm: TPM2_NV_Read(%s %#08x): %w", c.what, c.idx, err)
	}
	if len(rsp.Data.Buffer) != 8 {
		return 0, fmt.Errorf("hwtpm: TPM2_NV_Read(%s %#08x): %d bytes", c.what, c.idx, len(rsp.Data.Buffer))
	}
	return binary.BigEndian.Uint64(rsp.Data.Buffer), nil
}

// incrementOwnerCounter is one TPM2_NV_Increment (one NV write) with
// owner authorisation in a session salted to k, retried while the TPM
// says "not now".
func (t *TPM) incrementOwnerCounter(k *saltKey, c ownerCounter, written bool) error {
	h, err := counterHandle(c.idx, written)
	if err != nil {
		return err
	}
	err = t.retry(func() error {
		_, err := tpm2.NVIncrement{AuthHandle: t.owner(k), NVIndex: h}.Execute(t.tr)
		return err
	})
	if err != nil {
		return fmt.Errorf("hwtpm: TPM2_NV_Increment(%s %#08x): %w", c.what, c.idx, ownerRefused(err))
	}
	return nil
}

// ensureOwnerCounter defines the counter if it is missing (owner
// authorisation salted to k), gives it its first value if it has none,
// and returns its value. The first increment sets a counter above every
// value any counter of this TPM had, so a counter defined again never
// goes back to a value it had.
func (t *TPM) ensureOwnerCounter(k *saltKey, c ownerCounter) (uint64, error) {
	written, err := t.counterState(c)
	if errors.Is(err, c.missing) {
		pub := counterPublic(c.idx, false)
		if _, err := (tpm2.NVDefineSpace{AuthHandle: t.owner(k), PublicInfo: tpm2.New2B(pub)}).Execute(t.tr); err != nil {
			return 0, fmt.Errorf("hwtpm: TPM2_NV_DefineSpace(%s %#08x): %w", c.what, c.idx, ownerRefused(err))
		}
	} else if err != nil {
		return 0, err
	}
	if !written {
		if err := t.incrementOwnerCounter(k, c, false); err != nil {
			return 0, err
		}
	}
	return t.readOwnerCounter(c)
}
