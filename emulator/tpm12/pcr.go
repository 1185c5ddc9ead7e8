package tpm12

import "crypto/sha1"

// Locality bitmaps, Part 2 §8.4 (TPM_LOCALITY_SELECTION).
const (
	loc0   uint8 = 1 << 0
	loc1   uint8 = 1 << 1
	loc2   uint8 = 1 << 2
	loc3   uint8 = 1 << 3
	loc4   uint8 = 1 << 4
	locAll uint8 = 0x1F
)

// pcrAttributes is TPM_PCR_ATTRIBUTES (Part 2 §8.8) of one PCR.
type pcrAttributes struct {
	reset       bool
	resetLocal  uint8
	extendLocal uint8
}

// pcrAttrib gives PCRs the attributes of the TCG PC Client Specific
// Implementation Specification for Conventional BIOS (1.21), §4.2.4 and
// the TPM Interface Specification's locality table: PCRs 0-15 are
// static (never reset, extended from any locality); 16 is the debug PCR
// and 23 the application PCR (reset and extended from any locality);
// 17-22 belong to dynamic launch (reset from locality 4, or 2 for
// 20-22, extended from the localities the table names).
var pcrAttrib = func() (a [pcrCount]pcrAttributes) {
	for i := 0; i < 16; i++ {
		a[i] = pcrAttributes{extendLocal: locAll}
	}
	a[16] = pcrAttributes{reset: true, resetLocal: locAll, extendLocal: locAll}
	a[17] = pcrAttributes{reset: true, resetLocal: loc4, extendLocal: loc4 | loc3 | loc2}
	a[18] = a[17]
	a[19] = pcrAttributes{reset: true, resetLocal: loc4, extendLocal: loc3 | loc2}
	a[20] = pcrAttributes{reset: true, resetLocal: loc4 | loc2, extendLocal: loc3 | loc2 | loc1}
	a[21] = pcrAttributes{reset: true, resetLocal: loc2, extendLocal: loc2}
	a[22] = a[21]
	a[23] = a[16]
	return a
}()

// localityBit is the bit of locality l in a TPM_LOCALITY_SELECTION; 0
// for a locality that does not exist, which no bitmap admits.
func localityBit(l uint8) uint8 {
	if l > 4 {
		return 0
	}
	return 1 << l
}

// resetValue is the value PCR i takes at TPM_Init and at PCR_Reset:
// all ones for the dynamic-launch PCRs 17-22, so that they cannot be
// mistaken for a launched environment until locality 4 resets them,
// zero for the others (PC Client §4.2.4). No host starts a dynamic
// launch (TPM_HASH_START) on a vTPM, so PCR_Reset restores the same
// values.
func resetValue(i int) digest {
	var d digest
	if i >= 17 && i <= 22 {
		for j := range d {
			d[j] = 0xFF
		}
	}
	return d
}

// initPCRs gives every PCR its power-on value.
func (t *TPM) initPCRs() {
	for i := range t.pcr {
		t.pcr[i] = resetValue(i)
	}
}

type extendIn struct {
	PCRNum   uint32
	InDigest digest
}

func (e *extendIn) unmarshal(r *reader) {
	e.PCRNum = r.u32()
	e.InDigest = r.digest()
}

// digestOut is a response of one TPM_DIGEST (outDigest of Extend,
// PCRRead's outDigest).
type digestOut struct{ Digest digest }

func (d *digestOut) marshal(w *writer) { w.bytes(d.Digest[:]) }

// extend is TPM_Extend, Part 3 §16.1: PCR = SHA-1(PCR || inDigest), from
// a locality the PCR admits.
func (t *TPM) extend(_ *call, in *extendIn) (*digestOut, error) {
	if in.PCRNum >= pcrCount {
		return nil, rcE(rcBadIndex, "PCR %d", in.PCRNum)
	}
	if pcrAttrib[in.PCRNum].extendLocal&localityBit(t.locality) == 0 {
		return nil, rcE(rcBadLocality, "PCR %d from locality %d", in.PCRNum, t.locality)
	}
	if in.PCRNum == 17 && t.locality != 4 && t.pcr[17] == (digest{}) {
		// PC Client TIS §7.2: while the locality 4 PCR holds its reset
		// value 0, only locality 4 extends it.
		return nil, rcE(rcBadLocality, "PCR 17 at its reset value from locality %d", t.locality)
	}
	h := sha1.New()
	h.Write(t.pcr[in.PCRNum][:])
	h.Write(in.InDigest[:])
	copy(t.pcr[in.PCRNum][:], h.Sum(nil))
	out := &digestOut{}
	if !t.ps.Flags.Disable && !t.stclear.Deactivated {
		// A disabled or deactivated TPM extends but reveals nothing.
		out.Digest = t.pcr[in.PCRNum]
	}
	return out, nil
}

type pcrReadIn struct{ PCRIndex uint32 }

func (p *pcrReadIn) unmarshal(r *reader) { p.PCRIndex = r.u32() }

// pcrRead is TPM_PCRRead, Part 3 §16.2.
func (t *TPM) pcrRead(_ *call, in *pcrReadIn) (*digestOut, error) {
	if in.PCRIndex >= pcrCount {
		return nil, rcE(rcBadIndex, "PCR %d", in.PCRIndex)
	}
	return &digestOut{Digest: t.pcr[in.PCRIndex]}, nil
}

type pcrResetIn struct{ PCRSelection pcrSelection }

func (p *pcrResetIn) unmarshal(r *reader) { p.PCRSelection.unmarshal(r) }

// pcrReset is TPM_PCR_Reset, Part 3 §16.4: every selected PCR must be
// resettable from this locality before any is reset.
func (t *TPM) pcrReset(_ *call, in *pcrResetIn) (*none, error) {
	sel := in.PCRSelection.selected()
	if len(sel) == 0 {
		return nil, rcE(rcInvalidPCRInfo, "no PCR selected")
	}
	for _, i := range sel {
		if !pcrAttrib[i].reset {
			return nil, rcE(rcNotResetable, "PCR %d", i)
		}
		if pcrAttrib[i].resetLocal&localityBit(t.locality) == 0 {
			return nil, rcE(rcNotLocal, "PCR %d from locality %d", i, t.locality)
		}
	}
	for _, i := range sel {
		t.pcr[i] = resetValue(i)
	}
	return &none{}, nil
}
