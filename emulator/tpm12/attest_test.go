package tpm12

import (
	"bytes"
	"crypto"
	"crypto/hmac"
	"crypto/rsa"
	"crypto/sha1"
	"encoding/binary"
	"testing"
)

// testSession is a session a test opened: its handle, current nonceEven
// and the HMAC key (authData for OIAP, the shared secret for OSAP).
type testSession struct {
	h    uint32
	even []byte
	key  []byte
}

func oiapFor(t testing.TB, tp *TPM, secret []byte) *testSession {
	out := mustRun(t, tp, ordOIAP)
	return &testSession{h: binary.BigEndian.Uint32(out), even: out[4:24], key: secret}
}

func osapFor(t testing.TB, tp *TPM, et uint16, ev uint32, secret []byte) *testSession {
	odd := bytes.Repeat([]byte{0x51}, 20)
	out := mustRun(t, tp, ordOSAP, u16(et), u32(ev), odd)
	return &testSession{h: binary.BigEndian.Uint32(out), even: out[4:24], key: hmac1(secret, out[24:44], odd)}
}

// sessRun sends a command authorized by the sessions given (none, one
// or two), continued, and checks the response authorizations of a
// success; it returns the code and the output parameters.
func sessRun(t testing.TB, tp *TPM, locality uint8, ss []*testSession, ord uint32, handles, params []byte) (uint32, []byte) {
	t.Helper()
	in := sha(u32(ord), params)
	parts := [][]byte{handles, params}
	odd := bytes.Repeat([]byte{0x0D}, 20)
	for _, s := range ss {
		parts = append(parts, u32(s.h), odd, []byte{1}, hmac1(s.key, in, s.even, odd, []byte{1}))
	}
	rsp := tp.Process(command(tagRquCommand+uint16(len(ss)), ord, parts...), locality)
	rc := binary.BigEndian.Uint32(rsp[6:])
	if rc != rcSuccess {
		return rc, nil
	}
	n := len(rsp) - 41*len(ss)
	out := rsp[10:n]
	od := sha(u32(0), u32(ord), out)
	for i, s := range ss {
		a := rsp[n+41*i : n+41*(i+1)]
		if !hmac.Equal(a[21:], hmac1(s.key, od, a[:20], odd, a[20:21])) {
			t.Errorf("ordinal %#x: response authorization %d does not verify", ord, i)
		}
		s.even = a[:20]
	}
	return rc, out
}

// testKey is a key a test loaded directly into a slot under the SRK.
type testKey struct {
	h    uint32
	key  *tpmKey
	priv *rsa.PrivateKey
	auth []byte
}

// loadTestKey loads an RSA-1024 key of the given usage, flags,
// authDataUsage and signature scheme, with usage secret auth.
func loadTestKey(t testing.TB, tp *TPM, usage uint16, flags uint32, authUsage uint8, ss uint16, auth []byte) *testKey {
	t.Helper()
	k, priv := testChildKey(t, tp, usage, 1024)
	k.KeyFlags, k.AuthDataUsage, k.AlgorithmParms.SigScheme = flags, authUsage, ss
	if ss != ssNone {
		k.AlgorithmParms.EncScheme = esNone
	}
	var use digest
	copy(use[:], auth)
	h, err := tp.addKey(&loadedKey{key: k, priv: priv, usageAuth: use, parent: khSRK})
	if err != nil {
		t.Fatal(err)
	}
	return &testKey{h: h, key: k, priv: priv, auth: auth}
}

func verifySHA1(t testing.TB, pub *rsa.PublicKey, msg, sig []byte) {
	t.Helper()
	h := sha1.Sum(msg)
	if err := rsa.VerifyPKCS1v15(pub, crypto.SHA1, h[:], sig); err != nil {
		t.Errorf("signature does not verify: %v", err)
	}
}

var attKeyAuth = sha([]byte("key"))

