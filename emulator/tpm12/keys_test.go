package tpm12

import (
	"bytes"
	"crypto"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rsa"
	"crypto/sha1"
	"encoding/binary"
	"math/big"
	"testing"
)

var (
	testKeyAuth = sha([]byte("key usage"))
	testMigAuth = sha([]byte("key migration"))
)

// keyInfo is a TPM_KEY12 template of usage, schemes and bits.
func keyInfo(usage uint16, flags uint32, es, ss uint16, bits uint32, pcrInfo []byte) *tpmKey {
	w := &writer{}
	(&rsaKeyParms{KeyLength: bits, NumPrimes: 2}).marshal(w)
	return &tpmKey{Tag: tagKey12, KeyUsage: usage, KeyFlags: flags, AuthDataUsage: authAlways,
		AlgorithmParms: keyParms{AlgorithmID: algRSA, EncScheme: es, SigScheme: ss, Parms: w.b}, PCRInfo: pcrInfo}
}

func marshalKey(k *tpmKey) []byte {
	w := &writer{}
	k.marshal(w)
	return w.b
}

// osapRun opens an OSAP session on entity (et, ev) with secret and
// returns its handle, nonceEven and shared secret.
func osapRun(t testing.TB, tp *TPM, et uint16, ev uint32, secret []byte) (uint32, []byte, []byte) {
	t.Helper()
	odd := bytes.Repeat([]byte{0x61}, 20)
	out := mustRun(t, tp, ordOSAP, u16(et), u32(ev), odd)
	return binary.BigEndian.Uint32(out), out[4:24], hmac1(secret, out[24:44], odd)
}

// createWrapKeyRun runs CreateWrapKey under parent (secret parentAuth)
// for template ki with the test secrets.
func createWrapKeyRun(t testing.TB, tp *TPM, parent uint32, parentAuth []byte, ki *tpmKey) (uint32, []byte) {
	t.Helper()
	h, even, shared := osapRun(t, tp, uint16(etKeyHandle), parent, parentAuth)
	odd := bytes.Repeat([]byte{0x0D}, 20) // authRun's nonceOdd
	encU, encM := xor20(testKeyAuth, sha(shared, even)), xor20(testMigAuth, sha(shared, odd))
	return authRun(t, tp, h, even, shared, ordCreateWrapKey, u32(parent), append(append(encU, encM...), marshalKey(ki)...))
}

func xor20(a, b []byte) []byte {
	o := make([]byte, 20)
	for i := range o {
		o[i] = a[i] ^ b[i]
	}
	return o
}

// loadKey2Run loads blob under parent on an OIAP session and returns the
// handle.
func loadKey2Run(t testing.TB, tp *TPM, parent uint32, parentAuth, blob []byte) (uint32, uint32) {
	t.Helper()
	o := mustRun(t, tp, ordOIAP)
	odd := bytes.Repeat([]byte{0x0D}, 20)
	mac := hmac1(parentAuth, sha(u32(ordLoadKey2), blob), o[4:], odd, []byte{0})
	rsp := tp.Process(command(tagRquAuth1, ordLoadKey2, u32(parent), blob, o[:4], odd, []byte{0}, mac), 0)
	rc := binary.BigEndian.Uint32(rsp[6:])
	if rc != rcSuccess {
		return rc, 0
	}
	n := len(rsp)
	// The handle is left out of the output parameter digest.
	if !hmac.Equal(rsp[n-20:], hmac1(parentAuth, sha(u32(0), u32(ordLoadKey2)), rsp[n-41:n-21], odd, rsp[n-21:n-20])) {
		t.Error("LoadKey2 response authorization does not verify")
	}
	return rc, binary.BigEndian.Uint32(rsp[10:])
}

// keyRun runs an AUTH1 command on key h with a fresh OIAP session keyed
// by auth.
func keyRun(t testing.TB, tp *TPM, ord, h uint32, auth, params []byte) (uint32, []byte) {
	t.Helper()
	o := mustRun(t, tp, ordOIAP)
	return authRun(t, tp, binary.BigEndian.Uint32(o), o[4:], auth, ord, u32(h), params)
}

func sized(b []byte) []byte { return append(u32(uint32(len(b))), b...) }

func pubOf(t testing.TB, blob []byte) *rsa.PublicKey {
	t.Helper()
	var k tpmKey
	r := &reader{b: blob}
	k.unmarshal(r)
	if r.short || r.err != nil || len(r.b) != 0 {
		t.Fatalf("key blob %x", blob)
	}
	return &rsa.PublicKey{N: new(big.Int).SetBytes(k.PubKey), E: 65537}
}

