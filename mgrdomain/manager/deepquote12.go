package manager

import (
	"errors"
	"fmt"
	"slices"

	"github.com/xenvtpm/xenvtpm/attest/deepquote"
	"github.com/xenvtpm/xenvtpm/mgrdomain/hwtpm"
	"github.com/xenvtpm/xenvtpm/mgrdomain/proto"
	"github.com/xenvtpm/xenvtpm/mgrdomain/saa"
	"github.com/xenvtpm/xenvtpm/mgrdomain/store"
)

// Deep quotes on TPM 1.2 hardware (docs/deep-quote.md, "TPM 1.2
// hardware"). TPM 1.2 cannot re-derive a key from a template, so each
// group's attestation key is an identity key made once with
// TPM_MakeIdentity (TPM 1.2 Part 3, 15.1) at the group's first GROUP_AK
// or DEEP_QUOTE, and its wrapped TPM_KEY (only this TPM's SRK unwraps
// it), TPM_PUBKEY and identityBinding are kept in the group's record
// (groups.go, version 3), inside the sealed store. Its label
// (labelPrivCADigest) is hwtpm.GroupLabel12: SHA-1 of the group's UUID.
// A deep quote is TPM_Quote (Part 3, 16.1) with it; dom0 proves it with
// TPM_ActivateIdentity (Part 3, 15.2) against the EK.

// Bounds of the stored identity key, for the group record's size limit:
// an RSA-2048 TPM_KEY is about 560 bytes, its TPM_PUBKEY 284, the
// binding 256.
const (
	maxAIKBlob    = 1024
	maxAIKPub     = 512
	maxAIKBinding = 512
)

// attester12 is what TPM 1.2 hardware offers for deep quotes
// (hwtpm.TPM12).
type attester12 interface {
	MakeIdentity(labelPrivCADigest [20]byte) (keyBlob, pubKey, identityBinding []byte, err error)
	ActivateIdentity(keyBlob, encBlob []byte) ([]byte, error)
	Quote(keyBlob []byte, nonce [20]byte, pcrs []uint) (quoteInfo, sig []byte, pcrValues [][]byte, err error)
	EKPublic12() ([]byte, error)
	EKCert12() ([]byte, error)
}

var _ attester12 = (*hwtpm.TPM12)(nil)

// groupAIK returns group id with its identity key, making and committing
// the key at the first need. TPM_MakeIdentity (an RSA-2048 key
// generation: seconds on many parts) runs under aikMu only, so saves are
// not held up; the commit runs under lockAdmin like makeCA's.
func (m *Manager) groupAIK(hw attester12, id uint32) (*group, error) {
	m.mu.Lock()
	g := m.groups[id]
	m.mu.Unlock()
	if g == nil {
		return nil, fmt.Errorf("%w: %d", proto.ErrNoGroup, id)
	}
	if g.aikBlob != nil {
		return g, nil
	}
	m.aikMu.Lock()
	defer m.aikMu.Unlock()
	m.mu.Lock()
	g = m.groups[id]
	m.mu.Unlock()
	if g == nil {
		return nil, fmt.Errorf("%w: %d", proto.ErrNoGroup, id)
	}
	if g.aikBlob != nil {
		return g, nil // another request made it while this one waited
	}
	blob, pub, binding, err := hw.MakeIdentity(hwtpm.GroupLabel12(g.uuid))
	if err != nil {
		return nil, fmt.Errorf("manager: group %d: identity key: %w", id, err)
	}
	if len(blob) > maxAIKBlob || len(pub) > maxAIKPub || len(binding) > maxAIKBinding {
		return nil, fmt.Errorf("manager: group %d: identity key of %d, %d, %d bytes does not fit the group record", id, len(blob), len(pub), len(binding))
	}
	defer m.lockAdmin()()
	if err := m.usable(); err != nil {
		return nil, err
	}
	m.mu.Lock()
	old := m.groups[id]
	m.mu.Unlock()
	if old == nil || old.uuid != g.uuid {
		// Deleted, and perhaps remade under the same number, while the
		// TPM made the key: it is for a group that is gone.
		return nil, fmt.Errorf("%w: %d (deleted while its identity key was made)", proto.ErrNoGroup, id)
	}
	n := *old
	n.aikBlob, n.aikPub, n.aikBinding = blob, pub, binding
	var b store.Batch
	putGroup(&b, old, &n)
	if err := m.adminCommit(&b); err != nil {
		return nil, err
	}
	m.mu.Lock()
	m.groups[id] = &n
	m.mu.Unlock()
	m.logf("manager: group %d has a TPM 1.2 identity key", id)
	return &n, nil
}

