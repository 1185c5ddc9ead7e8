package tpm2

import (
	"encoding/binary"
	"sync"

	gt "github.com/google/go-tpm/tpm2"
)

// Hand-written parameter decoders for the commands on the hot path (PCR
// measurement, signing, quoting, resource-manager context swapping).
// go-tpm's reflective decoder costs ~20 µs per command, more than the
// command itself; these replace it for the table entries set in init.
// The generic path remains the reference: tests compare both.

// paramReader decodes a parameter area, tracking the parameter number
// for format-one response codes.
type paramReader struct {
	b   []byte
	n   int // current parameter number (1-based)
	err error
}

func (r *paramReader) fail(rc uint32) {
	if r.err == nil {
		r.err = rcP(rc, r.n, "parameter %d", r.n)
	}
}

func (r *paramReader) next() { r.n++ }

func (r *paramReader) u8() uint8 {
	if r.err != nil || len(r.b) < 1 {
		r.fail(rcInsufficient)
		return 0
	}
	v := r.b[0]
	r.b = r.b[1:]
	return v
}

func (r *paramReader) u16() uint16 {
	if r.err != nil || len(r.b) < 2 {
		r.fail(rcInsufficient)
		return 0
	}
	v := binary.BigEndian.Uint16(r.b)
	r.b = r.b[2:]
	return v
}

func (r *paramReader) u32() uint32 {
	if r.err != nil || len(r.b) < 4 {
		r.fail(rcInsufficient)
		return 0
	}
	v := binary.BigEndian.Uint32(r.b)
	r.b = r.b[4:]
	return v
}

func (r *paramReader) u64() uint64 {
	if r.err != nil || len(r.b) < 8 {
		r.fail(rcInsufficient)
		return 0
	}
	v := binary.BigEndian.Uint64(r.b)
	r.b = r.b[8:]
	return v
}

// sized reads a TPM2B, refusing more than max octets.
func (r *paramReader) sized(max int) []byte {
	n := int(r.u16())
	if r.err != nil {
		return nil
	}
	if n > max {
		r.fail(rcSize)
		return nil
	}
	if len(r.b) < n {
		r.fail(rcInsufficient)
		return nil
	}
	v := r.b[:n]
	r.b = r.b[n:]
	return v
}

// done checks that the parameter area was consumed exactly.
func (r *paramReader) done() error {
	if r.err != nil {
		return r.err
	}
	if len(r.b) != 0 {
		return rcE(rcSize, "%d trailing parameter bytes", len(r.b))
	}
	return nil
}

func (r *paramReader) pcrSelection() gt.TPMLPCRSelection {
	var s gt.TPMLPCRSelection
	n := r.u32()
	if r.err == nil && n > 16 {
		r.fail(rcSize)
	}
	for i := uint32(0); i < n && r.err == nil; i++ {
		alg := gt.TPMIAlgHash(r.u16())
		sz := int(r.u8())
		if r.err != nil {
			break
		}
		if len(r.b) < sz {
			r.fail(rcInsufficient)
			break
		}
		if sz > 4 {
			r.fail(rcValue)
			break
		}
		s.PCRSelections = append(s.PCRSelections, gt.TPMSPCRSelection{Hash: alg, PCRSelect: r.b[:sz]})
		r.b = r.b[sz:]
	}
	return s
}

func marshalPCRSelection(s *gt.TPMLPCRSelection) []byte {
	b := u32(uint32(len(s.PCRSelections)))
	for _, p := range s.PCRSelections {
		b = append(b, u16(uint16(p.Hash))...)
		b = append(b, byte(len(p.PCRSelect)))
		b = append(b, p.PCRSelect...)
	}
	return b
}