func TestCreateWrapKeyLoadSign(t *testing.T) {
	tp, _ := ownedTPM(t)
	rc, blob := createWrapKeyRun(t, tp, khSRK, testSRK, keyInfo(keyUsageSigning, 0, esNone, ssRSASSASHA1, 2048, nil))
	if rc != rcSuccess {
		t.Fatalf("CreateWrapKey: rc %#x", rc)
	}
	if len(tp.sessions) != 0 {
		t.Error("CreateWrapKey left its session open")
	}
	pub := pubOf(t, blob)
	rc, h := loadKey2Run(t, tp, khSRK, testSRK, blob)
	if rc != rcSuccess {
		t.Fatalf("LoadKey2: rc %#x", rc)
	}
	if k := tp.keys[h]; k == nil || k.usageAuth != digest(testKeyAuth) || k.migrationAuth != tp.ps.TPMProof {
		t.Fatalf("loaded key %+v", k)
	}
	if got := getCap(t, tp, capKeyHandle, nil); !bytes.Equal(got, append(u16(1), u32(h)...)) {
		t.Errorf("TPM_CAP_KEY_HANDLE %x", got)
	}
	if got := getCap(t, tp, capProperty, u32(propKeys)); binary.BigEndian.Uint32(got) != keySlotsMax-1 {
		t.Errorf("TPM_CAP_PROP_KEYS %x", got)
	}
	// GetPubKey returns the key's TPM_PUBKEY.
	rc, out := keyRun(t, tp, ordGetPubKey, h, testKeyAuth, nil)
	if rc != rcSuccess || !bytes.HasSuffix(out, pub.N.Bytes()) {
		t.Errorf("GetPubKey: rc %#x %x", rc, out)
	}
	wantRC(t, tp, rcAuthFail, 0, tagRquCommand, ordGetPubKey, u32(h))
	// Sign verifies with the public key.
	d := sha([]byte("to sign"))
	rc, out = keyRun(t, tp, ordSign, h, testKeyAuth, sized(d))
	if rc != rcSuccess {
		t.Fatalf("Sign: rc %#x", rc)
	}
	if err := rsa.VerifyPKCS1v15(pub, crypto.SHA1, d, out[4:]); err != nil {
		t.Errorf("signature: %v", err)
	}
	if rc, _ := keyRun(t, tp, ordSign, h, testKeyAuth, sized(d[:19])); rc != rcBadParameter {
		t.Errorf("Sign of 19 bytes: rc %#x", rc)
	}
	if rc, _ := keyRun(t, tp, ordSign, h, testKeyAuth, sized(nil)); rc != rcBadParameter {
		t.Errorf("Sign of nothing: rc %#x", rc)
	}
	if rc, _ := keyRun(t, tp, ordSign, h, testMigAuth, sized(d)); rc != rcAuthFail {
		t.Errorf("Sign with a wrong secret: rc %#x", rc)
	}
	if rc, _ := keyRun(t, tp, ordUnBind, h, testKeyAuth, sized(d)); rc != rcInvalidKeyUsage {
		t.Errorf("UnBind with a signing key: rc %#x", rc)
	}
	// A signing key wraps nothing and seals nothing.
	if rc, _ := createWrapKeyRun(t, tp, h, testKeyAuth, keyInfo(keyUsageBind, 0, esRSAESOAEPSHA1MGF1, ssNone, 1024, nil)); rc != rcInvalidKeyUsage {
		t.Errorf("CreateWrapKey under a signing key: rc %#x", rc)
	}
	// OSAP on the key authorizes it too; flushing the key ends that
	// session.
	sh, even, shared := osapRun(t, tp, uint16(etKeyHandle), h, testKeyAuth)
	if rc, _ := authRun(t, tp, sh, even, shared, ordSign, u32(h), sized(d)); rc != rcSuccess {
		t.Errorf("Sign on OSAP: rc %#x", rc)
	}
	sh, _, _ = osapRun(t, tp, uint16(etKeyHandle), h, testKeyAuth)
	mustRun(t, tp, ordFlushSpecific, u32(h), u32(rtKey))
	if tp.sessions[sh] != nil {
		t.Error("flushing a key left its OSAP session")
	}
	wantRC(t, tp, rcBadParameter, 0, tagRquCommand, ordFlushSpecific, u32(h), u32(rtKey))
	if rc, _ := keyRun(t, tp, ordSign, h, testKeyAuth, sized(d)); rc != rcInvalidKeyHandle {
		t.Errorf("Sign with a flushed key: rc %#x", rc)
	}
	// TPM_LoadKey answers the same handle kind; EvictKey flushes it.
	rc, h = loadKey2Run(t, tp, khSRK, testSRK, blob)
	if rc != rcSuccess {
		t.Fatal(rc)
	}
	mustRun(t, tp, ordEvictKey, u32(h))
	wantRC(t, tp, rcInvalidKeyHandle, 0, tagRquCommand, ordEvictKey, u32(h))
}

