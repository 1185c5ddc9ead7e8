package conformance

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"encoding/binary"
	"fmt"
	"math/big"
	"testing"
	"time"

	"github.com/xenvtpm/xenvtpm/emulator/tpm12"
	"github.com/xenvtpm/xenvtpm/internal/swtpmtest"
)

// Ordinals and constants of the ownership commands, Part 2 §17.
const (
	ordTakeOwnership, ordChangeAuthOwner               = 0x0D, 0x10
	ordResetLockValue, ordOwnerClear                   = 0x40, 0x5B
	ordDisableOwnerClear, ordForceClear                = 0x5C, 0x5D
	ordOwnerSetDisable, ordOwnerReadInternalPub        = 0x6E, 0x81
	ordGetCapabilityOwner                              = 0x66
	etOwner, etSRK, etKeyHandle                        = 0x02, 0x04, 0x01
	khSRK, khEK                                 uint32 = 0x40000000, 0x40000006
)

// client is what a step needs to talk to one side as an owner would: the
// EK read before ownership, and the secrets it has set.
type client struct {
	tr    tpm
	ek    *rsa.PublicKey
	owner []byte
	srk   []byte
	// srkPub is the TPM_KEY TakeOwnership returned.
	srkPub []byte
}

func hmacSHA1(key []byte, parts ...[]byte) []byte {
	m := hmac.New(sha1.New, key)
	for _, p := range parts {
		m.Write(p)
	}
	return m.Sum(nil)
}

func sha1Of(parts ...[]byte) []byte {
	h := sha1.New()
	for _, p := range parts {
		h.Write(p)
	}
	return h.Sum(nil)
}

// parsePubkey reads the modulus of a TPM_PUBKEY with TPM_RSA_KEY_PARMS.
func parsePubkey(b []byte) (*rsa.PublicKey, []byte) {
	if len(b) < 12 {
		return nil, nil
	}
	n := binary.BigEndian.Uint32(b[8:])
	off := 12 + int(n)
	if len(b) < off+4 {
		return nil, nil
	}
	m := binary.BigEndian.Uint32(b[off:])
	if len(b) < off+4+int(m) {
		return nil, nil
	}
	mod := b[off+4 : off+4+int(m)]
	return &rsa.PublicKey{N: new(big.Int).SetBytes(mod), E: 65537}, b[off+4+int(m):]
}

func (c *client) readEK() string {
	rc, out, e := do(c.tr, ordReadPubek, digest1)
	if rc != 0 || e != "" {
		return fmt.Sprintf("%s rc=%#x", e, rc)
	}
	c.ek, _ = parsePubkey(out)
	return "ok"
}

// session is an OIAP or OSAP session as the client sees it.
type session struct {
	h         []byte
	nonceEven []byte
	key       []byte // OSAP: the shared secret
}

func (c *client) oiap() (*session, string) {
	rc, out, e := do(c.tr, ordOIAP)
	if rc != 0 || len(out) != 24 {
		return nil, e + fmt.Sprintf("OIAP rc=%#x", rc)
	}
	return &session{h: out[:4], nonceEven: out[4:]}, ""
}

func (c *client) osap(et uint16, ev uint32, secret []byte) (*session, string) {
	odd := bytes.Repeat([]byte{0x51}, 20)
	rc, out, e := do(c.tr, ordOSAP, u16(et), u32(ev), odd)
	if rc != 0 || len(out) != 44 {
		return nil, e + fmt.Sprintf("OSAP rc=%#x", rc)
	}
	return &session{h: out[:4], nonceEven: out[4:24], key: hmacSHA1(secret, out[24:44], odd)}, ""
}

