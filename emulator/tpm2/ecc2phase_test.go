package tpm2

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"math/big"
	"testing"

	gt "github.com/google/go-tpm/tpm2"
	"github.com/google/go-tpm/tpm2/transport"
)

func eccKeyTemplate(attrs gt.TPMAObject, scheme gt.TPMTECCScheme) gt.TPMTPublic {
	return gt.TPMTPublic{Type: gt.TPMAlgECC, NameAlg: gt.TPMAlgSHA256, ObjectAttributes: attrs,
		Parameters: gt.NewTPMUPublicParms(gt.TPMAlgECC, &gt.TPMSECCParms{CurveID: gt.TPMECCNistP256, Scheme: scheme,
			Symmetric: gt.TPMTSymDefObject{Algorithm: gt.TPMAlgNull}, KDF: gt.TPMTKDFScheme{Scheme: gt.TPMAlgNull}}),
		Unique: gt.NewTPMUPublicID(gt.TPMAlgECC, &gt.TPMSECCPoint{})}
}

var (
	ecdaaKeyAttrs = gt.TPMAObject{SignEncrypt: true, UserWithAuth: true, FixedTPM: true, FixedParent: true, SensitiveDataOrigin: true}
	exchKeyAttrs  = gt.TPMAObject{Decrypt: true, UserWithAuth: true, FixedTPM: true, FixedParent: true, SensitiveDataOrigin: true}
)

func ecdaaTemplate() gt.TPMTPublic {
	return eccKeyTemplate(ecdaaKeyAttrs, gt.TPMTECCScheme{Scheme: gt.TPMAlgECDAA,
		Details: gt.NewTPMUAsymScheme(gt.TPMAlgECDAA, &gt.TPMSSchemeECDAA{HashAlg: gt.TPMAlgSHA256})})
}

func ecdaaSign(tr transport.TPM, key gt.NamedHandle, count uint16) (*gt.SignResponse, error) {
	d := sha256.Sum256([]byte("message"))
	return (gt.Sign{KeyHandle: key, Digest: gt.TPM2BDigest{Buffer: d[:]},
		InScheme: gt.TPMTSigScheme{Scheme: gt.TPMAlgECDAA, Details: gt.NewTPMUSigScheme(gt.TPMAlgECDAA,
			&gt.TPMSSchemeECDAA{HashAlg: gt.TPMAlgSHA256, Count: count})},
		Validation: gt.TPMTTKHashCheck{Tag: gt.TPMSTHashCheck, Hierarchy: gt.TPMRHNull}}).Execute(tr)
}

func ecdaaKey(t *testing.T, tr transport.TPM) gt.NamedHandle {
	t.Helper()
	r := createPrimary(t, tr, gt.TPMRHOwner, ecdaaTemplate())
	return gt.NamedHandle{Handle: r.ObjectHandle, Name: r.Name}
}

