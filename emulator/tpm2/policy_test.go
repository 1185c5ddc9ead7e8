package tpm2

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"testing"
	"time"

	gt "github.com/google/go-tpm/tpm2"
	"github.com/google/go-tpm/tpm2/transport"
)

// Checks of policy and authorization that a TPM makes at the moment a
// session authorizes a command, not only when the policy is built.

// A write-once index (PolicyNvWritten(NO) in its write policy) takes one
// write, not two.
func TestPolicyNvWrittenChecksTheIndex(t *testing.T) {
	_, tr := newStarted(t)
	const idx = 0x01500030
	pol := policyDigest(func(pc *gt.PolicyCalculator) error {
		return (gt.PolicyNVWritten{WrittenSet: false}).Update(pc)
	})
	pub := gt.TPMSNVPublic{NVIndex: idx, NameAlg: gt.TPMAlgSHA256, AuthPolicy: gt.TPM2BDigest{Buffer: pol},
		Attributes: gt.TPMANV{PolicyWrite: true, AuthRead: true, NT: gt.TPMNTOrdinary}, DataSize: 4}
	if _, err := (gt.NVDefineSpace{AuthHandle: gt.TPMRHOwner, PublicInfo: gt.New2B(pub)}).Execute(tr); err != nil {
		t.Fatal(err)
	}
	notWritten := gt.Policy(gt.TPMAlgSHA256, 16, func(tpm transport.TPM, s gt.TPMISHPolicy, _ gt.TPM2BNonce) error {
		_, err := (gt.PolicyNVWritten{PolicySession: s, WrittenSet: false}).Execute(tpm)
		return err
	})
	write := func(data string) error {
		name := nvName(t, tr, idx)
		_, err := (gt.NVWrite{AuthHandle: gt.AuthHandle{Handle: idx, Name: name, Auth: notWritten},
			NVIndex: gt.NamedHandle{Handle: idx, Name: name}, Data: gt.TPM2BMaxNVBuffer{Buffer: []byte(data)}}).Execute(tr)
		return err
	}
	if err := write("once"); err != nil {
		t.Fatalf("first write: %v", err)
	}
	wantRC(t, write("2nd!"), rcPolicyFail|0x800|0x100)
	name := nvName(t, tr, idx)
	r, err := (gt.NVRead{AuthHandle: gt.AuthHandle{Handle: idx, Name: name, Auth: gt.PasswordAuth(nil)},
		NVIndex: gt.NamedHandle{Handle: idx, Name: name}, Size: 4}).Execute(tr)
	if err != nil || string(r.Data.Buffer) != "once" {
		t.Fatalf("index holds %q (%v), want the first write", r.Data.Buffer, err)
	}
}