// auth1 sends an AUTH1 command: handles are left out of the parameter
// digest; key is the HMAC key (the entity's secret for OIAP, nil for
// OSAP, whose shared secret is used). It reports the response code and
// whether the response authorization verifies, and returns the output
// parameters.
func (c *client) auth1(s *session, key []byte, cont bool, ord uint32, handles, params []byte) (string, []byte) {
	if s.key != nil {
		key = s.key
	}
	odd := bytes.Repeat([]byte{0x0D}, 20)
	cb := []byte{0}
	if cont {
		cb[0] = 1
	}
	mac := hmacSHA1(key, sha1Of(u32(ord), params), s.nonceEven, odd, cb)
	rsp, err := c.tr.send(0, cmd(0xC2, ord, handles, params, s.h, odd, cb, mac))
	if err != nil {
		return "transport: " + err.Error(), nil
	}
	rc := binary.BigEndian.Uint32(rsp[6:])
	if rc != 0 {
		return fmt.Sprintf("rc=%#x tag=%x len=%d", rc, rsp[:2], len(rsp)), nil
	}
	if len(rsp) < 10+41 {
		return fmt.Sprintf("rc=0 short %x", rsp), nil
	}
	out := rsp[10 : len(rsp)-41]
	even, rcont, res := rsp[len(rsp)-41:len(rsp)-21], rsp[len(rsp)-21], rsp[len(rsp)-20:]
	ok := hmac.Equal(res, hmacSHA1(key, sha1Of(u32(0), u32(ord), out), even, odd, []byte{rcont}))
	s.nonceEven = even
	return fmt.Sprintf("rc=0 tag=%x cont=%d resAuth=%v", rsp[:2], rcont, ok), out
}

// srkParams is a TPM_KEY (version 1.1.0.0) asking for an RSA storage
// key as tpm_takeownership does, with the fields given.
func srkParams(usage uint16, flags uint32, bits uint32, primes uint32) []byte {
	rsaParms := append(append(u32(bits), u32(primes)...), u32(0)...)
	b := []byte{1, 1, 0, 0}
	b = append(b, u16(usage)...)
	b = append(b, u32(flags)...)
	b = append(b, 1)
	b = append(b, u32(1)...)
	b = append(b, u16(3)...)
	b = append(b, u16(1)...)
	b = append(b, u32(uint32(len(rsaParms)))...)
	b = append(b, rsaParms...)
	return append(b, make([]byte, 12)...) // PCRInfo, pubKey, encData: empty
}

func (c *client) oaep(secret []byte) []byte {
	if c.ek == nil {
		return nil
	}
	ct, err := rsa.EncryptOAEP(sha1.New(), rand.Reader, c.ek, secret, []byte("TCPA"))
	if err != nil {
		panic(err)
	}
	return ct
}

// takeOwnership sends TPM_TakeOwnership; macKey is the secret the HMAC
// is keyed with (the new owner secret unless a step corrupts it).
func (c *client) takeOwnership(pid uint16, encOwner, encSRK, params, macKey []byte) string {
	s, e := c.oiap()
	if s == nil {
		return e
	}
	p := append(u16(pid), u32(uint32(len(encOwner)))...)
	p = append(p, encOwner...)
	p = append(p, u32(uint32(len(encSRK)))...)
	p = append(p, encSRK...)
	p = append(p, params...)
	r, out := c.auth1(s, macKey, false, ordTakeOwnership, nil, p)
	if out != nil {
		c.srkPub = out
		// The SRK's TPM_KEY up to its modulus, and the sizes.
		r += fmt.Sprintf(" len=%d head=%x", len(out), out[:min(len(out), 33)])
		if len(out) >= 4 {
			r += fmt.Sprintf(" encDataSize=%x", out[len(out)-4:])
		}
	}
	return r
}

func ownerStep(name string, f func(c *client) string) func(*client) diffStep {
	return func(c *client) diffStep { return diffStep{name, func(tpm) string { return f(c) }} }
}

// ownedOut runs an owner-authorized command on a fresh OIAP session keyed
// with secret.
func (c *client) ownerOIAP(secret []byte, ord uint32, handles, params []byte) (string, []byte) {
	s, e := c.oiap()
	if s == nil {
		return e, nil
	}
	return c.auth1(s, secret, false, ord, handles, params)
}

// The permanent-flag steps compare disable, ownership, deactivated,
// readPubek, disableOwnerClear and allowMaintenance: CEKPUsed and
// enableRevokeEK record how the endorsement key was made, which differs
// (TPM_CreateEndorsementKeyPair for swtpm here).

