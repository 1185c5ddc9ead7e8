package tpm12

import (
	"crypto"
	"crypto/rsa"
	"crypto/sha1"
	"slices"
)

// Structure tags of the attestation commands, Part 2 §3.1.
const (
	tagCertifyInfo2 uint16 = 0x0029 // TPM_TAG_CERTIFY_INFO2
	tagQuoteInfo2   uint16 = 0x0036 // TPM_TAG_QUOTE_INFO2
)

// quoteInfo is TPM_QUOTE_INFO, Part 2 §11.3: what TPM_Quote signs. Its
// version is 1.1.0.0 and its fixed field "QUOT" whatever the TPM.
type quoteInfo struct {
	DigestValue  digest
	ExternalData digest
}

func (q *quoteInfo) marshal(w *writer) {
	(&version{Major: 1, Minor: 1}).marshal(w)
	w.bytes([]byte("QUOT"))
	w.bytes(q.DigestValue[:])
	w.bytes(q.ExternalData[:])
}

// quoteInfo2 is TPM_QUOTE_INFO2, Part 2 §11.4: what TPM_Quote2 signs
// (followed, with addVersion, by a TPM_CAP_VERSION_INFO).
type quoteInfo2 struct {
	ExternalData digest
	InfoShort    pcrInfoShort
}

func (q *quoteInfo2) marshal(w *writer) {
	w.u16(tagQuoteInfo2)
	w.bytes([]byte("QUT2"))
	w.bytes(q.ExternalData[:])
	q.InfoShort.marshal(w)
}

// certifyInfo is TPM_CERTIFY_INFO (Part 2 §11.1) or, when V2,
// TPM_CERTIFY_INFO2 (§11.2): the description of a key that
// TPM_CertifyKey signs. PCRInfo is the marshalled TPM_PCR_INFO
// (TPM_CERTIFY_INFO) or TPM_PCR_INFO_SHORT (TPM_CERTIFY_INFO2), empty for
// a key bound to no PCRs; PayloadType and MigrationAuthority exist in
// TPM_CERTIFY_INFO2 only.
type certifyInfo struct {
	V2                 bool
	PayloadType        uint8
	KeyUsage           uint16
	KeyFlags           uint32
	AuthDataUsage      uint8
	AlgorithmParms     keyParms
	PubkeyDigest       digest
	Data               digest
	ParentPCRStatus    bool
	PCRInfo            []byte
	MigrationAuthority []byte
}

func (c *certifyInfo) marshal(w *writer) {
	if c.V2 {
		w.u16(tagCertifyInfo2)
		w.u8(0) // fill
		w.u8(c.PayloadType)
	} else {
		(&version{Major: 1, Minor: 1}).marshal(w)
	}
	w.u16(c.KeyUsage)
	w.u32(c.KeyFlags)
	w.u8(c.AuthDataUsage)
	c.AlgorithmParms.marshal(w)
	w.bytes(c.PubkeyDigest[:])
	w.bytes(c.Data[:])
	w.bool(c.ParentPCRStatus)
	w.sized(c.PCRInfo)
	if c.V2 {
		w.sized(c.MigrationAuthority)
	}
}

// quoteComposite is the TPM_PCR_COMPOSITE of the PCRs sel selects and
// its TPM_COMPOSITE_HASH. A selection of no PCR has the hash of twenty
// zero bytes rather than the digest of an empty composite (Part 2 §8.1
// for digestAtRelease; libtpms uses the same rule for the quotes).
func (t *TPM) quoteComposite(sel pcrSelection) (*pcrComposite, digest) {
	c := &pcrComposite{Select: sel}
	for _, i := range sel.selected() {
		c.Values = append(c.Values, t.pcr[i])
	}
	if len(c.Values) == 0 {
		return c, digest{}
	}
	w := &writer{}
	c.marshal(w)
	return c, sha1.Sum(w.b)
}

// signDigest signs the SHA-1 digest d of a TPM structure with k under
// the key's signature scheme (Part 2 §4.9): PKCS #1 v1.5 over the SHA-1
// DigestInfo for TPM_SS_RSASSAPKCS1v15_SHA1 and _INFO (the structures
// these commands sign carry their own context, so _INFO adds nothing),
// over the bare value for _DER. A key without a signature scheme cannot
// sign (TPM_INVALID_KEYUSAGE, as libtpms).
func (t *TPM) signDigest(k *rsa.PrivateKey, scheme uint16, d digest) ([]byte, error) {
	var h crypto.Hash
	switch scheme {
	case ssRSASSASHA1, ssRSASSAINFO:
		h = crypto.SHA1
	case ssRSASSADER:
	default:
		return nil, rcE(rcInvalidKeyUsage, "signature scheme %#x", scheme)
	}
	sig, err := rsa.SignPKCS1v15(nil, k, h, d[:])
	if err != nil {
		return nil, rcE(rcFail, "sign: %v", err)
	}
	return sig, nil
}