// PolicyLocality restricts the command the session authorizes: the
// locality is checked then, whatever it was when the policy was built.
func TestPolicyLocalityCheckedWhenAuthorizing(t *testing.T) {
	tp, _ := newStarted(t)
	tr := &localTransport{t: tp}
	d := sha256.New()
	d.Write(make([]byte, 32))
	d.Write(u32(uint32(gt.TPMCCPolicyLocality)))
	d.Write([]byte{0x08}) // locality 3
	sealed := sealedWithPolicy(t, tr, d.Sum(nil))

	// policyAt builds the policy at locality build and leaves the
	// transport at locality use for the Unseal.
	policyAt := func(build, use uint8) func(transport.TPM, gt.TPMISHPolicy, gt.TPM2BNonce) error {
		return func(tpm transport.TPM, s gt.TPMISHPolicy, _ gt.TPM2BNonce) error {
			tr.loc = build
			defer func() { tr.loc = use }()
			if rc := policyLocality(tpm, s, 0x08); rc != rcSuccess {
				return gt.TPMRC(rc)
			}
			return nil
		}
	}
	for _, tc := range []struct {
		build, use uint8
		rc         uint32
	}{
		{3, 3, rcSuccess},
		{0, 0, rcLocality}, // 0x08 asked at locality 0
		{3, 0, rcLocality}, // built at 3, used at 0
		{0, 3, rcSuccess},  // what counts is the command's locality
		{3, 4, rcLocality},
	} {
		err := unseal(tr, sealed, policyAt(tc.build, tc.use))
		tr.loc = 0
		if tc.rc == rcSuccess {
			if err != nil {
				t.Errorf("built at %d, used at %d: %v", tc.build, tc.use, err)
			}
			continue
		}
		var rc gt.TPMRC
		if !errors.As(err, &rc) || uint32(rc) != tc.rc {
			t.Errorf("built at %d, used at %d: %v, want TPM_RC 0x%x", tc.build, tc.use, err, tc.rc)
		}
	}

	// Sets narrow each other; an extended locality cannot join a set.
	s, closer, err := gt.PolicySession(tr, gt.TPMAlgSHA256, 16)
	if err != nil {
		t.Fatal(err)
	}
	defer closer()
	if rc := policyLocality(tr, s.Handle(), 0x03); rc != rcSuccess {
		t.Fatalf("PolicyLocality(0x03): 0x%x", rc)
	}
	if rc := policyLocality(tr, s.Handle(), 0x04); rc != rcRange|0x040|0x100 {
		t.Fatalf("PolicyLocality(0x04) after 0x03: 0x%x, want TPM_RC_RANGE on parameter 1", rc)
	}
	if rc := policyLocality(tr, s.Handle(), 0x40); rc != rcRange|0x040|0x100 {
		t.Fatalf("extended locality after a set: 0x%x, want TPM_RC_RANGE on parameter 1", rc)
	}
}

