package tpm2

import (
	"bytes"
	"crypto/elliptic"
	"math/big"
	"testing"

	gt "github.com/google/go-tpm/tpm2"
	"github.com/google/go-tpm/tpm2/transport"
)

var derivedECCTemplate = gt.TPMTTemplate{Type: gt.TPMAlgECC, NameAlg: gt.TPMAlgSHA256,
	ObjectAttributes: gt.TPMAObject{FixedParent: true, SignEncrypt: true, UserWithAuth: true},
	Parameters: gt.NewTPMUPublicParms(gt.TPMAlgECC, &gt.TPMSECCParms{CurveID: gt.TPMECCNistP256,
		Scheme:    gt.TPMTECCScheme{Scheme: gt.TPMAlgECDSA, Details: gt.NewTPMUAsymScheme(gt.TPMAlgECDSA, &gt.TPMSSigSchemeECDSA{HashAlg: gt.TPMAlgSHA256})},
		Symmetric: gt.TPMTSymDefObject{Algorithm: gt.TPMAlgNull}, KDF: gt.TPMTKDFScheme{Scheme: gt.TPMAlgNull}}),
	Unique: gt.TPMSDerive{Label: gt.TPM2BLabel{Buffer: []byte("label")}, Context: gt.TPM2BLabel{Buffer: []byte("context")}}}

// createDerivationParent creates and loads under srk a derivation parent
// whose secret is secret.
func createDerivationParent(tr transport.TPM, srk gt.NamedHandle, secret []byte) (gt.NamedHandle, error) {
	pub := gt.TPMTPublic{Type: gt.TPMAlgKeyedHash, NameAlg: gt.TPMAlgSHA256,
		ObjectAttributes: gt.TPMAObject{Restricted: true, Decrypt: true, UserWithAuth: true},
		Parameters: gt.NewTPMUPublicParms(gt.TPMAlgKeyedHash, &gt.TPMSKeyedHashParms{Scheme: gt.TPMTKeyedHashScheme{Scheme: gt.TPMAlgXOR,
			Details: gt.NewTPMUSchemeKeyedHash(gt.TPMAlgXOR, &gt.TPMSSchemeXOR{HashAlg: gt.TPMAlgSHA256, KDF: gt.TPMAlgKDF1SP800108})}})}
	cr, err := (gt.Create{ParentHandle: srk, InPublic: gt.New2B(pub), InSensitive: gt.TPM2BSensitiveCreate{Sensitive: &gt.TPMSSensitiveCreate{
		Data: gt.NewTPMUSensitiveCreate(&gt.TPM2BSensitiveData{Buffer: secret})}}}).Execute(tr)
	if err != nil {
		return gt.NamedHandle{}, err
	}
	lr, err := (gt.Load{ParentHandle: srk, InPrivate: cr.OutPrivate, InPublic: cr.OutPublic}).Execute(tr)
	if err != nil {
		return gt.NamedHandle{}, err
	}
	return gt.NamedHandle{Handle: lr.ObjectHandle, Name: lr.Name}, nil
}

