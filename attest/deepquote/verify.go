package deepquote

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"errors"
	"fmt"
	"math/big"
	"slices"

	"github.com/google/go-tpm/tpm2"

	"github.com/xenvtpm/xenvtpm/mgrdomain/saa"
)

// The links Verify checks, in its order; a *LinkError names the first
// that fails.
const (
	LinkSignature = "hardware quote signature" // the group attestation key signed the quote
	LinkBinding   = "binding"                  // the quote's qualifyingData is this bundle's Binding
	LinkNonce     = "nonce"                    // the verifier's nonce
	LinkVTPM      = "vTPM UUID"                // the vTPM the verifier asked about
	LinkVTPMPCRs  = "vTPM PCRs"                // the vTPM's PCR values the verifier expects
	LinkSAA       = "SAA key"                  // the group's SAA is the one the verifier trusts
	LinkList      = "configuration list"       // the group's installed list is the one the verifier holds, signed by that SAA
	LinkHWPCRs    = "hardware PCRs"            // the hardware PCRs quoted are a configuration the list approves
)

// LinkError is a failed link.
type LinkError struct {
	Link string
	Err  error
}

func (e *LinkError) Error() string { return e.Link + ": " + e.Err.Error() }
func (e *LinkError) Unwrap() error { return e.Err }

func fail(link, f string, a ...any) error {
	return &LinkError{Link: link, Err: fmt.Errorf(f, a...)}
}

// Trust is what the verifier knows beforehand.
type Trust struct {
	// AK is the group's attestation key in the hardware TPM (certified
	// out of band, e.g. with TPM2_MakeCredential against the hardware's
	// EK).
	AK crypto.PublicKey
	// Nonce is the nonce the verifier gave the guest.
	Nonce []byte
	// VTPM, if set, is the UUID of the vTPM the verifier asked about.
	VTPM *[16]byte
	// VTPMPCRs, if set, are the vTPM PCR values (PCR number to its
	// value in the quote's bank: SHA-256, or SHA-1 for a TPM 1.2 vTPM)
	// the verifier expects, each of which must have been
	// quoted with that value.
	VTPMPCRs map[int][]byte
	// SAA is the group's System Approval Agent key and List the signed
	// configuration list the verifier holds (it must be the group's
	// installed list). With SAA nil the configuration links are not
	// checked, and Verify says so in Result.
	SAA  *saa.PublicKey
	List []byte
}

// Result is what a verified deep quote says.
type Result struct {
	Binding Binding
	// Approval is the index in the list of the approval the hardware
	// PCRs match; -1 when Trust.SAA was nil.
	Approval int
	// HWPCRs are the hardware PCRs quoted.
	HWPCRs []uint
	// Clock is the hardware TPM's clock info at the quote (TPM 2.0
	// only: TPM_QUOTE_INFO has none).
	Clock tpm2.TPMSClockInfo
}

