package deepquote

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"errors"
	"sync"
	"testing"

	"github.com/google/go-tpm/tpm2"
	"github.com/xenvtpm/xenvtpm/mgrdomain/saa"
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
	b := Binding{Nonce: []byte("nonce"), VTPM: [16]byte{1}, Group: [16]byte{2}, VTPMBank: BankSHA256, VTPMPCRs: 1 | 1<<16, VTPMPCRDigest: PCRDigest(vals)}
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

// The TPM 1.2 personality's SHA-1 PCRs: 20-byte values round trip and
// verify; the bank is bound, so a bundle claiming the other bank is
// another binding.
func TestSHA1Bank(t *testing.T) {
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	vals := [][]byte{bytes.Repeat([]byte{1}, 20), bytes.Repeat([]byte{2}, 20)}
	b := Binding{Nonce: bytes.Repeat([]byte{9}, 20), VTPM: [16]byte{1}, VTPMBank: BankSHA1, VTPMPCRs: 1<<4 | 1<<5, VTPMPCRDigest: PCRDigest(vals)}
	q := &Bundle{Answer: fakeQuote(t, k, b, make([]byte, 32)), VTPMPCRValues: vals}
	enc, err := q.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	p, err := Parse(enc)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Verify(p, Trust{AK: &k.PublicKey, Nonce: b.Nonce, VTPMPCRs: map[int][]byte{5: vals[1]}}); err != nil {
		t.Fatal(err)
	}
	other := b
	other.VTPMBank = BankSHA256
	if bytes.Equal(other.QualifyingData(), b.QualifyingData()) {
		t.Error("the bank is not bound")
	}
	p.Binding.VTPMBank = 0x0012 // SM3_256: not a bank a Binding names
	if _, err := p.Marshal(); err == nil {
		t.Error("a bundle of an unknown bank encoded")
	}
	q.VTPMPCRValues = [][]byte{bytes.Repeat([]byte{1}, 32), vals[1]}
	if _, err := q.Marshal(); err == nil {
		t.Error("a SHA-256 value in a SHA-1 bundle encoded")
	}
}

