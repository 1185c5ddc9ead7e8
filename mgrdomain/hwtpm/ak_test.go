package hwtpm

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"math/big"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-tpm/tpm2"
	"github.com/google/go-tpm/tpm2/transport"

	"github.com/xenvtpm/xenvtpm/mgrdomain/internal/swtpmtest"
)

var (
	groupA = [16]byte{0x6b, 0xa7, 0xb8, 0x10, 0x9d, 0xad, 0x11, 0xd1, 0x80, 0xb4, 0x00, 0xc0, 0x4f, 0xd4, 0x30, 0xc8}
	groupB = [16]byte{0x6b, 0xa7, 0xb8, 0x11, 0x9d, 0xad, 0x11, 0xd1, 0x80, 0xb4, 0x00, 0xc0, 0x4f, 0xd4, 0x30, 0xc8}
)

// countingTPM counts the commands sent to the TPM.
type countingTPM struct {
	tr transport.TPM
	n  atomic.Int64
}

func (c *countingTPM) Send(cmd []byte) ([]byte, error) {
	c.n.Add(1)
	return c.tr.Send(cmd)
}

// openCounted opens s through a counting transport.
func openCounted(t testing.TB, s *swtpmtest.Swtpm) (*TPM, *countingTPM) {
	t.Helper()
	c := &countingTPM{tr: s.TPM()}
	tp, err := Open(c, Config{})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return tp, c
}

// noneLeft fails if the TPM holds a transient object or a session.
func noneLeft(t testing.TB, tr transport.TPM, after string) {
	t.Helper()
	for _, ht := range []tpm2.TPMHT{tpm2.TPMHTTransient, tpm2.TPMHTHMACSession, tpm2.TPMHTPolicySession} {
		rsp, err := tpm2.GetCapability{Capability: tpm2.TPMCapHandles, Property: uint32(ht) << 24, PropertyCount: 64}.Execute(tr)
		if err != nil {
			t.Fatalf("GetCapability(handles %#x): %v", ht, err)
		}
		hs, err := rsp.CapabilityData.Data.Handles()
		if err != nil {
			t.Fatal(err)
		}
		if len(hs.Handle) != 0 {
			t.Fatalf("after %s: handles of type %#x left in the TPM: %v", after, ht, hs.Handle)
		}
	}
}

func TestAKTemplate(t *testing.T) {
	a, b := AKTemplate(groupA), AKTemplate(groupB)
	if bytes.Equal(tpm2.Marshal(a), tpm2.Marshal(b)) {
		t.Fatal("two groups have the same AK template")
	}
	if !bytes.Equal(tpm2.Marshal(a), tpm2.Marshal(AKTemplate(groupA))) {
		t.Fatal("AKTemplate is not a function of the group")
	}
	at := a.ObjectAttributes
	if !at.Restricted || !at.SignEncrypt || at.Decrypt || !at.FixedTPM || !at.FixedParent || !at.SensitiveDataOrigin || !at.UserWithAuth || at.AdminWithPolicy {
		t.Fatalf("attributes %+v", at)
	}
	pt, err := a.Unique.ECC()
	if err != nil {
		t.Fatal(err)
	}
	want := sha256.Sum256(append([]byte("xenvtpm group attestation key"), groupA[:]...))
	if !bytes.Equal(pt.X.Buffer, want[:]) || len(pt.Y.Buffer) != 0 {
		t.Fatalf("unique = (%x, %x)", pt.X.Buffer, pt.Y.Buffer)
	}
}

