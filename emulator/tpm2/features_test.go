package tpm2

import (
	"bytes"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/binary"
	"testing"

	gt "github.com/google/go-tpm/tpm2"
	"github.com/google/go-tpm/tpm2/transport"
)

func createPrimary(t testing.TB, tr transport.TPM, h gt.TPMHandle, tmpl gt.TPMTPublic) *gt.CreatePrimaryResponse {
	t.Helper()
	r, err := (gt.CreatePrimary{PrimaryHandle: h, InPublic: gt.New2B(tmpl)}).Execute(tr)
	if err != nil {
		t.Fatalf("CreatePrimary: %v", err)
	}
	return r
}

func TestCommandsCapabilityMatchesTotal(t *testing.T) {
	_, tr := newStarted(t)
	p, err := (gt.GetCapability{Capability: gt.TPMCapTPMProperties, Property: uint32(gt.TPMPTTotalCommands), PropertyCount: 1}).Execute(tr)
	if err != nil {
		t.Fatal(err)
	}
	props, _ := p.CapabilityData.Data.TPMProperties()
	total := props.TPMProperty[0].Value
	// The kernel asks for TOTAL_COMMANDS entries from TPM_CC_FIRST.
	c, err := (gt.GetCapability{Capability: gt.TPMCapCommands, Property: 0x11F, PropertyCount: total}).Execute(tr)
	if err != nil {
		t.Fatal(err)
	}
	cmds, _ := c.CapabilityData.Data.Command()
	if uint32(len(cmds.CommandAttributes)) != total || bool(c.MoreData) {
		t.Fatalf("COMMANDS lists %d (moreData %v), TOTAL_COMMANDS %d", len(cmds.CommandAttributes), c.MoreData, total)
	}
	// Paging: two at a time covers the same set.
	n, prop := 0, uint32(0x11F)
	for {
		c, err := (gt.GetCapability{Capability: gt.TPMCapCommands, Property: prop, PropertyCount: 2}).Execute(tr)
		if err != nil {
			t.Fatal(err)
		}
		cmds, _ := c.CapabilityData.Data.Command()
		n += len(cmds.CommandAttributes)
		if !c.MoreData {
			break
		}
		prop = uint32(cmds.CommandAttributes[len(cmds.CommandAttributes)-1].CommandIndex) + 1
	}
	if uint32(n) != total {
		t.Fatalf("paged COMMANDS gave %d, want %d", n, total)
	}
}