// authFailAs reports a failed authorization as rc: the commands whose
// sessions libtpms checks in another order than they arrive answer
// TPM_AUTHFAIL or TPM_AUTH2FAIL by the entity, not by the session's
// place.
func authFailAs(err error, rc uint32) error {
	if c := rcOf(err); c == rcAuthFail || c == rcAuth2Fail {
		return rcE(rc, "%v", err)
	}
	return err
}

// signingKey returns the loaded key h names for a command that signs
// with it, its PCR binding checked, authorized by c's session or, when
// c has none, allowed without authorization only for a key that needs
// none.
func (t *TPM) signingKey(c *call, h uint32) (*loadedKey, error) {
	k, err := t.useKey(h, false)
	if err != nil {
		return nil, err
	}
	if err := t.authorizeKeyUse(c, k); err != nil {
		return nil, err
	}
	return k, nil
}

// checkQuoteKey is Part 3 §16.3 actions 2 and 3: a key that signs PCR
// values signs SHA-1 digests (TPM_INAPPROPRIATE_SIG) and is a signing,
// identity or legacy key (TPM_INVALID_KEYUSAGE).
func checkQuoteKey(k *loadedKey) error {
	if ss := k.key.AlgorithmParms.SigScheme; ss != ssRSASSASHA1 && ss != ssRSASSAINFO {
		return rcE(rcInappropriateSig, "signature scheme %#x", ss)
	}
	switch k.key.KeyUsage {
	case keyUsageSigning, keyUsageIdentity, keyUsageLegacy:
		return nil
	}
	return rcE(rcInvalidKeyUsage, "key usage %#x", k.key.KeyUsage)
}

type quoteIn struct {
	KeyHandle    uint32
	ExternalData digest
	TargetPCR    pcrSelection
}

func (q *quoteIn) unmarshal(r *reader) {
	q.KeyHandle = r.u32()
	q.ExternalData = r.digest()
	q.TargetPCR.unmarshal(r)
}

type quoteOut struct {
	PCRData pcrComposite
	Sig     []byte
}

func (o *quoteOut) marshal(w *writer) {
	o.PCRData.marshal(w)
	w.sized(o.Sig)
}

// quote is TPM_Quote, Part 3 §16.3: the values of the selected PCRs,
// and a signature of the TPM_QUOTE_INFO naming their composite hash and
// the caller's externalData.
func (t *TPM) quote(c *call, in *quoteIn) (*quoteOut, error) {
	k, err := t.signingKey(c, in.KeyHandle)
	if err != nil {
		return nil, err
	}
	if err := checkQuoteKey(k); err != nil {
		return nil, err
	}
	comp, h := t.quoteComposite(in.TargetPCR)
	w := &writer{}
	(&quoteInfo{DigestValue: h, ExternalData: in.ExternalData}).marshal(w)
	sig, err := t.signDigest(k.priv, k.key.AlgorithmParms.SigScheme, sha1.Sum(w.b))
	if err != nil {
		return nil, err
	}
	return &quoteOut{PCRData: *comp, Sig: sig}, nil
}

type quote2In struct {
	quoteIn
	AddVersion bool
}

func (q *quote2In) unmarshal(r *reader) {
	q.quoteIn.unmarshal(r)
	// A BOOL other than 0 or 1 is TPM_BAD_PARAMETER, as libtpms reads
	// it.
	if v := r.u8(); v > 1 {
		r.fail(rcE(rcBadParameter, "addVersion %#x", v))
	} else {
		q.AddVersion = v == 1
	}
}

type quote2Out struct {
	PCRData     pcrInfoShort
	VersionInfo []byte
	Sig         []byte
}

func (o *quote2Out) marshal(w *writer) {
	o.PCRData.marshal(w)
	w.sized(o.VersionInfo)
	w.sized(o.Sig)
}

