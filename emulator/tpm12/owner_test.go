package tpm12

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"testing"
	"time"
)

// srkParamsKey is the TPM_KEY tpm_takeownership sends for the SRK.
func srkParamsKey(usage uint16, flags, bits uint32) []byte {
	w := &writer{}
	(&rsaKeyParms{KeyLength: bits, NumPrimes: 2}).marshal(w)
	k := &tpmKey{KeyUsage: usage, KeyFlags: flags, AuthDataUsage: 1,
		AlgorithmParms: keyParms{AlgorithmID: algRSA, EncScheme: esRSAESOAEPSHA1MGF1, SigScheme: ssNone, Parms: w.b}}
	w = &writer{}
	k.marshal(w)
	return w.b
}

func encryptToEK(t testing.TB, tp *TPM, secret []byte) []byte {
	t.Helper()
	ek, err := tp.ek()
	if err != nil {
		t.Fatal(err)
	}
	ct, err := rsa.EncryptOAEP(sha1.New(), rand.Reader, &ek.PublicKey, secret, []byte("TCPA"))
	if err != nil {
		t.Fatal(err)
	}
	return ct
}

// authRun sends an AUTH1 command on session h (nonceEven even) keyed by
// key, handles left out of the digest; it checks the response
// authorization of a success and returns the code and parameters.
func authRun(t testing.TB, tp *TPM, h uint32, even, key []byte, ord uint32, handles, params []byte) (uint32, []byte) {
	t.Helper()
	odd := bytes.Repeat([]byte{0x0D}, 20)
	mac := hmac1(key, sha(u32(ord), params), even, odd, []byte{0})
	rsp := tp.Process(command(tagRquAuth1, ord, handles, params, u32(h), odd, []byte{0}, mac), 0)
	rc := binary.BigEndian.Uint32(rsp[6:])
	if rc != rcSuccess {
		return rc, nil
	}
	n := len(rsp)
	out := rsp[10 : n-41]
	if !hmac.Equal(rsp[n-20:], hmac1(key, sha(u32(0), u32(ord), out), rsp[n-41:n-21], odd, rsp[n-21:n-20])) {
		t.Errorf("ordinal %#x: response authorization does not verify", ord)
	}
	return rc, out
}

// ownerRun runs an owner-authorized command on a fresh OIAP session.
func ownerRun(t testing.TB, tp *TPM, secret []byte, ord uint32, params []byte) (uint32, []byte) {
	t.Helper()
	out := mustRun(t, tp, ordOIAP)
	return authRun(t, tp, binary.BigEndian.Uint32(out), out[4:], secret, ord, nil, params)
}

func takeOwnershipParams(t testing.TB, tp *TPM, owner, srkSecret, srkParams []byte) []byte {
	encO, encS := encryptToEK(t, tp, owner), encryptToEK(t, tp, srkSecret)
	p := append(u16(pidOwner), u32(uint32(len(encO)))...)
	p = append(p, encO...)
	p = append(p, u32(uint32(len(encS)))...)
	p = append(p, encS...)
	return append(p, srkParams...)
}

var (
	testOwner = sha([]byte("owner"))
	testSRK   = make([]byte, 20)
)

// ownedTPM returns a started TPM the test owns with testOwner and the
// well-known SRK secret, and the SRK TPM_KEY TakeOwnership returned.
func ownedTPM(t testing.TB) (*TPM, []byte) {
	t.Helper()
	tp := startedTPM(t)
	tp.NVChanged()
	rc, srkPub := ownerRun(t, tp, testOwner, ordTakeOwnership, takeOwnershipParams(t, tp, testOwner, testSRK, srkParamsKey(keyUsageStorage, 0, 2048)))
	if rc != rcSuccess {
		t.Fatalf("TakeOwnership: rc %#x", rc)
	}
	if !tp.NVChanged() {
		t.Error("TakeOwnership did not report an NV change")
	}
	return tp, srkPub
}