func TestSaltedBoundSessionsAndParamEncryption(t *testing.T) {
	_, tr := newStarted(t)
	srkRSA := createPrimary(t, tr, gt.TPMRHOwner, gt.RSASRKTemplate)
	rsaPub, _ := srkRSA.OutPublic.Contents()
	srkECC := createPrimary(t, tr, gt.TPMRHOwner, gt.ECCSRKTemplate)
	eccPub, _ := srkECC.OutPublic.Contents()
	// Seal data under the RSA SRK with an auth value; unseal through
	// sessions of every flavour and check the data arrives intact.
	secret := []byte("sealed-bytes")
	cr, err := (gt.Create{
		ParentHandle: gt.NamedHandle{Handle: srkRSA.ObjectHandle, Name: srkRSA.Name},
		InSensitive:  gt.TPM2BSensitiveCreate{Sensitive: &gt.TPMSSensitiveCreate{UserAuth: gt.TPM2BAuth{Buffer: []byte("pw")}, Data: gt.NewTPMUSensitiveCreate(&gt.TPM2BSensitiveData{Buffer: secret})}},
		InPublic: gt.New2B(gt.TPMTPublic{Type: gt.TPMAlgKeyedHash, NameAlg: gt.TPMAlgSHA256,
			ObjectAttributes: gt.TPMAObject{FixedTPM: true, FixedParent: true, UserWithAuth: true},
			Parameters:       gt.NewTPMUPublicParms(gt.TPMAlgKeyedHash, &gt.TPMSKeyedHashParms{Scheme: gt.TPMTKeyedHashScheme{Scheme: gt.TPMAlgNull}})}),
	}).Execute(tr)
	if err != nil {
		t.Fatal(err)
	}
	ld, err := (gt.Load{ParentHandle: gt.NamedHandle{Handle: srkRSA.ObjectHandle, Name: srkRSA.Name}, InPrivate: cr.OutPrivate, InPublic: cr.OutPublic}).Execute(tr)
	if err != nil {
		t.Fatal(err)
	}
	sessions := map[string]gt.Session{
		"password":           gt.PasswordAuth([]byte("pw")),
		"hmac":               gt.HMAC(gt.TPMAlgSHA256, 16, gt.Auth([]byte("pw"))),
		"hmac-sha1":          gt.HMAC(gt.TPMAlgSHA1, 20, gt.Auth([]byte("pw"))),
		"hmac-sha384":        gt.HMAC(gt.TPMAlgSHA384, 48, gt.Auth([]byte("pw"))),
		"salted-rsa-enc":     gt.HMAC(gt.TPMAlgSHA256, 16, gt.Auth([]byte("pw")), gt.Salted(srkRSA.ObjectHandle, *rsaPub), gt.AESEncryption(128, gt.EncryptOut)),
		"salted-ecc-enc":     gt.HMAC(gt.TPMAlgSHA256, 16, gt.Auth([]byte("pw")), gt.Salted(srkECC.ObjectHandle, *eccPub), gt.AESEncryption(256, gt.EncryptOut)),
		"bound":              gt.HMAC(gt.TPMAlgSHA256, 16, gt.Bound(ld.ObjectHandle, ld.Name, []byte("pw"))),
		"bound-salted-enc":   gt.HMAC(gt.TPMAlgSHA256, 16, gt.Bound(ld.ObjectHandle, ld.Name, []byte("pw")), gt.Salted(srkECC.ObjectHandle, *eccPub), gt.AESEncryption(128, gt.EncryptOut)),
		"policy-authvalue":   gt.Policy(gt.TPMAlgSHA256, 16, nil, gt.Auth([]byte("pw"))),
		"trailing-zero-pass": gt.PasswordAuth([]byte("pw\x00\x00")),
	}
	for name, s := range sessions {
		if name == "policy-authvalue" {
			continue // the sealed object has no policy
		}
		t.Run(name, func(t *testing.T) {
			r, err := (gt.Unseal{ItemHandle: gt.AuthHandle{Handle: ld.ObjectHandle, Name: ld.Name, Auth: s}}).Execute(tr)
			if err != nil {
				t.Fatalf("Unseal: %v", err)
			}
			if !bytes.Equal(r.OutData.Buffer, secret) {
				t.Fatalf("unsealed %q", r.OutData.Buffer)
			}
		})
	}
	// Encrypted command parameter (decrypt session): Hash over XOR too.
	for _, s := range []gt.Session{
		gt.HMAC(gt.TPMAlgSHA256, 16, gt.Salted(srkECC.ObjectHandle, *eccPub), gt.AESEncryption(128, gt.EncryptInOut)),
		gt.HMAC(gt.TPMAlgSHA256, 16, gt.Salted(srkRSA.ObjectHandle, *rsaPub), gt.AESEncryption(128, gt.EncryptIn)),
	} {
		r, err := (gt.Hash{Data: gt.TPM2BMaxBuffer{Buffer: []byte("abc")}, HashAlg: gt.TPMAlgSHA256, Hierarchy: gt.TPMRHNull}).Execute(tr, s)
		if err != nil {
			t.Fatal(err)
		}
		want := sha256.Sum256([]byte("abc"))
		if !bytes.Equal(r.OutHash.Buffer, want[:]) {
			t.Fatalf("Hash via encrypted session %x", r.OutHash.Buffer)
		}
	}
}

