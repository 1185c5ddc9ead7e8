package tpm2

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/sha256"
	"errors"
	"fmt"
	"testing"

	gt "github.com/google/go-tpm/tpm2"
	"github.com/google/go-tpm/tpm2/transport"
)

// engineTransport is an in-process go-tpm transport over Process.
type engineTransport struct{ t *TPM }

func (e engineTransport) Send(cmd []byte) ([]byte, error) { return e.t.Process(cmd, 0), nil }

func newStarted(t testing.TB) (*TPM, transport.TPM) {
	t.Helper()
	tp, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	tr := engineTransport{tp}
	if _, err := (gt.Startup{StartupType: gt.TPMSUClear}).Execute(tr); err != nil {
		t.Fatalf("Startup: %v", err)
	}
	return tp, tr
}

func wantRC(t *testing.T, err error, rc uint32) {
	t.Helper()
	var e gt.TPMRC
	if !errors.As(err, &e) {
		t.Fatalf("got %v, want TPM_RC 0x%x", err, rc)
	}
	if uint32(e) != rc {
		t.Fatalf("got 0x%x (%v), want 0x%x", uint32(e), err, rc)
	}
}

func TestStartupRequired(t *testing.T) {
	tp, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	tr := engineTransport{tp}
	_, err = (gt.GetRandom{BytesRequested: 8}).Execute(tr)
	wantRC(t, err, rcInitialize)
	if _, err := (gt.Startup{StartupType: gt.TPMSUClear}).Execute(tr); err != nil {
		t.Fatal(err)
	}
	_, err = (gt.Startup{StartupType: gt.TPMSUClear}).Execute(tr)
	wantRC(t, err, rcInitialize)
	r, err := (gt.GetRandom{BytesRequested: 32}).Execute(tr)
	if err != nil || len(r.RandomBytes.Buffer) != 32 {
		t.Fatalf("GetRandom: %v %d", err, len(r.RandomBytes.Buffer))
	}
}

func TestTPM12CommandGetsBadTag(t *testing.T) {
	tp, _ := newStarted(t)
	// TPM 1.2 TPM_GetCapability as xen-tpmfront/Linux send at probe.
	cmd := []byte{0x00, 0xC1, 0, 0, 0, 0x16, 0, 0, 0, 0x65, 0, 0, 0, 5, 0, 0, 0, 4, 0, 0, 1, 1}
	rsp := tp.Process(cmd, 0)
	want := []byte{0x00, 0xC4, 0, 0, 0, 10, 0, 0, 0, 0x1E}
	if !bytes.Equal(rsp, want) {
		t.Fatalf("got % x, want % x", rsp, want)
	}
}

func TestPCRExtendRead(t *testing.T) {
	_, tr := newStarted(t)
	d := sha256.Sum256([]byte("measurement"))
	_, err := (gt.PCRExtend{
		PCRHandle: gt.AuthHandle{Handle: 7, Auth: gt.PasswordAuth(nil)},
		Digests:   gt.TPMLDigestValues{Digests: []gt.TPMTHA{{HashAlg: gt.TPMAlgSHA256, Digest: d[:]}}},
	}).Execute(tr)
	if err != nil {
		t.Fatal(err)
	}
	r, err := (gt.PCRRead{PCRSelectionIn: gt.TPMLPCRSelection{PCRSelections: []gt.TPMSPCRSelection{
		{Hash: gt.TPMAlgSHA256, PCRSelect: gt.PCClientCompatible.PCRs(7)}}}}).Execute(tr)
	if err != nil {
		t.Fatal(err)
	}
	want := sha256.Sum256(append(make([]byte, 32), d[:]...))
	if len(r.PCRValues.Digests) != 1 || !bytes.Equal(r.PCRValues.Digests[0].Buffer, want[:]) {
		t.Fatalf("PCR7 = %x, want %x", r.PCRValues.Digests, want)
	}
	if r.PCRUpdateCounter != 1 {
		t.Fatalf("update counter %d, want 1", r.PCRUpdateCounter)
	}
}

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
			tp2, err := New(Config{State: blob})
			if err != nil {
				t.Fatal(err)
			}
			tr2 := engineTransport{tp2}
			if _, err := (gt.Startup{StartupType: gt.TPMSUClear}).Execute(tr2); err != nil {
				t.Fatal(err)
			}
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

func init() {
	onPanic = func(r any, stack []byte) { panic(fmt.Sprintf("engine panic: %v\n%s", r, stack)) }
}
