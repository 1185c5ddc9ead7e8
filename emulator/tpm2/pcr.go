package tpm2

import (
	"crypto"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"fmt"

	gt "github.com/google/go-tpm/tpm2"
)

// PCRs, Part 3 §22, with the attributes of the TCG PC Client Platform TPM
// Profile (PTP) §4.6: 24 PCRs, locality-restricted reset and extend.

// pcrAlgs are the banks this TPM implements, in TPM_ALG_ID order.
var pcrAlgs = map[gt.TPMAlgID]crypto.Hash{
	gt.TPMAlgSHA1:   crypto.SHA1,
	gt.TPMAlgSHA256: crypto.SHA256,
	gt.TPMAlgSHA384: crypto.SHA384,
	gt.TPMAlgSHA512: crypto.SHA512,
}

var pcrAlgOrder = []gt.TPMAlgID{gt.TPMAlgSHA1, gt.TPMAlgSHA256, gt.TPMAlgSHA384, gt.TPMAlgSHA512}

const pcrSelectSize = 3

type pcrBanks struct {
	banks map[gt.TPMAlgID][][]byte
}

// reset sets the allocated banks to their initial values: zero, except
// PCR 17–22 (all ones until a D-RTM event) and PCR 0's last octet, which
// records a Startup locality of 3 (PTP §4.6.2).
func (p *pcrBanks) reset(allocated []uint16, locality uint8) {
	p.banks = map[gt.TPMAlgID][][]byte{}
	for _, a := range allocated {
		alg := gt.TPMAlgID(a)
		h := pcrAlgs[alg]
		vals := make([][]byte, pcrCount)
		for i := range vals {
			vals[i] = make([]byte, h.Size())
			if i >= 17 && i <= 22 {
				for j := range vals[i] {
					vals[i][j] = 0xFF
				}
			}
		}
		if locality == 3 {
			vals[0][h.Size()-1] = 3
		}
		p.banks[alg] = vals
	}
}

func (p *pcrBanks) snapshot() map[uint16][][]byte {
	out := map[uint16][][]byte{}
	for alg, vals := range p.banks {
		cp := make([][]byte, len(vals))
		for i, v := range vals {
			cp[i] = append([]byte{}, v...)
		}
		out[uint16(alg)] = cp
	}
	return out
}

func (p *pcrBanks) restore(allocated []uint16, saved map[uint16][][]byte) {
	p.reset(allocated, 0)
	for alg, vals := range saved {
		if cur, ok := p.banks[gt.TPMAlgID(alg)]; ok {
			for i := range min(len(cur), len(vals)) {
				copy(cur[i], vals[i])
			}
		}
	}
}

// pcrResetLocalities/pcrExtendLocalities are PTP Table 2 as locality
// bitmaps (bit n = locality n may do it).
func pcrResetLocalities(i uint32) uint8 {
	switch {
	case i == 16 || i == 23:
		return 0x1F
	case i >= 17 && i <= 19:
		return 0x10
	case i == 20:
		return 0x14
	case i == 21 || i == 22:
		return 0x04
	}
	return 0
}

func pcrExtendLocalities(i uint32) uint8 {
	switch {
	case i <= 16 || i == 23:
		return 0x1F
	case i >= 17 && i <= 19:
		return 0x1C
	case i == 20:
		return 0x0E
	case i == 21 || i == 22:
		return 0x04
	}
	return 0
}

func localityBit(l uint8) uint8 {
	if l > 4 {
		return 0
	}
	return 1 << l
}

