package saa

import (
	"crypto/sha1"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/google/go-tpm/tpm2"
)

// The approved policy (TPM 2.0). The manager's storage key is sealed
// under TPM2_PolicyAuthorize by group 0's SAA key with PolicyRef; an
// approval is the SAA's signature over the digest of one approved
// policy: TPM2_PolicyPCR over the SHA-256 bank with the approved PCR
// digest, then TPM2_PolicyNV(approval counter ≤ seq) — seq being the
// signed list's sequence number. Installing a list with sequence s moves
// the approval counter up to s, after which the TPM refuses every
// approval signed with a lower sequence, on any copy of the disk.
// TPM 2.0 Part 1, 19.7.9 (TPM2_PolicyAuthorize), Part 3, 23.7, 23.9,
// 23.16.

// DefaultApprovalIndex is the NV index of the approval counter, next to
// the manager's rollback counter and seal epoch in the owner range.
const DefaultApprovalIndex = 0x0100C1C2

// PolicyRef is TPM2_PolicyAuthorize's policyRef: it limits an SAA
// signature to releasing the manager's storage key, so a signature the
// SAA makes for another purpose cannot serve as an approval.
var PolicyRef = []byte("xenvtpm manager storage key")

// ApprovalCounterPublic is the approval counter's NV public area once
// written (it is incremented once when created, so it always is): an NV
// counter written with owner authorisation, read with its empty
// authValue. Its name is part of every approved policy.
func ApprovalCounterPublic(idx uint32) tpm2.TPMSNVPublic {
	return tpm2.TPMSNVPublic{
		NVIndex: tpm2.TPMHandle(idx),
		NameAlg: tpm2.TPMAlgSHA256,
		Attributes: tpm2.TPMANV{
			NT:         tpm2.TPMNTCounter,
			OwnerWrite: true,
			AuthRead:   true,
			NoDA:       true,
			Written:    true,
		},
		DataSize: 8,
	}
}

// ApprovalCounterHandle is the approval counter with its name.
func ApprovalCounterHandle(idx uint32) (tpm2.NamedHandle, error) {
	pub := ApprovalCounterPublic(idx)
	name, err := tpm2.NVName(&pub)
	if err != nil {
		return tpm2.NamedHandle{}, err
	}
	return tpm2.NamedHandle{Handle: tpm2.TPMHandle(idx), Name: *name}, nil
}

// PCRSelection is the TPML_PCR_SELECTION of pcrs in bank.
func PCRSelection(bank tpm2.TPMIAlgHash, pcrs []uint) tpm2.TPMLPCRSelection {
	return tpm2.TPMLPCRSelection{PCRSelections: []tpm2.TPMSPCRSelection{{
		Hash:      bank,
		PCRSelect: tpm2.PCClientCompatible.PCRs(pcrs...),
	}}}
}

// PCRDigest is TPM2_PolicyPCR's pcrDigest for SHA-256 PCR values in
// ascending PCR order: SHA-256 of their concatenation.
func PCRDigest(values [][]byte) []byte {
	h := sha256.New()
	for _, v := range values {
		h.Write(v)
	}
	return h.Sum(nil)
}

// PolicyNVCheck is the approved policy's TPM2_PolicyNV: the approval
// counter at idx must be at most seq.
func PolicyNVCheck(h tpm2.NamedHandle, s tpm2.TPMISHPolicy, seq uint64) tpm2.PolicyNV {
	return tpm2.PolicyNV{
		AuthHandle:    tpm2.AuthHandle{Handle: h.Handle, Name: h.Name, Auth: tpm2.PasswordAuth(nil)},
		NVIndex:       h,
		PolicySession: s,
		OperandB:      tpm2.TPM2BOperand{Buffer: binary.BigEndian.AppendUint64(nil, seq)},
		Operation:     tpm2.TPMEOUnsignedLE,
	}
}

// ApprovedPolicy is the policy digest an SAA approves for TPM 2.0: PCRs
// pcrs (SHA-256 bank, ascending) with pcrDigest, under the approval
// counter at idx being at most seq.
func ApprovedPolicy(pcrs []uint, pcrDigest []byte, seq uint64, idx uint32) ([]byte, error) {
	if len(pcrs) == 0 {
		return nil, errors.New("saa: an approved configuration selects at least one PCR")
	}
	if len(pcrDigest) != sha256.Size {
		return nil, fmt.Errorf("saa: PCR digest of %d bytes, want %d (SHA-256)", len(pcrDigest), sha256.Size)
	}
	for _, p := range pcrs {
		if p > 23 {
			return nil, fmt.Errorf("saa: PCR %d out of range 0..23", p)
		}
	}
	pc, err := tpm2.NewPolicyCalculator(tpm2.TPMAlgSHA256)
	if err != nil {
		return nil, err
	}
	if err := (tpm2.PolicyPCR{PcrDigest: tpm2.TPM2BDigest{Buffer: pcrDigest}, Pcrs: PCRSelection(tpm2.TPMAlgSHA256, pcrs)}).Update(pc); err != nil {
		return nil, err
	}
	h, err := ApprovalCounterHandle(idx)
	if err != nil {
		return nil, err
	}
	if err := PolicyNVCheck(h, 0, seq).Update(pc); err != nil {
		return nil, err
	}
	return pc.Hash().Digest, nil
}

// AuthorizeHash is aHash of TPM2_PolicyAuthorize: the digest the SAA
// signs (and TPM2_VerifySignature checks) to approve approvedPolicy,
// SHA-256(approvedPolicy ‖ PolicyRef).
func AuthorizeHash(approvedPolicy []byte) []byte {
	h := sha256.New()
	h.Write(approvedPolicy)
	h.Write(PolicyRef)
	return h.Sum(nil)
}

// Composite12 is a TPM 1.2 TPM_COMPOSITE_HASH (Part 2, 8.1–8.3): SHA-1
// of the TPM_PCR_COMPOSITE of pcrs (a 3-byte TPM_PCR_SELECTION) with
// values (20 bytes each, ascending PCR order), as TPM_Seal's
// digestAtRelease.
func Composite12(pcrs []uint, values [][]byte) ([20]byte, error) {
	if len(pcrs) != len(values) {
		return [20]byte{}, fmt.Errorf("saa: %d PCRs but %d values", len(pcrs), len(values))
	}
	var sel [3]byte
	for i, p := range pcrs {
		if p > 23 {
			return [20]byte{}, fmt.Errorf("saa: PCR %d out of range 0..23", p)
		}
		if i > 0 && p <= pcrs[i-1] {
			return [20]byte{}, errors.New("saa: PCRs must be ascending without repeats")
		}
		if len(values[i]) != sha1.Size {
			return [20]byte{}, fmt.Errorf("saa: PCR %d value of %d bytes, want %d", p, len(values[i]), sha1.Size)
		}
		sel[p/8] |= 1 << (p % 8)
	}
	b := binary.BigEndian.AppendUint16(nil, 3)
	b = append(b, sel[:]...)
	b = binary.BigEndian.AppendUint32(b, uint32(20*len(values)))
	for _, v := range values {
		b = append(b, v...)
	}
	return sha1.Sum(b), nil
}
