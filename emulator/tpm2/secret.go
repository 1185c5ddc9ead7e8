package tpm2

import (
	"bytes"
	"crypto"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/hmac"
	"crypto/rsa"
	"encoding/binary"
	"errors"
	"math/big"

	gt "github.com/google/go-tpm/tpm2"
)

// Secret sharing with asymmetric keys: salts (Part 1 §19.6.13),
// credentials (Part 1 §24, Part 3 §12.5–12.6), RSA and ECDH operations
// (Part 3 §14) and symmetric encryption (Part 3 §15.2–15.3).

// oaepHash is the OAEP hash of an RSA key: its scheme hash, else its
// nameAlg (Part 1 §B.10.3).
func oaepHash(o *object) crypto.Hash {
	h, _ := o.pub.NameAlg.Hash()
	if p, err := o.pub.Parameters.RSADetail(); err == nil && p.Scheme.Scheme == gt.TPMAlgOAEP {
		if s, err := p.Scheme.Details.OAEP(); err == nil && s.HashAlg != gt.TPMAlgNull {
			if sh, err := s.HashAlg.Hash(); err == nil {
				h = sh
			}
		}
	}
	return h
}

func eccPoint(b []byte) (*gt.TPMSECCPoint, bool) {
	p, err := gt.Unmarshal[gt.TPMSECCPoint](b)
	if err != nil || len(gt.Marshal(p)) != len(b) {
		return nil, false
	}
	return p, true
}

// ecdhZ returns the x-coordinate of d·P for ECC key o.
func ecdhZ(o *object, p *gt.TPMSECCPoint) ([]byte, error) {
	k, ok := o.key.(*ecdsa.PrivateKey)
	if !ok {
		return nil, rcE(rcKey, "not an ECC private key")
	}
	priv, err := k.ECDH()
	if err != nil {
		return nil, rcE(rcKey, "%v", err)
	}
	size := (k.Curve.Params().BitSize + 7) / 8
	if len(p.X.Buffer) > size || len(p.Y.Buffer) > size {
		return nil, rcE(rcECCPoint, "point coordinates too long")
	}
	raw := append([]byte{4}, leftPad(p.X.Buffer, size)...)
	raw = append(raw, leftPad(p.Y.Buffer, size)...)
	pub, err := priv.Curve().NewPublicKey(raw)
	if err != nil {
		return nil, rcE(rcECCPoint, "point not on curve")
	}
	z, err := priv.ECDH(pub)
	if err != nil {
		return nil, rcE(rcNoResult, "%v", err)
	}
	return z, nil
}

// decryptSecret recovers a seed encrypted to key o with label (RSA-OAEP,
// or ECDH + KDFe, as go-tpm's labeled encapsulation produces it).
func (t *TPM) decryptSecret(o *object, secret []byte, label string, paramN, handleN int) ([]byte, error) {
	if o.publicOnly || !o.attrs().Decrypt {
		return nil, rcH(rcKey, handleN, "not a decryption key")
	}
	h, _ := o.pub.NameAlg.Hash()
	switch o.pub.Type {
	case gt.TPMAlgRSA:
		k, ok := o.key.(*rsa.PrivateKey)
		if !ok {
			return nil, rcH(rcKey, handleN, "no RSA private key")
		}
		seed, err := rsa.DecryptOAEP(oaepHash(o).New(), nil, k, secret, []byte(label+"\x00"))
		if err != nil {
			return nil, rcP(rcValue, paramN, "secret does not decrypt")
		}
		return seed, nil
	case gt.TPMAlgECC:
		p, ok := eccPoint(secret)
		if !ok {
			return nil, rcP(rcSize, paramN, "secret is not an ECC point")
		}
		z, err := ecdhZ(o, p)
		if err != nil {
			return nil, rcP(rcECCPoint, paramN, "%v", err)
		}
		u, _ := o.pub.Unique.ECC()
		return gt.KDFe(h, z, label, p.X.Buffer, u.X.Buffer, h.Size()*8), nil
	}
	return nil, rcH(rcKey, handleN, "key type cannot decrypt secrets")
}