func TestPolicies(t *testing.T) {
	_, tr := newStarted(t)
	srk := createPrimary(t, tr, gt.TPMRHOwner, gt.ECCSRKTemplate)
	parent := gt.NamedHandle{Handle: srk.ObjectHandle, Name: srk.Name}
	// Policy: PolicySecret(owner) OR PolicyPCR(16), checked against the
	// go-tpm policy calculator (trial sessions must agree too).
	calc := func(f func(pc *gt.PolicyCalculator)) []byte {
		pc, _ := gt.NewPolicyCalculator(gt.TPMAlgSHA256)
		f(pc)
		return pc.Hash().Digest
	}
	secretPolicy := calc(func(pc *gt.PolicyCalculator) {
		_ = (gt.PolicySecret{AuthHandle: gt.TPMRHOwner}).Update(pc)
	})
	pcrDigest := sha256.Sum256(make([]byte, 32))
	pcrPolicy := calc(func(pc *gt.PolicyCalculator) {
		_ = (gt.PolicyPCR{PcrDigest: gt.TPM2BDigest{Buffer: pcrDigest[:]}, Pcrs: pcrSel(gt.TPMAlgSHA256, 16)}).Update(pc)
	})
	orPolicy := calc(func(pc *gt.PolicyCalculator) {
		_ = (gt.PolicyOr{PHashList: gt.TPMLDigest{Digests: []gt.TPM2BDigest{{Buffer: secretPolicy}, {Buffer: pcrPolicy}}}}).Update(pc)
	})
	trial, closer, err := gt.PolicySession(tr, gt.TPMAlgSHA256, 16, gt.Trial())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := (gt.PolicyPCR{PolicySession: trial.Handle(), PcrDigest: gt.TPM2BDigest{Buffer: pcrDigest[:]}, Pcrs: pcrSel(gt.TPMAlgSHA256, 16)}).Execute(tr); err != nil {
		t.Fatal(err)
	}
	d, err := (gt.PolicyGetDigest{PolicySession: trial.Handle()}).Execute(tr)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(d.PolicyDigest.Buffer, pcrPolicy) {
		t.Fatalf("trial PolicyPCR digest %x, calculator %x", d.PolicyDigest.Buffer, pcrPolicy)
	}
	closer()
	cr, err := (gt.Create{ParentHandle: parent,
		InSensitive: gt.TPM2BSensitiveCreate{Sensitive: &gt.TPMSSensitiveCreate{Data: gt.NewTPMUSensitiveCreate(&gt.TPM2BSensitiveData{Buffer: []byte("x")})}},
		InPublic: gt.New2B(gt.TPMTPublic{Type: gt.TPMAlgKeyedHash, NameAlg: gt.TPMAlgSHA256,
			ObjectAttributes: gt.TPMAObject{FixedTPM: true, FixedParent: true},
			AuthPolicy:       gt.TPM2BDigest{Buffer: orPolicy},
			Parameters:       gt.NewTPMUPublicParms(gt.TPMAlgKeyedHash, &gt.TPMSKeyedHashParms{Scheme: gt.TPMTKeyedHashScheme{Scheme: gt.TPMAlgNull}})}),
	}).Execute(tr)
	if err != nil {
		t.Fatal(err)
	}
	ld, err := (gt.Load{ParentHandle: parent, InPrivate: cr.OutPrivate, InPublic: cr.OutPublic}).Execute(tr)
	if err != nil {
		t.Fatal(err)
	}
	viaSecret := gt.Policy(gt.TPMAlgSHA256, 16, func(tpm transport.TPM, h gt.TPMISHPolicy, nonce gt.TPM2BNonce) error {
		if _, err := (gt.PolicySecret{AuthHandle: gt.AuthHandle{Handle: gt.TPMRHOwner, Auth: gt.PasswordAuth(nil)}, PolicySession: h, NonceTPM: nonce}).Execute(tpm); err != nil {
			return err
		}
		_, err := (gt.PolicyOr{PolicySession: h, PHashList: gt.TPMLDigest{Digests: []gt.TPM2BDigest{{Buffer: secretPolicy}, {Buffer: pcrPolicy}}}}).Execute(tpm)
		return err
	})
	if r, err := (gt.Unseal{ItemHandle: gt.AuthHandle{Handle: ld.ObjectHandle, Name: ld.Name, Auth: viaSecret}}).Execute(tr); err != nil || string(r.OutData.Buffer) != "x" {
		t.Fatalf("Unseal via PolicySecret/PolicyOR: %v", err)
	}
	// A password cannot stand in for the policy (userWithAuth clear).
	_, err = (gt.Unseal{ItemHandle: gt.AuthHandle{Handle: ld.ObjectHandle, Name: ld.Name, Auth: gt.PasswordAuth(nil)}}).Execute(tr)
	wantRC(t, err, rcAuthUnavailable)
	// The wrong policy fails with TPM_RC_POLICY_FAIL on session 1.
	wrong := gt.Policy(gt.TPMAlgSHA256, 16, func(tpm transport.TPM, h gt.TPMISHPolicy, _ gt.TPM2BNonce) error {
		_, err := (gt.PolicyCommandCode{PolicySession: h, Code: gt.TPMCCUnseal}).Execute(tpm)
		return err
	})
	_, err = (gt.Unseal{ItemHandle: gt.AuthHandle{Handle: ld.ObjectHandle, Name: ld.Name, Auth: wrong}}).Execute(tr)
	wantRC(t, err, 0x99D)
}

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