func TestSignSchemes(t *testing.T) {
	tp, _ := ownedTPM(t)
	for _, ss := range []uint16{ssRSASSADER, ssRSASSAINFO} {
		rc, blob := createWrapKeyRun(t, tp, khSRK, testSRK, keyInfo(keyUsageSigning, 0, esNone, ss, 1024, nil))
		if rc != rcSuccess {
			t.Fatalf("CreateWrapKey: rc %#x", rc)
		}
		_, h := loadKey2Run(t, tp, khSRK, testSRK, blob)
		msg := []byte("some DER-encoded DigestInfo, as the caller made it")
		rc, out := keyRun(t, tp, ordSign, h, testKeyAuth, sized(msg))
		if rc != rcSuccess {
			t.Fatalf("scheme %#x: rc %#x", ss, rc)
		}
		var err error
		if ss == ssRSASSADER {
			err = rsa.VerifyPKCS1v15(pubOf(t, blob), 0, msg, out[4:])
		} else {
			info := append(append(append(u16(tagSignInfo), "SIGN"...), bytes.Repeat([]byte{0x0D}, 20)...), sized(msg)...)
			d := sha1.Sum(info)
			err = rsa.VerifyPKCS1v15(pubOf(t, blob), crypto.SHA1, d[:], out[4:])
		}
		if err != nil {
			t.Errorf("scheme %#x: %v", ss, err)
		}
		if ss == ssRSASSADER {
			if rc, _ := keyRun(t, tp, ordSign, h, testKeyAuth, sized(make([]byte, 128-10))); rc != rcBadParameter {
				t.Errorf("DER too long: rc %#x", rc)
			}
		}
	}
}

func TestUnBind(t *testing.T) {
	tp, _ := ownedTPM(t)
	secret := []byte("bound secret")
	bound := append([]byte{1, 1, 0, 0, ptBind}, secret...)
	for _, c := range []struct {
		usage, es uint16
		pt, want  []byte
		rc        uint32
	}{
		{keyUsageBind, esRSAESOAEPSHA1MGF1, bound, secret, rcSuccess},
		{keyUsageBind, esRSAESPKCSv15, bound, secret, rcSuccess},
		{keyUsageLegacy, esRSAESPKCSv15, secret, secret, rcSuccess},
		{keyUsageLegacy, esRSAESOAEPSHA1MGF1, bound, secret, rcSuccess},
		{keyUsageBind, esRSAESOAEPSHA1MGF1, append([]byte{1, 2, 0, 0, ptBind}, secret...), nil, rcBadVersion},
		{keyUsageBind, esRSAESOAEPSHA1MGF1, append([]byte{1, 1, 0, 0, ptSeal}, secret...), nil, rcInvalidStructure},
		{keyUsageBind, esRSAESOAEPSHA1MGF1, []byte{1, 1, 0, 0}, nil, rcBadParamSize},
	} {
		ss := ssNone
		if c.usage == keyUsageLegacy {
			ss = ssRSASSASHA1
		}
		rc, blob := createWrapKeyRun(t, tp, khSRK, testSRK, keyInfo(c.usage, 0, c.es, ss, 1024, nil))
		if rc != rcSuccess {
			t.Fatalf("CreateWrapKey %+v: rc %#x", c, rc)
		}
		_, h := loadKey2Run(t, tp, khSRK, testSRK, blob)
		pub := pubOf(t, blob)
		var ct []byte
		var err error
		if c.es == esRSAESPKCSv15 {
			ct, err = rsa.EncryptPKCS1v15(tp.rand, pub, c.pt)
		} else {
			ct, err = rsa.EncryptOAEP(sha1.New(), tp.rand, pub, c.pt, oaepLabel)
		}
		if err != nil {
			t.Fatal(err)
		}
		rc, out := keyRun(t, tp, ordUnBind, h, testKeyAuth, sized(ct))
		if rc != c.rc || rc == rcSuccess && !bytes.Equal(out[4:], c.want) {
			t.Errorf("UnBind %+v: rc %#x out %x", c, rc, out)
		}
		ct[5] ^= 1
		if rc, _ := keyRun(t, tp, ordUnBind, h, testKeyAuth, sized(ct)); rc != rcDecryptError && c.es == esRSAESOAEPSHA1MGF1 {
			t.Errorf("UnBind of a corrupted block: rc %#x", rc)
		}
		if rc, _ := keyRun(t, tp, ordUnBind, h, testKeyAuth, sized(nil)); rc != rcBadParameter {
			t.Errorf("UnBind of nothing: rc %#x", rc)
		}
		mustRun(t, tp, ordFlushSpecific, u32(h), u32(rtKey))
	}
}

