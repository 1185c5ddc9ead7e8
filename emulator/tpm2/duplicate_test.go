package tpm2

import (
	"bytes"
	"crypto"
	"crypto/ecdh"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"testing"

	gt "github.com/google/go-tpm/tpm2"
	"github.com/google/go-tpm/tpm2/transport"
)

// Duplication, Part 3 §13: Duplicate, Rewrap and Import with and without
// the inner and outer wrappers.

// An HMAC key whose sensitive area the tests choose: it enters the TPM
// by an unwrapped Import and proves a round trip by computing an HMAC.
var (
	tkHMACKey = bytes.Repeat([]byte{0x42}, 32)
	tkSeed    = bytes.Repeat([]byte{0x24}, 32)
	tkAuth    = []byte("k")
)

func tkPublic(policy []byte, encDup bool) gt.TPMTPublic {
	u := sha256.Sum256(append(append([]byte{}, tkSeed...), tkHMACKey...))
	return gt.TPMTPublic{Type: gt.TPMAlgKeyedHash, NameAlg: gt.TPMAlgSHA256,
		ObjectAttributes: gt.TPMAObject{SignEncrypt: true, UserWithAuth: true, EncryptedDuplication: encDup},
		AuthPolicy:       gt.TPM2BDigest{Buffer: policy},
		Parameters: gt.NewTPMUPublicParms(gt.TPMAlgKeyedHash, &gt.TPMSKeyedHashParms{Scheme: gt.TPMTKeyedHashScheme{Scheme: gt.TPMAlgHMAC,
			Details: gt.NewTPMUSchemeKeyedHash(gt.TPMAlgHMAC, &gt.TPMSSchemeHMAC{HashAlg: gt.TPMAlgSHA256})}}),
		Unique: gt.NewTPMUPublicID(gt.TPMAlgKeyedHash, &gt.TPM2BDigest{Buffer: u[:]})}
}

func tkSensitive() []byte {
	s := gt.TPMTSensitive{SensitiveType: gt.TPMAlgKeyedHash, AuthValue: gt.TPM2BAuth{Buffer: tkAuth},
		SeedValue: gt.TPM2BDigest{Buffer: tkSeed},
		Sensitive: gt.NewTPMUSensitiveComposite(gt.TPMAlgKeyedHash, &gt.TPM2BSensitiveData{Buffer: tkHMACKey})}
	return sized(gt.Marshal(&s))
}

var dupCC = policyDigest(func(pc *gt.PolicyCalculator) error {
	return gt.PolicyCommandCode{Code: gt.TPMCCDuplicate}.Update(pc)
})

func dupPolicyCC(tpm transport.TPM, s gt.TPMISHPolicy, _ gt.TPM2BNonce) error {
	_, err := (gt.PolicyCommandCode{PolicySession: s, Code: gt.TPMCCDuplicate}).Execute(tpm)
	return err
}

func named(h gt.TPMHandle, n gt.TPM2BName) gt.NamedHandle { return gt.NamedHandle{Handle: h, Name: n} }

func primaryNamed(t *testing.T, tr transport.TPM, h gt.TPMHandle, tmpl gt.TPMTPublic) gt.NamedHandle {
	r := createPrimary(t, tr, h, tmpl)
	return named(r.ObjectHandle, r.Name)
}

// importLoad imports pub under parent (any wrappers) and loads it.
func importLoad(t *testing.T, tr transport.TPM, parent gt.NamedHandle, pub gt.TPMTPublic, key, dup, seed []byte, sym gt.TPMTSymDef) gt.NamedHandle {
	t.Helper()
	im, err := (gt.Import{ParentHandle: parent, EncryptionKey: gt.TPM2BData{Buffer: key}, ObjectPublic: gt.New2B(pub),
		Duplicate: gt.TPM2BPrivate{Buffer: dup}, InSymSeed: gt.TPM2BEncryptedSecret{Buffer: seed}, Symmetric: sym}).Execute(tr)
	if err != nil {
		t.Fatalf("Import: %v", err)
	}
	l, err := (gt.Load{ParentHandle: parent, InPublic: gt.New2B(pub), InPrivate: im.OutPrivate}).Execute(tr)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	return named(l.ObjectHandle, l.Name)
}

