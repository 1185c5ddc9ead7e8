package conformance

import (
	"bytes"
	"crypto"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"encoding/binary"
	"fmt"
	"math/big"
	"testing"
)

// Ordinals of the attestation commands, Part 2 §17; the key usages and
// schemes are key_diff_test.go's.
const (
	ordQuote, ordQuote2, ordCertifyKey   = 0x16, 0x3E, 0x32
	ordCertifyKey2                       = 0x33
	ordMakeIdentity, ordActivateIdentity = 0x79, 0x7A
)

// attKey is a key one side created and loaded: its handle, its TPM_KEY
// as CreateWrapKey or MakeIdentity returned it, its public key and its
// usage secret.
type attKey struct {
	handle []byte
	blob   []byte
	pub    *rsa.PublicKey
	// pubkey is the key's TPM_PUBKEY (keyParms and modulus).
	pubkey  []byte
	modulus []byte
	auth    []byte
}

// attester carries the keys of one side between steps.
type attester struct {
	*client
	keys map[string]*attKey
}

// tpmKeyFields splits a TPM_KEY: the fields before the algorithm
// parameters, the TPM_KEY_PARMS, pcrInfo, the modulus and the rest.
type tpmKeyFields struct {
	head, parms, pcrInfo, modulus []byte
	n                             int
}

func splitKey(b []byte) (*tpmKeyFields, bool) {
	f := &tpmKeyFields{}
	off := 11
	if len(b) < off+12 {
		return nil, false
	}
	f.head = b[:off]
	pl := int(binary.BigEndian.Uint32(b[off+8:]))
	if len(b) < off+12+pl+4 {
		return nil, false
	}
	f.parms = b[off : off+12+pl]
	off += 12 + pl
	sized := func() ([]byte, bool) {
		if len(b) < off+4 {
			return nil, false
		}
		n := int(binary.BigEndian.Uint32(b[off:]))
		if len(b) < off+4+n {
			return nil, false
		}
		p := b[off+4 : off+4+n]
		off += 4 + n
		return p, true
	}
	var ok1, ok2, ok3 bool
	f.pcrInfo, ok1 = sized()
	f.modulus, ok2 = sized()
	_, ok3 = sized()
	f.n = off
	return f, ok1 && ok2 && ok3
}

// pubkeyOf is the TPM_PUBKEY of a TPM_KEY: its parameters and modulus.
func pubkeyOf(f *tpmKeyFields) []byte {
	return append(append(append([]byte{}, f.parms...), u32(uint32(len(f.modulus)))...), f.modulus...)
}

// adip XOR-encrypts a secret for an OSAP session, Part 1 §13.8, with
// SHA-1(sharedSecret || nonce).
func adip(s *session, nonce, secret []byte) []byte {
	pad := sha1Of(s.key, nonce)
	out := make([]byte, 20)
	for i := range out {
		out[i] = secret[i] ^ pad[i]
	}
	return out
}

// createKey wraps a new key under the SRK (CreateWrapKey on an OSAP
// session of the SRK) and loads it (LoadKey2 on OIAP), as a client
// does; it reports both response codes.
func (a *attester) createKey(name string, info []byte, auth []byte) string {
	s, e := a.osap(etSRK, khSRK, a.srk)
	if s == nil {
		return e
	}
	odd := bytes.Repeat([]byte{0x0D}, 20) // the nonceOdd auth1 sends
	p := append(append(adip(s, s.nonceEven, auth), adip(s, odd, auth)...), info...)
	r, out := a.auth1(s, nil, false, ordCreateWrapKey, u32(khSRK), p)
	if out == nil {
		return "CreateWrapKey " + r
	}
	f, ok := splitKey(out)
	if !ok || f.n != len(out) {
		return "CreateWrapKey: malformed key"
	}
	k := &attKey{blob: out, auth: auth, pubkey: pubkeyOf(f), modulus: f.modulus,
		pub: &rsa.PublicKey{N: new(big.Int).SetBytes(f.modulus), E: 65537}}
	a.keys[name] = k
	r2 := a.loadKey(k)
	// The key as created: usage, flags, authDataUsage, parameters,
	// pcrInfo and the modulus size; the modulus and encData differ.
	return fmt.Sprintf("CreateWrapKey %s head=%x parms=%x pcrInfo=%x modulus=%d; LoadKey2 %s",
		r, f.head, f.parms, f.pcrInfo, len(f.modulus), r2)
}

// loadKey loads k under the SRK with LoadKey2.
func (a *attester) loadKey(k *attKey) string {
	s, e := a.oiap()
	if s == nil {
		return e
	}
	r, out := a.auth1(s, a.srk, false, ordLoadKey2, u32(khSRK), k.blob)
	if len(out) == 4 {
		k.handle = out
	}
	// The response HMAC leaves the new handle out (Part 1 §13.2), which
	// auth1 does not know: report the code only.
	return fmt.Sprintf("%.6s", r)
}

// handle is the handle of the named key, or an unloaded handle.
func (a *attester) handle(name string) []byte {
	if k := a.keys[name]; k != nil && k.handle != nil {
		return k.handle
	}
	return u32(0x01FFFFFF)
}

