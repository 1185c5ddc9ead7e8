package manager

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/binary"
	"os/exec"
	"sync"
	"testing"
	"time"

	"github.com/google/go-tpm/tpm2/transport"

	"github.com/xenvtpm/xenvtpm/attest/deepquote"
	"github.com/xenvtpm/xenvtpm/mgrdomain/hwtpm"
	"github.com/xenvtpm/xenvtpm/mgrdomain/internal/swtpmtest"
	"github.com/xenvtpm/xenvtpm/mgrdomain/proto"
	"github.com/xenvtpm/xenvtpm/mgrdomain/saa"
	"github.com/xenvtpm/xenvtpm/toolstack/mgmt"
)

// ordTPM records the ordinals of the commands sent to the TPM.
type ordTPM struct {
	tr   transport.TPM
	mu   sync.Mutex
	ords []uint32
}

func (o *ordTPM) Send(cmd []byte) ([]byte, error) {
	if len(cmd) >= 10 {
		o.mu.Lock()
		o.ords = append(o.ords, binary.BigEndian.Uint32(cmd[6:]))
		o.mu.Unlock()
	}
	return o.tr.Send(cmd)
}

// since returns the ordinals sent from the n-th on, and how many there
// are now.
func (o *ordTPM) since(n int) ([]uint32, int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]uint32(nil), o.ords[n:]...), len(o.ords)
}

func (o *ordTPM) count(ord uint32) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	n := 0
	for _, x := range o.ords {
		if x == ord {
			n++
		}
	}
	return n
}

const ord12MakeIdentity = 0x79 // TPM_ORD_MakeIdentity

func hw12Ords(t testing.TB, s *swtpmtest.Swtpm) (*hwtpm.TPM12, *ordTPM) {
	t.Helper()
	o, _ := hwtpm.ParseAuth("text:" + owner12)
	k, _ := hwtpm.ParseAuth("text:" + srk12)
	ot := &ordTPM{tr: s.TPM()}
	h, err := hwtpm.Open12(ot, hwtpm.Config{OwnerAuth: o, SRKAuth: k})
	if err != nil {
		t.Fatal(err)
	}
	return h, ot
}

// activate12 proves the identity key as `xenvtpm group ak` does: a
// TPM_ASYM_CA_CONTENTS for the key of idPub, encrypted to the EK.
func activate12(t *testing.T, admin mgmt.Client, ak *mgmt.GroupAK, idPub []byte) ([]byte, []byte, error) {
	t.Helper()
	key := make([]byte, 16)
	rand.Read(key)
	sym := hwtpm.SymmetricKey12(key)
	blob, err := hwtpm.ActivationBlob12(ak.EK.(*rsa.PublicKey), sym, idPub, false)
	if err != nil {
		t.Fatal(err)
	}
	got, err := admin.GroupActivate(0, blob, nil)
	return got, sym, err
}