func symDef(bits gt.TPMKeyBits) gt.TPMTSymDef {
	if bits == 0 {
		return gt.TPMTSymDef{Algorithm: gt.TPMAlgNull}
	}
	return gt.TPMTSymDef{Algorithm: gt.TPMAlgAES, KeyBits: gt.NewTPMUSymKeyBits(gt.TPMAlgAES, bits),
		Mode: gt.NewTPMUSymMode(gt.TPMAlgAES, gt.TPMAlgCFB)}
}

func checkHMAC(t *testing.T, tr transport.TPM, k gt.NamedHandle) {
	t.Helper()
	r, err := (gt.Hmac{Handle: gt.AuthHandle{Handle: k.Handle, Name: k.Name, Auth: gt.PasswordAuth(tkAuth)},
		Buffer: gt.TPM2BMaxBuffer{Buffer: []byte("x")}, HashAlg: gt.TPMAlgSHA256}).Execute(tr)
	if err != nil {
		t.Fatalf("HMAC: %v", err)
	}
	m := hmac.New(sha256.New, tkHMACKey)
	m.Write([]byte("x"))
	if !hmac.Equal(m.Sum(nil), r.OutHMAC.Buffer) {
		t.Fatal("the imported key computes another HMAC")
	}
}

func duplicateTK(tr transport.TPM, obj, np gt.NamedHandle, keyIn []byte, sym gt.TPMTSymDef) (*gt.DuplicateResponse, error) {
	var h interface {
		HandleValue() uint32
		KnownName() *gt.TPM2BName
	} = np
	if np.Handle == gt.TPMRHNull {
		h = gt.TPMRHNull
	}
	return gt.Duplicate{ObjectHandle: gt.AuthHandle{Handle: obj.Handle, Name: obj.Name, Auth: gt.Policy(gt.TPMAlgSHA256, 16, dupPolicyCC)},
		NewParentHandle: h, EncryptionKeyIn: gt.TPM2BData{Buffer: keyIn}, Symmetric: sym}.Execute(tr)
}

// dupSource starts a TPM with an ECC SRK in the owner hierarchy and the
// test's duplicable HMAC key imported and loaded under it.
func dupSource(t *testing.T) (tr transport.TPM, srk, obj gt.NamedHandle) {
	t.Helper()
	_, tr = newStarted(t)
	srk = primaryNamed(t, tr, gt.TPMRHOwner, gt.ECCSRKTemplate)
	obj = importLoad(t, tr, srk, tkPublic(dupCC, false), nil, tkSensitive(), nil, symDef(0))
	return tr, srk, obj
}

// The key goes from the owner's SRK to a parent in the endorsement
// hierarchy with every combination of wrappers, and works there.
func TestDuplicateImportRoundTrip(t *testing.T) {
	for _, tmpl := range []gt.TPMTPublic{gt.ECCSRKTemplate, gt.RSASRKTemplate} {
		for _, c := range []struct {
			bits  gt.TPMKeyBits
			keyIn []byte
		}{{0, nil}, {128, bytes.Repeat([]byte{1}, 16)}, {192, nil}, {192, bytes.Repeat([]byte{2}, 24)}, {256, nil}} {
			t.Run(fmt.Sprintf("%s/AES-%d/keyIn=%v", map[gt.TPMIAlgPublic]string{gt.TPMAlgRSA: "RSA", gt.TPMAlgECC: "ECC"}[tmpl.Type], c.bits, c.keyIn != nil), func(t *testing.T) {
				tr, _, obj := dupSource(t)
				pub := tkPublic(dupCC, false)
				np := primaryNamed(t, tr, gt.TPMRHEndorsement, tmpl)
				d, err := duplicateTK(tr, obj, np, c.keyIn, symDef(c.bits))
				if err != nil {
					t.Fatalf("Duplicate: %v", err)
				}
				key := c.keyIn
				if c.bits != 0 && key == nil {
					if len(d.EncryptionKeyOut.Buffer) != int(c.bits)/8 {
						t.Fatalf("encryptionKeyOut of %d octets", len(d.EncryptionKeyOut.Buffer))
					}
					key = d.EncryptionKeyOut.Buffer
				} else if len(d.EncryptionKeyOut.Buffer) != 0 {
					t.Fatal("encryptionKeyOut returned a caller's key")
				}
				k := importLoad(t, tr, np, pub, key, d.Duplicate.Buffer, d.OutSymSeed.Buffer, symDef(c.bits))
				checkHMAC(t, tr, k)
			})
		}
	}
}