func TestTakeOwnership(t *testing.T) {
	tp, srkPub := ownedTPM(t)
	var k tpmKey
	r := &reader{b: srkPub}
	k.unmarshal(r)
	if r.short || r.err != nil || len(r.b) != 0 || len(k.PubKey) != 256 || len(k.EncData) != 0 || k.KeyUsage != keyUsageStorage {
		t.Fatalf("SRK TPM_KEY %x", srkPub)
	}
	if priv, _, _ := tp.srkKey(); !bytes.Equal(priv.N.Bytes(), k.PubKey) {
		t.Error("SRK modulus differs from the key")
	}
	if tp.ps.TPMProof == (digest{}) {
		t.Error("no tpmProof")
	}
	wantRC(t, tp, rcDisabledCmd, 0, tagRquCommand, ordReadPubek, make([]byte, 20))
	if got := getCap(t, tp, capProperty, u32(propOwner)); !bytes.Equal(got, []byte{1}) {
		t.Errorf("TPM_CAP_PROP_OWNER %x", got)
	}
	// A second owner is refused.
	if rc, _ := ownerRun(t, tp, testOwner, ordTakeOwnership, takeOwnershipParams(t, tp, testOwner, testSRK, srkParamsKey(keyUsageStorage, 0, 2048))); rc != rcOwnerSet {
		t.Errorf("second TakeOwnership: rc %#x", rc)
	}
	// OwnerReadInternalPub reads the EK and the SRK.
	_, pub := ownerRun(t, tp, testOwner, ordOwnerReadInternalPub, u32(khSRK))
	if !bytes.HasSuffix(pub, k.PubKey) {
		t.Error("OwnerReadInternalPub(SRK) is not the SRK")
	}
	ek, _ := tp.ekPublic()
	w := &writer{}
	ek.marshal(w)
	if _, pub := ownerRun(t, tp, testOwner, ordOwnerReadInternalPub, u32(khEK)); !bytes.Equal(pub, w.b) {
		t.Error("OwnerReadInternalPub(EK) is not the EK")
	}
	if rc, _ := ownerRun(t, tp, testOwner, ordOwnerReadInternalPub, u32(1)); rc != rcBadParameter {
		t.Errorf("OwnerReadInternalPub(1): rc %#x", rc)
	}
}

func TestTakeOwnershipRefusals(t *testing.T) {
	tp := startedTPM(t)
	good := srkParamsKey(keyUsageStorage, 0, 2048)
	for _, c := range []struct {
		name   string
		params []byte
		key    []byte
		want   uint32
	}{
		{"wrong HMAC", takeOwnershipParams(t, tp, testOwner, testSRK, good), []byte("wrong"), rcAuthFail},
		{"signing SRK", takeOwnershipParams(t, tp, testOwner, testSRK, srkParamsKey(0x10, 0, 2048)), testOwner, rcInvalidKeyUsage},
		{"migratable SRK", takeOwnershipParams(t, tp, testOwner, testSRK, srkParamsKey(keyUsageStorage, keyFlagMigratable, 2048)), testOwner, rcInvalidKeyUsage},
		{"1024-bit SRK", takeOwnershipParams(t, tp, testOwner, testSRK, srkParamsKey(keyUsageStorage, 0, 1024)), testOwner, rcBadKeyProperty},
		{"short owner secret", takeOwnershipParams(t, tp, testOwner[:10], testSRK, good), testOwner, rcBadKeyProperty},
		{"protocolID", append(u16(4), takeOwnershipParams(t, tp, testOwner, testSRK, good)[2:]...), testOwner, rcBadParameter},
	} {
		if rc, _ := ownerRun(t, tp, c.key, ordTakeOwnership, c.params); rc != c.want {
			t.Errorf("%s: rc %#x, want %#x", c.name, rc, c.want)
		}
	}
	if tp.ps.Owned || !tp.ps.Flags.ReadPubek {
		t.Error("a refused TakeOwnership changed the TPM")
	}
	// On an OSAP session: there is no owner to share a secret with.
	wantRC(t, tp, rcNoSRK, 0, tagRquCommand, ordOSAP, u16(uint16(etOwner)), u32(0), make([]byte, 20))
	// Disabled: refused; deactivated alone does not matter.
	tp.ps.Flags.Disable = true
	if rc, _ := run(tp, 0, tagRquAuth1, ordTakeOwnership, takeOwnershipParams(t, tp, testOwner, testSRK, good), make([]byte, authAreaSize)); rc != rcDisabled {
		t.Errorf("disabled: rc %#x", rc)
	}
}

