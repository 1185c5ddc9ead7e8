package tpm2

import (
	"encoding/binary"

	gt "github.com/google/go-tpm/tpm2"
)

// Hand-written decoders and encoders for the commands on the hot path
// (PCR measurement, signing, quoting, resource-manager context swapping):
// the reflective parameter codec costs more than such a command's work.
// Each fills or reads the same go-tpm structure as that codec, so the
// command's handler is the only body; the rows in commands.go name them,
// and tests compare them with the codec.

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

// appendPCRSelection appends TPML_PCR_SELECTION.
func appendPCRSelection(b []byte, s *gt.TPMLPCRSelection) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(len(s.PCRSelections)))
	for _, p := range s.PCRSelections {
		b = binary.BigEndian.AppendUint16(b, uint16(p.Hash))
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

// decodeGetCapability reads TPM2_GetCapability's parameters.
func decodeGetCapability(p []byte, cmd *gt.GetCapability) error {
	r := &paramReader{b: p, n: 1}
	cmd.Capability = gt.TPMCap(r.u32())
	r.next()
	cmd.Property = r.u32()
	r.next()
	cmd.PropertyCount = r.u32()
	return r.done()
}

// encodeGetCapability appends moreData and TPMS_CAPABILITY_DATA: by hand
// for what guests and tools read at every start (TPM properties, handles,
// PCR allocation), through go-tpm for the rest.
func encodeGetCapability(b []byte, rsp *gt.GetCapabilityResponse) []byte {
	if rsp.MoreData {
		b = append(b, 1)
	} else {
		b = append(b, 0)
	}
	cd := &rsp.CapabilityData
	head := binary.BigEndian.AppendUint32(b, uint32(cd.Capability))
	switch cd.Capability {
	case gt.TPMCapTPMProperties:
		if l, err := cd.Data.TPMProperties(); err == nil {
			b = binary.BigEndian.AppendUint32(head, uint32(len(l.TPMProperty)))
			for _, p := range l.TPMProperty {
				b = binary.BigEndian.AppendUint32(b, uint32(p.Property))
				b = binary.BigEndian.AppendUint32(b, p.Value)
			}
			return b
		}
	case gt.TPMCapHandles:
		if l, err := cd.Data.Handles(); err == nil {
			b = binary.BigEndian.AppendUint32(head, uint32(len(l.Handle)))
			for _, h := range l.Handle {
				b = binary.BigEndian.AppendUint32(b, uint32(h))
			}
			return b
		}
	case gt.TPMCapPCRs:
		if l, err := cd.Data.AssignedPCR(); err == nil {
			return appendPCRSelection(head, l)
		}
	}
	return append(b, gt.Marshal(cd)...)
}

// decodeGetRandom reads TPM2_GetRandom's parameters.
func decodeGetRandom(p []byte, cmd *gt.GetRandom) error {
	r := &paramReader{b: p, n: 1}
	cmd.BytesRequested = r.u16()
	return r.done()
}

func encodeGetRandom(b []byte, rsp *gt.GetRandomResponse) []byte {
	return appendSized(b, rsp.RandomBytes.Buffer)
}

// decodePCRExtend reads TPM2_PCR_Extend's TPML_DIGEST_VALUES; a digest's
// size follows from its algorithm, so an unknown algorithm ends decoding.
func decodePCRExtend(p []byte, cmd *gt.PCRExtend) error {
	r := &paramReader{b: p, n: 1}
	cnt := r.u32()
	if r.err == nil && cnt > uint32(len(pcrAlgs)) {
		return rcP(rcSize, 1, "too many digests")
	}
	ds := make([]gt.TPMTHA, 0, cnt)
	for i := uint32(0); i < cnt && r.err == nil; i++ {
		alg := gt.TPMAlgID(r.u16())
		h, ok := pcrAlgs[alg]
		if r.err != nil {
			break
		}
		if !ok {
			return rcP(rcHash, 1, "digest algorithm 0x%x", uint16(alg))
		}
		if len(r.b) < h.Size() {
			r.fail(rcInsufficient)
			break
		}
		ds = append(ds, gt.TPMTHA{HashAlg: gt.TPMIAlgHash(alg), Digest: r.b[:h.Size()]})
		r.b = r.b[h.Size():]
	}
	cmd.Digests.Digests = ds
	return r.done()
}

func decodePCRRead(p []byte, cmd *gt.PCRRead) error {
	r := &paramReader{b: p, n: 1}
	cmd.PCRSelectionIn = r.pcrSelection()
	return r.done()
}

func encodePCRRead(b []byte, rsp *gt.PCRReadResponse) []byte {
	b = binary.BigEndian.AppendUint32(b, rsp.PCRUpdateCounter)
	b = appendPCRSelection(b, &rsp.PCRSelectionOut)
	b = binary.BigEndian.AppendUint32(b, uint32(len(rsp.PCRValues.Digests)))
	for _, d := range rsp.PCRValues.Digests {
		b = appendSized(b, d.Buffer)
	}
	return b
}

func decodeSign(p []byte, cmd *gt.Sign) error {
	r := &paramReader{b: p, n: 1}
	cmd.Digest.Buffer = r.sized(maxDigestBytes)
	r.next()
	cmd.InScheme = r.sigScheme()
	r.next()
	cmd.Validation.Tag = gt.TPMST(r.u16())
	cmd.Validation.Hierarchy = gt.TPMIRHHierarchy(r.u32())
	cmd.Validation.Digest.Buffer = r.sized(maxDigestBytes)
	return r.done()
}

func encodeSign(b []byte, rsp *gt.SignResponse) []byte {
	return encodeSignature(b, &rsp.Signature)
}

func decodeQuote(p []byte, cmd *gt.Quote) error {
	r := &paramReader{b: p, n: 1}
	cmd.QualifyingData.Buffer = r.sized(64)
	r.next()
	cmd.InScheme = r.sigScheme()
	r.next()
	cmd.PCRSelect = r.pcrSelection()
	return r.done()
}

func encodeQuote(b []byte, rsp *gt.QuoteResponse) []byte {
	return encodeSignature(appendSized(b, rsp.Quoted.Bytes()), &rsp.Signature)
}
