package conformance

import (
	"bytes"
	"crypto/hmac"
	"encoding/binary"
	"fmt"
	"testing"
)

const ordSeal, ordUnseal = 0x17, 0x18

// auth2 sends an AUTH2 command on sessions s1 (keyed by key1, or its
// shared secret) and s2 (keyed by key2), both continued, and reports the
// response code and whether both response authorizations verify.
func (c *client) auth2(s1 *session, key1 []byte, s2 *session, key2 []byte, ord uint32, handles, params []byte) (string, []byte) {
	if s1.key != nil {
		key1 = s1.key
	}
	if s2.key != nil {
		key2 = s2.key
	}
	odd1, odd2 := bytes.Repeat([]byte{0x0D}, 20), bytes.Repeat([]byte{0x0E}, 20)
	in := sha1Of(u32(ord), params)
	mac1 := hmacSHA1(key1, in, s1.nonceEven, odd1, []byte{1})
	mac2 := hmacSHA1(key2, in, s2.nonceEven, odd2, []byte{1})
	rsp, err := c.tr.send(0, cmd(0xC3, ord, handles, params, s1.h, odd1, []byte{1}, mac1, s2.h, odd2, []byte{1}, mac2))
	if err != nil {
		return "transport: " + err.Error(), nil
	}
	rc := binary.BigEndian.Uint32(rsp[6:])
	if rc != 0 {
		return fmt.Sprintf("rc=%#x tag=%x len=%d", rc, rsp[:2], len(rsp)), nil
	}
	if len(rsp) < 10+82 {
		return fmt.Sprintf("rc=0 short %x", rsp), nil
	}
	n := len(rsp)
	out := rsp[10 : n-82]
	outDigest := sha1Of(u32(0), u32(ord), out)
	a1, a2 := rsp[n-82:n-41], rsp[n-41:]
	ok1 := hmac.Equal(a1[21:], hmacSHA1(key1, outDigest, a1[:20], odd1, a1[20:21]))
	ok2 := hmac.Equal(a2[21:], hmacSHA1(key2, outDigest, a2[:20], odd2, a2[20:21]))
	s1.nonceEven, s2.nonceEven = a1[:20], a2[:20]
	return fmt.Sprintf("rc=0 tag=%x resAuth=%v,%v", rsp[:2], ok1, ok2), out
}

// sealer carries the blobs one side sealed between steps.
type sealer struct {
	*client
	blobs map[string][]byte
}

// pcrComposite is the composite hash of the PCRs in sel at their
// current values, read with PCRRead.
func (c *client) compositeHash(sel []byte) []byte {
	var vals []byte
	for i := 0; i < len(sel)*8; i++ {
		if sel[i/8]&(1<<(i%8)) != 0 {
			_, out, _ := do(c.tr, ordPCRRead, u32(uint32(i)))
			vals = append(vals, out...)
		}
	}
	return sha1Of(u16(uint16(len(sel))), sel, u32(uint32(len(vals))), vals)
}

// seal seals data under the SRK on an OSAP session with the data secret
// auth.
func (c *client) seal(osap bool, handle uint32, auth, pcrInfo, data []byte) (string, []byte) {
	var s *session
	var e string
	if osap {
		s, e = c.osap(etSRK, khSRK, c.srk)
	} else {
		s, e = c.oiap()
	}
	if s == nil {
		return e, nil
	}
	enc := make([]byte, 20)
	if s.key != nil {
		enc = adip(s, s.nonceEven, auth)
	}
	p := append(append([]byte{}, enc...), u32(uint32(len(pcrInfo)))...)
	p = append(p, pcrInfo...)
	p = append(p, u32(uint32(len(data)))...)
	p = append(p, data...)
	r, out := c.auth1(s, c.srk, false, ordSeal, u32(handle), p)
	if out != nil {
		// The structure's head, and the sizes: the whole blob differs
		// (the SRKs and the OAEP seeds do).
		r += fmt.Sprintf(" len=%d head=%x", len(out), out[:min(len(out), 8)])
	}
	return r, out
}