// pcrExtend sets PCR i of bank alg to H(PCR i || digest), Part 1 §17.2;
// a bank the TPM has not allocated is left alone.
func (t *TPM) pcrExtend(i uint32, alg gt.TPMAlgID, digest []byte) {
	vals := t.pcr.banks[alg]
	if vals == nil {
		return
	}
	// The hash of old||digest, through the one-shot functions on a
	// stack buffer: no hasher to allocate per extend.
	var buf [2 * sha512.Size]byte
	in := append(append(buf[:0], vals[i]...), digest...)
	var sum []byte
	switch alg {
	case gt.TPMAlgSHA1:
		s := sha1.Sum(in)
		sum = s[:]
	case gt.TPMAlgSHA256:
		s := sha256.Sum256(in)
		sum = s[:]
	case gt.TPMAlgSHA384:
		s := sha512.Sum384(in)
		sum = s[:]
	case gt.TPMAlgSHA512:
		s := sha512.Sum512(in)
		sum = s[:]
	}
	// In place: a bank's values are the TPM's own (snapshot and restore
	// copy them), and every value of a bank has the bank's digest size.
	copy(vals[i], sum)
}

// pcrSelected walks a TPML_PCR_SELECTION in order, calling fn for each
// selected PCR of an allocated bank.
func (t *TPM) pcrSelected(sel gt.TPMLPCRSelection, fn func(alg gt.TPMAlgID, i uint32)) {
	for _, s := range sel.PCRSelections {
		alg := gt.TPMAlgID(s.Hash)
		if t.pcr.banks[alg] == nil {
			continue
		}
		for i := uint32(0); i < pcrCount && int(i/8) < len(s.PCRSelect); i++ {
			if s.PCRSelect[i/8]&(1<<(i%8)) != 0 {
				fn(alg, i)
			}
		}
	}
}

func validPCRSelection(sel gt.TPMLPCRSelection, param int) error {
	for _, s := range sel.PCRSelections {
		if _, ok := pcrAlgs[gt.TPMAlgID(s.Hash)]; !ok {
			if _, err := s.Hash.Hash(); err != nil {
				return rcP(rcHash, param, "PCR bank 0x%x", uint16(s.Hash))
			}
		}
		if len(s.PCRSelect) < 3 || len(s.PCRSelect) > 4 {
			return rcP(rcValue, param, "sizeofSelect %d", len(s.PCRSelect))
		}
	}
	return nil
}

// pcrDigest is the digest of the selected PCR values, hashed with h, as
// PolicyPCR and Quote use it (Part 3 §23.7, §18.4).
func (t *TPM) pcrDigest(h crypto.Hash, sel gt.TPMLPCRSelection) []byte {
	d := h.New()
	t.pcrSelected(sel, func(alg gt.TPMAlgID, i uint32) { d.Write(t.pcr.banks[alg][i]) })
	return d.Sum(nil)
}

// pcrReadResponse is PCR_Read's response with room for what it points to:
// at most eight digests (Part 3 §22.4) in at most four banks.
type pcrReadResponse struct {
	r    gt.PCRReadResponse
	sels [4]gt.TPMSPCRSelection
	dig  [8]gt.TPM2BDigest
	bits [4 * pcrSelectSize]byte
}

// pcrRead is TPM2_PCR_Read, Part 3 §22.4.
func (t *TPM) pcrRead(c *call, cmd *gt.PCRRead) (*gt.PCRReadResponse, error) {
	if err := validPCRSelection(cmd.PCRSelectionIn, 1); err != nil {
		return nil, err
	}
	// PCR_Read is on the measured-boot hot path: the response and what it
	// points to live in the TPM, encoded before Process returns.
	out := &t.pcrReadOut
	*out = pcrReadResponse{}
	r := &out.r
	r.PCRUpdateCounter = t.pcrUpdateCounter
	r.PCRSelectionOut.PCRSelections = out.sels[:0]
	digests := out.dig[:0]
	bits := out.bits[:0]
	for _, s := range cmd.PCRSelectionIn.PCRSelections {
		n := len(bits)
		bits = append(bits, make([]byte, len(s.PCRSelect))...)
		o := gt.TPMSPCRSelection{Hash: s.Hash, PCRSelect: bits[n:len(bits):len(bits)]}
		if vals := t.pcr.banks[gt.TPMAlgID(s.Hash)]; vals != nil {
			for i := uint32(0); i < pcrCount && int(i/8) < len(s.PCRSelect); i++ {
				if s.PCRSelect[i/8]&(1<<(i%8)) != 0 && len(digests) < 8 {
					o.PCRSelect[i/8] |= 1 << (i % 8)
					digests = append(digests, gt.TPM2BDigest{Buffer: vals[i]})
				}
			}
		}
		r.PCRSelectionOut.PCRSelections = append(r.PCRSelectionOut.PCRSelections, o)
	}
	r.PCRValues.Digests = digests
	return r, nil
}

