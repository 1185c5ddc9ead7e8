package conformance

import (
	"bytes"
	"crypto"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"encoding/binary"
	"fmt"
	"math/big"
	"strings"
	"testing"
)

// Ordinals and constants of the key commands, Part 2 §17, §4.
const (
	ordUnBind, ordCreateWrapKey, ordLoadKey = 0x1E, 0x1F, 0x20
	ordGetPubKey, ordEvictKey, ordSign      = 0x21, 0x22, 0x3C
	ordLoadKey2                             = 0x41
	keySigning, keyStorage, keyBind         = 0x10, 0x11, 0x14
	keyLegacy, keyIdentity                  = 0x15, 0x12
	esNone, esPKCSv15, esOAEP               = 1, 2, 3
	ssNone, ssSHA1, ssDER, ssINFO           = 1, 2, 3, 4
	flagMigratable, flagVolatile            = 2, 4
)

// keyer is one side with the keys a run made on it: blobs by name, and
// the handles (4 bytes) they are loaded at, which differ between sides.
type keyer struct {
	*client
	blobs   map[string][]byte
	handles map[string][]byte
}

// keyTemplate is a TPM_KEY12 (or, when !v12, a TPM_KEY) asking for an
// RSA key.
func keyTemplate(v12 bool, usage uint16, flags uint32, authUsage byte, es, ss uint16, bits uint32, pcrInfo []byte) []byte {
	rsaParms := append(append(u32(bits), u32(2)...), u32(0)...)
	b := []byte{1, 1, 0, 0}
	if v12 {
		b = []byte{0, 0x28, 0, 0}
	}
	b = append(b, u16(usage)...)
	b = append(b, u32(flags)...)
	b = append(b, authUsage)
	b = append(b, u32(1)...)
	b = append(b, u16(es)...)
	b = append(b, u16(ss)...)
	b = append(b, u32(uint32(len(rsaParms)))...)
	b = append(b, rsaParms...)
	b = append(b, u32(uint32(len(pcrInfo)))...)
	b = append(b, pcrInfo...)
	return append(b, make([]byte, 8)...) // pubKey, encData: empty
}

// keyParts splits a TPM_KEY(12) into what precedes the public key (the
// structure's fixed part, parameters and pcrInfo), the modulus and
// encData.
func keyParts(b []byte) (head, modulus, enc []byte, ok bool) {
	if len(b) < 4+2+4+1+12 {
		return nil, nil, nil, false
	}
	p := 4 + 2 + 4 + 1 + 8
	n := int(binary.BigEndian.Uint32(b[p:]))
	p += 4 + n
	for i := 0; i < 3; i++ {
		if len(b) < p+4 {
			return nil, nil, nil, false
		}
		n = int(binary.BigEndian.Uint32(b[p:]))
		if len(b) < p+4+n {
			return nil, nil, nil, false
		}
		switch i {
		case 0:
			head = b[:p+4+n]
		case 1:
			modulus = b[p+4 : p+4+n]
		case 2:
			enc = b[p+4 : p+4+n]
		}
		p += 4 + n
	}
	return head, modulus, enc, p == len(b)
}

func (k *keyer) pub(name string) *rsa.PublicKey {
	_, m, _, ok := keyParts(k.blobs[name])
	if !ok {
		return nil
	}
	return &rsa.PublicKey{N: new(big.Int).SetBytes(m), E: 65537}
}

func (k *keyer) handle(name string) []byte {
	if h := k.handles[name]; h != nil {
		return h
	}
	return u32(0x0BADBAD0)
}

var (
	keyAuth   = sha1Of([]byte("key usage secret"))
	migAuth   = sha1Of([]byte("key migration secret"))
	childAuth = sha1Of([]byte("child usage secret"))
)

// createWrapKeyAES runs CreateWrapKey under the SRK on an OSAP session
// whose ADIP is AES-128 in CTR mode (TPM_ET_AES128_CTR), the secrets
// encrypted from the counters nonceEven and nonceOdd.
func (k *keyer) createWrapKeyAES(name string, template []byte) string {
	s, e := k.osap(0x0600|etKeyHandle, khSRK, k.srk)
	if s == nil {
		return e
	}
	ctr := func(iv, in []byte) []byte {
		b, _ := aes.NewCipher(s.key[:16])
		out := make([]byte, 20)
		cipher.NewCTR(b, iv[:16]).XORKeyStream(out, in)
		return out
	}
	encU, encM := ctr(s.nonceEven, keyAuth), ctr(bytes.Repeat([]byte{0x0D}, 20), migAuth)
	r, out := k.auth1(s, nil, true, ordCreateWrapKey, u32(khSRK), append(append(encU, encM...), template...))
	if out != nil {
		k.blobs[name] = out
		r += fmt.Sprintf(" len=%d", len(out))
	}
	return r
}

