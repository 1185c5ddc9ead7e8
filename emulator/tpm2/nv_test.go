package tpm2

import (
	"bytes"
	"testing"

	gt "github.com/google/go-tpm/tpm2"
)

// An index is not there for anyone while its hierarchy is disabled: the
// owner's while shEnable is CLEAR, the platform's while phEnableNV is.
func TestNVUnusableWhileHierarchyDisabled(t *testing.T) {
	_, tr := newStarted(t)
	define := func(auth gt.TPMHandle, idx gt.TPMHandle, platform bool) {
		t.Helper()
		pub := gt.TPMSNVPublic{NVIndex: idx, NameAlg: gt.TPMAlgSHA256,
			Attributes: gt.TPMANV{AuthRead: true, AuthWrite: true, PlatformCreate: platform, NT: gt.TPMNTOrdinary}, DataSize: 4}
		if _, err := (gt.NVDefineSpace{AuthHandle: auth, PublicInfo: gt.New2B(pub)}).Execute(tr); err != nil {
			t.Fatalf("NV_DefineSpace 0x%x: %v", idx, err)
		}
		name := nvName(t, tr, idx)
		if _, err := (gt.NVWrite{AuthHandle: gt.AuthHandle{Handle: idx, Name: name, Auth: gt.PasswordAuth(nil)},
			NVIndex: gt.NamedHandle{Handle: idx, Name: name}, Data: gt.TPM2BMaxNVBuffer{Buffer: []byte("data")}}).Execute(tr); err != nil {
			t.Fatalf("NV_Write 0x%x: %v", idx, err)
		}
	}
	const owner, platform = 0x01500040, 0x01400040
	define(gt.TPMRHOwner, owner, false)
	define(gt.TPMRHPlatform, platform, true)
	// Raw commands: the index's Name cannot be read to fill a go-tpm
	// handle once the index is hidden.
	read := func(idx uint32) uint32 {
		rsp, _ := tr.Send(rawCommand(uint32(gt.TPMCCNVRead), []uint32{idx, idx}, passwordAuth(nil), append(u16(4), u16(0)...)))
		return responseCode(rsp)
	}
	readPublic := func(idx uint32) uint32 {
		rsp, _ := tr.Send(rawCommand(uint32(gt.TPMCCNVReadPublic), []uint32{idx}, nil, nil))
		return responseCode(rsp)
	}
	hidden := rcHandle | 0x100 // handle 1
	hierarchyControl(t, tr, rhOwner)
	if rc := read(owner); rc != hidden {
		t.Errorf("NV_Read of an owner index with the owner hierarchy disabled: 0x%x, want 0x%x", rc, hidden)
	}
	if rc := readPublic(owner); rc != hidden {
		t.Errorf("NV_ReadPublic of an owner index with the owner hierarchy disabled: 0x%x, want 0x%x", rc, hidden)
	}
	if rc := read(platform); rc != rcSuccess {
		t.Errorf("NV_Read of a platform index with the owner hierarchy disabled: 0x%x", rc)
	}
	hierarchyControl(t, tr, rhPlatformNV)
	if rc := read(platform); rc != hidden {
		t.Errorf("NV_Read of a platform index with phEnableNV clear: 0x%x, want 0x%x", rc, hidden)
	}
}

// TestNVExtendDataBound: NV_Extend's data is a TPM2B_MAX_NV_BUFFER.
func TestNVExtendDataBound(t *testing.T) {
	tp, tr := newStarted(t)
	pub := gt.TPMSNVPublic{NVIndex: 0x01500077, NameAlg: gt.TPMAlgSHA256,
		Attributes: gt.TPMANV{NT: gt.TPMNTExtend, AuthRead: true, AuthWrite: true, NoDA: true}, DataSize: 32}
	if _, err := (gt.NVDefineSpace{AuthHandle: gt.TPMRHOwner, PublicInfo: gt.New2B(pub)}).Execute(tr); err != nil {
		t.Fatal(err)
	}
	extend := func(n int) uint32 {
		return responseCode(tp.Process(rawCommand(uint32(gt.TPMCCNVExtend), []uint32{0x01500077, 0x01500077}, passwordAuth(nil), sized(make([]byte, n))), 0))
	}
	if rc := extend(maxNVBuffer); rc != 0 {
		t.Fatalf("extend of %d octets: 0x%x", maxNVBuffer, rc)
	}
	if rc := extend(maxNVBuffer + 1); rc != 0x1d5 {
		t.Fatalf("extend of %d octets: 0x%x, want TPM_RC_SIZE on data", maxNVBuffer+1, rc)
	}
}

