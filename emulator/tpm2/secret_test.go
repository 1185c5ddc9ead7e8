package tpm2

import (
	"crypto/elliptic"
	"testing"

	gt "github.com/google/go-tpm/tpm2"
)

// TestECDHKeyGenWholePoint: zPoint is [d]Q with both coordinates.
func TestECDHKeyGenWholePoint(t *testing.T) {
	tp, tr := newStarted(t)
	tmpl := gt.ECCSRKTemplate
	tmpl.ObjectAttributes.Restricted = false
	tmpl.Parameters = gt.NewTPMUPublicParms(gt.TPMAlgECC, &gt.TPMSECCParms{CurveID: gt.TPMECCNistP256,
		Symmetric: gt.TPMTSymDefObject{Algorithm: gt.TPMAlgNull}, Scheme: gt.TPMTECCScheme{Scheme: gt.TPMAlgNull}, KDF: gt.TPMTKDFScheme{Scheme: gt.TPMAlgNull}})
	k := createPrimary(t, tr, gt.TPMRHOwner, tmpl)
	rsp := tp.Process(rawCommand(uint32(gt.TPMCCECDHKeyGen), []uint32{uint32(k.ObjectHandle)}, nil, nil), 0)
	if rc := responseCode(rsp); rc != 0 {
		t.Fatalf("ECDH_KeyGen: 0x%x", rc)
	}
	z, err := gt.Unmarshal[gt.TPM2BECCPoint](rsp[10:])
	if err != nil {
		t.Fatal(err)
	}
	zp, _ := z.Contents()
	if len(zp.X.Buffer) != 32 || len(zp.Y.Buffer) != 32 || !elliptic.P256().IsOnCurve(bigOf(zp.X.Buffer), bigOf(zp.Y.Buffer)) {
		t.Fatalf("zPoint %x/%x is not a whole point on P-256", zp.X.Buffer, zp.Y.Buffer)
	}
}

// TestMakeCredentialNameAlgBound: the credential is at most a nameAlg
// digest (32 octets for SHA-256).
func TestMakeCredentialNameAlgBound(t *testing.T) {
	_, tr := newStarted(t)
	srk := createPrimary(t, tr, gt.TPMRHOwner, gt.ECCSRKTemplate)
	for n, rc := range map[int]uint32{32: 0, 33: 0x1d5} {
		_, err := (gt.MakeCredential{Handle: srk.ObjectHandle, Credential: gt.TPM2BDigest{Buffer: make([]byte, n)}, ObjectName: srk.Name}).Execute(tr)
		if rc == 0 {
			if err != nil {
				t.Fatalf("%d octets: %v", n, err)
			}
			continue
		}
		wantRC(t, err, rc)
	}
}

// TestPolicyNameHashSlot: cpHash and nameHash exclude each other, and
// nameHash is set once.
func TestPolicyNameHashSlot(t *testing.T) {
	tp, tr := newStarted(t)
	nh := make([]byte, 32)
	nameHash := func(s gt.TPMISHPolicy) uint32 {
		return responseCode(tp.Process(rawCommand(uint32(gt.TPMCCPolicyNameHash), []uint32{uint32(s)}, nil, sized(nh)), 0))
	}
	s, closer, err := gt.PolicySession(tr, gt.TPMAlgSHA256, 16)
	if err != nil {
		t.Fatal(err)
	}
	defer closer()
	if rc := nameHash(s.Handle()); rc != 0 {
		t.Fatalf("first PolicyNameHash: 0x%x", rc)
	}
	if rc := nameHash(s.Handle()); rc != 0x151 {
		t.Fatalf("second PolicyNameHash: 0x%x, want TPM_RC_CPHASH", rc)
	}
	_, err = (gt.PolicyCPHash{PolicySession: s.Handle(), CPHashA: gt.TPM2BDigest{Buffer: nh}}).Execute(tr)
	wantRC(t, err, 0x151)
}