// keyAuth1 runs an AUTH1 command authorized by the named key's secret
// on a fresh OIAP session, or without authorization when auth is nil.
func (a *attester) keyAuth1(name string, auth []byte, ord uint32, handles, params []byte) (string, []byte) {
	if auth == nil {
		rc, out, e := do(a.tr, ord, handles, params)
		if rc != 0 || e != "" {
			return e + fmt.Sprintf("rc=%#x", rc), nil
		}
		return "rc=0 unauthorized", out
	}
	s, e := a.oiap()
	if s == nil {
		return e, nil
	}
	return a.auth1(s, auth, false, ord, handles, params)
}

// verify reports whether sig is the named key's PKCS #1 v1.5 SHA-1
// signature of the SHA-1 of msg.
func (a *attester) verify(name string, msg, sig []byte) bool {
	k := a.keys[name]
	if k == nil {
		return false
	}
	return rsa.VerifyPKCS1v15(k.pub, crypto.SHA1, sha1Of(msg), sig) == nil
}

// readSized reads a UINT32-sized field at off.
func readSized(b []byte, off int) ([]byte, int, bool) {
	if len(b) < off+4 {
		return nil, off, false
	}
	n := int(binary.BigEndian.Uint32(b[off:]))
	if len(b) < off+4+n {
		return nil, off, false
	}
	return b[off+4 : off+4+n], off + 4 + n, true
}

// quote runs TPM_Quote with the named key over sel and reports the
// response code, the TPM_PCR_COMPOSITE (equal on both sides after the
// same extends), whether its values are the PCRs as PCRRead reads them,
// and whether the signature verifies over the TPM_QUOTE_INFO the test
// builds from them.
func (a *attester) quote(name string, auth []byte, sel []byte) string {
	nonce := sha1Of([]byte("quote nonce"))
	selection := append(u16(uint16(len(sel))), sel...)
	r, out := a.keyAuth1(name, auth, ordQuote, a.handle(name), append(append([]byte{}, nonce...), selection...))
	if out == nil {
		return r
	}
	if len(out) < len(selection)+4 {
		return r + " short"
	}
	vsize := int(binary.BigEndian.Uint32(out[len(selection):]))
	end := len(selection) + 4 + vsize
	sig, rest, ok := readSized(out, end)
	if !ok || rest != len(out) {
		return r + " malformed"
	}
	composite := out[:end]
	h := make([]byte, 20)
	if vsize != 0 {
		h = sha1Of(composite)
	}
	info := append(append(append([]byte{1, 1, 0, 0}, "QUOT"...), h...), nonce...)
	return r + fmt.Sprintf(" composite=%x pcrs-current=%v sig=%d sig-ok=%v", composite,
		bytes.Equal(composite[len(selection)+4:], a.pcrValues(sel)), len(sig), a.verify(name, info, sig))
}

// pcrValues reads the selected PCRs with PCRRead.
func (a *attester) pcrValues(sel []byte) []byte {
	var vals []byte
	for i := 0; i < len(sel)*8; i++ {
		if sel[i/8]&(1<<(i%8)) != 0 {
			_, out, _ := do(a.tr, ordPCRRead, u32(uint32(i)))
			vals = append(vals, out...)
		}
	}
	return vals
}

// quote2 runs TPM_Quote2 and reports the TPM_PCR_INFO_SHORT (equal on
// both sides), whether its digestAtRelease is the composite hash of the
// PCRs read back, the TPM_CAP_VERSION_INFO's layout, and whether the
// signature verifies over TPM_QUOTE_INFO2 (and the version info).
func (a *attester) quote2(name string, auth []byte, loc uint8, sel []byte, addVersion bool) string {
	nonce := sha1Of([]byte("quote2 nonce"))
	selection := append(u16(uint16(len(sel))), sel...)
	av := []byte{0}
	if addVersion {
		av[0] = 1
	}
	params := append(append(append([]byte{}, nonce...), selection...), av...)
	var r string
	var out []byte
	if loc != 0 {
		rc, o, e := doAt(a.tr, loc, 0xC1, ordQuote2, a.handle(name), params)
		r, out = e+fmt.Sprintf("rc=%#x", rc), o
		if rc != 0 {
			out = nil
		}
	} else {
		r, out = a.keyAuth1(name, auth, ordQuote2, a.handle(name), params)
	}
	if out == nil {
		return r
	}
	n := len(selection) + 1 + 20
	if len(out) < n {
		return r + " short"
	}
	infoShort := out[:n]
	ver, off, ok1 := readSized(out, n)
	sig, off, ok2 := readSized(out, off)
	if !ok1 || !ok2 || off != len(out) {
		return r + " malformed"
	}
	h := make([]byte, 20)
	if vals := a.pcrValues(sel); len(vals) != 0 {
		h = sha1Of(selection, u32(uint32(len(vals))), vals)
	}
	info := append(append(append(u16(0x36), "QUT2"...), nonce...), infoShort...)
	info = append(info, ver...)
	verShape := fmt.Sprintf("%d", len(ver))
	if len(ver) >= 15 {
		// tag, version major.minor, specLevel, errataRev, vendorSpecificSize:
		// not the firmware revision or the vendor.
		verShape = fmt.Sprintf("%x %x %x %x %x", ver[0:2], ver[2:4], ver[6:8], ver[8], ver[13:15])
	}
	return r + fmt.Sprintf(" infoShort=%x digest-current=%v version=%s sig-ok=%v", infoShort,
		bytes.Equal(infoShort[len(selection)+1:], h), verShape, a.verify(name, info, sig))
}