// quote12 is a deep quote on TPM 1.2 hardware: TPM_Quote with group id's
// identity key, externalData the Binding's Nonce12 (its SHA-256 digest
// cut to TPM_NONCE's 20 bytes), over pcrs.
func (m *Manager) quote12(hw attester12, id uint32, b deepquote.Binding, pcrs []uint) (*deepquote.Answer, error) {
	g, err := m.groupAIK(hw, id)
	if err != nil {
		return nil, err
	}
	if g.uuid != b.Group {
		return nil, fmt.Errorf("%w: group %d changed while quoting", proto.ErrNoGroup, id)
	}
	info, sig, vals, err := hw.Quote(g.aikBlob, b.Nonce12(), pcrs)
	if err != nil {
		return nil, fmt.Errorf("manager: hardware quote: %w", err)
	}
	mask, err := saa.PCRMask(slices.Compact(slices.Sorted(slices.Values(pcrs))))
	if err != nil {
		return nil, err
	}
	return &deepquote.Answer{Binding: b, HWFamily: deepquote.HW12, Attest: info, Signature: sig, HWPCRs: mask, HWPCRValues: vals}, nil
}

// groupAK12 is GROUP_AK's TPM 1.2 answer: u8 family (1) ‖ u16 ‖ the
// identity key's TPM_PUBKEY ‖ u16 ‖ the EK's TPM_PUBKEY ‖ u16 ‖ the EK's
// certificate from NV index TPM_NV_INDEX_EKCert (empty when the TPM has
// none) ‖ u16 ‖ the identityBinding ‖ the group's UUID (16), which
// hwtpm.GroupLabel12 makes the binding's label from.
func (m *Manager) groupAK12(hw attester12, id uint32) ([]byte, error) {
	g, err := m.groupAIK(hw, id)
	if err != nil {
		return nil, err
	}
	ek, err := hw.EKPublic12()
	if err != nil {
		return nil, err
	}
	cert, err := hw.EKCert12()
	if err != nil {
		return nil, err
	}
	out, err := appendFields([]byte{deepquote.HW12}, g.aikPub, ek, cert, g.aikBinding)
	if err != nil {
		return nil, err
	}
	return append(out, g.uuid[:]...), nil
}

// activate12 is GROUP_ACTIVATE on TPM 1.2: TPM_ActivateIdentity of the
// group's identity key with credentialBlob, the TPM_EK_BLOB or
// TPM_ASYM_CA_CONTENTS encrypted to the EK (hwtpm.ActivationBlob12); the
// secret field must be empty. The answer is the TPM_SYMMETRIC_KEY.
func (m *Manager) activate12(hw attester12, req proto.GroupActivate) ([]byte, error) {
	if len(req.Secret) != 0 {
		return nil, fmt.Errorf("%w: GROUP_ACTIVATE on TPM 1.2 hardware takes the encrypted blob alone (an empty secret)", proto.ErrBadRequest)
	}
	g, err := m.groupAIK(hw, req.Group)
	if err != nil {
		return nil, err
	}
	out, err := hw.ActivateIdentity(g.aikBlob, req.CredentialBlob)
	if errors.Is(err, hwtpm.ErrCredential) {
		return nil, fmt.Errorf("%w: %w", proto.ErrBadRequest, err)
	}
	return out, err
}