// TestDerivedKeyFromParentSecret: the derived key's private scalar is
// the first 40 octets of KDFa(SHA-256, secret, label, context, 8192)
// reduced mod n-1, plus 1 (Part 1 §28.2 with the reference's KDF-based
// DRBG), in any TPM holding the same parent secret.
func TestDerivedKeyFromParentSecret(t *testing.T) {
	secret := []byte("derivation parent secret")
	var publics [][]byte
	for range 2 {
		_, tr := newStarted(t)
		srk := createPrimary(t, tr, gt.TPMRHOwner, gt.ECCSRKTemplate)
		dp, err := createDerivationParent(tr, gt.NamedHandle{Handle: srk.ObjectHandle, Name: srk.Name}, secret)
		if err != nil {
			t.Fatal(err)
		}
		r, err := (gt.CreateLoaded{ParentHandle: dp, InPublic: gt.New2BTemplate(&derivedECCTemplate)}).Execute(tr)
		if err != nil {
			t.Fatal(err)
		}
		if len(r.OutPrivate.Buffer) != 0 {
			t.Errorf("derived object returned a private area")
		}
		publics = append(publics, r.OutPublic.Bytes())
		// Create (not CreateLoaded) under a derivation parent is refused.
		_, err = (gt.Create{ParentHandle: dp, InPublic: gt.New2B(gt.ECCSRKTemplate)}).Execute(tr)
		wantRC(t, err, 0x18a)
	}
	if !bytes.Equal(publics[0], publics[1]) {
		t.Fatalf("derived keys differ between TPMs")
	}
	stream := gt.KDFa(cryptoSHA256, secret, "label", []byte("context"), nil, 8192)
	n := elliptic.P256().Params().N
	d := new(big.Int).Mod(new(big.Int).SetBytes(stream[:40]), new(big.Int).Sub(n, big.NewInt(1)))
	d.Add(d, big.NewInt(1))
	x, _ := elliptic.P256().ScalarBaseMult(d.FillBytes(make([]byte, 32)))
	pub, _ := gt.Unmarshal[gt.TPMTPublic](publics[0])
	u, _ := pub.Unique.ECC()
	if !bytes.Equal(u.X.Buffer, x.FillBytes(make([]byte, 32))) {
		t.Errorf("derived public key does not follow from the parent's secret")
	}
}

