package conformance

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"math/big"

	gt "github.com/google/go-tpm/tpm2"
	"github.com/google/go-tpm/tpm2/transport"
)

// Two-phase ECC (Part 3 §14.7, §14.8, §19.2) and ECDAA signing. The
// ephemeral values come from each TPM's secret commit nonce, so steps
// compare what does not depend on it: response codes, sizes, counter
// values, points being on the curve, and algebraic relations checked with
// keys whose private parts the test knows.

// knownECC is a P-256 key pair with a private key fixed by seed.
func knownECC(seed byte) *ecdsa.PrivateKey {
	d := sha256.Sum256([]byte{seed, 'e', 'c', 'c'})
	k, err := ecdsa.ParseRawPrivateKey(elliptic.P256(), d[:])
	if err != nil {
		panic(err)
	}
	return k
}

func p256Point(x, y *big.Int) gt.TPMSECCPoint {
	return gt.TPMSECCPoint{X: gt.TPM2BECCParameter{Buffer: x.FillBytes(make([]byte, 32))},
		Y: gt.TPM2BECCParameter{Buffer: y.FillBytes(make([]byte, 32))}}
}

// loadKnownECC loads k with LoadExternal (NULL hierarchy) with the given
// attributes and scheme.
func loadKnownECC(tr transport.TPM, k *ecdsa.PrivateKey, attrs gt.TPMAObject, scheme gt.TPMTECCScheme) (gt.NamedHandle, func(), error) {
	pub := gt.TPMTPublic{Type: gt.TPMAlgECC, NameAlg: gt.TPMAlgSHA256, ObjectAttributes: attrs,
		Parameters: gt.NewTPMUPublicParms(gt.TPMAlgECC, &gt.TPMSECCParms{CurveID: gt.TPMECCNistP256, Scheme: scheme,
			Symmetric: gt.TPMTSymDefObject{Algorithm: gt.TPMAlgNull}, KDF: gt.TPMTKDFScheme{Scheme: gt.TPMAlgNull}}),
		Unique: gt.NewTPMUPublicID(gt.TPMAlgECC, &gt.TPMSECCPoint{
			X: gt.TPM2BECCParameter{Buffer: k.X.FillBytes(make([]byte, 32))},
			Y: gt.TPM2BECCParameter{Buffer: k.Y.FillBytes(make([]byte, 32))}})}
	sens := gt.TPMTSensitive{SensitiveType: gt.TPMAlgECC,
		Sensitive: gt.NewTPMUSensitiveComposite(gt.TPMAlgECC, &gt.TPM2BECCParameter{Buffer: k.D.FillBytes(make([]byte, 32))})}
	r, err := (gt.LoadExternal{InPublic: gt.New2B(pub), InPrivate: gt.New2B(sens), Hierarchy: gt.TPMRHNull}).Execute(tr)
	if err != nil {
		return gt.NamedHandle{}, func() {}, err
	}
	h := gt.NamedHandle{Handle: r.ObjectHandle, Name: r.Name}
	return h, func() { (gt.FlushContext{FlushHandle: r.ObjectHandle}).Execute(tr) }, nil
}

func ecdaaScheme(count uint16) gt.TPMTECCScheme {
	return gt.TPMTECCScheme{Scheme: gt.TPMAlgECDAA, Details: gt.NewTPMUAsymScheme(gt.TPMAlgECDAA, &gt.TPMSSchemeECDAA{HashAlg: gt.TPMAlgSHA256, Count: count})}
}

func ecdhScheme() gt.TPMTECCScheme {
	return gt.TPMTECCScheme{Scheme: gt.TPMAlgECDH, Details: gt.NewTPMUAsymScheme(gt.TPMAlgECDH, &gt.TPMSKeySchemeECDH{HashAlg: gt.TPMAlgSHA256})}
}

var signOnly = gt.TPMAObject{SignEncrypt: true, UserWithAuth: true}
var decryptOnly = gt.TPMAObject{Decrypt: true, UserWithAuth: true}

// emptyPoint is a TPM2B_ECC_POINT holding two empty coordinates, how a
// caller leaves out an optional point.
var emptyPoint = gt.New2B(gt.TPMSECCPoint{})