// symCrypt runs a symmetric-cipher key in mode over data (Part 3 §15.2).
func symCrypt(o *object, decrypt bool, mode gt.TPMAlgID, iv, data []byte) ([]byte, []byte, error) {
	if o.pub.Type != gt.TPMAlgSymCipher || o.publicOnly {
		return nil, nil, rcH(rcKey, 1, "not a symmetric key")
	}
	a := o.attrs()
	if a.Restricted {
		return nil, nil, rcH(rcAttributes, 1, "restricted key")
	}
	if (decrypt && !a.Decrypt) || (!decrypt && !a.SignEncrypt) {
		return nil, nil, rcH(rcAttributes, 1, "key not usable in this direction")
	}
	sp, _ := o.pub.Parameters.SymDetail()
	km, _ := sp.Sym.Mode.AES()
	if km != nil && *km != gt.TPMAlgNull {
		if mode != gt.TPMAlgNull && mode != gt.TPMAlgID(*km) {
			return nil, nil, rcP(rcMode, 2, "mode differs from the key's")
		}
		mode = gt.TPMAlgID(*km)
	}
	key, err := o.sens.Sensitive.Sym()
	if err != nil {
		return nil, nil, rcE(rcFailure, "%v", err)
	}
	blk, err := aes.NewCipher(key.Buffer)
	if err != nil {
		return nil, nil, rcE(rcFailure, "%v", err)
	}
	if mode != gt.TPMAlgECB && len(iv) != aes.BlockSize {
		return nil, nil, rcP(rcSize, 3, "IV must be one block")
	}
	out := make([]byte, len(data))
	ivOut := append([]byte{}, iv...)
	switch mode {
	case gt.TPMAlgCFB:
		if decrypt {
			cipher.NewCFBDecrypter(blk, iv).XORKeyStream(out, data)
			ivOut = lastBlock(data, iv)
		} else {
			cipher.NewCFBEncrypter(blk, iv).XORKeyStream(out, data)
			ivOut = lastBlock(out, iv)
		}
	case gt.TPMAlgCTR:
		cipher.NewCTR(blk, iv).XORKeyStream(out, data)
		ctr := new([16]byte)
		copy(ctr[:], iv)
		for n := (len(data) + 15) / 16; n > 0; n-- {
			for i := 15; i >= 0; i-- {
				ctr[i]++
				if ctr[i] != 0 {
					break
				}
			}
		}
		ivOut = ctr[:]
	case gt.TPMAlgOFB:
		cipher.NewOFB(blk, iv).XORKeyStream(out, data)
		// Next IV is the last keystream block (only meaningful for whole
		// blocks).
		ks := append([]byte{}, iv...)
		for i := 0; i < (len(data)+15)/16; i++ {
			blk.Encrypt(ks, ks)
		}
		ivOut = ks
	case gt.TPMAlgCBC, gt.TPMAlgECB:
		if len(data)%aes.BlockSize != 0 {
			return nil, nil, rcP(rcSize, 4, "data not a whole number of blocks")
		}
		if mode == gt.TPMAlgCBC {
			if decrypt {
				cipher.NewCBCDecrypter(blk, iv).CryptBlocks(out, data)
				ivOut = lastBlock(data, iv)
			} else {
				cipher.NewCBCEncrypter(blk, iv).CryptBlocks(out, data)
				ivOut = lastBlock(out, iv)
			}
		} else {
			for i := 0; i < len(data); i += 16 {
				if decrypt {
					blk.Decrypt(out[i:], data[i:])
				} else {
					blk.Encrypt(out[i:], data[i:])
				}
			}
			ivOut = nil
		}
	default:
		return nil, nil, rcP(rcMode, 2, "mode 0x%x", uint16(mode))
	}
	return out, ivOut, nil
}

func lastBlock(b, iv []byte) []byte {
	if len(b) < 16 {
		return iv
	}
	return append([]byte{}, b[len(b)-16:]...)
}