// certifyKey certifies the key named target with the key named cert:
// AUTH2 when both secrets are given, AUTH1 (the target's) when only
// that one is, no authorization otherwise. It reports the
// TPM_CERTIFY_INFO without its pubkeyDigest, whether that digest is of
// the target's modulus, and whether the signature verifies.
func (a *attester) certifyKey(cert, target string, certAuth, keyAuth []byte) string {
	return a.certifyBy(ordCertifyKey, cert, target, certAuth, keyAuth)
}

// certifyKey2 is certifyKey with TPM_CertifyKey2: the handles and the
// sessions in the other order, with AUTH1 the certifier's session.
func (a *attester) certifyKey2(cert, target string, certAuth, keyAuth []byte) string {
	return a.certifyBy(ordCertifyKey2, cert, target, certAuth, keyAuth)
}

func (a *attester) certifyBy(ord uint32, cert, target string, certAuth, keyAuth []byte) string {
	nonce := sha1Of([]byte("certify nonce"))
	handles := append(append([]byte{}, a.handle(cert)...), a.handle(target)...)
	params := nonce
	firstAuth, secondAuth := certAuth, keyAuth
	if ord == ordCertifyKey2 {
		handles = append(append([]byte{}, a.handle(target)...), a.handle(cert)...)
		params = append(sha1Of([]byte("migration authority")), nonce...)
		firstAuth, secondAuth = keyAuth, certAuth
	}
	var r string
	var out []byte
	switch {
	case firstAuth != nil && secondAuth != nil:
		s1, _ := a.oiap()
		s2, _ := a.oiap()
		if s1 == nil || s2 == nil {
			return "no session"
		}
		r, out = a.auth2(s1, firstAuth, s2, secondAuth, ord, handles, params)
		do(a.tr, ordFlushSpecific, s1.h, u32(2))
		do(a.tr, ordFlushSpecific, s2.h, u32(2))
	default:
		// AUTH1 carries the last session's secret, or none at all.
		r, out = a.keyAuth1("", secondAuth, ord, handles, params)
	}
	if out == nil {
		return r
	}
	// version, keyUsage, keyFlags, authDataUsage, keyParms, then
	// pubkeyDigest, data, parentPCRStatus, pcrInfo.
	if len(out) < 11+12 {
		return r + " short"
	}
	pl := int(binary.BigEndian.Uint32(out[11+8:]))
	off := 11 + 12 + pl
	if len(out) < off+41 {
		return r + " short"
	}
	pubDigest := out[off : off+20]
	_, end, ok := readSized(out, off+41)
	if out[0] == 0 && out[1] == 0x29 {
		// TPM_CERTIFY_INFO2: migrationAuthority follows pcrInfo.
		var ok1 bool
		_, end, ok1 = readSized(out, end)
		ok = ok && ok1
	}
	sig, rest, ok2 := readSized(out, end)
	if !ok || !ok2 || rest != len(out) {
		return r + " malformed"
	}
	info := out[:end]
	t := a.keys[target]
	return r + fmt.Sprintf(" info=%x|%x pubkeyDigest-ok=%v sig-ok=%v", info[:off], info[off+20:],
		t != nil && bytes.Equal(pubDigest, sha1Of(t.modulus)),
		a.verify(cert, info, sig))
}

// makeIdentity runs TPM_MakeIdentity with the SRK's OIAP session and the
// owner's OSAP session (identityAuth under its ADIP), verifies the
// identityBinding over the TPM_IDENTITY_CONTENTS the test builds from
// the returned key, and loads the key as name.
func (a *attester) makeIdentity(name string, idAuth, label, info []byte, srkOSAP bool) string {
	return a.makeIdentityADIP(name, idAuth, label, info, srkOSAP, false)
}

// makeIdentityADIP is makeIdentity with, when aesADIP, the owner's OSAP
// session asking for the AES-128-CTR ADIP (TPM_ET_AES128_CTR).
func (a *attester) makeIdentityADIP(name string, idAuth, label, info []byte, srkOSAP, aesADIP bool) string {
	var s1 *session
	if srkOSAP {
		s1, _ = a.osap(etSRK, khSRK, a.srk)
	} else {
		s1, _ = a.oiap()
	}
	et := uint16(etOwner)
	if aesADIP {
		et |= 0x0600
	}
	s2, _ := a.osap(et, 0, a.owner)
	if s1 == nil || s2 == nil {
		return "no session"
	}
	enc := adip(s2, s2.nonceEven, idAuth)
	if aesADIP {
		b, _ := aes.NewCipher(s2.key[:16])
		cipher.NewCTR(b, s2.nonceEven[:16]).XORKeyStream(enc, idAuth)
	}
	p := append(append(enc, label...), info...)
	r, out := a.auth2(s1, a.srk, s2, a.owner, ordMakeIdentity, nil, p)
	if out == nil {
		return r
	}
	f, ok := splitKey(out)
	if !ok {
		return r + " malformed key"
	}
	binding, end, ok := readSized(out, f.n)
	if !ok || end != len(out) {
		return r + " malformed"
	}
	k := &attKey{blob: out[:f.n], auth: idAuth, pubkey: pubkeyOf(f), modulus: f.modulus,
		pub: &rsa.PublicKey{N: new(big.Int).SetBytes(f.modulus), E: 65537}}
	a.keys[name] = k
	contents := append(append(append([]byte{1, 1, 0, 0}, u32(ordMakeIdentity)...), label...), k.pubkey...)
	return r + fmt.Sprintf(" head=%x parms=%x pcrInfo=%x modulus=%d binding-ok=%v; LoadKey2 %s",
		f.head, f.parms, f.pcrInfo, len(f.modulus), a.verify(name, contents, binding), a.loadKey(k))
}

