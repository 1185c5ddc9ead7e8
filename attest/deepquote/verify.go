package deepquote

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/sha256"
	"errors"
	"fmt"
	"math/big"

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
	// SHA-256 value) the verifier expects, each of which must have been
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
	// Clock is the hardware TPM's clock info at the quote.
	Clock tpm2.TPMSClockInfo
}

// Verify checks q against t link by link.
func Verify(q *Bundle, t Trust) (*Result, error) {
	if err := q.check(); err != nil {
		return nil, fail(LinkBinding, "%v", err)
	}
	if err := verifySignature(t.AK, q.Attest, q.Signature); err != nil {
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
	b := &q.Binding
	if !bytes.Equal(att.ExtraData.Buffer, b.QualifyingData()) {
		return nil, fail(LinkBinding, "the quote's qualifyingData is not this bundle's binding (the bundle was altered, or belongs to another quote)")
	}
	if PCRDigest(q.VTPMPCRValues) != b.VTPMPCRDigest {
		return nil, fail(LinkBinding, "the vTPM PCR values are not those the quote binds")
	}
	if !bytes.Equal(b.Nonce, t.Nonce) {
		return nil, fail(LinkNonce, "the quote is for nonce %x, not %x (a replayed or another verifier's quote)", b.Nonce, t.Nonce)
	}
	if t.VTPM != nil && b.VTPM != *t.VTPM {
		return nil, fail(LinkVTPM, "the quote is of vTPM %s, not %s", FormatUUID(b.VTPM), FormatUUID(*t.VTPM))
	}
	quoted := map[int][]byte{}
	i := 0
	for p := range 24 {
		if b.VTPMPCRs&(1<<p) != 0 {
			quoted[p] = q.VTPMPCRValues[i]
			i++
		}
	}
	for p, want := range t.VTPMPCRs {
		got, ok := quoted[p]
		switch {
		case !ok:
			return nil, fail(LinkVTPMPCRs, "vTPM PCR %d was not quoted", p)
		case !bytes.Equal(got, want):
			return nil, fail(LinkVTPMPCRs, "vTPM PCR %d was %x at the quote, not %x", p, got, want)
		}
	}
	r := &Result{Binding: *b, Approval: -1, Clock: att.ClockInfo}
	if r.HWPCRs, err = sha256Selection(info.PCRSelect); err != nil {
		return nil, fail(LinkHWPCRs, "%v", err)
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
	if s.List.Family != saa.Family20 || s.List.Group != b.Group {
		return nil, fail(LinkList, "the list is for TPM %s, group %s", s.List.Family, FormatUUID(s.List.Group))
	}
	for k, a := range s.List.Approvals {
		if equalPCRs(a.PCRs, r.HWPCRs) && bytes.Equal(a.Digest, info.PCRDigest.Buffer) {
			r.Approval = k
			return r, nil
		}
	}
	return nil, fail(LinkHWPCRs, "the hardware PCRs %v (digest %x) match none of the list's %d approvals: the host is not in a configuration the SAA approved",
		r.HWPCRs, info.PCRDigest.Buffer, len(s.List.Approvals))
}

func equalPCRs(a, b []uint) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
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

// FormatUUID writes a UUID in its 8-4-4-4-12 form.
func FormatUUID(u [16]byte) string {
	return fmt.Sprintf("%x-%x-%x-%x-%x", u[0:4], u[4:6], u[6:8], u[8:10], u[10:16])
}