// unseal unseals blob with an OIAP session for the SRK (or OSAP) and an
// OIAP session (or OSAP on the SRK) for the data.
func (c *client) unseal(keyOSAP, dataOSAP bool, keyAuth, dataAuth, blob []byte) (string, []byte) {
	open := func(osap bool) *session {
		if osap {
			s, _ := c.osap(etSRK, khSRK, c.srk)
			return s
		}
		s, _ := c.oiap()
		return s
	}
	s1, s2 := open(keyOSAP), open(dataOSAP)
	if s1 == nil || s2 == nil {
		return "no session", nil
	}
	r, out := c.auth2(s1, keyAuth, s2, dataAuth, ordUnseal, u32(khSRK), blob)
	do(c.tr, ordFlushSpecific, s1.h, u32(2))
	do(c.tr, ordFlushSpecific, s2.h, u32(2))
	return r, out
}

func pcrInfoShortSel(sel, atRelease []byte) []byte {
	return append(append(append(u16(uint16(len(sel))), sel...), atRelease...), make([]byte, 20)...)
}

func pcrInfoLong(locRelease byte, creation, release, atRelease []byte) []byte {
	b := append(u16(6), 0x1F, locRelease)
	b = append(append(b, u16(uint16(len(creation)))...), creation...)
	b = append(append(b, u16(uint16(len(release)))...), release...)
	b = append(b, make([]byte, 20)...)
	return append(b, atRelease...)
}

func sealStep(name string, f func(s *sealer) string) func(*sealer) diffStep {
	return func(s *sealer) diffStep { return diffStep{name, func(tpm) string { return f(s) }} }
}