func TestQuote(t *testing.T) {
	tp, _ := ownedTPM(t)
	k := loadTestKey(t, tp, keyUsageSigning, 0, authAlways, ssRSASSASHA1, attKeyAuth)
	mustRun(t, tp, ordExtend, u32(10), bytes.Repeat([]byte{1}, 20))
	nonce := bytes.Repeat([]byte{9}, 20)
	sel := []byte{0, 4, 0}
	rc, out := sessRun(t, tp, 0, []*testSession{oiapFor(t, tp, k.auth)}, ordQuote, u32(k.h), append(append([]byte{}, nonce...), append(u16(3), sel...)...))
	if rc != rcSuccess {
		t.Fatalf("Quote: rc %#x", rc)
	}
	composite := append(append(u16(3), sel...), append(u32(20), tp.pcr[10][:]...)...)
	if !bytes.HasPrefix(out, composite) {
		t.Fatalf("pcrData %x, want %x", out, composite)
	}
	sig := out[len(composite)+4:]
	if binary.BigEndian.Uint32(out[len(composite):]) != uint32(len(sig)) || len(sig) != 128 {
		t.Fatalf("sig of %d bytes", len(sig))
	}
	info := append(append([]byte{1, 1, 0, 0}, "QUOT"...), sha(composite)...)
	verifySHA1(t, &k.priv.PublicKey, append(info, nonce...), sig)

	// No PCR selected: the digest is twenty zero bytes.
	rc, out = sessRun(t, tp, 0, []*testSession{oiapFor(t, tp, k.auth)}, ordQuote, u32(k.h), append(append([]byte{}, nonce...), u16(0)...))
	if rc != rcSuccess || !bytes.Equal(out[:6], []byte{0, 0, 0, 0, 0, 0}) {
		t.Fatalf("empty selection: rc %#x %x", rc, out)
	}
	verifySHA1(t, &k.priv.PublicKey, append(append(append([]byte{1, 1, 0, 0}, "QUOT"...), make([]byte, 20)...), nonce...), out[10:])

	params := append(append([]byte{}, nonce...), append(u16(3), sel...)...)
	never := loadTestKey(t, tp, keyUsageLegacy, 0, authNever, ssRSASSAINFO, nil)
	if rc, _ := run(tp, 0, tagRquCommand, ordQuote, u32(never.h), params); rc != rcSuccess {
		t.Errorf("Quote without authorization by a TPM_AUTH_NEVER key: rc %#x", rc)
	}
	wantRC(t, tp, rcAuthFail, 0, tagRquCommand, ordQuote, u32(k.h), params)
	for _, c := range []struct {
		name string
		k    *testKey
		rc   uint32
	}{
		{"DER scheme", loadTestKey(t, tp, keyUsageSigning, 0, authAlways, ssRSASSADER, attKeyAuth), rcInappropriateSig},
		{"storage key", loadTestKey(t, tp, keyUsageStorage, 0, authAlways, ssNone, attKeyAuth), rcInappropriateSig},
		{"binding key signing SHA-1", loadTestKey(t, tp, keyUsageBind, 0, authAlways, ssRSASSASHA1, attKeyAuth), rcInvalidKeyUsage},
		{"wrong secret", &testKey{h: k.h, auth: sha([]byte("wrong"))}, rcAuthFail},
		{"unloaded handle", &testKey{h: k.h + 1, auth: attKeyAuth}, rcInvalidKeyHandle},
		{"EK handle", &testKey{h: khEK, auth: attKeyAuth}, rcKeyNotFound},
		{"SRK", &testKey{h: khSRK, auth: testSRK}, rcInappropriateSig},
	} {
		if rc, _ := sessRun(t, tp, 0, []*testSession{oiapFor(t, tp, c.k.auth)}, ordQuote, u32(c.k.h), params); rc != c.rc {
			t.Errorf("Quote, %s: rc %#x, want %#x", c.name, rc, c.rc)
		}
		tp.da = daState{}
	}
	wantRC(t, tp, rcInvalidPCRInfo, 0, tagRquCommand, ordQuote, u32(never.h), nonce, u16(4), []byte{1, 0, 0, 0})
	wantRC(t, tp, rcBadParamSize, 0, tagRquCommand, ordQuote, u32(never.h), nonce, u16(3), []byte{1})

	// A key bound to a PCR that changed since is not used.
	bound := loadTestKey(t, tp, keyUsageSigning, 0, authNever, ssRSASSASHA1, nil)
	bsel := pcrSelection{Select: []byte{0, 4, 0}}
	tp.keys[bound.h].pcr = &pcrInfo{Release: bsel, DigestAtRelease: tp.compositeHash(bsel)}
	wantRC(t, tp, rcSuccess, 0, tagRquCommand, ordQuote, u32(bound.h), params)
	mustRun(t, tp, ordExtend, u32(10), bytes.Repeat([]byte{1}, 20))
	wantRC(t, tp, rcWrongPCRVal, 0, tagRquCommand, ordQuote, u32(bound.h), params)
}