// createWrapKey runs CreateWrapKey under parent (its secret parentAuth)
// on an OSAP session (or OIAP, which the TPM must refuse) and keeps the
// blob as name. It reports the code, the response authorization, the
// blob's size, everything before its modulus (pcrInfo and its
// digestAtCreation included) and the sizes of the modulus and encData.
func (k *keyer) createWrapKey(name string, parent []byte, parentAuth []byte, usage []byte, osap bool, template []byte) string {
	var s *session
	var e string
	if osap {
		s, e = k.osap(etKeyHandle, binary.BigEndian.Uint32(parent), parentAuth)
	} else {
		s, e = k.oiap()
	}
	if s == nil {
		return e
	}
	encU, encM := make([]byte, 20), make([]byte, 20)
	if s.key != nil {
		encU, encM = adip(s, s.nonceEven, usage), adip(s, bytes.Repeat([]byte{0x0D}, 20), migAuth)
	}
	r, out := k.auth1(s, parentAuth, true, ordCreateWrapKey, parent, append(append(encU, encM...), template...))
	if out != nil {
		k.blobs[name] = out
		head, m, enc, ok := keyParts(out)
		r += fmt.Sprintf(" len=%d parsed=%v head=%x modulus=%d encData=%d", len(out), ok, head, len(m), len(enc))
	}
	return r
}

// loadKey2 loads blob under parent on an OIAP session keyed by
// parentAuth and records the handle as name. The handle is left out of
// the response HMAC.
func (k *keyer) loadKey2(name string, parent, parentAuth, blob []byte) string {
	s, e := k.oiap()
	if s == nil {
		return e
	}
	odd := bytes.Repeat([]byte{0x0D}, 20)
	mac := hmacSHA1(parentAuth, sha1Of(u32(ordLoadKey2), blob), s.nonceEven, odd, []byte{0})
	rsp, err := k.tr.send(0, cmd(0xC2, ordLoadKey2, parent, blob, s.h, odd, []byte{0}, mac))
	if err != nil {
		return err.Error()
	}
	rc := binary.BigEndian.Uint32(rsp[6:])
	if rc != 0 || len(rsp) != 10+4+41 {
		return fmt.Sprintf("rc=%#x len=%d", rc, len(rsp))
	}
	n := len(rsp)
	ok := hmac.Equal(rsp[n-20:], hmacSHA1(parentAuth, sha1Of(u32(0), u32(ordLoadKey2)), rsp[n-41:n-21], odd, rsp[n-21:n-20]))
	h := rsp[10:14]
	k.handles[name] = h
	return fmt.Sprintf("rc=0 tag=%x resAuth=%v handle-ok=%v", rsp[:2], ok, h[0] != 0x40 && binary.BigEndian.Uint32(h) != 0)
}

// keyOIAP runs an AUTH1 command on the key name with a fresh OIAP
// session keyed by secret.
func (k *keyer) keyOIAP(name string, secret []byte, ord uint32, params []byte) (string, []byte) {
	s, e := k.oiap()
	if s == nil {
		return e, nil
	}
	return k.auth1(s, secret, false, ord, k.handle(name), params)
}

// sign signs msg with key name and reports whether the signature
// verifies, under the scheme's hash.
func (k *keyer) sign(name string, secret []byte, hash crypto.Hash, msg []byte) string {
	r, out := k.keyOIAP(name, secret, ordSign, append(u32(uint32(len(msg))), msg...))
	if out == nil {
		return r
	}
	pub := k.pub(name)
	if len(out) < 4 || pub == nil {
		return r + fmt.Sprintf(" out=%x", out)
	}
	digest := msg
	if hash == crypto.SHA1 && len(msg) != 20 {
		d := sha1.Sum(msg)
		digest = d[:]
	}
	return r + fmt.Sprintf(" sigSize=%d verifies=%v", binary.BigEndian.Uint32(out), rsa.VerifyPKCS1v15(pub, hash, digest, out[4:]) == nil)
}

// unBind encrypts pt to key name's public key (OAEP with "TCPA", or
// PKCS #1 v1.5) and unbinds it; it reports whether the output is want.
func (k *keyer) unBind(name string, pkcs bool, pt, want []byte) string {
	pub := k.pub(name)
	if pub == nil {
		return "no key " + name
	}
	var ct []byte
	var err error
	if pkcs {
		ct, err = rsa.EncryptPKCS1v15(rand.Reader, pub, pt)
	} else {
		ct, err = rsa.EncryptOAEP(sha1.New(), rand.Reader, pub, pt, []byte("TCPA"))
	}
	if err != nil {
		return err.Error()
	}
	r, out := k.keyOIAP(name, keyAuth, ordUnBind, append(u32(uint32(len(ct))), ct...))
	if out != nil {
		r += fmt.Sprintf(" out-ok=%v", bytes.Equal(out, append(u32(uint32(len(want))), want...)))
	}
	return r
}

