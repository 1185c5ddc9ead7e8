package tpm2

import (
	"bytes"
	"crypto"
	"crypto/hmac"
	"hash"

	gt "github.com/google/go-tpm/tpm2"
)

// Hash and HMAC commands and sequences, Part 3 §15.4, §15.5 and §17.

// tpmGenerated is TPM_GENERATED_VALUE (Part 2 §6.2): data starting with it
// gets no hash-check ticket, so a restricted key cannot be made to sign
// something that looks like a TPM attestation.
var tpmGenerated = []byte{0xFF, 0x54, 0x43, 0x47}

type sequence struct {
	auth  []byte
	alg   gt.TPMIAlgHash
	h     hash.Hash                 // hash or HMAC sequence
	event map[gt.TPMAlgID]hash.Hash // event sequence: every PCR bank
	first []byte                    // leading bytes, for the TPM_GENERATED check
	isMAC bool
}

func (s *sequence) write(b []byte) {
	if len(s.first) < 4 {
		n := 4 - len(s.first)
		if n > len(b) {
			n = len(b)
		}
		s.first = append(s.first, b[:n]...)
	}
	if s.h != nil {
		s.h.Write(b)
	}
	for _, h := range s.event {
		h.Write(b)
	}
}

// hmacKey returns the key bytes and hash of an HMAC key for HMAC and
// HMAC_Start (Part 3 §15.5.1: the key's scheme hash wins; otherwise the
// command's).
func hmacKey(o *object, alg gt.TPMIAlgHash, n int) ([]byte, crypto.Hash, gt.TPMIAlgHash, error) {
	if o.pub.Type != gt.TPMAlgKeyedHash || o.publicOnly {
		return nil, 0, 0, rcH(rcType, 1, "not an HMAC key")
	}
	a := o.attrs()
	if !a.SignEncrypt || a.Restricted || a.Decrypt {
		return nil, 0, 0, rcH(rcAttributes, 1, "not an unrestricted signing key")
	}
	if ka, kh := keyScheme(o); ka == gt.TPMAlgHMAC {
		if alg != gt.TPMAlgNull && alg != kh {
			return nil, 0, 0, rcP(rcValue, n, "hash differs from the key's scheme")
		}
		alg = kh
	}
	if alg == gt.TPMAlgNull || !hashSupported(alg) {
		return nil, 0, 0, rcP(rcValue, n, "no HMAC hash")
	}
	h, _ := alg.Hash()
	bits, err := o.sens.Sensitive.Bits()
	if err != nil {
		return nil, 0, 0, rcE(rcFailure, "%v", err)
	}
	return bits.Buffer, h, alg, nil
}

func (t *TPM) seqObject(h uint32) (*object, error) {
	o := t.objects[h]
	if o == nil || o.seq == nil {
		return nil, rcH(rcMode, 1, "not a sequence object")
	}
	return o, nil
}

// hash is TPM2_Hash, Part 3 §15.4.
func (t *TPM) hash(c *call, cmd *gt.Hash) (*gt.HashResponse, error) {
	if !hashSupported(cmd.HashAlg) {
		return nil, rcP(rcHash, 2, "hash 0x%x", uint16(cmd.HashAlg))
	}
	h, _ := cmd.HashAlg.Hash()
	d := h.New()
	d.Write(cmd.Data.Buffer)
	sum := d.Sum(nil)
	hier := uint32(cmd.Hierarchy)
	if !isHierarchy(hier) {
		return nil, rcP(rcValue, 3, "hierarchy")
	}
	if bytes.HasPrefix(cmd.Data.Buffer, tpmGenerated) {
		hier = rhNull
	}
	return &gt.HashResponse{OutHash: gt.TPM2BDigest{Buffer: sum}, Validation: gt.TPMTTKHashCheck{Tag: gt.TPMST(stHashCheck),
		Hierarchy: gt.TPMIRHHierarchy(hier), Digest: gt.TPM2BDigest{Buffer: t.ticketDigest(stHashCheck, hier, h, sum)}}}, nil
}

// hmacCommand is TPM2_HMAC, Part 3 §15.5 (not "hmac": the body uses the
// crypto/hmac package).
func (t *TPM) hmacCommand(c *call, cmd *hmacCmd) (*gt.HmacResponse, error) {
	o, err := t.loadedObject(c.handles[0], 1)
	if err != nil {
		return nil, err
	}
	key, h, _, err := hmacKey(o, cmd.HashAlg, 2)
	if err != nil {
		return nil, err
	}
	m := hmac.New(h.New, key)
	m.Write(cmd.Buffer.Buffer)
	return &gt.HmacResponse{OutHMAC: gt.TPM2BDigest{Buffer: m.Sum(nil)}}, nil
}