func TestQuote2(t *testing.T) {
	tp, _ := ownedTPM(t)
	k := loadTestKey(t, tp, keyUsageIdentity, 0, authNever, ssRSASSASHA1, nil)
	nonce := bytes.Repeat([]byte{7}, 20)
	sel := append(u16(3), 0, 0, 1)
	for _, c := range []struct {
		loc        uint8
		addVersion bool
	}{{0, false}, {3, true}, {4, false}} {
		av := []byte{0}
		if c.addVersion {
			av[0] = 1
		}
		out := wantRC(t, tp, rcSuccess, c.loc, tagRquCommand, ordQuote2, u32(k.h), nonce, sel, av)
		h := sha(sel, u32(20), tp.pcr[16][:])
		infoShort := append(append(append([]byte{}, sel...), localityBit(c.loc)), h...)
		if !bytes.HasPrefix(out, infoShort) {
			t.Fatalf("locality %d: pcrData %x, want %x", c.loc, out, infoShort)
		}
		r := &reader{b: out[len(infoShort):]}
		ver := r.sized(bufferMax)
		sig := r.sized(bufferMax)
		if r.short || len(r.b) != 0 || len(sig) != 128 {
			t.Fatalf("locality %d: malformed response %x", c.loc, out)
		}
		if c.addVersion != (len(ver) != 0) || c.addVersion && !bytes.Equal(ver[:4], []byte{0, 0x30, 1, 2}) {
			t.Errorf("locality %d: versionInfo %x", c.loc, ver)
		}
		signed := append(append(append(u16(tagQuoteInfo2), "QUT2"...), nonce...), infoShort...)
		verifySHA1(t, &k.priv.PublicKey, append(signed, ver...), sig)
	}
	wantRC(t, tp, rcBadParameter, 0, tagRquCommand, ordQuote2, u32(k.h), nonce, sel, []byte{2})
	wantRC(t, tp, rcBadParamSize, 0, tagRquCommand, ordQuote2, u32(k.h), nonce, sel)
	storage := loadTestKey(t, tp, keyUsageStorage, 0, authNever, ssNone, nil)
	wantRC(t, tp, rcInappropriateSig, 0, tagRquCommand, ordQuote2, u32(storage.h), nonce, sel, []byte{0})
}

// parseCertifyInfo splits a CertifyKey response: the TPM_CERTIFY_INFO(2)
// and the signature.
func parseCertifyInfo(t testing.TB, out []byte, v2 bool) (info *certifyInfo, raw, sig []byte) {
	t.Helper()
	r := &reader{b: out}
	info = &certifyInfo{V2: v2}
	if v2 {
		if r.u16() != tagCertifyInfo2 || r.u8() != 0 {
			t.Fatalf("not a TPM_CERTIFY_INFO2: %x", out)
		}
		info.PayloadType = r.u8()
	} else if !bytes.Equal(r.take(4), []byte{1, 1, 0, 0}) {
		t.Fatalf("not a TPM_CERTIFY_INFO: %x", out)
	}
	info.KeyUsage, info.KeyFlags, info.AuthDataUsage = r.u16(), r.u32(), r.u8()
	info.AlgorithmParms.unmarshal(r)
	info.PubkeyDigest, info.Data, info.ParentPCRStatus = r.digest(), r.digest(), r.bool()
	info.PCRInfo = r.sized(bufferMax)
	if v2 {
		info.MigrationAuthority = r.sized(bufferMax)
	}
	raw = out[:len(out)-len(r.b)]
	sig = r.sized(bufferMax)
	if r.short || len(r.b) != 0 {
		t.Fatalf("malformed response %x", out)
	}
	return info, raw, sig
}