// rsaScheme picks the RSA encryption scheme: key scheme, else caller's.
func rsaScheme(o *object, in *gt.TPMTRSADecrypt, n int) (gt.TPMAlgID, crypto.Hash, error) {
	p, _ := o.pub.Parameters.RSADetail()
	alg := gt.TPMAlgID(p.Scheme.Scheme)
	var ha gt.TPMIAlgHash
	if alg == gt.TPMAlgOAEP {
		s, _ := p.Scheme.Details.OAEP()
		ha = s.HashAlg
	} else if alg == gt.TPMAlgNull {
		alg = gt.TPMAlgID(in.Scheme)
		if alg == gt.TPMAlgOAEP {
			s, err := in.Details.OAEP()
			if err != nil {
				return 0, 0, rcP(rcScheme, n, "OAEP details")
			}
			ha = s.HashAlg
		}
	} else if in.Scheme != gt.TPMAlgNull && gt.TPMAlgID(in.Scheme) != alg {
		return 0, 0, rcP(rcScheme, n, "scheme differs from the key's")
	}
	switch alg {
	case gt.TPMAlgRSAES, gt.TPMAlgNull:
		return alg, 0, nil
	case gt.TPMAlgOAEP:
		h, err := ha.Hash()
		if err != nil || !hashSupported(ha) {
			return 0, 0, rcP(rcHash, n, "OAEP hash")
		}
		return alg, h, nil
	}
	return 0, 0, rcP(rcScheme, n, "scheme 0x%x", uint16(alg))
}

// makeCredential is TPM2_MakeCredential, Part 3 §12.6.
func (t *TPM) makeCredential(c *call, cmd *makeCredentialCmd) (*gt.MakeCredentialResponse, error) {
	o, err := t.loadedObject(c.handles[0], 1)
	if err != nil {
		return nil, err
	}
	if !o.attrs().Decrypt || !o.attrs().Restricted {
		return nil, rcH(rcType, 1, "not a storage key")
	}
	// The credential is at most a digest of the key's nameAlg (Part 3
	// §12.6.1).
	if h, err := o.pub.NameAlg.Hash(); err != nil || len(cmd.Credential.Buffer) > h.Size() {
		return nil, rcP(rcSize, 1, "credential longer than the nameAlg digest")
	}
	k, err := gt.ImportEncapsulationKey(&o.pub)
	if err != nil {
		return nil, rcH(rcKey, 1, "%v", err)
	}
	id, sec, err := gt.CreateCredential(t.rand, k, cmd.ObjectName.Buffer, cmd.Credential.Buffer)
	if err != nil {
		return nil, rcE(rcFailure, "%v", err)
	}
	return &gt.MakeCredentialResponse{
		CredentialBlob: gt.TPM2BIDObject{Buffer: id},
		Secret:         gt.TPM2BEncryptedSecret{Buffer: sec},
	}, nil
}

// activateCredential is TPM2_ActivateCredential, Part 3 §12.5.
func (t *TPM) activateCredential(c *call, cmd *gt.ActivateCredential) (*gt.ActivateCredentialResponse, error) {
	act, err := t.loadedObject(c.handles[0], 1)
	if err != nil {
		return nil, err
	}
	ek, err := t.loadedObject(c.handles[1], 2)
	if err != nil {
		return nil, err
	}
	if !ek.attrs().Decrypt || !ek.attrs().Restricted {
		return nil, rcH(rcType, 2, "keyHandle is not a storage key")
	}
	seed, err := t.decryptSecret(ek, cmd.Secret.Buffer, "IDENTITY", 2, 2)
	if err != nil {
		return nil, err
	}
	h, _ := ek.pub.NameAlg.Hash()
	blob := cmd.CredentialBlob.Buffer
	if len(blob) < 2 || int(binary.BigEndian.Uint16(blob)) != h.Size() || len(blob) < 2+h.Size()+2 {
		return nil, rcP(rcSize, 1, "credentialBlob")
	}
	integ, enc := blob[2:2+h.Size()], blob[2+h.Size():]
	m := hmac.New(h.New, gt.KDFa(h, seed, "INTEGRITY", nil, nil, h.Size()*8))
	m.Write(enc)
	m.Write(act.name)
	if !hmac.Equal(m.Sum(nil), integ) {
		return nil, rcP(rcIntegrity, 1, "credentialBlob integrity")
	}
	sym, _ := symAndScheme(&ek.pub)
	bits, err := sym.KeyBits.AES()
	if err != nil {
		return nil, rcH(rcSymmetric, 2, "keyHandle symmetric")
	}
	blk, _ := aes.NewCipher(gt.KDFa(h, seed, "STORAGE", act.name, nil, int(*bits)))
	plain := make([]byte, len(enc))
	cipher.NewCFBDecrypter(blk, make([]byte, 16)).XORKeyStream(plain, enc)
	// plain is the credential as a TPM2B_DIGEST.
	if int(binary.BigEndian.Uint16(plain)) != len(plain)-2 {
		return nil, rcP(rcSize, 1, "credential size")
	}
	return &gt.ActivateCredentialResponse{CertInfo: gt.TPM2BDigest{Buffer: plain[2:]}}, nil
}