func digestOf(b []byte) []byte { d := sha256.Sum256(b); return d[:] }

func TestContextSaveLoadSessionAndObject(t *testing.T) {
	_, tr := newStarted(t)
	srk := createPrimary(t, tr, gt.TPMRHOwner, gt.ECCSRKTemplate)
	ctx, err := (gt.ContextSave{SaveHandle: srk.ObjectHandle}).Execute(tr)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := (gt.FlushContext{FlushHandle: srk.ObjectHandle}).Execute(tr); err != nil {
		t.Fatal(err)
	}
	ld, err := (gt.ContextLoad{Context: ctx.Context}).Execute(tr)
	if err != nil {
		t.Fatalf("ContextLoad: %v", err)
	}
	rp, err := (gt.ReadPublic{ObjectHandle: ld.LoadedHandle}).Execute(tr)
	if err != nil || !bytes.Equal(rp.Name.Buffer, srk.Name.Buffer) {
		t.Fatalf("reloaded object: %v", err)
	}
	// A tampered blob is refused with TPM_RC_INTEGRITY (parameter 1).
	bad := ctx.Context
	bad.ContextBlob.Buffer = append([]byte{}, bad.ContextBlob.Buffer...)
	bad.ContextBlob.Buffer[len(bad.ContextBlob.Buffer)-1] ^= 1
	_, err = (gt.ContextLoad{Context: bad}).Execute(tr)
	wantRC(t, err, rcIntegrity|0x40|0x100)
	// Session contexts: save, use is refused, load, use works.
	sas, err := (gt.StartAuthSession{TPMKey: gt.TPMRHNull, Bind: gt.TPMRHNull, NonceCaller: gt.TPM2BNonce{Buffer: make([]byte, 16)},
		SessionType: gt.TPMSEPolicy, Symmetric: gt.TPMTSymDef{Algorithm: gt.TPMAlgNull}, AuthHash: gt.TPMAlgSHA256}).Execute(tr)
	if err != nil {
		t.Fatal(err)
	}
	sctx, err := (gt.ContextSave{SaveHandle: sas.SessionHandle}).Execute(tr)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := (gt.PolicyGetDigest{PolicySession: sas.SessionHandle}).Execute(tr); err == nil {
		t.Fatal("saved session still usable")
	}
	if _, err := (gt.ContextLoad{Context: sctx.Context}).Execute(tr); err != nil {
		t.Fatalf("session ContextLoad: %v", err)
	}
	if _, err := (gt.PolicyGetDigest{PolicySession: sas.SessionHandle}).Execute(tr); err != nil {
		t.Fatalf("reloaded session: %v", err)
	}
	// Object slots run out with TPM_RC_OBJECT_MEMORY.
	var last error
	for i := 0; i < loadedObjectsMax+1; i++ {
		_, last = (gt.ContextLoad{Context: ctx.Context}).Execute(tr)
	}
	wantRC(t, last, rcObjectMemory)
	_ = rsa.PublicKey{}
}

