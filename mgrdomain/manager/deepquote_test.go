package manager

import (
	"bytes"
	"crypto/rand"
	"errors"
	"testing"
	"time"

	"github.com/google/go-tpm/tpm2"

	"github.com/xenvtpm/xenvtpm/attest/deepquote"
	"github.com/xenvtpm/xenvtpm/mgrdomain/internal/swtpmtest"
	"github.com/xenvtpm/xenvtpm/mgrdomain/proto"
	"github.com/xenvtpm/xenvtpm/mgrdomain/saa"
	"github.com/xenvtpm/xenvtpm/toolstack/mgmt"
)

// vtpmPCRs are a vTPM's PCRs 0 and 16 as its domain would report them.
func vtpmPCRs(v byte) (uint32, [][]byte) {
	return 1<<0 | 1<<16, [][]byte{bytes.Repeat([]byte{v}, 32), bytes.Repeat([]byte{v + 1}, 32)}
}

// deepQuote asks the manager through the dispatcher, as a vTPM domain
// does, and makes the bundle the vTPM's guest would get.
func deepQuote(t *testing.T, h *proto.Handler, peer proto.PeerInfo, nonce []byte, v byte) (*deepquote.Bundle, error) {
	t.Helper()
	mask, vals := vtpmPCRs(v)
	req, err := proto.EncodeDeepQuote(proto.DeepQuote{Nonce: nonce, PCRs: mask, PCRDigest: deepquote.PCRDigest(vals)})
	if err != nil {
		t.Fatal(err)
	}
	p, err := proto.ParseResponse(h.Handle(req, peer), proto.TagVTPMReq)
	if err != nil {
		return nil, err
	}
	a, err := deepquote.ParseAnswer(p)
	if err != nil {
		t.Fatal(err)
	}
	q := &deepquote.Bundle{Answer: *a, VTPMPCRValues: vals}
	enc, err := q.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if q, err = deepquote.Parse(enc); err != nil {
		t.Fatal(err)
	}
	return q, nil
}

// dom0Peer is the dispatcher as dom0's xenvtpm sees it.
type dom0Peer struct {
	h    *proto.Handler
	peer proto.PeerInfo
}

func (p dom0Peer) Send(cmd []byte) ([]byte, error) { return p.h.Handle(cmd, p.peer), nil }

func wantLink(t *testing.T, what string, err error, link string) {
	t.Helper()
	var le *deepquote.LinkError
	if !errors.As(err, &le) || le.Link != link {
		t.Errorf("%s: %v; want the %q link to fail", what, err, link)
	}
}

