package hwtpm

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"math/big"

	"github.com/google/go-tpm/tpm2"
	"github.com/google/go-tpm/tpm2/transport"
)

// Group attestation keys (TPM 2.0). Each vTPM group gets its own
// attestation key (AK) in the hardware TPM, for the "deep quote": a
// hardware quote whose qualifying data binds a vTPM. The AK is a primary
// key of the endorsement hierarchy whose template carries the group's
// UUID (AKTemplate), so TPM2_CreatePrimary (TPM 2.0 Part 3) re-derives
// the same key from the endorsement seed on every use: nothing is stored
// in the TPM or on disk, and a key survives reboots and TPM2_Clear (which
// changes the owner seed, not the endorsement seed). Being in the
// endorsement hierarchy ties it to the EK: a privacy CA or an
// administrator certifies it with TPM2_MakeCredential against the EK and
// the AK's name, which only this TPM can undo (ActivateCredential).
//
// The AK has userWithAuth and an empty authValue: whoever can send
// commands to the hardware TPM can derive it and quote with it. Being
// restricted, it signs only structures the TPM built (TPM2_Quote's
// TPMS_ATTEST carries the TPM's own PCR digest), so nobody can make it
// attest PCR values the TPM does not hold; but the qualifying data, which
// names the vTPM, is whatever the caller passed. The binding of a deep
// quote to a vTPM is thus as good as the manager's exclusive access to
// the hardware TPM (in the Xen design, its iomem= window at the TIS
// locality it alone uses).
//
// The endorsement hierarchy's authValue is empty out of the box; a host
// owner who set one (tpm2_changeauth -c e) gives it as endorsement_auth=
// (Config.EndorsementAuth). Then CreatePrimary in that hierarchy and the
// EK's PolicySecret(TPM_RH_ENDORSEMENT) authorise with it as an HMAC in
// a salted session, so it never crosses the bus in clear.

// ErrEndorsementAuth: the endorsement hierarchy refused endorsement_auth=.
var ErrEndorsementAuth = errors.New("hwtpm: the TPM's endorsement hierarchy refused endorsement_auth= (tpm2_changeauth -c e set its authValue: give it as endorsement_auth=)")

// ErrCredential: TPM2_ActivateCredential (or on TPM 1.2
// TPM_ActivateIdentity) refused the credential: it was not made with
// this TPM's EK, or not for this group's attestation key, or it was
// altered.
var ErrCredential = errors.New("hwtpm: the credential was not made for this TPM's EK and this attestation key")

// EKCertIndex is the NV index where the TPM manufacturer stores the
// RSA-2048 EK certificate (TCG EK Credential Profile for TPM Family 2.0,
// "EK Credential NV Indices").
const EKCertIndex = 0x01C00002

// akUniqueLabel is hashed with the group UUID into the AK template's
// unique field.
const akUniqueLabel = "xenvtpm group attestation key"

// MaxQualifyingData is the longest qualifyingData Quote accepts: a
// SHA-256 digest, the size of TPMU_HA for the AK's name algorithm (TPM
// 2.0 Part 2, TPM2B_DATA).
const MaxQualifyingData = sha256.Size