// Verify checks q against t link by link.
func Verify(q *Bundle, t Trust) (*Result, error) {
	if err := q.check(); err != nil {
		return nil, fail(LinkBinding, "%v", err)
	}
	hq, err := verifyHardware(q, t.AK)
	if err != nil {
		return nil, err
	}
	b := &q.Binding
	if !bytes.Equal(hq.extraData, hq.want(b)) {
		return nil, fail(LinkBinding, "the quote's qualifyingData is not this bundle's binding (the bundle was altered, or belongs to another quote)")
	}
	if PCRDigest(q.VTPMPCRValues) != b.VTPMPCRDigest {
		return nil, fail(LinkBinding, "the vTPM PCR values are not those the quote binds")
	}
	if !bytes.Equal(b.Nonce, t.Nonce) {
		return nil, fail(LinkNonce, "the quote is for nonce %x, not %x (a replayed or another verifier's quote)", b.Nonce, t.Nonce)
	}
	if t.VTPM != nil && b.VTPM != *t.VTPM {
		return nil, fail(LinkVTPM, "the quote is of vTPM %s, not %s", formatUUID(b.VTPM), formatUUID(*t.VTPM))
	}
	quoted := map[int][]byte{}
	for i, p := range saa.PCRsOf(b.VTPMPCRs) {
		quoted[int(p)] = q.VTPMPCRValues[i]
	}
	for p, want := range t.VTPMPCRs {
		got, ok := quoted[p]
		switch {
		case !ok:
			return nil, fail(LinkVTPMPCRs, "vTPM PCR %d was not quoted", p)
		case len(want) != len(got):
			return nil, fail(LinkVTPMPCRs, "vTPM PCR %d was quoted from the %d-byte bank (%s), the value expected is of %d bytes",
				p, len(got), map[uint16]string{BankSHA1: "SHA-1", BankSHA256: "SHA-256"}[b.VTPMBank], len(want))
		case !bytes.Equal(got, want):
			return nil, fail(LinkVTPMPCRs, "vTPM PCR %d was %x at the quote, not %x", p, got, want)
		}
	}
	r := &Result{Binding: *b, Approval: -1, Clock: hq.clock, HWPCRs: hq.pcrs}
	if hq.pcrsErr != nil {
		return nil, fail(LinkHWPCRs, "%v", hq.pcrsErr)
	}
	if t.SAA == nil {
		return r, nil
	}
	if sha256.Sum256(t.SAA.Bytes()) != b.SAAKey {
		if b.SAAKey == ([DigestSize]byte{}) {
			return nil, fail(LinkSAA, "the vTPM's group has no SAA key")
		}
		return nil, fail(LinkSAA, "the vTPM's group has another SAA key than %s", t.SAA)
	}
	s, err := saa.ParseList(t.List)
	if err != nil {
		return nil, fail(LinkList, "%v", err)
	}
	if err := s.Verify(*t.SAA); err != nil {
		return nil, fail(LinkList, "the list is not signed by the SAA: %v", err)
	}
	if sha256.Sum256(t.List) != b.List {
		if b.List == ([DigestSize]byte{}) {
			return nil, fail(LinkList, "the vTPM's group has no configuration list installed")
		}
		return nil, fail(LinkList, "the group's installed list (sequence %d) is not the one given (sequence %d)", b.ListSeq, s.List.Seq)
	}
	if s.List.Family != hq.family || s.List.Group != b.Group {
		return nil, fail(LinkList, "the list is for TPM %s, group %s (the quote is by TPM %s hardware)", s.List.Family, formatUUID(s.List.Group), hq.family)
	}
	for k, a := range s.List.Approvals {
		if slices.Equal(a.PCRs, r.HWPCRs) && bytes.Equal(a.Digest, hq.pcrDigest) {
			r.Approval = k
			return r, nil
		}
	}
	return nil, fail(LinkHWPCRs, "the hardware PCRs %v (digest %x) match none of the list's %d approvals: the host is not in a configuration the SAA approved",
		r.HWPCRs, hq.pcrDigest, len(s.List.Approvals))
}

// hwQuote is what a verified hardware quote says, in either family's
// terms.
type hwQuote struct {
	family    saa.Family
	extraData []byte                // the quote's qualifyingData / externalData
	want      func(*Binding) []byte // what extraData must be for a Binding
	pcrs      []uint                // the hardware PCRs quoted
	pcrsErr   error                 // why pcrs could not be read (LinkHWPCRs)
	pcrDigest []byte                // their digest as an approval states it
	clock     tpm2.TPMSClockInfo    // TPM 2.0 only
}

// verifyHardware checks the hardware quote's signature (LinkSignature)
// and returns what it says.
func verifyHardware(q *Bundle, ak crypto.PublicKey) (*hwQuote, error) {
	if q.HWFamily == HW12 {
		return verifyHardware12(q, ak)
	}
	if err := verifySignature(ak, q.Attest, q.Signature); err != nil {
		return nil, &LinkError{Link: LinkSignature, Err: err}
	}
	att, err := tpm2.Unmarshal[tpm2.TPMSAttest](q.Attest)
	if err != nil || !bytes.Equal(tpm2.Marshal(att), q.Attest) {
		return nil, fail(LinkSignature, "the signed data is not a TPMS_ATTEST")
	}
	if att.Magic != tpm2.TPMGeneratedValue || att.Type != tpm2.TPMSTAttestQuote {
		return nil, fail(LinkSignature, "not a quote the TPM generated (magic %#x, type %#x)", att.Magic, att.Type)
	}
	info, err := att.Attested.Quote()
	if err != nil {
		return nil, fail(LinkSignature, "quote info: %v", err)
	}
	h := &hwQuote{family: saa.Family20, extraData: att.ExtraData.Buffer, want: (*Binding).QualifyingData,
		pcrDigest: info.PCRDigest.Buffer, clock: att.ClockInfo}
	h.pcrs, h.pcrsErr = sha256Selection(info.PCRSelect)
	return h, nil
}

