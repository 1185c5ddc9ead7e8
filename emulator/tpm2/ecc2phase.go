package tpm2

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"encoding/binary"
	"math/big"

	gt "github.com/google/go-tpm/tpm2"
)

// Two-phase ECC: TPM2_EC_Ephemeral (Part 3 §14.8), TPM2_ZGen_2Phase
// (§14.7), TPM2_Commit (§19.2) and the ECDAA signature that consumes a
// commitment (Part 1 §C.4, Part 3 §20.2).
//
// The ephemeral value r of the first phase is not stored: it is derived
// from a secret commit nonce, the commit counter at the time of the
// commitment and (for Commit) the signing key's Name, so the second phase
// can derive it again from the counter the caller hands back. commitArray
// has one bit per counter value modulo its size, set by the first phase
// and cleared when the second phase uses it, so each r serves once. As in
// the reference implementation the nonce, counter and array are TPM Reset
// data: a TPM Reset draws a new nonce and clears both; Shutdown(STATE)
// keeps them for the following Restart or Resume.

// commitArraySize is the number of commitArray bits; the reference
// implementation's TPM_PT_SPLIT_MAX.
const commitArraySize = 128

// commitString labels the KDFa that derives r (the reference's
// COMMIT_STRING).
const commitString = "ECDAA Commit"

// commitState is the TPM Reset data of the two-phase commands.
type commitState struct {
	nonce   []byte
	counter uint64
	array   [commitArraySize / 8]byte
}

// resetCommit starts the commit state afresh (TPM Reset).
func (t *TPM) resetCommit() {
	t.commit = commitState{nonce: t.randBytes(32)}
}

// saveCommit and restoreCommit carry the commit state through
// Shutdown(STATE); a saved state from before the commit state existed
// restores as a TPM Reset would set it.
func (t *TPM) saveCommit(v *volatileState) {
	v.CommitNonce = t.commit.nonce
	v.CommitCounter = t.commit.counter
	v.CommitArray = append([]byte(nil), t.commit.array[:]...)
}

func (t *TPM) restoreCommit(v *volatileState) {
	if len(v.CommitNonce) == 0 {
		t.resetCommit()
		return
	}
	t.commit = commitState{nonce: v.CommitNonce, counter: v.CommitCounter}
	copy(t.commit.array[:], v.CommitArray)
}

// commitIndex is the commitArray bit of counter value c.
func commitIndex(c uint16) uint16 { return c % commitArraySize }

// generateR derives the ephemeral scalar of a two-phase operation. With
// count nil it is the value for the current counter (the first phase,
// which then calls commitCount); with count set it is the value of the
// commitment that returned *count, if that commitment is still unused and
// within the last commitArraySize counter values.
func (t *TPM) generateR(curve elliptic.Curve, count *uint16, name []byte) (*big.Int, bool) {
	current := t.commit.counter
	if count != nil {
		c := *count
		idx := commitIndex(c)
		if t.commit.array[idx/8]&(1<<(idx%8)) == 0 {
			return nil, false
		}
		// The low bits of c name a slot; its high bits must be those
		// of the counter when that slot was last committed.
		if idx >= commitIndex(uint16(current)) {
			current -= commitArraySize
		}
		if uint16(current)&^(commitArraySize-1) != c&^(commitArraySize-1) {
			return nil, false
		}
		current = current&^0xffff | uint64(c)
	}
	n := curve.Params().N
	size := (n.BitLen() + 7) / 8
	cntr := binary.BigEndian.AppendUint64(nil, current)
	for i := uint32(0); i < 1000; i++ {
		// A value out of range is followed by another: the attempt
		// number extends the context.
		ctx := cntr
		if i != 0 {
			ctx = append(append([]byte(nil), cntr...), u32(i)...)
		}
		b := gt.KDFa(crypto.SHA256, t.commit.nonce, commitString, name, ctx, size*8)
		r := new(big.Int).SetBytes(b)
		if r.Sign() > 0 && r.Cmp(n) < 0 {
			return r, true
		}
	}
	return nil, false
}