// pcrExtend is TPM2_PCR_Extend, Part 3 §22.2.
func (t *TPM) pcrExtendCommand(c *call, cmd *gt.PCRExtend) (*gt.PCRExtendResponse, error) {
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
	for _, d := range cmd.Digests.Digests {
		if _, ok := pcrAlgs[gt.TPMAlgID(d.HashAlg)]; !ok {
			return nil, rcP(rcHash, 1, "digest algorithm 0x%x", uint16(d.HashAlg))
		}
	}
	for _, d := range cmd.Digests.Digests {
		t.pcrExtend(h, gt.TPMAlgID(d.HashAlg), d.Digest)
	}
	t.pcrUpdateCounter++
	return nil, nil
}

// pcrEvent is TPM2_PCR_Event, Part 3 §22.3.
func (t *TPM) pcrEvent(c *call, cmd *pcrEventCmd) (*pcrEventResponse, error) {
	h := c.handles[0]
	if h != rhNull {
		if h >= pcrCount {
			return nil, rcH(rcValue, 1, "not a PCR")
		}
		if pcrExtendLocalities(h)&localityBit(t.locality) == 0 {
			return nil, rcE(rcLocality, "PCR %d not extendable from locality %d", h, t.locality)
		}
	}
	if len(cmd.EventData.Buffer) > 1024 {
		return nil, rcP(rcSize, 1, "event too large")
	}
	var out pcrEventResponse
	for _, alg := range pcrAlgOrder {
		d := pcrAlgs[alg].New()
		d.Write(cmd.EventData.Buffer)
		sum := d.Sum(nil)
		out.Digests.Digests = append(out.Digests.Digests, gt.TPMTHA{HashAlg: gt.TPMIAlgHash(alg), Digest: sum})
		if h != rhNull {
			t.pcrExtend(h, alg, sum)
		}
	}
	if h != rhNull {
		t.pcrUpdateCounter++
	}
	return &out, nil
}

// pcrReset is TPM2_PCR_Reset, Part 3 §22.8.
func (t *TPM) pcrReset(c *call, cmd *gt.PCRReset) (*gt.PCRResetResponse, error) {
	h := c.handles[0]
	if h >= pcrCount {
		return nil, rcH(rcValue, 1, "not a PCR")
	}
	if pcrResetLocalities(h)&localityBit(t.locality) == 0 {
		return nil, rcE(rcLocality, "PCR %d not resettable from locality %d", h, t.locality)
	}
	for _, vals := range t.pcr.banks {
		vals[h] = make([]byte, len(vals[h]))
	}
	t.pcrUpdateCounter++
	return nil, nil
}

// PCRs 20–22 form the one authorization group and the one policy group
// (TPM_PT_PCR_AUTH, TPM_PT_PCR_POLICY), as in libtpms: PCR_SetAuthValue
// and PCR_SetAuthPolicy on any of them set the group's.
func pcrInGroup(i uint32) bool { return i >= 20 && i <= 22 }

// pcrSetAuthValue is TPM2_PCR_SetAuthValue, Part 3 §22.7.
func (t *TPM) pcrSetAuthValue(c *call, cmd *pcrSetAuthValueCmd) (*emptyResponse, error) {
	if !pcrInGroup(c.handles[0]) {
		return nil, rcE(rcValue, "PCR %d is in no authorization group", c.handles[0])
	}
	t.pcrAuth = append([]byte{}, cmd.Auth.Buffer...)
	return nil, nil
}

