package manager

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"errors"
	"testing"
	"time"

	"github.com/google/go-tpm/tpm2"

	"github.com/xenvtpm/xenvtpm/attest/deepquote"
	"github.com/xenvtpm/xenvtpm/mgrdomain/internal/swtpmtest"
	"github.com/xenvtpm/xenvtpm/mgrdomain/proto"
	"github.com/xenvtpm/xenvtpm/mgrdomain/saa"
	"github.com/xenvtpm/xenvtpm/mgrdomain/store"
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

// dqBed is the deep quote story's set-up, the same on both hardware
// families: a manager with dom0 as its admin, two vTPMs with records,
// and group 0 approving this host's PCRs 0 and 16 in a signed list of
// the family's kind.
type dqBed struct {
	m           *Manager
	h           *proto.Handler
	clk         *fakeClock
	admin       mgmt.Client
	vtpm, other proto.PeerInfo
	key         crypto.Signer
	pub         saa.PublicKey
	g0          [16]byte
	seq         uint64 // the group's next sequence number when list was signed
	pcrs        []uint
	list        []byte
	family      saa.Family
}

func newDQBed(t *testing.T, d store.Device, hw Hardware, family saa.Family) *dqBed {
	t.Helper()
	b := &dqBed{clk: newFakeClock(), family: family, pcrs: []uint{0, 16}}
	b.m = openMgr(t, d, hw, Config{Admins: []uint32{0}, clock: b.clk})
	b.h = &proto.Handler{Backend: b.m}
	b.admin = mgmt.Client{T: dom0Peer{b.h, proto.PeerInfo{DomID: 0, UUID: uuidN(99)}}}
	b.vtpm = proto.PeerInfo{DomID: 7, UUID: uuidN(1)}
	b.other = proto.PeerInfo{DomID: 8, UUID: uuidN(2)}
	for _, p := range []proto.PeerInfo{b.vtpm, b.other} {
		if err := b.m.SaveHashKey(p.UUID, blobN(1, 1)); err != nil {
			t.Fatal(err)
		}
	}

	// The SAA approves this host's PCRs 0 and 16 for group 0.
	key, wire := saaKey(t, "ecdsa")
	g0, _, err := b.m.GroupNew(proto.GroupNew{SAAKey: wire})
	if err != nil {
		t.Fatal(err)
	}
	info, _ := b.m.GroupShow(0)
	b.key, b.g0, b.seq = key, g0, info.NextSeq
	b.list = signList(t, key, family, g0, b.seq, approvalFor(t, family, b.pcrs, pcrValues(t, hw, b.pcrs)))
	if err := b.m.GroupUpdate(0, b.list); err != nil {
		t.Fatal(err)
	}
	b.pub, _ = saa.ParsePublicKey(wire)
	return b
}

// verified checks that q, the vTPM's quote of its PCR values 0x11 for
// nonce, verifies against ak and the group's SAA and list, and returns
// that trust.
func (b *dqBed) verified(t *testing.T, q *deepquote.Bundle, ak crypto.PublicKey, nonce []byte) deepquote.Trust {
	t.Helper()
	_, want := vtpmPCRs(0x11)
	trust := deepquote.Trust{AK: ak, Nonce: nonce, VTPM: &b.vtpm.UUID, VTPMPCRs: map[int][]byte{16: want[1]}, SAA: &b.pub, List: b.list}
	r, err := deepquote.Verify(q, trust)
	if err != nil {
		t.Fatal(err)
	}
	if r.Approval != 0 || r.Binding.VTPM != b.vtpm.UUID || r.Binding.Group != b.g0 {
		t.Fatalf("result %+v", r)
	}
	return trust
}