func TestCreateWrapKeyRefusals(t *testing.T) {
	tp, _ := ownedTPM(t)
	for _, c := range []struct {
		name string
		ki   *tpmKey
		rc   uint32
	}{
		{"2064 bits", keyInfo(keyUsageSigning, 0, esNone, ssRSASSASHA1, 2064, nil), rcBadKeyProperty},
		{"1000 bits", keyInfo(keyUsageSigning, 0, esNone, ssRSASSASHA1, 1000, nil), rcBadKeyProperty},
		{"1032 bits", keyInfo(keyUsageSigning, 0, esNone, ssRSASSASHA1, 1032, nil), rcBadKeyProperty},
		{"storage of 1024 bits", keyInfo(keyUsageStorage, 0, esRSAESOAEPSHA1MGF1, ssNone, 1024, nil), rcBadKeyProperty},
		{"signing key with encryption", keyInfo(keyUsageSigning, 0, esRSAESOAEPSHA1MGF1, ssRSASSASHA1, 1024, nil), rcBadKeyProperty},
		{"identity", keyInfo(keyUsageIdentity, 0, esNone, ssRSASSASHA1, 2048, nil), rcInvalidKeyUsage},
		{"migrateAuthority", keyInfo(keyUsageBind, keyFlagMigrateAut, esRSAESOAEPSHA1MGF1, ssNone, 1024, nil), rcInvalidKeyUsage},
		{"unknown usage", keyInfo(0x99, 0, esNone, ssNone, 1024, nil), rcBadKeyProperty},
	} {
		if rc, _ := createWrapKeyRun(t, tp, khSRK, testSRK, c.ki); rc != c.rc {
			t.Errorf("%s: rc %#x, want %#x", c.name, rc, c.rc)
		}
	}
	// An OIAP session does not carry the new secrets.
	if rc, _ := keyRun(t, tp, ordCreateWrapKey, khSRK, testSRK, append(make([]byte, 40), marshalKey(keyInfo(keyUsageBind, 0, esRSAESOAEPSHA1MGF1, ssNone, 1024, nil))...)); rc != rcBadMode {
		t.Errorf("CreateWrapKey on OIAP: rc %#x", rc)
	}
	if rc, _ := createWrapKeyRun(t, tp, khSRK, testKeyAuth, keyInfo(keyUsageBind, 0, esRSAESOAEPSHA1MGF1, ssNone, 1024, nil)); rc != rcAuthFail {
		t.Errorf("wrong parent secret: rc %#x", rc)
	}
}

func TestKeyStorageHierarchyAndPCRs(t *testing.T) {
	tp, _ := ownedTPM(t)
	// A migratable storage key under the SRK, a key under it.
	rc, sblob := createWrapKeyRun(t, tp, khSRK, testSRK, keyInfo(keyUsageStorage, keyFlagMigratable, esRSAESOAEPSHA1MGF1, ssNone, 2048, nil))
	if rc != rcSuccess {
		t.Fatalf("storage key: rc %#x", rc)
	}
	_, sh := loadKey2Run(t, tp, khSRK, testSRK, sblob)
	if k := tp.keys[sh]; k.migrationAuth != digest(testMigAuth) {
		t.Error("migratable key's migrationAuth is not the caller's")
	}
	if rc, _ := createWrapKeyRun(t, tp, sh, testKeyAuth, keyInfo(keyUsageBind, 0, esRSAESOAEPSHA1MGF1, ssNone, 1024, nil)); rc != rcInvalidKeyUsage {
		t.Errorf("non-migratable child of a migratable key: rc %#x", rc)
	}
	// Seal refuses a migratable key.
	if rc, _ := sealRunUnder(t, tp, sh, testKeyAuth, []byte("x")); rc != rcInvalidKeyUsage {
		t.Errorf("Seal under a migratable key: rc %#x", rc)
	}
	// A non-migratable storage key seals and unseals.
	rc, nblob := createWrapKeyRun(t, tp, khSRK, testSRK, keyInfo(keyUsageStorage, 0, esRSAESOAEPSHA1MGF1, ssNone, 2048, nil))
	if rc != rcSuccess {
		t.Fatal(rc)
	}
	_, nh := loadKey2Run(t, tp, khSRK, testSRK, nblob)
	rc, sealed := sealRunUnder(t, tp, nh, testKeyAuth, []byte("sealed under a loaded key"))
	if rc != rcSuccess {
		t.Fatalf("Seal: rc %#x", rc)
	}
	if rc, _ := unsealRunUnder(t, tp, khSRK, testSRK, testData, sealed); rc != rcNotSealedBlob {
		t.Errorf("Unseal under the SRK of a blob of another key: rc %#x", rc)
	}
	if rc, out := unsealRunUnder(t, tp, nh, testKeyAuth, testData, sealed); rc != rcSuccess || string(out) != "sealed under a loaded key" {
		t.Errorf("Unseal: rc %#x %q", rc, out)
	}
	// A blob of another TPM (its migrationAuth is not this tpmProof)
	// does not load.
	tp2, _ := ownedTPM(t)
	if rc, _ := loadKey2Run(t, tp2, khSRK, testSRK, nblob); rc != rcDecryptError {
		t.Errorf("blob of another SRK: rc %#x", rc)
	}
	// A key bound to PCR 16 works until PCR 16 changes.
	rc, pblob := createWrapKeyRun(t, tp, khSRK, testSRK, keyInfo(keyUsageSigning, 0, esNone, ssRSASSASHA1, 1024, pcrInfoLongFor(tp, 16)))
	if rc != rcSuccess {
		t.Fatalf("PCR-bound key: rc %#x", rc)
	}
	_, ph := loadKey2Run(t, tp, khSRK, testSRK, pblob)
	d := sha([]byte("x"))
	if rc, _ := keyRun(t, tp, ordSign, ph, testKeyAuth, sized(d)); rc != rcSuccess {
		t.Errorf("Sign with PCRs as bound: rc %#x", rc)
	}
	mustRun(t, tp, ordExtend, u32(16), d)
	if rc, _ := keyRun(t, tp, ordSign, ph, testKeyAuth, sized(d)); rc != rcWrongPCRVal {
		t.Errorf("Sign with PCR 16 extended: rc %#x", rc)
	}
	// Loaded keys do not survive _TPM_Init, nor OwnerClear.
	tp.Reset()
	mustRun(t, tp, ordStartup, u16(stClear))
	if rc, _ := keyRun(t, tp, ordSign, ph, testKeyAuth, sized(d)); rc != rcInvalidKeyHandle {
		t.Errorf("key after _TPM_Init: rc %#x", rc)
	}
	_, nh = loadKey2Run(t, tp, khSRK, testSRK, nblob)
	if rc, _ := ownerRun(t, tp, testOwner, ordOwnerClear, nil); rc != rcSuccess {
		t.Fatal(rc)
	}
	if len(tp.keys) != 0 {
		t.Error("keys survived OwnerClear")
	}
}