// sigScheme reads TPMT_SIG_SCHEME.
func (r *paramReader) sigScheme() gt.TPMTSigScheme {
	alg := gt.TPMIAlgSigScheme(r.u16())
	switch gt.TPMAlgID(alg) {
	case gt.TPMAlgNull:
		return gt.TPMTSigScheme{Scheme: alg}
	case gt.TPMAlgRSASSA, gt.TPMAlgRSAPSS, gt.TPMAlgECDSA, gt.TPMAlgSM2, gt.TPMAlgECSchnorr:
		h := gt.TPMIAlgHash(r.u16())
		return gt.TPMTSigScheme{Scheme: alg, Details: gt.NewTPMUSigScheme(gt.TPMAlgID(alg), &gt.TPMSSchemeHash{HashAlg: h})}
	case gt.TPMAlgHMAC:
		h := gt.TPMIAlgHash(r.u16())
		return gt.TPMTSigScheme{Scheme: alg, Details: gt.NewTPMUSigScheme(gt.TPMAlgHMAC, &gt.TPMSSchemeHMAC{HashAlg: h})}
	case gt.TPMAlgECDAA:
		h := gt.TPMIAlgHash(r.u16())
		cnt := r.u16()
		return gt.TPMTSigScheme{Scheme: alg, Details: gt.NewTPMUSigScheme(gt.TPMAlgECDAA, &gt.TPMSSchemeECDAA{HashAlg: h, Count: cnt})}
	}
	r.fail(rcScheme)
	return gt.TPMTSigScheme{Scheme: gt.TPMAlgNull}
}

func (t *TPM) fastPCRExtend(c *call) (*reply, error) {
	r := &paramReader{b: c.params, n: 1}
	cnt := r.u32()
	if r.err == nil && cnt > uint32(len(pcrAlgs)) {
		return nil, rcP(rcSize, 1, "too many digests")
	}
	type dv struct {
		alg gt.TPMAlgID
		d   []byte
	}
	var ds [4]dv
	for i := uint32(0); i < cnt && r.err == nil; i++ {
		alg := gt.TPMAlgID(r.u16())
		h, ok := pcrAlgs[alg]
		if r.err != nil {
			break
		}
		if !ok {
			return nil, rcP(rcHash, 1, "digest algorithm 0x%x", uint16(alg))
		}
		if len(r.b) < h.Size() {
			r.fail(rcInsufficient)
			break
		}
		ds[i] = dv{alg, r.b[:h.Size()]}
		r.b = r.b[h.Size():]
	}
	if err := r.done(); err != nil {
		return nil, err
	}
	h := c.handles[0]
	if h == rhNull {
		return nil, nil
	}
	if h >= pcrCount {
		return nil, rcH(rcValue, 1, "not a PCR")
	}
	if pcrExtendLocalities(h)&localityBit(t.locality) == 0 {
		return nil, rcE(rcLocality, "PCR %d not extendable from locality %d", h, t.locality)
	}
	for _, d := range ds[:cnt] {
		t.pcrExtend(h, d.alg, d.d)
	}
	t.pcrUpdateCounter++
	return nil, nil
}

func (t *TPM) fastPCRRead(c *call) (*reply, error) {
	r := &paramReader{b: c.params, n: 1}
	sel := r.pcrSelection()
	if err := r.done(); err != nil {
		return nil, err
	}
	if err := validPCRSelection(sel, 1); err != nil {
		return nil, err
	}
	var digests [][]byte
	out := make([]byte, 0, 64)
	out = append(out, u32(t.pcrUpdateCounter)...)
	out = append(out, u32(uint32(len(sel.PCRSelections)))...)
	for _, s := range sel.PCRSelections {
		o := make([]byte, len(s.PCRSelect))
		if vals := t.pcr.banks[gt.TPMAlgID(s.Hash)]; vals != nil {
			for i := uint32(0); i < pcrCount && int(i/8) < len(s.PCRSelect); i++ {
				if s.PCRSelect[i/8]&(1<<(i%8)) != 0 && len(digests) < 8 {
					o[i/8] |= 1 << (i % 8)
					digests = append(digests, vals[i])
				}
			}
		}
		out = append(out, u16(uint16(s.Hash))...)
		out = append(out, byte(len(o)))
		out = append(out, o...)
	}
	out = append(out, u32(uint32(len(digests)))...)
	for _, d := range digests {
		out = append(out, sized(d)...)
	}
	return &reply{params: out}, nil
}

