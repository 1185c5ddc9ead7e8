package tpm12

import (
	"crypto/hmac"
	"crypto/sha1"
	"encoding/binary"
)

// Authorization protocols, Part 2 §4.12 (TPM_PROTOCOL_ID).
const (
	pidOIAP uint16 = 0x0001
	pidOSAP uint16 = 0x0002
)

// Entity types, Part 2 §4.9 (TPM_ENTITY_TYPE): the low byte names the
// entity, the high byte the ADIP encryption scheme.
const (
	etKeyHandle uint8 = 0x01
	etOwner     uint8 = 0x02
	etSRK       uint8 = 0x04
	etCounter   uint8 = 0x0A
	etNV        uint8 = 0x0B
	// ADIP schemes: XOR (the default) and AES-128 in CTR mode.
	etXOR    uint8 = 0x00
	etAES128 uint8 = 0x06
)

// Resource types, Part 2 §4.10 (TPM_RESOURCE_TYPE).
const (
	rtKey     uint32 = 0x01
	rtAuth    uint32 = 0x02
	rtTrans   uint32 = 0x04
	rtContext uint32 = 0x05
	rtDAATPM  uint32 = 0x08
)

// firstSessionHandle is the first authorization handle given out; the
// value is the TPM's choice (Part 1 §13).
const firstSessionHandle uint32 = 0x02000000

// session is one OIAP or OSAP authorization session (Part 1 §13.1,
// §13.2).
type session struct {
	pid       uint16
	nonceEven digest
	// OSAP only: the entity the session is bound to, its ADIP scheme and
	// the shared secret HMAC(entity authData, nonceEvenOSAP ||
	// nonceOddOSAP).
	entityType   uint8
	entityValue  uint32
	adip         uint8
	sharedSecret digest
}

// newSession registers s under a fresh handle with a fresh nonceEven.
func (t *TPM) newSession(s *session) (uint32, error) {
	if len(t.sessions) >= authSessionsMax {
		return 0, rcE(rcResources, "%d sessions loaded", len(t.sessions))
	}
	t.randBytes(s.nonceEven[:])
	for {
		h := firstSessionHandle + t.nextHandle%0x00FFFFFF
		t.nextHandle++
		if t.sessions[h] == nil {
			t.sessions[h] = s
			return h, nil
		}
	}
}

type oiapOut struct {
	AuthHandle uint32
	NonceEven  digest
}

func (o *oiapOut) marshal(w *writer) {
	w.u32(o.AuthHandle)
	w.bytes(o.NonceEven[:])
}

// oiap is TPM_OIAP, Part 3 §18.1: a session whose every command proves
// knowledge of the entity's authData itself.
func (t *TPM) oiap(_ *call, _ *none) (*oiapOut, error) {
	s := &session{pid: pidOIAP}
	h, err := t.newSession(s)
	if err != nil {
		return nil, err
	}
	return &oiapOut{AuthHandle: h, NonceEven: s.nonceEven}, nil
}

type osapIn struct {
	EntityType   uint16
	EntityValue  uint32
	NonceOddOSAP digest
}

func (o *osapIn) unmarshal(r *reader) {
	o.EntityType = r.u16()
	o.EntityValue = r.u32()
	o.NonceOddOSAP = r.digest()
}

type osapOut struct {
	AuthHandle    uint32
	NonceEven     digest
	NonceEvenOSAP digest
}

func (o *osapOut) marshal(w *writer) {
	w.u32(o.AuthHandle)
	w.bytes(o.NonceEven[:])
	w.bytes(o.NonceEvenOSAP[:])
}

// osap is TPM_OSAP, Part 3 §18.2: a session bound to one entity, keyed
// by a secret shared from that entity's authData and both OSAP nonces.
// The entity is the owner, the SRK, a loaded key (TPM_ET_KEYHANDLE), a
// monotonic counter or an NV index; the SRK, named by TPM_ET_SRK or by
// its key handle, is recorded as TPM_ET_SRK.
func (t *TPM) osap(_ *call, in *osapIn) (*osapOut, error) {
	adip, et := uint8(in.EntityType>>8), uint8(in.EntityType)
	if adip != etXOR && adip != etAES128 {
		return nil, rcE(rcInappropriateEnc, "ADIP scheme %#x", adip)
	}
	var secret digest
	switch et {
	case etOwner:
		secret = t.ps.OwnerAuth
	case etSRK:
		if t.ps.SRK == nil {
			return nil, rcE(rcKeyNotFound, "no SRK")
		}
		in.EntityValue, secret = khSRK, t.ps.SRK.Auth
	case etKeyHandle:
		k, err := t.loadedKey(in.EntityValue)
		if err != nil {
			return nil, err
		}
		et, in.EntityValue = k.keyEntity()
		secret = k.usageAuth
	case etCounter:
		cnt, err := t.counterSlot(in.EntityValue)
		if err != nil {
			return nil, err
		}
		secret = cnt.Auth
	case etNV:
		i := t.nvFind(in.EntityValue)
		if i < 0 {
			return nil, rcE(rcBadIndex, "NV index %#x", in.EntityValue)
		}
		secret = t.ps.NV[i].Auth
	default:
		return nil, rcE(rcBadParameter, "entity type %#x", et)
	}
	s := &session{pid: pidOSAP, entityType: et, entityValue: in.EntityValue, adip: adip}
	var nonceEvenOSAP digest
	t.randBytes(nonceEvenOSAP[:])
	m := hmac.New(sha1.New, secret[:])
	m.Write(nonceEvenOSAP[:])
	m.Write(in.NonceOddOSAP[:])
	copy(s.sharedSecret[:], m.Sum(nil))
	h, err := t.newSession(s)
	if err != nil {
		return nil, err
	}
	return &osapOut{AuthHandle: h, NonceEven: s.nonceEven, NonceEvenOSAP: nonceEvenOSAP}, nil
}