// A positive expiration limits how long the policy authorizes: from the
// session's start with nonceTPM, in TPM time without it.
func TestPolicyExpiration(t *testing.T) {
	clock := time.Unix(1_700_000_000, 0)
	tp, err := New(Config{Now: func() time.Time { return clock }})
	if err != nil {
		t.Fatal(err)
	}
	tr := engineTransport{tp}
	if _, err := (gt.Startup{StartupType: gt.TPMSUClear}).Execute(tr); err != nil {
		t.Fatal(err)
	}
	secretPolicy := policyDigest(func(pc *gt.PolicyCalculator) error {
		return (gt.PolicySecret{AuthHandle: gt.NamedHandle{Handle: gt.TPMRHOwner, Name: gt.HandleName(gt.TPMRHOwner)}}).Update(pc)
	})
	sealed := sealedWithPolicy(t, tr, secretPolicy)
	secret := func(expiration int32, withNonce bool, before, after time.Duration) func(transport.TPM, gt.TPMISHPolicy, gt.TPM2BNonce) error {
		return func(tpm transport.TPM, s gt.TPMISHPolicy, nonce gt.TPM2BNonce) error {
			clock = clock.Add(before)
			if !withNonce {
				nonce = gt.TPM2BNonce{}
			}
			_, err := (gt.PolicySecret{AuthHandle: gt.AuthHandle{Handle: gt.TPMRHOwner, Auth: gt.PasswordAuth(nil)},
				PolicySession: s, NonceTPM: nonce, Expiration: expiration}).Execute(tpm)
			clock = clock.Add(after)
			return err
		}
	}
	expiredAtUse := rcExpired | 0x800 | 0x100    // session 1
	expiredAtPolicy := rcExpired | 0x040 | 0x400 // parameter 4
	for _, tc := range []struct {
		name          string
		exp           int32
		nonce         bool
		before, after time.Duration
		rc            uint32
	}{
		{"used in time", 10, true, 0, 5 * time.Second, rcSuccess},
		{"used too late", 10, true, 0, 11 * time.Second, expiredAtUse},
		{"given too late", 5, true, 6 * time.Second, 0, expiredAtPolicy},
		{"no expiration", 0, true, 0, time.Hour, rcSuccess},
		// Without nonceTPM the expiration is TPM time, and TPM time is
		// past an hour by now.
		{"TPM time passed", 60, false, 0, 0, expiredAtPolicy},
		{"TPM time ahead", 1 << 30, false, 0, time.Minute, rcSuccess},
	} {
		err := unseal(tr, sealed, secret(tc.exp, tc.nonce, tc.before, tc.after))
		if tc.rc == rcSuccess {
			if err != nil {
				t.Errorf("%s: %v", tc.name, err)
			}
			continue
		}
		var rc gt.TPMRC
		if !errors.As(err, &rc) || uint32(rc) != tc.rc {
			t.Errorf("%s: %v, want TPM_RC 0x%x", tc.name, err, tc.rc)
		}
	}

	// PolicySigned: an external key signs nonceTPM || expiration.
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ext, err := (gt.LoadExternal{Hierarchy: gt.TPMRHOwner, InPublic: gt.New2B(gt.TPMTPublic{Type: gt.TPMAlgECC, NameAlg: gt.TPMAlgSHA256,
		ObjectAttributes: gt.TPMAObject{SignEncrypt: true, UserWithAuth: true},
		Parameters: gt.NewTPMUPublicParms(gt.TPMAlgECC, &gt.TPMSECCParms{CurveID: gt.TPMECCNistP256,
			Scheme: gt.TPMTECCScheme{Scheme: gt.TPMAlgECDSA, Details: gt.NewTPMUAsymScheme(gt.TPMAlgECDSA, &gt.TPMSSigSchemeECDSA{HashAlg: gt.TPMAlgSHA256})}}),
		Unique: gt.NewTPMUPublicID(gt.TPMAlgECC, &gt.TPMSECCPoint{X: gt.TPM2BECCParameter{Buffer: key.X.FillBytes(make([]byte, 32))},
			Y: gt.TPM2BECCParameter{Buffer: key.Y.FillBytes(make([]byte, 32))}})})}).Execute(tr)
	if err != nil {
		t.Fatal(err)
	}
	signedPolicy := policyDigest(func(pc *gt.PolicyCalculator) error {
		return (gt.PolicySigned{AuthObject: gt.NamedHandle{Handle: ext.ObjectHandle, Name: ext.Name}}).Update(pc)
	})
	signedSealed := sealedWithPolicy(t, tr, signedPolicy)
	signed := func(expiration int32, after time.Duration) func(transport.TPM, gt.TPMISHPolicy, gt.TPM2BNonce) error {
		return func(tpm transport.TPM, s gt.TPMISHPolicy, nonce gt.TPM2BNonce) error {
			d := sha256.New()
			d.Write(nonce.Buffer)
			d.Write(binary.BigEndian.AppendUint32(nil, uint32(expiration)))
			r, sg, err := ecdsa.Sign(rand.Reader, key, d.Sum(nil))
			if err != nil {
				return err
			}
			_, err = (gt.PolicySigned{AuthObject: gt.NamedHandle{Handle: ext.ObjectHandle, Name: ext.Name}, PolicySession: s,
				NonceTPM: nonce, Expiration: expiration,
				Auth: gt.TPMTSignature{SigAlg: gt.TPMAlgECDSA, Signature: gt.NewTPMUSignature(gt.TPMAlgECDSA, &gt.TPMSSignatureECC{Hash: gt.TPMAlgSHA256,
					SignatureR: gt.TPM2BECCParameter{Buffer: r.Bytes()}, SignatureS: gt.TPM2BECCParameter{Buffer: sg.Bytes()}})}}).Execute(tpm)
			clock = clock.Add(after)
			return err
		}
	}
	if err := unseal(tr, signedSealed, signed(30, 10*time.Second)); err != nil {
		t.Errorf("PolicySigned used in time: %v", err)
	}
	err = unseal(tr, signedSealed, signed(30, 31*time.Second))
	var rc gt.TPMRC
	if !errors.As(err, &rc) || uint32(rc) != expiredAtUse {
		t.Errorf("PolicySigned used too late: %v, want TPM_RC 0x%x", err, expiredAtUse)
	}
}

