package hwtpm

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"math/big"
	"strings"
	"testing"

	"github.com/google/go-tpm/tpm2"
	"github.com/google/go-tpm/tpm2/transport"

	"github.com/xenvtpm/xenvtpm/mgrdomain/internal/swtpmtest"
	"github.com/xenvtpm/xenvtpm/mgrdomain/saa"
)

// saaKeys are an SAA's key and another key of the same kind.
func saaKeys(t *testing.T, kind string) (crypto.Signer, crypto.Signer) {
	t.Helper()
	gen := func() crypto.Signer {
		if kind == "RSA" {
			k, err := rsa.GenerateKey(rand.Reader, 2048)
			if err != nil {
				t.Fatal(err)
			}
			return k
		}
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	return gen(), gen()
}

// handlesLeft counts the transient objects and loaded sessions in the TPM.
func handlesLeft(t *testing.T, tr transport.TPM) int {
	t.Helper()
	n := 0
	for _, first := range []uint32{0x80000000, 0x02000000, 0x03000000} {
		rsp, err := tpm2.GetCapability{Capability: tpm2.TPMCapHandles, Property: first, PropertyCount: 64}.Execute(tr)
		if err != nil {
			t.Fatalf("TPM2_GetCapability(handles %#x): %v", first, err)
		}
		h, err := rsp.CapabilityData.Data.Handles()
		if err != nil {
			t.Fatal(err)
		}
		n += len(h.Handle)
	}
	return n
}

// approval is the SAA's approval of the current values of pcrs.
func approval(t *testing.T, tp *TPM, signer crypto.Signer, pcrs []uint, seq uint64) Approval {
	t.Helper()
	vals, err := tp.PCRValues(pcrs)
	if err != nil {
		t.Fatal(err)
	}
	d := saa.PCRDigest(vals)
	sig, err := SignApproval(signer, pcrs, d, seq, tp.ApprovalIndex())
	if err != nil {
		t.Fatalf("SignApproval: %v", err)
	}
	return Approval{PCRs: pcrs, Digest: d, Sig: sig, Values: vals}
}

// commands is what crossed the bus since the last reset: all commands,
// and NV writes (TPM2_NV_Increment, TPM2_NV_DefineSpace).
func (b *busTap) commands() (all, nvWrites int) {
	b.mu.Lock()
	n := len(b.msgs) / 2
	b.mu.Unlock()
	return n, b.sent(tpm2.TPMCCNVIncrement) + b.sent(tpm2.TPMCCNVDefineSpace)
}

func (b *busTap) reset() {
	b.mu.Lock()
	b.msgs = nil
	b.mu.Unlock()
}

func TestSealAuthorized(t *testing.T) {
	for _, kind := range []string{"RSA", "ECDSA"} {
		t.Run(kind, func(t *testing.T) { testSealAuthorized(t, kind) })
	}
}

func testSealAuthorized(t *testing.T, kind string) {
	s := swtpmtest.StartSwtpm(t, "")
	tap := &busTap{tr: s.TPM()}
	tp, err := Open(tap, Config{})
	if err != nil {
		t.Fatal(err)
	}
	signer, other := saaKeys(t, kind)
	key := bytes.Repeat([]byte{0x3c}, 32)
	sealed, err := tp.SealAuthorized(key, signer.Public())
	if err != nil {
		t.Fatalf("SealAuthorized: %v", err)
	}
	// The blob as the manager keeps it, through the disk encoding.
	blob, err := UnmarshalSealedBlob(sealed.Marshal())
	if err != nil {
		t.Fatalf("UnmarshalSealedBlob: %v", err)
	}
	if !blob.Authorized() || len(blob.PCRs) != 0 {
		t.Fatalf("decoded blob: authorized %v, PCRs %v", blob.Authorized(), blob.PCRs)
	}
	if k, err := blob.SAAKey(); err != nil || !k.(interface{ Equal(crypto.PublicKey) bool }).Equal(signer.Public()) {
		t.Fatalf("SAAKey = %v, %v", k, err)
	}
	seq, err := tp.ApprovalCounter()
	if err != nil {
		t.Fatal(err)
	}
	pcrs := []uint{0, 7, 16}
	approvals := []Approval{approval(t, tp, signer, pcrs, seq)}

	unseal := func(b *SealedBlob, seq uint64, approvals []Approval) ([]byte, error) {
		t.Helper()
		tap.reset()
		got, err := tp.UnsealAuthorized(b, seq, approvals)
		if n := handlesLeft(t, s.TPM()); n != 0 {
			t.Fatalf("UnsealAuthorized (%v) left %d handles in the TPM", err, n)
		}
		return got, err
	}
	got, err := unseal(blob, seq, approvals)
	if err != nil || !bytes.Equal(got, key) {
		t.Fatalf("UnsealAuthorized with the approval of the current PCRs = %x, %v", got, err)
	}
	all, nv := tap.commands()
	t.Logf("%s: UnsealAuthorized: %d TPM commands, %d NV writes", kind, all, nv)
	if nv != 0 {
		t.Errorf("UnsealAuthorized wrote NV %d times", nv)
	}
	if tap.sent(tpm2.TPMCCPolicyAuthorize) != 1 || tap.sent(tpm2.TPMCCVerifySignature) != 1 || tap.sent(tpm2.TPMCCFlushContext) < 3 {
		t.Errorf("UnsealAuthorized sent PolicyAuthorize %d, VerifySignature %d, FlushContext %d times",
			tap.sent(tpm2.TPMCCPolicyAuthorize), tap.sent(tpm2.TPMCCVerifySignature), tap.sent(tpm2.TPMCCFlushContext))
	}
	if l := tap.leaks(key); len(l) != 0 {
		t.Errorf("the storage key crossed the bus in clear: %v", l)
	}

	if _, err := tp.Unseal(blob); !errors.Is(err, ErrNotApproved) || !strings.Contains(err.Error(), "UnsealAuthorized") {
		t.Fatalf("plain Unseal of an authorized blob = %v", err)
	}

	// A changed boot configuration is not approved until the SAA signs
	// its values.
	swtpmtest.ExtendPCR(t, s.TPM(), 16)
	if _, err := unseal(blob, seq, approvals); !errors.Is(err, ErrNotApproved) || !strings.Contains(err.Error(), "differs in PCRs 16") {
		t.Fatalf("UnsealAuthorized after extending PCR 16 = %v, want ErrNotApproved naming PCR 16", err)
	}
	approvals = append(approvals, approval(t, tp, signer, pcrs, seq))
	if got, err := unseal(blob, seq, approvals); err != nil || !bytes.Equal(got, key) {
		t.Fatalf("UnsealAuthorized with the new values approved = %x, %v", got, err)
	}

	// A new list (seq+1) revokes the old one.
	tap.reset()
	if err := tp.AdvanceApprovals(seq + 1); err != nil {
		t.Fatalf("AdvanceApprovals(%d): %v", seq+1, err)
	}
	all, nv = tap.commands()
	t.Logf("%s: AdvanceApprovals by 1: %d TPM commands, %d NV writes", kind, all, nv)
	if nv != 1 {
		t.Errorf("AdvanceApprovals by one wrote NV %d times", nv)
	}
	if v, err := tp.ApprovalCounter(); err != nil || v != seq+1 {
		t.Fatalf("ApprovalCounter = %d, %v; want %d", v, err, seq+1)
	}
	if _, err := unseal(blob, seq, approvals); !errors.Is(err, ErrRevoked) {
		t.Fatalf("UnsealAuthorized with a superseded list = %v, want ErrRevoked", err)
	}
	// Claiming the new sequence with the old signature does not help.
	if _, err := unseal(blob, seq+1, approvals); !errors.Is(err, ErrBadApproval) {
		t.Fatalf("UnsealAuthorized with an old signature under the new sequence = %v, want ErrBadApproval", err)
	}
	approvals = []Approval{approval(t, tp, signer, pcrs, seq+1)}
	if got, err := unseal(blob, seq+1, approvals); err != nil || !bytes.Equal(got, key) {
		t.Fatalf("UnsealAuthorized with the list re-signed at %d = %x, %v", seq+1, got, err)
	}

	// Signed by another key.
	if _, err := unseal(blob, seq+1, []Approval{approval(t, tp, other, pcrs, seq+1)}); !errors.Is(err, ErrBadApproval) {
		t.Fatalf("UnsealAuthorized with another key's approval = %v, want ErrBadApproval", err)
	}
	bad := approvals[0]
	bad.Sig = bytes.Clone(bad.Sig)
	bad.Sig[len(bad.Sig)/2] ^= 1
	if _, err := unseal(blob, seq+1, []Approval{bad}); !errors.Is(err, ErrBadApproval) {
		t.Fatalf("UnsealAuthorized with a damaged signature = %v, want ErrBadApproval", err)
	}

	// AdvanceApprovals refuses to go back or to jump far; a jump of 3 is
	// three NV writes.
	if err := tp.AdvanceApprovals(seq); err == nil || !strings.Contains(err.Error(), "below") {
		t.Fatalf("AdvanceApprovals below the counter = %v", err)
	}
	if err := tp.AdvanceApprovals(seq + 1 + MaxApprovalJump + 1); err == nil || !strings.Contains(err.Error(), "at most 64") {
		t.Fatalf("AdvanceApprovals beyond MaxApprovalJump = %v", err)
	}
	tap.reset()
	if err := tp.AdvanceApprovals(seq + 1); err != nil {
		t.Fatalf("AdvanceApprovals to the current value = %v", err)
	}
	if _, nv := tap.commands(); nv != 0 {
		t.Errorf("AdvanceApprovals to the current value wrote NV %d times", nv)
	}
	tap.reset()
	if err := tp.AdvanceApprovals(seq + 4); err != nil {
		t.Fatal(err)
	}
	all, nv = tap.commands()
	t.Logf("%s: AdvanceApprovals by 3: %d TPM commands, %d NV writes", kind, all, nv)
	if nv != 3 {
		t.Errorf("AdvanceApprovals by three wrote NV %d times", nv)
	}
	if n := handlesLeft(t, s.TPM()); n != 0 {
		t.Fatalf("AdvanceApprovals left %d handles", n)
	}
	seq += 4
	approvals = []Approval{approval(t, tp, signer, pcrs, seq)}

	// A reseal retires the blob as any other.
	newer, err := tp.ResealAuthorized(key, signer.Public())
	if err != nil {
		t.Fatal(err)
	}
	if newer.EpochBound != blob.EpochBound+1 {
		t.Fatalf("ResealAuthorized bound %d after %d", newer.EpochBound, blob.EpochBound)
	}
	if err := tp.Retire(newer); err != nil {
		t.Fatal(err)
	}
	if _, err := unseal(blob, seq, approvals); !errors.Is(err, ErrRetired) {
		t.Fatalf("UnsealAuthorized of a retired blob = %v, want ErrRetired", err)
	}
	if got, err := unseal(newer, seq, approvals); err != nil || !bytes.Equal(got, key) {
		t.Fatalf("UnsealAuthorized of the resealed blob = %x, %v", got, err)
	}
	// The approval counter survives a reboot.
	s.Restart()
	tap.tr = s.TPM()
	if v, err := tp.ApprovalCounter(); err != nil || v != seq {
		t.Fatalf("ApprovalCounter after restart = %d, %v; want %d", v, err, seq)
	}
}

// TestApprovalCounterTaken: an index at the approval counter's place that
// is something else is refused, not used.
func TestApprovalCounterTaken(t *testing.T) {
	s := swtpmtest.StartSwtpm(t, "")
	_, err := tpm2.NVDefineSpace{AuthHandle: tpm2.TPMRHOwner, PublicInfo: tpm2.New2B(tpm2.TPMSNVPublic{
		NVIndex: saa.DefaultApprovalIndex, NameAlg: tpm2.TPMAlgSHA256, DataSize: 8,
		Attributes: tpm2.TPMANV{NT: tpm2.TPMNTCounter, AuthWrite: true, AuthRead: true, NoDA: true},
	})}.Execute(s.TPM())
	if err != nil {
		t.Fatal(err)
	}
	tp := openTPM(t, s, Config{})
	if _, err := tp.ApprovalCounter(); err == nil || !strings.Contains(err.Error(), "not the manager's approval counter") {
		t.Fatalf("ApprovalCounter over a foreign index = %v", err)
	}
	k, _ := saaKeys(t, "ECDSA")
	if _, err := tp.SealAuthorized([]byte("k"), k.Public()); err == nil {
		t.Fatal("SealAuthorized over a foreign approval index succeeded")
	}
	// Another index works.
	tp = openTPM(t, s, Config{ApprovalIndex: 0x0100C1D0})
	if _, err := tp.SealAuthorized([]byte("k"), k.Public()); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(s.TPM(), Config{ApprovalIndex: DefaultEpochIndex}); err == nil {
		t.Fatal("Open accepted the approval counter on the seal epoch's index")
	}
}

// fixedSAAKeys are valid public keys without randomness, for seeds.
func fixedSAAKeys() []crypto.PublicKey {
	p := elliptic.P256().Params()
	n := new(big.Int).Lsh(big.NewInt(1), 2047)
	n.Add(n, big.NewInt(0x1235))
	return []crypto.PublicKey{
		&ecdsa.PublicKey{Curve: elliptic.P256(), X: p.Gx, Y: p.Gy},
		&rsa.PublicKey{N: n, E: 65537},
	}
}

// blobSAA is a well-formed authorized blob (its areas only framed).
func blobSAA(pub crypto.PublicKey) *SealedBlob {
	p, err := saaPublic(pub)
	if err != nil {
		panic(err)
	}
	b := *blob20
	b.PCRs, b.PCRValues = nil, nil
	b.SAAPublic = tpm2.Marshal(p)
	return &b
}

func TestSAAKeys(t *testing.T) {
	n := fixedSAAKeys()[1].(*rsa.PublicKey).N
	if _, err := saaPublic(&rsa.PublicKey{N: n, E: 3}); err == nil {
		t.Error("an SAA RSA key with exponent 3 accepted (saa keys have 65537)")
	}
	for _, pub := range fixedSAAKeys() {
		b := blobSAA(pub)
		dec, err := UnmarshalSealedBlob(b.Marshal())
		if err != nil || !dec.Authorized() || !bytes.Equal(dec.SAAPublic, b.SAAPublic) {
			t.Fatalf("authorized blob round trip: %+v, %v", dec, err)
		}
		k, err := dec.SAAKey()
		if err != nil || !k.(interface{ Equal(crypto.PublicKey) bool }).Equal(pub) {
			t.Fatalf("SAAKey = %v, %v", k, err)
		}
		name, err := SAAPublicName(pub)
		if err != nil {
			t.Fatal(err)
		}
		if _, want, _ := saaKey(b.SAAPublic); !bytes.Equal(name, want.Buffer) || len(name) != 34 {
			t.Fatalf("SAAPublicName %x, the blob's key is named %x", name, want.Buffer)
		}
		// A selection of its own is refused.
		withPCRs := *b
		withPCRs.PCRs = []uint{7}
		if _, err := UnmarshalSealedBlob(withPCRs.Marshal()); !errors.Is(err, ErrBadBlob) {
			t.Errorf("authorized blob with PCRs: %v", err)
		}
		enc := b.Marshal()
		for i := range len(enc) {
			if _, err := UnmarshalSealedBlob(enc[:i]); !errors.Is(err, ErrBadBlob) {
				t.Fatalf("truncated to %d: %v", i, err)
			}
		}
	}
	// Other attributes than SealAuthorized's are refused.
	p, _ := saaPublic(fixedSAAKeys()[0])
	p.ObjectAttributes.Decrypt = true
	b := blobSAA(fixedSAAKeys()[0])
	b.SAAPublic = tpm2.Marshal(p)
	if _, err := UnmarshalSealedBlob(b.Marshal()); !errors.Is(err, ErrBadBlob) {
		t.Errorf("SAA key with decrypt: %v", err)
	}
	small, _ := rsa.GenerateKey(rand.Reader, 1024)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	edPub, edPriv, _ := ed25519.GenerateKey(rand.Reader)
	for name, pub := range map[string]crypto.PublicKey{"RSA-1024": &small.PublicKey, "P-384": &p384.PublicKey, "Ed25519": edPub,
		"even e": &rsa.PublicKey{N: fixedSAAKeys()[1].(*rsa.PublicKey).N, E: 4}, "nil": nil} {
		if _, err := SAAPublicName(pub); err == nil {
			t.Errorf("SAAPublicName(%s) accepted", name)
		}
	}
	if _, err := SignApproval(edPriv, []uint{0}, make([]byte, 32), 1, saa.DefaultApprovalIndex); err == nil {
		t.Error("SignApproval with an Ed25519 key")
	}
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	for _, bad := range [][]uint{nil, {24}} {
		if _, err := SignApproval(ec, bad, make([]byte, 32), 1, saa.DefaultApprovalIndex); err == nil {
			t.Errorf("SignApproval(PCRs %v) accepted", bad)
		}
	}
	// The signature an ECDSA approval carries is what the TPM checks.
	sig, err := SignApproval(ec, []uint{0, 7}, make([]byte, 32), 5, saa.DefaultApprovalIndex)
	if err != nil {
		t.Fatal(err)
	}
	pol, _ := saa.ApprovedPolicy([]uint{0, 7}, make([]byte, 32), 5, saa.DefaultApprovalIndex)
	if !ecdsa.VerifyASN1(&ec.PublicKey, saa.AuthorizeHash(pol), sig) {
		t.Fatal("SignApproval's ECDSA signature does not verify")
	}
	for _, s := range [][]byte{nil, {0x30, 0}, append(bytes.Clone(sig), 0)} {
		if _, err := tpmSignature(&ec.PublicKey, s); !errors.Is(err, ErrBadApproval) {
			t.Errorf("tpmSignature(% x): %v", s, err)
		}
	}
}

func TestCheckApprovals(t *testing.T) {
	good := Approval{PCRs: []uint{0, 7}, Digest: saa.PCRDigest([][]byte{make([]byte, 32), make([]byte, 32)}), Sig: []byte{1}}
	if err := checkApprovals([]Approval{good}); err != nil {
		t.Fatal(err)
	}
	if err := checkApprovals(nil); !errors.Is(err, ErrNotApproved) {
		t.Errorf("no approvals: %v", err)
	}
	for name, mod := range map[string]func(a *Approval){
		"no PCRs":     func(a *Approval) { a.PCRs = nil },
		"PCR 24":      func(a *Approval) { a.PCRs = []uint{0, 24} },
		"unsorted":    func(a *Approval) { a.PCRs = []uint{7, 0} },
		"repeat":      func(a *Approval) { a.PCRs = []uint{7, 7} },
		"short":       func(a *Approval) { a.Digest = a.Digest[:20] },
		"no sig":      func(a *Approval) { a.Sig = nil },
		"values":      func(a *Approval) { a.Values = [][]byte{make([]byte, 32)} },
		"wrong value": func(a *Approval) { a.Values = [][]byte{make([]byte, 32), bytes.Repeat([]byte{1}, 32)} },
	} {
		a := good
		mod(&a)
		if err := checkApprovals([]Approval{good, a}); !errors.Is(err, ErrBadApproval) || !strings.Contains(err.Error(), "approval 1") {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// TestNullHierarchyTicket: why verifyApproval loads the SAA key in the
// owner hierarchy. Loaded in the null hierarchy, TPM2_VerifySignature
// answers a NULL ticket, which TPM2_PolicyAuthorize refuses where the
// owner hierarchy's ticket passes.
func TestNullHierarchyTicket(t *testing.T) {
	s := swtpmtest.StartSwtpm(t, "")
	tr := s.TPM()
	tp := openTPM(t, s, Config{})
	seq, err := tp.ApprovalCounter()
	if err != nil {
		t.Fatal(err)
	}
	k, _ := saaKeys(t, "ECDSA")
	a := approval(t, tp, k, []uint{0}, seq)
	pub, _ := saaPublic(k.Public())
	name, _ := SAAPublicName(k.Public())
	pol, _ := saa.ApprovedPolicy(a.PCRs, a.Digest, seq, saa.DefaultApprovalIndex)
	ts, err := tpmSignature(k.Public(), a.Sig)
	if err != nil {
		t.Fatal(err)
	}
	counter, _ := saa.ApprovalCounterHandle(saa.DefaultApprovalIndex)
	authorize := func(h tpm2.TPMIRHHierarchy) (tpm2.TPMTTKVerified, error) {
		ld, err := tpm2.LoadExternal{InPublic: tpm2.New2B(pub), Hierarchy: h}.Execute(tr)
		if err != nil {
			t.Fatal(err)
		}
		vs, err := tpm2.VerifySignature{KeyHandle: tpm2.NamedHandle{Handle: ld.ObjectHandle, Name: ld.Name},
			Digest: tpm2.TPM2BDigest{Buffer: saa.AuthorizeHash(pol)}, Signature: ts}.Execute(tr)
		tpm2.FlushContext{FlushHandle: ld.ObjectHandle}.Execute(tr)
		if err != nil {
			t.Fatal(err)
		}
		sess, done, err := tpm2.PolicySession(tr, tpm2.TPMAlgSHA256, 16)
		if err != nil {
			t.Fatal(err)
		}
		defer done()
		if _, err := (tpm2.PolicyPCR{PolicySession: sess.Handle(), PcrDigest: tpm2.TPM2BDigest{Buffer: a.Digest}, Pcrs: saa.PCRSelection(tpm2.TPMAlgSHA256, a.PCRs)}).Execute(tr); err != nil {
			t.Fatal(err)
		}
		if _, err := saa.PolicyNVCheck(counter, sess.Handle(), seq).Execute(tr); err != nil {
			t.Fatal(err)
		}
		_, err = tpm2.PolicyAuthorize{PolicySession: sess.Handle(), ApprovedPolicy: tpm2.TPM2BDigest{Buffer: pol},
			PolicyRef: tpm2.TPM2BDigest{Buffer: saa.PolicyRef}, KeySign: tpm2.TPM2BName{Buffer: name}, CheckTicket: vs.Validation}.Execute(tr)
		return vs.Validation, err
	}
	if tk, err := authorize(tpm2.TPMRHOwner); err != nil {
		t.Fatalf("TPM2_PolicyAuthorize with the owner hierarchy's ticket %+v: %v", tk, err)
	}
	tk, err := authorize(tpm2.TPMRHNull)
	if tk.Hierarchy != tpm2.TPMRHNull || len(tk.Digest.Buffer) != 0 {
		t.Fatalf("null-hierarchy ticket: %+v", tk)
	}
	if err == nil {
		t.Fatal("TPM2_PolicyAuthorize accepted a NULL ticket")
	}
	t.Logf("TPM2_PolicyAuthorize with a NULL ticket: %v", err)
}

// exerciseApproved calls the approval methods once over a TPM that may
// answer anything: only a panic fails.
func exerciseApproved(tp *TPM) {
	tp.ApprovalCounter()
	tp.AdvanceApprovals(3)
	pub := fixedSAAKeys()[0]
	if b, err := tp.SealAuthorized([]byte("k"), pub); err == nil {
		tp.UnsealAuthorized(b, 1, nil)
	}
	a := Approval{PCRs: []uint{0}, Digest: make([]byte, 32), Sig: []byte{0x30, 6, 2, 1, 1, 2, 1, 1}}
	tp.UnsealAuthorized(blobSAA(pub), 1, []Approval{a})
	tp.UnsealAuthorized(blobSAA(fixedSAAKeys()[1]), 1, []Approval{{PCRs: []uint{0}, Digest: make([]byte, 32), Sig: make([]byte, 256)}})
}
