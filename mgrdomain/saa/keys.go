package saa

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/asn1"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"

	"github.com/google/go-tpm/tpm2"
)

// SAA keys. The wire form of an RSA key is its bare 256-byte big-endian
// modulus (exponent 65537 implied), the shape Xen vtpmmgr's GROUP_NEW
// takes; an ECDSA key is the 65-byte uncompressed P-256 point
// 0x04‖X‖Y (SEC 1, 2.3.3). The two lengths tell them apart.
const (
	RSAKeySize   = 256 // bytes of an RSA-2048 modulus
	ECDSAKeySize = 65  // bytes of an uncompressed P-256 point
	rsaExponent  = 65537

	// RSASigSize is an RSA-2048 PKCS#1 v1.5 signature's length; ECDSA
	// signatures (ASN.1 DER, SEQUENCE of r and s) are ECDSASigMin to
	// ECDSASigMax bytes.
	RSASigSize  = 256
	ECDSASigMin = 8
	ECDSASigMax = 72
)

// PublicKey is an SAA's public signing key: RSA-2048 with e = 65537, or
// ECDSA P-256. The zero value is no key.
type PublicKey struct {
	rsa *rsa.PublicKey
	ec  *ecdsa.PublicKey
}

// NewPublicKey checks that k is a key an SAA may have and wraps it.
func NewPublicKey(k crypto.PublicKey) (PublicKey, error) {
	switch k := k.(type) {
	case *rsa.PublicKey:
		if k.N.BitLen() != 8*RSAKeySize {
			return PublicKey{}, fmt.Errorf("saa: RSA key of %d bits, want %d", k.N.BitLen(), 8*RSAKeySize)
		}
		if k.E != rsaExponent {
			return PublicKey{}, fmt.Errorf("saa: RSA exponent %d, want %d", k.E, rsaExponent)
		}
		if k.N.Bit(0) == 0 {
			return PublicKey{}, errors.New("saa: RSA modulus is even")
		}
		return PublicKey{rsa: k}, nil
	case *ecdsa.PublicKey:
		if k.Curve != elliptic.P256() {
			return PublicKey{}, fmt.Errorf("saa: ECDSA key on %s, want P-256", k.Curve.Params().Name)
		}
		// Bytes checks the point is on the curve.
		b, err := k.Bytes()
		if err != nil {
			return PublicKey{}, fmt.Errorf("saa: ECDSA key: %w", err)
		}
		return ParsePublicKey(b)
	}
	return PublicKey{}, fmt.Errorf("saa: %T is not an SAA key type (RSA-2048 or ECDSA P-256)", k)
}

// ParsePublicKey decodes a key's wire form, telling RSA from ECDSA by
// length.
func ParsePublicKey(b []byte) (PublicKey, error) {
	switch len(b) {
	case RSAKeySize:
		if b[0]&0x80 == 0 {
			return PublicKey{}, errors.New("saa: RSA modulus has its top bit clear (not 2048 bits)")
		}
		if b[len(b)-1]&1 == 0 {
			return PublicKey{}, errors.New("saa: RSA modulus is even")
		}
		return PublicKey{rsa: &rsa.PublicKey{N: new(big.Int).SetBytes(b), E: rsaExponent}}, nil
	case ECDSAKeySize:
		if b[0] != 4 {
			return PublicKey{}, fmt.Errorf("saa: ECDSA point starts with %#02x, want 0x04 (uncompressed)", b[0])
		}
		k, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), b)
		if err != nil {
			return PublicKey{}, fmt.Errorf("saa: ECDSA point: %w", err)
		}
		return PublicKey{ec: k}, nil
	}
	return PublicKey{}, fmt.Errorf("saa: public key of %d bytes, want %d (RSA-2048 modulus) or %d (P-256 point)", len(b), RSAKeySize, ECDSAKeySize)
}

// IsZero reports whether k holds no key.
func (k PublicKey) IsZero() bool { return k.rsa == nil && k.ec == nil }

// Alg is "rsa", "ecdsa", or "" for no key.
func (k PublicKey) Alg() string {
	switch {
	case k.rsa != nil:
		return "rsa"
	case k.ec != nil:
		return "ecdsa"
	}
	return ""
}

