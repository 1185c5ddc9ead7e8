package tpm2

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"testing"

	gt "github.com/google/go-tpm/tpm2"
	"github.com/google/go-tpm/tpm2/transport"
)

func TestCredentialQuoteAndNV(t *testing.T) {
	_, tr := newStarted(t)
	ek := createPrimary(t, tr, gt.TPMRHEndorsement, gt.RSAEKTemplate)
	srk := createPrimary(t, tr, gt.TPMRHOwner, gt.ECCSRKTemplate)
	akTmpl := gt.TPMTPublic{Type: gt.TPMAlgECC, NameAlg: gt.TPMAlgSHA256,
		ObjectAttributes: gt.TPMAObject{FixedTPM: true, FixedParent: true, SensitiveDataOrigin: true, UserWithAuth: true, Restricted: true, SignEncrypt: true},
		Parameters: gt.NewTPMUPublicParms(gt.TPMAlgECC, &gt.TPMSECCParms{CurveID: gt.TPMECCNistP256,
			Scheme: gt.TPMTECCScheme{Scheme: gt.TPMAlgECDSA, Details: gt.NewTPMUAsymScheme(gt.TPMAlgECDSA, &gt.TPMSSigSchemeECDSA{HashAlg: gt.TPMAlgSHA256})}})}
	ak, err := (gt.CreateLoaded{ParentHandle: gt.NamedHandle{Handle: srk.ObjectHandle, Name: srk.Name}, InPublic: gt.New2BTemplate(&akTmpl)}).Execute(tr)
	if err != nil {
		t.Fatalf("CreateLoaded: %v", err)
	}
	// MakeCredential on the TPM, ActivateCredential with the EK policy.
	cred := []byte("0123456789abcdef")
	mc, err := (gt.MakeCredential{Handle: ek.ObjectHandle, Credential: gt.TPM2BDigest{Buffer: cred}, ObjectName: ak.Name}).Execute(tr)
	if err != nil {
		t.Fatalf("MakeCredential: %v", err)
	}
	ekPolicy := gt.Policy(gt.TPMAlgSHA256, 16, func(tpm transport.TPM, h gt.TPMISHPolicy, nonce gt.TPM2BNonce) error {
		_, err := (gt.PolicySecret{AuthHandle: gt.AuthHandle{Handle: gt.TPMRHEndorsement, Auth: gt.PasswordAuth(nil)}, PolicySession: h, NonceTPM: nonce}).Execute(tpm)
		return err
	})
	ac, err := (gt.ActivateCredential{
		ActivateHandle: gt.AuthHandle{Handle: ak.ObjectHandle, Name: ak.Name, Auth: gt.PasswordAuth(nil)},
		KeyHandle:      gt.AuthHandle{Handle: ek.ObjectHandle, Name: ek.Name, Auth: ekPolicy},
		CredentialBlob: mc.CredentialBlob, Secret: mc.Secret,
	}).Execute(tr)
	if err != nil {
		t.Fatalf("ActivateCredential: %v", err)
	}
	if !bytes.Equal(ac.CertInfo.Buffer, cred) {
		t.Fatalf("credential %q", ac.CertInfo.Buffer)
	}
	// Quote: verify the signature and that the digest is of the PCRs.
	q, err := (gt.Quote{SignHandle: gt.AuthHandle{Handle: ak.ObjectHandle, Name: ak.Name, Auth: gt.PasswordAuth(nil)},
		QualifyingData: gt.TPM2BData{Buffer: []byte("nonce")}, InScheme: gt.TPMTSigScheme{Scheme: gt.TPMAlgNull},
		PCRSelect: pcrSel(gt.TPMAlgSHA256, 0, 16)}).Execute(tr)
	if err != nil {
		t.Fatalf("Quote: %v", err)
	}
	att, err := q.Quoted.Contents()
	if err != nil {
		t.Fatal(err)
	}
	qi, err := att.Attested.Quote()
	if err != nil || !bytes.Equal(att.ExtraData.Buffer, []byte("nonce")) {
		t.Fatalf("quote body: %v", err)
	}
	want := sha256.Sum256(make([]byte, 64))
	if !bytes.Equal(qi.PCRDigest.Buffer, want[:]) {
		t.Fatalf("quote pcrDigest %x", qi.PCRDigest.Buffer)
	}
	akPub, _ := ak.OutPublic.Contents()
	if _, err := (gt.VerifySignature{KeyHandle: ak.ObjectHandle, Digest: gt.TPM2BDigest{Buffer: digestOf(q.Quoted.Bytes())}, Signature: q.Signature}).Execute(tr); err != nil {
		t.Fatalf("quote signature does not verify on the TPM: %v", err)
	}
	_ = akPub
	// NV counter with an HMAC session on the index's own auth.
	nvPub := gt.TPMSNVPublic{NVIndex: 0x01500010, NameAlg: gt.TPMAlgSHA256,
		Attributes: gt.TPMANV{AuthRead: true, AuthWrite: true, NT: gt.TPMNTCounter}, DataSize: 8}
	if _, err := (gt.NVDefineSpace{AuthHandle: gt.TPMRHOwner, Auth: gt.TPM2BAuth{Buffer: []byte("nvpw")}, PublicInfo: gt.New2B(nvPub)}).Execute(tr); err != nil {
		t.Fatal(err)
	}
	name1 := nvName(t, tr, 0x01500010)
	s := gt.HMAC(gt.TPMAlgSHA256, 16, gt.Auth([]byte("nvpw")))
	if _, err := (gt.NVIncrement{AuthHandle: gt.AuthHandle{Handle: 0x01500010, Name: name1, Auth: s}, NVIndex: gt.NamedHandle{Handle: 0x01500010, Name: name1}}).Execute(tr); err != nil {
		t.Fatalf("NV_Increment: %v", err)
	}
	name2 := nvName(t, tr, 0x01500010)
	if bytes.Equal(name1.Buffer, name2.Buffer) {
		t.Fatal("NV name did not change when written")
	}
	r, err := (gt.NVRead{AuthHandle: gt.AuthHandle{Handle: 0x01500010, Name: name2, Auth: s}, NVIndex: gt.NamedHandle{Handle: 0x01500010, Name: name2}, Size: 8}).Execute(tr)
	if err != nil || binary.BigEndian.Uint64(r.Data.Buffer) != 1 {
		t.Fatalf("NV_Read counter: %v %x", err, r.Data.Buffer)
	}
}