// AKTemplate is the template of group's attestation key: ECC NIST P-256
// with the ECDSA-SHA256 scheme, a restricted signing key (fixedTPM,
// fixedParent, sensitiveDataOrigin, userWithAuth), name algorithm
// SHA-256. Its unique field is the point (x, y) with x =
// SHA-256(akUniqueLabel ‖ group) and y empty: TPM2_CreatePrimary uses the
// template, unique field included, only as input of the key derivation
// from the hierarchy's seed (TPM 2.0 Part 1, "Primary Keys"), so one
// coordinate suffices to give each group its own key; the empty y keeps
// the command short. The TPM answers with the real public point in
// unique.
func AKTemplate(group [16]byte) tpm2.TPMTPublic {
	x := sha256.Sum256(append([]byte(akUniqueLabel), group[:]...))
	return tpm2.TPMTPublic{
		Type:    tpm2.TPMAlgECC,
		NameAlg: tpm2.TPMAlgSHA256,
		ObjectAttributes: tpm2.TPMAObject{
			FixedTPM:            true,
			FixedParent:         true,
			SensitiveDataOrigin: true,
			UserWithAuth:        true,
			Restricted:          true,
			SignEncrypt:         true,
		},
		Parameters: tpm2.NewTPMUPublicParms(tpm2.TPMAlgECC, &tpm2.TPMSECCParms{
			Symmetric: tpm2.TPMTSymDefObject{Algorithm: tpm2.TPMAlgNull},
			Scheme: tpm2.TPMTECCScheme{
				Scheme:  tpm2.TPMAlgECDSA,
				Details: tpm2.NewTPMUAsymScheme(tpm2.TPMAlgECDSA, &tpm2.TPMSSigSchemeECDSA{HashAlg: tpm2.TPMAlgSHA256}),
			},
			CurveID: tpm2.TPMECCNistP256,
			KDF:     tpm2.TPMTKDFScheme{Scheme: tpm2.TPMAlgNull},
		}),
		Unique: tpm2.NewTPMUPublicID(tpm2.TPMAlgECC, &tpm2.TPMSECCPoint{X: tpm2.TPM2BECCParameter{Buffer: x[:]}}),
	}
}

// AK is a group attestation key's public part.
type AK struct {
	// Public is the marshalled TPMT_PUBLIC, as TPM2_MakeCredential and a
	// quote's verifier take it.
	Public []byte
	// Name is the key's name (TPM2B_NAME contents): nameAlg ‖
	// SHA-256(Public). A quote's TPMS_ATTEST names its signer by it, and
	// TPM2_MakeCredential binds the credential to it.
	Name []byte
	Key  *ecdsa.PublicKey
}

// EK is the hardware TPM's RSA-2048 endorsement key (TCG EK Credential
// Profile default template, go-tpm's tpm2.RSAEKTemplate).
type EK struct {
	Public []byte // marshalled TPMT_PUBLIC
	Name   []byte // nameAlg ‖ SHA-256(Public)
	Key    *rsa.PublicKey
	// Cert is the DER EK certificate the manufacturer stored at
	// EKCertIndex, nil if the TPM has none.
	Cert []byte
}

// endorsementKey is a primary key of the endorsement hierarchy, loaded
// as a transient object.
type endorsementKey struct {
	handle tpm2.TPMHandle
	name   tpm2.TPM2BName
	pub    tpm2.TPMTPublic
}

// endorsementPrimary runs TPM2_CreatePrimary with tmpl in the endorsement
// hierarchy: with an empty endorsement_auth= in a password session
// (nothing secret crosses), else as an HMAC in a session salted to a
// null-hierarchy key (withSalt). It checks that the TPM made the key the template asks for (the same
// public area apart from unique) and computes the name itself rather than
// trusting the response's. The caller flushes the handle.
func (t *TPM) endorsementPrimary(what string, tmpl tpm2.TPMTPublic) (*endorsementKey, error) {
	create := func(auth tpm2.Session) (*tpm2.CreatePrimaryResponse, error) {
		return tpm2.CreatePrimary{
			PrimaryHandle: tpm2.AuthHandle{Handle: tpm2.TPMRHEndorsement, Auth: auth},
			InPublic:      tpm2.New2B(tmpl),
		}.Execute(t.tr)
	}
	var rsp *tpm2.CreatePrimaryResponse
	var err error
	if ea := t.cfg.EndorsementAuth.TPM2(); len(ea) == 0 {
		rsp, err = create(tpm2.PasswordAuth(nil))
	} else {
		err = t.withSalt(func(null *saltKey) error {
			rsp, err = create(null.hmac(ea))
			return err
		})
	}
	if err != nil {
		if errors.Is(err, tpm2.TPMRCBadAuth) || errors.Is(err, tpm2.TPMRCAuthFail) {
			return nil, fmt.Errorf("%w: TPM2_CreatePrimary(endorsement, %s): %w", ErrEndorsementAuth, what, err)
		}
		return nil, fmt.Errorf("hwtpm: TPM2_CreatePrimary(endorsement, %s): %w", what, err)
	}
	k := &endorsementKey{handle: rsp.ObjectHandle}
	pub, name, err := primaryPublic(rsp)
	if err == nil {
		got := *pub
		got.Unique = tmpl.Unique
		if !bytes.Equal(tpm2.Marshal(got), tpm2.Marshal(tmpl)) {
			err = errors.New("the TPM made a key other than the template's")
		}
	}
	if err != nil {
		t.flush(k.handle)
		return nil, fmt.Errorf("hwtpm: TPM2_CreatePrimary(endorsement, %s): %w", what, err)
	}
	k.pub, k.name = *pub, *name
	return k, nil
}