// quote2 is TPM_Quote2, Part 3 §16.5: as TPM_Quote, but the signed
// TPM_QUOTE_INFO2 carries a TPM_PCR_INFO_SHORT that names the locality
// the command came from, and with addVersion the TPM's
// TPM_CAP_VERSION_INFO, signed after it and returned.
func (t *TPM) quote2(c *call, in *quote2In) (*quote2Out, error) {
	k, err := t.signingKey(c, in.KeyHandle)
	if err != nil {
		return nil, err
	}
	if err := checkQuoteKey(k); err != nil {
		return nil, err
	}
	_, h := t.quoteComposite(in.TargetPCR)
	out := &quote2Out{PCRData: pcrInfoShort{Select: in.TargetPCR, LocalityAtRelease: localityBit(t.locality), DigestAtRelease: h}}
	w := &writer{}
	(&quoteInfo2{ExternalData: in.ExternalData, InfoShort: out.PCRData}).marshal(w)
	if in.AddVersion {
		v := &writer{}
		(&capVersionInfo{Version: firmware, SpecLevel: specLevel, ErrataRev: errataRev, TPMVendorID: manufacturerID}).marshal(v)
		out.VersionInfo = v.b
		w.bytes(v.b)
	}
	if out.Sig, err = t.signDigest(k.priv, k.key.AlgorithmParms.SigScheme, sha1.Sum(w.b)); err != nil {
		return nil, err
	}
	return out, nil
}

type certifyKeyIn struct {
	CertHandle uint32
	KeyHandle  uint32
	AntiReplay digest
}

func (p *certifyKeyIn) unmarshal(r *reader) {
	p.CertHandle = r.u32()
	p.KeyHandle = r.u32()
	p.AntiReplay = r.digest()
}

type certifyKeyOut struct {
	CertifyInfo certifyInfo
	OutData     []byte
}

func (o *certifyKeyOut) marshal(w *writer) {
	o.CertifyInfo.marshal(w)
	w.sized(o.OutData)
}

// certifyKey is TPM_CertifyKey, Part 3 §13.8: the key certHandle names
// signs a description of the key keyHandle names. With AUTH2 both keys
// are authorized; with AUTH1 the certified key only, and the certifying
// key must need no authorization; without sessions neither may need one
// (the certified key may be TPM_AUTH_PRIV_USE_ONLY). A key bound to PCRs 16 and above
// or to localities is described by a TPM_CERTIFY_INFO2, any other by a
// TPM_CERTIFY_INFO.
func (t *TPM) certifyKey(c *call, in *certifyKeyIn) (*certifyKeyOut, error) {
	cert, err := t.useKey(in.CertHandle, false)
	if err != nil {
		return nil, err
	}
	key, err := t.useKey(in.KeyHandle, false)
	if err != nil {
		return nil, err
	}
	if err := checkCertifierScheme(cert); err != nil {
		return nil, err
	}
	if len(c.auth) == 2 {
		if err := t.authorizeKey(c, 0, cert); err != nil {
			return nil, err
		}
	} else if cert.key.AuthDataUsage != authNever {
		return nil, rcE(rcAuthFail, "certifying key needs authorization")
	}
	if len(c.auth) > 0 {
		// The certified key's session is the last; a failure is
		// TPM_AUTH2FAIL whether or not it is the second.
		if err := t.authorizeKey(c, len(c.auth)-1, key); err != nil {
			return nil, authFailAs(err, rcAuth2Fail)
		}
	} else if key.key.AuthDataUsage == authAlways {
		return nil, rcE(rcAuthFail, "certified key needs authorization")
	}
	if err := checkCertifyUsages(cert, key); err != nil {
		return nil, err
	}
	return t.certify(cert, key, in.AntiReplay, false)
}

// certify describes key in a TPM_CERTIFY_INFO, or a TPM_CERTIFY_INFO2
// when v2 or when key is bound to PCRs from 16 on or to localities
// (Part 3 §13.8 actions 7-14, §13.9 actions 6-14), and signs it with
// cert.
func (t *TPM) certify(cert, key *loadedKey, antiReplay digest, v2 bool) (*certifyKeyOut, error) {
	info := certifyInfo{
		V2:              v2,
		PayloadType:     ptAsym,
		KeyUsage:        key.key.KeyUsage,
		KeyFlags:        key.key.KeyFlags,
		AuthDataUsage:   key.key.AuthDataUsage,
		AlgorithmParms:  key.key.AlgorithmParms,
		PubkeyDigest:    sha1.Sum(key.key.PubKey),
		Data:            antiReplay,
		ParentPCRStatus: t.parentPCRStatus(key),
	}
	if p := key.pcr; p != nil {
		high := len(p.Release.Select) > 2 && slices.ContainsFunc(p.Release.Select[2:], func(b byte) bool { return b != 0 })
		w := &writer{}
		if v2 || high || p.Long && p.LocalityAtRelease != locAll {
			info.V2 = true
			loc := locAll
			if p.Long {
				loc = p.LocalityAtRelease
			}
			(&pcrInfoShort{Select: p.Release, LocalityAtRelease: loc, DigestAtRelease: p.DigestAtRelease}).marshal(w)
		} else {
			(&pcrInfo{Release: p.Release, DigestAtRelease: p.DigestAtRelease}).marshal(w)
		}
		info.PCRInfo = w.b
	}
	w := &writer{}
	info.marshal(w)
	sig, err := t.signDigest(cert.priv, cert.key.AlgorithmParms.SigScheme, sha1.Sum(w.b))
	if err != nil {
		return nil, err
	}
	return &certifyKeyOut{CertifyInfo: info, OutData: sig}, nil
}

