package deepquote

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"testing"

	"github.com/google/go-tpm/tpm2"
)

// fakeQuote signs a TPMS_ATTEST the way a TPM's TPM2_Quote would, with a
// key of the test's own: Verify's own logic is under test here (the real
// TPM's quotes are checked in mgrdomain/manager and vtpmdomain/vtpm).
func fakeQuote(t testing.TB, k *ecdsa.PrivateKey, b Binding, pcrDigest []byte) Answer {
	t.Helper()
	att := tpm2.TPMSAttest{
		Magic:     tpm2.TPMGeneratedValue,
		Type:      tpm2.TPMSTAttestQuote,
		ExtraData: tpm2.TPM2BData{Buffer: b.QualifyingData()},
		Attested: tpm2.NewTPMUAttest(tpm2.TPMSTAttestQuote, &tpm2.TPMSQuoteInfo{
			PCRSelect: tpm2.TPMLPCRSelection{PCRSelections: []tpm2.TPMSPCRSelection{{Hash: tpm2.TPMAlgSHA256, PCRSelect: []byte{0x15, 0, 1}}}},
			PCRDigest: tpm2.TPM2BDigest{Buffer: pcrDigest},
		}),
	}
	ab := tpm2.Marshal(att)
	d := sha256.Sum256(ab)
	r, s, err := ecdsa.Sign(rand.Reader, k, d[:])
	if err != nil {
		t.Fatal(err)
	}
	sig := tpm2.TPMTSignature{SigAlg: tpm2.TPMAlgECDSA, Signature: tpm2.NewTPMUSignature(tpm2.TPMAlgECDSA, &tpm2.TPMSSignatureECC{
		Hash: tpm2.TPMAlgSHA256, SignatureR: tpm2.TPM2BECCParameter{Buffer: r.Bytes()}, SignatureS: tpm2.TPM2BECCParameter{Buffer: s.Bytes()}})}
	return Answer{Binding: b, HWFamily: HW20, Attest: ab, Signature: tpm2.Marshal(sig)}
}

func testBundle(t testing.TB) (*ecdsa.PrivateKey, *Bundle) {
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	vals := [][]byte{bytes.Repeat([]byte{1}, 32), bytes.Repeat([]byte{2}, 32)}
	b := Binding{Nonce: []byte("nonce"), VTPM: [16]byte{1}, Group: [16]byte{2}, VTPMPCRs: 1 | 1<<16, VTPMPCRDigest: PCRDigest(vals)}
	return k, &Bundle{Answer: fakeQuote(t, k, b, make([]byte, 32)), VTPMPCRValues: vals}
}

func TestRoundTripAndVerify(t *testing.T) {
	k, q := testBundle(t)
	enc, err := q.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if len(enc) > MaxBundle {
		t.Fatalf("%d bytes", len(enc))
	}
	p, err := Parse(enc)
	if err != nil {
		t.Fatal(err)
	}
	u := [16]byte{1}
	r, err := Verify(p, Trust{AK: &k.PublicKey, Nonce: []byte("nonce"), VTPM: &u, VTPMPCRs: map[int][]byte{16: bytes.Repeat([]byte{2}, 32)}})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.HWPCRs) != 4 || r.HWPCRs[3] != 16 || r.Approval != -1 {
		t.Errorf("result %+v", r)
	}
	ae, _ := q.Answer.Marshal()
	if a, err := ParseAnswer(ae); err != nil || !bytes.Equal(a.Attest, q.Attest) {
		t.Fatalf("answer round trip: %v", err)
	}
	if _, err := Parse(ae); !errors.Is(err, ErrFormat) {
		t.Error("an answer parsed as a bundle")
	}
	for i := range enc {
		if _, err := Parse(enc[:i]); err == nil {
			t.Fatalf("a bundle cut at %d parsed", i)
		}
	}
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if _, err := Verify(p, Trust{AK: &other.PublicKey, Nonce: []byte("nonce")}); !isLink(err, LinkSignature) {
		t.Errorf("another key: %v", err)
	}
	p.VTPMPCRValues[0][0] ^= 1
	if _, err := Verify(p, Trust{AK: &k.PublicKey, Nonce: []byte("nonce")}); !isLink(err, LinkBinding) {
		t.Errorf("altered PCR value: %v", err)
	}
}

func isLink(err error, l string) bool {
	var le *LinkError
	return errors.As(err, &le) && le.Link == l
}

func TestCommand(t *testing.T) {
	c, err := EncodeCommand(make([]byte, 64), 1<<23)
	if err != nil {
		t.Fatal(err)
	}
	if n, m, ok := DecodeCommand(c[10:]); !ok || len(n) != 64 || m != 1<<23 {
		t.Fatal("command round trip")
	}
	if _, err := EncodeCommand(make([]byte, 65), 0); err == nil {
		t.Error("a 65-byte nonce")
	}
	if _, err := EncodeCommand(nil, 1<<24); err == nil {
		t.Error("PCR 24")
	}
	if _, err := DecodeResponse([]byte{0x80, 1, 0, 0, 0, 10, 0, 0, 9, 0x22}); err == nil {
		t.Error("TPM_RC_RETRY decoded as a quote")
	}
}

// FuzzParse: bundles, answers, commands and responses from a guest, a
// vTPM domain or a file decode or are refused, never a panic; what
// decodes encodes back to the same bytes, and Verify of it never panics.
func FuzzParse(f *testing.F) {
	k, q := testBundle(f)
	enc, _ := q.Marshal()
	ae, _ := q.Answer.Marshal()
	c, _ := EncodeCommand([]byte("n"), 3)
	f.Add(enc)
	f.Add(ae)
	f.Add(c)
	f.Fuzz(func(t *testing.T, b []byte) {
		if q, err := Parse(b); err == nil {
			if re, err := q.Marshal(); err != nil || !bytes.Equal(re, b) {
				t.Fatalf("re-encoding differs: %v", err)
			}
			Verify(q, Trust{AK: &k.PublicKey})
		}
		if a, err := ParseAnswer(b); err == nil {
			if re, err := a.Marshal(); err != nil || !bytes.Equal(re, b) {
				t.Fatalf("answer re-encoding differs: %v", err)
			}
		}
		if len(b) >= 10 {
			DecodeCommand(b[10:])
		}
		DecodeResponse(b)
	})
}
