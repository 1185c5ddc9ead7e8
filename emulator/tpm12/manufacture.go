package tpm12

import (
	"encoding/binary"
	"fmt"

	"github.com/xenvtpm/xenvtpm/attest/ekcert"
)

// The platform's view of the TPM, outside any command: what a
// manufacturer provisions (a host such as the vTPM domain playing that
// part, vtpmdomain/vtpm/ekcert.go).

// NVIndexEKCert is TPM_NV_INDEX_EKCert, where ProvisionEKCert leaves the
// EK certificate (ekcert.Frame12's framing).
const NVIndexEKCert uint32 = ekcert.NVIndexEKCert12

// EKPublic is the endorsement key's TPM_PUBKEY (Part 2, 10.5), as
// TPM_ReadPubek gives it.
func (t *TPM) EKPublic() ([]byte, error) {
	k, err := t.ekPublic()
	if err != nil {
		return nil, err
	}
	w := &writer{}
	k.marshal(w)
	return w.b, nil
}

// Identity is what TPM_GetCapability says of the TPM: the manufacturer
// (TPM_CAP_PROP_MANUFACTURER), a model name and the version
// (TPM_CAP_VERSION_VAL's major, minor, revMajor, revMinor).
func (t *TPM) Identity() (manufacturer uint32, model string, version uint32) {
	v := uint32(firmware.Major)<<24 | uint32(firmware.Minor)<<16 | uint32(firmware.RevMajor)<<8 | uint32(firmware.RevMinor)
	return binary.BigEndian.Uint32(manufacturerID[:]), "xenvtpm TPM 1.2", v
}

// ProvisionEKCert stores der, the EK's certificate, at NVIndexEKCert, as
// a manufacturer does: an index with the D bit (OwnerClear and
// TPM_NV_DefineSpace after nvLocked leave it), readable without
// authorization, locked against writes (TPM_NV_PER_WRITEDEFINE, written).
// An index already there is replaced.
func (t *TPM) ProvisionEKCert(der []byte) error {
	data, err := ekcert.Frame12(der)
	if err != nil {
		return err
	}
	used := t.nvUsed()
	if i := t.nvFind(NVIndexEKCert); i >= 0 {
		used -= len(t.ps.NV[i].Data)
	}
	if used+len(data) > nvSpaceMax {
		return fmt.Errorf("tpm12: no NV space for an EK certificate of %d bytes (%d of %d used)", len(der), used, nvSpaceMax)
	}
	open := pcrInfoShort{Select: pcrSelection{Select: make([]byte, 3)}, LocalityAtRelease: locAll}
	a := &nvArea{Index: NVIndexEKCert, ReadInfo: open, WriteInfo: open, Attributes: nvPerWriteDefine, Data: data, WriteDefine: true}
	if i := t.nvFind(NVIndexEKCert); i >= 0 {
		t.ps.NV[i] = a
	} else {
		t.ps.NV = append(t.ps.NV, a)
	}
	delete(t.nvLocks, NVIndexEKCert)
	t.nvDirty = true
	return nil
}

// EKCert returns the DER certificate at NVIndexEKCert; ok false when
// there is none, or the index holds no well-framed full certificate.
func (t *TPM) EKCert() (der []byte, ok bool) {
	i := t.nvFind(NVIndexEKCert)
	if i < 0 {
		return nil, false
	}
	der, err := ekcert.Unframe12(t.ps.NV[i].Data)
	return der, err == nil
}