// Bytes is the key's wire form (nil for no key).
func (k PublicKey) Bytes() []byte {
	switch {
	case k.rsa != nil:
		return k.rsa.N.FillBytes(make([]byte, RSAKeySize))
	case k.ec != nil:
		b, _ := k.ec.Bytes() // checked on construction
		return b
	}
	return nil
}

// Crypto is the key for crypto/rsa or crypto/ecdsa (nil for no key).
func (k PublicKey) Crypto() crypto.PublicKey {
	switch {
	case k.rsa != nil:
		return k.rsa
	case k.ec != nil:
		return k.ec
	}
	return nil
}

// Equal reports whether k and o are the same key.
func (k PublicKey) Equal(o PublicKey) bool {
	a, b := k.Bytes(), o.Bytes()
	return len(a) == len(b) && string(a) == string(b)
}

// Fingerprint names the key for people: the first 16 hex digits of the
// SHA-256 of its wire form.
func (k PublicKey) Fingerprint() string {
	if k.IsZero() {
		return ""
	}
	h := sha256.Sum256(k.Bytes())
	return hex.EncodeToString(h[:8])
}

// String is the algorithm and fingerprint.
func (k PublicKey) String() string {
	if k.IsZero() {
		return "no key"
	}
	return k.Alg() + ":" + k.Fingerprint()
}

// Verify checks sig, made by pub's private key over the SHA-256 digest:
// RSASSA-PKCS1-v1_5 for RSA (as TPM_ALG_RSASSA), ASN.1 DER r and s for
// ECDSA.
func Verify(pub PublicKey, digest, sig []byte) error {
	if len(digest) != sha256.Size {
		return fmt.Errorf("saa: digest of %d bytes, want %d (SHA-256)", len(digest), sha256.Size)
	}
	switch {
	case pub.rsa != nil:
		if len(sig) != RSASigSize {
			return fmt.Errorf("saa: RSA signature of %d bytes, want %d", len(sig), RSASigSize)
		}
		if err := rsa.VerifyPKCS1v15(pub.rsa, crypto.SHA256, digest, sig); err != nil {
			return errors.New("saa: RSA signature does not verify")
		}
		return nil
	case pub.ec != nil:
		if len(sig) < ECDSASigMin || len(sig) > ECDSASigMax {
			return fmt.Errorf("saa: ECDSA signature of %d bytes, want %d..%d", len(sig), ECDSASigMin, ECDSASigMax)
		}
		if !ecdsa.VerifyASN1(pub.ec, digest, sig) {
			return errors.New("saa: ECDSA signature does not verify")
		}
		return nil
	}
	return errors.New("saa: no public key")
}

// sign signs the SHA-256 digest with s, checking the result has the
// length the wire format allows.
func sign(s crypto.Signer, pub PublicKey, digest []byte) ([]byte, error) {
	sig, err := s.Sign(rand.Reader, digest, crypto.SHA256)
	if err != nil {
		return nil, fmt.Errorf("saa: signing: %w", err)
	}
	if err := Verify(pub, digest, sig); err != nil {
		return nil, fmt.Errorf("saa: the signer's own signature: %w", err)
	}
	return sig, nil
}

// GenerateKey makes a new SAA key: alg "rsa" (RSA-2048, e = 65537) or
// "ecdsa" (P-256).
func GenerateKey(alg string) (crypto.Signer, error) {
	switch alg {
	case "rsa":
		return rsa.GenerateKey(rand.Reader, 8*RSAKeySize)
	case "ecdsa":
		return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	}
	return nil, fmt.Errorf("saa: key algorithm %q, want rsa or ecdsa", alg)
}

// signerKey is s's public key, checked to be an SAA key.
func signerKey(s crypto.Signer) (PublicKey, error) {
	if s == nil {
		return PublicKey{}, errors.New("saa: no signing key")
	}
	return NewPublicKey(s.Public())
}

