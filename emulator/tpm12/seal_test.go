package tpm12

import (
	"bytes"
	"crypto/hmac"
	"encoding/binary"
	"testing"
)

var testData = sha([]byte("data"))

// sealRun seals data under the SRK (secret srkAuth) with pcrInfo and the
// data secret testData, on an OSAP session.
func sealRun(t testing.TB, tp *TPM, srkAuth, pcrInfo, data []byte) (uint32, []byte) {
	t.Helper()
	odd := bytes.Repeat([]byte{0x51}, 20)
	out := mustRun(t, tp, ordOSAP, u16(uint16(etSRK)), u32(khSRK), odd)
	h, even, shared := binary.BigEndian.Uint32(out), out[4:24], hmac1(srkAuth, out[24:44], odd)
	pad := sha(shared, even)
	enc := make([]byte, 20)
	for i := range enc {
		enc[i] = testData[i] ^ pad[i]
	}
	p := append(append([]byte{}, enc...), u32(uint32(len(pcrInfo)))...)
	p = append(append(p, pcrInfo...), u32(uint32(len(data)))...)
	return authRun(t, tp, h, even, shared, ordSeal, u32(khSRK), append(p, data...))
}

// unsealRun unseals blob on two OIAP sessions keyed by srkAuth and
// dataAuth, checking both response authorizations.
func unsealRun(t testing.TB, tp *TPM, srkAuth, dataAuth, blob []byte) (uint32, []byte) {
	t.Helper()
	o1, o2 := mustRun(t, tp, ordOIAP), mustRun(t, tp, ordOIAP)
	odd1, odd2 := bytes.Repeat([]byte{1}, 20), bytes.Repeat([]byte{2}, 20)
	in := sha(u32(ordUnseal), blob)
	mac1 := hmac1(srkAuth, in, o1[4:], odd1, []byte{0})
	mac2 := hmac1(dataAuth, in, o2[4:], odd2, []byte{0})
	rsp := tp.Process(command(tagRquAuth2, ordUnseal, u32(khSRK), blob, o1[:4], odd1, []byte{0}, mac1, o2[:4], odd2, []byte{0}, mac2), 0)
	rc := binary.BigEndian.Uint32(rsp[6:])
	if rc != rcSuccess {
		return rc, nil
	}
	n := len(rsp)
	out := rsp[10 : n-82]
	od := sha(u32(0), u32(ordUnseal), out)
	a1, a2 := rsp[n-82:n-41], rsp[n-41:]
	if !hmac.Equal(a1[21:], hmac1(srkAuth, od, a1[:20], odd1, a1[20:21])) || !hmac.Equal(a2[21:], hmac1(dataAuth, od, a2[:20], odd2, a2[20:21])) {
		t.Error("Unseal response authorization does not verify")
	}
	return rc, out[4:]
}

// pcrInfoFor is a TPM_PCR_INFO binding to the current value of pcr.
func pcrInfoFor(tp *TPM, pcr int) []byte {
	info := pcrInfo{Release: pcrSelection{Select: make([]byte, 3)}}
	info.Release.Select[pcr/8] |= 1 << (pcr % 8)
	info.DigestAtRelease = tp.compositeHash(info.Release)
	w := &writer{}
	info.marshal(w)
	return w.b
}