func commit(t *testing.T, tr transport.TPM, key gt.NamedHandle) *gt.CommitResponse {
	t.Helper()
	r, err := (gt.Commit{SignHandle: key, P1: gt.New2B(gt.TPMSECCPoint{})}).Execute(tr)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// ecEphemeral sends TPM2_EC_Ephemeral for P-256.
func ecEphemeral(t *testing.T, tr transport.TPM) (gt.TPMSECCPoint, uint16) {
	t.Helper()
	rsp, _ := tr.Send(rawCommand(uint32(gt.TPMCCECEphemeral), nil, nil, binary.BigEndian.AppendUint16(nil, uint16(gt.TPMECCNistP256))))
	if rc := responseCode(rsp); rc != 0 {
		t.Fatalf("EC_Ephemeral: rc 0x%x", rc)
	}
	q, err := gt.Unmarshal[gt.TPM2BECCPoint](rsp[10 : len(rsp)-2])
	if err != nil {
		t.Fatal(err)
	}
	p, err := q.Contents()
	if err != nil {
		t.Fatal(err)
	}
	return *p, binary.BigEndian.Uint16(rsp[len(rsp)-2:])
}

// zgen2Phase sends TPM2_ZGen_2Phase and returns the response code and,
// on success, outZ1 and outZ2 marshalled.
func zgen2Phase(tr transport.TPM, key gt.TPMHandle, qsB, qeB gt.TPMSECCPoint, scheme gt.TPMAlgID, counter uint16) (uint32, []byte) {
	p := append(gt.Marshal(gt.New2B(qsB)), gt.Marshal(gt.New2B(qeB))...)
	p = binary.BigEndian.AppendUint16(p, uint16(scheme))
	p = binary.BigEndian.AppendUint16(p, counter)
	rsp, _ := tr.Send(rawCommand(uint32(gt.TPMCCZGen2Phase), []uint32{uint32(key)}, passwordAuth(nil), p))
	if rc := responseCode(rsp); rc != 0 {
		return rc, nil
	}
	return 0, rsp[14:]
}

func publicPoint(t *testing.T, tr transport.TPM, h gt.TPMHandle) gt.TPMSECCPoint {
	t.Helper()
	r, err := (gt.ReadPublic{ObjectHandle: h}).Execute(tr)
	if err != nil {
		t.Fatal(err)
	}
	pub, _ := r.OutPublic.Contents()
	p, _ := pub.Unique.ECC()
	return *p
}

// Both parties of an ECMQV exchange inside the TPM reach the same Z, and
// ECDH gives the same Zs and Ze both ways; SM2 is refused.
func TestZGen2PhaseBothWays(t *testing.T) {
	_, tr := newStarted(t)
	for _, scheme := range []gt.TPMAlgID{gt.TPMAlgECMQV, gt.TPMAlgECDH} {
		tmpl := eccKeyTemplate(exchKeyAttrs, gt.TPMTECCScheme{Scheme: gt.TPMIAlgECCScheme(scheme),
			Details: gt.NewTPMUAsymScheme(scheme, &gt.TPMSKeySchemeECMQV{HashAlg: gt.TPMAlgSHA256})})
		if scheme == gt.TPMAlgECDH {
			tmpl = eccKeyTemplate(exchKeyAttrs, gt.TPMTECCScheme{Scheme: gt.TPMAlgNull})
		}
		a := createPrimary(t, tr, gt.TPMRHOwner, tmpl)
		tmpl.AuthPolicy = gt.TPM2BDigest{Buffer: make([]byte, 32)} // another key
		b := createPrimary(t, tr, gt.TPMRHOwner, tmpl)
		qsA, qsB := publicPoint(t, tr, a.ObjectHandle), publicPoint(t, tr, b.ObjectHandle)
		qeA, cA := ecEphemeral(t, tr)
		qeB, cB := ecEphemeral(t, tr)
		rcA, zA := zgen2Phase(tr, a.ObjectHandle, qsB, qeB, scheme, cA)
		rcB, zB := zgen2Phase(tr, b.ObjectHandle, qsA, qeA, scheme, cB)
		if rcA != 0 || rcB != 0 || !bytes.Equal(zA, zB) {
			t.Fatalf("scheme 0x%x: rc 0x%x 0x%x, Z %x vs %x", scheme, rcA, rcB, zA, zB)
		}
		if rc, _ := zgen2Phase(tr, a.ObjectHandle, qsB, qeB, scheme, cA); rc != 0x4c4 { // TPM_RC_VALUE + P4
			t.Fatalf("scheme 0x%x: reused counter: rc 0x%x", scheme, rc)
		}
		if scheme == gt.TPMAlgECDH {
			_, c := ecEphemeral(t, tr)
			if rc, _ := zgen2Phase(tr, b.ObjectHandle, qsA, qeA, gt.TPMAlgSM2, c); rc != 0x3d2 { // TPM_RC_SCHEME + P3
				t.Fatalf("SM2: rc 0x%x", rc)
			}
		}
	}
}

// mqvZ agrees with SP 800-56A's MQV computed from party B's side:
// Z = [implicitsigB](QeA + [avf(QeA)]QsA).
func TestMQVAgreesWithPeer(t *testing.T) {
	c := elliptic.P256()
	key := func(s string) *ecdsa.PrivateKey {
		d := sha256.Sum256([]byte(s))
		k, err := ecdsa.ParseRawPrivateKey(c, d[:])
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	sA, eA, sB, eB := key("sA"), key("eA"), key("sB"), key("eB")
	zx, zy, ok := mqvZ(c, sA.D, eA.D, sB.X, sB.Y, eB.X, eB.Y)
	wx, wy, ok2 := mqvZ(c, sB.D, eB.D, sA.X, sA.Y, eA.X, eA.Y)
	if !ok || !ok2 || zx.Cmp(wx) != 0 || zy.Cmp(wy) != 0 {
		t.Fatal("MQV: the parties disagree")
	}
	// avf keeps the low half of x and sets the next bit.
	if got := avf(new(big.Int).Lsh(big.NewInt(1), 300), c.Params().N); got.Cmp(new(big.Int).Lsh(big.NewInt(1), 128)) != 0 {
		t.Fatalf("avf(2^300) = %x", got)
	}
}

// checkECDAA verifies an ECDAA signature of "message" (ecdaaSign) made
// with the commitment whose E is [r]G: s·G = E + [T]Q with
// T = SHA-256(nonce || digest).
func checkECDAA(t *testing.T, q gt.TPMSECCPoint, e gt.TPM2BECCPoint, rs *gt.SignResponse) {
	t.Helper()
	c := elliptic.P256()
	sig, err := rs.Signature.Signature.ECDAA()
	if err != nil {
		t.Fatal(err)
	}
	d := sha256.Sum256([]byte("message"))
	h := sha256.New()
	h.Write(sig.SignatureR.Buffer)
	h.Write(d[:])
	tv := new(big.Int).Mod(new(big.Int).SetBytes(h.Sum(nil)), c.Params().N)
	ep, err := e.Contents()
	if err != nil {
		t.Fatal(err)
	}
	//nolint:staticcheck // test arithmetic
	lx, ly := c.ScalarBaseMult(sig.SignatureS.Buffer)
	//nolint:staticcheck // test arithmetic
	tx, ty := c.ScalarMult(bigOf(q.X.Buffer), bigOf(q.Y.Buffer), tv.Bytes())
	//nolint:staticcheck // test arithmetic
	rx, ry := c.Add(bigOf(ep.X.Buffer), bigOf(ep.Y.Buffer), tx, ty)
	if lx.Cmp(rx) != 0 || ly.Cmp(ry) != 0 {
		t.Fatal("ECDAA signature does not verify")
	}
}

// A commitment is good for commitArraySize further commitments; then its
// slot belongs to a newer one.
func TestCommitWindow(t *testing.T) {
	_, tr := newStarted(t)
	key := ecdaaKey(t, tr)
	old := commit(t, tr, key).Counter
	for i := 0; i < commitArraySize-1; i++ {
		ecEphemeral(t, tr)
	}
	cm := commit(t, tr, key)
	recent := cm.Counter
	if recent != old+commitArraySize {
		t.Fatalf("counter %d after %d", recent, old)
	}
	_, err := ecdaaSign(tr, key, old)
	wantRC(t, err, rcValue)
	sig, err := ecdaaSign(tr, key, recent)
	if err != nil {
		t.Fatal(err)
	}
	checkECDAA(t, publicPoint(t, tr, key.Handle), cm.E, sig)
}

// The commit state survives Shutdown(STATE) and a restart from the saved
// blob (TPM Resume and TPM Restart) and is new after a TPM Reset.
func TestCommitStateAcrossStartup(t *testing.T) {
	for _, tc := range []struct {
		shutdown, startup gt.TPMSU
		usable            bool
	}{
		{gt.TPMSUState, gt.TPMSUState, true},
		{gt.TPMSUState, gt.TPMSUClear, true},
		{gt.TPMSUClear, gt.TPMSUClear, false},
	} {
		tp, tr := newStarted(t)
		// A primary key comes back the same from the same seed: its
		// Name, which the commitment's r depends on, is the same.
		key := ecdaaKey(t, tr)
		cm := commit(t, tr, key)
		c := cm.Counter
		if _, err := (gt.Shutdown{ShutdownType: tc.shutdown}).Execute(tr); err != nil {
			t.Fatal(err)
		}
		blob, err := tp.SaveAtStop()
		if err != nil {
			t.Fatal(err)
		}
		_, tr2 := restarted(t, blob, tc.startup)
		key = ecdaaKey(t, tr2)
		if !tc.usable {
			_, err := ecdaaSign(tr2, key, c)
			wantRC(t, err, rcValue)
			if c2 := commit(t, tr2, key).Counter; c2 != 0 {
				t.Fatalf("counter after TPM Reset: %d", c2)
			}
			continue
		}
		sig, err := ecdaaSign(tr2, key, c)
		if err != nil {
			t.Fatalf("%v/%v: %v", tc.shutdown, tc.startup, err)
		}
		checkECDAA(t, publicPoint(t, tr2, key.Handle), cm.E, sig)
		if c2 := commit(t, tr2, key).Counter; c2 != c+1 {
			t.Fatalf("counter after restart: %d, want %d", c2, c+1)
		}
	}
}

// A commitment after Shutdown(STATE) makes the next Startup a TPM Reset,
// so no counter value is handed out twice.
func TestCommitAfterShutdownState(t *testing.T) {
	tp, tr := newStarted(t)
	key := ecdaaKey(t, tr)
	if _, err := (gt.Shutdown{ShutdownType: gt.TPMSUState}).Execute(tr); err != nil {
		t.Fatal(err)
	}
	c := commit(t, tr, key).Counter
	if _, err := ecdaaSign(tr, key, c); err != nil {
		t.Fatal(err)
	}
	blob, err := tp.Save()
	if err != nil {
		t.Fatal(err)
	}
	tp2, err := New(Config{State: blob})
	if err != nil {
		t.Fatal(err)
	}
	tr2 := engineTransport{tp2}
	_, err = (gt.Startup{StartupType: gt.TPMSUState}).Execute(tr2)
	wantRC(t, err, rcValue|0x140) // TPM_RC_VALUE + P1
}

// A blob saved after Shutdown(STATE) by a version without the commit
// state still resumes; its commitments start afresh.
func TestCommitStateOldBlob(t *testing.T) {
	tp, tr := newStarted(t)
	if _, err := (gt.Shutdown{ShutdownType: gt.TPMSUState}).Execute(tr); err != nil {
		t.Fatal(err)
	}
	blob, err := tp.SaveAtStop()
	if err != nil {
		t.Fatal(err)
	}
	var st map[string]any
	if err := json.Unmarshal(blob[16:len(blob)-32], &st); err != nil {
		t.Fatal(err)
	}
	vol := st["Vol"].(map[string]any)
	if _, ok := vol["CommitNonce"]; !ok {
		t.Fatal("saved state has no commit nonce")
	}
	delete(vol, "CommitNonce")
	delete(vol, "CommitCounter")
	delete(vol, "CommitArray")
	payload, _ := json.Marshal(st)
	old := append(append([]byte{}, blob[:12]...), binary.BigEndian.AppendUint32(nil, uint32(len(payload)))...)
	old = append(old, payload...)
	sum := sha256.Sum256(old)
	old = append(old, sum[:]...)
	_, tr2 := restarted(t, old, gt.TPMSUState)
	key := ecdaaKey(t, tr2)
	_, err = ecdaaSign(tr2, key, 0)
	wantRC(t, err, rcValue)
	if c := commit(t, tr2, key).Counter; c != 0 {
		t.Fatalf("first counter %d", c)
	}
}

// Quote signs with ECDAA too, using up the commitment.
func TestQuoteECDAA(t *testing.T) {
	_, tr := newStarted(t)
	key := ecdaaKey(t, tr)
	c := commit(t, tr, key).Counter
	q := func() error {
		_, err := (gt.Quote{SignHandle: key, InScheme: gt.TPMTSigScheme{Scheme: gt.TPMAlgECDAA,
			Details: gt.NewTPMUSigScheme(gt.TPMAlgECDAA, &gt.TPMSSchemeECDAA{HashAlg: gt.TPMAlgSHA256, Count: c})},
			PCRSelect: gt.TPMLPCRSelection{}}).Execute(tr)
		return err
	}
	if err := q(); err != nil {
		t.Fatal(err)
	}
	wantRC(t, q(), rcValue)
}

// The two phases' cost in the engine: Commit then an ECDAA Sign, and
// EC_Ephemeral then ZGen_2Phase (ECDH), per pair.
func BenchmarkTwoPhase(b *testing.B) {
	tp, err := New(Config{})
	if err != nil {
		b.Fatal(err)
	}
	tr := engineTransport{tp}
	if _, err := (gt.Startup{StartupType: gt.TPMSUClear}).Execute(tr); err != nil {
		b.Fatal(err)
	}
	b.Run("Commit+SignECDAA", func(b *testing.B) {
		r := createPrimary(b, tr, gt.TPMRHOwner, ecdaaTemplate())
		key := gt.NamedHandle{Handle: r.ObjectHandle, Name: r.Name}
		for i := 0; i < b.N; i++ {
			cm, err := (gt.Commit{SignHandle: key, P1: gt.New2B(gt.TPMSECCPoint{})}).Execute(tr)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := ecdaaSign(tr, key, cm.Counter); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("EC_Ephemeral+ZGen_2Phase", func(b *testing.B) {
		a := createPrimary(b, tr, gt.TPMRHOwner, eccKeyTemplate(exchKeyAttrs, gt.TPMTECCScheme{Scheme: gt.TPMAlgNull}))
		rp, _ := (gt.ReadPublic{ObjectHandle: a.ObjectHandle}).Execute(tr)
		pub, _ := rp.OutPublic.Contents()
		qs, _ := pub.Unique.ECC()
		ecEph := rawCommand(uint32(gt.TPMCCECEphemeral), nil, nil, []byte{0, 3})
		for i := 0; i < b.N; i++ {
			rsp, _ := tr.Send(ecEph)
			q, err := gt.Unmarshal[gt.TPM2BECCPoint](rsp[10 : len(rsp)-2])
			if err != nil {
				b.Fatal(err)
			}
			qe, _ := q.Contents()
			if rc, _ := zgen2Phase(tr, a.ObjectHandle, *qs, *qe, gt.TPMAlgECDH, binary.BigEndian.Uint16(rsp[len(rsp)-2:])); rc != 0 {
				b.Fatalf("rc 0x%x", rc)
			}
		}
	})
}
