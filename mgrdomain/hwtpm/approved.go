package hwtpm

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"errors"
	"fmt"
	"slices"

	"github.com/google/go-tpm/tpm2"
	"github.com/google/go-tpm/tpm2/transport"

	"github.com/xenvtpm/xenvtpm/mgrdomain/saa"
)

// Sealing to approved configurations (TPM 2.0). SealAuthorized seals the
// storage key with the policy of Seal in which TPM2_PolicyAuthorize by a
// System Approval Agent's key (policyRef saa.PolicyRef) takes the place
// of TPM2_PolicyPCR: the TPM releases the key after any policy the SAA
// signed, and the SAA signs saa.ApprovedPolicy — PolicyPCR of one boot
// configuration, then PolicyNV(approval counter ≤ sequence). A new boot
// chain needs a new signature, never a reseal, and never an unprotected
// boot. The approval counter revokes superseded lists: AdvanceApprovals
// moves it to a new list's sequence, and from then on the TPM refuses
// every approval signed with a lower one (TPM_RC_POLICY in PolicyNV), on
// any copy of the disk. TPM 2.0 Part 1, 19.7.9 (policy authorisation);
// Part 3, 20.1 (TPM2_VerifySignature), 12.3 (TPM2_LoadExternal), 23.16
// (TPM2_PolicyAuthorize).
//
// The approval counter is an NV counter like the seal epoch (epoch.go):
// written only with owner authorisation, read with its empty authValue,
// so an approval needs no secret to be used and nobody without
// owner_auth= can revoke one. Its first increment, right after its
// definition, sets it at or above every value any counter of this TPM
// ever had, so the SAA learns its value (ApprovalCounter) before it signs
// the first list, and a counter undefined and defined again never
// revives a revoked approval.

var (
	// ErrNotApproved: no approval given matches the current PCR values.
	ErrNotApproved = errors.New("hwtpm: the current boot configuration is not approved (no approval matches the PCR values)")
	// ErrRevoked: the approval's sequence is below the approval counter.
	ErrRevoked = errors.New("hwtpm: the approval list was superseded (its sequence is below the TPM's approval counter)")
	// ErrBadApproval: the TPM refused the approval's signature: not the
	// SAA's key this blob was sealed under, or not over this approval.
	ErrBadApproval = errors.New("hwtpm: the approval's signature does not verify with the SAA key the storage key was sealed under")
)

// MaxApprovalJump is the furthest AdvanceApprovals moves the approval
// counter in one call: each step is one NV write, so a sequence far
// ahead (a mistake, or a hostile list) must not wear the TPM's NV.
const MaxApprovalJump = 64

// Approval is one approved boot configuration of an SAA's signed list.
type Approval struct {
	PCRs   []uint // ascending, SHA-256 bank
	Digest []byte // saa.PCRDigest of the approved SHA-256 values
	// Sig is the SAA's signature over saa.AuthorizeHash of
	// saa.ApprovedPolicy(PCRs, Digest, seq, approval index): RSASSA-PKCS1
	// v1.5 with SHA-256, or ECDSA P-256 ASN.1 DER (SignApproval).
	Sig []byte
	// Values are the approved PCR values (optional, for diagnostics
	// only): when given they name the PCRs that differ if no approval
	// matches. They must hash to Digest.
	Values [][]byte
}

// saaPublic is the SAA key as a TPM public area (saa.PublicKey.TPMPublic:
// the one definition the SAA's tools use too).
func saaPublic(pub crypto.PublicKey) (tpm2.TPMTPublic, error) {
	k, err := saa.NewPublicKey(pub)
	if err != nil {
		return tpm2.TPMTPublic{}, fmt.Errorf("hwtpm: SAA key: %w", err)
	}
	return k.TPMPublic()
}

// SAAPublicName is the TPM name of an SAA public key (nameAlg SHA-256
// over its public area as SealAuthorized records it): TPM2_PolicyAuthorize's
// keySign, so the SAA's tool can compute a sealed key's policy offline.
func SAAPublicName(pub crypto.PublicKey) ([]byte, error) {
	p, err := saaPublic(pub)
	if err != nil {
		return nil, err
	}
	name, err := tpm2.ObjectName(&p)
	if err != nil {
		return nil, err
	}
	return name.Buffer, nil
}

