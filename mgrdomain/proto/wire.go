// Package proto is the vTPM ↔ manager wire protocol, wire-compatible with
// Xen's vtpmmgr (stubdom/vtpmmgr: vtpm_manager.h, vtpm_cmd_handler.c);
// docs/manager-storage.md, "Protocol", records the choices made here.
//
// Every message is a TCG-style header — tag (u16 BE), paramSize (u32 BE,
// total length including the header), ordinal or return code (u32 BE) —
// followed by the ordinal's parameters. Tag 0x01C1 carries the vTPM
// ordinals (SAVEHASHKEY, LOADHASHKEY, …), tag 0x01C2 the management
// ordinals, and the plain TPM 1.2 request tags a few hardware
// pass-through commands (GetRandom, PcrRead). Responses use the request
// tag + 3, as the original manager does.
//
// The package holds no state between requests: every request is decoded,
// authorised by the Backend and served on its own. That is deliberate —
// the original manager cached the peer's vTPM before its authorisation
// check, so a request repeated after a failed check skipped the check.
// Nothing here can cache a verdict.
//
// Nothing here touches the hardware or Xen; the manager domain supplies a
// Backend, which makes the dispatcher testable on the host.
package proto

import (
	"encoding/binary"
	"fmt"
)

// Tags (vtpm_manager.h, and TPM 1.2's own).
const (
	TagVTPMReq   uint16 = 0x01C1 // VTPM_TAG_REQ: vTPM ordinals
	TagMgmtReq   uint16 = 0x01C2 // VTPM_TAG_REQ2: management ordinals
	TagVTPMRsp   uint16 = 0x01C4 // VTPM_TAG_RSP
	TagMgmtRsp   uint16 = 0x01C5 // VTPM_TAG_RSP2
	TagTPMReq    uint16 = 0x00C1 // TPM_TAG_RQU_COMMAND
	TagTPMReqA1  uint16 = 0x00C2 // TPM_TAG_RQU_AUTH1_COMMAND
	TagTPMReqA2  uint16 = 0x00C3 // TPM_TAG_RQU_AUTH2_COMMAND
	TagTPMRsp    uint16 = 0x00C4 // TPM_TAG_RSP_COMMAND
	tagRspOffset uint16 = 3      // response tag = request tag + 3
	HeaderSize          = 10     // VTPM_COMMAND_HEADER_SIZE
)

// vTPM ordinals (tag 0x01C1, vtpm_manager.h).
const (
	OrdSaveHashKey uint32 = 1
	OrdLoadHashKey uint32 = 2
	OrdGetBootHash uint32 = 3
	OrdGetQuote    uint32 = 4
)

// Management ordinals (tag 0x01C2, vtpm_manager.h): mgmt.go decodes the
// ones this manager serves; the group attestation-key ordinals, VTPM_SHOW,
// VTPM_EDIT and 0x02000301..306 are answered VTPM_UNSUPPORTED.
const (
	OrdGroupList     uint32 = 0x02000101
	OrdGroupNew      uint32 = 0x02000102
	OrdGroupDel      uint32 = 0x02000103
	OrdGroupActivate uint32 = 0x02000104
	OrdGroupRegister uint32 = 0x02000105
	OrdGroupUpdate   uint32 = 0x02000106
	OrdGroupShow     uint32 = 0x02000107
	OrdGroupQuote    uint32 = 0x02000108
	OrdGroupRecover1 uint32 = 0x02000109
	OrdGroupRecover2 uint32 = 0x0200010A
	OrdVTPMList      uint32 = 0x02000201
	OrdVTPMShow      uint32 = 0x02000202
	OrdVTPMEdit      uint32 = 0x02000203
	OrdVTPMNew       uint32 = 0x02000204
	OrdVTPMDel       uint32 = 0x02000205
	// 0x02000301..0x02000306: MakeIdentity … NV_ReadValue.
	ordMgmtTPMFirst uint32 = 0x02000301
	ordMgmtTPMLast  uint32 = 0x02000306
)

// TPM 1.2 ordinals passed through to the hardware TPM.
const (
	OrdTPMPcrRead   uint32 = 21 // TPM_ORD_PcrRead
	OrdTPMGetRandom uint32 = 70 // TPM_ORD_GetRandom
)