// rsaEncrypt is TPM2_RSA_Encrypt, Part 3 §14.2.
func (t *TPM) rsaEncrypt(c *call, cmd *gt.RSAEncrypt) (*gt.RSAEncryptResponse, error) {
	o, err := t.loadedObject(c.handles[0], 1)
	if err != nil {
		return nil, err
	}
	if o.pub.Type != gt.TPMAlgRSA || !o.attrs().Decrypt || o.attrs().Restricted {
		return nil, rcH(rcKey, 1, "not an unrestricted RSA decryption key")
	}
	alg, h, err := rsaScheme(o, &cmd.InScheme, 2)
	if err != nil {
		return nil, err
	}
	var pub *rsa.PublicKey
	switch k := o.key.(type) {
	case *rsa.PrivateKey:
		pub = &k.PublicKey
	case *rsa.PublicKey:
		pub = k
	}
	var out []byte
	switch alg {
	case gt.TPMAlgOAEP:
		out, err = rsa.EncryptOAEP(h.New(), t.rand, pub, cmd.Message.Buffer, labelBytes(cmd.Label.Buffer))
	case gt.TPMAlgRSAES:
		out, err = rsa.EncryptPKCS1v15(t.rand, pub, cmd.Message.Buffer)
	default:
		out, err = rawRSA(cmd.Message.Buffer, pub.N, big.NewInt(int64(pub.E)))
	}
	if err != nil {
		return nil, rcP(rcValue, 1, "%v", err)
	}
	return &gt.RSAEncryptResponse{OutData: gt.TPM2BPublicKeyRSA{Buffer: out}}, nil
}

// rawRSA is RSAEP/RSADP without padding, the TPM_ALG_NULL scheme (Part
// 1 §B.10.3): x^exp mod n of a value below the modulus, as many octets
// as the modulus. Callers with such a key chose to pad it themselves.
func rawRSA(x []byte, n, exp *big.Int) ([]byte, error) {
	v := new(big.Int).SetBytes(x)
	if v.Cmp(n) >= 0 {
		return nil, errors.New("value not below the modulus")
	}
	return v.Exp(v, exp, n).FillBytes(make([]byte, (n.BitLen()+7)/8)), nil
}

// rsaDecrypt is TPM2_RSA_Decrypt, Part 3 §14.3.
func (t *TPM) rsaDecrypt(c *call, cmd *gt.RSADecrypt) (*gt.RSADecryptResponse, error) {
	o, err := t.loadedObject(c.handles[0], 1)
	if err != nil {
		return nil, err
	}
	k, ok := o.key.(*rsa.PrivateKey)
	if !ok || !o.attrs().Decrypt || o.attrs().Restricted {
		return nil, rcH(rcKey, 1, "not an unrestricted RSA decryption key")
	}
	alg, h, err := rsaScheme(o, &cmd.InScheme, 2)
	if err != nil {
		return nil, err
	}
	var out []byte
	switch alg {
	case gt.TPMAlgOAEP:
		out, err = rsa.DecryptOAEP(h.New(), nil, k, cmd.CipherText.Buffer, labelBytes(cmd.Label.Buffer))
	case gt.TPMAlgRSAES:
		out, err = rsa.DecryptPKCS1v15(nil, k, cmd.CipherText.Buffer)
	default:
		out, err = rawRSA(cmd.CipherText.Buffer, k.N, k.D)
	}
	if err != nil {
		return nil, rcP(rcValue, 1, "decryption failed")
	}
	return &gt.RSADecryptResponse{Message: gt.TPM2BPublicKeyRSA{Buffer: out}}, nil
}