// commitCount completes a first phase: it marks the current counter
// value as committed, advances the counter and returns the value the
// second phase must quote (the reference's CryptCommit).
func (t *TPM) commitCount() uint16 {
	if t.orderly {
		// A commitment made after Shutdown(STATE) is not in the saved
		// state: resuming from it would hand out the same counter, and
		// so the same r, again, and two ECDAA signatures with one r
		// reveal the key. The next Startup is a TPM Reset instead.
		t.orderly, t.savedVol = false, nil
	}
	old := uint16(t.commit.counter)
	t.commit.counter++
	idx := commitIndex(old)
	t.commit.array[idx/8] |= 1 << (idx % 8)
	return old
}

// endCommit marks commitment c as used.
func (t *TPM) endCommit(c uint16) {
	idx := commitIndex(c)
	t.commit.array[idx/8] &^= 1 << (idx % 8)
}

// curvePoint returns the coordinates of p if it is on curve.
func curvePoint(curve elliptic.Curve, p *gt.TPMSECCPoint) (x, y *big.Int, ok bool) {
	size := (curve.Params().BitSize + 7) / 8
	if len(p.X.Buffer) > size || len(p.Y.Buffer) > size {
		return nil, nil, false
	}
	x, y = bigOf(p.X.Buffer), bigOf(p.Y.Buffer)
	return x, y, curve.IsOnCurve(x, y)
}

// pointOf encodes (x, y) as TPMS_ECC_POINT with coordinates of the
// curve's field size; the point at infinity (0, 0) is an empty point.
func pointOf(curve elliptic.Curve, x, y *big.Int) gt.TPMSECCPoint {
	if x.Sign() == 0 && y.Sign() == 0 {
		return gt.TPMSECCPoint{}
	}
	size := (curve.Params().BitSize + 7) / 8
	return gt.TPMSECCPoint{X: gt.TPM2BECCParameter{Buffer: x.FillBytes(make([]byte, size))},
		Y: gt.TPM2BECCParameter{Buffer: y.FillBytes(make([]byte, size))}}
}

// scalarMult is [k]P, and infinity reports the point at infinity (which
// the generic arithmetic returns as (0, 0)).
func scalarMult(curve elliptic.Curve, x, y, k *big.Int) (rx, ry *big.Int, infinity bool) {
	//nolint:staticcheck // arbitrary points and scalars: crypto/ecdh covers only x of [d]P
	rx, ry = curve.ScalarMult(x, y, k.Bytes())
	return rx, ry, rx.Sign() == 0 && ry.Sign() == 0
}

// ecEphemeral is TPM2_EC_Ephemeral, Part 3 §14.8.
func (t *TPM) ecEphemeral(c *call, cmd *ecEphemeralCmd) (*ecEphemeralResponse, error) {
	curve, err := curveOf(cmd.CurveID)
	if err != nil {
		return nil, rcP(rcCurve, 1, "%v", err)
	}
	for {
		r, ok := t.generateR(curve, nil, nil)
		if !ok {
			return nil, rcE(rcNoResult, "no ephemeral value")
		}
		//nolint:staticcheck // see scalarMult
		x, y := curve.ScalarBaseMult(r.Bytes())
		// A value giving the point at infinity is committed too, so
		// that the next attempt uses the next counter value.
		cnt := t.commitCount()
		if x.Sign() != 0 || y.Sign() != 0 {
			return &ecEphemeralResponse{Q: gt.New2B(pointOf(curve, x, y)), Counter: cnt}, nil
		}
	}
}