func TestCertifyKey(t *testing.T) {
	tp, _ := ownedTPM(t)
	cert := loadTestKey(t, tp, keyUsageSigning, 0, authAlways, ssRSASSASHA1, attKeyAuth)
	free := loadTestKey(t, tp, keyUsageLegacy, 0, authNever, ssRSASSAINFO, nil)
	target := loadTestKey(t, tp, keyUsageStorage, keyFlagMigratable, authAlways, ssNone, sha([]byte("target")))
	nonce := bytes.Repeat([]byte{5}, 20)
	check := func(name string, out []byte, signer *testKey, k *testKey) *certifyInfo {
		info, raw, sig := parseCertifyInfo(t, out, false)
		if info.KeyUsage != k.key.KeyUsage || info.KeyFlags != k.key.KeyFlags || info.AuthDataUsage != k.key.AuthDataUsage ||
			info.PubkeyDigest != sha1.Sum(k.key.PubKey) || !bytes.Equal(info.Data[:], nonce) || info.ParentPCRStatus || len(info.PCRInfo) != 0 {
			t.Errorf("%s: certifyInfo %+v", name, info)
		}
		verifySHA1(t, &signer.priv.PublicKey, raw, sig)
		return info
	}
	rc, out := sessRun(t, tp, 0, []*testSession{oiapFor(t, tp, cert.auth), oiapFor(t, tp, target.auth)}, ordCertifyKey, append(u32(cert.h), u32(target.h)...), nonce)
	if rc != rcSuccess {
		t.Fatalf("CertifyKey AUTH2: rc %#x", rc)
	}
	check("AUTH2", out, cert, target)
	rc, out = sessRun(t, tp, 0, []*testSession{oiapFor(t, tp, target.auth)}, ordCertifyKey, append(u32(free.h), u32(target.h)...), nonce)
	if rc != rcSuccess {
		t.Fatalf("CertifyKey AUTH1: rc %#x", rc)
	}
	check("AUTH1", out, free, target)
	out = wantRC(t, tp, rcSuccess, 0, tagRquCommand, ordCertifyKey, u32(free.h), u32(free.h), nonce)
	check("no authorization", out, free, free)

	wantRC(t, tp, rcAuthFail, 0, tagRquCommand, ordCertifyKey, u32(free.h), u32(target.h), nonce)
	wantRC(t, tp, rcAuthFail, 0, tagRquCommand, ordCertifyKey, u32(cert.h), u32(free.h), nonce)
	if rc, _ := sessRun(t, tp, 0, []*testSession{oiapFor(t, tp, attKeyAuth)}, ordCertifyKey, append(u32(free.h), u32(target.h)...), nonce); rc != rcAuth2Fail {
		t.Errorf("AUTH1 with the wrong target secret: rc %#x", rc)
	}
	tp.da = daState{}
	id := loadTestKey(t, tp, keyUsageIdentity, 0, authNever, ssRSASSASHA1, nil)
	if rc, _ := sessRun(t, tp, 0, []*testSession{oiapFor(t, tp, target.auth)}, ordCertifyKey, append(u32(id.h), u32(target.h)...), nonce); rc != rcMigrateFail {
		t.Errorf("identity certifying a migratable key: rc %#x", rc)
	}
	der := loadTestKey(t, tp, keyUsageSigning, 0, authNever, ssRSASSADER, nil)
	wantRC(t, tp, rcBadKeyProperty, 0, tagRquCommand, ordCertifyKey, u32(der.h), u32(free.h), nonce)
	bind := loadTestKey(t, tp, keyUsageBind, 0, authNever, ssRSASSASHA1, nil)
	wantRC(t, tp, rcInvalidKeyUsage, 0, tagRquCommand, ordCertifyKey, u32(bind.h), u32(free.h), nonce)
	wantRC(t, tp, rcInvalidKeyHandle, 0, tagRquCommand, ordCertifyKey, u32(free.h), u32(free.h+1), nonce)

	// TPM_CertifyKey2: the certified key's session first, the
	// certifier's last (and alone with AUTH1); always TPM_CERTIFY_INFO2.
	mig := bytes.Repeat([]byte{3}, 20)
	rc, out = sessRun(t, tp, 0, []*testSession{oiapFor(t, tp, target.auth), oiapFor(t, tp, cert.auth)}, ordCertifyKey2, append(u32(target.h), u32(cert.h)...), append(append([]byte{}, mig...), nonce...))
	if rc != rcSuccess {
		t.Fatalf("CertifyKey2 AUTH2: rc %#x", rc)
	}
	info2, raw2, sig2 := parseCertifyInfo(t, out, true)
	if info2.PayloadType != ptAsym || info2.KeyUsage != keyUsageStorage || info2.PubkeyDigest != sha1.Sum(target.key.PubKey) || !bytes.Equal(info2.Data[:], nonce) || len(info2.MigrationAuthority) != 0 {
		t.Errorf("CertifyKey2 info %+v", info2)
	}
	verifySHA1(t, &cert.priv.PublicKey, raw2, sig2)
	if rc, _ := sessRun(t, tp, 0, []*testSession{oiapFor(t, tp, cert.auth)}, ordCertifyKey2, append(u32(free.h), u32(cert.h)...), append(append([]byte{}, mig...), nonce...)); rc != rcSuccess {
		t.Errorf("CertifyKey2 AUTH1: rc %#x", rc)
	}
	if rc, _ := sessRun(t, tp, 0, []*testSession{oiapFor(t, tp, cert.auth)}, ordCertifyKey2, append(u32(target.h), u32(cert.h)...), append(append([]byte{}, mig...), nonce...)); rc != rcAuthFail {
		t.Errorf("CertifyKey2 AUTH1 of a key that needs authorization: rc %#x", rc)
	}
	if rc, _ := sessRun(t, tp, 0, []*testSession{oiapFor(t, tp, target.auth), oiapFor(t, tp, target.auth)}, ordCertifyKey2, append(u32(target.h), u32(cert.h)...), append(append([]byte{}, mig...), nonce...)); rc != rcAuth2Fail {
		t.Errorf("CertifyKey2, wrong certifier secret: rc %#x", rc)
	}
	tp.da = daState{}
	wantRC(t, tp, rcSuccess, 0, tagRquCommand, ordCertifyKey2, u32(free.h), u32(free.h), mig, nonce)
	free.key.KeyFlags |= keyFlagMigratable
	wantRC(t, tp, rcMigrateFail, 0, tagRquCommand, ordCertifyKey2, u32(free.h), u32(id.h), mig, nonce)
	free.key.KeyFlags &^= keyFlagMigratable

	// A key bound to PCR 16 is described by a TPM_CERTIFY_INFO2 whose
	// pcrInfo is a TPM_PCR_INFO_SHORT; one bound to PCR 10 only by a
	// TPM_CERTIFY_INFO with a TPM_PCR_INFO.
	high := loadTestKey(t, tp, keyUsageSigning, 0, authNever, ssRSASSASHA1, nil)
	sel16 := pcrSelection{Select: []byte{0, 0, 1}}
	tp.keys[high.h].pcr = &pcrInfo{Long: true, LocalityAtRelease: locAll, Release: sel16, DigestAtRelease: tp.compositeHash(sel16)}
	out = wantRC(t, tp, rcSuccess, 0, tagRquCommand, ordCertifyKey, u32(free.h), u32(high.h), nonce)
	info, raw, sig := parseCertifyInfo(t, out, true)
	w := &writer{}
	(&pcrInfoShort{Select: sel16, LocalityAtRelease: locAll, DigestAtRelease: tp.compositeHash(sel16)}).marshal(w)
	if info.PayloadType != ptAsym || !bytes.Equal(info.PCRInfo, w.b) || len(info.MigrationAuthority) != 0 {
		t.Errorf("TPM_CERTIFY_INFO2 %+v", info)
	}
	verifySHA1(t, &free.priv.PublicKey, raw, sig)
	sel10 := pcrSelection{Select: []byte{0, 4, 0}}
	tp.keys[high.h].pcr = &pcrInfo{Long: true, LocalityAtRelease: locAll, Release: sel10, DigestAtRelease: tp.compositeHash(sel10)}
	out = wantRC(t, tp, rcSuccess, 0, tagRquCommand, ordCertifyKey, u32(free.h), u32(high.h), nonce)
	info, _, _ = parseCertifyInfo(t, out, false)
	w = &writer{}
	(&pcrInfo{Release: sel10, DigestAtRelease: tp.compositeHash(sel10)}).marshal(w)
	if !bytes.Equal(info.PCRInfo, w.b) {
		t.Errorf("TPM_CERTIFY_INFO pcrInfo %x, want %x", info.PCRInfo, w.b)
	}
}

