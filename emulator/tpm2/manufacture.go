package tpm2

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"

	gt "github.com/google/go-tpm/tpm2"
)

// What the platform does to the TPM outside any command, as a
// manufacturer does before the TPM ships: derive the endorsement key from
// the TCG default template, to have it certified, and leave the
// certificate in a platform-created NV index (TCG EK Credential Profile
// for TPM Family 2.0, section 2.2.1). The host calls these with no
// command in progress; they work whether or not the TPM is started.

// EndorsementPublic returns the public area TPM2_CreatePrimary in the
// endorsement hierarchy makes from template, with no sensitive data and
// an empty authValue (what tpm2_createek and the profile's default
// templates send), without loading anything.
func (t *TPM) EndorsementPublic(template gt.TPMTPublic) (*gt.TPMTPublic, error) {
	tmpl := gt.Marshal(template)
	p, err := parsePublic(tmpl, 1)
	if err != nil {
		return nil, fmt.Errorf("tpm2: EK template: %w", err)
	}
	if err := checkTemplate(p, nil, nil, nil, 1, 1); err != nil {
		return nil, fmt.Errorf("tpm2: EK template: %w", err)
	}
	o, err := t.createPrimary(rhEndorsement, p, tmpl, nil, nil)
	if err != nil {
		return nil, fmt.Errorf("tpm2: EK: %w", err)
	}
	pub := o.pub
	return &pub, nil
}

// NVIndexData returns the public area and the contents of the NV index h,
// or ok false when it is not defined.
func (t *TPM) NVIndexData(h uint32) (pub gt.TPMSNVPublic, data []byte, ok bool) {
	n := t.ps.nv[h]
	if n == nil {
		return pub, nil, false
	}
	return n.pub, bytes.Clone(n.data), true
}

// ErrNVProvision is wrapped by ProvisionNV's errors.
var ErrNVProvision = errors.New("tpm2: NV index not provisioned")

// ProvisionNV defines the platform-created ordinary index pub.NVIndex,
// sized to data, holding data and marked written, with an empty
// authValue; an index already there is replaced. Its attributes must
// include TPMA_NV_PLATFORMCREATE. It fails, changing nothing, when the
// TPM's NV memory cannot take it. The change is durable state
// (NVChanged).
func (t *TPM) ProvisionNV(pub gt.TPMSNVPublic, data []byte) error {
	a := pub.Attributes
	if uint32(pub.NVIndex)>>24 != htNVIndex || a.NT != gt.TPMNTOrdinary || !a.PlatformCreate {
		return fmt.Errorf("%w: %#x is not a platform-created ordinary index", ErrNVProvision, pub.NVIndex)
	}
	if _, err := pub.NameAlg.Hash(); err != nil || !hashSupported(pub.NameAlg) {
		return fmt.Errorf("%w: nameAlg %v", ErrNVProvision, pub.NameAlg)
	}
	if len(data) == 0 || len(data) > maxNVIndexSize {
		return fmt.Errorf("%w: %d bytes (1 to %d)", ErrNVProvision, len(data), maxNVIndexSize)
	}
	h := uint32(pub.NVIndex)
	used, count := 0, 0
	for k, x := range t.ps.nv {
		if k != h {
			used += int(x.pub.DataSize)
			count++
		}
	}
	if count >= nvIndexMax || used+len(data) > nvMemoryBytes {
		return fmt.Errorf("%w: NV memory exhausted", ErrNVProvision)
	}
	pub.DataSize = uint16(len(data))
	pub.Attributes.Written = true
	pub.Attributes.WriteLocked, pub.Attributes.ReadLocked = false, false
	pub.AuthPolicy.Buffer = bytes.Clone(pub.AuthPolicy.Buffer)
	t.ps.nv[h] = &nvIndex{pub: pub, auth: nil, data: bytes.Clone(data)}
	t.nvDirty = true
	return nil
}

// Identity is what the TPM reports of itself in TPM2_GetCapability's
// fixed properties: TPM_PT_MANUFACTURER, the model from
// TPM_PT_VENDOR_STRING_1 and _2, and TPM_PT_FIRMWARE_VERSION_1, the
// fields of an EK certificate's subjectAltName.
func (t *TPM) Identity() (manufacturer uint32, model string, version uint32) {
	var m [8]byte
	binary.BigEndian.PutUint32(m[:], vendorString1)
	binary.BigEndian.PutUint32(m[4:], vendorString2)
	return manufacturerID, string(bytes.TrimRight(m[:], "\x00")), firmwareVersion1
}

// SHA256PCRs returns the values of the SHA-256 bank's PCRs pcrs (each
// below 24), for a host that reports them beside the TPM (a deep quote).
// It fails when the guest has deallocated that bank (TPM2_PCR_Allocate).
func (t *TPM) SHA256PCRs(pcrs []uint) ([][]byte, error) {
	vals := t.pcr.banks[gt.TPMAlgSHA256]
	if vals == nil {
		return nil, errors.New("tpm2: the SHA-256 PCR bank is not allocated")
	}
	out := make([][]byte, len(pcrs))
	for i, p := range pcrs {
		if p >= pcrCount {
			return nil, fmt.Errorf("tpm2: PCR %d (at most %d)", p, pcrCount-1)
		}
		out[i] = bytes.Clone(vals[p])
	}
	return out, nil
}