// commitCommand is TPM2_Commit, Part 3 §19.2: the first phase of an
// anonymous (ECDAA) signature, K := [d]P2, L := [r]P2 and E := [r]P1 (or
// [r]G without P1 and P2).
func (t *TPM) commitCommand(c *call, cmd *gt.Commit) (*gt.CommitResponse, error) {
	if len(cmd.P1.Bytes()) == 0 {
		// TPM2B_ECC_POINT may not be empty (Part 2 §11.2.5.2); an
		// absent P1 is a point with two empty coordinates.
		return nil, rcP(rcSize, 1, "empty P1")
	}
	o, err := t.loadedObject(c.handles[0], 1)
	if err != nil {
		return nil, err
	}
	if o.pub.Type != gt.TPMAlgECC {
		return nil, rcH(rcKey, 1, "not an ECC key")
	}
	parms, _ := o.pub.Parameters.ECCDetail()
	if parms.Scheme.Scheme != gt.TPMAlgECDAA {
		return nil, rcH(rcScheme, 1, "key scheme is not anonymous")
	}
	if (len(cmd.S2.Buffer) == 0) != (len(cmd.Y2.Buffer) == 0) {
		return nil, rcP(rcSize, 3, "s2 and y2 go together")
	}
	curve, err := curveOf(parms.CurveID)
	if err != nil {
		return nil, rcH(rcKey, 1, "%v", err)
	}
	r, ok := t.generateR(curve, nil, o.name)
	if !ok {
		return nil, rcE(rcNoResult, "no commit value")
	}
	empty := gt.New2B(gt.TPMSECCPoint{})
	rsp := &gt.CommitResponse{K: empty, L: empty, E: empty}
	if len(cmd.S2.Buffer) != 0 {
		// P2 := (HnameAlg(s2) mod p, y2).
		h, err := o.pub.NameAlg.Hash()
		if err != nil {
			return nil, rcH(rcHash, 1, "nameAlg")
		}
		hh := h.New()
		hh.Write(cmd.S2.Buffer)
		x2 := new(big.Int).Mod(new(big.Int).SetBytes(hh.Sum(nil)), curve.Params().P)
		bx, by, onCurve := curvePoint(curve, &gt.TPMSECCPoint{X: gt.TPM2BECCParameter{Buffer: x2.Bytes()}, Y: cmd.Y2})
		if !onCurve {
			return nil, rcP(rcECCPoint, 2, "P2 not on the curve")
		}
		k, isPriv := o.key.(*ecdsa.PrivateKey)
		if o.publicOnly || !isPriv {
			return nil, rcH(rcKey, 1, "no private key")
		}
		kx, ky, inf := scalarMult(curve, bx, by, k.D)
		if inf {
			return nil, rcE(rcNoResult, "K at infinity")
		}
		lx, ly, inf := scalarMult(curve, bx, by, r)
		if inf {
			return nil, rcE(rcNoResult, "L at infinity")
		}
		rsp.K, rsp.L = gt.New2B(pointOf(curve, kx, ky)), gt.New2B(pointOf(curve, lx, ly))
	}
	var p1 *gt.TPMSECCPoint
	if len(cmd.P1.Bytes()) > 4 {
		if p1, err = cmd.P1.Contents(); err != nil {
			return nil, rcP(rcECCPoint, 1, "%v", err)
		}
		if _, _, ok := curvePoint(curve, p1); !ok {
			return nil, rcP(rcECCPoint, 1, "P1 not on the curve")
		}
	}
	if p1 != nil || len(cmd.S2.Buffer) == 0 {
		var ex, ey *big.Int
		inf := false
		if p1 != nil {
			ex, ey, inf = scalarMult(curve, bigOf(p1.X.Buffer), bigOf(p1.Y.Buffer), r)
		} else {
			//nolint:staticcheck // see scalarMult
			ex, ey = curve.ScalarBaseMult(r.Bytes())
		}
		if inf {
			return nil, rcE(rcNoResult, "E at infinity")
		}
		rsp.E = gt.New2B(pointOf(curve, ex, ey))
	}
	rsp.Counter = t.commitCount()
	return rsp, nil
}