// TestDerivationStreamBound: as in the reference, a read fails when the
// blocks already begun plus the request pass TPM_MAX_DERIVATION_BITS.
func TestDerivationStreamBound(t *testing.T) {
	s := newDerivationStream(cryptoSHA256, []byte("k"), nil, nil)
	if _, err := s.Read(make([]byte, 990)); err != nil { // begins 31 blocks, 992 octets
		t.Fatal(err)
	}
	if _, err := s.Read(make([]byte, 33)); err == nil {
		t.Fatal("read past the derivation bound")
	}
	if _, err := s.Read(make([]byte, 32)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Read(make([]byte, 1)); err == nil {
		t.Fatal("read past the derivation bound")
	}
}

// TestCreateTemplateRules: the reference's creation checks, with the
// response codes libtpms gives.
func TestCreateTemplateRules(t *testing.T) {
	_, tr := newStarted(t)
	srk := createPrimary(t, tr, gt.TPMRHOwner, gt.ECCSRKTemplate)
	parent := gt.NamedHandle{Handle: srk.ObjectHandle, Name: srk.Name}
	null := gt.TPMTKeyedHashScheme{Scheme: gt.TPMAlgNull}
	keyed := func(a gt.TPMAObject, s gt.TPMTKeyedHashScheme) gt.TPMTPublic {
		return gt.TPMTPublic{Type: gt.TPMAlgKeyedHash, NameAlg: gt.TPMAlgSHA256, ObjectAttributes: a,
			Parameters: gt.NewTPMUPublicParms(gt.TPMAlgKeyedHash, &gt.TPMSKeyedHashParms{Scheme: s})}
	}
	ecc := func(a gt.TPMAObject, s gt.TPMTECCScheme) gt.TPMTPublic {
		return gt.TPMTPublic{Type: gt.TPMAlgECC, NameAlg: gt.TPMAlgSHA256, ObjectAttributes: a,
			Parameters: gt.NewTPMUPublicParms(gt.TPMAlgECC, &gt.TPMSECCParms{CurveID: gt.TPMECCNistP256, Scheme: s,
				Symmetric: gt.TPMTSymDefObject{Algorithm: gt.TPMAlgNull}, KDF: gt.TPMTKDFScheme{Scheme: gt.TPMAlgNull}})}
	}
	ecdsa := gt.TPMTECCScheme{Scheme: gt.TPMAlgECDSA, Details: gt.NewTPMUAsymScheme(gt.TPMAlgECDSA, &gt.TPMSSigSchemeECDSA{HashAlg: gt.TPMAlgSHA256})}
	hmacS := gt.TPMTKeyedHashScheme{Scheme: gt.TPMAlgHMAC, Details: gt.NewTPMUSchemeKeyedHash(gt.TPMAlgHMAC, &gt.TPMSSchemeHMAC{HashAlg: gt.TPMAlgSHA256})}
	for _, c := range []struct {
		name string
		pub  gt.TPMTPublic
		data []byte
		rc   uint32
	}{
		{"data object without data", keyed(gt.TPMAObject{UserWithAuth: true}, null), nil, 0x2c2},
		{"data object with sensitiveDataOrigin", keyed(gt.TPMAObject{UserWithAuth: true, SensitiveDataOrigin: true}, null), nil, 0x2c2},
		{"HMAC key longer than the hash block", keyed(gt.TPMAObject{UserWithAuth: true, SignEncrypt: true}, hmacS), make([]byte, 65), 0x095},
		{"ECC key without sensitiveDataOrigin", ecc(gt.TPMAObject{UserWithAuth: true, SignEncrypt: true}, ecdsa), nil, 0x2c2},
		{"ECDSA on a decryption key", ecc(gt.TPMAObject{UserWithAuth: true, Decrypt: true, SensitiveDataOrigin: true}, ecdsa), nil, 0x2d2},
		{"restricted signing key without a scheme", ecc(gt.TPMAObject{UserWithAuth: true, SignEncrypt: true, Restricted: true, SensitiveDataOrigin: true},
			gt.TPMTECCScheme{Scheme: gt.TPMAlgNull}), nil, 0x2d2},
		{"XOR on a signing keyed hash", keyed(gt.TPMAObject{UserWithAuth: true, SignEncrypt: true, SensitiveDataOrigin: true},
			gt.TPMTKeyedHashScheme{Scheme: gt.TPMAlgXOR, Details: gt.NewTPMUSchemeKeyedHash(gt.TPMAlgXOR,
				&gt.TPMSSchemeXOR{HashAlg: gt.TPMAlgSHA256, KDF: gt.TPMAlgKDF1SP800108})}), nil, 0x2d2},
	} {
		_, err := (gt.Create{ParentHandle: parent, InPublic: gt.New2B(c.pub), InSensitive: gt.TPM2BSensitiveCreate{Sensitive: &gt.TPMSSensitiveCreate{
			Data: gt.NewTPMUSensitiveCreate(&gt.TPM2BSensitiveData{Buffer: c.data})}}}).Execute(tr)
		t.Run(c.name, func(t *testing.T) { wantRC(t, err, c.rc) })
	}
}

// TestDerivedObjectRules: what CreateLoaded refuses under a derivation
// parent.
func TestDerivedObjectRules(t *testing.T) {
	_, tr := newStarted(t)
	srk := createPrimary(t, tr, gt.TPMRHOwner, gt.ECCSRKTemplate)
	dp, err := createDerivationParent(tr, gt.NamedHandle{Handle: srk.ObjectHandle, Name: srk.Name}, []byte("s"))
	if err != nil {
		t.Fatal(err)
	}
	try := func(f func(*gt.TPMTTemplate)) error {
		tm := derivedECCTemplate
		f(&tm)
		_, err := (gt.CreateLoaded{ParentHandle: dp, InPublic: gt.New2BTemplate(&tm)}).Execute(tr)
		return err
	}
	wantRC(t, try(func(tm *gt.TPMTTemplate) { tm.ObjectAttributes.SensitiveDataOrigin = true }), 0x082)
	wantRC(t, try(func(tm *gt.TPMTTemplate) { tm.ObjectAttributes.FixedParent = false }), 0x2c2)
	wantRC(t, try(func(tm *gt.TPMTTemplate) { tm.ObjectAttributes.FixedTPM = true }), 0x2c2)
	wantRC(t, try(func(tm *gt.TPMTTemplate) {
		tm.Type = gt.TPMAlgRSA
		tm.Parameters = gt.NewTPMUPublicParms(gt.TPMAlgRSA, &gt.TPMSRSAParms{KeyBits: 2048,
			Symmetric: gt.TPMTSymDefObject{Algorithm: gt.TPMAlgNull}, Scheme: gt.TPMTRSAScheme{Scheme: gt.TPMAlgNull}})
	}), 0x2ca)
}