// sealUnder seals data under the key name on an OSAP session bound to
// it, and unseals it again with two OIAP sessions.
func (k *keyer) sealUnder(name string) string {
	s, e := k.osap(etKeyHandle, binary.BigEndian.Uint32(k.handle(name)), keyAuth)
	if s == nil {
		return e
	}
	dataAuth := sha1Of([]byte("data"))
	enc := adip(s, s.nonceEven, dataAuth)
	secret := []byte("sealed under a loaded key")
	p := append(append(enc, u32(0)...), u32(uint32(len(secret)))...)
	r, blob := k.auth1(s, nil, false, ordSeal, k.handle(name), append(p, secret...))
	if blob == nil {
		return "seal " + r
	}
	s1, _ := k.oiap()
	s2, _ := k.oiap()
	if s1 == nil || s2 == nil {
		return "no session"
	}
	r2, out := k.auth2(s1, keyAuth, s2, dataAuth, ordUnseal, k.handle(name), blob)
	return fmt.Sprintf("seal %s len=%d; unseal %s ok=%v", r, len(blob), r2, bytes.Equal(out, append(u32(uint32(len(secret))), secret...)))
}

func keyStep(name string, f func(k *keyer) string) func(*keyer) diffStep {
	return func(k *keyer) diffStep { return diffStep{name, func(tpm) string { return f(k) }} }
}

// keyPCRInfoLong is a TPM_PCR_INFO_LONG releasing at the current value
// of PCR 16 at every locality.
func (k *keyer) keyPCRInfoLong() []byte {
	sel := []byte{0, 0, 1}
	return pcrInfoLong(0x1F, sel, sel, k.compositeHash(sel))
}