// signECDAA signs digest with the ECDAA scheme, Part 1 §C.4: with r of
// commitment count and a fresh nonce k, T := H(k || digest) and
// s := (r + T·d) mod n; the signature is (k, s). The commitment is used
// up only if a signature results.
func (t *TPM) signECDAA(o *object, h crypto.Hash, ha gt.TPMIAlgHash, count uint16, digest []byte) (gt.TPMTSignature, error) {
	sig := gt.TPMTSignature{SigAlg: gt.TPMAlgECDAA}
	k, ok := o.key.(*ecdsa.PrivateKey)
	if !ok {
		return sig, rcE(rcKey, "not an ECC private key")
	}
	r, ok := t.generateR(k.Curve, &count, o.name)
	if !ok {
		return sig, rcE(rcValue, "commit counter %d not usable", count)
	}
	n := k.Curve.Params().N
	size := (n.BitLen() + 7) / 8
	for {
		nonce, err := ecdsa.GenerateKey(k.Curve, t.rand)
		if err != nil {
			return sig, rcE(rcFailure, "%v", err)
		}
		nk := nonce.D.Bytes()
		th := h.New()
		th.Write(nk)
		th.Write(digest)
		tv := new(big.Int).Mod(new(big.Int).SetBytes(th.Sum(nil)), n)
		if tv.Sign() == 0 {
			continue
		}
		s := tv.Mul(tv, k.D)
		s.Add(s, r).Mod(s, n)
		if s.Sign() == 0 {
			continue
		}
		t.endCommit(count)
		sig.Signature = gt.NewTPMUSignature(gt.TPMAlgECDAA, &gt.TPMSSignatureECC{Hash: ha,
			SignatureR: gt.TPM2BECCParameter{Buffer: nk},
			SignatureS: gt.TPM2BECCParameter{Buffer: s.FillBytes(make([]byte, size))}})
		return sig, nil
	}
}