// checkCertifyUsages is §13.8 actions 4-6 (§13.9 actions 3-5): an
// identity certifies no migratable key (this TPM makes no certifiable
// migration keys, whose payload would allow it), the certifying key
// signs, and the certified key is one of the five usages a certificate
// describes.
func checkCertifyUsages(cert, key *loadedKey) error {
	if cert.key.KeyUsage == keyUsageIdentity && key.key.KeyFlags&keyFlagMigratable != 0 {
		return rcE(rcMigrateFail, "an identity certifies no migratable key")
	}
	switch cert.key.KeyUsage {
	case keyUsageSigning, keyUsageIdentity, keyUsageLegacy:
	default:
		return rcE(rcInvalidKeyUsage, "certifying key usage %#x", cert.key.KeyUsage)
	}
	switch key.key.KeyUsage {
	case keyUsageSigning, keyUsageStorage, keyUsageIdentity, keyUsageBind, keyUsageLegacy:
	default:
		return rcE(rcInvalidKeyUsage, "certified key usage %#x", key.key.KeyUsage)
	}
	return nil
}

// checkCertifierScheme is §13.8 action 1: the certifying key signs SHA-1
// digests.
func checkCertifierScheme(cert *loadedKey) error {
	if ss := cert.key.AlgorithmParms.SigScheme; ss != ssRSASSASHA1 && ss != ssRSASSAINFO {
		return rcE(rcBadKeyProperty, "certifying key's signature scheme %#x", ss)
	}
	return nil
}

type certifyKey2In struct {
	KeyHandle          uint32
	CertHandle         uint32
	MigrationPubDigest digest
	AntiReplay         digest
}

func (p *certifyKey2In) unmarshal(r *reader) {
	p.KeyHandle = r.u32()
	p.CertHandle = r.u32()
	p.MigrationPubDigest = r.digest()
	p.AntiReplay = r.digest()
}

// certifyKey2 is TPM_CertifyKey2, Part 3 §13.9: TPM_CertifyKey with the
// handles and sessions the other way round (the certified key's session
// first, with AUTH2; the certifying key's last), always a
// TPM_CERTIFY_INFO2. migrationPubDigest matters only for certifiable
// migration keys, which this TPM does not make: their
// migrationAuthority stays empty.
func (t *TPM) certifyKey2(c *call, in *certifyKey2In) (*certifyKeyOut, error) {
	key, err := t.useKey(in.KeyHandle, false)
	if err != nil {
		return nil, err
	}
	cert, err := t.useKey(in.CertHandle, false)
	if err != nil {
		return nil, err
	}
	if err := checkCertifierScheme(cert); err != nil {
		return nil, err
	}
	if len(c.auth) == 2 {
		if err := t.authorizeKey(c, 0, key); err != nil {
			return nil, err
		}
	} else if key.key.AuthDataUsage == authAlways {
		return nil, rcE(rcAuthFail, "certified key needs authorization")
	}
	if len(c.auth) > 0 {
		if err := t.authorizeKey(c, len(c.auth)-1, cert); err != nil {
			return nil, authFailAs(err, rcAuth2Fail)
		}
	} else if cert.key.AuthDataUsage != authNever {
		return nil, rcE(rcAuthFail, "certifying key needs authorization")
	}
	if err := checkCertifyUsages(cert, key); err != nil {
		return nil, err
	}
	return t.certify(cert, key, in.AntiReplay, true)
}

// parentPCRStatus is TPM_KEY_HANDLE_ENTRY's parentPCRStatus of k: whether
// the key it was loaded under is bound to PCRs. The SRK is bound to
// none.
func (t *TPM) parentPCRStatus(k *loadedKey) bool {
	if k.isSRK() || k.parent == khSRK || k.parent == 0 {
		return false
	}
	p := t.keys[k.parent]
	return p != nil && p.pcr != nil && len(p.pcr.Release.selected()) != 0
}