// A policy authorizes the ADMIN role (here ObjectChangeAuth of an object
// with adminWithPolicy) only if it names the command.
func TestAdminPolicyNamesTheCommand(t *testing.T) {
	_, tr := newStarted(t)
	srk := createPrimary(t, tr, gt.TPMRHOwner, gt.ECCSRKTemplate)
	parent := gt.NamedHandle{Handle: srk.ObjectHandle, Name: srk.Name}
	for _, tc := range []struct {
		name  string
		named bool
		rc    uint32
	}{
		{"PolicyAuthValue alone", false, rcPolicyFail | 0x800 | 0x100},
		{"PolicyCommandCode and PolicyAuthValue", true, rcSuccess},
	} {
		pol := policyDigest(func(pc *gt.PolicyCalculator) error {
			if tc.named {
				if err := (gt.PolicyCommandCode{Code: gt.TPMCCObjectChangeAuth}).Update(pc); err != nil {
					return err
				}
			}
			return (gt.PolicyAuthValue{}).Update(pc)
		})
		obj, err := (gt.CreateLoaded{ParentHandle: parent,
			InSensitive: gt.TPM2BSensitiveCreate{Sensitive: &gt.TPMSSensitiveCreate{UserAuth: gt.TPM2BAuth{Buffer: []byte("old")}, Data: gt.NewTPMUSensitiveCreate(&gt.TPM2BSensitiveData{Buffer: []byte("x")})}},
			InPublic: gt.New2BTemplate(&gt.TPMTPublic{Type: gt.TPMAlgKeyedHash, NameAlg: gt.TPMAlgSHA256,
				ObjectAttributes: gt.TPMAObject{FixedTPM: true, FixedParent: true, UserWithAuth: true, AdminWithPolicy: true},
				AuthPolicy:       gt.TPM2BDigest{Buffer: pol},
				Parameters:       gt.NewTPMUPublicParms(gt.TPMAlgKeyedHash, &gt.TPMSKeyedHashParms{Scheme: gt.TPMTKeyedHashScheme{Scheme: gt.TPMAlgNull}})}),
		}).Execute(tr)
		if err != nil {
			t.Fatal(err)
		}
		_, err = (gt.ObjectChangeAuth{
			ObjectHandle: gt.AuthHandle{Handle: obj.ObjectHandle, Name: obj.Name, Auth: gt.Policy(gt.TPMAlgSHA256, 16,
				func(tpm transport.TPM, s gt.TPMISHPolicy, _ gt.TPM2BNonce) error {
					if tc.named {
						if _, err := (gt.PolicyCommandCode{PolicySession: s, Code: gt.TPMCCObjectChangeAuth}).Execute(tpm); err != nil {
							return err
						}
					}
					_, err := (gt.PolicyAuthValue{PolicySession: s}).Execute(tpm)
					return err
				}, gt.Auth([]byte("old")))},
			ParentHandle: parent, NewAuth: gt.TPM2BAuth{Buffer: []byte("new")}}).Execute(tr)
		if tc.rc == rcSuccess {
			if err != nil {
				t.Errorf("%s: %v", tc.name, err)
			}
		} else {
			var rc gt.TPMRC
			if !errors.As(err, &rc) || uint32(rc) != tc.rc {
				t.Errorf("%s: %v, want TPM_RC 0x%x", tc.name, err, tc.rc)
			}
		}
		(gt.FlushContext{FlushHandle: obj.ObjectHandle}).Execute(tr)
	}
}

// nonceTPM ties PolicySecret to the session it was given for: another
// session's is TPM_RC_NONCE; a trial session, which authorizes nothing,
// takes any.
func TestPolicySecretNonce(t *testing.T) {
	_, tr := newStarted(t)
	for _, tc := range []struct {
		opt []gt.AuthOption
		rc  uint32
	}{{nil, rcNonce | 0x040 | 0x100}, {[]gt.AuthOption{gt.Trial()}, rcSuccess}} {
		s, closer, err := gt.PolicySession(tr, gt.TPMAlgSHA256, 16, tc.opt...)
		if err != nil {
			t.Fatal(err)
		}
		_, err = (gt.PolicySecret{AuthHandle: gt.AuthHandle{Handle: gt.TPMRHOwner, Auth: gt.PasswordAuth(nil)},
			PolicySession: s.Handle(), NonceTPM: gt.TPM2BNonce{Buffer: make([]byte, 32)}}).Execute(tr)
		closer()
		if tc.rc == rcSuccess {
			if err != nil {
				t.Errorf("trial session: %v", err)
			}
			continue
		}
		wantRC(t, err, tc.rc)
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
