package proto

import (
	"encoding/binary"
	"fmt"
)

// Deep quote and the group attestation key (attest/deepquote;
// docs/deep-quote.md). vtpmmgr's GET_QUOTE (ordinal 4) quoted with SHA-1
// and a TPM 1.2 identity key; these ordinals are this project's.
const (
	// OrdDeepQuote (tag 0x01C1): a hardware quote by the caller's group
	// attestation key binding the caller.
	OrdDeepQuote uint32 = 0x00000102
	// OrdGroupAK (tag 0x01C2): a group's attestation key and the
	// hardware TPM's endorsement key, to certify the one with the other.
	OrdGroupAK uint32 = 0x02000112
)

// MaxDeepQuoteNonce is the longest nonce a deep quote binds (TPM2B_DATA).
const MaxDeepQuoteNonce = 64

// DeepQuote (tag 0x01C1, OrdDeepQuote): the verifier's Nonce, and the
// caller's PCRs (bitmap, bit i = PCR i of its Bank: deepquote.BankSHA256
// for a TPM 2.0 vTPM, BankSHA1 for a TPM 1.2 one) and the SHA-256 of
// their values, which the quote binds as the caller states them. The
// manager names the caller by the UUID Xen gives it, never one from the
// request.
//
// Wire: u8 nonceLen ‖ nonce ‖ u32 PCR bitmap ‖ 32-byte PCR digest ‖ u16
// bank (TPM_ALG_SHA1 0x0004 or TPM_ALG_SHA256 0x000B; a request without
// it, from a vTPM older than the TPM 1.2 personality's deep quote, is of
// SHA-256). Answer: a deepquote.Answer.
type DeepQuote struct {
	Nonce     []byte
	PCRs      uint32
	PCRDigest [32]byte
	Bank      uint16 // zero: SHA-256
}

// The banks DEEP_QUOTE names (deepquote.BankSHA1, BankSHA256: this
// package does not import that one).
const (
	bankSHA1   = 0x0004
	bankSHA256 = 0x000B
)

// GroupAK (tag 0x01C2, OrdGroupAK): u32 group. The answer starts with
// u8 family, the hardware's (deepquote.HW20 = 2, HW12 = 1):
//
//   - TPM 2.0: 2 ‖ u16 n ‖ the attestation key's TPMT_PUBLIC ‖ u16 m ‖
//     the hardware EK's TPMT_PUBLIC ‖ u16 k ‖ the hardware EK's
//     certificate (k = 0: the TPM has none).
//   - TPM 1.2: 1 ‖ u16 n ‖ the group's identity key's TPM_PUBKEY (TPM 1.2
//     Part 2, 10.5) ‖ u16 m ‖ the EK's TPM_PUBKEY
//     (TPM_OwnerReadInternalPub) ‖ u16 k ‖ the EK certificate from
//     TPM_NV_INDEX_EKCert (k = 0: none) ‖ u16 b
//     ‖ the identityBinding (TPM_MakeIdentity's signature over
//     TPM_IDENTITY_CONTENTS, Part 2, 12.5) ‖ the group's UUID (16), whose
//     SHA-1 is the binding's labelPrivCADigest.
type GroupAK struct{ Group uint32 }

// GroupActivate (tag 0x01C2, OrdGroupActivate, vtpmmgr's GROUP_ACTIVATE
// for TPM 2.0): TPM2_ActivateCredential of a credential made with
// TPM2_MakeCredential for the group's attestation key against the
// hardware EK. Wire: u32 group ‖ u16 n ‖ credentialBlob ‖ u16 m ‖ secret.
// Answer: the credential. On TPM 1.2 hardware:
// TPM_ActivateIdentity (TPM 1.2 Part 3, 15.2) of the group's identity
// key; credentialBlob is a TPM_EK_BLOB or TPM_ASYM_CA_CONTENTS (Part 2,
// 12.4, 12.3) encrypted to the EK with RSA-OAEP (SHA-1, "TCPA") and the
// secret is empty (m = 0). Answer: the TPM_SYMMETRIC_KEY (Part 2, 11.1)
// inside it. Either family answers TPM_BAD_PARAMETER for a blob not
// made for this key and this TPM.
type GroupActivate struct {
	Group          uint32
	CredentialBlob []byte
	Secret         []byte
}