// MarshalPrivatePEM encodes an SAA private key as a PKCS#8 "PRIVATE KEY"
// PEM block.
func MarshalPrivatePEM(s crypto.Signer) ([]byte, error) {
	if _, err := signerKey(s); err != nil {
		return nil, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(s)
	if err != nil {
		return nil, fmt.Errorf("saa: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// ParsePrivatePEM decodes a PKCS#8 "PRIVATE KEY" PEM block (or the
// PKCS#1 "RSA PRIVATE KEY" and SEC 1 "EC PRIVATE KEY" that openssl
// writes) holding an SAA key.
func ParsePrivatePEM(b []byte) (crypto.Signer, error) {
	blk, _ := pem.Decode(b)
	if blk == nil {
		return nil, errors.New("saa: no PEM block in the private key file")
	}
	var k any
	var err error
	switch blk.Type {
	case "PRIVATE KEY":
		k, err = x509.ParsePKCS8PrivateKey(blk.Bytes)
	case "RSA PRIVATE KEY":
		k, err = x509.ParsePKCS1PrivateKey(blk.Bytes)
	case "EC PRIVATE KEY":
		k, err = x509.ParseECPrivateKey(blk.Bytes)
	default:
		return nil, fmt.Errorf("saa: PEM block %q, want PRIVATE KEY", blk.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("saa: private key: %w", err)
	}
	s, ok := k.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("saa: %T cannot sign", k)
	}
	if _, err := signerKey(s); err != nil {
		return nil, err
	}
	return s, nil
}

// MarshalPublicPEM encodes k as a PKIX "PUBLIC KEY" PEM block.
func MarshalPublicPEM(k PublicKey) ([]byte, error) {
	if k.IsZero() {
		return nil, errors.New("saa: no public key")
	}
	der, err := x509.MarshalPKIXPublicKey(k.Crypto())
	if err != nil {
		return nil, fmt.Errorf("saa: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), nil
}

// ParsePublicPEM reads a public key file: a PKIX "PUBLIC KEY" (or PKCS#1
// "RSA PUBLIC KEY") PEM block, or the key's raw wire form — the bare
// 256-byte modulus file Xen's manage-vtpmmgr.pl worked with.
func ParsePublicPEM(b []byte) (PublicKey, error) {
	blk, _ := pem.Decode(b)
	if blk == nil {
		if len(b) == RSAKeySize || len(b) == ECDSAKeySize {
			return ParsePublicKey(b)
		}
		return PublicKey{}, fmt.Errorf("saa: public key file is neither PEM nor a raw key (%d bytes, want %d or %d)", len(b), RSAKeySize, ECDSAKeySize)
	}
	var k any
	var err error
	switch blk.Type {
	case "PUBLIC KEY":
		k, err = x509.ParsePKIXPublicKey(blk.Bytes)
	case "RSA PUBLIC KEY":
		k, err = x509.ParsePKCS1PublicKey(blk.Bytes)
	default:
		return PublicKey{}, fmt.Errorf("saa: PEM block %q, want PUBLIC KEY", blk.Type)
	}
	if err != nil {
		return PublicKey{}, fmt.Errorf("saa: public key: %w", err)
	}
	return NewPublicKey(k)
}

// TPMPublic is k as the TPMT_PUBLIC the manager loads into the hardware
// TPM 2.0 (TPM2_LoadExternal, public part only) to check approvals with
// TPM2_VerifySignature. Its name is the keySign of the storage key's
// TPM2_PolicyAuthorize, so this one definition serves both.
func (k PublicKey) TPMPublic() (tpm2.TPMTPublic, error) {
	// A verification key bound to its one scheme (RSASSA or ECDSA with
	// SHA-256), so the TPM checks nothing else under this name.
	base := tpm2.TPMTPublic{NameAlg: tpm2.TPMAlgSHA256, ObjectAttributes: tpm2.TPMAObject{SignEncrypt: true}}
	switch {
	case k.rsa != nil:
		base.Type = tpm2.TPMAlgRSA
		base.Parameters = tpm2.NewTPMUPublicParms(tpm2.TPMAlgRSA, &tpm2.TPMSRSAParms{
			Symmetric: tpm2.TPMTSymDefObject{Algorithm: tpm2.TPMAlgNull},
			Scheme: tpm2.TPMTRSAScheme{Scheme: tpm2.TPMAlgRSASSA, Details: tpm2.NewTPMUAsymScheme(tpm2.TPMAlgRSASSA,
				&tpm2.TPMSSigSchemeRSASSA{HashAlg: tpm2.TPMAlgSHA256})},
			KeyBits: 8 * RSAKeySize,
			// Exponent 0 is the TPM's encoding of 65537, the only one
			// NewPublicKey accepts.
		})
		base.Unique = tpm2.NewTPMUPublicID(tpm2.TPMAlgRSA, &tpm2.TPM2BPublicKeyRSA{Buffer: k.Bytes()})
		return base, nil
	case k.ec != nil:
		b := k.Bytes()
		base.Type = tpm2.TPMAlgECC
		base.Parameters = tpm2.NewTPMUPublicParms(tpm2.TPMAlgECC, &tpm2.TPMSECCParms{
			Symmetric: tpm2.TPMTSymDefObject{Algorithm: tpm2.TPMAlgNull},
			Scheme: tpm2.TPMTECCScheme{Scheme: tpm2.TPMAlgECDSA, Details: tpm2.NewTPMUAsymScheme(tpm2.TPMAlgECDSA,
				&tpm2.TPMSSigSchemeECDSA{HashAlg: tpm2.TPMAlgSHA256})},
			CurveID: tpm2.TPMECCNistP256,
			KDF:     tpm2.TPMTKDFScheme{Scheme: tpm2.TPMAlgNull},
		})
		base.Unique = tpm2.NewTPMUPublicID(tpm2.TPMAlgECC, &tpm2.TPMSECCPoint{
			X: tpm2.TPM2BECCParameter{Buffer: b[1:33]},
			Y: tpm2.TPM2BECCParameter{Buffer: b[33:]},
		})
		return base, nil
	}
	return tpm2.TPMTPublic{}, errors.New("saa: no public key")
}

// TPMSignature is sig, an SAA signature by k, as the TPMT_SIGNATURE
// TPM2_VerifySignature takes: TPM_ALG_RSASSA, or TPM_ALG_ECDSA with r
// and s taken out of the DER and padded to 32 bytes, both with SHA-256.
func TPMSignature(k PublicKey, sig []byte) (tpm2.TPMTSignature, error) {
	switch {
	case k.rsa != nil:
		if len(sig) != RSASigSize {
			return tpm2.TPMTSignature{}, fmt.Errorf("saa: RSA signature of %d bytes, want %d", len(sig), RSASigSize)
		}
		return tpm2.TPMTSignature{
			SigAlg: tpm2.TPMAlgRSASSA,
			Signature: tpm2.NewTPMUSignature(tpm2.TPMAlgRSASSA, &tpm2.TPMSSignatureRSA{
				Hash: tpm2.TPMAlgSHA256, Sig: tpm2.TPM2BPublicKeyRSA{Buffer: sig},
			}),
		}, nil
	case k.ec != nil:
		var rs struct{ R, S *big.Int }
		rest, err := asn1.Unmarshal(sig, &rs)
		if err != nil || len(rest) != 0 {
			return tpm2.TPMTSignature{}, errors.New("saa: ECDSA signature is not a DER SEQUENCE of r and s")
		}
		if rs.R.Sign() <= 0 || rs.S.Sign() <= 0 || rs.R.BitLen() > 256 || rs.S.BitLen() > 256 {
			return tpm2.TPMTSignature{}, errors.New("saa: ECDSA signature's r or s out of range")
		}
		return tpm2.TPMTSignature{
			SigAlg: tpm2.TPMAlgECDSA,
			Signature: tpm2.NewTPMUSignature(tpm2.TPMAlgECDSA, &tpm2.TPMSSignatureECC{
				Hash:       tpm2.TPMAlgSHA256,
				SignatureR: tpm2.TPM2BECCParameter{Buffer: rs.R.FillBytes(make([]byte, 32))},
				SignatureS: tpm2.TPM2BECCParameter{Buffer: rs.S.FillBytes(make([]byte, 32))},
			}),
		}, nil
	}
	return tpm2.TPMTSignature{}, errors.New("saa: no public key")
}