// hmacStart is TPM2_HMAC_Start, Part 3 §17.2.
func (t *TPM) hmacStart(c *call, cmd *gt.HmacStart) (*gt.HmacStartResponse, error) {
	o, err := t.loadedObject(c.handles[0], 1)
	if err != nil {
		return nil, err
	}
	key, h, alg, err := hmacKey(o, cmd.HashAlg, 2)
	if err != nil {
		return nil, err
	}
	s := &sequence{auth: append([]byte{}, cmd.Auth.Buffer...), alg: alg, h: hmac.New(h.New, key), isMAC: true}
	handle, err := t.allocObject(&object{seq: s, hierarchy: rhNull})
	if err != nil {
		return nil, err
	}
	return &gt.HmacStartResponse{SequenceHandle: gt.TPMIDHObject(handle)}, nil
}

// hashSequenceStart is TPM2_HashSequenceStart, Part 3 §17.4.
func (t *TPM) hashSequenceStart(c *call, cmd *hashSequenceStartCmd) (*hashSequenceStartResponse, error) {
	s := &sequence{auth: append([]byte{}, cmd.Auth.Buffer...), alg: cmd.HashAlg}
	if cmd.HashAlg == gt.TPMAlgNull {
		s.event = map[gt.TPMAlgID]hash.Hash{}
		for alg, h := range pcrAlgs {
			s.event[alg] = h.New()
		}
	} else {
		if !hashSupported(cmd.HashAlg) {
			return nil, rcP(rcHash, 2, "hash 0x%x", uint16(cmd.HashAlg))
		}
		h, _ := cmd.HashAlg.Hash()
		s.h = h.New()
	}
	handle, err := t.allocObject(&object{seq: s, hierarchy: rhNull})
	if err != nil {
		return nil, err
	}
	return &hashSequenceStartResponse{SequenceHandle: gt.TPMIDHObject(handle)}, nil
}

// sequenceUpdate is TPM2_SequenceUpdate, Part 3 §17.5.
func (t *TPM) sequenceUpdate(c *call, cmd *gt.SequenceUpdate) (*gt.SequenceUpdateResponse, error) {
	o, err := t.seqObject(c.handles[0])
	if err != nil {
		return nil, err
	}
	o.seq.write(cmd.Buffer.Buffer)
	return nil, nil
}

// sequenceComplete is TPM2_SequenceComplete, Part 3 §17.6.
func (t *TPM) sequenceComplete(c *call, cmd *gt.SequenceComplete) (*gt.SequenceCompleteResponse, error) {
	o, err := t.seqObject(c.handles[0])
	if err != nil {
		return nil, err
	}
	if o.seq.event != nil {
		return nil, rcH(rcMode, 1, "event sequence needs EventSequenceComplete")
	}
	hier := uint32(cmd.Hierarchy)
	if !isHierarchy(hier) {
		return nil, rcP(rcValue, 2, "hierarchy")
	}
	o.seq.write(cmd.Buffer.Buffer)
	sum := o.seq.h.Sum(nil)
	delete(t.objects, c.handles[0])
	if o.seq.isMAC || bytes.HasPrefix(o.seq.first, tpmGenerated) {
		hier = rhNull
	}
	h, _ := o.seq.alg.Hash()
	return &gt.SequenceCompleteResponse{Result: gt.TPM2BDigest{Buffer: sum}, Validation: gt.TPMTTKHashCheck{Tag: gt.TPMST(stHashCheck),
		Hierarchy: gt.TPMIRHHierarchy(hier), Digest: gt.TPM2BDigest{Buffer: t.ticketDigest(stHashCheck, hier, h, sum)}}}, nil
}

// eventSequenceComplete is TPM2_EventSequenceComplete, Part 3 §17.7.
func (t *TPM) eventSequenceComplete(c *call, cmd *eventSequenceCompleteCmd) (*eventSequenceCompleteResponse, error) {
	pcr := c.handles[0]
	if pcr != rhNull {
		if pcr >= pcrCount {
			return nil, rcH(rcValue, 1, "not a PCR")
		}
		if pcrExtendLocalities(pcr)&localityBit(t.locality) == 0 {
			return nil, rcE(rcLocality, "PCR %d not extendable from locality %d", pcr, t.locality)
		}
	}
	o, err := t.seqObject(c.handles[1])
	if err != nil || o.seq.event == nil {
		return nil, rcH(rcMode, 2, "not an event sequence")
	}
	o.seq.write(cmd.Buffer.Buffer)
	delete(t.objects, c.handles[1])
	var out gt.TPMLDigestValues
	for _, alg := range pcrAlgOrder {
		sum := o.seq.event[alg].Sum(nil)
		out.Digests = append(out.Digests, gt.TPMTHA{HashAlg: gt.TPMIAlgHash(alg), Digest: sum})
		if pcr != rhNull {
			t.pcrExtend(pcr, alg, sum)
		}
	}
	if pcr != rhNull {
		t.pcrUpdateCounter++
	}
	return &eventSequenceCompleteResponse{Results: out}, nil
}