// Return codes. The manager's own codes (VTPM_*) overlap numerically with
// TPM 1.2 codes; the original manager returns both kinds, and so do we,
// choosing for each failure the code listed in docs/manager-storage.md.
const (
	ReturnSuccess        uint32 = 0 // VTPM_SUCCESS / TPM_SUCCESS
	ReturnFail           uint32 = 1 // VTPM_FAIL
	ReturnUnsupported    uint32 = 2 // VTPM_UNSUPPORTED
	ReturnForbidden      uint32 = 3 // VTPM_FORBIDDEN
	ReturnInvalidRequest uint32 = 5 // VTPM_INVALID_REQUEST

	TPMAuthFail     uint32 = 1     // TPM_AUTHFAIL
	TPMBadParameter uint32 = 3     // TPM_BAD_PARAMETER
	TPMDisabledCmd  uint32 = 8     // TPM_DISABLED_CMD
	TPMFail         uint32 = 9     // TPM_FAIL
	TPMBadOrdinal   uint32 = 10    // TPM_BAD_ORDINAL
	TPMKeyNotFound  uint32 = 13    // TPM_KEYNOTFOUND
	TPMNoSpace      uint32 = 17    // TPM_NOSPACE
	TPMSize         uint32 = 23    // TPM_SIZE
	TPMBadParamSize uint32 = 25    // TPM_BAD_PARAM_SIZE
	TPMBadTag       uint32 = 30    // TPM_BADTAG
	TPMRetry        uint32 = 0x800 // TPM_RETRY: busy, try again later
)

// Sizes.
const (
	// MaxMessage is the largest request or response: the tpmif v2 shared
	// page holds 4096 − 8 bytes of data (ring.MaxData). Anything larger is
	// refused instead of being truncated or hanging the ring.
	MaxMessage = 4088
	// HashKeyMin and HashKeyMax bound SAVEHASHKEY's blob: 52 bytes
	// (SHA-1 ‖ AES-256 key, the old vTPM) up to 64 (SHA-256 ‖ key).
	HashKeyMin = 52
	HashKeyMax = 64
)

// Header is the 10-byte message header.
type Header struct {
	Tag  uint16
	Size uint32 // paramSize: total message length, header included
	Code uint32 // ordinal (requests) or return code (responses)
}

// Error is a protocol-level failure carrying the return code it maps to.
type Error struct {
	Code uint32 // the return code sent to the peer
	Msg  string
}

func (e *Error) Error() string { return fmt.Sprintf("%s (return code %d)", e.Msg, e.Code) }

func errorf(code uint32, format string, args ...any) *Error {
	return &Error{Code: code, Msg: fmt.Sprintf(format, args...)}
}

// Request is a decoded, length-checked request.
type Request struct {
	Header
	Params []byte // the bytes after the header; aliases the input
}

// ParseRequest checks framing: a full header, paramSize equal to the
// buffer length, no more than MaxMessage bytes and a known tag. It does not
// interpret the ordinal; Handler does. Errors are *Error.
func ParseRequest(b []byte) (*Request, error) {
	if len(b) > MaxMessage {
		return nil, errorf(TPMSize, "request of %d bytes exceeds the %d-byte limit", len(b), MaxMessage)
	}
	if len(b) < HeaderSize {
		return nil, errorf(TPMBadParameter, "request of %d bytes is shorter than the %d-byte header", len(b), HeaderSize)
	}
	h := Header{
		Tag:  binary.BigEndian.Uint16(b[0:2]),
		Size: binary.BigEndian.Uint32(b[2:6]),
		Code: binary.BigEndian.Uint32(b[6:10]),
	}
	if uint64(h.Size) != uint64(len(b)) {
		return nil, errorf(TPMBadParamSize, "paramSize %d does not match the %d bytes received", h.Size, len(b))
	}
	switch h.Tag {
	case TagVTPMReq, TagMgmtReq, TagTPMReq, TagTPMReqA1, TagTPMReqA2:
	default:
		return nil, errorf(TPMBadTag, "unknown request tag %#04x", h.Tag)
	}
	return &Request{Header: h, Params: b[HeaderSize:]}, nil
}

// ResponseTag is the tag a response to a request with tag t carries:
// t + 3 for the known request tags, TPM_TAG_RSP_COMMAND otherwise (an
// unknown or unreadable tag has no defined answer tag).
func ResponseTag(t uint16) uint16 {
	switch t {
	case TagVTPMReq, TagMgmtReq, TagTPMReq, TagTPMReqA1, TagTPMReqA2:
		return t + tagRspOffset
	}
	return TagTPMRsp
}

// EncodeResponse builds a response message. It fails if the result would
// exceed MaxMessage, so a caller can never hand the ring an oversize reply.
func EncodeResponse(tag uint16, code uint32, params []byte) ([]byte, error) {
	n := HeaderSize + len(params)
	if n > MaxMessage {
		return nil, errorf(TPMSize, "response of %d bytes exceeds the %d-byte limit", n, MaxMessage)
	}
	b := make([]byte, n)
	binary.BigEndian.PutUint16(b[0:2], tag)
	binary.BigEndian.PutUint32(b[2:6], uint32(n))
	binary.BigEndian.PutUint32(b[6:10], code)
	copy(b[HeaderSize:], params)
	return b, nil
}

