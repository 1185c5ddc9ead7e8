package proto

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// PeerInfo identifies the vTPM domain a request came from. The manager
// fills it from the tpmback connection (the `uuid` key of the backend
// directory).
type PeerInfo struct {
	DomID uint32
	DevID uint32
	UUID  [16]byte
}

func (p PeerInfo) String() string {
	u := p.UUID
	return fmt.Sprintf("dom%d/%d uuid %x-%x-%x-%x-%x", p.DomID, p.DevID, u[0:4], u[4:6], u[6:8], u[8:10], u[10:16])
}

// Errors a Backend may return (wrapped as it likes) to select the return
// code; any other error is answered TPM_FAIL. A Backend may also return an
// *Error to choose the code itself.
var (
	// ErrForbidden: the peer may not issue this request (TPM_AUTHFAIL).
	ErrForbidden = errors.New("forbidden")
	// ErrNotFound: no key stored for this vTPM (TPM_KEYNOTFOUND); also an
	// unknown UUID when the manager does not auto-create vTPMs.
	ErrNotFound = errors.New("no such vTPM")
	// ErrNoSpace: the manager's store is full (TPM_NOSPACE).
	ErrNoSpace = errors.New("manager storage full")
	// ErrUnsupported: not implemented (VTPM_UNSUPPORTED).
	ErrUnsupported = errors.New("unsupported")
	// ErrBusy: the manager cannot make the request durable now, but may
	// be able to later (its hardware TPM rate-limits NV writes); the peer
	// may retry (TPM_RETRY).
	ErrBusy = errors.New("manager busy, retry later")
)

// IsBusy reports whether err is the manager's answer TPM_RETRY: a client
// may retry the request later.
func IsBusy(err error) bool {
	var pe *Error
	return errors.As(err, &pe) && pe.Code == TPMRetry
}

// Backend is what the manager implements. Methods may be called
// concurrently for different peers; the handler keeps no state.
type Backend interface {
	// Authorize decides whether peer may issue the request with header h.
	// It is called for every request that reaches a backend operation —
	// including a repeat of a request that was just refused — and its
	// verdict is never cached by the handler.
	Authorize(peer PeerInfo, h Header) error
	// SaveHashKey stores blob (HashKeyMin..HashKeyMax bytes) for the vTPM
	// and returns only once it is durable.
	SaveHashKey(uuid [16]byte, blob []byte) error
	// LoadHashKey returns the blob last saved for the vTPM (≤ HashKeyMax
	// bytes).
	LoadHashKey(uuid [16]byte) ([]byte, error)
	// GetRandom returns up to n bytes from the hardware TPM.
	GetRandom(n int) ([]byte, error)
}

// PCRReader is an optional Backend extension: if the Backend implements
// it, TPM_PcrRead pass-through is served (the vTPM's hwinitpcr= option
// needs it); otherwise PcrRead gets TPM_DISABLED_CMD.
type PCRReader interface {
	PCRRead(index uint32) ([20]byte, error)
}

// MaxRandom is the most bytes one GetRandom answer carries: what fits in
// a MaxMessage response after the header and the u32 length.
const MaxRandom = MaxMessage - HeaderSize - 4

// Handler dispatches requests to a Backend. The zero value is not usable;
// set Backend.
type Handler struct {
	Backend Backend
}

// Handle serves one request and returns the response to send. It never
// panics on any input and never returns more than MaxMessage bytes.
func (h *Handler) Handle(req []byte, peer PeerInfo) []byte {
	resp, _ := h.Serve(req, peer)
	return resp
}

// Serve is Handle that also returns why a request failed (nil on success),
// for the manager's log. The response is always set.
func (h *Handler) Serve(req []byte, peer PeerInfo) ([]byte, error) {
	r, msg, err := DecodeRequest(req)
	if r == nil {
		tag := uint16(0)
		if len(req) >= 2 {
			tag = binary.BigEndian.Uint16(req)
		}
		return errorResponse(ResponseTag(tag), codeOf(err)), fmt.Errorf("%v: %w", peer, err)
	}
	rtag := ResponseTag(r.Tag)
	var body []byte
	if err == nil {
		body, err = h.serve(r, msg, peer)
	}
	if err == nil {
		resp, eerr := EncodeResponse(rtag, ReturnSuccess, body)
		if eerr == nil {
			return resp, nil
		}
		err = eerr
	}
	return errorResponse(rtag, codeOf(err)), fmt.Errorf("%v: tag %#04x ordinal %#x: %w", peer, r.Tag, r.Code, err)
}

// codeOf maps an error to the return code the peer sees.
func codeOf(err error) uint32 {
	var pe *Error
	switch {
	case errors.As(err, &pe) && pe.Code != ReturnSuccess:
		return pe.Code
	case errors.Is(err, ErrForbidden):
		return TPMAuthFail
	case errors.Is(err, ErrNotFound):
		return TPMKeyNotFound
	case errors.Is(err, ErrNoSpace):
		return TPMNoSpace
	case errors.Is(err, ErrUnsupported):
		return ReturnUnsupported
	case errors.Is(err, ErrBusy):
		return TPMRetry
	case errors.Is(err, ErrNoGroup):
		return TPMBadIndex
	case errors.Is(err, ErrInUse):
		return TPMAreaLocked
	case errors.Is(err, ErrStale):
		return TPMBadCounter
	case errors.Is(err, ErrBadSignature):
		return TPMAuthFail
	case errors.Is(err, ErrKeyType):
		return TPMBadKeyProperty
	case errors.Is(err, ErrBadRequest):
		return TPMBadParameter
	}
	return TPMFail
}