func TestLoadKeySlots(t *testing.T) {
	tp, _ := ownedTPM(t)
	rc, blob := createWrapKeyRun(t, tp, khSRK, testSRK, keyInfo(keyUsageBind, 0, esRSAESOAEPSHA1MGF1, ssNone, 1024, nil))
	if rc != rcSuccess {
		t.Fatal(rc)
	}
	for i := 0; i < keySlotsMax; i++ {
		if rc, _ := loadKey2Run(t, tp, khSRK, testSRK, blob); rc != rcSuccess {
			t.Fatalf("key %d: rc %#x", i, rc)
		}
	}
	if rc, _ := loadKey2Run(t, tp, khSRK, testSRK, blob); rc != rcNoSpace {
		t.Errorf("key beyond the slots: rc %#x", rc)
	}
	if got := getCap(t, tp, capProperty, u32(propKeys)); binary.BigEndian.Uint32(got) != 0 {
		t.Errorf("TPM_CAP_PROP_KEYS %x", got)
	}
	// Without a session only a parent of authDataUsage TPM_AUTH_NEVER
	// loads.
	wantRC(t, tp, rcAuthFail, 0, tagRquCommand, ordLoadKey2, u32(khSRK), blob)
	// Garbage encData.
	var k tpmKey
	k.unmarshal(&reader{b: blob})
	k.EncData = make([]byte, 256)
	if rc, _ := loadKey2Run(t, tp, khSRK, testSRK, marshalKey(&k)); rc != rcDecryptError {
		t.Errorf("garbage encData: rc %#x", rc)
	}
	wantRC(t, tp, rcBadParamSize, 0, tagRquAuth1, ordLoadKey2, u32(khSRK), blob[:20])
}

// sealRunUnder seals data under key h (secret auth) with the data secret
// testData.
func sealRunUnder(t testing.TB, tp *TPM, h uint32, auth, data []byte) (uint32, []byte) {
	t.Helper()
	sh, even, shared := osapRun(t, tp, uint16(etKeyHandle), h, auth)
	p := append(xor20(testData, sha(shared, even)), u32(0)...)
	return authRun(t, tp, sh, even, shared, ordSeal, u32(h), append(p, sized(data)...))
}

func unsealRunUnder(t testing.TB, tp *TPM, h uint32, keyAuth, dataAuth, blob []byte) (uint32, []byte) {
	t.Helper()
	o1, o2 := mustRun(t, tp, ordOIAP), mustRun(t, tp, ordOIAP)
	odd1, odd2 := bytes.Repeat([]byte{1}, 20), bytes.Repeat([]byte{2}, 20)
	in := sha(u32(ordUnseal), blob)
	mac1 := hmac1(keyAuth, in, o1[4:], odd1, []byte{0})
	mac2 := hmac1(dataAuth, in, o2[4:], odd2, []byte{0})
	rsp := tp.Process(command(tagRquAuth2, ordUnseal, u32(h), blob, o1[:4], odd1, []byte{0}, mac1, o2[:4], odd2, []byte{0}, mac2), 0)
	rc := binary.BigEndian.Uint32(rsp[6:])
	if rc != rcSuccess {
		return rc, nil
	}
	return rc, rsp[14 : len(rsp)-82]
}