// saaKey decodes a recorded SAA public area: the key, its name, and an
// error unless it is exactly the public area saaPublic makes for that
// key (so hostile disk contents cannot pick attributes or schemes).
func saaKey(p []byte) (key crypto.PublicKey, name tpm2.TPM2BName, err error) {
	defer func() {
		if r := recover(); r != nil {
			key, err = nil, fmt.Errorf("hwtpm: SAA public area: %v", r)
		}
	}()
	pub, err := tpm2.Unmarshal[tpm2.TPMTPublic](p)
	if err != nil {
		return nil, name, fmt.Errorf("hwtpm: SAA public area: %w", err)
	}
	if key, err = tpm2.Pub(*pub); err != nil {
		return nil, name, fmt.Errorf("hwtpm: SAA public area: %w", err)
	}
	want, err := saaPublic(key)
	if err != nil {
		return nil, name, err
	}
	if !bytes.Equal(tpm2.Marshal(want), p) {
		return nil, name, errors.New("hwtpm: SAA public area is not a plain RSASSA-SHA256 or ECDSA-SHA256 verification key")
	}
	n, err := tpm2.ObjectName(pub)
	if err != nil {
		return nil, name, err
	}
	return key, *n, nil
}

// SAAKey is the SAA public key an authorized blob was sealed under.
func (b *SealedBlob) SAAKey() (crypto.PublicKey, error) {
	if !b.Authorized() {
		return nil, errors.New("hwtpm: not a blob sealed to SAA approvals")
	}
	k, _, err := saaKey(b.SAAPublic)
	return k, err
}

// SignApproval computes an Approval's Sig: signer (the SAA's RSA-2048 or
// ECDSA P-256 key) signs saa.AuthorizeHash(saa.ApprovedPolicy(pcrs,
// digest, seq, approvalIndex)) with RSASSA-PKCS1 v1.5 SHA-256 or ECDSA
// (ASN.1 DER). For the SAA's tool, offline.
func SignApproval(signer crypto.Signer, pcrs []uint, digest []byte, seq uint64, approvalIndex uint32) ([]byte, error) {
	if _, err := saaPublic(signer.Public()); err != nil {
		return nil, err
	}
	policy, err := saa.ApprovedPolicy(pcrs, digest, seq, approvalIndex)
	if err != nil {
		return nil, err
	}
	return signer.Sign(rand.Reader, saa.AuthorizeHash(policy), crypto.SHA256)
}

// tpmSignature is sig as TPM2_VerifySignature's TPMT_SIGNATURE for key.
func tpmSignature(key crypto.PublicKey, sig []byte) (tpm2.TPMTSignature, error) {
	k, err := saa.NewPublicKey(key)
	if err != nil {
		return tpm2.TPMTSignature{}, fmt.Errorf("hwtpm: SAA key: %w", err)
	}
	ts, err := saa.TPMSignature(k, sig)
	if err != nil {
		return ts, fmt.Errorf("%w: %w", ErrBadApproval, err)
	}
	return ts, nil
}

// SealAuthorized seals key (1..MaxKey bytes) under the storage primary,
// released to the configurations saaPub (the SAA's RSA-2048 or ECDSA
// P-256 key) approves: the object's policy is TPM2_PolicyAuthorize(SAA
// key, saa.PolicyRef), TPM2_PolicyLocality at Config.Locality and
// TPM2_PolicyNV(seal epoch ≤ its value), so Reseal/ResealAuthorized and
// Retire retire it as any blob. It defines the approval counter if it is
// missing (one NV_DefineSpace and one NV_Increment, once per TPM). Costs
// otherwise as Seal.
func (t *TPM) SealAuthorized(key []byte, saaPub crypto.PublicKey) (*SealedBlob, error) {
	return t.sealAuthorized(key, saaPub, 0)
}

// ResealAuthorized is SealAuthorized for a key an older blob holds, as
// Reseal is to Seal: its seal epoch bound is one ahead, and Retire (or
// unsealing it) retires every blob sealed before.
func (t *TPM) ResealAuthorized(key []byte, saaPub crypto.PublicKey) (*SealedBlob, error) {
	return t.sealAuthorized(key, saaPub, 1)
}

func (t *TPM) sealAuthorized(key []byte, saaPub crypto.PublicKey, ahead uint64) (*SealedBlob, error) {
	pub, err := saaPublic(saaPub)
	if err != nil {
		return nil, fmt.Errorf("hwtpm: seal: %w", err)
	}
	return t.seal(key, nil, ahead, tpm2.Marshal(pub))
}

