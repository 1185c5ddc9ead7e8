package tpm2

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/hmac"
	"crypto/rsa"
	"encoding/binary"
	"math/big"

	gt "github.com/google/go-tpm/tpm2"
)

// Sign and VerifySignature, Part 3 §20; signature schemes Part 1 §C–D.

// keyScheme returns the signing scheme fixed by the key, or NULL.
func keyScheme(o *object) (gt.TPMAlgID, gt.TPMIAlgHash) {
	switch o.pub.Type {
	case gt.TPMAlgRSA:
		p, _ := o.pub.Parameters.RSADetail()
		switch p.Scheme.Scheme {
		case gt.TPMAlgRSASSA:
			s, _ := p.Scheme.Details.RSASSA()
			return gt.TPMAlgRSASSA, s.HashAlg
		case gt.TPMAlgRSAPSS:
			s, _ := p.Scheme.Details.RSAPSS()
			return gt.TPMAlgRSAPSS, s.HashAlg
		}
	case gt.TPMAlgECC:
		p, _ := o.pub.Parameters.ECCDetail()
		switch p.Scheme.Scheme {
		case gt.TPMAlgECDSA:
			s, _ := p.Scheme.Details.ECDSA()
			return gt.TPMAlgECDSA, s.HashAlg
		case gt.TPMAlgECDAA:
			s, _ := p.Scheme.Details.ECDAA()
			return gt.TPMAlgECDAA, s.HashAlg
		}
	case gt.TPMAlgKeyedHash:
		p, _ := o.pub.Parameters.KeyedHashDetail()
		if p.Scheme.Scheme == gt.TPMAlgHMAC {
			s, _ := p.Scheme.Details.HMAC()
			return gt.TPMAlgHMAC, s.HashAlg
		}
	}
	return gt.TPMAlgNull, gt.TPMAlgNull
}

func inSchemeOf(s *gt.TPMTSigScheme) (gt.TPMAlgID, gt.TPMIAlgHash) {
	var h *gt.TPMSSchemeHash
	switch s.Scheme {
	case gt.TPMAlgRSASSA:
		h, _ = s.Details.RSASSA()
	case gt.TPMAlgRSAPSS:
		h, _ = s.Details.RSAPSS()
	case gt.TPMAlgECDSA:
		h, _ = s.Details.ECDSA()
	case gt.TPMAlgHMAC:
		hm, _ := s.Details.HMAC()
		if hm != nil {
			return gt.TPMAlgHMAC, hm.HashAlg
		}
	case gt.TPMAlgECDAA:
		d, _ := s.Details.ECDAA()
		if d != nil {
			return gt.TPMAlgECDAA, d.HashAlg
		}
	}
	if h == nil {
		return gt.TPMAlgID(s.Scheme), gt.TPMAlgNull
	}
	return gt.TPMAlgID(s.Scheme), h.HashAlg
}

// signScheme picks the scheme for a signing operation, Part 3 §20.2.1:
// the key's scheme wins; a caller scheme must then be NULL or the same.
func signScheme(o *object, in *gt.TPMTSigScheme, n int) (gt.TPMAlgID, crypto.Hash, gt.TPMIAlgHash, error) {
	ka, kh := keyScheme(o)
	ia, ih := inSchemeOf(in)
	alg, ha := ka, kh
	if ka == gt.TPMAlgNull {
		alg, ha = ia, ih
	} else if ia == gt.TPMAlgNull && ka == gt.TPMAlgECDAA {
		// A split scheme needs the caller's commit count (the
		// reference's CryptIsSplitSign).
		return 0, 0, 0, rcP(rcScheme, n, "ECDAA needs the scheme with its count")
	} else if ia != gt.TPMAlgNull && (ia != ka || ih != kh) {
		return 0, 0, 0, rcP(rcScheme, n, "scheme differs from the key's")
	}
	ok := false
	switch o.pub.Type {
	case gt.TPMAlgRSA:
		ok = alg == gt.TPMAlgRSASSA || alg == gt.TPMAlgRSAPSS
	case gt.TPMAlgECC:
		ok = alg == gt.TPMAlgECDSA || alg == gt.TPMAlgECDAA
	case gt.TPMAlgKeyedHash:
		ok = alg == gt.TPMAlgHMAC
	}
	if !ok {
		return 0, 0, 0, rcP(rcScheme, n, "scheme 0x%x not usable with this key", uint16(alg))
	}
	h, err := ha.Hash()
	if err != nil || !hashSupported(ha) {
		return 0, 0, 0, rcP(rcHash, n, "scheme hash 0x%x", uint16(ha))
	}
	return alg, h, ha, nil
}