// identityParams is a TPM_KEY template for MakeIdentity.
func identityParams(usage uint16, flags uint32, bits uint32, es, ss uint16) []byte {
	w := &writer{}
	(&rsaKeyParms{KeyLength: bits, NumPrimes: 2}).marshal(w)
	k := &tpmKey{KeyUsage: usage, KeyFlags: flags, AuthDataUsage: authAlways,
		AlgorithmParms: keyParms{AlgorithmID: algRSA, EncScheme: es, SigScheme: ss, Parms: w.b}}
	w = &writer{}
	k.marshal(w)
	return w.b
}

// makeIdentityRun runs MakeIdentity on an OIAP session of the SRK and
// an OSAP session of the owner keyed by owner.
func makeIdentityRun(t testing.TB, tp *TPM, owner, idAuth, label, params []byte) (uint32, []byte) {
	t.Helper()
	s1 := oiapFor(t, tp, testSRK)
	s2 := osapFor(t, tp, uint16(etOwner), 0, owner)
	pad := sha(s2.key, s2.even)
	enc := make([]byte, 20)
	for i := range enc {
		enc[i] = idAuth[i] ^ pad[i]
	}
	return sessRun(t, tp, 0, []*testSession{s1, s2}, ordMakeIdentity, nil, append(append(enc, label...), params...))
}

