package proto

import "encoding/binary"

// Typed requests, as DecodeRequest returns them.
type (
	// SaveHashKey (tag 0x01C1, ordinal 1): store Blob for the caller.
	SaveHashKey struct{ Blob []byte }
	// LoadHashKey (tag 0x01C1, ordinal 2): return the caller's blob.
	LoadHashKey struct{}
	// GetRandom (TPM_ORD_GetRandom pass-through): N bytes wanted.
	GetRandom struct{ N uint32 }
	// PCRRead (TPM_ORD_PcrRead pass-through).
	PCRRead struct{ Index uint32 }
	// Unsupported is a known ordinal this manager does not implement yet
	// (boot hash, deep quote, the attestation-key group ordinals).
	Unsupported struct {
		Tag     uint16
		Ordinal uint32
	}
	// NotPassedThrough is a TPM command the manager refuses to forward to
	// the hardware TPM.
	NotPassedThrough struct {
		Tag     uint16
		Ordinal uint32
	}
)

// DecodeRequest checks a request's framing (ParseRequest) and its
// parameters and returns it typed: SaveHashKey, LoadHashKey, GetRandom,
// PCRRead, CertifyEK, one of the management requests (mgmt.go, ekcert.go),
// Unsupported or
// NotPassedThrough. Errors are *Error carrying
// the return code to answer with.
func DecodeRequest(b []byte) (*Request, any, error) {
	r, err := ParseRequest(b)
	if err != nil {
		return nil, nil, err
	}
	switch r.Tag {
	case TagVTPMReq:
		switch r.Code {
		case OrdSaveHashKey:
			if n := len(r.Params); n < HashKeyMin || n > HashKeyMax {
				return r, nil, errorf(TPMBadParameter, "SAVEHASHKEY blob of %d bytes, want %d..%d", n, HashKeyMin, HashKeyMax)
			}
			return r, SaveHashKey{Blob: r.Params}, nil
		case OrdLoadHashKey:
			if len(r.Params) != 0 {
				return r, nil, errorf(TPMBadParameter, "LOADHASHKEY takes no parameters, got %d bytes", len(r.Params))
			}
			return r, LoadHashKey{}, nil
		case OrdGetBootHash, OrdGetQuote:
			// GET_BOOT_HASH needs an XSM label and GET_QUOTE (deep quote)
			// the group AIK: both come with group provisioning.
			return r, Unsupported{r.Tag, r.Code}, nil
		case OrdDeepQuote:
			m, err := decodeDeepQuote(r.Params)
			if err != nil {
				return r, nil, err
			}
			return r, m, nil
		case OrdCertifyEK:
			m, err := decodeCertifyEK(r.Params)
			if err != nil {
				return r, nil, err
			}
			return r, m, nil
		}
		return r, nil, errorf(TPMBadOrdinal, "unknown vTPM ordinal %#x", r.Code)
	case TagMgmtReq:
		m, err := decodeMgmt(r)
		return r, m, err
	case TagTPMReq:
		switch r.Code {
		case OrdTPMGetRandom:
			if len(r.Params) != 4 {
				return r, nil, errorf(TPMBadParamSize, "GetRandom wants a 4-byte count, got %d bytes", len(r.Params))
			}
			return r, GetRandom{N: binary.BigEndian.Uint32(r.Params)}, nil
		case OrdTPMPcrRead:
			if len(r.Params) != 4 {
				return r, nil, errorf(TPMBadParamSize, "PcrRead wants a 4-byte index, got %d bytes", len(r.Params))
			}
			return r, PCRRead{Index: binary.BigEndian.Uint32(r.Params)}, nil
		}
	}
	// Other TPM ordinals, and anything under an auth-session tag: nothing
	// the manager forwards uses them.
	return r, NotPassedThrough{r.Tag, r.Code}, nil
}