func groupString(g [16]byte) string {
	return fmt.Sprintf("%x-%x-%x-%x-%x", g[0:4], g[4:6], g[6:8], g[8:10], g[10:16])
}

// loadAK derives group's AK. The caller holds t.mu and flushes it.
func (t *TPM) loadAK(group [16]byte) (*endorsementKey, error) {
	return t.endorsementPrimary("attestation key of group "+groupString(group), AKTemplate(group))
}

// akOf converts a loaded AK's public area.
func akOf(k *endorsementKey) (*AK, error) {
	key, err := eccKey(&k.pub)
	if err != nil {
		return nil, err
	}
	return &AK{Public: tpm2.Marshal(k.pub), Name: bytes.Clone(k.name.Buffer), Key: key}, nil
}

// eccKey is the P-256 public key of pub, checked to be on the curve.
func eccKey(pub *tpm2.TPMTPublic) (*ecdsa.PublicKey, error) {
	parms, err := pub.Parameters.ECCDetail()
	if err != nil {
		return nil, fmt.Errorf("hwtpm: AK public area: %w", err)
	}
	pt, err := pub.Unique.ECC()
	if err != nil {
		return nil, fmt.Errorf("hwtpm: AK public area: %w", err)
	}
	key, err := tpm2.ECDSAPub(parms, pt)
	if err == nil && parms.CurveID != tpm2.TPMECCNistP256 {
		err = fmt.Errorf("curve %v, not NIST P-256", parms.CurveID)
	}
	if err == nil {
		_, err = key.ECDH() // refuses a point off the curve
	}
	if err != nil {
		return nil, fmt.Errorf("hwtpm: AK public area: %w", err)
	}
	return key, nil
}

// AKPublic returns group's attestation key: its public area and name, for
// a quote's verifier and for TPM2_MakeCredential. Costs:
// TPM2_CreatePrimary (an ECC key derivation) and TPM2_FlushContext.
func (t *TPM) AKPublic(group [16]byte) (*AK, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	k, err := t.loadAK(group)
	if err != nil {
		return nil, err
	}
	defer t.flush(k.handle)
	return akOf(k)
}

// loadEK derives the RSA EK. The caller holds t.mu and flushes it.
func (t *TPM) loadEK() (*endorsementKey, error) {
	return t.endorsementPrimary("RSA EK", tpm2.RSAEKTemplate)
}

// EKPublic returns the hardware's RSA-2048 EK, derived with the TCG
// default template (so that it is the key the manufacturer's certificate
// names), and that certificate if the TPM has one at EKCertIndex (read
// with TPM2_NV_ReadPublic and TPM2_NV_Read). An RSA primary key costs a
// prime search in the TPM on every derivation: up to seconds on some
// parts.
func (t *TPM) EKPublic() (*EK, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	k, err := t.loadEK()
	if err != nil {
		return nil, err
	}
	t.flush(k.handle)
	pub, err := tpm2.Pub(k.pub)
	if err != nil {
		return nil, fmt.Errorf("hwtpm: EK public area: %w", err)
	}
	rk, ok := pub.(*rsa.PublicKey)
	if !ok || rk.N.BitLen() != 2048 {
		return nil, errors.New("hwtpm: EK public area: not an RSA-2048 key")
	}
	ek := &EK{Public: tpm2.Marshal(k.pub), Name: bytes.Clone(k.name.Buffer), Key: rk}
	if ek.Cert, err = t.readEKCert(); err != nil {
		return nil, err
	}
	return ek, nil
}