// TestNVCertifyDigestForm: size and offset 0 certify the digest of the
// whole index (TPMS_NV_DIGEST_CERTIFY_INFO).
func TestNVCertifyDigestForm(t *testing.T) {
	_, tr := newStarted(t)
	pub := gt.TPMSNVPublic{NVIndex: 0x01500078, NameAlg: gt.TPMAlgSHA256,
		Attributes: gt.TPMANV{NT: gt.TPMNTOrdinary, AuthRead: true, AuthWrite: true, NoDA: true}, DataSize: 4}
	if _, err := (gt.NVDefineSpace{AuthHandle: gt.TPMRHOwner, PublicInfo: gt.New2B(pub)}).Execute(tr); err != nil {
		t.Fatal(err)
	}
	nvh := gt.NamedHandle{Handle: 0x01500078, Name: nvNameOf(t, pub)}
	if _, err := (gt.NVWrite{AuthHandle: nvh, NVIndex: nvh, Data: gt.TPM2BMaxNVBuffer{Buffer: []byte("abcd")}}).Execute(tr); err != nil {
		t.Fatal(err)
	}
	pub.Attributes.Written = true
	nvh.Name = nvNameOf(t, pub)
	tmpl := gt.ECCSRKTemplate
	tmpl.ObjectAttributes = gt.TPMAObject{FixedTPM: true, FixedParent: true, SensitiveDataOrigin: true, UserWithAuth: true, SignEncrypt: true}
	tmpl.Parameters = gt.NewTPMUPublicParms(gt.TPMAlgECC, &gt.TPMSECCParms{CurveID: gt.TPMECCNistP256,
		Symmetric: gt.TPMTSymDefObject{Algorithm: gt.TPMAlgNull}, KDF: gt.TPMTKDFScheme{Scheme: gt.TPMAlgNull},
		Scheme: gt.TPMTECCScheme{Scheme: gt.TPMAlgECDSA, Details: gt.NewTPMUAsymScheme(gt.TPMAlgECDSA, &gt.TPMSSigSchemeECDSA{HashAlg: gt.TPMAlgSHA256})}})
	k := createPrimary(t, tr, gt.TPMRHOwner, tmpl)
	r, err := (gt.NVCertify{SignHandle: gt.AuthHandle{Handle: k.ObjectHandle, Name: k.Name, Auth: gt.PasswordAuth(nil)},
		AuthHandle: gt.AuthHandle{Handle: nvh.Handle, Name: nvh.Name, Auth: gt.PasswordAuth(nil)}, NVIndex: nvh,
		InScheme: gt.TPMTSigScheme{Scheme: gt.TPMAlgNull}}).Execute(tr)
	if err != nil {
		t.Fatal(err)
	}
	a, err := r.CertifyInfo.Contents()
	if err != nil {
		t.Fatal(err)
	}
	d, err := a.Attested.NVDigest()
	if err != nil || a.Type != gt.TPMSTAttestNVDigest {
		t.Fatalf("attest type 0x%x: %v", uint16(a.Type), err)
	}
	if !bytes.Equal(d.NVDigest.Buffer, digestOf([]byte("abcd"))) || !bytes.Equal(d.IndexName.Buffer, nvh.Name.Buffer) {
		t.Fatalf("nvDigest %x name %x", d.NVDigest.Buffer, d.IndexName.Buffer)
	}
}

func nvNameOf(t *testing.T, pub gt.TPMSNVPublic) gt.TPM2BName {
	t.Helper()
	n, err := gt.NVName(&pub)
	if err != nil {
		t.Fatal(err)
	}
	return *n
}