// checkApprovals checks the approvals' form before anything is asked of
// the TPM.
func checkApprovals(approvals []Approval) error {
	if len(approvals) == 0 {
		return fmt.Errorf("%w: no approvals given", ErrNotApproved)
	}
	for i, a := range approvals {
		bad := func(f string, args ...any) error {
			return fmt.Errorf("%w: approval %d: %s", ErrBadApproval, i, fmt.Sprintf(f, args...))
		}
		if len(a.PCRs) == 0 {
			return bad("no PCRs")
		}
		for j, p := range a.PCRs {
			if p > MaxPCR {
				return bad("PCR %d out of range 0..%d", p, MaxPCR)
			}
			if j > 0 && p <= a.PCRs[j-1] {
				return bad("PCRs %s not ascending without repeats", FormatPCRs(a.PCRs))
			}
		}
		if len(a.Digest) != 32 {
			return bad("digest of %d bytes, want 32 (SHA-256)", len(a.Digest))
		}
		if len(a.Sig) == 0 {
			return bad("no signature")
		}
		if a.Values != nil {
			if len(a.Values) != len(a.PCRs) {
				return bad("%d values for %d PCRs", len(a.Values), len(a.PCRs))
			}
			if !bytes.Equal(saa.PCRDigest(a.Values), a.Digest) {
				return bad("values do not hash to the digest")
			}
		}
	}
	return nil
}

// matchApproval reads the PCRs the approvals select and returns the
// first approval whose digest the current values give, or ErrNotApproved
// naming, for the closest approval that lists values, the PCRs that
// differ.
func (t *TPM) matchApproval(approvals []Approval) (*Approval, error) {
	var all []uint
	for _, a := range approvals {
		all = append(all, a.PCRs...)
	}
	all = slices.Compact(slices.Sorted(slices.Values(all)))
	vals, err := t.readPCRs(tpm2.TPMAlgSHA256, all)
	if err != nil {
		return nil, err
	}
	now := map[uint][]byte{}
	for i, p := range all {
		now[p] = vals[i]
	}
	var closest []uint
	closestIdx := -1
	for i := range approvals {
		a := &approvals[i]
		cur := make([][]byte, len(a.PCRs))
		for j, p := range a.PCRs {
			cur[j] = now[p]
		}
		if bytes.Equal(saa.PCRDigest(cur), a.Digest) {
			return a, nil
		}
		if a.Values == nil {
			continue
		}
		var diff []uint
		for j, p := range a.PCRs {
			if !bytes.Equal(cur[j], a.Values[j]) {
				diff = append(diff, p)
			}
		}
		if closestIdx < 0 || len(diff) < len(closest) {
			closest, closestIdx = diff, i
		}
	}
	if closestIdx < 0 {
		return nil, fmt.Errorf("%w: the current values of PCRs %s give none of the %d approved digests", ErrNotApproved, FormatPCRs(all), len(approvals))
	}
	return nil, fmt.Errorf("%w: none of %d approvals; the closest (approval %d, PCRs %s) differs in PCRs %s",
		ErrNotApproved, len(approvals), closestIdx, FormatPCRs(approvals[closestIdx].PCRs), FormatPCRs(closest))
}

// verifyApproval has the TPM check a's signature with the SAA key:
// TPM2_LoadExternal of the public key in the owner hierarchy, then
// TPM2_VerifySignature of aHash, whose ticket TPM2_PolicyAuthorize takes.
// The owner hierarchy because for a key in the null hierarchy
// TPM2_VerifySignature answers a NULL ticket (Part 3,
// TPM2_VerifySignature), which TPM2_PolicyAuthorize refuses
// (TPM_RC_VALUE on checkTicket; TestNullHierarchyTicket). The key is
// flushed before returning.
func (t *TPM) verifyApproval(saaPub []byte, keyName tpm2.TPM2BName, key crypto.PublicKey, aHash []byte, sig []byte) (tpm2.TPMTTKVerified, error) {
	var ticket tpm2.TPMTTKVerified
	s, err := tpmSignature(key, sig)
	if err != nil {
		return ticket, err
	}
	pub, err := tpm2.Unmarshal[tpm2.TPMTPublic](saaPub)
	if err != nil {
		return ticket, err
	}
	ld, err := tpm2.LoadExternal{InPublic: tpm2.New2B(*pub), Hierarchy: tpm2.TPMRHOwner}.Execute(t.tr)
	if err != nil {
		return ticket, fmt.Errorf("hwtpm: TPM2_LoadExternal(SAA key): %w", err)
	}
	defer t.flush(ld.ObjectHandle)
	if !bytes.Equal(ld.Name.Buffer, keyName.Buffer) {
		return ticket, fmt.Errorf("hwtpm: TPM2_LoadExternal(SAA key): the TPM names it %x, not %x", ld.Name.Buffer, keyName.Buffer)
	}
	rsp, err := tpm2.VerifySignature{
		KeyHandle: tpm2.NamedHandle{Handle: ld.ObjectHandle, Name: ld.Name},
		Digest:    tpm2.TPM2BDigest{Buffer: aHash},
		Signature: s,
	}.Execute(t.tr)
	if errors.Is(err, tpm2.TPMRCSignature) || errors.Is(err, tpm2.TPMRCValue) {
		return ticket, fmt.Errorf("%w: TPM2_VerifySignature: %w", ErrBadApproval, err)
	}
	if err != nil {
		return ticket, fmt.Errorf("hwtpm: TPM2_VerifySignature: %w", err)
	}
	return rsp.Validation, nil
}