func (h *Handler) authorize(r *Request, peer PeerInfo) error {
	if err := h.Backend.Authorize(peer, r.Header); err != nil {
		if codeOf(err) == TPMFail {
			// An authorisation failure must never read as a plain failure.
			return fmt.Errorf("authorisation: %w: %w", ErrForbidden, err)
		}
		return fmt.Errorf("authorisation: %w", err)
	}
	return nil
}

// serve authorises and carries out one decoded request.
func (h *Handler) serve(r *Request, msg any, peer PeerInfo) ([]byte, error) {
	if m, ok := msg.(NotPassedThrough); ok {
		return nil, errorf(TPMDisabledCmd, "TPM ordinal %d (tag %#04x) is not passed through to the hardware TPM", m.Ordinal, m.Tag)
	}
	pr, hasPCR := h.Backend.(PCRReader)
	if _, ok := msg.(PCRRead); ok && !hasPCR {
		return nil, errorf(TPMDisabledCmd, "PcrRead pass-through is not offered by this manager")
	}
	if err := h.authorize(r, peer); err != nil {
		return nil, err
	}
	switch m := msg.(type) {
	case SaveHashKey:
		// The backend may keep the slice; hand it a copy, not the ring.
		if err := h.Backend.SaveHashKey(peer.UUID, append([]byte(nil), m.Blob...)); err != nil {
			return nil, fmt.Errorf("SAVEHASHKEY: %w", err)
		}
		return nil, nil
	case LoadHashKey:
		blob, err := h.Backend.LoadHashKey(peer.UUID)
		if err != nil {
			return nil, fmt.Errorf("LOADHASHKEY: %w", err)
		}
		if len(blob) > HashKeyMax {
			return nil, fmt.Errorf("LOADHASHKEY: stored blob of %d bytes exceeds %d", len(blob), HashKeyMax)
		}
		return hashKeyReply(blob), nil
	case GetRandom:
		// TPM 1.2 lets GetRandom return fewer bytes than asked; we cap at
		// what one response can carry instead of overflowing the page.
		want := int(min(m.N, MaxRandom))
		rnd, err := h.Backend.GetRandom(want)
		if err != nil {
			return nil, fmt.Errorf("GetRandom(%d): %w", want, err)
		}
		if len(rnd) > want {
			return nil, fmt.Errorf("GetRandom(%d): backend returned %d bytes", want, len(rnd))
		}
		out := make([]byte, 4+len(rnd))
		binary.BigEndian.PutUint32(out, uint32(len(rnd)))
		copy(out[4:], rnd)
		return out, nil
	case PCRRead:
		d, err := pr.PCRRead(m.Index)
		if err != nil {
			return nil, fmt.Errorf("PcrRead(%d): %w", m.Index, err)
		}
		return d[:], nil
	case GroupList, GroupNew, GroupDel, GroupUpdate, GroupShow, VTPMList, VTPMNew, VTPMDel:
		a, ok := h.Backend.(Admin)
		if !ok {
			return nil, errorf(ReturnUnsupported, "management ordinal %#x: this manager serves no groups", r.Code)
		}
		return serveMgmt(a, m)
	case DeepQuote, GroupAK, GroupActivate:
		a, ok := h.Backend.(Attester)
		if !ok {
			return nil, errorf(ReturnUnsupported, "ordinal %#x: this manager gives no deep quotes", r.Code)
		}
		switch m := m.(type) {
		case DeepQuote:
			m.Nonce = append([]byte(nil), m.Nonce...)
			out, err := a.DeepQuote(peer.UUID, m)
			if err != nil {
				return nil, fmt.Errorf("DEEP_QUOTE: %w", err)
			}
			return out, nil
		case GroupAK:
			out, err := a.GroupAK(m.Group)
			if err != nil {
				return nil, fmt.Errorf("GROUP_AK %d: %w", m.Group, err)
			}
			return out, nil
		case GroupActivate:
			m.CredentialBlob = append([]byte(nil), m.CredentialBlob...)
			m.Secret = append([]byte(nil), m.Secret...)
			out, err := a.GroupActivate(m)
			if err != nil {
				return nil, fmt.Errorf("GROUP_ACTIVATE %d: %w", m.Group, err)
			}
			return out, nil
		}
	case CertifyEK, GroupCACert:
		c, ok := h.Backend.(Certifier)
		if !ok {
			return nil, errorf(ReturnUnsupported, "ordinal %#x: this manager issues no EK certificates", r.Code)
		}
		if m, ok := m.(CertifyEK); ok {
			// The backend may keep the slices; copy them off the ring.
			m.Public = append([]byte(nil), m.Public...)
			der, err := c.CertifyEK(peer.UUID, m)
			if err != nil {
				return nil, fmt.Errorf("CERTIFY_EK: %w", err)
			}
			return der, nil
		}
		g := m.(GroupCACert).Group
		der, err := c.GroupCACert(g)
		if err != nil {
			return nil, fmt.Errorf("GROUP_CA_CERT %d: %w", g, err)
		}
		return der, nil
	case Unsupported:
		return nil, errorf(ReturnUnsupported, "ordinal %#x (tag %#04x: boot hash, deep quote or group attestation key) is not supported yet", m.Ordinal, m.Tag)
	}
	return nil, fmt.Errorf("internal: no handler for %T", msg)
}

// hashKeyReply gives the stored blob in the original manager's shape: it
// keeps a zero-padded 64-byte slot and answers 52 bytes unless bytes
// 52..63 are non-zero, which old 52-byte vTPMs insist on.
func hashKeyReply(blob []byte) []byte {
	out := make([]byte, HashKeyMax)
	copy(out, blob)
	for _, b := range out[HashKeyMin:] {
		if b != 0 {
			return out
		}
	}
	return out[:HashKeyMin]
}