func TestChangeAuthOwner(t *testing.T) {
	tp, _ := ownedTPM(t)
	odd := bytes.Repeat([]byte{0x51}, 20)
	osap := func() (uint32, []byte, []byte) {
		out := mustRun(t, tp, ordOSAP, u16(uint16(etOwner)), u32(0), odd)
		return binary.BigEndian.Uint32(out), out[4:24], hmac1(testOwner, out[24:44], odd)
	}
	h, even, shared := osap()
	h2, _, _ := osap()
	newOwner := sha([]byte("new owner"))
	pad := sha(shared, even)
	enc := make([]byte, 20)
	for i := range enc {
		enc[i] = newOwner[i] ^ pad[i]
	}
	if rc, _ := authRun(t, tp, h, even, shared, ordChangeAuthOwner, nil, append(append(u16(pidADCP), enc...), u16(uint16(etOwner))...)); rc != rcSuccess {
		t.Fatalf("ChangeAuthOwner: rc %#x", rc)
	}
	if tp.sessions[h] != nil || tp.sessions[h2] != nil {
		t.Error("owner OSAP sessions survived ChangeAuthOwner")
	}
	if rc, _ := ownerRun(t, tp, testOwner, ordOwnerReadInternalPub, u32(khEK)); rc != rcAuthFail {
		t.Errorf("old owner secret: rc %#x", rc)
	}
	if rc, _ := ownerRun(t, tp, newOwner, ordOwnerReadInternalPub, u32(khEK)); rc != rcSuccess {
		t.Errorf("new owner secret: rc %#x", rc)
	}
	// The SRK's secret, and the refusals.
	out := mustRun(t, tp, ordOSAP, u16(uint16(etOwner)), u32(0), odd)
	h, even, shared = binary.BigEndian.Uint32(out), out[4:24], hmac1(newOwner, out[24:44], odd)
	newSRK := sha([]byte("srk"))
	pad = sha(shared, even)
	for i := range enc {
		enc[i] = newSRK[i] ^ pad[i]
	}
	if rc, _ := authRun(t, tp, h, even, shared, ordChangeAuthOwner, nil, append(append(u16(pidADCP), enc...), u16(uint16(etSRK))...)); rc != rcSuccess {
		t.Fatalf("ChangeAuthOwner SRK: rc %#x", rc)
	}
	if !bytes.Equal(tp.ps.SRK.Auth[:], newSRK) {
		t.Error("SRK secret not changed")
	}
	if rc, _ := ownerRun(t, tp, newOwner, ordChangeAuthOwner, append(append(u16(pidADCP), enc...), u16(uint16(etOwner))...)); rc != rcBadMode {
		t.Errorf("on OIAP: rc %#x", rc)
	}
	out = mustRun(t, tp, ordOSAP, u16(uint16(etOwner)), u32(0), odd)
	h, even, shared = binary.BigEndian.Uint32(out), out[4:24], hmac1(newOwner, out[24:44], odd)
	if rc, _ := authRun(t, tp, h, even, shared, ordChangeAuthOwner, nil, append(append(u16(pidADCP), enc...), u16(7)...)); rc != rcWrongEntityType {
		t.Errorf("entity type 7: rc %#x", rc)
	}
}

func TestOSAPSRK(t *testing.T) {
	tp, _ := ownedTPM(t)
	odd := make([]byte, 20)
	for _, c := range [][]byte{append(u16(uint16(etSRK)), u32(khSRK)...), append(u16(uint16(etKeyHandle)), u32(khSRK)...)} {
		out := mustRun(t, tp, ordOSAP, c, odd)
		s := tp.sessions[binary.BigEndian.Uint32(out)]
		if s.entityType != etSRK || !hmac.Equal(s.sharedSecret[:], hmac1(testSRK, out[24:44], odd)) {
			t.Errorf("OSAP %x: session %+v", c, s)
		}
	}
	wantRC(t, tp, rcInvalidKeyHandle, 0, tagRquCommand, ordOSAP, u16(uint16(etKeyHandle)), u32(0x01000000), odd)
}