// UnsealAuthorized unseals a blob from SealAuthorized with the approvals
// of the list whose sequence is seq: it picks the approval whose digest
// the current PCR values give (ErrNotApproved if none), has the TPM
// verify its signature with the blob's SAA key (ErrBadApproval if it
// does not verify), and satisfies the blob's policy in one policy
// session salted to the storage primary, outData encrypted:
// TPM2_PolicyPCR, TPM2_PolicyNV(approval counter ≤ seq) (ErrRevoked if
// the counter moved past seq), TPM2_PolicyAuthorize with the ticket,
// then PolicyLocality and the seal epoch's PolicyNV as Unseal does
// (ErrLocality, ErrRetired), and TPM2_Unseal. Like Unseal, unsealing a
// blob from ResealAuthorized retires the older ones.
func (t *TPM) UnsealAuthorized(b *SealedBlob, seq uint64, approvals []Approval) ([]byte, error) {
	if b == nil {
		return nil, fmt.Errorf("%w: nil", ErrBadBlob)
	}
	if !b.Authorized() {
		return nil, fmt.Errorf("%w: this blob is not sealed to SAA approvals (Unseal unseals it)", ErrBadBlob)
	}
	key, keyName, err := saaKey(b.SAAPublic)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadBlob, err)
	}
	if err := checkApprovals(approvals); err != nil {
		return nil, err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	a, err := t.matchApproval(approvals)
	if err != nil {
		return nil, err
	}
	idx := t.cfg.ApprovalIndex
	approved, err := saa.ApprovedPolicy(a.PCRs, a.Digest, seq, idx)
	if err != nil {
		return nil, err
	}
	ticket, err := t.verifyApproval(b.SAAPublic, keyName, key, saa.AuthorizeHash(approved), a.Sig)
	if err != nil {
		return nil, err
	}
	counter, err := saa.ApprovalCounterHandle(idx)
	if err != nil {
		return nil, err
	}
	return t.unsealWith(b, func(tr transport.TPM, s tpm2.TPMISHPolicy) error {
		_, err := tpm2.PolicyPCR{PolicySession: s, PcrDigest: tpm2.TPM2BDigest{Buffer: a.Digest}, Pcrs: saa.PCRSelection(tpm2.TPMAlgSHA256, a.PCRs)}.Execute(tr)
		if errors.Is(err, tpm2.TPMRCValue) {
			return fmt.Errorf("%w: PCRs %s changed while unsealing: TPM2_PolicyPCR: %w", ErrNotApproved, FormatPCRs(a.PCRs), err)
		} else if err != nil {
			return fmt.Errorf("hwtpm: TPM2_PolicyPCR(%s): %w", FormatPCRs(a.PCRs), err)
		}
		_, err = saa.PolicyNVCheck(counter, s, seq).Execute(tr)
		switch {
		case errors.Is(err, tpm2.TPMRCPolicy):
			return fmt.Errorf("%w: TPM2_PolicyNV(approval counter %#08x ≤ %d): %w", ErrRevoked, idx, seq, err)
		case errors.Is(err, tpm2.TPMRCHandle), errors.Is(err, tpm2.TPMRCNVUninitialized):
			return fmt.Errorf("%w: the approval counter %#08x is missing or was never incremented (undefined by the TPM owner? ApprovalCounter defines it again, and the SAA must sign above its new value): %w", ErrRevoked, idx, err)
		case err != nil:
			return fmt.Errorf("hwtpm: TPM2_PolicyNV(approval counter %#08x ≤ %d): %w", idx, seq, err)
		}
		_, err = tpm2.PolicyAuthorize{
			PolicySession:  s,
			ApprovedPolicy: tpm2.TPM2BDigest{Buffer: approved},
			PolicyRef:      tpm2.TPM2BDigest{Buffer: saa.PolicyRef},
			KeySign:        keyName,
			CheckTicket:    ticket,
		}.Execute(tr)
		if err != nil {
			return fmt.Errorf("hwtpm: TPM2_PolicyAuthorize: %w", err)
		}
		if err := policyLocality(tr, s, b.Locality); err != nil {
			return err
		}
		return epochPolicy(tr, s, b)
	})
}