func TestAKStableAndPerGroup(t *testing.T) {
	s := swtpmtest.StartSwtpm(t, "")
	tp := openTPM(t, s, Config{})
	a1, err := tp.AKPublic(groupA)
	if err != nil {
		t.Fatal(err)
	}
	noneLeft(t, s.TPM(), "AKPublic")
	a2, err := tp.AKPublic(groupA)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a1.Public, a2.Public) || !bytes.Equal(a1.Name, a2.Name) || !a1.Key.Equal(a2.Key) {
		t.Fatal("the AK changed between two calls")
	}
	b, err := tp.AKPublic(groupB)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(a1.Name, b.Name) || a1.Key.Equal(b.Key) {
		t.Fatal("two groups got the same AK")
	}
	// The name is nameAlg ‖ SHA-256(TPMT_PUBLIC), as MakeCredential takes it.
	h := sha256.Sum256(a1.Public)
	if !bytes.Equal(a1.Name, append([]byte{0x00, 0x0B}, h[:]...)) {
		t.Fatalf("name %x is not SHA-256 of the public area", a1.Name)
	}
	pub, err := tpm2.Unmarshal[tpm2.TPMTPublic](a1.Public)
	if err != nil {
		t.Fatal(err)
	}
	if at := pub.ObjectAttributes; !at.Restricted || !at.SignEncrypt || !at.FixedTPM {
		t.Fatalf("AK attributes %+v", at)
	}
	s.Restart()
	tp = openTPM(t, s, Config{})
	a3, err := tp.AKPublic(groupA)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a1.Public, a3.Public) {
		t.Fatal("the AK changed across a TPM restart")
	}
}

// pcrDigest is SHA-256 of the values of pcrs (ascending) of the SHA-256
// bank, read with TPM2_PCR_Read: TPMS_QUOTE_INFO's pcrDigest.
func pcrDigest(t *testing.T, tp *TPM, pcrs []uint) []byte {
	t.Helper()
	vals, err := tp.PCRValues(pcrs)
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.New()
	for _, v := range vals {
		h.Write(v)
	}
	return h.Sum(nil)
}

// checkQuote verifies a quote as a remote verifier would: the ECDSA
// signature against the AK, then the TPMS_ATTEST's fields.
func checkQuote(t *testing.T, ak *AK, attest, sig, extra, digest []byte) {
	t.Helper()
	s, err := tpm2.Unmarshal[tpm2.TPMTSignature](sig)
	if err != nil {
		t.Fatal(err)
	}
	e, err := s.Signature.ECDSA()
	if err != nil {
		t.Fatal(err)
	}
	d := sha256.Sum256(attest)
	if !ecdsa.Verify(ak.Key, d[:], new(big.Int).SetBytes(e.SignatureR.Buffer), new(big.Int).SetBytes(e.SignatureS.Buffer)) {
		t.Fatal("the quote's signature does not verify against AKPublic")
	}
	a, err := tpm2.Unmarshal[tpm2.TPMSAttest](attest)
	if err != nil {
		t.Fatal(err)
	}
	if a.Magic != tpm2.TPMGeneratedValue || a.Type != tpm2.TPMSTAttestQuote {
		t.Fatalf("magic %#x type %#x", a.Magic, a.Type)
	}
	if !bytes.Equal(a.ExtraData.Buffer, extra) {
		t.Fatalf("extraData %x, want %x", a.ExtraData.Buffer, extra)
	}
	q, err := a.Attested.Quote()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(q.PCRDigest.Buffer, digest) {
		t.Fatalf("pcrDigest %x, want %x (SHA-256 of the PCR values)", q.PCRDigest.Buffer, digest)
	}
}

