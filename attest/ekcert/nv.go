package ekcert

import gt "github.com/google/go-tpm/tpm2"

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