// A new parent loaded public-only (LoadExternal): the test holds its
// private key, derives the seed per Part 1 §C.6.4 (ECDH, KDFe) and finds
// the sensitive area the key was imported with.
func TestDuplicateToExternalECCParent(t *testing.T) {
	tr, _, obj := dupSource(t)
	priv, _ := ecdh.P256().GenerateKey(rand.Reader)
	raw := priv.PublicKey().Bytes()[1:]
	parent := gt.TPMTPublic{Type: gt.TPMAlgECC, NameAlg: gt.TPMAlgSHA256,
		ObjectAttributes: gt.TPMAObject{Restricted: true, Decrypt: true, UserWithAuth: true},
		Parameters: gt.NewTPMUPublicParms(gt.TPMAlgECC, &gt.TPMSECCParms{
			Symmetric: gt.TPMTSymDefObject{Algorithm: gt.TPMAlgAES, KeyBits: gt.NewTPMUSymKeyBits(gt.TPMAlgAES, gt.TPMKeyBits(128)), Mode: gt.NewTPMUSymMode(gt.TPMAlgAES, gt.TPMAlgCFB)},
			Scheme:    gt.TPMTECCScheme{Scheme: gt.TPMAlgNull}, CurveID: gt.TPMECCNistP256, KDF: gt.TPMTKDFScheme{Scheme: gt.TPMAlgNull}}),
		Unique: gt.NewTPMUPublicID(gt.TPMAlgECC, &gt.TPMSECCPoint{X: gt.TPM2BECCParameter{Buffer: raw[:32]}, Y: gt.TPM2BECCParameter{Buffer: raw[32:]}})}
	le, err := (gt.LoadExternal{InPublic: gt.New2B(parent), Hierarchy: gt.TPMRHOwner}).Execute(tr)
	if err != nil {
		t.Fatal(err)
	}
	key := bytes.Repeat([]byte{3}, 24)
	d, err := duplicateTK(tr, obj, named(le.ObjectHandle, le.Name), key, symDef(192))
	if err != nil {
		t.Fatalf("Duplicate: %v", err)
	}
	p, err := gt.Unmarshal[gt.TPMSECCPoint](d.OutSymSeed.Buffer)
	if err != nil {
		t.Fatal(err)
	}
	eph, err := ecdh.P256().NewPublicKey(append(append([]byte{4}, p.X.Buffer...), p.Y.Buffer...))
	if err != nil {
		t.Fatal(err)
	}
	z, _ := priv.ECDH(eph)
	seed := gt.KDFe(crypto.SHA256, z, "DUPLICATE", p.X.Buffer, raw[:32], 256)
	inner, err := outerUnwrap(&parent, seed, obj.Name.Buffer, d.Duplicate.Buffer, 3)
	if err != nil {
		t.Fatalf("outer wrapper: %v", err)
	}
	plain, err := innerUnwrap(gt.TPMAlgSHA256, obj.Name.Buffer, inner, key, 3)
	if err != nil {
		t.Fatalf("inner wrapper: %v", err)
	}
	s, err := gt.Unmarshal[gt.TPMTSensitive](plain[2:])
	if err != nil {
		t.Fatal(err)
	}
	bits, _ := s.Sensitive.Bits()
	// The authValue travels padded to the nameAlg digest, as the
	// reference implementation marshals it.
	if !bytes.Equal(bits.Buffer, tkHMACKey) || !bytes.Equal(s.SeedValue.Buffer, tkSeed) ||
		!bytes.Equal(s.AuthValue.Buffer, append(append([]byte{}, tkAuth...), make([]byte, 32-len(tkAuth))...)) {
		t.Fatalf("recovered sensitive area %+v", s)
	}
}