// pcrSetAuthPolicy is TPM2_PCR_SetAuthPolicy, Part 3 §22.6.
func (t *TPM) pcrSetAuthPolicy(c *call, cmd *pcrSetAuthPolicyCmd) (*emptyResponse, error) {
	if c.handles[0] != rhPlatform {
		return nil, rcH(rcValue, 1, "PCR_SetAuthPolicy needs the platform hierarchy")
	}
	size := 0
	if cmd.HashAlg != gt.TPMAlgNull {
		h, err := cmd.HashAlg.Hash()
		if err != nil || !hashSupported(cmd.HashAlg) {
			return nil, rcP(rcHash, 2, "hashAlg 0x%x", uint16(cmd.HashAlg))
		}
		size = h.Size()
	}
	if len(cmd.AuthPolicy.Buffer) != size {
		return nil, rcP(rcSize, 1, "authPolicy of %d octets for hashAlg 0x%x", len(cmd.AuthPolicy.Buffer), uint16(cmd.HashAlg))
	}
	if !pcrInGroup(cmd.PCRNum) {
		return nil, rcP(rcValue, 3, "PCR %d is in no policy group", cmd.PCRNum)
	}
	t.ps.PCRPolicy, t.ps.PCRPolicyAlg = append([]byte{}, cmd.AuthPolicy.Buffer...), uint16(cmd.HashAlg)
	return nil, nil
}

// pcrAllocate is TPM2_PCR_Allocate, Part 3 §22.5.
func (t *TPM) pcrAllocate(c *call, cmd *pcrAllocateCmd) (*pcrAllocateResponse, error) {
	if c.handles[0] != rhPlatform {
		return nil, rcH(rcValue, 1, "PCR_Allocate needs the platform hierarchy")
	}
	if err := validPCRSelection(cmd.PCRAllocation, 1); err != nil {
		return nil, err
	}
	banks := map[gt.TPMAlgID]bool{}
	for _, b := range t.ps.PCRBanks {
		banks[gt.TPMAlgID(b)] = true
	}
	for _, s := range cmd.PCRAllocation.PCRSelections {
		alg := gt.TPMAlgID(s.Hash)
		if _, ok := pcrAlgs[alg]; !ok {
			return nil, rcP(rcHash, 1, "bank 0x%x not implemented", uint16(alg))
		}
		all, none := true, true
		for i := 0; i < pcrSelectSize; i++ {
			if s.PCRSelect[i] != 0xFF {
				all = false
			}
			if s.PCRSelect[i] != 0 {
				none = false
			}
		}
		// Banks are allocated whole; partial banks are not offered.
		switch {
		case all:
			banks[alg] = true
		case none:
			delete(banks, alg)
		default:
			return nil, rcP(rcValue, 1, "partial PCR bank allocation")
		}
	}
	var pending []uint16
	for _, alg := range pcrAlgOrder {
		if banks[alg] {
			pending = append(pending, uint16(alg))
		}
	}
	r := &pcrAllocateResponse{AllocationSuccess: len(pending) > 0, MaxPCR: pcrCount}
	if r.AllocationSuccess {
		t.ps.PendingBanks = pending
	}
	return r, nil
}

// InitPCR gives PCR i a starting value taken from elsewhere: the vTPM
// domain's hwinitpcr= copies the hardware TPM's SHA-1 PCRs (the only bank
// Xen vtpmmgr's TPM_PcrRead pass-through carries) when the vTPM starts. The
// SHA-1 bank takes the value as it is; every other bank takes its reset
// value extended with it, so each bank commits to the hardware value and a
// verifier can recompute it. Call it after Startup, before serving.
func (t *TPM) InitPCR(i int, sha1Value [20]byte) error {
	if !t.started {
		return fmt.Errorf("tpm2: InitPCR(%d) before Startup", i)
	}
	if i < 0 || i >= pcrCount {
		return fmt.Errorf("tpm2: PCR %d out of range 0..%d", i, pcrCount-1)
	}
	for alg, vals := range t.pcr.banks {
		if alg == gt.TPMAlgSHA1 {
			vals[i] = append([]byte(nil), sha1Value[:]...)
			continue
		}
		t.pcrExtend(uint32(i), alg, sha1Value[:])
	}
	return nil
}