func keySteps() []func(*keyer) diffStep {
	srk := u32(khSRK)
	msg := sha1Of([]byte("to be signed"))
	bound := append([]byte{1, 1, 0, 0, 2}, "bound secret"...)
	signing := keyTemplate(true, keySigning, 0, 1, esNone, ssSHA1, 2048, nil)
	return []func(*keyer) diffStep{
		keyStep("CAP_ORD of the key ordinals", func(k *keyer) string {
			var s strings.Builder
			for _, o := range []uint32{ordUnBind, ordCreateWrapKey, ordLoadKey, ordGetPubKey, ordEvictKey, ordSign, ordLoadKey2} {
				rc, out, e := do(k.tr, ordGetCapability, capArgs(1, u32(o))...)
				fmt.Fprintf(&s, "%s%#x: rc=%#x %x; ", e, o, rc, out)
			}
			return s.String()
		}),
		keyStep("CAP_CHECK_LOADED", func(k *keyer) string {
			rsaParms := append(append(append(u32(1), u16(esOAEP)...), u16(ssNone)...), u32(12)...)
			rsaParms = append(append(append(rsaParms, u32(2048)...), u32(2)...), u32(0)...)
			var s strings.Builder
			for _, sub := range [][]byte{rsaParms, append(u32(6), rsaParms[4:]...), rsaParms[:6], append(rsaParms, 0),
				append(append([]byte{}, rsaParms[:8]...), u32(0)...), append(append([]byte{}, rsaParms[:8]...), u32(16)...)} {
				rc, out, e := do(k.tr, ordGetCapability, capArgs(8, sub)...)
				fmt.Fprintf(&s, "%src=%#x %x; ", e, rc, out)
			}
			return s.String()
		}),
		keyStep("CreateWrapKey signing 2048", func(k *keyer) string {
			return k.createWrapKey("sign", srk, k.srk, keyAuth, true, signing)
		}),
		keyStep("CreateWrapKey on OIAP", func(k *keyer) string {
			return k.createWrapKey("x", srk, k.srk, keyAuth, false, signing)
		}),
		keyStep("CreateWrapKey with a wrong SRK secret", func(k *keyer) string {
			return k.createWrapKey("x", srk, keyAuth, keyAuth, true, signing)
		}),
		keyStep("CreateWrapKey under an unknown handle", func(k *keyer) string {
			rc, _, e := do(k.tr, ordOSAP, u16(etKeyHandle), u32(0x0BADBAD0), digest1)
			return e + fmt.Sprintf("OSAP rc=%#x", rc)
		}),
		keyStep("CreateWrapKey storage 1024", func(k *keyer) string {
			return k.createWrapKey("x", srk, k.srk, keyAuth, true, keyTemplate(true, keyStorage, 0, 1, esOAEP, ssNone, 1024, nil))
		}),
		keyStep("CreateWrapKey 4096", func(k *keyer) string {
			return k.createWrapKey("x", srk, k.srk, keyAuth, true, keyTemplate(true, keySigning, 0, 1, esNone, ssSHA1, 4096, nil))
		}),
		keyStep("CreateWrapKey 1032", func(k *keyer) string {
			return k.createWrapKey("x", srk, k.srk, keyAuth, true, keyTemplate(true, keySigning, 0, 1, esNone, ssSHA1, 1032, nil))
		}),
		keyStep("CreateWrapKey identity", func(k *keyer) string {
			return k.createWrapKey("x", srk, k.srk, keyAuth, true, keyTemplate(true, keyIdentity, 0, 1, esNone, ssSHA1, 2048, nil))
		}),
		keyStep("CreateWrapKey signing with OAEP", func(k *keyer) string {
			return k.createWrapKey("x", srk, k.srk, keyAuth, true, keyTemplate(true, keySigning, 0, 1, esOAEP, ssSHA1, 1024, nil))
		}),
		keyStep("LoadKey2 signing", func(k *keyer) string { return k.loadKey2("sign", srk, k.srk, k.blobs["sign"]) }),
		keyStep("CAP_KEY_HANDLE count", func(k *keyer) string {
			rc, out, e := do(k.tr, ordGetCapability, capArgs(7, nil)...)
			if len(out) < 6 {
				return e + fmt.Sprintf("rc=%#x %x", rc, out)
			}
			return fmt.Sprintf("rc=%#x count=%x has-key=%v", rc, out[4:6], bytes.Contains(out[6:], k.handle("sign")))
		}),
		keyStep("CAP_HANDLE TPM_RT_KEY count", func(k *keyer) string {
			rc, out, e := do(k.tr, ordGetCapability, capArgs(0x14, u32(1))...)
			if len(out) < 6 {
				return e + fmt.Sprintf("rc=%#x %x", rc, out)
			}
			return fmt.Sprintf("rc=%#x count=%x", rc, out[4:6])
		}),
		keyStep("LoadKey2 with a wrong SRK secret", func(k *keyer) string { return k.loadKey2("x", srk, keyAuth, k.blobs["sign"]) }),
		keyStep("LoadKey2 without a session", func(k *keyer) string {
			rc, _, e := do(k.tr, ordLoadKey2, srk, k.blobs["sign"])
			return e + fmt.Sprintf("rc=%#x", rc)
		}),
		keyStep("LoadKey2 corrupted encData", func(k *keyer) string {
			b := append([]byte{}, k.blobs["sign"]...)
			b[len(b)-7] ^= 1
			return k.loadKey2("x", srk, k.srk, b)
		}),
		keyStep("LoadKey2 altered keyFlags", func(k *keyer) string {
			b := append([]byte{}, k.blobs["sign"]...)
			b[9] ^= flagVolatile
			return k.loadKey2("x", srk, k.srk, b)
		}),
		keyStep("LoadKey2 truncated", func(k *keyer) string { return k.loadKey2("x", srk, k.srk, k.blobs["sign"][:100]) }),
		keyStep("GetPubKey", func(k *keyer) string {
			r, out := k.keyOIAP("sign", keyAuth, ordGetPubKey, nil)
			head, m, _, _ := keyParts(k.blobs["sign"])
			if out != nil && len(head) > 11 {
				parms := append([]byte{}, head[11:len(head)-4-int(binary.BigEndian.Uint32(head[len(head)-4:]))]...)
				r += fmt.Sprintf(" matches-blob=%v", bytes.Equal(out, append(append(parms, u32(uint32(len(m)))...), m...)))
			}
			return r
		}),
		keyStep("GetPubKey without a session", func(k *keyer) string {
			rc, _, e := do(k.tr, ordGetPubKey, k.handle("sign"))
			return e + fmt.Sprintf("rc=%#x", rc)
		}),
		keyStep("GetPubKey SRK", func(k *keyer) string { r, _ := k.keyOIAPAt(srk, k.srk, ordGetPubKey, nil); return r }),
		keyStep("GetPubKey EK", func(k *keyer) string { r, _ := k.keyOIAPAt(u32(khEK), k.owner, ordGetPubKey, nil); return r }),
		keyStep("GetPubKey owner handle", func(k *keyer) string {
			r, _ := k.keyOIAPAt(u32(0x40000001), k.owner, ordGetPubKey, nil)
			return r
		}),
		keyStep("Sign SHA1", func(k *keyer) string { return k.sign("sign", keyAuth, crypto.SHA1, msg) }),
		keyStep("Sign SHA1 on OSAP", func(k *keyer) string {
			s, e := k.osap(etKeyHandle, binary.BigEndian.Uint32(k.handle("sign")), keyAuth)
			if s == nil {
				return e
			}
			r, out := k.auth1(s, nil, false, ordSign, k.handle("sign"), append(u32(20), msg...))
			return r + fmt.Sprintf(" verifies=%v", out != nil && rsa.VerifyPKCS1v15(k.pub("sign"), crypto.SHA1, msg, out[4:]) == nil)
		}),
		keyStep("Sign 19 bytes", func(k *keyer) string { return k.sign("sign", keyAuth, crypto.SHA1, msg[:19]) }),
		keyStep("Sign nothing", func(k *keyer) string { return k.sign("sign", keyAuth, crypto.SHA1, nil) }),
		keyStep("Sign wrong secret", func(k *keyer) string { return k.sign("sign", migAuth, crypto.SHA1, msg) }),
		keyStep("Sign without a session", func(k *keyer) string {
			rc, _, e := do(k.tr, ordSign, k.handle("sign"), u32(20), msg)
			return e + fmt.Sprintf("rc=%#x", rc)
		}),
		keyStep("Sign unknown handle", func(k *keyer) string {
			r, _ := k.keyOIAPAt(u32(0x0BADBAD0), keyAuth, ordSign, append(u32(20), msg...))
			return r
		}),
		keyStep("Sign with the SRK", func(k *keyer) string {
			r, _ := k.keyOIAPAt(srk, k.srk, ordSign, append(u32(20), msg...))
			return r
		}),
		keyStep("UnBind with a signing key", func(k *keyer) string { return k.unBind("sign", false, bound, nil) }),
		keyStep("CreateWrapKey under a signing key", func(k *keyer) string {
			return k.createWrapKey("x", k.handle("sign"), keyAuth, keyAuth, true, signing)
		}),
		keyStep("CreateWrapKey signing DER 1024", func(k *keyer) string {
			return k.createWrapKey("der", srk, k.srk, keyAuth, true, keyTemplate(true, keySigning, 0, 1, esNone, ssDER, 1024, nil))
		}),
		keyStep("LoadKey2 DER", func(k *keyer) string { return k.loadKey2("der", srk, k.srk, k.blobs["der"]) }),
		keyStep("Sign DER", func(k *keyer) string {
			return k.sign("der", keyAuth, 0, []byte("a DigestInfo the caller made"))
		}),
		keyStep("Sign DER too long", func(k *keyer) string { return k.sign("der", keyAuth, 0, make([]byte, 128-10)) }),
		keyStep("CreateWrapKey bind OAEP 2048", func(k *keyer) string {
			return k.createWrapKey("bind", srk, k.srk, keyAuth, true, keyTemplate(true, keyBind, 0, 1, esOAEP, ssNone, 2048, nil))
		}),
		keyStep("LoadKey (1.1) bind", func(k *keyer) string {
			s, e := k.oiap()
			if s == nil {
				return e
			}
			r, out := k.auth1(s, k.srk, false, ordLoadKey, srk, k.blobs["bind"])
			if len(out) == 4 {
				k.handles["bind"] = out
			}
			return r + fmt.Sprintf(" out=%d", len(out))
		}),
		keyStep("UnBind OAEP", func(k *keyer) string { return k.unBind("bind", false, bound, bound[5:]) }),
		keyStep("UnBind empty payload", func(k *keyer) string { return k.unBind("bind", false, bound[:5], nil) }),
		keyStep("UnBind bad version", func(k *keyer) string {
			return k.unBind("bind", false, append([]byte{1, 2, 0, 0, 2}, "x"...), nil)
		}),
		keyStep("UnBind bad payload", func(k *keyer) string {
			return k.unBind("bind", false, append([]byte{1, 1, 0, 0, 5}, "x"...), nil)
		}),
		keyStep("UnBind PKCS#1 v1.5 block with an OAEP key", func(k *keyer) string { return k.unBind("bind", true, bound, nil) }),
		keyStep("UnBind nothing", func(k *keyer) string { r, _ := k.keyOIAP("bind", keyAuth, ordUnBind, u32(0)); return r }),
		keyStep("Sign with a bind key", func(k *keyer) string { return k.sign("bind", keyAuth, crypto.SHA1, msg) }),
		keyStep("CreateWrapKey legacy PKCS#1 v1.5 1024", func(k *keyer) string {
			return k.createWrapKey("legacy", srk, k.srk, keyAuth, true, keyTemplate(true, keyLegacy, 0, 1, esPKCSv15, ssSHA1, 1024, nil))
		}),
		keyStep("LoadKey2 legacy", func(k *keyer) string { return k.loadKey2("legacy", srk, k.srk, k.blobs["legacy"]) }),
		keyStep("UnBind legacy", func(k *keyer) string { return k.unBind("legacy", true, []byte("raw bytes"), []byte("raw bytes")) }),
		keyStep("Sign legacy", func(k *keyer) string { return k.sign("legacy", keyAuth, crypto.SHA1, msg) }),
		keyStep("CreateWrapKey bind PKCS#1 v1.5, TPM_KEY", func(k *keyer) string {
			return k.createWrapKey("bind11", srk, k.srk, keyAuth, true, keyTemplate(false, keyBind, 0, 1, esPKCSv15, ssNone, 1024, nil))
		}),
		keyStep("LoadKey2 TPM_KEY", func(k *keyer) string { return k.loadKey2("bind11", srk, k.srk, k.blobs["bind11"]) }),
		keyStep("UnBind PKCS#1 v1.5 bind key", func(k *keyer) string { return k.unBind("bind11", true, bound, bound[5:]) }),
		keyStep("CreateWrapKey PCR-bound signing key", func(k *keyer) string {
			return k.createWrapKey("pcr", srk, k.srk, keyAuth, true, keyTemplate(true, keySigning, 0, 1, esNone, ssSHA1, 1024, k.keyPCRInfoLong()))
		}),
		keyStep("CreateWrapKey PCR-bound TPM_KEY", func(k *keyer) string {
			sel := []byte{0, 0, 1}
			return k.createWrapKey("pcr11", srk, k.srk, keyAuth, true, keyTemplate(false, keySigning, 0, 1, esNone, ssSHA1, 1024, pcrInfoShortSel(sel, k.compositeHash(sel))))
		}),
		keyStep("LoadKey2 PCR-bound", func(k *keyer) string { return k.loadKey2("pcr", srk, k.srk, k.blobs["pcr"]) }),
		keyStep("LoadKey2 PCR-bound TPM_KEY", func(k *keyer) string { return k.loadKey2("pcr11", srk, k.srk, k.blobs["pcr11"]) }),
		keyStep("Sign PCR-bound", func(k *keyer) string { return k.sign("pcr", keyAuth, crypto.SHA1, msg) }),
		keyStep("Extend 16", func(k *keyer) string {
			rc, _, e := do(k.tr, ordExtend, u32(16), msg)
			return e + fmt.Sprintf("rc=%#x", rc)
		}),
		keyStep("Sign PCR-bound after the extend", func(k *keyer) string { return k.sign("pcr", keyAuth, crypto.SHA1, msg) }),
		keyStep("Sign PCR-bound TPM_KEY after the extend", func(k *keyer) string { return k.sign("pcr11", keyAuth, crypto.SHA1, msg) }),
		keyStep("GetPubKey PCR-bound after the extend", func(k *keyer) string { r, _ := k.keyOIAP("pcr", keyAuth, ordGetPubKey, nil); return r }),
		keyStep("Flush PCR-bound keys", func(k *keyer) string {
			rc1, _, _ := do(k.tr, ordFlushSpecific, k.handle("pcr"), u32(1))
			rc2, _, _ := do(k.tr, ordFlushSpecific, k.handle("pcr11"), u32(1))
			return fmt.Sprintf("rc=%#x %#x", rc1, rc2)
		}),
		keyStep("CreateWrapKey PCR-bound, pcrIgnoredOnRead, no read auth", func(k *keyer) string {
			return k.createWrapKey("ignored", srk, k.srk, keyAuth, true, keyTemplate(true, keySigning, 8, 3, esNone, ssSHA1, 1024, k.keyPCRInfoLong()))
		}),
		keyStep("LoadKey2 pcrIgnoredOnRead", func(k *keyer) string { return k.loadKey2("ignored", srk, k.srk, k.blobs["ignored"]) }),
		keyStep("Extend 16 again", func(k *keyer) string {
			rc, _, e := do(k.tr, ordExtend, u32(16), msg)
			return e + fmt.Sprintf("rc=%#x", rc)
		}),
		keyStep("GetPubKey pcrIgnoredOnRead without a session", func(k *keyer) string {
			rc, out, e := do(k.tr, ordGetPubKey, k.handle("ignored"))
			return e + fmt.Sprintf("rc=%#x len=%d", rc, len(out))
		}),
		keyStep("Sign pcrIgnoredOnRead", func(k *keyer) string { return k.sign("ignored", keyAuth, crypto.SHA1, msg) }),
		keyStep("CreateWrapKey authDataUsage never", func(k *keyer) string {
			return k.createWrapKey("never", srk, k.srk, keyAuth, true, keyTemplate(true, keySigning, 0, 0, esNone, ssSHA1, 1024, nil))
		}),
		keyStep("LoadKey2 authDataUsage never", func(k *keyer) string { return k.loadKey2("never", srk, k.srk, k.blobs["never"]) }),
		keyStep("Sign without a session, authDataUsage never", func(k *keyer) string {
			rc, out, e := do(k.tr, ordSign, k.handle("never"), u32(20), msg)
			ok := len(out) > 4 && rsa.VerifyPKCS1v15(k.pub("never"), crypto.SHA1, msg, out[4:]) == nil
			return e + fmt.Sprintf("rc=%#x verifies=%v", rc, ok)
		}),
		keyStep("Sign with a session, authDataUsage never", func(k *keyer) string { return k.sign("never", keyAuth, crypto.SHA1, msg) }),
		keyStep("CreateWrapKey reserved key flag", func(k *keyer) string {
			return k.createWrapKey("x", srk, k.srk, keyAuth, true, keyTemplate(true, keySigning, 0x80, 1, esNone, ssSHA1, 1024, nil))
		}),
		keyStep("CreateWrapKey authDataUsage 0x77", func(k *keyer) string {
			return k.createWrapKey("x", srk, k.srk, keyAuth, true, keyTemplate(true, keySigning, 0, 0x77, esNone, ssSHA1, 1024, nil))
		}),
		keyStep("CreateWrapKey bad pcrInfo tag", func(k *keyer) string {
			p := k.keyPCRInfoLong()
			p[1] = 5
			return k.createWrapKey("x", srk, k.srk, keyAuth, true, keyTemplate(true, keySigning, 0, 1, esNone, ssSHA1, 1024, p))
		}),
		keyStep("CreateWrapKey truncated pcrInfo", func(k *keyer) string {
			return k.createWrapKey("x", srk, k.srk, keyAuth, true, keyTemplate(true, keySigning, 0, 1, esNone, ssSHA1, 1024, k.keyPCRInfoLong()[:30]))
		}),
		keyStep("CreateWrapKey pcrInfo with a trailing byte", func(k *keyer) string {
			return k.createWrapKey("x", srk, k.srk, keyAuth, true, keyTemplate(true, keySigning, 0, 1, esNone, ssSHA1, 1024, append(k.keyPCRInfoLong(), 0)))
		}),
		keyStep("CreateWrapKey pcrInfo localityAtRelease 0", func(k *keyer) string {
			p := k.keyPCRInfoLong()
			p[3] = 0
			return k.createWrapKey("x", srk, k.srk, keyAuth, true, keyTemplate(true, keySigning, 0, 1, esNone, ssSHA1, 1024, p))
		}),
		keyStep("CreateWrapKey TPM_PCR_INFO in a TPM_KEY12", func(k *keyer) string {
			sel := []byte{0, 0, 1}
			return k.createWrapKey("x", srk, k.srk, keyAuth, true, keyTemplate(true, keySigning, 0, 1, esNone, ssSHA1, 1024, pcrInfoShortSel(sel, k.compositeHash(sel))))
		}),
		keyStep("Flush", func(k *keyer) string {
			rc1, _, _ := do(k.tr, ordFlushSpecific, k.handle("ignored"), u32(1))
			rc2, _, _ := do(k.tr, ordFlushSpecific, k.handle("never"), u32(1))
			return fmt.Sprintf("rc=%#x %#x", rc1, rc2)
		}),
		keyStep("CreateWrapKey on an AES-128-CTR ADIP session", func(k *keyer) string {
			return k.createWrapKeyAES("aes", keyTemplate(true, keySigning, 0, 1, esNone, ssSHA1, 1024, nil))
		}),
		keyStep("LoadKey2 and Sign with the usage secret sent under AES", func(k *keyer) string {
			r := k.loadKey2("aes", srk, k.srk, k.blobs["aes"])
			r += "; " + k.sign("aes", keyAuth, crypto.SHA1, msg)
			rc, _, _ := do(k.tr, ordFlushSpecific, k.handle("aes"), u32(1))
			return r + fmt.Sprintf("; flush rc=%#x", rc)
		}),
		keyStep("CreateWrapKey, LoadKey2, Sign with exponents 3, 257, 9; storage key with 3", func(k *keyer) string {
			var out strings.Builder
			for _, c := range []struct {
				usage uint16
				es    uint16
				ss    uint16
				bits  uint32
				e     []byte
			}{{keySigning, esNone, ssSHA1, 1024, []byte{3}}, {keySigning, esNone, ssSHA1, 1024, []byte{1, 1}},
				{keySigning, esNone, ssSHA1, 1024, []byte{9}}, {keyStorage, esOAEP, ssNone, 2048, []byte{3}}} {
				t := keyTemplate(true, c.usage, 0, 1, c.es, c.ss, c.bits, nil)
				rsaParms := append(append(append(u32(c.bits), u32(2)...), u32(uint32(len(c.e)))...), c.e...)
				t = append(append(append(append([]byte{}, t[:19]...), u32(uint32(len(rsaParms)))...), rsaParms...), t[35:]...)
				r := k.createWrapKey("e", srk, k.srk, keyAuth, true, t)
				fmt.Fprintf(&out, "e=%x: %s", c.e, r[:min(len(r), 40)])
				if !strings.HasPrefix(r, "rc=0 ") {
					out.WriteString("; ")
					continue
				}
				fmt.Fprintf(&out, " %s", k.loadKey2("e", srk, k.srk, k.blobs["e"]))
				r2, sig := k.keyOIAP("e", keyAuth, ordSign, append(u32(20), msg...))
				pub := k.pub("e")
				pub.E = int(new(big.Int).SetBytes(c.e).Int64())
				fmt.Fprintf(&out, " sign %s verifies=%v; ", r2, len(sig) > 4 && rsa.VerifyPKCS1v15(pub, crypto.SHA1, msg, sig[4:]) == nil)
				do(k.tr, ordFlushSpecific, k.handle("e"), u32(1))
			}
			return out.String()
		}),
		keyStep("CreateWrapKey storage 2048", func(k *keyer) string {
			return k.createWrapKey("storage", srk, k.srk, keyAuth, true, keyTemplate(true, keyStorage, 0, 1, esOAEP, ssNone, 2048, nil))
		}),
		keyStep("LoadKey2 storage", func(k *keyer) string { return k.loadKey2("storage", srk, k.srk, k.blobs["storage"]) }),
		keyStep("Seal and Unseal under a loaded storage key", func(k *keyer) string { return k.sealUnder("storage") }),
		keyStep("CreateWrapKey child of the storage key", func(k *keyer) string {
			return k.createWrapKey("child", k.handle("storage"), keyAuth, childAuth, true, keyTemplate(true, keyBind, 0, 1, esOAEP, ssNone, 1024, nil))
		}),
		keyStep("LoadKey2 child under the SRK", func(k *keyer) string { return k.loadKey2("x", srk, k.srk, k.blobs["child"]) }),
		keyStep("LoadKey2 child", func(k *keyer) string { return k.loadKey2("child", k.handle("storage"), keyAuth, k.blobs["child"]) }),
		keyStep("GetPubKey child", func(k *keyer) string { r, _ := k.keyOIAP("child", childAuth, ordGetPubKey, nil); return r }),
		keyStep("CreateWrapKey migratable storage", func(k *keyer) string {
			return k.createWrapKey("mig", srk, k.srk, keyAuth, true, keyTemplate(true, keyStorage, flagMigratable, 1, esOAEP, ssNone, 2048, nil))
		}),
		keyStep("LoadKey2 migratable storage", func(k *keyer) string { return k.loadKey2("mig", srk, k.srk, k.blobs["mig"]) }),
		keyStep("CreateWrapKey non-migratable under migratable", func(k *keyer) string {
			return k.createWrapKey("x", k.handle("mig"), keyAuth, keyAuth, true, signing)
		}),
		keyStep("Seal under a migratable key", func(k *keyer) string { return k.sealUnder("mig") }),
		keyStep("CAP_PROPERTY KEYS with keys loaded", stepFunc(full(ordGetCapability, capArgs(5, u32(0x104))...)).withKeyer()),
		keyStep("CAP_PROPERTY MAX_KEYS", stepFunc(full(ordGetCapability, capArgs(5, u32(0x110))...)).withKeyer()),
		keyStep("LoadKey2 until the slots run out", func(k *keyer) string {
			var hs [][]byte
			var r string
			for len(hs) < 30 {
				if r = k.loadKey2("x", srk, k.srk, k.blobs["bind"]); !strings.HasPrefix(r, "rc=0 ") {
					break
				}
				hs = append(hs, k.handles["x"])
			}
			for _, h := range hs {
				do(k.tr, ordFlushSpecific, h, u32(1))
			}
			return fmt.Sprintf("%d more keys, then %s", len(hs), r)
		}),
		keyStep("LoadKey2 until full, CAP_CHECK_LOADED, flush", func(k *keyer) string {
			var hs [][]byte
			for len(hs) < 30 && strings.HasPrefix(k.loadKey2("x", srk, k.srk, k.blobs["bind"]), "rc=0 ") {
				hs = append(hs, k.handles["x"])
			}
			rsaParms := append(append(append(u32(1), u16(esOAEP)...), u16(ssNone)...), u32(12)...)
			rsaParms = append(append(append(rsaParms, u32(2048)...), u32(2)...), u32(0)...)
			rc, out, e := do(k.tr, ordGetCapability, capArgs(8, rsaParms)...)
			for _, h := range hs {
				do(k.tr, ordFlushSpecific, h, u32(1))
			}
			return e + fmt.Sprintf("%d keys; rc=%#x %x", len(hs), rc, out)
		}),
		keyStep("SaveState, _TPM_Init, Startup(ST_STATE), Sign", func(k *keyer) string {
			rc1, _, _ := do(k.tr, ordSaveState)
			if err := k.tr.init(); err != nil {
				return err.Error()
			}
			rc2, _, _ := do(k.tr, ordStartup, u16(2))
			return fmt.Sprintf("rc=%#x %#x; %s", rc1, rc2, k.sign("sign", keyAuth, crypto.SHA1, msg))
		}),
		keyStep("_TPM_Init, Startup(ST_CLEAR), Sign", func(k *keyer) string {
			if err := k.tr.init(); err != nil {
				return err.Error()
			}
			rc, _, _ := do(k.tr, ordStartup, u16(1))
			return fmt.Sprintf("rc=%#x; %s", rc, k.sign("sign", keyAuth, crypto.SHA1, msg))
		}),
		keyStep("LoadKey2 again, FlushSpecific twice", func(k *keyer) string {
			r := k.loadKey2("sign", srk, k.srk, k.blobs["sign"])
			rc1, _, _ := do(k.tr, ordFlushSpecific, k.handle("sign"), u32(1))
			rc2, _, _ := do(k.tr, ordFlushSpecific, k.handle("sign"), u32(1))
			return fmt.Sprintf("%s flush rc=%#x again rc=%#x; %s", r, rc1, rc2, k.sign("sign", keyAuth, crypto.SHA1, msg))
		}),
		keyStep("EvictKey", func(k *keyer) string {
			r := k.loadKey2("sign", srk, k.srk, k.blobs["sign"])
			rc1, _, _ := do(k.tr, ordEvictKey, k.handle("sign"))
			rc2, _, _ := do(k.tr, ordEvictKey, k.handle("sign"))
			return fmt.Sprintf("%s evict rc=%#x again rc=%#x", r, rc1, rc2)
		}),
		keyStep("OSAP on a flushed key", func(k *keyer) string {
			rc, _, e := do(k.tr, ordOSAP, u16(etKeyHandle), k.handle("sign"), digest1)
			return e + fmt.Sprintf("rc=%#x", rc)
		}),
	}
}

// keyOIAPAt runs an AUTH1 command on handle h with a fresh OIAP session
// keyed by secret.
func (k *keyer) keyOIAPAt(h, secret []byte, ord uint32, params []byte) (string, []byte) {
	s, e := k.oiap()
	if s == nil {
		return e, nil
	}
	return k.auth1(s, secret, false, ord, h, params)
}

// stepFunc adapts a transport-level step to a keyer step.
type stepFunc func(tpm) string

func (f stepFunc) withKeyer() func(*keyer) string {
	return func(k *keyer) string { return f(k.tr) }
}

// TestSwtpm12Keys compares the key commands: CreateWrapKey, LoadKey2 and
// LoadKey, GetPubKey, Sign, UnBind, Seal under a loaded key, flushing,
// the key slots and SaveState.
func TestSwtpm12Keys(t *testing.T) {
	pair := ownedPair(t)
	sides := []*keyer{{pair[0], map[string][]byte{}, map[string][]byte{}}, {pair[1], map[string][]byte{}, map[string][]byte{}}}
	runClientSteps(t, sides, keySteps())
}