func sealSteps() []func(*sealer) diffStep {
	dataAuth := sha1Of([]byte("data"))
	secret := []byte("the sealed secret")
	sel16 := []byte{0, 0, 1}
	unsealed := func(r string, out []byte) string {
		return r + fmt.Sprintf(" secret-ok=%v", out != nil && bytes.Equal(out, append(u32(uint32(len(secret))), secret...)))
	}
	return []func(*sealer) diffStep{
		sealStep("Seal without PCRs", func(s *sealer) string {
			r, out := s.seal(true, khSRK, dataAuth, nil, secret)
			s.blobs["plain"] = out
			return r
		}),
		sealStep("Unseal", func(s *sealer) string {
			return unsealed(s.unseal(false, false, s.srk, dataAuth, s.blobs["plain"]))
		}),
		sealStep("Unseal, key session OSAP", func(s *sealer) string {
			return unsealed(s.unseal(true, false, s.srk, dataAuth, s.blobs["plain"]))
		}),
		sealStep("Unseal, data session OSAP", func(s *sealer) string {
			r, _ := s.unseal(false, true, s.srk, dataAuth, s.blobs["plain"])
			return r
		}),
		sealStep("Unseal wrong data secret", func(s *sealer) string {
			r, _ := s.unseal(false, false, s.srk, s.srk, s.blobs["plain"])
			return r
		}),
		sealStep("Unseal wrong SRK secret", func(s *sealer) string {
			r, _ := s.unseal(false, false, dataAuth, dataAuth, s.blobs["plain"])
			return r
		}),
		sealStep("Unseal tampered encData", func(s *sealer) string {
			b := append([]byte{}, s.blobs["plain"]...)
			b[len(b)-7] ^= 1
			r, _ := s.unseal(false, false, s.srk, dataAuth, b)
			return r
		}),
		sealStep("Unseal truncated encData", func(s *sealer) string {
			b := append([]byte{}, s.blobs["plain"]...)
			if len(b) > 12 {
				binary.BigEndian.PutUint32(b[8:], 16)
				b = b[:12+16]
			}
			r, _ := s.unseal(false, false, s.srk, dataAuth, b)
			return r
		}),
		sealStep("Unseal TPM_STORED_DATA version 1.2", func(s *sealer) string {
			b := append([]byte{}, s.blobs["plain"]...)
			b[1] = 2
			r, _ := s.unseal(false, false, s.srk, dataAuth, b)
			return r
		}),
		sealStep("Seal on OIAP", func(s *sealer) string {
			r, _ := s.seal(false, khSRK, dataAuth, nil, secret)
			return r
		}),
		sealStep("Seal no data", func(s *sealer) string {
			r, _ := s.seal(true, khSRK, dataAuth, nil, nil)
			return r
		}),
		sealStep("Seal 149 bytes", func(s *sealer) string {
			r, _ := s.seal(true, khSRK, dataAuth, nil, bytes.Repeat([]byte{7}, 149))
			return r
		}),
		sealStep("Seal 150 bytes", func(s *sealer) string {
			r, _ := s.seal(true, khSRK, dataAuth, nil, bytes.Repeat([]byte{7}, 150))
			return r
		}),
		sealStep("Seal under the owner handle", func(s *sealer) string {
			r, _ := s.seal(true, 0x40000001, dataAuth, nil, secret)
			return r
		}),
		sealStep("Seal under the EK handle", func(s *sealer) string {
			r, _ := s.seal(true, khEK, dataAuth, nil, secret)
			return r
		}),
		sealStep("Seal under an unloaded key handle", func(s *sealer) string {
			r, _ := s.seal(true, 0x01000001, dataAuth, nil, secret)
			return r
		}),
		sealStep("Seal TPM_PCR_INFO_LONG with localityAtCreation 0", func(s *sealer) string {
			p := pcrInfoLong(0x1F, nil, []byte{0, 0, 1}, make([]byte, 20))
			p[2] = 0
			r, _ := s.seal(true, khSRK, dataAuth, p, secret)
			return r
		}),
		sealStep("Seal truncated pcrInfo", func(s *sealer) string {
			r, _ := s.seal(true, khSRK, dataAuth, []byte{0, 3, 0}, secret)
			return r
		}),
		sealStep("Seal to PCR 16 (TPM_PCR_INFO)", func(s *sealer) string {
			r, out := s.seal(true, khSRK, dataAuth, pcrInfoShortSel(sel16, s.compositeHash(sel16)), secret)
			s.blobs["pcr"] = out
			if out != nil {
				// The sealInfo: selection, digestAtRelease, digestAtCreation.
				r += fmt.Sprintf(" sealInfo=%x", out[4:min(len(out), 4+4+45)])
			}
			return r
		}),
		sealStep("Seal to PCR 16 (TPM_PCR_INFO_LONG)", func(s *sealer) string {
			r, out := s.seal(true, khSRK, dataAuth, pcrInfoLong(0x1F, sel16, sel16, s.compositeHash(sel16)), secret)
			s.blobs["long"] = out
			if out != nil {
				r += fmt.Sprintf(" sealInfo=%x", out[4:min(len(out), 8+54+4)])
			}
			return r
		}),
		sealStep("Seal TPM_PCR_INFO_LONG released at locality 1 only", func(s *sealer) string {
			r, out := s.seal(true, khSRK, dataAuth, pcrInfoLong(0x02, nil, sel16, s.compositeHash(sel16)), secret)
			s.blobs["loc1"] = out
			return r
		}),
		sealStep("Unseal PCR 16 blobs", func(s *sealer) string {
			return unsealed(s.unseal(false, false, s.srk, dataAuth, s.blobs["pcr"])) + "; " +
				unsealed(s.unseal(false, false, s.srk, dataAuth, s.blobs["long"]))
		}),
		sealStep("Unseal at the wrong locality", func(s *sealer) string {
			r, _ := s.unseal(false, false, s.srk, dataAuth, s.blobs["loc1"])
			return r
		}),
		sealStep("Unseal with a tampered digestAtRelease", func(s *sealer) string {
			b := append([]byte{}, s.blobs["pcr"]...)
			if len(b) > 20 {
				b[14] ^= 1
			}
			r, _ := s.unseal(false, false, s.srk, dataAuth, b)
			return r
		}),
		sealStep("Extend PCR 16, then Unseal", func(s *sealer) string {
			do(s.tr, ordExtend, u32(16), digest1)
			r1, _ := s.unseal(false, false, s.srk, dataAuth, s.blobs["pcr"])
			r2, _ := s.unseal(false, false, s.srk, dataAuth, s.blobs["long"])
			return r1 + "; " + r2
		}),
		sealStep("Unseal without PCRs after the extend", func(s *sealer) string {
			return unsealed(s.unseal(false, false, s.srk, dataAuth, s.blobs["plain"]))
		}),
	}
}

// TestSwtpm12Seal compares Seal and Unseal under the SRK, with and
// without PCRs.
func TestSwtpm12Seal(t *testing.T) {
	pair := ownedPair(t)
	sides := []*sealer{{pair[0], map[string][]byte{}}, {pair[1], map[string][]byte{}}}
	runClientSteps(t, sides, sealSteps())
}