func TestAKQuote(t *testing.T) {
	s := swtpmtest.StartSwtpm(t, "")
	tp, c := openCounted(t, s)
	ak, err := tp.AKPublic(groupA)
	if err != nil {
		t.Fatal(err)
	}
	pcrs := []uint{0, 7, 16}
	extra := make([]byte, 32)
	rand.Read(extra)
	before := c.n.Load()
	start := time.Now()
	attest, sig, err := tp.Quote(groupA, extra, pcrs)
	took := time.Since(start)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("TPM 2.0 Quote: %d TPM commands, %v on swtpm; TPMS_ATTEST %d bytes, signature %d bytes", c.n.Load()-before, took, len(attest), len(sig))
	if n := c.n.Load() - before; n != 3 {
		t.Errorf("one Quote sent %d commands, want 3 (CreatePrimary, Quote, FlushContext)", n)
	}
	noneLeft(t, s.TPM(), "Quote")
	d1 := pcrDigest(t, tp, pcrs)
	checkQuote(t, ak, attest, sig, extra, d1)

	// A changed PCR changes the digest.
	swtpmtest.ExtendPCR(t, s.TPM(), 16)
	attest, sig, err = tp.Quote(groupA, extra[:20], pcrs)
	if err != nil {
		t.Fatal(err)
	}
	d2 := pcrDigest(t, tp, pcrs)
	if bytes.Equal(d1, d2) {
		t.Fatal("extending PCR 16 did not change the digest")
	}
	checkQuote(t, ak, attest, sig, extra[:20], d2)

	// Empty qualifying data, and the other group's key.
	bk, err := tp.AKPublic(groupB)
	if err != nil {
		t.Fatal(err)
	}
	attest, sig, err = tp.Quote(groupB, nil, pcrs)
	if err != nil {
		t.Fatal(err)
	}
	checkQuote(t, bk, attest, sig, nil, d2)
	if _, _, err := parseQuote(attest, sig, ak.Key); err == nil {
		t.Fatal("group B's quote verifies against group A's key")
	}

	// 33 bytes of qualifying data never reach the TPM.
	before = c.n.Load()
	if _, _, err := tp.Quote(groupA, make([]byte, 33), pcrs); err == nil || !strings.Contains(err.Error(), "33 bytes") {
		t.Fatalf("Quote with 33 bytes of qualifying data = %v", err)
	}
	if _, _, err := tp.Quote(groupA, nil, []uint{24}); err == nil {
		t.Fatal("Quote of PCR 24 accepted")
	}
	if c.n.Load() != before {
		t.Fatal("a refused Quote sent commands to the TPM")
	}
	noneLeft(t, s.TPM(), "refused Quote")
}

func TestAKActivateCredential(t *testing.T) {
	s := swtpmtest.StartSwtpm(t, "")
	tp, c := openCounted(t, s)
	start := time.Now()
	ek, err := tp.EKPublic()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("EKPublic: %v", time.Since(start))
	noneLeft(t, s.TPM(), "EKPublic")
	if ek.Cert != nil {
		t.Fatalf("a fresh swtpm has an EK certificate of %d bytes", len(ek.Cert))
	}
	if ek.Key.N.BitLen() != 2048 {
		t.Fatalf("EK of %d bits", ek.Key.N.BitLen())
	}
	ekPub, err := tpm2.Unmarshal[tpm2.TPMTPublic](ek.Public)
	if err != nil {
		t.Fatal(err)
	}
	ekEnc, err := tpm2.ImportEncapsulationKey(ekPub)
	if err != nil {
		t.Fatal(err)
	}
	akA, err := tp.AKPublic(groupA)
	if err != nil {
		t.Fatal(err)
	}
	akB, err := tp.AKPublic(groupB)
	if err != nil {
		t.Fatal(err)
	}
	// The privacy CA's side: TPM2_MakeCredential in pure Go.
	secret := make([]byte, 32)
	rand.Read(secret)
	blob, enc, err := tpm2.CreateCredential(rand.Reader, ekEnc, akA.Name, secret)
	if err != nil {
		t.Fatal(err)
	}
	before := c.n.Load()
	start = time.Now()
	got, err := tp.ActivateCredential(groupA, blob, enc)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("ActivateCredential: %d TPM commands, %v on swtpm", c.n.Load()-before, time.Since(start))
	if !bytes.Equal(got, secret) {
		t.Fatalf("ActivateCredential = %x, want %x", got, secret)
	}
	noneLeft(t, s.TPM(), "ActivateCredential")

	// A credential for group B's key does not activate with group A's.
	blobB, encB, err := tpm2.CreateCredential(rand.Reader, ekEnc, akB.Name, secret)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tp.ActivateCredential(groupA, blobB, encB); !errors.Is(err, ErrCredential) {
		t.Fatalf("ActivateCredential with another AK's credential = %v, want ErrCredential", err)
	} else {
		t.Logf("refused: %v", err)
	}
	noneLeft(t, s.TPM(), "a refused ActivateCredential")
	if got, err := tp.ActivateCredential(groupB, blobB, encB); err != nil || !bytes.Equal(got, secret) {
		t.Fatalf("ActivateCredential(group B) = %x, %v", got, err)
	}
	// Garbled inputs.
	bad := bytes.Clone(blob)
	bad[len(bad)-1] ^= 1
	if _, err := tp.ActivateCredential(groupA, bad, enc); err == nil {
		t.Fatal("a garbled credential blob activated")
	}
	noneLeft(t, s.TPM(), "a garbled credential")
	if _, err := tp.ActivateCredential(groupA, blob, enc[:10]); err == nil {
		t.Fatal("a garbled secret activated")
	}
	if _, err := tp.ActivateCredential(groupA, nil, enc); err == nil {
		t.Fatal("an empty credential activated")
	}
	noneLeft(t, s.TPM(), "a garbled secret")
}

