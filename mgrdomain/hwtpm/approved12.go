package hwtpm

import (
	"bytes"
	"crypto/sha1"
	"encoding/binary"
	"fmt"

	"github.com/google/go-tpm/tpmutil"

	"github.com/xenvtpm/xenvtpm/mgrdomain/saa"
)

// Sealing to an approved configuration (TPM 1.2). TPM 1.2 has no policy
// authorisation, so the storage key is sealed once per approved boot
// configuration: TPM_Seal (Part 3, 10.1) with a TPM_PCR_INFO_LONG (Part
// 2, 8.3) whose digestAtRelease is the approved TPM_COMPOSITE_HASH
// (saa.Composite12), not the current values' as go-tpm's tpm.Seal
// computes. The blob is TPM_STORED_DATA12 as Seal's, so Unseal unseals
// it.

const (
	ord12Seal         = 0x00000017 // TPM_ORD_Seal
	et12KeyHandle     = 0x0001     // TPM_ET_KEYHANDLE
	kh12SRK           = 0x40000000 // TPM_KH_SRK
	tag12PCRInfoLong  = 0x0006     // TPM_TAG_PCR_INFO_LONG
	tag12StoredData12 = 0x0016     // TPM_TAG_STORED_DATA12
)

// pcrInfoLong is TPM_PCR_INFO_LONG with 3-byte PCR selections.
func pcrInfoLong(pcrs []uint, locality uint8, digestAtRelease [20]byte) []byte {
	var sel [3]byte
	for _, p := range pcrs {
		sel[p/8] |= 1 << (p % 8)
	}
	b := binary.BigEndian.AppendUint16(nil, tag12PCRInfoLong)
	// The TPM fills in localityAtCreation and digestAtCreation, but may
	// refuse a localityAtCreation of 0 (Part 2, 8.3): the locality asked.
	b = append(b, 1<<locality, 1<<locality)
	for range 2 { // creationPCRSelection, releasePCRSelection
		b = binary.BigEndian.AppendUint16(b, 3)
		b = append(b, sel[:]...)
	}
	b = append(b, make([]byte, 20)...)
	return append(b, digestAtRelease[:]...)
}

// sealInfo12 is the release condition a TPM_STORED_DATA12 records.
type sealInfo12 struct {
	PCRs            []uint
	Locality        byte // localityAtRelease, a TPMA_LOCALITY bit mask
	DigestAtRelease [20]byte
}

// parseSealInfo12 decodes the TPM_PCR_INFO_LONG in a TPM_STORED_DATA12's
// sealInfo. Errors wrap ErrBadBlob.
func parseSealInfo12(stored []byte) (*sealInfo12, error) {
	bad := func(f string, a ...any) (*sealInfo12, error) {
		return nil, fmt.Errorf("%w: TPM_PCR_INFO_LONG: %s", ErrBadBlob, fmt.Sprintf(f, a...))
	}
	if err := checkStoredData(stored); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(stored[4:])
	p := stored[8 : 8+n]
	if len(p) < 4 || binary.BigEndian.Uint16(p) != tag12PCRInfoLong {
		return bad("missing or wrong tag")
	}
	info := &sealInfo12{Locality: p[3]}
	p = p[4:]
	for i := range 2 {
		if len(p) < 2 {
			return bad("truncated PCR selection")
		}
		size := int(binary.BigEndian.Uint16(p))
		if size == 0 || size > 3 || len(p) < 2+size {
			return bad("PCR selection of %d bytes", size)
		}
		if i == 1 {
			for j, b := range p[2 : 2+size] {
				for bit := range 8 {
					if b&(1<<bit) != 0 {
						info.PCRs = append(info.PCRs, uint(8*j+bit))
					}
				}
			}
		}
		p = p[2+size:]
	}
	if len(p) != 40 {
		return bad("%d bytes of digests, want 40", len(p))
	}
	copy(info.DigestAtRelease[:], p[20:])
	return info, nil
}