// Rewrap moves the outer wrapper from one parent to another (or adds or
// strips it); the result imports and works.
func TestRewrap(t *testing.T) {
	tr, srk, obj := dupSource(t)
	pub := tkPublic(dupCC, false)
	np := primaryNamed(t, tr, gt.TPMRHEndorsement, gt.RSASRKTemplate)
	rewrap := func(old, new gt.TPMHandle, dup, name, seed []byte) (outDup, outSeed []byte, rc uint32) {
		p := append(append(sized(dup), sized(name)...), sized(seed)...)
		var pw []byte
		if old == obj.Handle {
			pw = tkAuth
		}
		rsp, _ := tr.Send(rawCommand(uint32(gt.TPMCCRewrap), []uint32{uint32(old), uint32(new)}, passwordAuth(pw), p))
		if rc := responseCode(rsp); rc != rcSuccess {
			return nil, nil, rc
		}
		b := rsp[14:] // after the header and parameterSize
		dl := int(b[0])<<8 | int(b[1])
		outDup, b = b[2:2+dl], b[2+dl:]
		sl := int(b[0])<<8 | int(b[1])
		return outDup, b[2 : 2+sl], rcSuccess
	}

	d, err := duplicateTK(tr, obj, srk, nil, symDef(128))
	if err != nil {
		t.Fatalf("Duplicate: %v", err)
	}
	dup, seed, rc := rewrap(srk.Handle, np.Handle, d.Duplicate.Buffer, obj.Name.Buffer, d.OutSymSeed.Buffer)
	if rc != rcSuccess {
		t.Fatalf("Rewrap: 0x%x", rc)
	}
	checkHMAC(t, tr, importLoad(t, tr, np, pub, d.EncryptionKeyOut.Buffer, dup, seed, symDef(128)))

	// From TPM_RH_NULL (no outer wrapper yet) to a parent.
	d, err = duplicateTK(tr, obj, named(gt.TPMRHNull, gt.TPM2BName{}), nil, symDef(0))
	if err != nil {
		t.Fatalf("Duplicate: %v", err)
	}
	// Without wrappers the duplicate is the TPM2B_SENSITIVE itself.
	if s, err := gt.Unmarshal[gt.TPMTSensitive](d.Duplicate.Buffer[2:]); err != nil || len(d.OutSymSeed.Buffer) != 0 ||
		!bytes.Equal(s.SeedValue.Buffer, tkSeed) {
		t.Fatalf("unwrapped duplicate: %v", err)
	}
	dup, seed, rc = rewrap(gt.TPMRHNull, np.Handle, d.Duplicate.Buffer, obj.Name.Buffer, nil)
	if rc != rcSuccess || len(seed) == 0 {
		t.Fatalf("Rewrap from NULL: 0x%x", rc)
	}
	checkHMAC(t, tr, importLoad(t, tr, np, pub, nil, dup, seed, symDef(0)))

	// Errors, in the reference implementation's order.
	d, _ = duplicateTK(tr, obj, srk, nil, symDef(0))
	dup, name, seed := d.Duplicate.Buffer, obj.Name.Buffer, d.OutSymSeed.Buffer
	flip := func(b []byte, i int) []byte {
		c := append([]byte{}, b...)
		c[i] ^= 1
		return c
	}
	for _, c := range []struct {
		what            string
		old, new        gt.TPMHandle
		dup, name, seed []byte
		rc              uint32
	}{
		{"seed without old parent", gt.TPMRHNull, np.Handle, dup, name, seed, rcHandle | 1<<8},
		{"old parent without seed", srk.Handle, np.Handle, dup, name, nil, rcHandle | 1<<8},
		{"owner as new parent", srk.Handle, gt.TPMRHOwner, dup, name, seed, rcValue | 2<<8},
		{"HMAC key as old parent", obj.Handle, np.Handle, dup, name, seed, rcType | 1<<8},
		{"HMAC key as new parent", srk.Handle, obj.Handle, dup, name, seed, rcType | 2<<8},
		{"seed for another key", np.Handle, srk.Handle, dup, name, seed, rcValue | 0x40 | 3<<8},
		{"tampered", srk.Handle, np.Handle, flip(dup, len(dup)-1), name, seed, rcIntegrity | 0x40 | 1<<8},
		{"another name", srk.Handle, np.Handle, dup, flip(name, 3), seed, rcIntegrity | 0x40 | 1<<8},
		{"oversized integrity", srk.Handle, np.Handle, append([]byte{0, 65}, make([]byte, 70)...), name, seed, rcSize | 0x40 | 1<<8},
		{"truncated integrity", srk.Handle, np.Handle, dup[:10], name, seed, rcInsufficient | 0x40 | 1<<8},
	} {
		if _, _, rc := rewrap(c.old, c.new, c.dup, c.name, c.seed); rc != c.rc {
			t.Errorf("%s: rc 0x%x, want 0x%x", c.what, rc, c.rc)
		}
	}
}