// TestEKCertificate stores a certificate at the EK certificate index, as
// a manufacturer does, larger than one TPM2_NV_Read and padded.
func TestEKCertificate(t *testing.T) {
	s := swtpmtest.StartSwtpm(t, "")
	tr := s.TPM()
	const size = 1500
	cert := make([]byte, 1400)
	rand.Read(cert)
	cert[0], cert[1] = 0x30, 0x82
	binary.BigEndian.PutUint16(cert[2:], uint16(len(cert)-4))
	pub := tpm2.TPMSNVPublic{
		NVIndex: EKCertIndex,
		NameAlg: tpm2.TPMAlgSHA256,
		Attributes: tpm2.TPMANV{
			OwnerWrite: true, AuthWrite: true, AuthRead: true, OwnerRead: true, NoDA: true,
			NT: tpm2.TPMNTOrdinary,
		},
		DataSize: size,
	}
	owner := tpm2.AuthHandle{Handle: tpm2.TPMRHOwner, Auth: tpm2.PasswordAuth(nil)}
	if _, err := (tpm2.NVDefineSpace{AuthHandle: owner, PublicInfo: tpm2.New2B(pub)}).Execute(tr); err != nil {
		t.Skipf("SKIP: cannot define the EK certificate index here: %v", err)
	}
	name, err := tpm2.NVName(&pub)
	if err != nil {
		t.Fatal(err)
	}
	padded := append(bytes.Clone(cert), make([]byte, size-len(cert))...)
	for off := 0; off < size; off += 512 {
		n := min(512, size-off)
		_, err := tpm2.NVWrite{
			AuthHandle: owner,
			NVIndex:    tpm2.NamedHandle{Handle: EKCertIndex, Name: *name},
			Data:       tpm2.TPM2BMaxNVBuffer{Buffer: padded[off : off+n]},
			Offset:     uint16(off),
		}.Execute(tr)
		if err != nil {
			t.Fatalf("NV_Write: %v", err)
		}
	}
	tp := openTPM(t, s, Config{})
	ek, err := tp.EKPublic()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(ek.Cert, cert) {
		t.Fatalf("EK certificate of %d bytes, want the %d written", len(ek.Cert), len(cert))
	}
	noneLeft(t, tr, "EKPublic with a certificate")
}

// A TPM whose endorsement hierarchy has an authValue: without
// endorsement_auth= (or with a wrong one) the attestation key is refused
// with ErrEndorsementAuth and nothing is left loaded; with it, the AK, its
// quote and TPM2_ActivateCredential (the EK's PolicySecret) all work.
func TestAKEndorsementAuth(t *testing.T) {
	s := swtpmtest.StartSwtpm(t, "")
	tr := s.TPM()
	good, _ := ParseAuth("text:endorsement")
	_, err := tpm2.HierarchyChangeAuth{
		AuthHandle: tpm2.AuthHandle{Handle: tpm2.TPMRHEndorsement, Auth: tpm2.PasswordAuth(nil)},
		NewAuth:    tpm2.TPM2BAuth{Buffer: good.TPM2()},
	}.Execute(tr)
	if err != nil {
		t.Fatalf("HierarchyChangeAuth: %v", err)
	}
	wrong, _ := ParseAuth("text:other")
	for _, a := range []Auth{WellKnown, wrong} {
		tp := openTPM(t, s, Config{EndorsementAuth: a})
		if _, err := tp.AKPublic(groupA); !errors.Is(err, ErrEndorsementAuth) {
			t.Fatalf("AKPublic with endorsement_auth=%v = %v, want ErrEndorsementAuth", a, err)
		} else {
			t.Logf("refused: %v", err)
		}
		if _, _, err := tp.Quote(groupA, nil, []uint{0}); !errors.Is(err, ErrEndorsementAuth) {
			t.Fatalf("Quote with endorsement_auth=%v = %v, want ErrEndorsementAuth", a, err)
		}
		noneLeft(t, tr, "a refused CreatePrimary")
	}
	tp := openTPM(t, s, Config{EndorsementAuth: good})
	ak, err := tp.AKPublic(groupA)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := tp.Quote(groupA, nil, []uint{0}); err != nil {
		t.Fatal(err)
	}
	ek, err := tp.EKPublic()
	if err != nil {
		t.Fatal(err)
	}
	ekPub, _ := tpm2.Unmarshal[tpm2.TPMTPublic](ek.Public)
	ekEnc, err := tpm2.ImportEncapsulationKey(ekPub)
	if err != nil {
		t.Fatal(err)
	}
	secret := []byte("a privacy CA's secret")
	blob, enc, err := tpm2.CreateCredential(rand.Reader, ekEnc, ak.Name, secret)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := tp.ActivateCredential(groupA, blob, enc); err != nil || !bytes.Equal(got, secret) {
		t.Fatalf("ActivateCredential with endorsement_auth= = %q, %v", got, err)
	}
	noneLeft(t, tr, "endorsement_auth=")
}