// symKey is a TPM_SYMMETRIC_KEY: AES-128 in CTR mode, as a privacy CA
// sends.
func symKey(data []byte) []byte {
	return append(append(append(u32(6), u16(4)...), u16(uint16(len(data)))...), data...)
}

// ekBlobActivate is a TPM_EK_BLOB of type ekType holding a
// TPM_EK_BLOB_ACTIVATE of sessionKey, idDigest and a TPM_PCR_INFO_SHORT.
func ekBlobActivate(ekType uint16, sessionKey, idDigest, pcrInfoShort []byte) []byte {
	inner := append(append(append(u16(0x2B), sessionKey...), idDigest...), pcrInfoShort...)
	return append(append(append(u16(0x0C), u16(ekType)...), u32(uint32(len(inner)))...), inner...)
}

// activate runs TPM_ActivateIdentity for the named identity key with
// blob encrypted to the EK, and reports the response code and whether
// the session key came back.
func (a *attester) activate(name string, idAuth []byte, plain, want []byte) string {
	var blob []byte
	if plain != nil {
		var err error
		blob, err = rsa.EncryptOAEP(sha1.New(), rand.Reader, a.ek, plain, []byte("TCPA"))
		if err != nil {
			return err.Error()
		}
	} else {
		blob = bytes.Repeat([]byte{0x5A}, 256)
	}
	s1, _ := a.oiap()
	s2, _ := a.oiap()
	if s1 == nil || s2 == nil {
		return "no session"
	}
	r, out := a.auth2(s1, idAuth, s2, a.owner, ordActivateIdentity, a.handle(name), append(u32(uint32(len(blob))), blob...))
	do(a.tr, ordFlushSpecific, s1.h, u32(2))
	do(a.tr, ordFlushSpecific, s2.h, u32(2))
	if out == nil {
		return r
	}
	return r + fmt.Sprintf(" symmetricKey-ok=%v len=%d", bytes.Equal(out, want), len(out))
}

func attStep(name string, f func(a *attester) string) func(*attester) diffStep {
	return func(a *attester) diffStep { return diffStep{name, func(tpm) string { return f(a) }} }
}