// pcrInfoLongFor is a TPM_PCR_INFO_LONG binding to the current value of
// pcr at any locality.
func pcrInfoLongFor(tp *TPM, pcr int) []byte {
	info := pcrInfo{Long: true, LocalityAtCreation: 0x1F, LocalityAtRelease: 0x1F,
		Creation: pcrSelection{Select: make([]byte, 3)}, Release: pcrSelection{Select: make([]byte, 3)}}
	info.Release.Select[pcr/8] |= 1 << (pcr % 8)
	info.DigestAtRelease = tp.compositeHash(info.Release)
	w := &writer{}
	info.marshal(w)
	return w.b
}

func TestKeysAcrossSaveState(t *testing.T) {
	tp, _ := ownedTPM(t)
	rc, blob := createWrapKeyRun(t, tp, khSRK, testSRK, keyInfo(keyUsageSigning, 0, esNone, ssRSASSASHA1, 1024, pcrInfoLongFor(tp, 16)))
	if rc != rcSuccess {
		t.Fatal(rc)
	}
	_, h := loadKey2Run(t, tp, khSRK, testSRK, blob)
	mustRun(t, tp, ordSaveState)
	state, err := tp.Save()
	if err != nil {
		t.Fatal(err)
	}
	for _, st := range []uint16{stState, stClear} {
		tp2, err := New(Config{State: state})
		if err != nil {
			t.Fatal(err)
		}
		mustRun(t, tp2, ordStartup, u16(st))
		d := sha([]byte("after resume"))
		rc, out := keyRun(t, tp2, ordSign, h, testKeyAuth, sized(d))
		switch {
		case st == stState && rc != rcSuccess:
			t.Errorf("Sign after Startup(ST_STATE): rc %#x", rc)
		case st == stState && rsa.VerifyPKCS1v15(pubOf(t, blob), crypto.SHA1, d, out[4:]) != nil:
			t.Error("signature after Startup(ST_STATE) does not verify")
		case st == stClear && rc != rcInvalidKeyHandle:
			t.Errorf("Sign after Startup(ST_CLEAR): rc %#x", rc)
		}
	}
}

func TestCapCheckLoaded(t *testing.T) {
	tp, _ := ownedTPM(t)
	w := &writer{}
	keyInfo(keyUsageBind, 0, esRSAESOAEPSHA1MGF1, ssNone, 2048, nil).AlgorithmParms.marshal(w)
	rsaParms := w.b
	if got := getCap(t, tp, capCheckLoaded, rsaParms); !bytes.Equal(got, []byte{1}) {
		t.Errorf("RSA: %x", got)
	}
	other := append(u32(algAES128), rsaParms[4:]...)
	wantRC(t, tp, rcBadKeyProperty, 0, tagRquCommand, ordGetCapability, u32(capCheckLoaded), u32(uint32(len(other))), other)
	wantRC(t, tp, rcBadParamSize, 0, tagRquCommand, ordGetCapability, u32(capCheckLoaded), u32(12), rsaParms[:8], u32(0))
	wantRC(t, tp, rcBadParamSize, 0, tagRquCommand, ordGetCapability, u32(capCheckLoaded), u32(6), rsaParms[:6])
	for i := 0; i < keySlotsMax; i++ {
		tp.keys[uint32(i+1)] = &loadedKey{}
	}
	if got := getCap(t, tp, capCheckLoaded, rsaParms); !bytes.Equal(got, []byte{0}) {
		t.Errorf("RSA with the slots full: %x", got)
	}
}

func TestKeyDecoding(t *testing.T) {
	decode := func(k *tpmKey) error {
		var out tpmKey
		r := &reader{b: marshalKey(k)}
		out.unmarshal(r)
		if r.err == nil && r.short {
			return rcE(rcBadParamSize, "short")
		}
		return r.err
	}
	good := keyInfo(keyUsageSigning, keyFlagPCRIgnored, esNone, ssRSASSASHA1, 1024, pcrInfoLongFor(&TPM{}, 16))
	if err := decode(good); err != nil {
		t.Fatal(err)
	}
	flags := *good
	flags.KeyFlags = 0x20
	aes := *good
	aes.AlgorithmParms.AlgorithmID = algAES128
	shortParms := *good
	shortParms.AlgorithmParms.Parms = good.AlgorithmParms.Parms[:6]
	badTag := *good
	badTag.PCRInfo = append([]byte{0, 5}, good.PCRInfo[2:]...)
	shortInfo := *good
	shortInfo.PCRInfo = good.PCRInfo[:30]
	long := *good
	long.PCRInfo = append(append([]byte{}, good.PCRInfo...), 0)
	v11 := *good
	v11.Tag = 0 // a TPM_KEY with a TPM_PCR_INFO_LONG
	for name, c := range map[string]struct {
		k  *tpmKey
		rc uint32
	}{
		"flags":                        {&flags, rcBadKeyProperty},
		"AES":                          {&aes, rcBadKeyProperty},
		"short RSA parameters":         {&shortParms, rcBadParamSize},
		"pcrInfo tag":                  {&badTag, rcInvalidStructure},
		"short pcrInfo":                {&shortInfo, rcBadParamSize},
		"TPM_PCR_INFO_LONG in TPM_KEY": {&v11, rcInvalidPCRInfo},
	} {
		if err := decode(c.k); !rcIs(err, c.rc) {
			t.Errorf("%s: %v, want rc %#x", name, err, c.rc)
		}
	}
	if err := decode(&long); err != nil {
		t.Errorf("pcrInfo with a trailing byte: %v", err)
	}
}