func BenchmarkAKQuote(b *testing.B) {
	s := swtpmtest.StartSwtpm(b, "")
	tp := openTPM(b, s, Config{})
	extra := make([]byte, 32)
	for b.Loop() {
		if _, _, err := tp.Quote(groupA, extra, []uint{0, 2, 4, 7}); err != nil {
			b.Fatal(err)
		}
	}
}

// identityBlob12 is a TPM_KEY as TPM_MakeIdentity returns it, for key
// (its wrapped private part is junk: only the parsers see it).
func identityBlob12(key *rsa.PublicKey) []byte {
	b := bytes.Clone(idKeyParams12[:len(idKeyParams12)-8])
	b = binary.BigEndian.AppendUint32(b, uint32(len(key.N.Bytes())))
	b = append(b, key.N.Bytes()...)
	b = binary.BigEndian.AppendUint32(b, 16)
	return append(b, make([]byte, 16)...)
}

// exerciseAK calls the attestation-key methods of both families over a
// TPM that answers a then b to each: only a panic fails.
func exerciseAK(t *testing.T, blob, a, b []byte) {
	ok := []byte{0x80, 0x01, 0, 0, 0, 10, 0, 0, 0, 0}
	tr := &scripted{rsps: [][]byte{ok}}
	tp, err := Open(tr, Config{})
	if err != nil {
		t.Fatalf("Open on the scripted start: %v", err)
	}
	tr.rsps = append(tr.rsps, a, b)
	for _, call := range []func(){
		func() { tp.AKPublic(groupA) },
		func() { tp.EKPublic() },
		func() { tp.Quote(groupA, []byte{1}, []uint{0, 7}) },
		func() { tp.ActivateCredential(groupA, []byte{1}, []byte{2}) },
	} {
		tr.i = 1
		call()
	}
	flags := append([]byte{0, 0xC4, 0, 0, 0, 0x24, 0, 0, 0, 0, 0, 0, 0, 22, 0, 0x1F}, make([]byte, 20)...)
	owned := []byte{0, 0xC4, 0, 0, 0, 15, 0, 0, 0, 0, 0, 0, 0, 1, 1}
	tr = &scripted{rsps: [][]byte{{0, 0xC4, 0, 0, 0, 10, 0, 0, 0, 0x1E}, flags, owned}}
	tp12, err := Open12(tr, Config{})
	if err != nil {
		t.Fatalf("Open12 on the scripted start: %v", err)
	}
	tr.rsps = append(tr.rsps, a, b)
	for _, call := range []func(){
		func() { tp12.MakeIdentity([20]byte{}) },
		func() { tp12.Quote(blob, [20]byte{}, []uint{0, 7, 16}) },
		func() { tp12.ActivateIdentity(blob, make([]byte, 256)) },
	} {
		tr.i = 3
		call()
	}
}

