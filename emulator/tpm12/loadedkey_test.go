package tpm12

import (
	"crypto/hmac"
	"crypto/rsa"
	"encoding/binary"
	"errors"
	"testing"
)

// testChildKey is a TPM_KEY12 of usage and bits with its private key,
// not yet wrapped.
func testChildKey(t testing.TB, tp *TPM, usage uint16, bits int) (*tpmKey, *rsa.PrivateKey) {
	t.Helper()
	priv, err := rsa.GenerateKey(tp.rand, bits)
	if err != nil {
		t.Fatal(err)
	}
	w := &writer{}
	(&rsaKeyParms{KeyLength: uint32(bits), NumPrimes: 2}).marshal(w)
	k := &tpmKey{Tag: tagKey12, KeyUsage: usage, AuthDataUsage: authAlways,
		AlgorithmParms: keyParms{AlgorithmID: algRSA, EncScheme: esRSAESOAEPSHA1MGF1, SigScheme: ssNone, Parms: w.b},
		PubKey:         priv.N.FillBytes(make([]byte, bits/8))}
	return k, priv
}

func rcIs(err error, rc uint32) bool {
	var e *tpmError
	return errors.As(err, &e) && e.rc == rc
}

func TestLoadedKeyHandles(t *testing.T) {
	tp := startedTPM(t)
	if _, err := tp.loadedKey(khSRK); !rcIs(err, rcKeyNotFound) {
		t.Errorf("SRK before ownership: %v", err)
	}
	tp, _ = ownedTPM(t)
	srk, err := tp.loadedKey(khSRK)
	if err != nil || !srk.isSRK() || srk.key.KeyUsage != keyUsageStorage || srk.priv == nil {
		t.Fatalf("SRK: %+v %v", srk, err)
	}
	for h, rc := range map[uint32]uint32{khEK: rcKeyNotFound, 0x40000001: rcInvalidResource, 0x01000000: rcInvalidKeyHandle, 0: rcInvalidKeyHandle} {
		if _, err := tp.loadedKey(h); !rcIs(err, rc) {
			t.Errorf("handle %#x: %v, want rc %#x", h, err, rc)
		}
	}
	for i := 0; i < keySlotsMax; i++ {
		h, err := tp.addKey(&loadedKey{key: srk.key, priv: srk.priv})
		if err != nil || h == 0 || h&0xFF000000 == 0x40000000 {
			t.Fatalf("addKey %d: %#x %v", i, h, err)
		}
		if k, err := tp.loadedKey(h); err != nil || k.handle != h {
			t.Fatalf("loadedKey(%#x): %v", h, err)
		}
	}
	if _, err := tp.addKey(&loadedKey{}); !rcIs(err, rcNoSpace) {
		t.Errorf("key beyond the slots: %v", err)
	}
	hs := tp.keyHandles()
	if len(hs) != keySlotsMax {
		t.Fatalf("handles %x", hs)
	}
	if err := tp.evictKey(hs[0]); err != nil {
		t.Fatal(err)
	}
	if err := tp.evictKey(hs[0]); !rcIs(err, rcInvalidKeyHandle) {
		t.Errorf("evicting twice: %v", err)
	}
	tp.Reset()
	if len(tp.keys) != 0 {
		t.Error("keys survived _TPM_Init")
	}
}

func TestWrapUnwrapKey(t *testing.T) {
	tp, _ := ownedTPM(t)
	srk, _ := tp.loadedKey(khSRK)
	k, priv := testChildKey(t, tp, keyUsageBind, 1024)
	asym := &storeAsymKey{UsageAuth: digest(sha([]byte("use"))), MigrationAuth: tp.ps.TPMProof, PrivKey: keyPrime(priv)}
	if err := tp.wrapKey(srk, k, asym); err != nil {
		t.Fatal(err)
	}
	lk, err := tp.unwrapKey(srk, k)
	if err != nil {
		t.Fatal(err)
	}
	if lk.usageAuth != asym.UsageAuth || lk.migrationAuth != tp.ps.TPMProof || lk.priv.N.Cmp(priv.N) != 0 || lk.priv.Primes[0].Cmp(priv.Primes[0]) != 0 || lk.parent != khSRK {
		t.Errorf("unwrapped %+v", lk)
	}
	// A key whose public part changed is not the key its encData
	// belongs to.
	k2 := *k
	k2.KeyUsage = keyUsageSigning
	if _, err := tp.unwrapKey(srk, &k2); !rcIs(err, rcAuthFail) {
		t.Errorf("altered key: %v", err)
	}
	k3 := *k
	k3.EncData = append([]byte{}, k.EncData...)
	k3.EncData[10] ^= 1
	if _, err := tp.unwrapKey(srk, &k3); !rcIs(err, rcDecryptError) {
		t.Errorf("altered encData: %v", err)
	}
	// Only storage keys wrap.
	if _, err := tp.unwrapKey(lk, k); !rcIs(err, rcInvalidKeyUsage) {
		t.Errorf("bind key as parent: %v", err)
	}
}

func TestKeyPCRBinding(t *testing.T) {
	tp, _ := ownedTPM(t)
	sel := pcrSelection{Select: []byte{0, 0, 1}}
	k := &loadedKey{pcr: &pcrInfo{Long: true, LocalityAtRelease: 0x01, Release: sel, DigestAtRelease: tp.compositeHash(sel)}}
	if err := k.checkPCRs(tp); err != nil {
		t.Fatal(err)
	}
	tp.locality = 2
	if err := k.checkPCRs(tp); !rcIs(err, rcWrongPCRVal) {
		t.Errorf("wrong locality: %v", err)
	}
	tp.locality = 0
	mustRun(t, tp, ordExtend, u32(16), make([]byte, 20))
	if err := k.checkPCRs(tp); !rcIs(err, rcWrongPCRVal) {
		t.Errorf("PCR extended: %v", err)
	}
	if err := (&loadedKey{}).checkPCRs(tp); err != nil {
		t.Errorf("no PCR binding: %v", err)
	}
}

func TestOSAPOnLoadedKey(t *testing.T) {
	tp, _ := ownedTPM(t)
	srk, _ := tp.loadedKey(khSRK)
	use := sha([]byte("use"))
	h, err := tp.addKey(&loadedKey{key: srk.key, priv: srk.priv, usageAuth: digest(use)})
	if err != nil {
		t.Fatal(err)
	}
	odd := make([]byte, 20)
	out := mustRun(t, tp, ordOSAP, u16(uint16(etKeyHandle)), u32(h), odd)
	s := tp.sessions[binary.BigEndian.Uint32(out)]
	if s.entityType != etKeyHandle || s.entityValue != h || !hmac.Equal(s.sharedSecret[:], hmac1(use, out[24:44], odd)) {
		t.Errorf("OSAP on %#x: session %+v", h, s)
	}
	wantRC(t, tp, rcInvalidKeyHandle, 0, tagRquCommand, ordOSAP, u16(uint16(etKeyHandle)), u32(h+1), odd)
	wantRC(t, tp, rcBadCounter, 0, tagRquCommand, ordOSAP, u16(uint16(etCounter)), u32(5), odd)
	wantRC(t, tp, rcBadIndex, 0, tagRquCommand, ordOSAP, u16(uint16(etNV)), u32(0x1234), odd)
}