// ownershipSteps take ownership and exercise the owner's commands; the
// client of each side carries the secrets between steps.
func ownershipSteps() []func(*client) diffStep {
	owner := sha1Of([]byte("owner"))
	srk := make([]byte, 20) // the well-known secret
	wrong := sha1Of([]byte("wrong"))
	goodSRK := srkParams(0x11, 0, 2048, 2)
	return []func(*client) diffStep{
		ownerStep("ReadPubek before ownership", func(c *client) string { return c.readEK() }),
		ownerStep("CAP_ORD of the ownership and sealing ordinals", func(c *client) string {
			var s string
			for _, o := range []uint32{ordTakeOwnership, ordChangeAuthOwner, ordResetLockValue, ordOwnerClear,
				ordDisableOwnerClear, ordForceClear, ordOwnerSetDisable, ordOwnerReadInternalPub, ordSeal, ordUnseal, ordGetCapabilityOwner} {
				rc, out, e := do(c.tr, ordGetCapability, capArgs(1, u32(o))...)
				s += e + fmt.Sprintf("%#x: rc=%#x %x; ", o, rc, out)
			}
			return s
		}),
		ownerStep("OSAP SRK before ownership", func(c *client) string {
			rc, _, e := do(c.tr, ordOSAP, u16(etSRK), u32(khSRK), digest1)
			return e + fmt.Sprintf("rc=%#x", rc)
		}),
		ownerStep("TakeOwnership protocolID 4", func(c *client) string {
			return c.takeOwnership(4, c.oaep(owner), c.oaep(srk), goodSRK, owner)
		}),
		ownerStep("TakeOwnership garbage encOwnerAuth", func(c *client) string {
			return c.takeOwnership(5, bytes.Repeat([]byte{1}, 256), c.oaep(srk), goodSRK, owner)
		}),
		ownerStep("TakeOwnership 16-byte owner secret", func(c *client) string {
			return c.takeOwnership(5, c.oaep(owner[:16]), c.oaep(srk), goodSRK, owner)
		}),
		ownerStep("TakeOwnership wrong HMAC", func(c *client) string {
			return c.takeOwnership(5, c.oaep(owner), c.oaep(srk), goodSRK, wrong)
		}),
		ownerStep("TakeOwnership signing SRK", func(c *client) string {
			return c.takeOwnership(5, c.oaep(owner), c.oaep(srk), srkParams(0x10, 0, 2048, 2), owner)
		}),
		ownerStep("TakeOwnership migratable SRK", func(c *client) string {
			return c.takeOwnership(5, c.oaep(owner), c.oaep(srk), srkParams(0x11, 2, 2048, 2), owner)
		}),
		ownerStep("TakeOwnership 1024-bit SRK", func(c *client) string {
			return c.takeOwnership(5, c.oaep(owner), c.oaep(srk), srkParams(0x11, 0, 1024, 2), owner)
		}),
		ownerStep("TakeOwnership TPM_KEY version 1.2", func(c *client) string {
			p := append([]byte{1, 2}, goodSRK[2:]...)
			return c.takeOwnership(5, c.oaep(owner), c.oaep(srk), p, owner)
		}),
		ownerStep("TakeOwnership garbage encSrkAuth", func(c *client) string {
			return c.takeOwnership(5, c.oaep(owner), bytes.Repeat([]byte{1}, 256), goodSRK, owner)
		}),
		ownerStep("ResetLockValue before ownership", func(c *client) string {
			r, _ := c.ownerOIAP(make([]byte, 20), ordResetLockValue, nil, nil)
			return r
		}),
		ownerStep("TakeOwnership", func(c *client) string {
			c.owner, c.srk = owner, srk
			return c.takeOwnership(5, c.oaep(owner), c.oaep(srk), goodSRK, owner)
		}),
		ownerStep("TakeOwnership again", func(c *client) string {
			return c.takeOwnership(5, c.oaep(owner), c.oaep(srk), goodSRK, owner)
		}),
		ownerStep("ReadPubek after ownership", func(c *client) string {
			rc, _, e := do(c.tr, ordReadPubek, digest1)
			return e + fmt.Sprintf("rc=%#x", rc)
		}),
		ownerStep("CAP_PROPERTY OWNER", func(c *client) string {
			rc, out, e := do(c.tr, ordGetCapability, capArgs(5, u32(0x111))...)
			return e + fmt.Sprintf("rc=%#x %x", rc, out)
		}),
		ownerStep("CAP_FLAG permanent after ownership", func(c *client) string {
			rc, out, e := do(c.tr, ordGetCapability, capArgs(4, u32(0x108))...)
			return e + fmt.Sprintf("rc=%#x %x", rc, out[:min(len(out), 12)])
		}),
		ownerStep("OwnerReadInternalPub EK", func(c *client) string {
			r, out := c.ownerOIAP(c.owner, ordOwnerReadInternalPub, nil, u32(khEK))
			k, rest := parsePubkey(out)
			return r + fmt.Sprintf(" sameEK=%v rest=%d", k != nil && c.ek != nil && k.N.Cmp(c.ek.N) == 0, len(rest))
		}),
		// The sides' flags differ by how they were made (swtpm_setup's
		// factory flags here, none there): each side's bitmaps must be
		// its own TPM_CAP_FLAG structures, bit i the i-th flag.
		ownerStep("GetCapabilityOwner", func(c *client) string {
			r, out := c.ownerOIAP(c.owner, ordGetCapabilityOwner, nil, nil)
			if len(out) != 12 {
				return r + fmt.Sprintf(" %x", out)
			}
			_, perm, _ := do(c.tr, ordGetCapability, capArgs(4, u32(0x108))...)
			_, vol, _ := do(c.tr, ordGetCapability, capArgs(4, u32(0x109))...)
			_, ver, _ := do(c.tr, ordGetCapability, capArgs(0x1A, nil)...)
			return r + fmt.Sprintf(" versionAsCapVersionVal=%v nonVolatile=%v volatile=%v", len(ver) > 6 && bytes.Equal(out[:4], ver[6:10]),
				binary.BigEndian.Uint32(out[4:]) == flagBits(perm), binary.BigEndian.Uint32(out[8:]) == flagBits(vol))
		}),
		ownerStep("OwnerReadInternalPub SRK", func(c *client) string {
			r, out := c.ownerOIAP(c.owner, ordOwnerReadInternalPub, nil, u32(khSRK))
			k, _ := parsePubkey(out)
			return r + fmt.Sprintf(" len=%d sameSRK=%v", len(out), k != nil && bytes.Contains(c.srkPub, k.N.Bytes()))
		}),
		ownerStep("OwnerReadInternalPub other handle", func(c *client) string {
			r, _ := c.ownerOIAP(c.owner, ordOwnerReadInternalPub, nil, u32(0x40000001))
			return r
		}),
		ownerStep("OwnerReadInternalPub wrong owner secret", func(c *client) string {
			r, _ := c.ownerOIAP(wrong, ordOwnerReadInternalPub, nil, u32(khEK))
			return r
		}),
		ownerStep("OwnerReadInternalPub on an owner OSAP session", func(c *client) string {
			s, e := c.osap(etOwner, 0, c.owner)
			if s == nil {
				return e
			}
			r, out := c.auth1(s, nil, true, ordOwnerReadInternalPub, nil, u32(khEK))
			return r + fmt.Sprintf(" len=%d", len(out))
		}),
		ownerStep("OSAP SRK by entity type", func(c *client) string {
			s, e := c.osap(etSRK, khSRK, c.srk)
			return e + fmt.Sprintf("ok=%v", s != nil)
		}),
		ownerStep("OSAP SRK by key handle", func(c *client) string {
			s, e := c.osap(etKeyHandle, khSRK, c.srk)
			return e + fmt.Sprintf("ok=%v", s != nil)
		}),
		ownerStep("OSAP unknown key handle", func(c *client) string {
			rc, _, e := do(c.tr, ordOSAP, u16(etKeyHandle), u32(0x01000001), digest1)
			return e + fmt.Sprintf("rc=%#x", rc)
		}),
		ownerStep("ChangeAuthOwner on OIAP", func(c *client) string {
			r, _ := c.ownerOIAP(c.owner, ordChangeAuthOwner, nil, append(append(u16(4), digest1...), u16(etOwner)...))
			return r
		}),
		ownerStep("ChangeAuthOwner protocolID 5", func(c *client) string {
			s, e := c.osap(etOwner, 0, c.owner)
			if s == nil {
				return e
			}
			r, _ := c.auth1(s, nil, true, ordChangeAuthOwner, nil, append(append(u16(5), digest1...), u16(etOwner)...))
			return r
		}),
		ownerStep("ChangeAuthOwner entity type 7", func(c *client) string {
			s, e := c.osap(etOwner, 0, c.owner)
			if s == nil {
				return e
			}
			r, _ := c.auth1(s, nil, true, ordChangeAuthOwner, nil, append(append(u16(4), digest1...), u16(7)...))
			return r
		}),
		ownerStep("ChangeAuthOwner owner", func(c *client) string {
			s, e := c.osap(etOwner, 0, c.owner)
			if s == nil {
				return e
			}
			other, e2 := c.osap(etOwner, 0, c.owner)
			newOwner := sha1Of([]byte("new owner"))
			enc := adip(s, s.nonceEven, newOwner)
			r, _ := c.auth1(s, nil, true, ordChangeAuthOwner, nil, append(append(u16(4), enc...), u16(etOwner)...))
			if r[:4] == "rc=0" {
				c.owner = newOwner
			}
			// The other OSAP session of the owner is gone.
			if other != nil {
				rc, _, _ := do(c.tr, ordFlushSpecific, other.h, u32(2))
				r += fmt.Sprintf(" other session flush rc=%#x", rc)
			}
			return e2 + r
		}),
		ownerStep("OwnerReadInternalPub with the old owner secret", func(c *client) string {
			r, _ := c.ownerOIAP(owner, ordOwnerReadInternalPub, nil, u32(khEK))
			return r
		}),
		ownerStep("OwnerReadInternalPub with the new owner secret", func(c *client) string {
			r, _ := c.ownerOIAP(c.owner, ordOwnerReadInternalPub, nil, u32(khEK))
			return r
		}),
		ownerStep("ChangeAuthOwner SRK", func(c *client) string {
			s, e := c.osap(etOwner, 0, c.owner)
			if s == nil {
				return e
			}
			newSRK := sha1Of([]byte("new srk"))
			enc := adip(s, s.nonceEven, newSRK)
			r, _ := c.auth1(s, nil, false, ordChangeAuthOwner, nil, append(append(u16(4), enc...), u16(etSRK)...))
			if r[:4] == "rc=0" {
				c.srk = newSRK
			}
			return r
		}),
		ownerStep("ResetLockValue", func(c *client) string {
			r, _ := c.ownerOIAP(c.owner, ordResetLockValue, nil, nil)
			return r
		}),
		ownerStep("five wrong owner secrets, then the right one", func(c *client) string {
			var s string
			for i := 0; i < 5; i++ {
				r, _ := c.ownerOIAP(wrong, ordOwnerReadInternalPub, nil, u32(khEK))
				s += r + "; "
			}
			r, _ := c.ownerOIAP(c.owner, ordOwnerReadInternalPub, nil, u32(khEK))
			return s + r
		}),
		ownerStep("a sixth wrong secret starts the lockout", func(c *client) string {
			r1, _ := c.ownerOIAP(wrong, ordOwnerReadInternalPub, nil, u32(khEK))
			r2, _ := c.ownerOIAP(c.owner, ordOwnerReadInternalPub, nil, u32(khEK))
			rc, _, e := do(c.tr, ordGetRandom, u32(4))
			// Any command under an authorization tag is locked out,
			// even one that takes no authorization (libtpms checks the
			// lockout before the tag).
			rc2, _, e2 := doAt(c.tr, 0, 0xC2, ordPCRRead, u32(0), make([]byte, 45))
			return r1 + "; " + r2 + "; " + e + e2 + fmt.Sprintf("GetRandom rc=%#x PCRRead(AUTH1) rc=%#x", rc, rc2)
		}),
		ownerStep("ResetLockValue in the lockout", func(c *client) string {
			r1, _ := c.ownerOIAP(c.owner, ordResetLockValue, nil, nil)
			r2, _ := c.ownerOIAP(c.owner, ordOwnerReadInternalPub, nil, u32(khEK))
			return r1 + "; " + r2
		}),
		ownerStep("ResetLockValue wrong, then right", func(c *client) string {
			r1, _ := c.ownerOIAP(wrong, ordResetLockValue, nil, nil)
			r2, _ := c.ownerOIAP(c.owner, ordResetLockValue, nil, nil)
			return r1 + "; " + r2
		}),
		ownerStep("ResetLockValue wrong in the lockout disables it until the lockout ends", func(c *client) string {
			var s string
			for i := 0; i < 6; i++ {
				r, _ := c.ownerOIAP(wrong, ordOwnerReadInternalPub, nil, u32(khEK))
				s += r + "; "
			}
			r1, _ := c.ownerOIAP(wrong, ordResetLockValue, nil, nil)
			r2, _ := c.ownerOIAP(c.owner, ordResetLockValue, nil, nil)
			r3, _ := c.ownerOIAP(c.owner, ordOwnerReadInternalPub, nil, u32(khEK))
			// The seventh failure locks out for 2 s; libtpms counts
			// whole seconds.
			time.Sleep(3100 * time.Millisecond)
			r4, _ := c.ownerOIAP(c.owner, ordResetLockValue, nil, nil)
			return s + r1 + "; " + r2 + "; " + r3 + "; " + r4
		}),
		ownerStep("OwnerSetDisable TRUE", func(c *client) string {
			r, _ := c.ownerOIAP(c.owner, ordOwnerSetDisable, nil, []byte{1})
			rc, _, e := do(c.tr, ordGetRandom, u32(4))
			return r + "; " + e + fmt.Sprintf("GetRandom rc=%#x", rc)
		}),
		ownerStep("GetCapabilityOwner while disabled", func(c *client) string {
			r, _ := c.ownerOIAP(c.owner, ordGetCapabilityOwner, nil, nil)
			return r
		}),
		ownerStep("OwnerSetDisable FALSE", func(c *client) string {
			r, _ := c.ownerOIAP(c.owner, ordOwnerSetDisable, nil, []byte{0})
			rc, _, e := do(c.tr, ordGetRandom, u32(4))
			return r + "; " + e + fmt.Sprintf("GetRandom rc=%#x", rc)
		}),
		ownerStep("ForceClear without physical presence", func(c *client) string {
			rc, _, e := do(c.tr, ordForceClear)
			return e + fmt.Sprintf("rc=%#x", rc)
		}),
		ownerStep("OwnerClear wrong secret", func(c *client) string {
			r, _ := c.ownerOIAP(wrong, ordOwnerClear, nil, nil)
			return r
		}),
		ownerStep("OwnerClear", func(c *client) string {
			r, _ := c.ownerOIAP(c.owner, ordOwnerClear, nil, nil)
			return r
		}),
		ownerStep("CAP_FLAG permanent after OwnerClear", func(c *client) string {
			rc, out, e := do(c.tr, ordGetCapability, capArgs(4, u32(0x108))...)
			return e + fmt.Sprintf("rc=%#x %x", rc, out[:min(len(out), 12)])
		}),
		ownerStep("ReadPubek after OwnerClear", func(c *client) string {
			rc, _, e := do(c.tr, ordReadPubek, digest1)
			return e + fmt.Sprintf("rc=%#x", rc)
		}),
		ownerStep("TakeOwnership after OwnerClear", func(c *client) string {
			return c.takeOwnership(5, c.oaep(owner), c.oaep(srk), goodSRK, owner)
		}),
	}
}