// Attester is the Backend extension that serves the three; without it
// they are answered VTPM_UNSUPPORTED.
type Attester interface {
	DeepQuote(uuid [16]byte, m DeepQuote) ([]byte, error)
	GroupAK(group uint32) ([]byte, error)
	GroupActivate(m GroupActivate) ([]byte, error)
}

func decodeDeepQuote(p []byte) (DeepQuote, error) {
	if len(p) < 1 || int(p[0]) > MaxDeepQuoteNonce || (len(p) != 1+int(p[0])+4+32 && len(p) != 1+int(p[0])+4+32+2) {
		return DeepQuote{}, errorf(TPMBadParameter, "DEEP_QUOTE: %d bytes of parameters do not hold a nonce of at most %d bytes, a PCR bitmap, a digest and a bank", len(p), MaxDeepQuoteNonce)
	}
	n := int(p[0])
	m := DeepQuote{Nonce: p[1 : 1+n], PCRs: binary.BigEndian.Uint32(p[1+n:]), Bank: bankSHA256}
	if m.PCRs>>24 != 0 {
		return DeepQuote{}, errorf(TPMBadParameter, "DEEP_QUOTE: PCR bitmap %#x names PCRs above 23", m.PCRs)
	}
	copy(m.PCRDigest[:], p[5+n:])
	if rest := p[5+n+32:]; len(rest) == 2 {
		m.Bank = binary.BigEndian.Uint16(rest)
	}
	if m.Bank != bankSHA1 && m.Bank != bankSHA256 {
		return DeepQuote{}, errorf(TPMBadParameter, "DEEP_QUOTE: PCR bank %#04x (SHA-1 %#04x or SHA-256 %#04x)", m.Bank, bankSHA1, bankSHA256)
	}
	return m, nil
}

// EncodeDeepQuote builds a DEEP_QUOTE request (the vTPM side).
func EncodeDeepQuote(m DeepQuote) ([]byte, error) {
	if m.Bank == 0 {
		m.Bank = bankSHA256
	}
	if len(m.Nonce) > MaxDeepQuoteNonce || m.PCRs>>24 != 0 || (m.Bank != bankSHA1 && m.Bank != bankSHA256) {
		return nil, fmt.Errorf("DEEP_QUOTE: nonce of %d bytes, PCR bitmap %#x or bank %#04x out of range", len(m.Nonce), m.PCRs, m.Bank)
	}
	b := append([]byte{byte(len(m.Nonce))}, m.Nonce...)
	b = binary.BigEndian.AppendUint32(b, m.PCRs)
	b = append(b, m.PCRDigest[:]...)
	return encodeRequest(TagVTPMReq, OrdDeepQuote, binary.BigEndian.AppendUint16(b, m.Bank))
}

func decodeGroupActivate(p []byte) (GroupActivate, error) {
	bad := func() (GroupActivate, error) {
		return GroupActivate{}, errorf(TPMBadParameter, "GROUP_ACTIVATE: %d bytes do not hold a group, a credential blob and a secret (empty on TPM 1.2)", len(p))
	}
	if len(p) < 6 {
		return bad()
	}
	m := GroupActivate{Group: binary.BigEndian.Uint32(p)}
	n := int(binary.BigEndian.Uint16(p[4:]))
	if len(p) < 6+n+2 {
		return bad()
	}
	m.CredentialBlob = p[6 : 6+n]
	k := int(binary.BigEndian.Uint16(p[6+n:]))
	if len(p) != 8+n+k || n == 0 {
		return bad()
	}
	if k > 0 {
		m.Secret = p[8+n:]
	}
	return m, nil
}

// EncodeGroupActivate builds a GROUP_ACTIVATE request's parameters.
func EncodeGroupActivate(m GroupActivate) []byte {
	b := binary.BigEndian.AppendUint32(nil, m.Group)
	b = binary.BigEndian.AppendUint16(b, uint16(len(m.CredentialBlob)))
	b = append(b, m.CredentialBlob...)
	b = binary.BigEndian.AppendUint16(b, uint16(len(m.Secret)))
	return append(b, m.Secret...)
}