func TestMakeAndActivateIdentity(t *testing.T) {
	tp, _ := ownedTPM(t)
	idAuth, label := sha([]byte("identity")), sha([]byte("label"))
	rc, out := makeIdentityRun(t, tp, testOwner, idAuth, label, identityParams(keyUsageIdentity, 0, 2048, esNone, ssRSASSASHA1))
	if rc != rcSuccess {
		t.Fatalf("MakeIdentity: rc %#x", rc)
	}
	if len(tp.sessions) != 0 {
		t.Errorf("%d sessions outlive MakeIdentity", len(tp.sessions))
	}
	var idKey tpmKey
	r := &reader{b: out}
	idKey.unmarshal(r)
	binding := r.sized(bufferMax)
	if r.short || r.err != nil || len(r.b) != 0 || idKey.KeyUsage != keyUsageIdentity || len(idKey.PubKey) != 256 {
		t.Fatalf("MakeIdentity response %x", out)
	}
	w := &writer{}
	(&identityContents{LabelPrivCADigest: digest(label), IdentityPubKey: *idKey.pub()}).marshal(w)
	srk, _ := tp.loadedKey(khSRK)
	lk, err := tp.unwrapKey(srk, &idKey)
	if err != nil {
		t.Fatal(err)
	}
	verifySHA1(t, &lk.priv.PublicKey, w.b, binding)
	if lk.usageAuth != digest(idAuth) || lk.migrationAuth != tp.ps.TPMProof {
		t.Errorf("identity key secrets %x %x", lk.usageAuth, lk.migrationAuth)
	}
	h, err := tp.addKey(lk)
	if err != nil {
		t.Fatal(err)
	}

	w = &writer{}
	idKey.pub().marshal(w)
	idDigest := sha(w.b)
	session := &symmetricKey{AlgID: algAES128, EncScheme: 4, Data: bytes.Repeat([]byte{0x42}, 16)}
	sw := &writer{}
	session.marshal(sw)
	activate := func(plain []byte, ownerSecret []byte) (uint32, []byte) {
		blob := encryptToEK(t, tp, plain)
		return sessRun(t, tp, 0, []*testSession{oiapFor(t, tp, idAuth), oiapFor(t, tp, ownerSecret)}, ordActivateIdentity, u32(h), append(u32(uint32(len(blob))), blob...))
	}
	ekBlobOf := func(ekType uint16, pcr pcrInfoShort, id []byte) []byte {
		a := &writer{}
		(&ekBlobActivate{SessionKey: *session, IDDigest: digest(id), PCRInfo: pcr}).marshal(a)
		b := &writer{}
		(&ekBlob{EKType: ekType, Blob: a.b}).marshal(b)
		return b.b
	}
	all := pcrInfoShort{Select: pcrSelection{Select: make([]byte, 3)}, LocalityAtRelease: locAll}
	if rc, out := activate(ekBlobOf(ekTypeActivate, all, idDigest), testOwner); rc != rcSuccess || !bytes.Equal(out, sw.b) {
		t.Errorf("ActivateIdentity TPM_EK_BLOB: rc %#x %x", rc, out)
	}
	asym := &writer{}
	(&asymCAContents{SessionKey: *session, IDDigest: digest(idDigest)}).marshal(asym)
	if rc, out := activate(asym.b, testOwner); rc != rcSuccess || !bytes.Equal(out, sw.b) {
		t.Errorf("ActivateIdentity TPM_ASYM_CA_CONTENTS: rc %#x %x", rc, out)
	}
	sel := pcrSelection{Select: []byte{0, 4, 0}}
	for _, c := range []struct {
		name  string
		plain []byte
		rc    uint32
	}{
		{"bound to PCR 10", ekBlobOf(ekTypeActivate, pcrInfoShort{Select: sel, LocalityAtRelease: locAll, DigestAtRelease: tp.compositeHash(sel)}, idDigest), rcSuccess},
		{"wrong PCR digest", ekBlobOf(ekTypeActivate, pcrInfoShort{Select: sel, LocalityAtRelease: locAll}, idDigest), rcWrongPCRVal},
		{"locality 2 only", ekBlobOf(ekTypeActivate, pcrInfoShort{Select: all.Select, LocalityAtRelease: loc2}, idDigest), rcBadLocality},
		{"locality selection 0", ekBlobOf(ekTypeActivate, pcrInfoShort{Select: all.Select}, idDigest), rcInvalidStructure},
		{"ekType 2", ekBlobOf(2, all, idDigest), rcBadType},
		{"another identity", ekBlobOf(ekTypeActivate, all, label), rcBadParameter},
		{"TPM 1.1 blob for another identity", append(asym.b[:len(asym.b)-20], label...), rcBadParameter},
		{"truncated", ekBlobOf(ekTypeActivate, all, idDigest)[:40], rcBadParamSize},
		{"TPM_EK_BLOB_ACTIVATE tag", func() []byte { b := ekBlobOf(ekTypeActivate, all, idDigest); b[9]++; return b }(), rcInvalidStructure},
	} {
		if rc, _ := activate(c.plain, testOwner); rc != c.rc {
			t.Errorf("ActivateIdentity %s: rc %#x, want %#x", c.name, rc, c.rc)
		}
	}
	if rc, _ := activate(asym.b, attKeyAuth); rc != rcAuthFail {
		t.Errorf("ActivateIdentity, wrong owner secret: rc %#x", rc)
	}
	blob := encryptToEK(t, tp, asym.b)
	params := append(u32(uint32(len(blob))), blob...)
	if rc, _ := sessRun(t, tp, 0, []*testSession{oiapFor(t, tp, attKeyAuth), oiapFor(t, tp, testOwner)}, ordActivateIdentity, u32(h), params); rc != rcAuth2Fail {
		t.Errorf("ActivateIdentity, wrong identity secret: rc %#x", rc)
	}
	tp.da = daState{}
	garbage := bytes.Repeat([]byte{0x5A}, 256)
	if rc, _ := sessRun(t, tp, 0, []*testSession{oiapFor(t, tp, idAuth), oiapFor(t, tp, testOwner)}, ordActivateIdentity, u32(h), append(u32(256), garbage...)); rc != rcDecryptError {
		t.Errorf("ActivateIdentity, garbage: rc %#x", rc)
	}
	if rc, _ := sessRun(t, tp, 0, []*testSession{oiapFor(t, tp, idAuth), oiapFor(t, tp, testOwner)}, ordActivateIdentity, u32(h), append(u32(257), append(garbage, 0)...)); rc != rcBadDataSize {
		t.Errorf("ActivateIdentity, 257-byte blob: rc %#x", rc)
	}
	sign := loadTestKey(t, tp, keyUsageSigning, 0, authAlways, ssRSASSASHA1, idAuth)
	if rc, _ := sessRun(t, tp, 0, []*testSession{oiapFor(t, tp, idAuth), oiapFor(t, tp, testOwner)}, ordActivateIdentity, u32(sign.h), params); rc != rcBadParameter {
		t.Errorf("ActivateIdentity with a signing key: rc %#x", rc)
	}
	// With AUTH1 the identity key must need no authorization.
	if rc, _ := sessRun(t, tp, 0, []*testSession{oiapFor(t, tp, testOwner)}, ordActivateIdentity, u32(h), params); rc != rcAuthFail {
		t.Errorf("ActivateIdentity AUTH1: rc %#x", rc)
	}
	wantRC(t, tp, rcBadTag, 0, tagRquCommand, ordActivateIdentity, u32(h), params)
}