// SealComposite seals key (1..MaxKey bytes) with TPM_Seal under the SRK,
// released only at Config.Locality and when PCRs pcrs (SHA-1 bank, at
// least one) give the composite hash digestAtRelease — saa.Composite12 of
// an approved configuration's values, current or not. Unseal unseals the
// blob; the blob has no PCR values (only their composite is known).
// TPM_Seal runs in an OSAP session for the SRK with srk_auth=, the
// blob's own authorisation data being srk_auth= too (as Seal's, which
// go-tpm makes) and sent ADIP-encrypted. Costs: an OSAP session and
// TPM_Seal; no NV write.
func (t *TPM12) SealComposite(key []byte, pcrs []uint, digestAtRelease [20]byte) (*SealedBlob, error) {
	pcrs, err := checkSeal(key, pcrs)
	if err != nil {
		return nil, err
	}
	if len(pcrs) == 0 {
		return nil, fmt.Errorf("hwtpm: seal: a composite needs at least one PCR")
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	srk := t.cfg.SRKAuth.TPM12()
	s, err := t.osap(et12KeyHandle, kh12SRK, srk)
	if err != nil {
		return nil, fmt.Errorf("hwtpm: seal: %w%s", err, lockoutHint(err))
	}
	// encAuth = dataAuth XOR SHA-1(shared secret ‖ nonceEven) (Part 1,
	// ADIP).
	pad := sha1.Sum(append(s.key[:], s.nonceEven[:]...))
	var encAuth [20]byte
	for i := range encAuth {
		encAuth[i] = srk[i] ^ pad[i]
	}
	info := pcrInfoLong(pcrs, t.cfg.Locality, digestAtRelease)
	out, err := t.auth1Handles("TPM_Seal", ord12Seal, []any{uint32(kh12SRK)}, s,
		[]any{encAuth, tpmutil.U32Bytes(info), tpmutil.U32Bytes(key)}, -1)
	if err != nil {
		switch {
		case isRC12(err, rc12AuthFail):
			return nil, fmt.Errorf("hwtpm: seal: TPM_Seal: srk_auth refused: %w", err)
		case isRC12(err, rc12NoSRK):
			return nil, fmt.Errorf("%w: TPM_Seal: the TPM has no SRK (no owner): %w", ErrNotReady, err)
		}
		return nil, fmt.Errorf("hwtpm: seal: %w%s", err, lockoutHint(err))
	}
	// The TPM answers the whole TPM_STORED_DATA12; check it carries the
	// release condition asked for.
	got, err := parseSealInfo12(out)
	if err != nil {
		return nil, fmt.Errorf("hwtpm: seal: TPM_Seal's answer: %w", err)
	}
	if got.DigestAtRelease != digestAtRelease || got.Locality != 1<<t.cfg.Locality || FormatPCRs(got.PCRs) != FormatPCRs(pcrs) {
		return nil, fmt.Errorf("hwtpm: seal: TPM_Seal recorded PCRs %s, locality mask %#x, digest %x: not what was asked", FormatPCRs(got.PCRs), got.Locality, got.DigestAtRelease)
	}
	return &SealedBlob{Family: Family12, PCRs: pcrs, Locality: t.cfg.Locality, StoredData: out}, nil
}

// describeComposite says, for a blob without PCR values, whether the
// current PCRs give the composite it was sealed to (best effort).
func (t *TPM12) describeComposite(b *SealedBlob) string {
	info, err := parseSealInfo12(b.StoredData)
	if err != nil || len(info.PCRs) == 0 {
		return ""
	}
	now, err := t.readPCRs(info.PCRs)
	if err != nil {
		return ""
	}
	c, err := saa.Composite12(info.PCRs, now)
	if err != nil {
		return ""
	}
	if bytes.Equal(c[:], info.DigestAtRelease[:]) {
		return fmt.Sprintf(" (sealed to a composite of PCRs %s; their current values give it)", FormatPCRs(info.PCRs))
	}
	return fmt.Sprintf(" (sealed to a composite of PCRs %s that their current values do not give: not an approved configuration)", FormatPCRs(info.PCRs))
}