// FuzzParseAK feeds the attestation-key parsers (TPM 2.0 quotes, TPM 1.2
// TPM_KEY, TPM_PUBKEY, TPM_MakeIdentity, TPM_Quote and
// TPM_ActivateIdentity outputs, authorisation areas) and the methods
// behind them arbitrary bytes: errors, never a panic.
func FuzzParseAK(f *testing.F) {
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		f.Fatal(err)
	}
	rk, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		f.Fatal(err)
	}
	blob := identityBlob12(&rk.PublicKey)
	attest := tpm2.Marshal(tpm2.TPMSAttest{
		Magic:     tpm2.TPMGeneratedValue,
		Type:      tpm2.TPMSTAttestQuote,
		ExtraData: tpm2.TPM2BData{Buffer: []byte("nonce")},
		Attested: tpm2.NewTPMUAttest(tpm2.TPMSTAttestQuote, &tpm2.TPMSQuoteInfo{
			PCRSelect: pcrSelection(tpm2.TPMAlgSHA256, []uint{0, 7}),
			PCRDigest: tpm2.TPM2BDigest{Buffer: make([]byte, 32)},
		}),
	})
	d := sha256.Sum256(attest)
	r, s, err := ecdsa.Sign(rand.Reader, ec, d[:])
	if err != nil {
		f.Fatal(err)
	}
	sig := tpm2.Marshal(tpm2.TPMTSignature{SigAlg: tpm2.TPMAlgECDSA, Signature: tpm2.NewTPMUSignature(tpm2.TPMAlgECDSA, &tpm2.TPMSSignatureECC{
		Hash: tpm2.TPMAlgSHA256, SignatureR: tpm2.TPM2BECCParameter{Buffer: r.Bytes()}, SignatureS: tpm2.TPM2BECCParameter{Buffer: s.Bytes()},
	})})
	f.Add(attest, sig)
	makeID := binary.BigEndian.AppendUint32(bytes.Clone(blob), 256)
	makeID = append(makeID, make([]byte, 256)...)
	quote12 := binary.BigEndian.AppendUint32(pcrSelection12([]uint{0, 7, 16}), 60)
	quote12 = append(quote12, make([]byte, 60)...)
	quote12 = binary.BigEndian.AppendUint32(quote12, 256)
	quote12 = append(quote12, make([]byte, 256)...)
	f.Add(makeID, quote12)
	f.Add(SymmetricKey12(make([]byte, 16)), append([]byte{0, 0xC4, 0, 0, 0, 92, 0, 0, 0, 0}, make([]byte, 82)...))
	k12, _, err := parseMakeIdentity(makeID)
	if err != nil {
		f.Fatal(err)
	}
	if _, _, _, err := parseQuote12(quote12, []uint{0, 7, 16}); err != nil {
		f.Fatal(err)
	}
	if _, _, err := parseQuote(attest, sig, &ec.PublicKey); err != nil {
		f.Fatal(err)
	}
	f.Add(k12.pubKey(), []byte{0x30, 0x82, 0, 2, 1, 1, 0})
	f.Fuzz(func(t *testing.T, a, b []byte) {
		if _, q, err := parseQuote(a, b, &ec.PublicKey); err == nil && q.Quote == nil {
			t.Fatal("a quote without quote info")
		}
		parseQuote(a, b, nil)
		if c := trimDER(a); !bytes.HasPrefix(a, c) {
			t.Fatal("trimDER is not a prefix")
		}
		if k, n, err := parseKey12(a); err == nil {
			if n > len(a) || !bytes.Equal(k.raw, a[:n]) {
				t.Fatalf("parseKey12: %d bytes of %d", n, len(a))
			}
			ParsePubKey12(k.pubKey())
		}
		ParsePubKey12(a)
		parseMakeIdentity(a)
		checkSymKey12(a)
		if _, vals, _, err := parseQuote12(a, []uint{0, 7, 16}); err == nil && len(vals) != 3 {
			t.Fatalf("parseQuote12: %d values", len(vals))
		}
		uses := []use12{{s: &authSession{}}, {s: &authSession{}}}
		checkAuthResponse("fuzz", 1, a, 4, make([][20]byte, 2), uses)
		checkAuthResponse("fuzz", 1, b, 0, make([][20]byte, 1), uses[:1])
		exerciseAK(t, blob, a, b)
	})
}