// The deep quote's story on TPM 1.2 hardware (swtpm in TPM 1.2 mode):
// dom0 proves the group's identity key with TPM_ActivateIdentity, a
// vTPM's quote verifies against a saa.Family12 list, each link broken
// once is named, and the identity key survives a manager restart.
func TestDeepQuote12(t *testing.T) {
	s := swtpmtest.StartSwtpm12(t, owner12, srk12)
	hw, ot := hw12Ords(t, s)
	d := newMemDisk(512, diskBytes)
	b := newDQBed(t, d, hw, saa.Family12)
	m, h, admin, clk, vtpm := b.m, b.h, b.admin, b.clk, b.vtpm

	// dom0: the identity key, made at this first need, proven with
	// TPM_ActivateIdentity.
	start := time.Now()
	ak, err := admin.GroupAK(0)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("first GROUP_AK (TPM_MakeIdentity, commit, EK read): %v on swtpm", time.Since(start))
	if ak.Family != deepquote.HW12 || ak.Group != b.g0 || ak.EKCert != nil {
		t.Fatalf("GROUP_AK on TPM 1.2: family %d, group %x", ak.Family, ak.Group)
	}
	if got, sym, err := activate12(t, admin, ak, ak.AKPublic); err != nil || !bytes.Equal(got, sym) {
		t.Fatalf("GROUP_ACTIVATE = % x, %v; want % x", got, err, sym)
	}
	// A blob for another key: TPM_BAD_PARAMETER.
	otherKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	otherPub := bytes.Clone(ak.AKPublic)
	copy(otherPub[len(otherPub)-256:], otherKey.N.Bytes())
	if _, _, err := activate12(t, admin, ak, otherPub); !mgmt.IsCode(err, proto.TPMBadParameter) {
		t.Errorf("a blob for another identity key was activated: %v", err)
	}
	if _, err := admin.GroupActivate(0, []byte{1}, []byte{2}); !mgmt.IsCode(err, proto.TPMBadParameter) {
		t.Errorf("GROUP_ACTIVATE on TPM 1.2 with a secret: %v", err)
	}
	if n := ot.count(ord12MakeIdentity); n != 1 {
		t.Fatalf("%d TPM_MakeIdentity for one group", n)
	}

	nonce := []byte("verifier nonce 1")
	_, n0 := ot.since(0)
	start = time.Now()
	q, err := deepQuote(t, h, vtpm, nonce, 0x11)
	if err != nil {
		t.Fatal(err)
	}
	ords, _ := ot.since(n0)
	t.Logf("TPM 1.2 deep quote: %d TPM commands (% x), %v on swtpm", len(ords), ords, time.Since(start))
	if q.HWFamily != deepquote.HW12 || q.HWPCRs != 1|1<<16 {
		t.Fatalf("answer family %d, PCRs %#x", q.HWFamily, q.HWPCRs)
	}
	trust := b.verified(t, q, ak.AK, nonce)

	// Each link broken once: first those of TPM 1.2's quote alone, then
	// those both families share.
	tr := trust
	tr.AK = otherKey.Public()
	_, err = deepquote.Verify(q, tr)
	wantLink(t, "another identity key", err, deepquote.LinkSignature)

	forged := *q
	forged.HWPCRValues = [][]byte{q.HWPCRValues[0], bytes.Repeat([]byte{0x55}, 20)}
	_, err = deepquote.Verify(&forged, trust)
	wantLink(t, "altered hardware PCR values", err, deepquote.LinkSignature)

	breakEachLink(t, b, q, trust, 20, func() { swtpmtest.ExtendPCR12(t, s, 16) })

	// A restart (manager and TPM) keeps the identity key: the same
	// public key, and no second TPM_MakeIdentity.
	m.Close()
	s.Restart()
	hw, ot = hw12Ords(t, s)
	m = openMgr(t, d, hw, Config{Admins: []uint32{0}, clock: clk})
	defer m.Close()
	h = &proto.Handler{Backend: m}
	admin = mgmt.Client{T: dom0Peer{h, proto.PeerInfo{DomID: 0, UUID: uuidN(99)}}}
	ak2, err := admin.GroupAK(0)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(ak2.AKPublic, ak.AKPublic) || !bytes.Equal(ak2.IdentityBinding, ak.IdentityBinding) {
		t.Fatal("the identity key changed across a restart")
	}
	q3, err := deepQuote(t, h, vtpm, []byte("after restart"), 0x11)
	if err != nil {
		t.Fatal(err)
	}
	tr = trust
	tr.Nonce = []byte("after restart")
	tr.SAA = nil
	if _, err := deepquote.Verify(q3, tr); err != nil {
		t.Fatalf("a quote after the restart: %v", err)
	}
	if n := ot.count(ord12MakeIdentity); n != 0 {
		t.Fatalf("%d TPM_MakeIdentity after a restart", n)
	}
}

