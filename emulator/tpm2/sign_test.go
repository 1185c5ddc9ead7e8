package tpm2

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/sha256"
	"testing"

	gt "github.com/google/go-tpm/tpm2"
)

func TestCreatePrimaryDeterministicAndSign(t *testing.T) {
	for _, tmpl := range []struct {
		name string
		pub  gt.TPMTPublic
	}{{"ecc-srk", gt.ECCSRKTemplate}, {"rsa-srk", gt.RSASRKTemplate}, {"ecc-ek", gt.ECCEKTemplate}, {"rsa-ek", gt.RSAEKTemplate}} {
		t.Run(tmpl.name, func(t *testing.T) {
			tp, tr := newStarted(t)
			cp := gt.CreatePrimary{PrimaryHandle: gt.TPMRHOwner, InPublic: gt.New2B(tmpl.pub)}
			r1, err := cp.Execute(tr)
			if err != nil {
				t.Fatalf("CreatePrimary: %v", err)
			}
			if _, err := (gt.FlushContext{FlushHandle: r1.ObjectHandle}).Execute(tr); err != nil {
				t.Fatal(err)
			}
			// Same seed, same template: same key, even in a new instance
			// restored from the saved state.
			blob, err := tp.Save()
			if err != nil {
				t.Fatal(err)
			}
			_, tr2 := restarted(t, blob, gt.TPMSUClear)
			r2, err := cp.Execute(tr2)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(r1.Name.Buffer, r2.Name.Buffer) {
				t.Fatalf("primary names differ across restart: %x vs %x", r1.Name.Buffer, r2.Name.Buffer)
			}
			rp, err := (gt.ReadPublic{ObjectHandle: r2.ObjectHandle}).Execute(tr2)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(rp.Name.Buffer, r2.Name.Buffer) {
				t.Fatalf("ReadPublic name %x != %x", rp.Name.Buffer, r2.Name.Buffer)
			}
		})
	}
}

func TestCreateLoadSignECDSA(t *testing.T) {
	_, tr := newStarted(t)
	srk, err := (gt.CreatePrimary{PrimaryHandle: gt.TPMRHOwner, InPublic: gt.New2B(gt.ECCSRKTemplate)}).Execute(tr)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := gt.TPMTPublic{
		Type: gt.TPMAlgECC, NameAlg: gt.TPMAlgSHA256,
		ObjectAttributes: gt.TPMAObject{FixedTPM: true, FixedParent: true, SensitiveDataOrigin: true, UserWithAuth: true, SignEncrypt: true},
		Parameters: gt.NewTPMUPublicParms(gt.TPMAlgECC, &gt.TPMSECCParms{
			CurveID: gt.TPMECCNistP256,
			Scheme:  gt.TPMTECCScheme{Scheme: gt.TPMAlgECDSA, Details: gt.NewTPMUAsymScheme(gt.TPMAlgECDSA, &gt.TPMSSigSchemeECDSA{HashAlg: gt.TPMAlgSHA256})},
		}),
	}
	parent := gt.NamedHandle{Handle: srk.ObjectHandle, Name: srk.Name}
	cr, err := (gt.Create{ParentHandle: parent, InPublic: gt.New2B(tmpl),
		InSensitive: gt.TPM2BSensitiveCreate{Sensitive: &gt.TPMSSensitiveCreate{UserAuth: gt.TPM2BAuth{Buffer: []byte("pw")}}}}).Execute(tr)
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	ld, err := (gt.Load{ParentHandle: parent, InPrivate: cr.OutPrivate, InPublic: cr.OutPublic}).Execute(tr)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	digest := sha256.Sum256([]byte("hello"))
	key := gt.AuthHandle{Handle: ld.ObjectHandle, Name: ld.Name, Auth: gt.HMAC(gt.TPMAlgSHA256, 16, gt.Auth([]byte("pw")))}
	sig, err := (gt.Sign{KeyHandle: key, Digest: gt.TPM2BDigest{Buffer: digest[:]},
		Validation: gt.TPMTTKHashCheck{Tag: gt.TPMSTHashCheck, Hierarchy: gt.TPMRHNull}}).Execute(tr)
	if err != nil {
		t.Fatalf("Sign: %v", err)
	}
	pubT, _ := cr.OutPublic.Contents()
	pk, err := gt.Pub(*pubT)
	if err != nil {
		t.Fatal(err)
	}
	es, err := sig.Signature.Signature.ECDSA()
	if err != nil {
		t.Fatal(err)
	}
	if !ecdsa.Verify(pk.(*ecdsa.PublicKey), digest[:], bigOf(es.SignatureR.Buffer), bigOf(es.SignatureS.Buffer)) {
		t.Fatal("signature does not verify")
	}
	// Wrong password: TPM_RC_AUTH_FAIL on session 1 (DA-protected key).
	key.Auth = gt.PasswordAuth([]byte("wrong"))
	_, err = (gt.Sign{KeyHandle: key, Digest: gt.TPM2BDigest{Buffer: digest[:]},
		Validation: gt.TPMTTKHashCheck{Tag: gt.TPMSTHashCheck, Hierarchy: gt.TPMRHNull}}).Execute(tr)
	wantRC(t, err, 0x98E)
}