func TestSealUnseal(t *testing.T) {
	tp, _ := ownedTPM(t)
	secret := []byte("a secret")
	rc, blob := sealRun(t, tp, testSRK, pcrInfoFor(tp, 16), secret)
	if rc != rcSuccess {
		t.Fatalf("Seal: rc %#x", rc)
	}
	if rc, got := unsealRun(t, tp, testSRK, testData, blob); rc != rcSuccess || !bytes.Equal(got, secret) {
		t.Fatalf("Unseal: rc %#x %q", rc, got)
	}
	if rc, _ := unsealRun(t, tp, testSRK, testSRK, blob); rc != rcAuth2Fail {
		t.Errorf("wrong data secret: rc %#x", rc)
	}
	if rc, _ := unsealRun(t, tp, testData, testData, blob); rc != rcAuthFail {
		t.Errorf("wrong SRK secret: rc %#x", rc)
	}
	bad := append([]byte{}, blob...)
	bad[len(bad)-1] ^= 1
	if rc, _ := unsealRun(t, tp, testSRK, testData, bad); rc != rcNotSealedBlob {
		t.Errorf("tampered encData: rc %#x", rc)
	}
	bad = append([]byte{}, blob...)
	bad[4+4+5] ^= 1 // digestAtRelease
	if rc, _ := unsealRun(t, tp, testSRK, testData, bad); rc != rcNotSealedBlob {
		t.Errorf("tampered sealInfo: rc %#x", rc)
	}
	mustRun(t, tp, ordExtend, u32(16), make([]byte, 20))
	if rc, _ := unsealRun(t, tp, testSRK, testData, blob); rc != rcWrongPCRVal {
		t.Errorf("after an extend: rc %#x", rc)
	}
	// Refusals of Seal.
	if rc, _ := sealRun(t, tp, testSRK, nil, nil); rc != rcBadParameter {
		t.Errorf("no data: rc %#x", rc)
	}
	if rc, _ := sealRun(t, tp, testSRK, nil, make([]byte, 150)); rc != rcEncryptError {
		t.Errorf("150 bytes: rc %#x", rc)
	}
	if rc, _ := sealRun(t, tp, testSRK, []byte{0, 3, 0}, secret); rc != rcBadIndex {
		t.Errorf("truncated pcrInfo: rc %#x", rc)
	}
	if rc, _ := sealRun(t, tp, testData, nil, secret); rc != rcAuthFail {
		t.Errorf("wrong SRK secret: rc %#x", rc)
	}
	// Seal needs an OSAP session: the ADIP needs its shared secret.
	p := append(append(u32(khSRK), make([]byte, 20)...), 0, 0, 0, 0, 0, 0, 0, 1, 7)
	if rc, _ := ownerRun(t, tp, testSRK, ordSeal, p); rc != rcBadMode {
		t.Errorf("on OIAP: rc %#x", rc)
	}
}

func TestSealLongAndLocality(t *testing.T) {
	tp, _ := ownedTPM(t)
	sel := pcrSelection{Select: []byte{0, 0, 1}}
	info := pcrInfo{Long: true, LocalityAtCreation: 0x1F, LocalityAtRelease: 0x02, Creation: sel, Release: sel, DigestAtRelease: tp.compositeHash(sel)}
	w := &writer{}
	info.marshal(w)
	rc, blob := sealRun(t, tp, testSRK, w.b, []byte("x"))
	if rc != rcSuccess || binary.BigEndian.Uint16(blob) != tagStoredData12 {
		t.Fatalf("Seal: rc %#x %x", rc, blob)
	}
	if rc, _ := unsealRun(t, tp, testSRK, testData, blob); rc != rcBadLocality {
		t.Errorf("at locality 0: rc %#x", rc)
	}
	info.LocalityAtCreation = 0
	w = &writer{}
	info.marshal(w)
	if rc, _ := sealRun(t, tp, testSRK, w.b, []byte("x")); rc != rcBadIndex {
		t.Errorf("localityAtCreation 0: rc %#x", rc)
	}
}

// A blob sealed by one owner does not unseal after the TPM changed
// hands: the SRK and tpmProof are new.
func TestSealedBlobDoesNotOutliveTheOwner(t *testing.T) {
	tp, _ := ownedTPM(t)
	_, blob := sealRun(t, tp, testSRK, nil, []byte("x"))
	other, _ := ownedTPM(t)
	if rc, _ := unsealRun(t, other, testSRK, testData, blob); rc != rcNotSealedBlob {
		t.Errorf("another TPM's blob: rc %#x", rc)
	}
}

// A blob sealed before Save unseals after Load: the SRK and tpmProof
// are durable.
func TestSealedBlobSurvivesSaveLoad(t *testing.T) {
	tp, _ := ownedTPM(t)
	rc, blob := sealRun(t, tp, testSRK, pcrInfoFor(tp, 16), []byte("kept"))
	if rc != rcSuccess {
		t.Fatalf("Seal: rc %#x", rc)
	}
	state, err := tp.Save()
	if err != nil {
		t.Fatal(err)
	}
	tp2, err := New(Config{State: state})
	if err != nil {
		t.Fatal(err)
	}
	mustRun(t, tp2, ordStartup, u16(stClear))
	if rc, got := unsealRun(t, tp2, testSRK, testData, blob); rc != rcSuccess || string(got) != "kept" {
		t.Errorf("Unseal after Load: rc %#x %q", rc, got)
	}
}