// errorResponse is EncodeResponse for a bare error, which always fits.
func errorResponse(tag uint16, code uint32) []byte {
	b, _ := EncodeResponse(tag, code, nil)
	return b
}

// encodeRequest builds a request message (client side).
func encodeRequest(tag uint16, ord uint32, params []byte) ([]byte, error) {
	n := HeaderSize + len(params)
	if n > MaxMessage {
		return nil, fmt.Errorf("request of %d bytes exceeds the %d-byte limit", n, MaxMessage)
	}
	b := make([]byte, n)
	binary.BigEndian.PutUint16(b[0:2], tag)
	binary.BigEndian.PutUint32(b[2:6], uint32(n))
	binary.BigEndian.PutUint32(b[6:10], ord)
	copy(b[HeaderSize:], params)
	return b, nil
}

// EncodeSaveHashKey builds a SAVEHASHKEY request (the vTPM side).
func EncodeSaveHashKey(blob []byte) ([]byte, error) {
	if len(blob) < HashKeyMin || len(blob) > HashKeyMax {
		return nil, fmt.Errorf("SAVEHASHKEY blob of %d bytes, want %d..%d", len(blob), HashKeyMin, HashKeyMax)
	}
	return encodeRequest(TagVTPMReq, OrdSaveHashKey, blob)
}

// EncodeLoadHashKey builds a LOADHASHKEY request (the vTPM side).
func EncodeLoadHashKey() []byte {
	b, _ := encodeRequest(TagVTPMReq, OrdLoadHashKey, nil)
	return b
}

// EncodeGetRandom builds a TPM 1.2 GetRandom pass-through request.
func EncodeGetRandom(n uint32) []byte {
	var p [4]byte
	binary.BigEndian.PutUint32(p[:], n)
	b, _ := encodeRequest(TagTPMReq, OrdTPMGetRandom, p[:])
	return b
}

// EncodePCRRead builds a TPM 1.2 PcrRead pass-through request.
func EncodePCRRead(index uint32) []byte {
	var p [4]byte
	binary.BigEndian.PutUint32(p[:], index)
	b, _ := encodeRequest(TagTPMReq, OrdTPMPcrRead, p[:])
	return b
}

// ParseResponse checks a response's framing against the request tag it
// answers and returns its return code and parameters. A non-zero code is
// returned as an *Error so callers can test it with errors.As.
func ParseResponse(b []byte, reqTag uint16) ([]byte, error) {
	if len(b) > MaxMessage {
		return nil, fmt.Errorf("response of %d bytes exceeds the %d-byte limit", len(b), MaxMessage)
	}
	if len(b) < HeaderSize {
		return nil, fmt.Errorf("response of %d bytes is shorter than the %d-byte header", len(b), HeaderSize)
	}
	tag := binary.BigEndian.Uint16(b[0:2])
	size := binary.BigEndian.Uint32(b[2:6])
	code := binary.BigEndian.Uint32(b[6:10])
	if uint64(size) != uint64(len(b)) {
		return nil, fmt.Errorf("response paramSize %d does not match the %d bytes received", size, len(b))
	}
	if want := ResponseTag(reqTag); tag != want {
		return nil, fmt.Errorf("response tag %#04x, want %#04x", tag, want)
	}
	if code != ReturnSuccess {
		return nil, &Error{Code: code, Msg: "manager returned an error"}
	}
	return b[HeaderSize:], nil
}

// DecodeLoadHashKeyResponse returns the blob of a LOADHASHKEY response.
func DecodeLoadHashKeyResponse(b []byte) ([]byte, error) {
	p, err := ParseResponse(b, TagVTPMReq)
	if err != nil {
		return nil, fmt.Errorf("LOADHASHKEY: %w", err)
	}
	if len(p) != HashKeyMin && len(p) != HashKeyMax {
		return nil, fmt.Errorf("LOADHASHKEY: %d-byte blob, want %d or %d", len(p), HashKeyMin, HashKeyMax)
	}
	return p, nil
}

// DecodeGetRandomResponse returns the bytes of a GetRandom response.
func DecodeGetRandomResponse(b []byte) ([]byte, error) {
	p, err := ParseResponse(b, TagTPMReq)
	if err != nil {
		return nil, fmt.Errorf("GetRandom: %w", err)
	}
	if len(p) < 4 {
		return nil, fmt.Errorf("GetRandom: %d-byte response body, want at least 4", len(p))
	}
	n := binary.BigEndian.Uint32(p[:4])
	if uint64(n) != uint64(len(p)-4) {
		return nil, fmt.Errorf("GetRandom: randomBytesSize %d but %d bytes follow", n, len(p)-4)
	}
	return p[4:], nil
}