func TestDuplicateErrors(t *testing.T) {
	tr, _, obj := dupSource(t)
	null := named(gt.TPMRHNull, gt.TPM2BName{})
	for _, c := range []struct {
		what  string
		np    gt.NamedHandle
		keyIn []byte
		sym   gt.TPMTSymDef
		rc    uint32
	}{
		{"non-storage new parent", obj, nil, symDef(0), rcType | 2<<8},
		{"key without symmetricAlg", null, make([]byte, 16), symDef(0), rcSize | 0x40 | 1<<8},
		{"key of another size", null, make([]byte, 16), symDef(192), rcSize | 0x40 | 1<<8},
		{"AES-64", null, nil, gt.TPMTSymDef{Algorithm: gt.TPMAlgAES, KeyBits: gt.NewTPMUSymKeyBits(gt.TPMAlgAES, gt.TPMKeyBits(64)),
			Mode: gt.NewTPMUSymMode(gt.TPMAlgAES, gt.TPMAlgCFB)}, rcValue | 0x40 | 2<<8},
	} {
		_, err := duplicateTK(tr, obj, c.np, c.keyIn, c.sym)
		t.Run(c.what, func(t *testing.T) { wantRC(t, err, c.rc) })
	}
	// The DUP role takes a policy session only: another session is the
	// wrong type (TPM_RC_AUTH_TYPE, not AUTH_UNAVAILABLE).
	_, err := gt.Duplicate{ObjectHandle: gt.AuthHandle{Handle: obj.Handle, Name: obj.Name, Auth: gt.PasswordAuth(tkAuth)},
		NewParentHandle: gt.TPMRHNull, Symmetric: symDef(0)}.Execute(tr)
	wantRC(t, err, rcAuthType)
	_, err = gt.Duplicate{ObjectHandle: gt.AuthHandle{Handle: obj.Handle, Name: obj.Name, Auth: gt.HMAC(gt.TPMAlgSHA256, 16, gt.Auth(tkAuth))},
		NewParentHandle: gt.TPMRHNull, Symmetric: symDef(0)}.Execute(tr)
	wantRC(t, err, rcAuthType)
}