// The deep quote's story on TPM 2.0 hardware (swtpm): dom0 certifies the
// group's attestation key against the hardware EK, a vTPM's quote
// verifies, and each link broken once is named.
func TestDeepQuote(t *testing.T) {
	s := swtpmtest.StartSwtpm(t, "")
	hw := hwOf(t, s)
	clk := newFakeClock()
	m := openMgr(t, newMemDisk(512, diskBytes), hw, Config{Admins: []uint32{0}, clock: clk})
	h := &proto.Handler{Backend: m}
	admin := mgmt.Client{T: dom0Peer{h, proto.PeerInfo{DomID: 0, UUID: uuidN(99)}}}
	vtpm := proto.PeerInfo{DomID: 7, UUID: uuidN(1)}
	other := proto.PeerInfo{DomID: 8, UUID: uuidN(2)}
	for _, p := range []proto.PeerInfo{vtpm, other} {
		if err := m.SaveHashKey(p.UUID, blobN(1, 1)); err != nil {
			t.Fatal(err)
		}
	}

	// The SAA approves this host's PCRs 0 and 16 for group 0.
	key, wire := saaKey(t, "ecdsa")
	g0, _, err := m.GroupNew(proto.GroupNew{SAAKey: wire})
	if err != nil {
		t.Fatal(err)
	}
	pcrs := []uint{0, 16}
	info, _ := m.GroupShow(0)
	list := signList(t, key, saa.Family20, g0, info.NextSeq, approvalFor(t, saa.Family20, pcrs, pcrValues(t, hw, pcrs)))
	if err := m.GroupUpdate(0, list); err != nil {
		t.Fatal(err)
	}
	pub, _ := saa.ParsePublicKey(wire)

	// dom0: the AK, certified with MakeCredential against the EK.
	ak, err := admin.GroupAK(0)
	if err != nil {
		t.Fatal(err)
	}
	ekPub, _ := tpm2.Unmarshal[tpm2.TPMTPublic](ak.EKPublic)
	enc, err := tpm2.ImportEncapsulationKey(ekPub)
	if err != nil {
		t.Fatal(err)
	}
	secret := []byte("the AK is in the manager's TPM!!")
	blob, encSecret, err := tpm2.CreateCredential(rand.Reader, enc, ak.AKName, secret)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := admin.GroupActivate(0, blob, encSecret); err != nil || !bytes.Equal(got, secret) {
		t.Fatalf("GROUP_ACTIVATE = %q, %v", got, err)
	}
	wrongName := bytes.Clone(ak.AKName)
	wrongName[5] ^= 1
	blob2, enc2, _ := tpm2.CreateCredential(rand.Reader, enc, wrongName, secret)
	if _, err := admin.GroupActivate(0, blob2, enc2); !mgmt.IsCode(err, proto.TPMBadParameter) {
		t.Errorf("a credential for another key was activated: %v", err)
	}

	nonce := []byte("verifier nonce 1")
	q, err := deepQuote(t, h, vtpm, nonce, 0x11)
	if err != nil {
		t.Fatal(err)
	}
	_, want := vtpmPCRs(0x11)
	trust := deepquote.Trust{AK: ak.AK, Nonce: nonce, VTPM: &vtpm.UUID, VTPMPCRs: map[int][]byte{16: want[1]}, SAA: &pub, List: list}
	r, err := deepquote.Verify(q, trust)
	if err != nil {
		t.Fatal(err)
	}
	if r.Approval != 0 || r.Binding.VTPM != vtpm.UUID || r.Binding.Group != g0 {
		t.Fatalf("result %+v", r)
	}

	// Each link broken once.
	tr := trust
	tr.Nonce = []byte("another nonce")
	_, err = deepquote.Verify(q, tr)
	wantLink(t, "another nonce", err, deepquote.LinkNonce)

	tr = trust
	tr.VTPMPCRs = map[int][]byte{16: bytes.Repeat([]byte{0x99}, 32)}
	_, err = deepquote.Verify(q, tr)
	wantLink(t, "a vTPM PCR extended after the quote", err, deepquote.LinkVTPMPCRs)

	qo, err := deepQuote(t, h, other, nonce, 0x11)
	if err != nil {
		t.Fatal(err)
	}
	_, err = deepquote.Verify(qo, trust)
	wantLink(t, "another vTPM's quote", err, deepquote.LinkVTPM)

	_, otherWire := saaKey(t, "ecdsa")
	otherPub, _ := saa.ParsePublicKey(otherWire)
	tr = trust
	tr.SAA = &otherPub
	_, err = deepquote.Verify(q, tr)
	wantLink(t, "another SAA", err, deepquote.LinkSAA)

	tr = trust
	tr.List = signList(t, key, saa.Family20, g0, info.NextSeq+5, approvalFor(t, saa.Family20, pcrs, [][]byte{make([]byte, 32), make([]byte, 32)}))
	_, err = deepquote.Verify(q, tr)
	wantLink(t, "a list the group does not have", err, deepquote.LinkList)

	forged := *q
	forged.Binding.VTPM = other.UUID
	_, err = deepquote.Verify(&forged, trust)
	wantLink(t, "a bundle renamed to another vTPM", err, deepquote.LinkBinding)

	forged = *q
	forged.Attest = bytes.Clone(q.Attest)
	forged.Attest[len(forged.Attest)-1] ^= 1
	_, err = deepquote.Verify(&forged, trust)
	wantLink(t, "an altered quote", err, deepquote.LinkSignature)

	swtpmtest.ExtendPCR(t, s.TPM(), 16)
	clk.Advance(time.Minute)
	q2, err := deepQuote(t, h, vtpm, nonce, 0x11)
	if err != nil {
		t.Fatal(err)
	}
	_, err = deepquote.Verify(q2, trust)
	wantLink(t, "a hardware PCR changed", err, deepquote.LinkHWPCRs)

	// A vTPM asking too fast is told to retry; the nonce bound is the
	// request's, never longer than 64 bytes.
	for i := range quoteBurst + 1 {
		_, err = deepQuote(t, h, other, nonce, 1)
		if i < quoteBurst-1 && err != nil {
			t.Fatalf("quote %d: %v", i, err)
		}
	}
	var pe *proto.Error
	if !errors.As(err, &pe) || pe.Code != proto.TPMRetry {
		t.Errorf("quote beyond the burst: %v, want TPM_RETRY", err)
	}
	if _, err := proto.EncodeDeepQuote(proto.DeepQuote{Nonce: make([]byte, 65)}); err == nil {
		t.Error("a 65-byte nonce was encoded")
	}
	if st := m.Stats(); st.DeepQuotes < 5 {
		t.Errorf("stats %+v", st)
	}
}

// A vTPM with no record gets no quote, on either hardware family (TPM
// 1.2 hardware quotes too since deepquote12.go: TestDeepQuote12).
func TestDeepQuoteRefused(t *testing.T) {
	s := swtpmtest.StartSwtpm(t, "")
	m := openMgr(t, newMemDisk(512, diskBytes), hwOf(t, s), Config{})
	h := &proto.Handler{Backend: m}
	var pe *proto.Error
	if _, err := deepQuote(t, h, proto.PeerInfo{DomID: 3, UUID: uuidN(5)}, nil, 0); !errors.As(err, &pe) || pe.Code != proto.TPMKeyNotFound {
		t.Errorf("unknown vTPM: %v", err)
	}
	s12 := swtpmtest.StartSwtpm12(t, owner12, srk12)
	m12 := openMgr(t, newMemDisk(512, diskBytes), hw12(t, s12), Config{})
	if _, err := deepQuote(t, &proto.Handler{Backend: m12}, proto.PeerInfo{DomID: 3, UUID: uuidN(5)}, nil, 0); !errors.As(err, &pe) || pe.Code != proto.TPMKeyNotFound {
		t.Errorf("unknown vTPM on TPM 1.2 hardware: %v", err)
	}
}

// BenchmarkDeepQuote: one DEEP_QUOTE through the dispatcher on swtpm,
// with the hardware TPM commands it costs.
func BenchmarkDeepQuote(b *testing.B) {
	hw, ct := countedHW(b)
	clk := newFakeClock()
	m := openMgr(b, newMemDisk(512, diskBytes), hw, Config{clock: clk})
	h := &proto.Handler{Backend: m}
	peer := proto.PeerInfo{DomID: 7, UUID: uuidN(1)}
	if err := m.SaveHashKey(peer.UUID, blobN(1, 1)); err != nil {
		b.Fatal(err)
	}
	req, _ := proto.EncodeDeepQuote(proto.DeepQuote{Nonce: make([]byte, 32), PCRs: 1})
	before := ct.n.Load()
	for b.Loop() {
		clk.Advance(time.Second) // past the ration
		if _, err := proto.ParseResponse(h.Handle(req, peer), proto.TagVTPMReq); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(ct.n.Load()-before)/float64(b.N), "TPM-commands/op")
}