func TestDictionaryAttackLockout(t *testing.T) {
	tp, _ := ownedTPM(t)
	now := time.Unix(1000, 0)
	tp.now = func() time.Time { return now }
	wrong := sha([]byte("wrong"))
	for i := 0; i < lockoutThreshold; i++ {
		if rc, _ := ownerRun(t, tp, wrong, ordOwnerReadInternalPub, u32(khEK)); rc != rcAuthFail {
			t.Fatalf("failure %d: rc %#x", i, rc)
		}
	}
	// A success does not uncount the failures.
	if rc, _ := ownerRun(t, tp, testOwner, ordOwnerReadInternalPub, u32(khEK)); rc != rcSuccess {
		t.Fatalf("after %d failures: rc %#x", lockoutThreshold, rc)
	}
	ownerRun(t, tp, wrong, ordOwnerReadInternalPub, u32(khEK))
	if rc, _ := ownerRun(t, tp, testOwner, ordOwnerReadInternalPub, u32(khEK)); rc != rcDefendLockRunning {
		t.Fatalf("in the lockout: rc %#x", rc)
	}
	// Unauthorized commands still run.
	mustRun(t, tp, ordGetRandom, u32(4))
	now = now.Add(time.Second)
	if rc, _ := ownerRun(t, tp, testOwner, ordOwnerReadInternalPub, u32(khEK)); rc != rcSuccess {
		t.Fatalf("after the lockout: rc %#x", rc)
	}
	// The next failure doubles the period.
	ownerRun(t, tp, wrong, ordOwnerReadInternalPub, u32(khEK))
	now = now.Add(time.Second)
	if rc, _ := ownerRun(t, tp, testOwner, ordOwnerReadInternalPub, u32(khEK)); rc != rcDefendLockRunning {
		t.Fatalf("1 s into a 2 s lockout: rc %#x", rc)
	}
	// A wrong ResetLockValue disables it for the period; the right one
	// after it clears the count.
	if rc, _ := ownerRun(t, tp, wrong, ordResetLockValue, nil); rc != rcAuthFail {
		t.Fatalf("wrong ResetLockValue: rc %#x", rc)
	}
	if rc, _ := ownerRun(t, tp, testOwner, ordResetLockValue, nil); rc != rcAuthFail {
		t.Fatalf("ResetLockValue while disabled: rc %#x", rc)
	}
	now = now.Add(8 * time.Second)
	if rc, _ := ownerRun(t, tp, testOwner, ordResetLockValue, nil); rc != rcSuccess {
		t.Fatalf("ResetLockValue: rc %#x", rc)
	}
	if tp.da.failCount != 0 {
		t.Errorf("failure count %d after ResetLockValue", tp.da.failCount)
	}
	// A power cycle clears the count, as libtpms' STCLEAR data.
	for i := 0; i <= lockoutThreshold; i++ {
		ownerRun(t, tp, wrong, ordOwnerReadInternalPub, u32(khEK))
	}
	tp.Reset()
	mustRun(t, tp, ordStartup, u16(stClear))
	if rc, _ := ownerRun(t, tp, testOwner, ordOwnerReadInternalPub, u32(khEK)); rc != rcSuccess {
		t.Fatalf("after a power cycle: rc %#x", rc)
	}
}

func TestOwnerClear(t *testing.T) {
	tp, _ := ownedTPM(t)
	if rc, _ := ownerRun(t, tp, sha([]byte("wrong")), ordOwnerClear, nil); rc != rcAuthFail {
		t.Errorf("wrong secret: rc %#x", rc)
	}
	// ForceClear needs physical presence, which nothing asserts.
	wantRC(t, tp, rcBadPresence, 0, tagRquCommand, ordForceClear)
	tp.NVChanged()
	if rc, _ := ownerRun(t, tp, testOwner, ordOwnerClear, nil); rc != rcSuccess {
		t.Fatalf("OwnerClear: rc %#x", rc)
	}
	if !tp.NVChanged() {
		t.Error("OwnerClear did not report an NV change")
	}
	f := tp.ps.Flags
	if tp.ps.Owned || tp.ps.SRK != nil || tp.ps.TPMProof != (digest{}) || !f.ReadPubek || !f.Disable || !f.Deactivated || !f.Ownership {
		t.Errorf("after OwnerClear: owned %v flags %+v", tp.ps.Owned, f)
	}
	if len(tp.sessions) != 0 {
		t.Error("sessions survived OwnerClear")
	}
	wantRC(t, tp, rcDisabled, 0, tagRquCommand, ordReadPubek, make([]byte, 20))
}