// The approval counter.

// errNoApprovals: the approval counter's index is not defined.
var errNoApprovals = errors.New("hwtpm: approval counter not defined")

// approvals is the approval counter as an ownerCounter (nvcounter.go).
func (t *TPM) approvals() ownerCounter {
	return ownerCounter{idx: t.cfg.ApprovalIndex, what: "approval counter", missing: errNoApprovals}
}

func (t *TPM) approvalState() (bool, error)   { return t.counterState(t.approvals()) }
func (t *TPM) readApprovals() (uint64, error) { return t.readOwnerCounter(t.approvals()) }
func (t *TPM) incrementApprovals(k *saltKey, written bool) error {
	return t.incrementOwnerCounter(k, t.approvals(), written)
}
func (t *TPM) ensureApprovals(k *saltKey) (uint64, error) {
	return t.ensureOwnerCounter(k, t.approvals())
}

// ApprovalIndex is the NV index of the approval counter.
func (t *TPM) ApprovalIndex() uint32 { return t.cfg.ApprovalIndex }

// ApprovalCounter returns the approval counter's value, defining it (and
// incrementing it once, owner authorisation) if it is missing: the
// lowest sequence an SAA list for this TPM can have.
// PeekApprovalCounter reads the approval counter without defining it:
// defined is false (and v 0) while it does not exist or was never
// incremented. No NV write, no owner authorisation.
func (t *TPM) PeekApprovalCounter() (v uint64, defined bool, err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	written, err := t.approvalState()
	switch {
	case errors.Is(err, errNoApprovals):
		return 0, false, nil
	case err != nil || !written:
		return 0, false, err
	}
	v, err = t.readApprovals()
	return v, err == nil, err
}

func (t *TPM) ApprovalCounter() (uint64, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	written, err := t.approvalState()
	if err == nil && written {
		return t.readApprovals()
	}
	if err != nil && !errors.Is(err, errNoApprovals) {
		return 0, err
	}
	var v uint64
	err = t.withSalt(func(k *saltKey) (err error) {
		v, err = t.ensureApprovals(k)
		return err
	})
	return v, err
}

// AdvanceApprovals moves the approval counter up to seq, the sequence of
// a newly installed approval list, revoking every approval signed with a
// lower sequence. Each step is one TPM2_NV_Increment, one hardware NV
// write (owner authorisation), so seq may be at most MaxApprovalJump
// above the counter; seq below it is refused (the list is older than one
// already installed). At seq nothing is written.
func (t *TPM) AdvanceApprovals(seq uint64) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	written, err := t.approvalState()
	if err != nil && !errors.Is(err, errNoApprovals) {
		return err
	}
	var v uint64
	if err == nil && written {
		if v, err = t.readApprovals(); err != nil {
			return err
		}
		if err := checkAdvance(v, seq, t.cfg.ApprovalIndex); err != nil || v == seq {
			return err
		}
	}
	return t.withSalt(func(k *saltKey) error {
		v, err := t.ensureApprovals(k)
		if err != nil {
			return err
		}
		if err := checkAdvance(v, seq, t.cfg.ApprovalIndex); err != nil {
			return err
		}
		for ; v < seq; v++ {
			if err := t.incrementApprovals(k, true); err != nil {
				return fmt.Errorf("%w (the counter is at %d of %d; running AdvanceApprovals again continues)", err, v, seq)
			}
		}
		if got, err := t.readApprovals(); err != nil {
			return err
		} else if got != seq {
			return fmt.Errorf("hwtpm: approval counter %#08x is %d after advancing to %d (incremented by someone else meanwhile?)", t.cfg.ApprovalIndex, got, seq)
		}
		return nil
	})
}

func checkAdvance(v, seq uint64, idx uint32) error {
	switch {
	case seq < v:
		return fmt.Errorf("hwtpm: approval sequence %d is below the approval counter %#08x at %d: the list is older than one already installed (the counter never goes back)", seq, idx, v)
	case seq-v > MaxApprovalJump:
		return fmt.Errorf("hwtpm: approval sequence %d is %d above the approval counter %#08x at %d: the SAA must sign a sequence at most %d above it (each step is an NV write)", seq, seq-v, idx, v, MaxApprovalJump)
	}
	return nil
}