// Each group has its own identity key, made at its first deep quote.
func TestDeepQuote12PerGroup(t *testing.T) {
	s := swtpmtest.StartSwtpm12(t, owner12, srk12)
	hw, ot := hw12Ords(t, s)
	m := openMgr(t, newMemDisk(512, diskBytes), hw, Config{Admins: []uint32{0}})
	defer m.Close()
	key, wire := saaKey(t, "ecdsa")
	u0, _, err := m.GroupNew(proto.GroupNew{SAAKey: wire})
	if err != nil {
		t.Fatal(err)
	}
	u1, id1, err := m.GroupNew(proto.GroupNew{SAAKey: wire})
	if err != nil {
		t.Fatal(err)
	}
	v := uuidN(3)
	if _, err := m.VTPMNew(id1, &v); err != nil {
		t.Fatal(err)
	}
	if err := m.SaveHashKey(v, blobN(3, 1)); err != nil {
		t.Fatal(err)
	}
	q, err := deepQuote(t, &proto.Handler{Backend: m}, proto.PeerInfo{DomID: 4, UUID: v}, []byte("n"), 1)
	if err != nil {
		t.Fatal(err)
	}
	if q.Binding.Group != u1 || ot.count(ord12MakeIdentity) != 1 {
		t.Fatalf("group %x, %d TPM_MakeIdentity", q.Binding.Group, ot.count(ord12MakeIdentity))
	}
	a0, _ := m.GroupAK(0)
	a1, _ := m.GroupAK(id1)
	if bytes.Equal(a0, a1) || ot.count(ord12MakeIdentity) != 2 {
		t.Fatal("two groups share an identity key")
	}
	// A new list keeps the group's identity key and EK CA.
	ca, err := m.GroupCACert(0)
	if err != nil {
		t.Fatal(err)
	}
	info, _ := m.GroupShow(0)
	pcrs := []uint{0}
	if err := m.GroupUpdate(0, signList(t, key, saa.Family12, u0, info.NextSeq, approvalFor(t, saa.Family12, pcrs, pcrValues(t, hw, pcrs)))); err != nil {
		t.Fatal(err)
	}
	a0b, _ := m.GroupAK(0)
	ca2, _ := m.GroupCACert(0)
	if !bytes.Equal(a0, a0b) || !bytes.Equal(ca, ca2) || ot.count(ord12MakeIdentity) != 2 {
		t.Fatal("a group update replaced the group's identity key or EK CA")
	}
	ak1, err := mgmt.DecodeGroupAK(a1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := deepquote.Verify(q, deepquote.Trust{AK: ak1.AK, Nonce: []byte("n")}); err != nil {
		t.Fatal(err)
	}
}

// BenchmarkDeepQuote12 is a vTPM's deep quote on TPM 1.2 hardware
// (swtpm), the identity key made beforehand: TPM_OIAP, TPM_LoadKey2,
// TPM_Quote, TPM_FlushSpecific.
func BenchmarkDeepQuote12(b *testing.B) {
	s := swtpmtest.StartSwtpm12(b, owner12, srk12)
	hw, ot := hw12Ords(b, s)
	m := openMgr(b, newMemDisk(512, diskBytes), hw, Config{Admins: []uint32{0}, clock: newFakeClock()})
	defer m.Close()
	if err := m.SaveHashKey(uuidN(1), blobN(1, 1)); err != nil {
		b.Fatal(err)
	}
	if _, err := m.GroupAK(0); err != nil {
		b.Fatal(err)
	}
	req := proto.DeepQuote{Nonce: []byte("nonce"), PCRs: 1}
	_, n0 := ot.since(0)
	for b.Loop() {
		m.mu.Lock()
		m.quoteLimit = nil // the bench measures the quote, not the ration
		m.mu.Unlock()
		if _, err := m.DeepQuote(uuidN(1), req); err != nil {
			b.Fatal(err)
		}
	}
	_, n1 := ot.since(0)
	b.ReportMetric(float64(n1-n0)/float64(b.N), "cmds/op")
}

// TPM 1.2 hardware whose manufacturer (here swtpm_setup with
// swtpm_localca) left an EK certificate in TPM_NV_INDEX_EKCert: GROUP_AK
// hands it to dom0, and it certifies the EK GROUP_AK reports.
func TestGroupAK12EKCert(t *testing.T) {
	if _, err := exec.LookPath("swtpm_localca"); err != nil {
		t.Skip("SKIP: swtpm_localca not installed")
	}
	s := swtpmtest.StartSwtpm12(t, owner12, srk12, "--create-ek-cert")
	hw, _ := hw12Ords(t, s)
	b := newDQBed(t, newMemDisk(512, diskBytes), hw, saa.Family12)
	ak, err := b.admin.GroupAK(0)
	if err != nil {
		t.Fatal(err)
	}
	if ak.EKCert == nil {
		t.Fatal("no EK certificate")
	}
	c, err := x509.ParseCertificate(ak.EKCert)
	if err != nil {
		t.Fatal(err)
	}
	if k, ok := c.PublicKey.(*rsa.PublicKey); !ok || !k.Equal(ak.EK) {
		t.Errorf("the certificate is for %T, not the EK GROUP_AK reports", c.PublicKey)
	}
}