// TestKernelHMACFlow follows Linux's CONFIG_TCG_TPM2_HMAC sequence
// (tpm2-sessions.c): a NULL-hierarchy ECC P-256 primary, saved and
// flushed, reloaded per command to salt an ECDH session that then
// encrypts parameters both ways.
func TestKernelHMACFlow(t *testing.T) {
	_, tr := newStarted(t)
	tmpl := gt.TPMTPublic{Type: gt.TPMAlgECC, NameAlg: gt.TPMAlgSHA256,
		ObjectAttributes: gt.TPMAObject{NoDA: true, FixedTPM: true, FixedParent: true, SensitiveDataOrigin: true, UserWithAuth: true, Decrypt: true, Restricted: true},
		Parameters: gt.NewTPMUPublicParms(gt.TPMAlgECC, &gt.TPMSECCParms{CurveID: gt.TPMECCNistP256,
			Symmetric: gt.TPMTSymDefObject{Algorithm: gt.TPMAlgAES, KeyBits: gt.NewTPMUSymKeyBits(gt.TPMAlgAES, gt.TPMKeyBits(128)), Mode: gt.NewTPMUSymMode(gt.TPMAlgAES, gt.TPMAlgCFB)},
			Scheme:    gt.TPMTECCScheme{Scheme: gt.TPMAlgNull}, KDF: gt.TPMTKDFScheme{Scheme: gt.TPMAlgNull}})}
	null := createPrimary(t, tr, gt.TPMRHNull, tmpl)
	if null.CreationTicket.Tag != gt.TPMSTCreation {
		t.Fatalf("creation ticket tag 0x%x", uint16(null.CreationTicket.Tag))
	}
	pub, _ := null.OutPublic.Contents()
	ctx, err := (gt.ContextSave{SaveHandle: null.ObjectHandle}).Execute(tr)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := (gt.FlushContext{FlushHandle: null.ObjectHandle}).Execute(tr); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		ld, err := (gt.ContextLoad{Context: ctx.Context}).Execute(tr)
		if err != nil {
			t.Fatalf("ContextLoad of the null key: %v", err)
		}
		s, closer, err := gt.HMACSession(tr, gt.TPMAlgSHA256, 16, gt.Salted(ld.LoadedHandle, *pub), gt.AESEncryption(128, gt.EncryptInOut))
		if err != nil {
			t.Fatalf("ECDH-salted session: %v", err)
		}
		if _, err := (gt.FlushContext{FlushHandle: ld.LoadedHandle}).Execute(tr); err != nil {
			t.Fatal(err)
		}
		data := []byte("kernel sealed blob")
		r, err := (gt.Hash{Data: gt.TPM2BMaxBuffer{Buffer: data}, HashAlg: gt.TPMAlgSHA256, Hierarchy: gt.TPMRHNull}).Execute(tr, s)
		if err != nil {
			t.Fatalf("encrypted command: %v", err)
		}
		if want := sha256.Sum256(data); !bytes.Equal(r.OutHash.Buffer, want[:]) {
			t.Fatalf("hash through encrypted session %x", r.OutHash.Buffer)
		}
		if err := closer(); err != nil {
			t.Fatal(err)
		}
	}
}