func attestSteps() []func(*attester) diffStep {
	keyAuth := sha1Of([]byte("key"))
	wrong := sha1Of([]byte("wrong"))
	idAuth := sha1Of([]byte("identity"))
	label := sha1Of([]byte("privacy CA label"))
	sel := []byte{0xFF, 0xFF, 0xFF}
	sel10 := []byte{0, 4, 0}
	session := bytes.Repeat([]byte{0x42}, 16)
	idDigest := func(a *attester, name string) []byte {
		if k := a.keys[name]; k != nil {
			return sha1Of(k.pubkey)
		}
		return make([]byte, 20)
	}
	noPCRs := append(append(u16(3), 0, 0, 0), append([]byte{0x1F}, make([]byte, 20)...)...)
	// resetLock clears the failed authorizations the steps before made
	// on purpose, before the dictionary-attack lockout answers for them.
	resetLock := attStep("ResetLockValue", func(a *attester) string {
		r, _ := a.ownerOIAP(a.owner, ordResetLockValue, nil, nil)
		return r
	})
	flush := func(names ...string) func(*attester) diffStep {
		return attStep(fmt.Sprintf("FlushSpecific %q", names), func(a *attester) string {
			var r string
			for _, n := range names {
				rc, _, e := do(a.tr, ordFlushSpecific, a.handle(n), u32(1))
				r += e + fmt.Sprintf("rc=%#x ", rc)
				delete(a.keys, n)
			}
			return r
		})
	}
	return []func(*attester) diffStep{
		attStep("CreateWrapKey signing key", func(a *attester) string {
			return a.createKey("sign", keyTemplate(false, keySigning, 0, 1, esNone, ssSHA1, 2048, nil), keyAuth)
		}),
		attStep("CreateWrapKey signing key, INFO scheme, no authorization", func(a *attester) string {
			return a.createKey("info", keyTemplate(false, keySigning, 0, 0, esNone, ssINFO, 2048, nil), keyAuth)
		}),
		attStep("CreateWrapKey signing key, DER scheme", func(a *attester) string {
			return a.createKey("der", keyTemplate(false, keySigning, 0, 1, esNone, ssDER, 2048, nil), keyAuth)
		}),
		attStep("CreateWrapKey legacy key", func(a *attester) string {
			return a.createKey("legacy", keyTemplate(false, keyLegacy, 0, 1, esOAEP, ssSHA1, 2048, nil), keyAuth)
		}),
		attStep("CreateWrapKey storage key", func(a *attester) string {
			return a.createKey("storage", keyTemplate(false, keyStorage, 0, 1, esOAEP, ssNone, 2048, nil), keyAuth)
		}),
		attStep("CreateWrapKey migratable binding key", func(a *attester) string {
			return a.createKey("bind", keyTemplate(false, keyBind, flagMigratable, 1, esOAEP, ssNone, 2048, nil), keyAuth)
		}),
		attStep("Extend PCRs 10 and 16", func(a *attester) string {
			r1, o1, _ := do(a.tr, ordExtend, u32(10), digest1)
			r2, o2, _ := do(a.tr, ordExtend, u32(16), sha1Of([]byte("16")))
			return fmt.Sprintf("rc=%#x %x rc=%#x %x", r1, o1, r2, o2)
		}),
		attStep("Quote all PCRs", func(a *attester) string { return a.quote("sign", keyAuth, sel) }),
		attStep("Quote PCR 10", func(a *attester) string { return a.quote("sign", keyAuth, sel10) }),
		attStep("Quote no PCR", func(a *attester) string { return a.quote("sign", keyAuth, []byte{0, 0, 0}) }),
		attStep("Quote sizeOfSelect 0", func(a *attester) string { return a.quote("sign", keyAuth, nil) }),
		attStep("Quote sizeOfSelect 4", func(a *attester) string { return a.quote("sign", keyAuth, []byte{1, 0, 0, 0}) }),
		attStep("Quote INFO-scheme key without authorization", func(a *attester) string { return a.quote("info", nil, sel10) }),
		attStep("Quote INFO-scheme key with authorization", func(a *attester) string { return a.quote("info", keyAuth, sel10) }),
		attStep("Quote legacy key", func(a *attester) string { return a.quote("legacy", keyAuth, sel10) }),
		attStep("Quote DER-scheme key", func(a *attester) string { return a.quote("der", keyAuth, sel10) }),
		attStep("Quote storage key", func(a *attester) string { return a.quote("storage", keyAuth, sel10) }),
		attStep("Quote binding key", func(a *attester) string { return a.quote("bind", keyAuth, sel10) }),
		attStep("Quote SRK", func(a *attester) string {
			r, _ := a.keyAuth1("", a.srk, ordQuote, u32(khSRK), append(append([]byte{}, digest1...), 0, 1, 4))
			return r
		}),
		attStep("Quote EK", func(a *attester) string {
			r, _ := a.keyAuth1("", a.srk, ordQuote, u32(khEK), append(append([]byte{}, digest1...), 0, 1, 4))
			return r
		}),
		attStep("Quote unloaded handle", func(a *attester) string { return a.quote("none", keyAuth, sel10) }),
		attStep("Quote wrong key secret", func(a *attester) string { return a.quote("sign", wrong, sel10) }),
		attStep("Quote without authorization, key needs it", func(a *attester) string { return a.quote("sign", nil, sel10) }),
		attStep("Quote truncated", func(a *attester) string {
			rc, _, e := do(a.tr, ordQuote, a.handle("info"), digest1, u16(3), []byte{0})
			return e + fmt.Sprintf("rc=%#x", rc)
		}),
		resetLock,
		attStep("Quote2 all PCRs", func(a *attester) string { return a.quote2("sign", keyAuth, 0, sel, false) }),
		attStep("Quote2 PCR 10 with version", func(a *attester) string { return a.quote2("sign", keyAuth, 0, sel10, true) }),
		attStep("Quote2 no PCR", func(a *attester) string { return a.quote2("sign", keyAuth, 0, []byte{0, 0, 0}, false) }),
		attStep("Quote2 INFO-scheme key at locality 0", func(a *attester) string { return a.quote2("info", nil, 0, sel10, false) }),
		attStep("Quote2 INFO-scheme key at locality 3", func(a *attester) string { return a.quote2("info", nil, 3, sel10, true) }),
		attStep("Quote2 legacy key", func(a *attester) string { return a.quote2("legacy", keyAuth, 0, sel10, false) }),
		attStep("Quote2 DER-scheme key", func(a *attester) string { return a.quote2("der", keyAuth, 0, sel10, false) }),
		attStep("Quote2 storage key", func(a *attester) string { return a.quote2("storage", keyAuth, 0, sel10, false) }),
		attStep("Quote2 wrong key secret", func(a *attester) string { return a.quote2("sign", wrong, 0, sel10, false) }),
		attStep("Quote2 unloaded handle", func(a *attester) string { return a.quote2("none", keyAuth, 0, sel10, false) }),
		attStep("Quote2 addVersion 2", func(a *attester) string {
			rc, out, e := do(a.tr, ordQuote2, a.handle("info"), digest1, u16(3), sel10, []byte{2})
			return e + fmt.Sprintf("rc=%#x len=%d", rc, len(out))
		}),
		attStep("Quote2 truncated", func(a *attester) string {
			rc, _, e := do(a.tr, ordQuote2, a.handle("info"), digest1, u16(3), sel10)
			return e + fmt.Sprintf("rc=%#x", rc)
		}),
		resetLock,
		attStep("CertifyKey storage key by signing key", func(a *attester) string {
			return a.certifyKey("sign", "storage", keyAuth, keyAuth)
		}),
		attStep("CertifyKey binding key by legacy key", func(a *attester) string {
			return a.certifyKey("legacy", "bind", keyAuth, keyAuth)
		}),
		attStep("CertifyKey signing key by INFO key, AUTH1", func(a *attester) string {
			return a.certifyKey("info", "sign", nil, keyAuth)
		}),
		attStep("CertifyKey INFO key by itself, no authorization", func(a *attester) string {
			return a.certifyKey("info", "info", nil, nil)
		}),
		attStep("CertifyKey signing key, no authorization", func(a *attester) string {
			return a.certifyKey("info", "sign", nil, nil)
		}),
		attStep("CertifyKey by a key that needs authorization, AUTH1", func(a *attester) string {
			return a.certifyKey("sign", "storage", nil, keyAuth)
		}),
		attStep("CertifyKey by DER-scheme key", func(a *attester) string {
			return a.certifyKey("der", "storage", keyAuth, keyAuth)
		}),
		attStep("CertifyKey by storage key", func(a *attester) string {
			return a.certifyKey("storage", "sign", keyAuth, keyAuth)
		}),
		attStep("CertifyKey wrong certifier secret", func(a *attester) string {
			return a.certifyKey("sign", "storage", wrong, keyAuth)
		}),
		attStep("CertifyKey wrong key secret", func(a *attester) string {
			return a.certifyKey("sign", "storage", keyAuth, wrong)
		}),
		attStep("CertifyKey unloaded key", func(a *attester) string {
			return a.certifyKey("sign", "none", keyAuth, keyAuth)
		}),
		attStep("CertifyKey2 storage key by signing key", func(a *attester) string {
			return a.certifyKey2("sign", "storage", keyAuth, keyAuth)
		}),
		attStep("CertifyKey2 INFO key by signing key, AUTH1", func(a *attester) string {
			return a.certifyKey2("sign", "info", keyAuth, nil)
		}),
		attStep("CertifyKey2 storage key, AUTH1", func(a *attester) string {
			return a.certifyKey2("sign", "storage", keyAuth, nil)
		}),
		attStep("CertifyKey2 INFO key by itself, no authorization", func(a *attester) string {
			return a.certifyKey2("info", "info", nil, nil)
		}),
		attStep("CertifyKey2 by a key that needs authorization, no authorization", func(a *attester) string {
			return a.certifyKey2("sign", "info", nil, nil)
		}),
		attStep("CertifyKey2 wrong certifier secret", func(a *attester) string {
			return a.certifyKey2("sign", "storage", wrong, keyAuth)
		}),
		attStep("CertifyKey2 wrong key secret", func(a *attester) string {
			return a.certifyKey2("sign", "storage", keyAuth, wrong)
		}),
		attStep("CertifyKey2 by DER-scheme key", func(a *attester) string {
			return a.certifyKey2("der", "storage", keyAuth, keyAuth)
		}),
		attStep("CertifyKey2 by storage key", func(a *attester) string {
			return a.certifyKey2("storage", "sign", keyAuth, keyAuth)
		}),
		attStep("CertifyKey2 unloaded key", func(a *attester) string {
			return a.certifyKey2("sign", "none", keyAuth, keyAuth)
		}),
		resetLock,
		// Free slots for the keys that follow.
		flush("der", "legacy"),
		attStep("CreateWrapKey signing key bound to PCR 10 (TPM_PCR_INFO)", func(a *attester) string {
			pi := pcrInfoShortSel(sel10, a.compositeHash(sel10))
			return a.createKey("pcr10", keyTemplate(false, keySigning, 0, 0, esNone, ssSHA1, 2048, pi), keyAuth)
		}),
		attStep("CreateWrapKey TPM_KEY12 signing key bound to PCR 16", func(a *attester) string {
			sel16 := []byte{0, 0, 1}
			pi := pcrInfoLong(0x1F, sel16, sel16, a.compositeHash(sel16))
			return a.createKey("pcr16", keyTemplate(true, keySigning, 0, 0, esNone, ssSHA1, 2048, pi), keyAuth)
		}),
		attStep("CreateWrapKey TPM_KEY12 signing key released at locality 0 only", func(a *attester) string {
			pi := pcrInfoLong(0x01, sel10, sel10, a.compositeHash(sel10))
			return a.createKey("loc0", keyTemplate(true, keySigning, 0, 0, esNone, ssSHA1, 2048, pi), keyAuth)
		}),
		attStep("CertifyKey key bound to PCR 10", func(a *attester) string {
			return a.certifyKey("info", "pcr10", nil, nil)
		}),
		attStep("CertifyKey TPM_KEY12 bound to PCR 16", func(a *attester) string {
			return a.certifyKey("info", "pcr16", nil, nil)
		}),
		attStep("CertifyKey TPM_KEY12 released at locality 0", func(a *attester) string {
			return a.certifyKey("info", "loc0", nil, nil)
		}),
		attStep("Quote2 at locality 1 with a key released at locality 0", func(a *attester) string {
			return a.quote2("loc0", nil, 1, sel10, false)
		}),
		attStep("Quote with PCR-bound keys after PCR 16 changes", func(a *attester) string {
			do(a.tr, ordExtend, u32(16), digest1)
			return a.quote("pcr16", nil, sel10) + "; " + a.quote("pcr10", nil, sel10)
		}),
		attStep("CertifyKey2 key bound to PCR 10", func(a *attester) string {
			return a.certifyKey2("info", "pcr10", nil, nil)
		}),
		attStep("CertifyKey PCR-bound key after its PCR changed", func(a *attester) string {
			return a.certifyKey("info", "pcr16", nil, nil)
		}),
		flush("pcr10", "pcr16", "loc0"),
		attStep("MakeIdentity", func(a *attester) string {
			return a.makeIdentity("id", idAuth, label, keyTemplate(false, keyIdentity, 0, 1, esNone, ssSHA1, 2048, nil), false)
		}),
		attStep("MakeIdentity, SRK session OSAP", func(a *attester) string {
			return a.makeIdentity("id2", idAuth, label, keyTemplate(false, keyIdentity, 0, 1, esNone, ssSHA1, 2048, nil), true)
		}),
		attStep("MakeIdentity signing key", func(a *attester) string {
			return a.makeIdentity("x", idAuth, label, keyTemplate(false, keySigning, 0, 1, esNone, ssSHA1, 2048, nil), false)
		}),
		attStep("MakeIdentity migratable", func(a *attester) string {
			return a.makeIdentity("x", idAuth, label, keyTemplate(false, keyIdentity, flagMigratable, 1, esNone, ssSHA1, 2048, nil), false)
		}),
		attStep("MakeIdentity 1024 bits", func(a *attester) string {
			return a.makeIdentity("x", idAuth, label, keyTemplate(false, keyIdentity, 0, 1, esNone, ssSHA1, 1024, nil), false)
		}),
		attStep("MakeIdentity OAEP encryption scheme", func(a *attester) string {
			return a.makeIdentity("x", idAuth, label, keyTemplate(false, keyIdentity, 0, 1, esOAEP, ssSHA1, 2048, nil), false)
		}),
		attStep("MakeIdentity wrong owner secret", func(a *attester) string {
			owner := a.owner
			a.owner = wrong
			defer func() { a.owner = owner }()
			return a.makeIdentity("x", idAuth, label, keyTemplate(false, keyIdentity, 0, 1, esNone, ssSHA1, 2048, nil), false)
		}),
		attStep("MakeIdentity wrong SRK secret", func(a *attester) string {
			srk := a.srk
			a.srk = wrong
			defer func() { a.srk = srk }()
			return a.makeIdentity("x", idAuth, label, keyTemplate(false, keyIdentity, 0, 1, esNone, ssSHA1, 2048, nil), false)
		}),
		attStep("MakeIdentity, identityAuth under the AES-128-CTR ADIP", func(a *attester) string {
			return a.makeIdentityADIP("idaes", idAuth, label, keyTemplate(false, keyIdentity, 0, 1, esNone, ssSHA1, 2048, nil), false, true)
		}),
		attStep("ActivateIdentity of the identity made under AES", func(a *attester) string {
			return a.activate("idaes", idAuth, ekBlobActivate(1, symKey(session), idDigest(a, "idaes"), noPCRs), symKey(session))
		}),
		flush("idaes"),
		attStep("MakeIdentity TPM_KEY12 bound to PCR 10", func(a *attester) string {
			pi := pcrInfoLong(0x1F, sel10, sel10, a.compositeHash(sel10))
			return a.makeIdentity("id12", idAuth, label, keyTemplate(true, keyIdentity, 0, 1, esNone, ssSHA1, 2048, pi), false)
		}),
		attStep("MakeIdentity TPM_KEY bound to PCR 16", func(a *attester) string {
			pi := pcrInfoShortSel([]byte{0, 0, 1}, a.compositeHash([]byte{0, 0, 1}))
			return a.makeIdentity("id11", idAuth, label, keyTemplate(false, keyIdentity, 0, 1, esNone, ssSHA1, 2048, pi), false)
		}),
		flush("id12", "id11"),
		attStep("MakeIdentity AUTH1", func(a *attester) string {
			s, _ := a.osap(etOwner, 0, a.owner)
			if s == nil {
				return "no session"
			}
			p := append(append(adip(s, s.nonceEven, idAuth), label...), keyTemplate(false, keyIdentity, 0, 1, esNone, ssSHA1, 2048, nil)...)
			r, _ := a.auth1(s, nil, false, ordMakeIdentity, nil, p)
			return r
		}),
		attStep("MakeIdentity owner session OIAP", func(a *attester) string {
			s1, _ := a.oiap()
			s2, _ := a.oiap()
			if s1 == nil || s2 == nil {
				return "no session"
			}
			p := append(append(append([]byte{}, idAuth...), label...), keyTemplate(false, keyIdentity, 0, 1, esNone, ssSHA1, 2048, nil)...)
			r, _ := a.auth2(s1, a.srk, s2, a.owner, ordMakeIdentity, nil, p)
			return r
		}),
		resetLock,
		attStep("Quote with the identity key", func(a *attester) string { return a.quote("id", idAuth, sel10) }),
		attStep("Quote2 with the identity key", func(a *attester) string { return a.quote2("id", idAuth, 0, sel10, true) }),
		attStep("CertifyKey storage key by the identity key", func(a *attester) string {
			return a.certifyKey("id", "storage", idAuth, keyAuth)
		}),
		attStep("CertifyKey migratable key by the identity key", func(a *attester) string {
			return a.certifyKey("id", "bind", idAuth, keyAuth)
		}),
		attStep("CertifyKey2 migratable key by the identity key", func(a *attester) string {
			return a.certifyKey2("id", "bind", idAuth, keyAuth)
		}),
		attStep("CertifyKey2 storage key by the identity key", func(a *attester) string {
			return a.certifyKey2("id", "storage", idAuth, keyAuth)
		}),
		attStep("ActivateIdentity TPM_EK_BLOB", func(a *attester) string {
			return a.activate("id", idAuth, ekBlobActivate(1, symKey(session), idDigest(a, "id"), noPCRs), symKey(session))
		}),
		attStep("ActivateIdentity TPM_ASYM_CA_CONTENTS", func(a *attester) string {
			return a.activate("id", idAuth, append(symKey(session[:8]), idDigest(a, "id")...), symKey(session[:8]))
		}),
		attStep("ActivateIdentity bound to PCR 10", func(a *attester) string {
			pi := append(append(u16(3), sel10...), 0x1F)
			pi = append(pi, sha1Of(u16(3), sel10, u32(20), a.pcrValues(sel10))...)
			return a.activate("id", idAuth, ekBlobActivate(1, symKey(session), idDigest(a, "id"), pi), symKey(session))
		}),
		attStep("ActivateIdentity wrong PCR digest", func(a *attester) string {
			pi := append(append(append(u16(3), sel10...), 0x1F), digest1...)
			return a.activate("id", idAuth, ekBlobActivate(1, symKey(session), idDigest(a, "id"), pi), symKey(session))
		}),
		attStep("ActivateIdentity locality 2 only", func(a *attester) string {
			pi := append(append(append(u16(3), 0, 0, 0), 0x04), make([]byte, 20)...)
			return a.activate("id", idAuth, ekBlobActivate(1, symKey(session), idDigest(a, "id"), pi), symKey(session))
		}),
		attStep("ActivateIdentity locality selection 0", func(a *attester) string {
			pi := append(append(append(u16(3), 0, 0, 0), 0), make([]byte, 20)...)
			return a.activate("id", idAuth, ekBlobActivate(1, symKey(session), idDigest(a, "id"), pi), symKey(session))
		}),
		attStep("ActivateIdentity ekType 2", func(a *attester) string {
			return a.activate("id", idAuth, ekBlobActivate(2, symKey(session), idDigest(a, "id"), noPCRs), symKey(session))
		}),
		attStep("ActivateIdentity another identity's digest", func(a *attester) string {
			return a.activate("id", idAuth, ekBlobActivate(1, symKey(session), idDigest(a, "id2"), noPCRs), symKey(session))
		}),
		attStep("ActivateIdentity truncated blob", func(a *attester) string {
			b := ekBlobActivate(1, symKey(session), idDigest(a, "id"), noPCRs)
			return a.activate("id", idAuth, b[:len(b)-10], symKey(session))
		}),
		attStep("ActivateIdentity garbage blob", func(a *attester) string {
			return a.activate("id", idAuth, nil, nil)
		}),
		attStep("ActivateIdentity with a signing key", func(a *attester) string {
			return a.activate("sign", keyAuth, ekBlobActivate(1, symKey(session), idDigest(a, "sign"), noPCRs), symKey(session))
		}),
		attStep("ActivateIdentity wrong identity secret", func(a *attester) string {
			return a.activate("id", wrong, ekBlobActivate(1, symKey(session), idDigest(a, "id"), noPCRs), symKey(session))
		}),
		resetLock,
		attStep("ActivateIdentity wrong owner secret", func(a *attester) string {
			owner := a.owner
			a.owner = wrong
			defer func() { a.owner = owner }()
			return a.activate("id", idAuth, ekBlobActivate(1, symKey(session), idDigest(a, "id"), noPCRs), symKey(session))
		}),
		attStep("ActivateIdentity AUTH1, identity key needs authorization", func(a *attester) string {
			blob, err := rsa.EncryptOAEP(sha1.New(), rand.Reader, a.ek, ekBlobActivate(1, symKey(session), idDigest(a, "id"), noPCRs), []byte("TCPA"))
			if err != nil {
				return err.Error()
			}
			s, _ := a.oiap()
			if s == nil {
				return "no session"
			}
			r, _ := a.auth1(s, a.owner, false, ordActivateIdentity, a.handle("id"), append(u32(uint32(len(blob))), blob...))
			return r
		}),
		attStep("ActivateIdentity unloaded key", func(a *attester) string {
			return a.activate("none", idAuth, ekBlobActivate(1, symKey(session), idDigest(a, "id"), noPCRs), symKey(session))
		}),
		attStep("CAP_ORD of the attestation ordinals", func(a *attester) string {
			var s string
			for _, o := range []uint32{ordQuote, ordQuote2, ordCertifyKey, ordCertifyKey2, ordMakeIdentity, ordActivateIdentity} {
				rc, out, e := do(a.tr, ordGetCapability, capArgs(1, u32(o))...)
				s += e + fmt.Sprintf("%#x: rc=%#x %x; ", o, rc, out)
			}
			return s
		}),
	}
}

// TestSwtpm12Attest compares Quote, Quote2, CertifyKey, MakeIdentity and
// ActivateIdentity: the keys differ, so the steps compare response
// codes, the structures both must build alike (PCR composites, quote
// and certify infos but for the key digests), and whether each side's
// signatures verify with its own keys; ActivateIdentity must hand back
// the session key the test encrypted to each side's EK.
func TestSwtpm12Attest(t *testing.T) {
	pair := ownedPair(t)
	sides := []*attester{{pair[0], map[string]*attKey{}}, {pair[1], map[string]*attKey{}}}
	runClientSteps(t, sides, attestSteps())
}
