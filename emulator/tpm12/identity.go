package tpm12

import (
	"crypto/rsa"
	"crypto/sha1"
)

// Structure tags and types of the identity commands, Part 2 §3.1,
// §12.1.
const (
	tagEKBlob         uint16 = 0x000C // TPM_TAG_EK_BLOB
	tagEKBlobActivate uint16 = 0x002B // TPM_TAG_EK_BLOB_ACTIVATE
	ekTypeActivate    uint16 = 0x0001 // TPM_EK_TYPE_ACTIVATE
)

// identityContents is TPM_IDENTITY_CONTENTS, Part 2 §12.5: what the new
// identity key signs in TPM_MakeIdentity (identityBinding). Its version
// is 1.1.0.0 and its ordinal TPM_ORD_MakeIdentity.
type identityContents struct {
	LabelPrivCADigest digest
	IdentityPubKey    pubKey
}

func (c *identityContents) marshal(w *writer) {
	(&version{Major: 1, Minor: 1}).marshal(w)
	w.u32(ordMakeIdentity)
	w.bytes(c.LabelPrivCADigest[:])
	c.IdentityPubKey.marshal(w)
}

// symmetricKey is TPM_SYMMETRIC_KEY, Part 2 §9.4: the session key a
// privacy CA gives to the TPM that activates an identity. The TPM only
// carries it back; its algorithm is the CA's business.
type symmetricKey struct {
	AlgID     uint32
	EncScheme uint16
	Data      []byte
}

func (k *symmetricKey) unmarshal(r *reader) {
	k.AlgID = r.u32()
	k.EncScheme = r.u16()
	k.Data = r.take(int(r.u16()))
}

func (k *symmetricKey) marshal(w *writer) {
	w.u32(k.AlgID)
	w.u16(k.EncScheme)
	w.u16(uint16(len(k.Data)))
	w.bytes(k.Data)
}

// asymCAContents is TPM_ASYM_CA_CONTENTS, Part 2 §12.8: the TPM 1.1
// form of the blob a privacy CA encrypts to the EK. It has no tag.
type asymCAContents struct {
	SessionKey symmetricKey
	IDDigest   digest
}

func (c *asymCAContents) unmarshal(r *reader) {
	c.SessionKey.unmarshal(r)
	c.IDDigest = r.digest()
}

func (c *asymCAContents) marshal(w *writer) {
	c.SessionKey.marshal(w)
	w.bytes(c.IDDigest[:])
}

// ekBlob is TPM_EK_BLOB, Part 2 §12.1: a blob of type ekType for the
// EK to decrypt.
type ekBlob struct {
	EKType uint16
	Blob   []byte
}

func (b *ekBlob) unmarshal(r *reader) {
	if r.u16() != tagEKBlob {
		r.fail(rcE(rcInvalidStructure, "TPM_EK_BLOB tag"))
	}
	b.EKType = r.u16()
	b.Blob = r.sized(bufferMax)
}

func (b *ekBlob) marshal(w *writer) {
	w.u16(tagEKBlob)
	w.u16(b.EKType)
	w.sized(b.Blob)
}

// ekBlobActivate is TPM_EK_BLOB_ACTIVATE, Part 2 §12.2: the TPM 1.2
// form of the privacy CA's blob, which may bind the session key to PCR
// values and a locality.
type ekBlobActivate struct {
	SessionKey symmetricKey
	IDDigest   digest
	PCRInfo    pcrInfoShort
}

func (b *ekBlobActivate) unmarshal(r *reader) {
	if r.u16() != tagEKBlobActivate {
		r.fail(rcE(rcInvalidStructure, "TPM_EK_BLOB_ACTIVATE tag"))
	}
	b.SessionKey.unmarshal(r)
	b.IDDigest = r.digest()
	b.PCRInfo.Select.unmarshal(r)
	// A locality selection names at least one of localities 0-4, checked
	// as it is read.
	if l := r.u8(); l == 0 || l&^locAll != 0 {
		r.fail(rcE(rcInvalidStructure, "localityAtRelease %#x", l))
	} else {
		b.PCRInfo.LocalityAtRelease = l
	}
	b.PCRInfo.DigestAtRelease = r.digest()
}

func (b *ekBlobActivate) marshal(w *writer) {
	w.u16(tagEKBlobActivate)
	b.SessionKey.marshal(w)
	w.bytes(b.IDDigest[:])
	b.PCRInfo.marshal(w)
}