// ecdhKeyGen is TPM2_ECDH_KeyGen, Part 3 §14.4.
func (t *TPM) ecdhKeyGen(c *call, cmd *ecdhKeyGenCmd) (*ecdhKeyGenResponse, error) {
	o, err := t.loadedObject(c.handles[0], 1)
	if err != nil {
		return nil, err
	}
	if o.pub.Type != gt.TPMAlgECC || !o.attrs().Decrypt {
		return nil, rcH(rcKey, 1, "not an ECC decryption key")
	}
	parms, _ := o.pub.Parameters.ECCDetail()
	var curve ecdh.Curve
	switch parms.CurveID {
	case gt.TPMECCNistP256:
		curve = ecdh.P256()
	case gt.TPMECCNistP384:
		curve = ecdh.P384()
	case gt.TPMECCNistP521:
		curve = ecdh.P521()
	}
	eph, err := curve.GenerateKey(t.rand)
	if err != nil {
		return nil, rcE(rcFailure, "%v", err)
	}
	u, _ := o.pub.Unique.ECC()
	size := len(u.X.Buffer)
	raw := append([]byte{4}, leftPad(u.X.Buffer, size)...)
	raw = append(raw, leftPad(u.Y.Buffer, size)...)
	peer, err := curve.NewPublicKey(raw)
	if err != nil {
		return nil, rcH(rcKey, 1, "%v", err)
	}
	z, err := eph.ECDH(peer)
	if err != nil {
		return nil, rcE(rcNoResult, "%v", err)
	}
	eb := eph.PublicKey().Bytes()
	n := (len(eb) - 1) / 2
	// crypto/ecdh gives only Z's x; the response carries the whole point.
	ec, _ := curveOf(parms.CurveID)
	zx, zy, inf := scalarMult(ec, bigOf(u.X.Buffer), bigOf(u.Y.Buffer), bigOf(eph.Bytes()))
	if inf || !bytes.Equal(zx.FillBytes(make([]byte, size)), z) {
		return nil, rcE(rcNoResult, "ECDH point")
	}
	zPt := pointOf(ec, zx, zy)
	pubPt := gt.TPMSECCPoint{X: gt.TPM2BECCParameter{Buffer: eb[1 : 1+n]}, Y: gt.TPM2BECCParameter{Buffer: eb[1+n:]}}
	return &ecdhKeyGenResponse{ZPoint: gt.New2B(zPt), PubPoint: gt.New2B(pubPt)}, nil
}

// ecdhZGen is TPM2_ECDH_ZGen, Part 3 §14.5.
func (t *TPM) ecdhZGen(c *call, cmd *gt.ECDHZGen) (*gt.ECDHZGenResponse, error) {
	o, err := t.loadedObject(c.handles[0], 1)
	if err != nil {
		return nil, err
	}
	if o.pub.Type != gt.TPMAlgECC || !o.attrs().Decrypt || o.attrs().Restricted {
		return nil, rcH(rcKey, 1, "not an unrestricted ECC decryption key")
	}
	p, err := cmd.InPoint.Contents()
	if err != nil {
		return nil, rcP(rcECCPoint, 1, "%v", err)
	}
	z, err := ecdhZ(o, p)
	if err != nil {
		return nil, rcP(rcECCPoint, 1, "%v", err)
	}
	pt := gt.TPMSECCPoint{X: gt.TPM2BECCParameter{Buffer: z}, Y: gt.TPM2BECCParameter{}}
	// Part 3 §14.5: outPoint is the full product; its y is not
	// needed by any KDF, but report it for completeness.
	if y, err := ecdhY(o, p); err == nil {
		pt.Y.Buffer = y
	}
	return &gt.ECDHZGenResponse{OutPoint: gt.New2B(pt)}, nil
}

// encryptDecrypt is TPM2_EncryptDecrypt, Part 3 §15.2.
func (t *TPM) encryptDecrypt(c *call, cmd *encryptDecryptCmd) (*encryptDecryptResponse, error) {
	o, err := t.loadedObject(c.handles[0], 1)
	if err != nil {
		return nil, err
	}
	out, iv, err := symCrypt(o, bool(cmd.Decrypt), gt.TPMAlgID(cmd.Mode), cmd.IVIn.Buffer, cmd.InData.Buffer)
	if err != nil {
		return nil, err
	}
	return &encryptDecryptResponse{OutData: gt.TPM2BMaxBuffer{Buffer: out}, IVOut: gt.TPM2BIV{Buffer: iv}}, nil
}