// breakEachLink breaks each link of q's verification against trust
// once and checks that the failure names it: the nonce, the vTPM's
// PCRs, another vTPM's quote, the SAA, the list, the binding, the
// signature, and (after extendHWPCR16 extends hardware PCR 16) the
// hardware PCRs. digestLen is the family's PCR value size.
func breakEachLink(t *testing.T, b *dqBed, q *deepquote.Bundle, trust deepquote.Trust, digestLen int, extendHWPCR16 func()) {
	t.Helper()
	tr := trust
	tr.Nonce = []byte("another nonce")
	_, err := deepquote.Verify(q, tr)
	wantLink(t, "another nonce", err, deepquote.LinkNonce)

	tr = trust
	tr.VTPMPCRs = map[int][]byte{16: bytes.Repeat([]byte{0x99}, 32)}
	_, err = deepquote.Verify(q, tr)
	wantLink(t, "a vTPM PCR extended after the quote", err, deepquote.LinkVTPMPCRs)

	qo, err := deepQuote(t, b.h, b.other, trust.Nonce, 0x11)
	if err != nil {
		t.Fatal(err)
	}
	_, err = deepquote.Verify(qo, trust)
	wantLink(t, "another vTPM's quote", err, deepquote.LinkVTPM)

	_, otherWire := saaKey(t, "ecdsa")
	otherSAA, _ := saa.ParsePublicKey(otherWire)
	tr = trust
	tr.SAA = &otherSAA
	_, err = deepquote.Verify(q, tr)
	wantLink(t, "another SAA", err, deepquote.LinkSAA)

	tr = trust
	tr.List = signList(t, b.key, b.family, b.g0, b.seq+5, approvalFor(t, b.family, b.pcrs, [][]byte{make([]byte, digestLen), make([]byte, digestLen)}))
	_, err = deepquote.Verify(q, tr)
	wantLink(t, "a list the group does not have", err, deepquote.LinkList)

	forged := *q
	forged.Binding.VTPM = b.other.UUID
	_, err = deepquote.Verify(&forged, trust)
	wantLink(t, "a bundle renamed to another vTPM", err, deepquote.LinkBinding)

	forged = *q
	forged.Attest = bytes.Clone(q.Attest)
	forged.Attest[len(forged.Attest)-1] ^= 1
	_, err = deepquote.Verify(&forged, trust)
	wantLink(t, "an altered quote", err, deepquote.LinkSignature)

	extendHWPCR16()
	b.clk.Advance(time.Minute)
	q2, err := deepQuote(t, b.h, b.vtpm, trust.Nonce, 0x11)
	if err != nil {
		t.Fatal(err)
	}
	_, err = deepquote.Verify(q2, trust)
	wantLink(t, "a hardware PCR changed", err, deepquote.LinkHWPCRs)
}

// The deep quote's story on TPM 2.0 hardware (swtpm): dom0 certifies the
// group's attestation key against the hardware EK, a vTPM's quote
// verifies, and each link broken once is named.
func TestDeepQuote(t *testing.T) {
	s := swtpmtest.StartSwtpm(t, "")
	b := newDQBed(t, newMemDisk(512, diskBytes), hwOf(t, s), saa.Family20)
	m, h := b.m, b.h

	// dom0: the AK, certified with MakeCredential against the EK.
	ak, err := b.admin.GroupAK(0)
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
	if got, err := b.admin.GroupActivate(0, blob, encSecret); err != nil || !bytes.Equal(got, secret) {
		t.Fatalf("GROUP_ACTIVATE = %q, %v", got, err)
	}
	wrongName := bytes.Clone(ak.AKName)
	wrongName[5] ^= 1
	blob2, enc2, _ := tpm2.CreateCredential(rand.Reader, enc, wrongName, secret)
	if _, err := b.admin.GroupActivate(0, blob2, enc2); !mgmt.IsCode(err, proto.TPMBadParameter) {
		t.Errorf("a credential for another key was activated: %v", err)
	}

	nonce := []byte("verifier nonce 1")
	q, err := deepQuote(t, h, b.vtpm, nonce, 0x11)
	if err != nil {
		t.Fatal(err)
	}
	trust := b.verified(t, q, ak.AK, nonce)

	// Each link broken once.
	breakEachLink(t, b, q, trust, 32, func() { swtpmtest.ExtendPCR(t, s.TPM(), 16) })

	// A vTPM asking too fast is told to retry; the nonce bound is the
	// request's, never longer than 64 bytes.
	for i := range quoteBurst + 1 {
		_, err = deepQuote(t, h, b.other, nonce, 1)
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
