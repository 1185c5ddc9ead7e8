package ekcert

import (
	"encoding/binary"
	"errors"
	"fmt"

	gt "github.com/google/go-tpm/tpm2"
)

// The NV indices of the EK Credential Profile's low range (section 2.2.1.4),
// where a TPM's manufacturer leaves the EK certificate, and the nonce and
// template for an EK that is not made from the default template.
const (
	// NVIndexRSA2048Cert holds the DER EK certificate of the RSA-2048 EK
	// (template L-1).
	NVIndexRSA2048Cert = 0x01C00002
	// NVIndexRSA2048Nonce holds the nonce that replaces the RSA-2048 EK
	// template's unique field when it is present.
	NVIndexRSA2048Nonce = 0x01C00003
	// NVIndexRSA2048Template holds a TPMT_PUBLIC that replaces the RSA-2048
	// EK template when it is present.
	NVIndexRSA2048Template = 0x01C00004
	// NVIndexECCP256Cert holds the DER EK certificate of the ECC NIST P-256
	// EK (template L-2).
	NVIndexECCP256Cert = 0x01C0000A
	// NVIndexECCP256Nonce holds the nonce that replaces the P-256 EK
	// template's unique field when it is present.
	NVIndexECCP256Nonce = 0x01C0000B
	// NVIndexECCP256Template holds a TPMT_PUBLIC that replaces the P-256 EK
	// template when it is present.
	NVIndexECCP256Template = 0x01C0000C
)

// NVCertAttributes returns the attributes the profile gives the EK
// certificate indices: written by the platform (which defines them, so that an owner's
// TPM2_Clear keeps them), readable by the owner and by anyone through the
// index's empty authorization, never counted against dictionary attack,
// and lockable once written.
func NVCertAttributes() gt.TPMANV {
	return gt.TPMANV{
		PPWrite:        true,
		WriteDefine:    true,
		PPRead:         true,
		OwnerRead:      true,
		AuthRead:       true,
		NoDA:           true,
		PlatformCreate: true,
		NT:             gt.TPMNTOrdinary,
	}
}

// NVIndexEKCert12 is a TPM 1.2's TPM_NV_INDEX_EKCert (TPM 1.2 Part 2,
// 19.1.2), where the EK certificate is kept framed as the TCG PC Client
// Specific Implementation Specification for Conventional BIOS 1.21, 7.4.5
// stores it (Frame12).
const NVIndexEKCert12 = 0x1000F000

// TPM 1.2's framing: TCG_PCCLIENT_STORED_CERT (tag, certType, certSize)
// around a TCG_FULL_CERT (tag, the DER certificate).
const (
	tagStoredCert12 = 0x1001 // TCG_TAG_PCCLIENT_STORED_CERT
	tagFullCert12   = 0x1002 // TCG_TAG_PCCLIENT_FULL_CERT
	certTypeFull12  = 0      // TCG_FULL_CERT
	// Frame12Header is the framing before the DER certificate: u16 tag,
	// u8 certType, u16 certSize, u16 the full certificate's tag.
	Frame12Header = 7
)

// Frame12 frames a DER certificate for NVIndexEKCert12.
func Frame12(der []byte) ([]byte, error) {
	if len(der) == 0 || len(der) > 0xFFFF-2 {
		return nil, fmt.Errorf("ekcert: a certificate of %d bytes cannot be framed", len(der))
	}
	b := binary.BigEndian.AppendUint16(nil, tagStoredCert12)
	b = append(b, certTypeFull12)
	b = binary.BigEndian.AppendUint16(b, uint16(2+len(der)))
	b = binary.BigEndian.AppendUint16(b, tagFullCert12)
	return append(b, der...), nil
}

// Frame12Size is the size of the framed certificate whose first
// Frame12Header bytes are head (what to read of the index), or an error
// when head is not the framing of a full certificate.
func Frame12Size(head []byte) (int, error) {
	if len(head) < Frame12Header || binary.BigEndian.Uint16(head) != tagStoredCert12 || head[2] != certTypeFull12 ||
		binary.BigEndian.Uint16(head[5:]) != tagFullCert12 {
		return 0, errors.New("ekcert: not a TCG_PCCLIENT_STORED_CERT of a full certificate")
	}
	n := int(binary.BigEndian.Uint16(head[3:]))
	if n <= 2 {
		return 0, fmt.Errorf("ekcert: a stored certificate of %d bytes", n)
	}
	return 5 + n, nil
}

// Unframe12 returns the DER certificate in data, the contents of
// NVIndexEKCert12 (bytes after the framed certificate are ignored: an
// index may be larger).
func Unframe12(data []byte) ([]byte, error) {
	n, err := Frame12Size(data)
	if err != nil {
		return nil, err
	}
	if len(data) < n {
		return nil, fmt.Errorf("ekcert: a stored certificate of %d bytes in %d", n, len(data))
	}
	return data[Frame12Header:n], nil
}