func TestMakeIdentityRefusals(t *testing.T) {
	tp, _ := ownedTPM(t)
	idAuth, label := sha([]byte("identity")), sha([]byte("label"))
	good := identityParams(keyUsageIdentity, 0, 2048, esNone, ssRSASSASHA1)
	for _, c := range []struct {
		name   string
		params []byte
		owner  []byte
		rc     uint32
	}{
		{"signing key", identityParams(keyUsageSigning, 0, 2048, esNone, ssRSASSASHA1), testOwner, rcInvalidKeyUsage},
		{"migratable", identityParams(keyUsageIdentity, keyFlagMigratable, 2048, esNone, ssRSASSASHA1), testOwner, rcInvalidKeyUsage},
		{"1024 bits", identityParams(keyUsageIdentity, 0, 1024, esNone, ssRSASSASHA1), testOwner, rcBadKeyProperty},
		{"OAEP scheme", identityParams(keyUsageIdentity, 0, 2048, esRSAESOAEPSHA1MGF1, ssRSASSASHA1), testOwner, rcBadKeyProperty},
		{"DER scheme", identityParams(keyUsageIdentity, 0, 2048, esNone, ssRSASSADER), testOwner, rcBadKeyProperty},
		{"wrong owner secret", good, attKeyAuth, rcAuth2Fail},
	} {
		if rc, _ := makeIdentityRun(t, tp, c.owner, idAuth, label, c.params); rc != c.rc {
			t.Errorf("MakeIdentity %s: rc %#x, want %#x", c.name, rc, c.rc)
		}
	}
	// The owner's session must be OSAP; with AUTH1 the SRK must need no
	// authorization, which TakeOwnership's SRK does.
	p := append(append(append([]byte{}, idAuth...), label...), good...)
	if rc, _ := sessRun(t, tp, 0, []*testSession{oiapFor(t, tp, testSRK), oiapFor(t, tp, testOwner)}, ordMakeIdentity, nil, p); rc != rcBadMode {
		t.Errorf("MakeIdentity, owner on OIAP: rc %#x", rc)
	}
	if rc, _ := sessRun(t, tp, 0, []*testSession{osapFor(t, tp, uint16(etOwner), 0, testOwner)}, ordMakeIdentity, nil, p); rc != rcAuthFail {
		t.Errorf("MakeIdentity AUTH1: rc %#x", rc)
	}
	wantRC(t, tp, rcBadTag, 0, tagRquCommand, ordMakeIdentity, p)
}