// pointState describes a returned point: its coordinate sizes and
// whether it is on P-256.
func pointState(p gt.TPM2BECCPoint) string {
	q, err := p.Contents()
	if err != nil {
		return "bad point"
	}
	if len(q.X.Buffer) == 0 && len(q.Y.Buffer) == 0 {
		return "empty"
	}
	on := elliptic.P256().IsOnCurve(new(big.Int).SetBytes(q.X.Buffer), new(big.Int).SetBytes(q.Y.Buffer))
	return fmt.Sprintf("%d/%d on=%v", len(q.X.Buffer), len(q.Y.Buffer), on)
}

func pointXY(p gt.TPM2BECCPoint) (x, y *big.Int) {
	q, err := p.Contents()
	if err != nil {
		return new(big.Int), new(big.Int)
	}
	return new(big.Int).SetBytes(q.X.Buffer), new(big.Int).SetBytes(q.Y.Buffer)
}

// p2ForS2 finds an s2 whose x2 := SHA-256(s2) mod p is the x of a P-256
// point and returns s2 with y2.
func p2ForS2() ([]byte, *big.Int, *big.Int) {
	c := elliptic.P256().Params()
	for i := 0; ; i++ {
		s2 := []byte(fmt.Sprintf("s2-%d", i))
		h := sha256.Sum256(s2)
		x := new(big.Int).Mod(new(big.Int).SetBytes(h[:]), c.P)
		// y² = x³ - 3x + b
		y2 := new(big.Int).Exp(x, big.NewInt(3), c.P)
		y2.Sub(y2, new(big.Int).Mul(big.NewInt(3), x))
		y2.Add(y2, c.B).Mod(y2, c.P)
		if y := new(big.Int).ModSqrt(y2, c.P); y != nil {
			return s2, x, y
		}
	}
}

// ecEphemeralRaw sends TPM2_EC_Ephemeral (go-tpm has no structure for it)
// and returns Q, the counter, or the response code.
func ecEphemeralRaw(tr transport.TPM, curve gt.TPMECCCurve) (gt.TPMSECCPoint, uint16, string) {
	rsp, err := tr.Send(rawCommand(uint32(gt.TPMCCECEphemeral), nil, nil, binary.BigEndian.AppendUint16(nil, uint16(curve))))
	if err != nil {
		return gt.TPMSECCPoint{}, 0, "error: " + err.Error()
	}
	if len(rsp) < 10 {
		return gt.TPMSECCPoint{}, 0, fmt.Sprintf("short response % x", rsp)
	}
	if rc := binary.BigEndian.Uint32(rsp[6:]); rc != 0 {
		return gt.TPMSECCPoint{}, 0, fmt.Sprintf("rc=0x%03x", rc)
	}
	b := bytes.NewBuffer(rsp[10:])
	q, err := gt.Unmarshal[gt.TPM2BECCPoint](b.Next(2 + int(binary.BigEndian.Uint16(b.Bytes()))))
	if err != nil || b.Len() != 2 {
		return gt.TPMSECCPoint{}, 0, fmt.Sprintf("bad response % x", rsp)
	}
	p, err := q.Contents()
	if err != nil {
		return gt.TPMSECCPoint{}, 0, "bad Q"
	}
	return *p, binary.BigEndian.Uint16(b.Bytes()), "ok"
}

// zgen2PhaseRaw sends TPM2_ZGen_2Phase with an empty password for keyA
// and returns outZ1 and outZ2, or the response code.
func zgen2PhaseRaw(tr transport.TPM, keyA gt.TPMHandle, qsB, qeB []byte, scheme gt.TPMAlgID, counter uint16) (z1, z2 gt.TPM2BECCPoint, rc string) {
	p := append(append([]byte{}, qsB...), qeB...)
	p = binary.BigEndian.AppendUint16(p, uint16(scheme))
	p = binary.BigEndian.AppendUint16(p, counter)
	rsp, err := tr.Send(rawCommand(uint32(gt.TPMCCZGen2Phase), []uint32{uint32(keyA)}, emptyPassword, p))
	if err != nil {
		return z1, z2, "error: " + err.Error()
	}
	if len(rsp) < 10 {
		return z1, z2, fmt.Sprintf("short response % x", rsp)
	}
	if rc := binary.BigEndian.Uint32(rsp[6:]); rc != 0 {
		return z1, z2, fmt.Sprintf("rc=0x%03x", rc)
	}
	b := bytes.NewBuffer(rsp[14:]) // after parameterSize
	p1, err1 := gt.Unmarshal[gt.TPM2BECCPoint](b.Next(2 + int(binary.BigEndian.Uint16(b.Bytes()))))
	p2, err2 := gt.Unmarshal[gt.TPM2BECCPoint](b.Next(2 + int(binary.BigEndian.Uint16(b.Bytes()))))
	if err1 != nil || err2 != nil {
		return z1, z2, fmt.Sprintf("bad response % x", rsp)
	}
	return *p1, *p2, "ok"
}