// TPM_ORD_DeepQuote's parameters: vtpm-stubdom's shape, with or without
// extraInfoFlags; what it must not ask for is refused.
func TestCommand12(t *testing.T) {
	nonce := bytes.Repeat([]byte{7}, 20)
	c, err := EncodeCommand12(nonce, 1<<23|1<<4)
	if err != nil {
		t.Fatal(err)
	}
	if n, m, ok := DecodeCommand12(c[10:]); !ok || !bytes.Equal(n, nonce) || m != 1<<23|1<<4 {
		t.Fatal("command round trip")
	}
	sel := func(b ...byte) []byte { return append([]byte{0, byte(len(b))}, b...) }
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	for _, tc := range []struct {
		name string
		p    []byte
		ok   bool
		pcrs uint32
	}{
		{"one-byte selection", cat(nonce, sel(0x30), sel()), true, 0x30},
		{"flags 0", cat(nonce, sel(1, 0, 0), sel(0, 0, 0), []byte{0, 0, 0, 0}), true, 1},
		{"empty vTPM selection", cat(nonce, sel(), sel()), true, 0},
		{"flags set", cat(nonce, sel(1), sel(), []byte{0, 0, 0, 8}), false, 0},
		{"hardware PCRs", cat(nonce, sel(1), sel(1)), false, 0},
		{"4-byte selection", cat(nonce, sel(1, 0, 0, 0), sel()), false, 0},
		{"no hardware selection", cat(nonce, sel(1)), false, 0},
		{"short nonce", cat(nonce[:19], sel(1), sel()), false, 0},
		{"trailing byte", cat(nonce, sel(1), sel(), []byte{0}), false, 0},
		{"flags and more", cat(nonce, sel(1), sel(), make([]byte, 5)), false, 0},
	} {
		if _, m, ok := DecodeCommand12(tc.p); ok != tc.ok || m != tc.pcrs {
			t.Errorf("%s: ok %v, PCRs %#x", tc.name, ok, m)
		}
	}
	if _, err := EncodeCommand12(nonce[:16], 1); err == nil {
		t.Error("a 16-byte nonce")
	}
	if _, err := DecodeResponse([]byte{0, 0xC4, 0, 0, 0, 10, 0, 0, 8, 0}); !errors.As(err, new(*ResponseError)) {
		t.Errorf("TPM_RETRY: %v", err)
	}
	if _, err := DecodeResponse([]byte{0, 0xC4, 0, 0, 0, 14, 0, 0, 0, 0, 0, 0, 0, 1}); !errors.Is(err, ErrFormat) {
		t.Errorf("a 1.2 response whose size field lies: %v", err)
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
	k12, q12 := testBundle12(f)
	enc12, _ := q12.Marshal()
	ae12, _ := q12.Answer.Marshal()
	f.Add(enc12)
	f.Add(ae12)
	f.Add(c)
	c12, _ := EncodeCommand12(make([]byte, 20), 3)
	f.Add(c12)
	f.Fuzz(func(t *testing.T, b []byte) {
		if q, err := Parse(b); err == nil {
			if re, err := q.Marshal(); err != nil || !bytes.Equal(re, b) {
				t.Fatalf("re-encoding differs: %v", err)
			}
			Verify(q, Trust{AK: &k.PublicKey})
			Verify(q, Trust{AK: &k12.PublicKey})
		}
		if a, err := ParseAnswer(b); err == nil {
			if re, err := a.Marshal(); err != nil || !bytes.Equal(re, b) {
				t.Fatalf("answer re-encoding differs: %v", err)
			}
		}
		if len(b) >= 10 {
			DecodeCommand(b[10:])
			if n, m, ok := DecodeCommand12(b[10:]); ok {
				c, err := EncodeCommand12(n, m)
				if err != nil {
					t.Fatalf("a decoded TPM 1.2 command does not encode: %v", err)
				}
				if n2, m2, ok := DecodeCommand12(c[10:]); !ok || !bytes.Equal(n2, n) || m2 != m {
					t.Fatal("a TPM 1.2 command does not decode to what it encoded")
				}
			}
		}
		DecodeResponse(b)
	})
}

// fakeQuote12 signs a TPM_QUOTE_INFO (TPM 1.2 Part 2, 11.3) the way
// TPM_Quote would with an identity key, over PCRs 0 and 7 with values
// vals.
func fakeQuote12(t testing.TB, k *rsa.PrivateKey, b Binding, vals [][]byte) Answer {
	t.Helper()
	comp, err := saa.Composite12([]uint{0, 7}, vals)
	if err != nil {
		t.Fatal(err)
	}
	n := b.Nonce12()
	info := append(append(append([]byte{1, 1, 0, 0}, "QUOT"...), comp[:]...), n[:]...)
	d := sha1.Sum(info)
	sig, err := rsa.SignPKCS1v15(rand.Reader, k, crypto.SHA1, d[:])
	if err != nil {
		t.Fatal(err)
	}
	return Answer{Binding: b, HWFamily: HW12, Attest: info, Signature: sig, HWPCRs: 1 | 1<<7, HWPCRValues: vals}
}

var rsaKey12 = sync.OnceValue(func() *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return k
})

func testBundle12(t testing.TB) (*rsa.PrivateKey, *Bundle) {
	k := rsaKey12()
	vals := [][]byte{bytes.Repeat([]byte{1}, 32)}
	hw := [][]byte{bytes.Repeat([]byte{3}, 20), bytes.Repeat([]byte{4}, 20)}
	b := Binding{Nonce: []byte("nonce"), VTPM: [16]byte{1}, Group: [16]byte{2}, VTPMBank: BankSHA256, VTPMPCRs: 1 << 16, VTPMPCRDigest: PCRDigest(vals)}
	return k, &Bundle{Answer: fakeQuote12(t, k, b, hw), VTPMPCRValues: vals}
}