func TestGetPubKeyWithoutSession(t *testing.T) {
	tp, _ := ownedTPM(t)
	for _, c := range []struct {
		usage uint8
		rc    uint32
	}{{authNever, rcSuccess}, {authNoReadPubKey, rcSuccess}, {authAlways, rcAuthFail}, {authPrivUseOnly, rcAuthFail}} {
		ki := keyInfo(keyUsageSigning, 0, esNone, ssRSASSASHA1, 1024, nil)
		ki.AuthDataUsage = c.usage
		rc, blob := createWrapKeyRun(t, tp, khSRK, testSRK, ki)
		if rc != rcSuccess {
			t.Fatal(rc)
		}
		_, h := loadKey2Run(t, tp, khSRK, testSRK, blob)
		wantRC(t, tp, c.rc, 0, tagRquCommand, ordGetPubKey, u32(h))
		signRC := rcAuthFail
		if c.usage == authNever {
			signRC = rcSuccess
		}
		wantRC(t, tp, signRC, 0, tagRquCommand, ordSign, u32(h), sized(make([]byte, 20)))
	}
	// The SRK's public key is readable only while readSRKPub is set.
	if rc, _ := keyRun(t, tp, ordGetPubKey, khSRK, testSRK, nil); rc != rcInvalidKeyHandle {
		t.Errorf("GetPubKey SRK: rc %#x", rc)
	}
	tp.ps.Flags.ReadSRKPub = true
	if rc, _ := keyRun(t, tp, ordGetPubKey, khSRK, testSRK, nil); rc != rcSuccess {
		t.Errorf("GetPubKey SRK with readSRKPub: rc %#x", rc)
	}
}

// fuzzKeyHandle is where FuzzKeyCommands loads its key.
const fuzzKeyHandle uint32 = 0x01000001

// FuzzKeyCommands drives an owned TPM holding a loaded storage key at
// fuzzKeyHandle with arbitrary command buffers: the key commands get
// past the owner check here, as they do not on FuzzProcess's TPM.
func FuzzKeyCommands(f *testing.F) {
	d := bytes.Repeat([]byte{3}, 20)
	auth := func(h uint32) []byte { return append(append(append(u32(h), d...), 0), d...) }
	ki := marshalKey(keyInfo(keyUsageSigning, 0, esNone, ssRSASSASHA1, 1024, nil))
	for _, c := range [][]byte{
		command(tagRquAuth1, ordCreateWrapKey, u32(fuzzKeyHandle), d, d, ki, auth(firstSessionHandle)),
		command(tagRquAuth1, ordLoadKey2, u32(fuzzKeyHandle), ki, auth(firstSessionHandle)),
		command(tagRquCommand, ordLoadKey, u32(khSRK), ki),
		command(tagRquCommand, ordGetPubKey, u32(fuzzKeyHandle)),
		command(tagRquCommand, ordSign, u32(fuzzKeyHandle), sized(d)),
		command(tagRquCommand, ordUnBind, u32(fuzzKeyHandle), sized(make([]byte, 256))),
		command(tagRquCommand, ordOSAP, u16(uint16(etKeyHandle)), u32(fuzzKeyHandle), d),
		command(tagRquCommand, ordEvictKey, u32(fuzzKeyHandle)),
		command(tagRquCommand, ordGetCapability, u32(capCheckLoaded), u32(12), ki[11:23]),
		command(tagRquCommand, ordSaveState),
		command(tagRquCommand, ordQuote, u32(fuzzKeyHandle), d, u16(3), []byte{0xFF, 0xFF, 0xFF}),
		command(tagRquAuth1, ordQuote2, u32(fuzzKeyHandle), d, u16(3), []byte{0, 4, 1}, []byte{1}, auth(firstSessionHandle)),
		command(tagRquCommand, ordCertifyKey, u32(fuzzKeyHandle), u32(fuzzKeyHandle), d),
		command(tagRquAuth2, ordCertifyKey2, u32(fuzzKeyHandle), u32(khSRK), d, d, auth(firstSessionHandle), auth(firstSessionHandle+1)),
		command(tagRquAuth1, ordMakeIdentity, d, d, marshalKey(keyInfo(keyUsageIdentity, 0, esNone, ssRSASSASHA1, 2048, nil)), auth(firstSessionHandle)),
		command(tagRquAuth2, ordActivateIdentity, u32(fuzzKeyHandle), sized(make([]byte, 256)), auth(firstSessionHandle), auth(firstSessionHandle+1)),
	} {
		f.Add(c)
	}
	tp, _ := ownedTPM(f)
	srk, _ := tp.loadedKey(khSRK)
	key := &loadedKey{handle: fuzzKeyHandle, key: srk.key, priv: srk.priv, parent: khSRK}
	f.Fuzz(func(t *testing.T, cmd []byte) {
		onPanic = func(r any, stack []byte) { t.Fatalf("panic: %v\n%s", r, stack) }
		if tp.keys[fuzzKeyHandle] == nil {
			tp.keys[fuzzKeyHandle] = key
		}
		rsp := tp.Process(cmd, 0)
		if len(rsp) < 10 || len(rsp) > bufferMax || binary.BigEndian.Uint32(rsp[2:]) != uint32(len(rsp)) {
			t.Fatalf("malformed response %x", rsp)
		}
		if len(tp.keys) > keySlotsMax/2 {
			clear(tp.keys)
		}
		if !tp.Started() || tp.failed {
			tp.Reset()
			tp.Process(command(tagRquCommand, ordStartup, u16(stClear)), 0)
		}
	})
}