// zgen2Phase is TPM2_ZGen_2Phase, Part 3 §14.7: the second phase of a
// key exchange with static key keyA and the ephemeral key of
// EC_Ephemeral's counter, against party B's static and ephemeral keys.
func (t *TPM) zgen2Phase(c *call, cmd *zgen2PhaseCmd) (*zgen2PhaseResponse, error) {
	// What the parameters' unmarshalling refuses comes first.
	if len(cmd.InQsB.Bytes()) == 0 {
		return nil, rcP(rcSize, 1, "empty inQsB")
	}
	if len(cmd.InQeB.Bytes()) == 0 {
		return nil, rcP(rcSize, 2, "empty inQeB")
	}
	switch cmd.InScheme {
	case gt.TPMAlgNull, gt.TPMAlgECDH, gt.TPMAlgECMQV, gt.TPMAlgSM2:
	default:
		// TPMI_ECC_KEY_EXCHANGE (Part 2 §11.2.5.3).
		return nil, rcP(rcScheme, 3, "key exchange scheme 0x%x", uint16(cmd.InScheme))
	}
	o, err := t.loadedObject(c.handles[0], 1)
	if err != nil {
		return nil, err
	}
	if o.pub.Type != gt.TPMAlgECC {
		return nil, rcH(rcKey, 1, "not an ECC key")
	}
	if a := o.attrs(); a.Restricted || !a.Decrypt {
		return nil, rcH(rcAttributes, 1, "not an unrestricted decryption key")
	}
	parms, _ := o.pub.Parameters.ECCDetail()
	scheme := gt.TPMAlgID(parms.Scheme.Scheme)
	if scheme == gt.TPMAlgNull {
		scheme = cmd.InScheme
	} else if scheme != cmd.InScheme {
		return nil, rcP(rcScheme, 3, "scheme differs from the key's")
	}
	if scheme == gt.TPMAlgNull {
		return nil, rcP(rcScheme, 3, "no scheme")
	}
	curve, err := curveOf(parms.CurveID)
	if err != nil {
		return nil, rcH(rcKey, 1, "%v", err)
	}
	qsB, err := cmd.InQsB.Contents()
	if err != nil {
		return nil, rcP(rcECCPoint, 1, "%v", err)
	}
	sx, sy, ok := curvePoint(curve, qsB)
	if !ok {
		return nil, rcP(rcECCPoint, 1, "inQsB not on the curve")
	}
	qeB, err := cmd.InQeB.Contents()
	if err != nil {
		return nil, rcP(rcECCPoint, 2, "%v", err)
	}
	ex, ey, ok := curvePoint(curve, qeB)
	if !ok {
		return nil, rcP(rcECCPoint, 2, "inQeB not on the curve")
	}
	r, ok := t.generateR(curve, &cmd.Counter, nil)
	if !ok {
		return nil, rcP(rcValue, 4, "commit counter %d not usable", cmd.Counter)
	}
	k, isPriv := o.key.(*ecdsa.PrivateKey)
	if o.publicOnly || !isPriv {
		return nil, rcH(rcKey, 1, "no private key")
	}
	rsp := &zgen2PhaseResponse{OutZ1: gt.New2B(gt.TPMSECCPoint{}), OutZ2: gt.New2B(gt.TPMSECCPoint{})}
	switch scheme {
	case gt.TPMAlgECDH:
		// SP 800-56A §6.1.1.2 Full Unified Model, C(2e, 2s, ECC CDH):
		// Zs := [dsA]QsB, Ze := [deA]QeB.
		zx, zy, inf := scalarMult(curve, sx, sy, k.D)
		if inf {
			return nil, rcE(rcNoResult, "Zs at infinity")
		}
		wx, wy, inf := scalarMult(curve, ex, ey, r)
		if inf {
			return nil, rcE(rcNoResult, "Ze at infinity")
		}
		rsp.OutZ1, rsp.OutZ2 = gt.New2B(pointOf(curve, zx, zy)), gt.New2B(pointOf(curve, wx, wy))
	case gt.TPMAlgECMQV:
		zx, zy, ok := mqvZ(curve, k.D, r, sx, sy, ex, ey)
		if !ok {
			return nil, rcE(rcNoResult, "MQV result at infinity")
		}
		rsp.OutZ1 = gt.New2B(pointOf(curve, zx, zy))
	default:
		// SM2 key exchange needs the SM2 curve, which this TPM does
		// not implement.
		return nil, rcP(rcScheme, 3, "key exchange scheme 0x%x", uint16(scheme))
	}
	t.endCommit(cmd.Counter)
	return rsp, nil
}

// mqvZ is SP 800-56A §6.1.1.4 Full MQV, C(2e, 2s, ECC MQV), as seen from
// party A: implicitsigA := (deA + avf(QeA)·dsA) mod n and
// Z := [h·implicitsigA](QeB + [avf(QeB)]QsB); the NIST curves have h = 1.
func mqvZ(curve elliptic.Curve, dsA, deA, qsBx, qsBy, qeBx, qeBy *big.Int) (x, y *big.Int, ok bool) {
	n := curve.Params().N
	//nolint:staticcheck // see scalarMult
	qeAx, _ := curve.ScalarBaseMult(deA.Bytes())
	ta := new(big.Int).Mul(avf(qeAx, n), dsA)
	ta.Add(ta, deA).Mod(ta, n)
	px, py, inf := scalarMult(curve, qsBx, qsBy, avf(qeBx, n))
	if inf {
		return nil, nil, false
	}
	//nolint:staticcheck // see scalarMult
	px, py = curve.Add(px, py, qeBx, qeBy)
	x, y, inf = scalarMult(curve, px, py, ta)
	return x, y, !inf
}

// avf is the associate value function of SP 800-56A §5.7.2.2:
// 2^f + (x mod 2^f) with f = ceil(ceil(log2 n) / 2).
func avf(x, n *big.Int) *big.Int {
	f := uint((n.BitLen() + 1) / 2)
	m := new(big.Int).Lsh(big.NewInt(1), f)
	v := new(big.Int).Mod(x, m)
	return v.Add(v, m)
}