// encryptedDuplication: both wrappers on the way out and on the way in.
func TestEncryptedDuplication(t *testing.T) {
	_, tr := newStarted(t)
	srk := primaryNamed(t, tr, gt.TPMRHOwner, gt.ECCSRKTemplate)
	pub := tkPublic(dupCC, true)
	// Import refuses such an object without wrappers.
	_, err := (gt.Import{ParentHandle: srk, ObjectPublic: gt.New2B(pub), Duplicate: gt.TPM2BPrivate{Buffer: tkSensitive()}, Symmetric: symDef(0)}).Execute(tr)
	wantRC(t, err, rcAttributes|0x40|1<<8)
	// ... and with an inner wrapper but no outer one.
	key := bytes.Repeat([]byte{5}, 16)
	name, _ := objectName(&pub)
	inner, _ := innerWrap(gt.TPMAlgSHA256, name, tkSensitive(), key)
	_, err = (gt.Import{ParentHandle: srk, EncryptionKey: gt.TPM2BData{Buffer: key}, ObjectPublic: gt.New2B(pub),
		Duplicate: gt.TPM2BPrivate{Buffer: inner}, Symmetric: symDef(128)}).Execute(tr)
	wantRC(t, err, rcAttributes|0x40|4<<8)

	// A created key carries the attribute; Duplicate needs both wrappers.
	tmpl := pub
	tmpl.ObjectAttributes.SensitiveDataOrigin = true
	tmpl.Unique = gt.NewTPMUPublicID(gt.TPMAlgKeyedHash, &gt.TPM2BDigest{})
	cl, err := (gt.CreateLoaded{ParentHandle: srk, InPublic: gt.New2BTemplate(&tmpl)}).Execute(tr)
	if err != nil {
		t.Fatal(err)
	}
	obj := named(cl.ObjectHandle, cl.Name)
	np := primaryNamed(t, tr, gt.TPMRHEndorsement, gt.ECCSRKTemplate)
	_, err = duplicateTK(tr, obj, np, nil, symDef(0))
	wantRC(t, err, rcSymmetric|0x40|2<<8)
	_, err = duplicateTK(tr, obj, named(gt.TPMRHNull, gt.TPM2BName{}), nil, symDef(128))
	wantRC(t, err, rcHierarchy|2<<8)
	d, err := duplicateTK(tr, obj, np, nil, symDef(128))
	if err != nil {
		t.Fatalf("Duplicate: %v", err)
	}
	p, _ := cl.OutPublic.Contents()
	importLoad(t, tr, np, *p, d.EncryptionKeyOut.Buffer, d.Duplicate.Buffer, d.OutSymSeed.Buffer, symDef(128))
}

// A password or HMAC session cannot authorize an object loaded without
// its sensitive area: it has no authValue; nor a policy session: it has
// no authPolicy either. A sequence has no authPolicy.
func TestPublicOnlyObjectHasNoAuthValue(t *testing.T) {
	_, tr := newStarted(t)
	srk := createPrimary(t, tr, gt.TPMRHOwner, gt.ECCSRKTemplate)
	p, _ := srk.OutPublic.Contents()
	le, err := (gt.LoadExternal{InPublic: gt.New2B(*p), Hierarchy: gt.TPMRHOwner}).Execute(tr)
	if err != nil {
		t.Fatal(err)
	}
	rsp, _ := tr.Send(rawCommand(uint32(gt.TPMCCRewrap), []uint32{uint32(le.ObjectHandle), rhNull}, passwordAuth(nil),
		append(append(sized([]byte{0, 0}), sized(nil)...), sized([]byte{1})...)))
	if rc := responseCode(rsp); rc != rcAuthUnavailable {
		t.Fatalf("Rewrap from a public-only parent: rc 0x%x, want TPM_RC_AUTH_UNAVAILABLE", rc)
	}
	dupPub := tkPublic(dupCC, false)
	k, err := (gt.LoadExternal{InPublic: gt.New2B(dupPub), Hierarchy: gt.TPMRHOwner}).Execute(tr)
	if err != nil {
		t.Fatal(err)
	}
	_, err = duplicateTK(tr, named(k.ObjectHandle, k.Name), named(gt.TPMRHNull, gt.TPM2BName{}), nil, symDef(0))
	wantRC(t, err, rcAuthUnavailable)
	seq, err := (gt.HashSequenceStart{HashAlg: gt.TPMAlgSHA256}).Execute(tr)
	if err != nil {
		t.Fatal(err)
	}
	_, err = (gt.SequenceUpdate{SequenceHandle: gt.AuthHandle{Handle: seq.SequenceHandle, Auth: gt.Policy(gt.TPMAlgSHA256, 16,
		func(transport.TPM, gt.TPMISHPolicy, gt.TPM2BNonce) error { return nil })}, Buffer: gt.TPM2BMaxBuffer{Buffer: []byte("x")}}).Execute(tr)
	wantRC(t, err, rcAuthUnavailable)
}