// checkIdentityKeyParms is Part 3 §15.1 action 1, as libtpms checks an
// identity key's template before any authorization: the key-type check
// of CreateWrapKey, for exactly 2048 bits, and a pcrInfo that decodes.
func checkIdentityKeyParms(k *tpmKey) (*pcrInfo, error) {
	rp, err := checkKeyProperties(k)
	if err != nil {
		return nil, err
	}
	if rp.KeyLength != 2048 {
		return nil, rcE(rcBadKeyProperty, "identity key of %d bits", rp.KeyLength)
	}
	if len(k.PCRInfo) == 0 {
		return nil, nil
	}
	return parseKeyPCRInfo(k)
}

type makeIdentityIn struct {
	IdentityAuth      digest
	LabelPrivCADigest digest
	IDKeyParams       tpmKey
}

func (p *makeIdentityIn) unmarshal(r *reader) {
	p.IdentityAuth = r.digest()
	p.LabelPrivCADigest = r.digest()
	p.IDKeyParams.unmarshal(r)
}

type makeIdentityOut struct {
	IDKey           tpmKey
	IdentityBinding []byte
}

func (o *makeIdentityOut) marshal(w *writer) {
	o.IDKey.marshal(w)
	w.sized(o.IdentityBinding)
}

// makeIdentity is TPM_MakeIdentity, Part 3 §15.1: under the owner's
// OSAP session (the last one), whose ADIP carries the new key's
// authData, and the SRK's session (the first, with AUTH2; with AUTH1 the
// SRK must need no authorization), the TPM makes a non-migratable
// RSA-2048 identity key wrapped under the SRK, with tpmProof as its
// migrationAuth, and signs the TPM_IDENTITY_CONTENTS binding it to the
// privacy CA's label. Both sessions end.
func (t *TPM) makeIdentity(c *call, in *makeIdentityIn) (*makeIdentityOut, error) {
	p := &in.IDKeyParams
	pcr, err := checkIdentityKeyParms(p)
	if err != nil {
		return nil, err
	}
	owner := len(c.auth) - 1
	if s := t.sessions[c.auth[owner].handle]; s != nil && s.pid != pidOSAP {
		return nil, rcE(rcBadMode, "MakeIdentity needs an OSAP session of the owner")
	}
	// libtpms checks the owner first and answers TPM_AUTH2FAIL for it
	// under either tag.
	if err := t.authorize(c, owner, t.ps.OwnerAuth, etOwner, 0); err != nil {
		return nil, authFailAs(err, rcAuth2Fail)
	}
	srk, err := t.loadedKey(khSRK)
	if err != nil {
		return nil, err
	}
	if owner == 1 {
		if err := t.authorizeKey(c, 0, srk); err != nil {
			return nil, err
		}
	} else if srk.key.AuthDataUsage != authNever {
		return nil, rcE(rcAuthFail, "the SRK needs authorization")
	}
	if p.KeyUsage != keyUsageIdentity || p.KeyFlags&keyFlagMigratable != 0 {
		return nil, rcE(rcInvalidKeyUsage, "identity key usage %#x flags %#x", p.KeyUsage, p.KeyFlags)
	}
	usageAuth := adipDecrypt(c.auth[owner].sess, in.IdentityAuth)
	for i := range c.auth {
		c.auth[i].cont = false
	}
	priv, err := rsa.GenerateKey(t.rand, 2048)
	if err != nil {
		return nil, err
	}
	key := *p
	key.PubKey = priv.N.FillBytes(make([]byte, 256))
	key.EncData = nil
	if pcr != nil {
		// §15.1 action 9: the PCR values, and for a TPM_PCR_INFO_LONG
		// the locality, at creation.
		if pcr.Long {
			pcr.LocalityAtCreation = localityBit(t.locality)
			_, pcr.DigestAtCreation = t.quoteComposite(pcr.Creation)
		} else {
			_, pcr.DigestAtCreation = t.quoteComposite(pcr.Release)
		}
		w := &writer{}
		pcr.marshal(w)
		key.PCRInfo = w.b
	}
	asym := &storeAsymKey{UsageAuth: usageAuth, MigrationAuth: t.ps.TPMProof, PrivKey: keyPrime(priv)}
	if err := t.wrapKey(srk, &key, asym); err != nil {
		return nil, err
	}
	w := &writer{}
	(&identityContents{LabelPrivCADigest: in.LabelPrivCADigest, IdentityPubKey: *key.pub()}).marshal(w)
	binding, err := t.signDigest(priv, ssRSASSASHA1, sha1.Sum(w.b))
	if err != nil {
		return nil, err
	}
	return &makeIdentityOut{IDKey: key, IdentityBinding: binding}, nil
}