type flushSpecificIn struct {
	Handle       uint32
	ResourceType uint32
}

func (f *flushSpecificIn) unmarshal(r *reader) {
	f.Handle = r.u32()
	f.ResourceType = r.u32()
}

// flushSpecific is TPM_FlushSpecific, Part 3 §22.1, for sessions and
// loaded keys. No transport, saved context or DAA session can be loaded,
// so naming one is the error the reference gives for an unknown handle
// of that type.
func (t *TPM) flushSpecific(_ *call, in *flushSpecificIn) (*none, error) {
	switch in.ResourceType {
	case rtAuth:
		if t.sessions[in.Handle] == nil {
			return nil, rcE(rcInvalidAuthHandle, "session %#x", in.Handle)
		}
		delete(t.sessions, in.Handle)
		return &none{}, nil
	case rtKey:
		if t.keys[in.Handle] == nil {
			return nil, rcE(rcBadParameter, "no key %#x", in.Handle)
		}
		return &none{}, t.evictKey(in.Handle)
	case rtContext:
		return nil, rcE(rcBadParameter, "no resource %#x of type %d", in.Handle, in.ResourceType)
	case rtTrans, rtDAATPM:
		return nil, rcE(rcInvalidAuthHandle, "no session %#x of type %d", in.Handle, in.ResourceType)
	}
	return nil, rcE(rcInvalidResource, "resource type %#x", in.ResourceType)
}

// authorize checks the i-th authorization area of c against the entity
// whose authData is secret (entityType and entityValue name it, for OSAP
// sessions bound to it), Part 1 §13.2: the HMAC, keyed by the authData
// (OIAP) or the shared secret (OSAP), of the input parameter digest,
// nonceEven, nonceOdd and continueAuthSession. A wrong HMAC counts
// toward the dictionary-attack lockout (da.go).
func (t *TPM) authorize(c *call, i int, secret digest, entityType uint8, entityValue uint32) error {
	fail := rcAuthFail
	if i == 1 {
		fail = rcAuth2Fail
	}
	a := &c.auth[i]
	s := t.sessions[a.handle]
	if s == nil {
		return rcE(rcInvalidAuthHandle, "session %#x", a.handle)
	}
	key := secret
	if s.pid == pidOSAP {
		if s.entityType != entityType || s.entityValue != entityValue && entityType != etOwner {
			return rcE(fail, "OSAP session bound to another entity")
		}
		key = s.sharedSecret
	}
	if !hmac.Equal(authHMAC(key, c.inDigest, s.nonceEven, a.nonceOdd, a.cont), a.hmac[:]) {
		t.authFailed()
		return rcE(fail, "authorization HMAC of session %#x", a.handle)
	}
	a.sess, a.key = s, key
	return nil
}

// bindSession takes the i-th authorization area of c as the owner's
// without checking its HMAC, for the one command libtpms leaves
// unchecked (TPM_NV_ReadValue before nvLocked): the response is still
// authorized with the owner's secret.
func (t *TPM) bindSession(c *call, i int) error {
	a := &c.auth[i]
	s := t.sessions[a.handle]
	if s == nil {
		return rcE(rcInvalidAuthHandle, "session %#x", a.handle)
	}
	a.sess, a.key = s, t.ps.OwnerAuth
	if s.pid == pidOSAP {
		a.key = s.sharedSecret
	}
	return nil
}

// authHMAC is the authorization HMAC of Part 1 §13.2 over a parameter
// digest.
func authHMAC(key, paramDigest, nonceEven, nonceOdd digest, cont bool) []byte {
	m := hmac.New(sha1.New, key[:])
	m.Write(paramDigest[:])
	m.Write(nonceEven[:])
	m.Write(nonceOdd[:])
	if cont {
		m.Write([]byte{1})
	} else {
		m.Write([]byte{0})
	}
	return m.Sum(nil)
}

// responseAuth rolls the session's nonceEven and appends the response
// authorization area of a: the new nonceEven, continueAuthSession and
// the HMAC of SHA-1(returnCode || ordinal || output parameters). A
// session the caller did not continue ends here.
func (t *TPM) responseAuth(c *call, a *authArea, params, out []byte) []byte {
	h := sha1.New()
	_ = binary.Write(h, binary.BigEndian, rcSuccess)
	_ = binary.Write(h, binary.BigEndian, c.ord)
	h.Write(params)
	var outDigest digest
	copy(outDigest[:], h.Sum(nil))
	t.randBytes(a.sess.nonceEven[:])
	out = append(out, a.sess.nonceEven[:]...)
	if a.cont {
		out = append(out, 1)
	} else {
		out = append(out, 0)
		delete(t.sessions, a.handle)
	}
	return append(out, authHMAC(a.key, outDigest, a.sess.nonceEven, a.nonceOdd, a.cont)...)
}