// disableOwnerClearSteps need a TPM of their own: after
// DisableOwnerClear only ForceClear, which needs physical presence,
// removes the owner.
func disableOwnerClearSteps() []func(*client) diffStep {
	owner := sha1Of([]byte("owner"))
	return []func(*client) diffStep{
		ownerStep("ReadPubek", func(c *client) string { return c.readEK() }),
		ownerStep("TakeOwnership with a TPM_KEY12", func(c *client) string {
			c.owner = owner
			p := append([]byte{0, 0x28, 0, 0}, srkParams(0x11, 0, 2048, 2)[4:]...)
			return c.takeOwnership(5, c.oaep(owner), c.oaep(make([]byte, 20)), p, owner)
		}),
		ownerStep("DisableOwnerClear", func(c *client) string {
			r, _ := c.ownerOIAP(c.owner, ordDisableOwnerClear, nil, nil)
			return r
		}),
		ownerStep("OwnerClear after DisableOwnerClear", func(c *client) string {
			r, _ := c.ownerOIAP(c.owner, ordOwnerClear, nil, nil)
			return r
		}),
		ownerStep("CAP_FLAG permanent after DisableOwnerClear", func(c *client) string {
			rc, out, e := do(c.tr, ordGetCapability, capArgs(4, u32(0x108))...)
			return e + fmt.Sprintf("rc=%#x %x", rc, out[:min(len(out), 12)])
		}),
	}
}