func (t *TPM) fastSign(c *call) (*reply, error) {
	r := &paramReader{b: c.params, n: 1}
	digest := r.sized(maxDigestBytes)
	r.next()
	scheme := r.sigScheme()
	r.next()
	tkTag := r.u16()
	tkHier := r.u32()
	tkDigest := r.sized(maxDigestBytes)
	if err := r.done(); err != nil {
		return nil, err
	}
	o, err := t.loadedObject(c.handles[0], 1)
	if err != nil {
		return nil, err
	}
	if !o.attrs().SignEncrypt || o.publicOnly || o.seq != nil {
		return nil, rcH(rcKey, 1, "not a signing key")
	}
	alg, h, ha, err := signScheme(o, &scheme, 2)
	if err != nil {
		return nil, err
	}
	if len(digest) != h.Size() {
		return nil, rcP(rcSize, 1, "digest size %d for hash size %d", len(digest), h.Size())
	}
	if o.attrs().Restricted {
		if tkTag != stHashCheck || !t.checkTicket(stHashCheck, tkHier, tkDigest, h, digest) {
			return nil, rcP(rcTicket, 3, "restricted key needs a hash-check ticket")
		}
	}
	sig, err := t.signDigest(o, alg, h, ha, digest)
	if err != nil {
		return nil, err
	}
	return &reply{params: sig}, nil
}

func (t *TPM) fastQuote(c *call) (*reply, error) {
	r := &paramReader{b: c.params, n: 1}
	extra := r.sized(64)
	r.next()
	scheme := r.sigScheme()
	r.next()
	sel := r.pcrSelection()
	if err := r.done(); err != nil {
		return nil, err
	}
	if err := validPCRSelection(sel, 3); err != nil {
		return nil, err
	}
	h := cryptoSHA256
	if c.handles[0] != rhNull {
		o, err := t.loadedObject(c.handles[0], 1)
		if err != nil {
			return nil, err
		}
		if _, sh, _, err := signScheme(o, &scheme, 2); err == nil {
			h = sh
		}
	}
	body := marshalPCRSelection(&sel)
	body = append(body, sized(t.pcrDigest(h, sel))...)
	return t.attest(c.handles[0], 1, stAttestQuote, extra, &scheme, body)
}

func (t *TPM) fastContextLoad(c *call) (*reply, error) {
	r := &paramReader{b: c.params, n: 1}
	var ctx gt.TPMSContext
	ctx.Sequence = r.u64()
	ctx.SavedHandle = gt.TPMIDHSaved(r.u32())
	ctx.Hierarchy = gt.TPMIRHHierarchy(r.u32())
	ctx.ContextBlob.Buffer = r.sized(maxResponseSize)
	if err := r.done(); err != nil {
		return nil, err
	}
	return t.contextLoad(&ctx)
}

func (t *TPM) fastFlushContext(c *call) (*reply, error) {
	r := &paramReader{b: c.params, n: 1}
	h := r.u32()
	if err := r.done(); err != nil {
		return nil, err
	}
	return t.flushContext(h)
}

var fastOnce sync.Once

// installFastPaths swaps the hand-written decoders into the table. It runs
// at the first New, after every file's init has registered its commands
// (init order across files is by file name, so fast.go cannot rely on it).
func installFastPaths() {
	for cc, fn := range map[gt.TPMCC]func(*TPM, *call) (*reply, error){
		gt.TPMCCPCRExtend:    (*TPM).fastPCRExtend,
		gt.TPMCCPCRRead:      (*TPM).fastPCRRead,
		gt.TPMCCSign:         (*TPM).fastSign,
		gt.TPMCCQuote:        (*TPM).fastQuote,
		gt.TPMCCContextLoad:  (*TPM).fastContextLoad,
		gt.TPMCCFlushContext: (*TPM).fastFlushContext,
	} {
		d := commandTable[uint32(cc)]
		d.generic = d.run
		d.run = fn
	}
	// go-tpm decodes TPMT_HA's digest as "the rest of the buffer", so its
	// decoder cannot read a multi-bank TPML_DIGEST_VALUES (what the Linux
	// kernel sends): PCR_Extend has no generic path.
	commandTable[uint32(gt.TPMCCPCRExtend)].generic = nil
}