// nvBufferMax is TPM_PT_NV_BUFFER_MAX, the most TPM2_NV_Read returns at
// once (TPM 2.0 Part 2, TPM_PT), or a size every PC Client TPM reads if
// the TPM does not say.
func (t *TPM) nvBufferMax() int {
	const fallback = 512
	rsp, err := tpm2.GetCapability{Capability: tpm2.TPMCapTPMProperties, Property: uint32(tpm2.TPMPTNVBufferMax), PropertyCount: 1}.Execute(t.tr)
	if err != nil {
		return fallback
	}
	props, err := rsp.CapabilityData.Data.TPMProperties()
	if err != nil || len(props.TPMProperty) == 0 || props.TPMProperty[0].Property != tpm2.TPMPTNVBufferMax {
		return fallback
	}
	return int(min(max(props.TPMProperty[0].Value, 64), 4096))
}

// readEKCert reads the EK certificate at EKCertIndex: nil if the index is
// not defined. The TCG EK Credential Profile gives the index
// TPMA_NV_AUTHREAD with an empty authValue, so it is read with its own
// (empty) authorisation; an index readable only by the owner is read with
// owner_auth= in a salted session.
func (t *TPM) readEKCert() ([]byte, error) {
	rp, err := tpm2.NVReadPublic{NVIndex: tpm2.TPMHandle(EKCertIndex)}.Execute(t.tr)
	if errors.Is(err, tpm2.TPMRCHandle) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("hwtpm: TPM2_NV_ReadPublic(EK certificate %#08x): %w", EKCertIndex, err)
	}
	pub, err := rp.NVPublic.Contents()
	if err != nil {
		return nil, fmt.Errorf("hwtpm: TPM2_NV_ReadPublic(EK certificate %#08x): %w", EKCertIndex, err)
	}
	name, err := tpm2.NVName(pub)
	if err != nil || !bytes.Equal(name.Buffer, rp.NVName.Buffer) {
		return nil, fmt.Errorf("hwtpm: TPM2_NV_ReadPublic(EK certificate %#08x): name does not match the public area", EKCertIndex)
	}
	if !pub.Attributes.Written {
		return nil, nil
	}
	size := int(pub.DataSize)
	chunk := t.nvBufferMax()
	idx := tpm2.NamedHandle{Handle: tpm2.TPMHandle(EKCertIndex), Name: *name}
	read := func(auth tpm2.AuthHandle) ([]byte, error) {
		var out []byte
		for len(out) < size {
			n := min(chunk, size-len(out))
			rsp, err := tpm2.NVRead{AuthHandle: auth, NVIndex: idx, Size: uint16(n), Offset: uint16(len(out))}.Execute(t.tr)
			if err != nil {
				return nil, fmt.Errorf("hwtpm: TPM2_NV_Read(EK certificate %#08x, %d bytes at %d): %w", EKCertIndex, n, len(out), err)
			}
			if len(rsp.Data.Buffer) != n {
				return nil, fmt.Errorf("hwtpm: TPM2_NV_Read(EK certificate %#08x, %d bytes at %d): %d bytes returned", EKCertIndex, n, len(out), len(rsp.Data.Buffer))
			}
			out = append(out, rsp.Data.Buffer...)
		}
		return out, nil
	}
	var cert []byte
	switch {
	case pub.Attributes.AuthRead:
		cert, err = read(tpm2.AuthHandle{Handle: idx.Handle, Name: idx.Name, Auth: tpm2.PasswordAuth(nil)})
	case pub.Attributes.OwnerRead:
		err = t.withSalt(func(k *saltKey) error {
			var err error
			cert, err = read(t.owner(k))
			return ownerRefused(err)
		})
	default:
		err = fmt.Errorf("hwtpm: EK certificate %#08x is readable by neither its own authorisation nor the owner", EKCertIndex)
	}
	if err != nil {
		return nil, err
	}
	return trimDER(cert), nil
}