func TestCreateWrapKeyAESADIP(t *testing.T) {
	tp, _ := ownedTPM(t)
	h, even, shared := osapRun(t, tp, uint16(etAES128)<<8|uint16(etKeyHandle), khSRK, testSRK)
	odd := bytes.Repeat([]byte{0x0D}, 20) // authRun's nonceOdd
	ctr := func(iv, in []byte) []byte {
		b, _ := aes.NewCipher(shared[:16])
		out := make([]byte, 20)
		cipher.NewCTR(b, iv[:16]).XORKeyStream(out, in)
		return out
	}
	ki := keyInfo(keyUsageStorage, keyFlagMigratable, esRSAESOAEPSHA1MGF1, ssNone, 2048, nil)
	rc, blob := authRun(t, tp, h, even, shared, ordCreateWrapKey, u32(khSRK), append(append(ctr(even, testKeyAuth), ctr(odd, testMigAuth)...), marshalKey(ki)...))
	if rc != rcSuccess {
		t.Fatalf("CreateWrapKey: rc %#x", rc)
	}
	_, kh := loadKey2Run(t, tp, khSRK, testSRK, blob)
	if k := tp.keys[kh]; k == nil || k.usageAuth != digest(testKeyAuth) || k.migrationAuth != digest(testMigAuth) {
		t.Errorf("secrets under the AES ADIP: %+v", k)
	}
}

func TestCreateWrapKeyExponents(t *testing.T) {
	tp, _ := ownedTPM(t)
	for _, c := range []struct {
		e  []byte
		rc uint32
	}{{[]byte{3}, rcSuccess}, {[]byte{1, 1}, rcSuccess}, {[]byte{1, 0, 1}, rcSuccess}, {[]byte{9}, rcBadKeyProperty}, {[]byte{4}, rcBadKeyProperty}} {
		ki := keyInfo(keyUsageSigning, 0, esNone, ssRSASSASHA1, 1024, nil)
		w := &writer{}
		(&rsaKeyParms{KeyLength: 1024, NumPrimes: 2, Exponent: c.e}).marshal(w)
		ki.AlgorithmParms.Parms = w.b
		rc, blob := createWrapKeyRun(t, tp, khSRK, testSRK, ki)
		if rc != c.rc {
			t.Errorf("exponent %x: rc %#x, want %#x", c.e, rc, c.rc)
			continue
		}
		if rc != rcSuccess {
			continue
		}
		_, h := loadKey2Run(t, tp, khSRK, testSRK, blob)
		d := sha([]byte("x"))
		rc, out := keyRun(t, tp, ordSign, h, testKeyAuth, sized(d))
		pub := pubOf(t, blob)
		pub.E = int(new(big.Int).SetBytes(c.e).Int64())
		if rc != rcSuccess || rsa.VerifyPKCS1v15(pub, crypto.SHA1, d, out[4:]) != nil {
			t.Errorf("exponent %x: Sign rc %#x", c.e, rc)
		}
		if tp.keys[h].priv.E != pub.E {
			t.Errorf("exponent %x: loaded key has %d", c.e, tp.keys[h].priv.E)
		}
		mustRun(t, tp, ordFlushSpecific, u32(h), u32(rtKey))
	}
}