// signDigest signs digest with o, giving TPMT_SIGNATURE (Part 2 §11.3.4);
// in is the caller's scheme, which carries ECDAA's commit count.
func (t *TPM) signDigest(o *object, alg gt.TPMAlgID, h crypto.Hash, ha gt.TPMIAlgHash, in *gt.TPMTSigScheme, digest []byte) (gt.TPMTSignature, error) {
	sig := gt.TPMTSignature{SigAlg: alg}
	switch alg {
	case gt.TPMAlgECDAA:
		d, err := in.Details.ECDAA()
		if err != nil {
			return sig, rcE(rcScheme, "ECDAA without a count")
		}
		return t.signECDAA(o, h, ha, d.Count, digest)
	case gt.TPMAlgRSASSA, gt.TPMAlgRSAPSS:
		k := o.key.(*rsa.PrivateKey)
		var s []byte
		var err error
		if alg == gt.TPMAlgRSASSA {
			s, err = rsa.SignPKCS1v15(nil, k, h, digest)
		} else {
			s, err = rsa.SignPSS(t.rand, k, h, digest, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash})
		}
		if err != nil {
			return sig, rcE(rcFailure, "RSA sign: %v", err)
		}
		sig.Signature = gt.NewTPMUSignature(alg, &gt.TPMSSignatureRSA{Hash: ha, Sig: gt.TPM2BPublicKeyRSA{Buffer: s}})
		return sig, nil
	case gt.TPMAlgECDSA:
		k := o.key.(*ecdsa.PrivateKey)
		r, s, err := ecdsa.Sign(t.rand, k, digest)
		if err != nil {
			return sig, rcE(rcFailure, "ECDSA sign: %v", err)
		}
		size := (k.Curve.Params().BitSize + 7) / 8
		sig.Signature = gt.NewTPMUSignature(alg, &gt.TPMSSignatureECC{Hash: ha,
			SignatureR: gt.TPM2BECCParameter{Buffer: leftPad(r.Bytes(), size)},
			SignatureS: gt.TPM2BECCParameter{Buffer: leftPad(s.Bytes(), size)}})
		return sig, nil
	case gt.TPMAlgHMAC:
		bits, err := o.sens.Sensitive.Bits()
		if err != nil {
			return sig, rcE(rcFailure, "%v", err)
		}
		m := hmac.New(h.New, bits.Buffer)
		m.Write(digest)
		sig.Signature = gt.NewTPMUSignature(alg, &gt.TPMTHA{HashAlg: ha, Digest: m.Sum(nil)})
		return sig, nil
	}
	return sig, rcE(rcFailure, "signature scheme 0x%x", uint16(alg))
}

// nullSignature is the TPMT_SIGNATURE of an attestation nobody signed.
var nullSignature = gt.TPMTSignature{SigAlg: gt.TPMAlgNull}

// encodeSignature marshals TPMT_SIGNATURE for the hot paths (Sign,
// Quote), where go-tpm's reflective encoder would cost more than an
// ECDSA signature.
func encodeSignature(b []byte, sig *gt.TPMTSignature) []byte {
	b = binary.BigEndian.AppendUint16(b, uint16(sig.SigAlg))
	switch sig.SigAlg {
	case gt.TPMAlgRSASSA, gt.TPMAlgRSAPSS:
		var s *gt.TPMSSignatureRSA
		if sig.SigAlg == gt.TPMAlgRSASSA {
			s, _ = sig.Signature.RSASSA()
		} else {
			s, _ = sig.Signature.RSAPSS()
		}
		b = binary.BigEndian.AppendUint16(b, uint16(s.Hash))
		return appendSized(b, s.Sig.Buffer)
	case gt.TPMAlgECDSA, gt.TPMAlgECDAA:
		s, _ := sig.Signature.ECDSA()
		if sig.SigAlg == gt.TPMAlgECDAA {
			s, _ = sig.Signature.ECDAA()
		}
		b = binary.BigEndian.AppendUint16(b, uint16(s.Hash))
		b = appendSized(b, s.SignatureR.Buffer)
		return appendSized(b, s.SignatureS.Buffer)
	case gt.TPMAlgHMAC:
		s, _ := sig.Signature.HMAC()
		b = binary.BigEndian.AppendUint16(b, uint16(s.HashAlg))
		return append(b, s.Digest...)
	}
	return b
}

// appendSized appends v as a TPM2B.
func appendSized(b, v []byte) []byte {
	return append(binary.BigEndian.AppendUint16(b, uint16(len(v))), v...)
}