// trimDER cuts the padding some manufacturers leave after the
// certificate in a fixed-size index: a DER SEQUENCE's own length says
// where it ends. Anything that is not a DER SEQUENCE is returned as is.
func trimDER(b []byte) []byte {
	if len(b) < 2 || b[0] != 0x30 {
		return b
	}
	n, hdr := int(b[1]), 2
	if b[1]&0x80 != 0 {
		k := int(b[1] & 0x7f)
		if k == 0 || k > 3 || len(b) < 2+k {
			return b
		}
		n = 0
		for _, c := range b[2 : 2+k] {
			n = n<<8 | int(c)
		}
		hdr += k
	}
	if hdr+n > len(b) {
		return b
	}
	return b[:hdr+n]
}

// Sizes above what any TPM accepts are refused before marshalling: a
// TPM2B's length is 16 bits.
const (
	maxIDObject       = 1024 // TPM2B_ID_OBJECT: an HMAC and an encrypted digest
	maxEncryptedSeed  = 1024 // TPM2B_ENCRYPTED_SECRET: an RSA-4096 ciphertext at most
	credentialMaxSize = 64   // TPM2B_DIGEST: the credential is at most a digest
)

// ActivateCredential is TPM2_ActivateCredential with group's AK as
// activateHandle and the RSA EK as keyHandle: it returns the credential
// that someone holding the EK's public key encrypted with
// TPM2_MakeCredential to the AK's name (credentialBlob is the
// TPM2B_ID_OBJECT contents, secret the TPM2B_ENCRYPTED_SECRET contents).
// The TPM releases it only if the AK with that name is loaded in the same
// TPM as the EK, which is what a privacy CA or an administrator checks
// before certifying the AK. A credential made for another key or TPM is
// ErrCredential.
//
// The EK's authorisation is its policy, TPM2_PolicySecret(TPM_RH_ENDORSEMENT)
// (TCG EK Credential Profile), run in a policy session salted to the EK
// itself, which also encrypts the returned credential on the bus
// (TPM 2.0 Part 1, 21). The AK's is its empty authValue. Costs: two
// TPM2_CreatePrimary (one an RSA key), TPM2_StartAuthSession,
// TPM2_PolicySecret, TPM2_ActivateCredential, two TPM2_FlushContext.
func (t *TPM) ActivateCredential(group [16]byte, credentialBlob, secret []byte) ([]byte, error) {
	if len(credentialBlob) == 0 || len(credentialBlob) > maxIDObject || len(secret) == 0 || len(secret) > maxEncryptedSeed {
		return nil, fmt.Errorf("%w: a credential blob of %d bytes with a secret of %d bytes", ErrCredential, len(credentialBlob), len(secret))
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	ak, err := t.loadAK(group)
	if err != nil {
		return nil, err
	}
	defer t.flush(ak.handle)
	ek, err := t.loadEK()
	if err != nil {
		return nil, err
	}
	defer t.flush(ek.handle)
	policy := tpm2.Policy(sessionHash, sessionNonce, func(tr transport.TPM, s tpm2.TPMISHPolicy, nonceTPM tpm2.TPM2BNonce) error {
		auth := tpm2.PasswordAuth(nil)
		if ea := t.cfg.EndorsementAuth.TPM2(); len(ea) > 0 {
			auth = tpm2.HMAC(tpm2.TPMAlgSHA256, 16, tpm2.Auth(ea), tpm2.Salted(ek.handle, ek.pub))
		}
		_, err := tpm2.PolicySecret{
			AuthHandle:    tpm2.AuthHandle{Handle: tpm2.TPMRHEndorsement, Auth: auth},
			PolicySession: s,
			NonceTPM:      nonceTPM,
		}.Execute(tr)
		if err != nil {
			// go-tpm does not flush a session whose policy failed.
			tpm2.FlushContext{FlushHandle: s}.Execute(tr)
			if errors.Is(err, tpm2.TPMRCBadAuth) || errors.Is(err, tpm2.TPMRCAuthFail) {
				return fmt.Errorf("%w: TPM2_PolicySecret(endorsement): %w", ErrEndorsementAuth, err)
			}
			return fmt.Errorf("hwtpm: TPM2_PolicySecret(endorsement): %w", err)
		}
		return nil
	}, tpm2.Salted(ek.handle, ek.pub), encryptOut())
	rsp, err := tpm2.ActivateCredential{
		ActivateHandle: tpm2.AuthHandle{Handle: ak.handle, Name: ak.name, Auth: tpm2.PasswordAuth(nil)},
		KeyHandle:      tpm2.AuthHandle{Handle: ek.handle, Name: ek.name, Auth: policy},
		CredentialBlob: tpm2.TPM2BIDObject{Buffer: credentialBlob},
		Secret:         tpm2.TPM2BEncryptedSecret{Buffer: secret},
	}.Execute(t.tr)
	switch {
	case err == nil:
	case errors.Is(err, ErrEndorsementAuth):
		return nil, err
	case errors.Is(err, tpm2.TPMRCIntegrity), errors.Is(err, tpm2.TPMRCValue), errors.Is(err, tpm2.TPMRCSize):
		return nil, fmt.Errorf("%w: TPM2_ActivateCredential: %w", ErrCredential, err)
	default:
		return nil, fmt.Errorf("hwtpm: TPM2_ActivateCredential: %w", err)
	}
	if len(rsp.CertInfo.Buffer) > credentialMaxSize {
		return nil, fmt.Errorf("hwtpm: TPM2_ActivateCredential: a %d-byte credential", len(rsp.CertInfo.Buffer))
	}
	return rsp.CertInfo.Buffer, nil
}

// Quote is TPM2_Quote with group's AK over pcrs of the SHA-256 bank, with
// qualifyingData (at most MaxQualifyingData bytes) as the attestation's
// extraData. It returns the TPMS_ATTEST the TPM signed (the TPM2B_ATTEST
// contents) and the marshalled TPMT_SIGNATURE (ECDSA-SHA256 over
// SHA-256(attest)). Before returning them it checks that they verify
// against the AK and carry qualifyingData and the PCR selection asked,
// so a garbled response is an error here rather than at the verifier.
// Costs: TPM2_CreatePrimary, TPM2_Quote, TPM2_FlushContext.
func (t *TPM) Quote(group [16]byte, qualifyingData []byte, pcrs []uint) (attest, signature []byte, err error) {
	if len(qualifyingData) > MaxQualifyingData {
		return nil, nil, fmt.Errorf("hwtpm: TPM2_Quote: qualifying data of %d bytes (at most %d)", len(qualifyingData), MaxQualifyingData)
	}
	for _, p := range pcrs {
		if p > MaxPCR {
			return nil, nil, fmt.Errorf("hwtpm: TPM2_Quote: PCR %d out of range 0..%d", p, MaxPCR)
		}
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	k, err := t.loadAK(group)
	if err != nil {
		return nil, nil, err
	}
	defer t.flush(k.handle)
	sel := pcrSelection(tpm2.TPMAlgSHA256, pcrs)
	rsp, err := tpm2.Quote{
		SignHandle:     tpm2.AuthHandle{Handle: k.handle, Name: k.name, Auth: tpm2.PasswordAuth(nil)},
		QualifyingData: tpm2.TPM2BData{Buffer: qualifyingData},
		InScheme:       tpm2.TPMTSigScheme{Scheme: tpm2.TPMAlgNull},
		PCRSelect:      sel,
	}.Execute(t.tr)
	if err != nil {
		return nil, nil, fmt.Errorf("hwtpm: TPM2_Quote(group %s, PCRs %s): %w", groupString(group), FormatPCRs(pcrs), err)
	}
	key, err := eccKey(&k.pub)
	if err != nil {
		return nil, nil, err
	}
	attest, signature = rsp.Quoted.Bytes(), tpm2.Marshal(rsp.Signature)
	_, info, err := parseQuote(attest, signature, key)
	if err == nil && !bytes.Equal(info.ExtraData.Buffer, qualifyingData) {
		err = fmt.Errorf("extraData %x, not the qualifying data given", info.ExtraData.Buffer)
	}
	if err == nil && !bytes.Equal(tpm2.Marshal(info.Quote.PCRSelect), tpm2.Marshal(sel)) {
		err = errors.New("the quote's PCR selection is not the one asked")
	}
	if want := akQualifiedName(k.name.Buffer); err == nil && !bytes.Equal(info.Signer, want) {
		err = fmt.Errorf("qualifiedSigner %x, not the attestation key's (%x)", info.Signer, want)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("hwtpm: TPM2_Quote(group %s): the TPM's answer: %w", groupString(group), err)
	}
	return bytes.Clone(attest), signature, nil
}

// akQualifiedName is the qualified name of a primary key of the
// endorsement hierarchy whose name is name (TPM 2.0 Part 1, "Qualified
// Name"): nameAlg ‖ SHA-256(handle of TPM_RH_ENDORSEMENT ‖ name), a
// hierarchy's qualified name being its handle. TPM2_Quote names its
// signer by it in qualifiedSigner.
func akQualifiedName(name []byte) []byte {
	h := sha256.New()
	h.Write(binary.BigEndian.AppendUint32(nil, uint32(tpm2.TPMRHEndorsement)))
	h.Write(name)
	return h.Sum(binary.BigEndian.AppendUint16(nil, uint16(tpm2.TPMAlgSHA256)))
}

// quoteInfo is what parseQuote finds in a quote.
type quoteInfo struct {
	ExtraData tpm2.TPM2BData
	Signer    []byte
	Quote     *tpm2.TPMSQuoteInfo
}

// parseQuote decodes a TPMS_ATTEST of type TPM_ST_ATTEST_QUOTE (magic
// TPM_GENERATED_VALUE, which go-tpm checks) and a TPMT_SIGNATURE, and
// checks the ECDSA-SHA256 signature with key (if not nil). It never
// panics on malformed input.
func parseQuote(attest, signature []byte, key *ecdsa.PublicKey) (*tpm2.TPMSAttest, *quoteInfo, error) {
	a, err := tpm2.Unmarshal[tpm2.TPMSAttest](attest)
	if err != nil {
		return nil, nil, fmt.Errorf("TPMS_ATTEST: %w", err)
	}
	if a.Magic != tpm2.TPMGeneratedValue {
		return nil, nil, fmt.Errorf("TPMS_ATTEST: magic %#x", uint32(a.Magic))
	}
	if a.Type != tpm2.TPMSTAttestQuote {
		return nil, nil, fmt.Errorf("TPMS_ATTEST: type %#x, not TPM_ST_ATTEST_QUOTE", uint16(a.Type))
	}
	q, err := a.Attested.Quote()
	if err != nil {
		return nil, nil, fmt.Errorf("TPMS_ATTEST: %w", err)
	}
	if len(tpm2.Marshal(a)) != len(attest) {
		return nil, nil, errors.New("TPMS_ATTEST: trailing bytes")
	}
	s, err := tpm2.Unmarshal[tpm2.TPMTSignature](signature)
	if err != nil {
		return nil, nil, fmt.Errorf("TPMT_SIGNATURE: %w", err)
	}
	if s.SigAlg != tpm2.TPMAlgECDSA {
		return nil, nil, fmt.Errorf("TPMT_SIGNATURE: algorithm %v, not ECDSA", s.SigAlg)
	}
	ecc, err := s.Signature.ECDSA()
	if err != nil {
		return nil, nil, fmt.Errorf("TPMT_SIGNATURE: %w", err)
	}
	if ecc.Hash != tpm2.TPMAlgSHA256 {
		return nil, nil, fmt.Errorf("TPMT_SIGNATURE: hash %v, not SHA-256", ecc.Hash)
	}
	if key != nil {
		d := sha256.Sum256(attest)
		r, ss := new(big.Int).SetBytes(ecc.SignatureR.Buffer), new(big.Int).SetBytes(ecc.SignatureS.Buffer)
		if !ecdsa.Verify(key, d[:], r, ss) {
			return nil, nil, errors.New("the signature does not verify against the attestation key")
		}
	}
	return a, &quoteInfo{ExtraData: a.ExtraData, Signer: a.QualifiedSigner.Buffer, Quote: q}, nil
}