// quoteInfo12Prefix is TPM_QUOTE_INFO's fixed part (TPM 1.2 Part 2,
// 11.3): TPM_STRUCT_VER 1.1.0.0 and the fixed "QUOT".
var quoteInfo12Prefix = []byte{1, 1, 0, 0, 'Q', 'U', 'O', 'T'}

// verifyHardware12 checks a TPM_Quote (TPM 1.2 Part 3, 16.1): the RSA
// PKCS#1 v1.5 SHA-1 signature over TPM_QUOTE_INFO by the identity key,
// its fixed fields, and that the bundle's hardware PCR values are those
// whose TPM_COMPOSITE_HASH (Part 2, 8.3) the TPM signed: the values are
// carried unsigned beside the quote, so a bundle with altered values
// fails here, as an altered quote does.
func verifyHardware12(q *Bundle, ak crypto.PublicKey) (*hwQuote, error) {
	k, ok := ak.(*rsa.PublicKey)
	if !ok {
		return nil, fail(LinkSignature, "a TPM 1.2 quote needs an RSA identity key, not %T", ak)
	}
	d := sha1.Sum(q.Attest)
	if rsa.VerifyPKCS1v15(k, crypto.SHA1, d[:], q.Signature) != nil {
		return nil, fail(LinkSignature, "not signed by the group's identity key")
	}
	if len(q.Attest) != QuoteInfo12Size || !bytes.Equal(q.Attest[:8], quoteInfo12Prefix) {
		return nil, fail(LinkSignature, "the signed data is not a TPM_QUOTE_INFO")
	}
	h := &hwQuote{family: saa.Family12, extraData: q.Attest[28:48], pcrDigest: q.Attest[8:28],
		want: func(b *Binding) []byte { n := b.Nonce12(); return n[:] }, pcrs: saa.PCRsOf(q.HWPCRs)}
	c, err := saa.Composite12(h.pcrs, q.HWPCRValues)
	if err != nil || !bytes.Equal(c[:], h.pcrDigest) {
		return nil, fail(LinkSignature, "the hardware PCR values in the bundle are not those the TPM quoted (composite digest)")
	}
	return h, nil
}

// sha256Selection returns the PCRs of a selection of the SHA-256 bank
// only.
func sha256Selection(s tpm2.TPMLPCRSelection) ([]uint, error) {
	if len(s.PCRSelections) != 1 || s.PCRSelections[0].Hash != tpm2.TPMAlgSHA256 {
		return nil, errors.New("the quote does not select exactly the SHA-256 bank")
	}
	var out []uint
	for i, m := range s.PCRSelections[0].PCRSelect {
		for j := range 8 {
			if m&(1<<j) != 0 {
				out = append(out, uint(i*8+j))
			}
		}
	}
	return out, nil
}

// verifySignature checks a TPMT_SIGNATURE over SHA-256(attest).
func verifySignature(ak crypto.PublicKey, attest, sigB []byte) error {
	sig, err := tpm2.Unmarshal[tpm2.TPMTSignature](sigB)
	if err != nil || !bytes.Equal(tpm2.Marshal(sig), sigB) {
		return errors.New("the signature does not decode")
	}
	d := sha256.Sum256(attest)
	switch k := ak.(type) {
	case *ecdsa.PublicKey:
		e, err := sig.Signature.ECDSA()
		if err != nil || sig.SigAlg != tpm2.TPMAlgECDSA || e.Hash != tpm2.TPMAlgSHA256 {
			return errors.New("not an ECDSA SHA-256 signature")
		}
		if !ecdsa.Verify(k, d[:], new(big.Int).SetBytes(e.SignatureR.Buffer), new(big.Int).SetBytes(e.SignatureS.Buffer)) {
			return errors.New("not signed by the group's attestation key")
		}
	case *rsa.PublicKey:
		r, err := sig.Signature.RSASSA()
		if err != nil || sig.SigAlg != tpm2.TPMAlgRSASSA || r.Hash != tpm2.TPMAlgSHA256 {
			return errors.New("not an RSASSA SHA-256 signature")
		}
		if rsa.VerifyPKCS1v15(k, crypto.SHA256, d[:], r.Sig.Buffer) != nil {
			return errors.New("not signed by the group's attestation key")
		}
	default:
		return fmt.Errorf("attestation key of type %T", ak)
	}
	return nil
}

// formatUUID writes a UUID in its 8-4-4-4-12 form.
func formatUUID(u [16]byte) string {
	return fmt.Sprintf("%x-%x-%x-%x-%x", u[0:4], u[4:6], u[6:8], u[8:10], u[10:16])
}