// The HW12 family: encoding round trip, and each link Verify checks
// differently for TPM 1.2 (signature, nonce as the binding's digest,
// composite of the carried PCR values, a Family12 approval).
func TestVerify12(t *testing.T) {
	k, q := testBundle12(t)
	enc, err := q.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	p, err := Parse(enc)
	if err != nil {
		t.Fatal(err)
	}
	if re, _ := p.Marshal(); !bytes.Equal(re, enc) || p.HWPCRs != q.HWPCRs || len(p.HWPCRValues) != 2 {
		t.Fatal("HW12 round trip")
	}
	for i := range enc {
		if _, err := Parse(enc[:i]); err == nil {
			t.Fatalf("a HW12 bundle cut at %d parsed", i)
		}
	}
	signer, err := saa.GenerateKey("ecdsa")
	if err != nil {
		t.Fatal(err)
	}
	pub, _ := saa.NewPublicKey(signer.Public())
	list := func(f saa.Family, digest []byte) []byte {
		l, err := saa.SignList(saa.ConfigList{Family: f, Group: q.Binding.Group, Seq: 1,
			Approvals: []saa.Approval{{PCRs: []uint{0, 7}, Digest: digest}}}, signer)
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	comp, _ := saa.Composite12([]uint{0, 7}, q.HWPCRValues)
	good := list(saa.Family12, comp[:])
	p.Binding.SAAKey = sha256.Sum256(pub.Bytes())
	p.Binding.List, p.Binding.ListSeq = sha256.Sum256(good), 1
	p.Answer = fakeQuote12(t, k, p.Binding, p.HWPCRValues)
	tr := Trust{AK: &k.PublicKey, Nonce: []byte("nonce"), SAA: &pub, List: good}
	r, err := Verify(p, tr)
	if err != nil {
		t.Fatal(err)
	}
	if r.Approval != 0 || len(r.HWPCRs) != 2 || r.HWPCRs[1] != 7 {
		t.Fatalf("result %+v", r)
	}

	ecKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if _, err := Verify(p, Trust{AK: &ecKey.PublicKey, Nonce: []byte("nonce")}); !isLink(err, LinkSignature) {
		t.Errorf("an ECDSA key for a TPM 1.2 quote: %v", err)
	}
	alt := *p
	alt.HWPCRValues = [][]byte{p.HWPCRValues[0], bytes.Repeat([]byte{5}, 20)}
	if _, err := Verify(&alt, tr); !isLink(err, LinkSignature) {
		t.Errorf("altered hardware PCR values: %v", err)
	}
	alt = *p
	alt.Binding.Nonce = []byte("other")
	if _, err := Verify(&alt, tr); !isLink(err, LinkBinding) {
		t.Errorf("a bundle with another nonce: %v", err)
	}
	tr2 := tr
	tr2.List = list(saa.Family20, make([]byte, 32))
	p.Binding.List = sha256.Sum256(tr2.List)
	p.Answer = fakeQuote12(t, k, p.Binding, p.HWPCRValues)
	if _, err := Verify(p, tr2); !isLink(err, LinkList) {
		t.Errorf("a TPM 2.0 list for a TPM 1.2 quote: %v", err)
	}
	tr2.List = list(saa.Family12, make([]byte, 20))
	p.Binding.List = sha256.Sum256(tr2.List)
	p.Answer = fakeQuote12(t, k, p.Binding, p.HWPCRValues)
	if _, err := Verify(p, tr2); !isLink(err, LinkHWPCRs) {
		t.Errorf("an approval of other PCR values: %v", err)
	}
	// A HW20 answer with hardware PCR values does not encode.
	_, q20 := testBundle(t)
	q20.HWPCRs, q20.HWPCRValues = 1, [][]byte{make([]byte, 20)}
	if _, err := q20.Marshal(); err == nil {
		t.Error("a TPM 2.0 quote with hardware PCR values encoded")
	}
}