func pointBytes(p gt.TPMSECCPoint) []byte { return gt.Marshal(gt.New2B(p)) }

func eccTwoPhaseSteps() []diffStep {
	curve := elliptic.P256()
	n := curve.Params().N
	return []diffStep{
		{"ECDAA and ECMQV in TPM_CAP_ALGS, TPM_PT_SPLIT_MAX", func(tr transport.TPM) string {
			r, err := (gt.GetCapability{Capability: gt.TPMCapAlgs, Property: uint32(gt.TPMAlgECDAA), PropertyCount: 8}).Execute(tr)
			if err != nil {
				return rcString(err)
			}
			l, err := r.CapabilityData.Data.Algorithms()
			if err != nil {
				return err.Error()
			}
			out := ""
			for _, a := range l.AlgProperties {
				if a.Alg == gt.TPMAlgECDAA || a.Alg == gt.TPMAlgECMQV {
					out += fmt.Sprintf("%x:%+v ", uint16(a.Alg), a.AlgProperties)
				}
			}
			p, err := (gt.GetCapability{Capability: gt.TPMCapTPMProperties, Property: 0x128, PropertyCount: 1}).Execute(tr)
			if err != nil {
				return out + rcString(err)
			}
			props, _ := p.CapabilityData.Data.TPMProperties()
			return out + fmt.Sprintf("%+v", props.TPMProperty[:1])
		}},
		{"EC_Ephemeral: Q on the curve, counter advances by one", func(tr transport.TPM) string {
			q1, c1, rc1 := ecEphemeralRaw(tr, gt.TPMECCNistP256)
			q2, c2, rc2 := ecEphemeralRaw(tr, gt.TPMECCNistP256)
			q3, c3, rc3 := ecEphemeralRaw(tr, gt.TPMECCNistP384)
			_, _, rc4 := ecEphemeralRaw(tr, gt.TPMECCCurve(0x0999))
			on := curve.IsOnCurve(new(big.Int).SetBytes(q1.X.Buffer), new(big.Int).SetBytes(q1.Y.Buffer)) &&
				elliptic.P384().IsOnCurve(new(big.Int).SetBytes(q3.X.Buffer), new(big.Int).SetBytes(q3.Y.Buffer))
			return fmt.Sprintf("%s %s %s %s first=%d steps=%d,%d sizes=%d/%d,%d/%d on=%v differ=%v", rc1, rc2, rc3, rc4,
				c1, c2-c1, c3-c2, len(q1.X.Buffer), len(q1.Y.Buffer), len(q3.X.Buffer), len(q3.Y.Buffer), on,
				!bytes.Equal(q1.X.Buffer, q2.X.Buffer))
		}},
		{"CreatePrimary of an ECDAA signing key, Commit without and with P1", func(tr transport.TPM) string {
			tmpl := gt.TPMTPublic{Type: gt.TPMAlgECC, NameAlg: gt.TPMAlgSHA256,
				ObjectAttributes: gt.TPMAObject{SignEncrypt: true, UserWithAuth: true, FixedTPM: true, FixedParent: true, SensitiveDataOrigin: true},
				Parameters: gt.NewTPMUPublicParms(gt.TPMAlgECC, &gt.TPMSECCParms{CurveID: gt.TPMECCNistP256, Scheme: ecdaaScheme(0),
					Symmetric: gt.TPMTSymDefObject{Algorithm: gt.TPMAlgNull}, KDF: gt.TPMTKDFScheme{Scheme: gt.TPMAlgNull}}),
				Unique: gt.NewTPMUPublicID(gt.TPMAlgECC, &gt.TPMSECCPoint{})}
			cp, err := (gt.CreatePrimary{PrimaryHandle: gt.TPMRHOwner, InPublic: gt.New2B(tmpl)}).Execute(tr)
			if err != nil {
				return "CreatePrimary " + rcString(err)
			}
			defer (gt.FlushContext{FlushHandle: cp.ObjectHandle}).Execute(tr)
			key := gt.NamedHandle{Handle: cp.ObjectHandle, Name: cp.Name}
			r1, err := (gt.Commit{SignHandle: key, P1: emptyPoint}).Execute(tr)
			if err != nil {
				return "Commit " + rcString(err)
			}
			gx, gy := curve.Params().Gx, curve.Params().Gy
			r2, err := (gt.Commit{SignHandle: key, P1: gt.New2B(p256Point(gx, gy))}).Execute(tr)
			if err != nil {
				return "Commit(P1) " + rcString(err)
			}
			// With P1 = G, E = [r]G: both E are on the curve, different.
			e1x, _ := pointXY(r1.E)
			e2x, _ := pointXY(r2.E)
			return fmt.Sprintf("K=%s L=%s E=%s | K=%s L=%s E=%s | counter step %d differ=%v",
				pointState(r1.K), pointState(r1.L), pointState(r1.E), pointState(r2.K), pointState(r2.L), pointState(r2.E),
				r2.Counter-r1.Counter, e1x.Cmp(e2x) != 0)
		}},
		{"Commit with s2/y2: K = [d]P2 for a known key; error codes", func(tr transport.TPM) string {
			k := knownECC(1)
			key, done, err := loadKnownECC(tr, k, signOnly, ecdaaScheme(0))
			if err != nil {
				return "LoadExternal " + rcString(err)
			}
			defer done()
			s2, x2, y2 := p2ForS2()
			y2b := gt.TPM2BECCParameter{Buffer: y2.FillBytes(make([]byte, 32))}
			r, err := (gt.Commit{SignHandle: key, P1: emptyPoint, S2: gt.TPM2BSensitiveData{Buffer: s2}, Y2: y2b}).Execute(tr)
			out := rcString(err)
			if err == nil {
				//nolint:staticcheck // test arithmetic on a known key
				kx, ky := curve.ScalarMult(x2, y2, k.D.Bytes())
				gotX, gotY := pointXY(r.K)
				out += fmt.Sprintf(" K=[d]P2:%v L=%s E=%s", gotX.Cmp(kx) == 0 && gotY.Cmp(ky) == 0, pointState(r.L), pointState(r.E))
			}
			gx, gy := curve.Params().Gx, curve.Params().Gy
			offCurve := p256Point(gx, new(big.Int).Add(gy, big.NewInt(1)))
			bad := []gt.Commit{
				{SignHandle: key, P1: emptyPoint, S2: gt.TPM2BSensitiveData{Buffer: s2}},                                              // s2 without y2
				{SignHandle: key, P1: emptyPoint, Y2: y2b},                                                                            // y2 without s2
				{SignHandle: key, P1: emptyPoint, S2: gt.TPM2BSensitiveData{Buffer: s2}, Y2: gt.TPM2BECCParameter{Buffer: []byte{1}}}, // P2 off the curve
				{SignHandle: key, P1: gt.New2B(offCurve)},                                                                             // P1 off the curve
				{SignHandle: key, P1: gt.New2B(p256Point(gx, gy)), S2: gt.TPM2BSensitiveData{Buffer: s2}, Y2: y2b},                    // all three
			}
			for _, c := range bad {
				_, err := c.Execute(tr)
				out += " " + rcString(err)
			}
			// An empty TPM2B_ECC_POINT (size 0) for P1.
			p := []byte{0, 0, 0, 0, 0, 0}
			out += " " + sendRC(tr, rawCommand(uint32(gt.TPMCCCommit), []uint32{uint32(key.Handle)}, emptyPassword, p))
			return out
		}},
		{"Commit refuses keys without the ECDAA scheme", func(tr transport.TPM) string {
			out := ""
			for _, c := range []struct {
				attrs  gt.TPMAObject
				scheme gt.TPMTECCScheme
			}{
				{signOnly, gt.TPMTECCScheme{Scheme: gt.TPMAlgECDSA, Details: gt.NewTPMUAsymScheme(gt.TPMAlgECDSA, &gt.TPMSSigSchemeECDSA{HashAlg: gt.TPMAlgSHA256})}},
				{signOnly, gt.TPMTECCScheme{Scheme: gt.TPMAlgNull}},
				{decryptOnly, ecdhScheme()},
			} {
				key, done, err := loadKnownECC(tr, knownECC(2), c.attrs, c.scheme)
				if err != nil {
					out += "LoadExternal " + rcString(err) + " "
					continue
				}
				_, err = (gt.Commit{SignHandle: key, P1: emptyPoint}).Execute(tr)
				out += rcString(err) + " "
				done()
			}
			// An RSA key.
			rk, err := (gt.CreatePrimary{PrimaryHandle: gt.TPMRHOwner, InPublic: gt.New2B(gt.RSASRKTemplate)}).Execute(tr)
			if err != nil {
				return out + rcString(err)
			}
			defer (gt.FlushContext{FlushHandle: rk.ObjectHandle}).Execute(tr)
			_, err = (gt.Commit{SignHandle: gt.NamedHandle{Handle: rk.ObjectHandle, Name: rk.Name}, P1: emptyPoint}).Execute(tr)
			return out + rcString(err)
		}},
		{"Sign ECDAA: s·G = E + T·Q, counter used once", func(tr transport.TPM) string {
			k := knownECC(3)
			key, done, err := loadKnownECC(tr, k, signOnly, ecdaaScheme(0))
			if err != nil {
				return "LoadExternal " + rcString(err)
			}
			defer done()
			cm, err := (gt.Commit{SignHandle: key, P1: emptyPoint}).Execute(tr)
			if err != nil {
				return "Commit " + rcString(err)
			}
			digest := sha256.Sum256([]byte("ecdaa message"))
			sign := func(scheme gt.TPMTSigScheme) (*gt.SignResponse, error) {
				return (gt.Sign{KeyHandle: key, Digest: gt.TPM2BDigest{Buffer: digest[:]}, InScheme: scheme,
					Validation: gt.TPMTTKHashCheck{Tag: gt.TPMSTHashCheck, Hierarchy: gt.TPMRHNull}}).Execute(tr)
			}
			daa := func(count uint16) gt.TPMTSigScheme {
				return gt.TPMTSigScheme{Scheme: gt.TPMAlgECDAA, Details: gt.NewTPMUSigScheme(gt.TPMAlgECDAA, &gt.TPMSSchemeECDAA{HashAlg: gt.TPMAlgSHA256, Count: count})}
			}
			// The key's scheme alone carries no count.
			_, err = sign(gt.TPMTSigScheme{Scheme: gt.TPMAlgNull})
			out := "null scheme " + rcString(err)
			_, err = sign(gt.TPMTSigScheme{Scheme: gt.TPMAlgECDSA, Details: gt.NewTPMUSigScheme(gt.TPMAlgECDSA, &gt.TPMSSchemeHash{HashAlg: gt.TPMAlgSHA256})})
			out += "; ECDSA " + rcString(err)
			_, err = sign(daa(cm.Counter + 1))
			out += "; uncommitted count " + rcString(err)
			rs, err := sign(daa(cm.Counter))
			out += "; sign " + rcString(err)
			if err != nil {
				return out
			}
			sig, err := rs.Signature.Signature.ECDAA()
			if err != nil {
				return out + " not ECDAA"
			}
			// T := SHA-256(nonce || digest); s·G must equal E + [T]Q
			// where E = [r]G came from the commitment.
			th := sha256.New()
			th.Write(sig.SignatureR.Buffer)
			th.Write(digest[:])
			tv := new(big.Int).Mod(new(big.Int).SetBytes(th.Sum(nil)), n)
			//nolint:staticcheck // test arithmetic
			lx, ly := curve.ScalarBaseMult(sig.SignatureS.Buffer)
			ex, ey := pointXY(cm.E)
			//nolint:staticcheck // test arithmetic
			tqx, tqy := curve.ScalarMult(k.X, k.Y, tv.Bytes())
			//nolint:staticcheck // test arithmetic
			rx, ry := curve.Add(ex, ey, tqx, tqy)
			valid := "invalid"
			if lx.Cmp(rx) == 0 && ly.Cmp(ry) == 0 {
				valid = "valid"
			}
			out += fmt.Sprintf(" alg=%x hash=%x %s sizeS=%d nonce<=32:%v", uint16(rs.Signature.SigAlg), uint16(sig.Hash), valid,
				len(sig.SignatureS.Buffer), len(sig.SignatureR.Buffer) <= 32)
			_, err = sign(daa(cm.Counter))
			out += "; again " + rcString(err)
			_, err = (gt.VerifySignature{KeyHandle: key.Handle, Digest: gt.TPM2BDigest{Buffer: digest[:]}, Signature: rs.Signature}).Execute(tr)
			return out + "; VerifySignature " + rcString(err)
		}},
		{"ZGen_2Phase ECDH between two known keys both ways", func(tr transport.TPM) string {
			ka, kb := knownECC(4), knownECC(5)
			a, doneA, err := loadKnownECC(tr, ka, decryptOnly, ecdhScheme())
			if err != nil {
				return "LoadExternal " + rcString(err)
			}
			defer doneA()
			b, doneB, err := loadKnownECC(tr, kb, decryptOnly, gt.TPMTECCScheme{Scheme: gt.TPMAlgNull})
			if err != nil {
				return "LoadExternal " + rcString(err)
			}
			defer doneB()
			qeA, cA, rc := ecEphemeralRaw(tr, gt.TPMECCNistP256)
			if rc != "ok" {
				return "EC_Ephemeral " + rc
			}
			qeB, cB, rc := ecEphemeralRaw(tr, gt.TPMECCNistP256)
			if rc != "ok" {
				return "EC_Ephemeral " + rc
			}
			qsA, qsB := pointBytes(p256Point(ka.X, ka.Y)), pointBytes(p256Point(kb.X, kb.Y))
			z1a, z2a, rcA := zgen2PhaseRaw(tr, a.Handle, qsB, pointBytes(qeB), gt.TPMAlgECDH, cA)
			z1b, z2b, rcB := zgen2PhaseRaw(tr, b.Handle, qsA, pointBytes(qeA), gt.TPMAlgECDH, cB)
			out := rcA + " " + rcB
			if rcA == "ok" && rcB == "ok" {
				z1, _ := z1a.Contents()
				out += fmt.Sprintf(" Zs=%x Zs same both ways=%v Ze same both ways=%v Ze=%s",
					gt.Marshal(z1), bytes.Equal(gt.Marshal(z1a), gt.Marshal(z1b)), bytes.Equal(gt.Marshal(z2a), gt.Marshal(z2b)), pointState(z2a))
			}
			// The counter is used up; other errors.
			_, _, rc = zgen2PhaseRaw(tr, a.Handle, qsB, pointBytes(qeB), gt.TPMAlgECDH, cA)
			out += " reuse " + rc
			_, c2, _ := ecEphemeralRaw(tr, gt.TPMECCNistP256)
			gx, gy := curve.Params().Gx, curve.Params().Gy
			off := pointBytes(p256Point(gx, new(big.Int).Add(gy, big.NewInt(1))))
			for _, c := range []struct {
				h       gt.TPMHandle
				qs, qe  []byte
				scheme  gt.TPMAlgID
				counter uint16
			}{
				{a.Handle, qsB, pointBytes(qeB), gt.TPMAlgECMQV, c2}, // differs from the key's scheme
				{b.Handle, qsA, pointBytes(qeA), gt.TPMAlgNull, c2},  // no scheme at all
				{a.Handle, off, pointBytes(qeB), gt.TPMAlgECDH, c2},
				{a.Handle, qsB, off, gt.TPMAlgECDH, c2},
				{a.Handle, []byte{0, 0}, pointBytes(qeB), gt.TPMAlgECDH, c2},
				{a.Handle, qsB, pointBytes(qeB), gt.TPMAlgECDSA, c2},
				{a.Handle, qsB, pointBytes(qeB), gt.TPMAlgECDH, c2 + 1},
				{a.Handle, qsB, pointBytes(qeB), gt.TPMAlgECDH, c2 + 128},
			} {
				_, _, rc := zgen2PhaseRaw(tr, c.h, c.qs, c.qe, c.scheme, c.counter)
				out += " " + rc
			}
			// A signing key cannot take part.
			s, doneS, err := loadKnownECC(tr, knownECC(6), signOnly, ecdaaScheme(0))
			if err != nil {
				return out + " LoadExternal " + rcString(err)
			}
			defer doneS()
			_, _, rc = zgen2PhaseRaw(tr, s.Handle, qsB, pointBytes(qeB), gt.TPMAlgECDH, c2)
			_, _, rcOK := zgen2PhaseRaw(tr, a.Handle, qsB, pointBytes(qeB), gt.TPMAlgECDH, c2)
			return out + " sign key " + rc + " then " + rcOK
		}},
	}
}
