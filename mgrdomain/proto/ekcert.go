package proto

import (
	"encoding/binary"
	"fmt"
	"unicode/utf8"
)

// EK certificates (issue: evidence a verifier can check). A vTPM has its
// endorsement keys certified by the manager, which signs with a CA key of
// the vTPM's group that never leaves its sealed store; dom0 fetches the
// CA's certificate to give verifiers. Both ordinals are this project's:
// vtpmmgr has neither. docs/manager-groups.md, "EK certificates".
const (
	// OrdCertifyEK (tag 0x01C1) asks for the certificate of one of the
	// caller's EKs. xenvtpm's own vTPM ordinals start at 0x100, clear of
	// vtpmmgr's 1–4.
	OrdCertifyEK uint32 = 0x00000101
	// OrdGroupCACert (tag 0x01C2) returns the DER certificate of a
	// group's EK CA, made at the first need.
	OrdGroupCACert uint32 = 0x02000111
)

// Bounds of CERTIFY_EK's fields.
const (
	// MaxEKPublic bounds the EK's TPMT_PUBLIC: the RSA-2048 default
	// template's is 310 bytes, the P-256 one's 118.
	MaxEKPublic = 512
	// MaxTPMModel is the longest model name (TPM_PT_VENDOR_STRING_1..4
	// give 16 bytes).
	MaxTPMModel = 16
)

// CertifyEK (tag 0x01C1, OrdCertifyEK): Public is a marshalled TPMT_PUBLIC
// of one of the caller's EKs, made from a TCG default EK template (the
// manager refuses any other); Manufacturer, Model and Version name the
// TPM in the certificate (TPM_PT_MANUFACTURER, TPM_PT_VENDOR_STRING_*,
// TPM_PT_FIRMWARE_VERSION_1).
//
// A TPM 1.2 vTPM (Family FamilyEK12) sends its EK's TPM_PUBKEY (TPM 1.2
// Part 2, 10.5) as Public, its TPM_CAP_PROP_MANUFACTURER, and its
// TPM_CAP_VERSION_VAL's revision as Version.
//
// Wire: u32 manufacturer ‖ u32 version ‖ u8 modelLen ‖ model ‖ u16
// publicLen ‖ public ‖ optionally u8 family (FamilyEK12; absent: TPM
// 2.0). Answer: the DER certificate.
type CertifyEK struct {
	Manufacturer uint32
	Version      uint32
	Model        string
	Public       []byte
	Family       uint8 // FamilyEK20 (or zero) or FamilyEK12
}

// The TPM families of CERTIFY_EK, numbered as the deep quote's hardware
// families are.
const (
	FamilyEK12 uint8 = 1
	FamilyEK20 uint8 = 2
)

// GroupCACert (tag 0x01C2, OrdGroupCACert): u32 group. Answer: the DER
// certificate of the group's EK CA.
type GroupCACert struct{ Group uint32 }

// Certifier is the Backend extension that serves CERTIFY_EK and
// GROUP_CA_CERT; without it both are answered VTPM_UNSUPPORTED.
type Certifier interface {
	// CertifyEK returns the DER certificate of the EK in m for the vTPM
	// uuid, signed by its group's CA.
	CertifyEK(uuid [16]byte, m CertifyEK) ([]byte, error)
	// GroupCACert returns the DER certificate of the group's EK CA.
	GroupCACert(group uint32) ([]byte, error)
}

func decodeCertifyEK(p []byte) (CertifyEK, error) {
	bad := func(f string, a ...any) (CertifyEK, error) {
		return CertifyEK{}, errorf(TPMBadParameter, "CERTIFY_EK: "+f, a...)
	}
	if len(p) < 9 {
		return bad("%d bytes of parameters, want at least 9", len(p))
	}
	m := CertifyEK{Manufacturer: binary.BigEndian.Uint32(p), Version: binary.BigEndian.Uint32(p[4:])}
	ml := int(p[8])
	p = p[9:]
	if ml == 0 || ml > MaxTPMModel || len(p) < ml+2 {
		return bad("model of %d bytes (1 to %d) with %d bytes left", ml, MaxTPMModel, len(p))
	}
	if m.Model = string(p[:ml]); !utf8.ValidString(m.Model) {
		return bad("model is not UTF-8")
	}
	p = p[ml:]
	pl := int(binary.BigEndian.Uint16(p))
	if pl == 0 || pl > MaxEKPublic || (len(p) != 2+pl && len(p) != 2+pl+1) {
		return bad("public area of %d bytes (1 to %d) with %d bytes left", pl, MaxEKPublic, len(p)-2)
	}
	m.Public, m.Family = p[2:2+pl], FamilyEK20
	if len(p) == 2+pl+1 {
		if m.Family = p[2+pl]; m.Family != FamilyEK12 && m.Family != FamilyEK20 {
			return bad("TPM family %d", m.Family)
		}
	}
	return m, nil
}

// EncodeCertifyEK builds a CERTIFY_EK request (the vTPM side).
func EncodeCertifyEK(m CertifyEK) ([]byte, error) {
	if m.Model == "" || len(m.Model) > MaxTPMModel || len(m.Public) == 0 || len(m.Public) > MaxEKPublic || m.Family > FamilyEK20 {
		return nil, fmt.Errorf("CERTIFY_EK: model of %d bytes, public area of %d bytes or family %d out of range", len(m.Model), len(m.Public), m.Family)
	}
	b := binary.BigEndian.AppendUint32(nil, m.Manufacturer)
	b = binary.BigEndian.AppendUint32(b, m.Version)
	b = append(b, byte(len(m.Model)))
	b = append(b, m.Model...)
	b = binary.BigEndian.AppendUint16(b, uint16(len(m.Public)))
	b = append(b, m.Public...)
	if m.Family == FamilyEK12 {
		b = append(b, m.Family)
	}
	return encodeRequest(TagVTPMReq, OrdCertifyEK, b)
}

// EncodeGroupCACert builds a GROUP_CA_CERT request (dom0's side).
func EncodeGroupCACert(group uint32) []byte {
	b, _ := encodeRequest(TagMgmtReq, OrdGroupCACert, binary.BigEndian.AppendUint32(nil, group))
	return b
}