type activateIdentityIn struct {
	IDKeyHandle uint32
	Blob        []byte
}

func (p *activateIdentityIn) unmarshal(r *reader) {
	p.IDKeyHandle = r.u32()
	p.Blob = r.sized(bufferMax)
}

// activateIdentity is TPM_ActivateIdentity, Part 3 §15.2: the owner (the
// last session, OIAP or OSAP) and the identity key (the first, with
// AUTH2) authorize the EK to decrypt a privacy CA's blob, a
// TPM_EK_BLOB holding a TPM_EK_BLOB_ACTIVATE or a TPM 1.1
// TPM_ASYM_CA_CONTENTS; if it names this identity (the digest of its
// TPM_PUBKEY) and, for TPM_EK_BLOB_ACTIVATE, the PCRs and locality hold,
// the TPM returns the session key in it.
func (t *TPM) activateIdentity(c *call, in *activateIdentityIn) (*symmetricKey, error) {
	owner := len(c.auth) - 1
	if err := t.authorize(c, owner, t.ps.OwnerAuth, etOwner, 0); err != nil {
		return nil, authFailAs(err, rcAuthFail)
	}
	k, err := t.useKey(in.IDKeyHandle, false)
	if err != nil {
		return nil, err
	}
	if owner == 1 {
		if err := t.authorizeKey(c, 0, k); err != nil {
			return nil, authFailAs(err, rcAuth2Fail)
		}
	} else if k.key.AuthDataUsage != authNever {
		return nil, rcE(rcAuthFail, "identity key needs authorization")
	}
	if k.key.KeyUsage != keyUsageIdentity {
		return nil, rcE(rcBadParameter, "key usage %#x", k.key.KeyUsage)
	}
	w := &writer{}
	k.key.pub().marshal(w)
	idDigest := sha1.Sum(w.b)
	ek, err := t.ek()
	if err != nil {
		return nil, err
	}
	if len(in.Blob) > ekBits/8 {
		return nil, rcE(rcBadDataSize, "blob of %d bytes", len(in.Blob))
	}
	pt, err := t.decryptOAEP(ek, in.Blob)
	if err != nil {
		return nil, err
	}
	decoded := func(r *reader) error {
		if r.err != nil {
			return r.err
		}
		if r.short {
			return rcE(rcBadParamSize, "blob truncated")
		}
		return nil
	}
	r := &reader{b: pt}
	if len(pt) < 2 || pt[0] != byte(tagEKBlob>>8) || pt[1] != byte(tagEKBlob) {
		var b asymCAContents
		b.unmarshal(r)
		if err := decoded(r); err != nil {
			return nil, err
		}
		if b.IDDigest != idDigest {
			return nil, rcE(rcBadParameter, "blob for another identity")
		}
		return &b.SessionKey, nil
	}
	var outer ekBlob
	outer.unmarshal(r)
	if err := decoded(r); err != nil {
		return nil, err
	}
	if outer.EKType != ekTypeActivate {
		return nil, rcE(rcBadType, "ekType %#x", outer.EKType)
	}
	var a ekBlobActivate
	r = &reader{b: outer.Blob}
	a.unmarshal(r)
	if err := decoded(r); err != nil {
		return nil, err
	}
	if a.IDDigest != idDigest {
		return nil, rcE(rcBadParameter, "blob for another identity")
	}
	if len(a.PCRInfo.Select.selected()) != 0 {
		if _, h := t.quoteComposite(a.PCRInfo.Select); h != a.PCRInfo.DigestAtRelease {
			return nil, rcE(rcWrongPCRVal, "PCRs differ from digestAtRelease")
		}
	}
	if l := a.PCRInfo.LocalityAtRelease; l != locAll && l&localityBit(t.locality) == 0 {
		return nil, rcE(rcBadLocality, "locality %d", t.locality)
	}
	return &a.SessionKey, nil
}