// encryptDecrypt2 is TPM2_EncryptDecrypt2, Part 3 §15.3.
func (t *TPM) encryptDecrypt2(c *call, cmd *gt.EncryptDecrypt2) (*gt.EncryptDecrypt2Response, error) {
	o, err := t.loadedObject(c.handles[0], 1)
	if err != nil {
		return nil, err
	}
	out, iv, err := symCrypt(o, bool(cmd.Decrypt), gt.TPMAlgID(cmd.Mode), cmd.IV.Buffer, cmd.Message.Buffer)
	if err != nil {
		return nil, err
	}
	return &gt.EncryptDecrypt2Response{OutData: gt.TPM2BMaxBuffer{Buffer: out}, IV: gt.TPM2BIV{Buffer: iv}}, nil
}

// labelBytes null-terminates an OAEP label as Part 1 §B.4 requires.
func labelBytes(l []byte) []byte {
	if len(l) == 0 || l[len(l)-1] == 0 {
		return l
	}
	return append(append([]byte{}, l...), 0)
}

// ecdhY computes the y-coordinate of d·P with the generic curve
// arithmetic (crypto/ecdh only returns x).
func ecdhY(o *object, p *gt.TPMSECCPoint) ([]byte, error) {
	k := o.key.(*ecdsa.PrivateKey)
	x, y := bigOf(p.X.Buffer), bigOf(p.Y.Buffer)
	//nolint:staticcheck // only for the y-coordinate crypto/ecdh does not expose
	_, ry := k.Curve.ScalarMult(x, y, k.D.Bytes())
	size := (k.Curve.Params().BitSize + 7) / 8
	return leftPad(ry.Bytes(), size), nil
}

// eccParameters is TPM2_ECC_Parameters, Part 3 §14.8: the domain
// parameters of an implemented curve (TPMS_ALGORITHM_DETAIL_ECC, Part 2
// §11.2.5.2). The NIST prime curves have a = p - 3, cofactor 1 and no
// signing scheme of their own.
func (t *TPM) eccParameters(c *call, cmd *eccParametersCmd) (*eccParametersResponse, error) {
	curve, err := curveOf(cmd.CurveID)
	if err != nil {
		return nil, rcP(rcCurve, 1, "curve 0x%x", uint16(cmd.CurveID))
	}
	p := curve.Params()
	size := (p.BitSize + 7) / 8
	param := func(v *big.Int) gt.TPM2BECCParameter {
		return gt.TPM2BECCParameter{Buffer: v.FillBytes(make([]byte, size))}
	}
	r := &eccParametersResponse{}
	d := &r.Parameters
	d.CurveID = cmd.CurveID
	d.KeySize = uint16(p.BitSize)
	// The reference implementation's curve table names KDF1 of SP800-56A
	// with the hash matching the curve's size.
	kdfHash := map[int]gt.TPMIAlgHash{256: gt.TPMAlgSHA256, 384: gt.TPMAlgSHA384, 521: gt.TPMAlgSHA512}[p.BitSize]
	d.KDF = gt.TPMTKDFScheme{Scheme: gt.TPMAlgKDF1SP80056A, Details: gt.NewTPMUKDFScheme(gt.TPMAlgKDF1SP80056A, &gt.TPMSKDFSchemeKDF1SP80056A{HashAlg: kdfHash})}
	d.Sign = gt.TPMTECCScheme{Scheme: gt.TPMAlgNull}
	d.P, d.A, d.B = param(p.P), param(new(big.Int).Sub(p.P, big.NewInt(3))), param(p.B)
	d.GX, d.GY, d.N = param(p.Gx), param(p.Gy), param(p.N)
	d.H = gt.TPM2BECCParameter{Buffer: []byte{1}}
	return r, nil
}

// encodeECCParameters marshals TPMS_ALGORITHM_DETAIL_ECC, which go-tpm
// v0.9.8 does not declare and so cannot marshal.
func encodeECCParameters(b []byte, r *eccParametersResponse) []byte {
	d := &r.Parameters
	b = binary.BigEndian.AppendUint16(b, uint16(d.CurveID))
	b = binary.BigEndian.AppendUint16(b, d.KeySize)
	b = append(b, gt.Marshal(&d.KDF)...)
	b = append(b, gt.Marshal(&d.Sign)...)
	for _, v := range []gt.TPM2BECCParameter{d.P, d.A, d.B, d.GX, d.GY, d.N, d.H} {
		b = appendSized(b, v.Buffer)
	}
	return b
}