func (t *TPM) verify(o *object, digest []byte, sig *gt.TPMTSignature) bool {
	switch sig.SigAlg {
	case gt.TPMAlgRSASSA, gt.TPMAlgRSAPSS:
		var pk *rsa.PublicKey
		switch k := o.key.(type) {
		case *rsa.PrivateKey:
			pk = &k.PublicKey
		case *rsa.PublicKey:
			pk = k
		default:
			return false
		}
		var s *gt.TPMSSignatureRSA
		if sig.SigAlg == gt.TPMAlgRSASSA {
			s, _ = sig.Signature.RSASSA()
		} else {
			s, _ = sig.Signature.RSAPSS()
		}
		if s == nil {
			return false
		}
		h, err := s.Hash.Hash()
		if err != nil {
			return false
		}
		if sig.SigAlg == gt.TPMAlgRSASSA {
			return rsa.VerifyPKCS1v15(pk, h, digest, s.Sig.Buffer) == nil
		}
		return rsa.VerifyPSS(pk, h, digest, s.Sig.Buffer, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthAuto}) == nil
	case gt.TPMAlgECDSA:
		var pk *ecdsa.PublicKey
		switch k := o.key.(type) {
		case *ecdsa.PrivateKey:
			pk = &k.PublicKey
		case *ecdsa.PublicKey:
			pk = k
		default:
			return false
		}
		s, err := sig.Signature.ECDSA()
		if err != nil {
			return false
		}
		return ecdsa.Verify(pk, digest, new(big.Int).SetBytes(s.SignatureR.Buffer), new(big.Int).SetBytes(s.SignatureS.Buffer))
	case gt.TPMAlgHMAC:
		if o.pub.Type != gt.TPMAlgKeyedHash || o.publicOnly {
			return false
		}
		s, err := sig.Signature.HMAC()
		if err != nil {
			return false
		}
		h, err := s.HashAlg.Hash()
		if err != nil {
			return false
		}
		bits, err := o.sens.Sensitive.Bits()
		if err != nil {
			return false
		}
		m := hmac.New(h.New, bits.Buffer)
		m.Write(digest)
		return hmac.Equal(m.Sum(nil), s.Digest)
	}
	return false
}

// sign is TPM2_Sign, Part 3 §20.2.
func (t *TPM) sign(c *call, cmd *gt.Sign) (*gt.SignResponse, error) {
	o, err := t.loadedObject(c.handles[0], 1)
	if err != nil {
		return nil, err
	}
	if !o.attrs().SignEncrypt || o.publicOnly || o.seq != nil {
		return nil, rcH(rcKey, 1, "not a signing key")
	}
	alg, h, ha, err := signScheme(o, &cmd.InScheme, 2)
	if err != nil {
		return nil, err
	}
	if len(cmd.Digest.Buffer) != h.Size() {
		return nil, rcP(rcSize, 1, "digest size %d for hash size %d", len(cmd.Digest.Buffer), h.Size())
	}
	if o.attrs().Restricted {
		v := cmd.Validation
		if v.Tag != gt.TPMSTHashCheck || !t.checkTicket(stHashCheck, uint32(v.Hierarchy), v.Digest.Buffer, h, cmd.Digest.Buffer) {
			return nil, rcP(rcTicket, 3, "restricted key needs a hash-check ticket")
		}
	}
	sig, err := t.signDigest(o, alg, h, ha, &cmd.InScheme, cmd.Digest.Buffer)
	if err != nil {
		return nil, err
	}
	return &gt.SignResponse{Signature: sig}, nil
}

// verifySignature is TPM2_VerifySignature, Part 3 §20.1.
func (t *TPM) verifySignature(c *call, cmd *gt.VerifySignature) (*gt.VerifySignatureResponse, error) {
	o, err := t.loadedObject(c.handles[0], 1)
	if err != nil {
		return nil, err
	}
	if !o.attrs().SignEncrypt {
		return nil, rcH(rcAttributes, 1, "not a signing key")
	}
	if cmd.Signature.SigAlg == gt.TPMAlgECDAA {
		// ECDAA signatures are verified against the issuer's
		// credential, not the key alone (Part 1 §C.4).
		return nil, rcP(rcScheme, 2, "ECDAA signatures are not verified here")
	}
	if !t.verify(o, cmd.Digest.Buffer, &cmd.Signature) {
		return nil, rcP(rcSignature, 2, "signature does not verify")
	}
	h, _ := o.pub.NameAlg.Hash()
	return &gt.VerifySignatureResponse{Validation: gt.TPMTTKVerified{Tag: gt.TPMST(stVerified), Hierarchy: gt.TPMIRHHierarchy(o.hierarchy),
		Digest: gt.TPM2BDigest{Buffer: t.ticketDigest(stVerified, o.hierarchy, h, cmd.Digest.Buffer, o.name)}}}, nil
}