// newPair starts a fresh engine and a fresh swtpm 1.2, both started and
// with an endorsement key.
func newPair(t testing.TB) []*client {
	ref := &reference{p: swtpmtest.Start12(t)}
	eng, err := tpm12.New(tpm12.Config{})
	if err != nil {
		t.Fatal(err)
	}
	rsaParms := append(append(u32(2048), u32(2)...), u32(0)...)
	keyParms := append(append(append(u32(1), u16(3)...), u16(1)...), append(u32(uint32(len(rsaParms))), rsaParms...)...)
	for _, side := range []tpm{engine{eng}, ref} {
		if rc, _, e := do(side, ordStartup, u16(1)); rc != 0 || e != "" {
			t.Fatalf("Startup: rc %#x %s", rc, e)
		}
	}
	if rc, _, e := do(ref, ordCreateEndorsementKeyPair, make([]byte, 20), keyParms); rc != 0 || e != "" {
		t.Fatalf("swtpm CreateEndorsementKeyPair: rc %#x %s", rc, e)
	}
	return []*client{{tr: engine{eng}}, {tr: ref}}
}

// runClientSteps runs each step on both sides (the engine's first) and
// requires the same result.
func runClientSteps[S any](t *testing.T, sides []S, steps []func(S) diffStep) {
	for _, mk := range steps {
		a, b := mk(sides[0]), mk(sides[1])
		ra, rb := a.run(nil), b.run(nil)
		if testing.Verbose() {
			t.Logf("%s: %s", a.name, ra)
		}
		if ra != rb {
			t.Errorf("%s:\n engine %s\n swtpm  %s", a.name, ra, rb)
		}
	}
}

// ownedPair is newPair with the owner taken on both sides as the
// ownership steps take it.
func ownedPair(t *testing.T) []*client {
	pair := newPair(t)
	var steps []func(*client) diffStep
	for _, s := range ownershipSteps() {
		if n := s(pair[0]).name; n == "ReadPubek before ownership" || n == "TakeOwnership" {
			steps = append(steps, s)
		}
	}
	runClientSteps(t, pair, steps)
	return pair
}

// TestSwtpm12Ownership compares taking and clearing ownership, the
// owner's commands and the dictionary-attack lockout.
func TestSwtpm12Ownership(t *testing.T) {
	runClientSteps(t, newPair(t), ownershipSteps())
	runClientSteps(t, newPair(t), disableOwnerClearSteps())
}

// flagBits is the bitmap of a TPM_CAP_FLAG answer (its size, a structure
// tag, then one BOOL per flag): bit i for the i-th flag.
func flagBits(capOut []byte) uint32 {
	var m uint32
	if len(capOut) < 6 {
		return ^m
	}
	for i, b := range capOut[6:] {
		if b != 0 {
			m |= 1 << i
		}
	}
	return m
}