func TestDisableOwnerClearAndOwnerSetDisable(t *testing.T) {
	tp, _ := ownedTPM(t)
	if rc, _ := ownerRun(t, tp, testOwner, ordDisableOwnerClear, nil); rc != rcSuccess {
		t.Fatalf("DisableOwnerClear: rc %#x", rc)
	}
	if rc, _ := ownerRun(t, tp, testOwner, ordOwnerClear, nil); rc != rcClearDisabled {
		t.Errorf("OwnerClear: rc %#x", rc)
	}
	if rc, _ := ownerRun(t, tp, testOwner, ordOwnerSetDisable, []byte{1}); rc != rcSuccess {
		t.Fatalf("OwnerSetDisable: rc %#x", rc)
	}
	wantRC(t, tp, rcDisabled, 0, tagRquCommand, ordGetRandom, u32(4))
	if rc, _ := ownerRun(t, tp, testOwner, ordOwnerSetDisable, []byte{0}); rc != rcSuccess {
		t.Fatalf("OwnerSetDisable FALSE: rc %#x", rc)
	}
	mustRun(t, tp, ordGetRandom, u32(4))
}

func TestOwnershipSurvivesSaveLoad(t *testing.T) {
	tp, srkPub := ownedTPM(t)
	blob, err := tp.Save()
	if err != nil {
		t.Fatal(err)
	}
	tp2, err := New(Config{State: blob})
	if err != nil {
		t.Fatal(err)
	}
	mustRun(t, tp2, ordStartup, u16(stClear))
	_, pub := ownerRun(t, tp2, testOwner, ordOwnerReadInternalPub, u32(khSRK))
	var k tpmKey
	k.unmarshal(&reader{b: srkPub})
	if !bytes.HasSuffix(pub, k.PubKey) {
		t.Error("SRK changed across Save/Load")
	}
	if tp2.ps.TPMProof != tp.ps.TPMProof || tp2.ps.SRK.Auth != tp.ps.SRK.Auth {
		t.Error("tpmProof or SRK secret changed across Save/Load")
	}
	wantRC(t, tp2, rcDisabledCmd, 0, tagRquCommand, ordReadPubek, make([]byte, 20))
	// An owner without an SRK is a damaged blob.
	tp2.ps.SRK = nil
	bad, _ := tp2.Save()
	if _, err := New(Config{State: bad}); err == nil {
		t.Error("an owned state without SRK loaded")
	}
}

// frame wraps a JSON payload in the state blob frame of state.go.
func frame(payload []byte) []byte {
	b := append([]byte{}, stateMagic[:]...)
	b = binary.BigEndian.AppendUint32(b, stateVersion)
	b = binary.BigEndian.AppendUint32(b, uint32(len(payload)))
	b = append(b, payload...)
	sum := sha256.Sum256(b)
	return append(b, sum[:]...)
}

// A blob written before ownership existed (no SRK, no tpmProof) loads as
// an unowned TPM that can be owned.
func TestStateFromBeforeOwnershipLoads(t *testing.T) {
	blob, err := manufactured()
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(blob[16:len(blob)-sha256.Size], &m); err != nil {
		t.Fatal(err)
	}
	delete(m, "SRK")
	delete(m, "TPMProof")
	delete(m, "NV")
	delete(m, "NoOwnerNVWrite")
	delete(m, "Counters")
	payload, _ := json.Marshal(m)
	tp, err := New(Config{State: frame(payload)})
	if err != nil {
		t.Fatal(err)
	}
	mustRun(t, tp, ordStartup, u16(stClear))
	if rc, _ := ownerRun(t, tp, testOwner, ordTakeOwnership, takeOwnershipParams(t, tp, testOwner, testSRK, srkParamsKey(keyUsageStorage, 0, 2048))); rc != rcSuccess {
		t.Fatalf("TakeOwnership: rc %#x", rc)
	}
}