func TestStructureLayouts(t *testing.T) {
	w := &writer{}
	(&quoteInfo{DigestValue: digest{1}, ExternalData: digest{2}}).marshal(w)
	if len(w.b) != 48 || !bytes.Equal(w.b[:8], []byte{1, 1, 0, 0, 'Q', 'U', 'O', 'T'}) {
		t.Errorf("TPM_QUOTE_INFO %x", w.b)
	}
	w = &writer{}
	(&quoteInfo2{InfoShort: pcrInfoShort{Select: pcrSelection{Select: []byte{0, 0, 0}}, LocalityAtRelease: 1}}).marshal(w)
	if len(w.b) != 2+4+20+5+1+20 || !bytes.Equal(w.b[:6], []byte{0, 0x36, 'Q', 'U', 'T', '2'}) {
		t.Errorf("TPM_QUOTE_INFO2 %x", w.b)
	}
	w = &writer{}
	(&identityContents{}).marshal(w)
	if !bytes.Equal(w.b[:8], []byte{1, 1, 0, 0, 0, 0, 0, 0x79}) {
		t.Errorf("TPM_IDENTITY_CONTENTS %x", w.b)
	}
	for _, b := range [][]byte{nil, {0}, {0, 0, 0, 6, 0, 4, 0, 2, 1}} {
		var k symmetricKey
		r := &reader{b: b}
		k.unmarshal(r)
		if !r.short {
			t.Errorf("truncated TPM_SYMMETRIC_KEY %x read", b)
		}
	}
}
