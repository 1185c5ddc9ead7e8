package tpm12

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"math/big"
	"slices"
)

// Encryption and signature schemes of keys beyond those in encoding.go,
// Part 2 §4.9, §4.10, and the tags and payload of §3.1, §5.6.
const (
	esNone           uint16 = 0x0001 // TPM_ES_NONE
	esRSAESPKCSv15   uint16 = 0x0002 // TPM_ES_RSAESPKCSv15
	ssRSASSASHA1     uint16 = 0x0002 // TPM_SS_RSASSAPKCS1v15_SHA1
	ssRSASSADER      uint16 = 0x0003 // TPM_SS_RSASSAPKCS1v15_DER
	ssRSASSAINFO     uint16 = 0x0004 // TPM_SS_RSASSAPKCS1v15_INFO
	authNoReadPubKey uint8  = 0x03   // TPM_NO_READ_PUBKEY_AUTH
	tagSignInfo      uint16 = 0x0005 // TPM_TAG_SIGNINFO
	ptBind           uint8  = 0x02   // TPM_PT_BIND
)

// RSA key sizes this TPM makes and loads. libtpms goes up to 2048 bits,
// in steps of 16 so that each prime is whole bytes, and down to what
// OpenSSL makes (512); Go's crypto/rsa refuses to use keys under 1024
// bits, so those are TPM_BAD_KEY_PROPERTY here.
const (
	rsaBitsMin = 1024
	rsaBitsMax = 2048
)

// legalExponents are the public exponents libtpms makes keys with.
var legalExponents = []int{3, 5, 7, 17, 257, defaultRSAExponent}

// generateRSA makes an RSA key of bits bits and public exponent e:
// crypto/rsa's key generation for 65537, which is all it makes, and
// two crypto/rand primes of bits/2 bits each (their top two bits set,
// so the modulus has bits bits) for the other exponents.
func (t *TPM) generateRSA(bits, e int) (*rsa.PrivateKey, error) {
	if e == defaultRSAExponent {
		return rsa.GenerateKey(t.rand, bits)
	}
	one, be := big.NewInt(1), big.NewInt(int64(e))
	for {
		p, err := rand.Prime(t.rand, bits/2)
		if err != nil {
			return nil, err
		}
		q, err := rand.Prime(t.rand, bits/2)
		if err != nil {
			return nil, err
		}
		p1, q1 := new(big.Int).Sub(p, one), new(big.Int).Sub(q, one)
		if p.Cmp(q) == 0 || new(big.Int).GCD(nil, nil, be, p1).Cmp(one) != 0 || new(big.Int).GCD(nil, nil, be, q1).Cmp(one) != 0 {
			continue
		}
		n := new(big.Int).Mul(p, q)
		if n.BitLen() != bits {
			continue
		}
		d := new(big.Int).ModInverse(be, new(big.Int).Mul(p1, q1))
		k := &rsa.PrivateKey{PublicKey: rsa.PublicKey{N: n, E: e}, D: d, Primes: []*big.Int{p, q}}
		if err := k.Validate(); err != nil {
			return nil, err
		}
		k.Precompute()
		return k, nil
	}
}

// checkKeyProperties is the key-type check of TPM_CreateWrapKey and
// TPM_LoadKey(2) (Part 3 §10.4 action 3, §10.5 action 3; the mandatory
// scheme mixes of Part 2 §5.8.1), as libtpms makes it: TPM_BAD_KEY_PROPERTY
// for what the TPM cannot make or use.
func checkKeyProperties(k *tpmKey) (*rsaKeyParms, error) {
	rp, err := k.rsaParms()
	if err != nil {
		return nil, err
	}
	bad := func(what string) (*rsaKeyParms, error) {
		return nil, rcE(rcBadKeyProperty, "usage %#x: %s", k.KeyUsage, what)
	}
	if rp.KeyLength > rsaBitsMax {
		return bad("key too long")
	}
	if rp.NumPrimes != 2 {
		return bad("not two primes")
	}
	ap := &k.AlgorithmParms
	switch k.KeyUsage {
	case keyUsageSigning:
		if ap.EncScheme != esNone || ap.SigScheme != ssRSASSASHA1 && ap.SigScheme != ssRSASSADER && ap.SigScheme != ssRSASSAINFO {
			return bad("signing schemes")
		}
	case keyUsageStorage, keyUsageMigrate:
		if ap.EncScheme != esRSAESOAEPSHA1MGF1 || ap.SigScheme != ssNone || rp.KeyLength < 2048 || !defaultExponent(rp.Exponent) {
			return bad("storage parameters")
		}
	case keyUsageIdentity:
		if ap.EncScheme != esNone || ap.SigScheme != ssRSASSASHA1 || rp.KeyLength < 2048 || !defaultExponent(rp.Exponent) {
			return bad("identity parameters")
		}
	case keyUsageAuthChg:
		if ap.EncScheme != esRSAESOAEPSHA1MGF1 || ap.SigScheme != ssNone || rp.KeyLength < 512 {
			return bad("authchange parameters")
		}
	case keyUsageBind:
		if ap.EncScheme != esRSAESOAEPSHA1MGF1 && ap.EncScheme != esRSAESPKCSv15 || ap.SigScheme != ssNone {
			return bad("bind schemes")
		}
	case keyUsageLegacy:
		if ap.EncScheme != esRSAESOAEPSHA1MGF1 && ap.EncScheme != esRSAESPKCSv15 ||
			ap.SigScheme != ssRSASSASHA1 && ap.SigScheme != ssRSASSADER {
			return bad("legacy schemes")
		}
	default:
		return bad("unknown usage")
	}
	if rp.KeyLength < rsaBitsMin {
		return bad("key shorter than 1024 bits")
	}
	return rp, nil
}

// defaultExponent is libtpms' test of an exponent field a storage or
// identity key may have: empty, or 01 00 01 followed by zeros.
func defaultExponent(e []byte) bool {
	if len(e) == 0 {
		return true
	}
	if len(e) < 3 || e[0] != 1 || e[1] != 0 || e[2] != 1 {
		return false
	}
	for _, b := range e[3:] {
		if b != 0 {
			return false
		}
	}
	return true
}

// useKey returns the key handle h names, checked for use (Part 1 §25.1):
// its PCR binding must hold, unless the use only reads the public key
// and the key has pcrIgnoredOnRead.
func (t *TPM) useKey(h uint32, readOnly bool) (*loadedKey, error) {
	k, err := t.loadedKey(h)
	if err != nil {
		return nil, err
	}
	if readOnly && k.key.KeyFlags&keyFlagPCRIgnored != 0 {
		return k, nil
	}
	if err := k.checkPCRs(t); err != nil {
		return nil, err
	}
	return k, nil
}

// authorizeKeyUse authorizes a command that may come with or without a
// session: with one, against k's usageAuth; without, only for a key
// whose authDataUsage is TPM_AUTH_NEVER (or one of noAuth), else
// TPM_AUTHFAIL.
func (t *TPM) authorizeKeyUse(c *call, k *loadedKey, noAuth ...uint8) error {
	if len(c.auth) != 0 {
		return t.authorizeKey(c, 0, k)
	}
	if k.key.AuthDataUsage == authNever {
		return nil
	}
	for _, u := range noAuth {
		if k.key.AuthDataUsage == u {
			return nil
		}
	}
	return rcE(rcAuthFail, "key %#x needs authorization", k.handle)
}

type createWrapKeyIn struct {
	ParentHandle      uint32
	DataUsageAuth     digest
	DataMigrationAuth digest
	KeyInfo           tpmKey
}

func (p *createWrapKeyIn) unmarshal(r *reader) {
	p.ParentHandle = r.u32()
	p.DataUsageAuth = r.digest()
	p.DataMigrationAuth = r.digest()
	p.KeyInfo.unmarshal(r)
}

// createWrapKey is TPM_CreateWrapKey, Part 3 §10.4: a new RSA key as
// keyInfo describes it, wrapped by the storage key parentHandle, whose
// OSAP session also carries the new key's secrets under its ADIP:
// usageAuth with nonceEven, migrationAuth with nonceOdd (Part 3 §10.4
// actions 10 and 11). The session ends with the command.
func (t *TPM) createWrapKey(c *call, in *createWrapKeyIn) (*tpmKey, error) {
	parent, err := t.useKey(in.ParentHandle, false)
	if err != nil {
		return nil, err
	}
	if s := t.sessions[c.auth[0].handle]; s != nil && s.pid != pidOSAP {
		return nil, rcE(rcBadMode, "TPM_CreateWrapKey needs an OSAP session")
	}
	if err := t.authorizeKey(c, 0, parent); err != nil {
		return nil, err
	}
	ki := &in.KeyInfo
	rp, err := checkKeyProperties(ki)
	if err != nil {
		return nil, err
	}
	switch {
	case parent.key.KeyUsage != keyUsageStorage:
		return nil, rcE(rcInvalidKeyUsage, "parent usage %#x", parent.key.KeyUsage)
	case parent.key.KeyFlags&keyFlagMigratable != 0 && ki.KeyFlags&keyFlagMigratable == 0:
		return nil, rcE(rcInvalidKeyUsage, "non-migratable key under a migratable parent")
	case ki.KeyUsage == keyUsageIdentity || ki.KeyUsage == keyUsageAuthChg:
		return nil, rcE(rcInvalidKeyUsage, "usage %#x", ki.KeyUsage)
	case ki.KeyFlags&keyFlagMigrateAut != 0:
		return nil, rcE(rcInvalidKeyUsage, "migrateAuthority")
	}
	a := &c.auth[0]
	usageAuth := adipDecrypt(a.sess, in.DataUsageAuth)
	migrationAuth := adipDecryptWith(a.sess, a.nonceOdd, in.DataMigrationAuth)
	a.cont = false
	if rp.KeyLength%16 != 0 {
		return nil, rcE(rcBadKeyProperty, "%d bits", rp.KeyLength)
	}
	e, ok := rsaExponent(rp)
	if !ok || !slices.Contains(legalExponents, e) {
		return nil, rcE(rcBadKeyProperty, "exponent %x", rp.Exponent)
	}
	wrapped := *ki
	if len(ki.PCRInfo) != 0 {
		info, err := parseKeyPCRInfo(ki)
		if err != nil {
			return nil, err
		}
		if info.Long {
			info.LocalityAtCreation = localityBit(t.locality)
			info.DigestAtCreation = t.compositeHash(info.Creation)
		} else {
			info.DigestAtCreation = t.compositeHash(info.Release)
		}
		w := &writer{}
		info.marshal(w)
		wrapped.PCRInfo = w.b
	}
	priv, err := t.generateRSA(int(rp.KeyLength), e)
	if err != nil {
		return nil, rcE(rcBadKeyProperty, "%d-bit key: %v", rp.KeyLength, err)
	}
	wrapped.PubKey = priv.N.FillBytes(make([]byte, rp.KeyLength/8))
	asym := &storeAsymKey{UsageAuth: usageAuth, MigrationAuth: t.ps.TPMProof, PrivKey: keyPrime(priv)}
	if ki.KeyFlags&keyFlagMigratable != 0 {
		asym.MigrationAuth = migrationAuth
	}
	if err := t.wrapKey(parent, &wrapped, asym); err != nil {
		return nil, err
	}
	return &wrapped, nil
}

type loadKeyIn struct {
	ParentHandle uint32
	InKey        tpmKey
}

func (p *loadKeyIn) unmarshal(r *reader) {
	p.ParentHandle = r.u32()
	p.InKey.unmarshal(r)
}

// handleOut is a response of one handle.
type handleOut struct{ Handle uint32 }

func (h *handleOut) marshal(w *writer) { w.u32(h.Handle) }

// loadKey2 is TPM_LoadKey2, Part 3 §10.5: the key inKey is decrypted with
// the storage key parentHandle, checked, and put in a slot. The new
// handle is a handle (returned, but not covered by the response HMAC).
func (t *TPM) loadKey2(c *call, in *loadKeyIn) (*handleOut, error) {
	parent, err := t.useKey(in.ParentHandle, false)
	if err != nil {
		return nil, err
	}
	if err := t.authorizeKeyUse(c, parent); err != nil {
		return nil, err
	}
	if parent.key.KeyUsage != keyUsageStorage {
		return nil, rcE(rcInvalidKeyUsage, "parent usage %#x", parent.key.KeyUsage)
	}
	key := &in.InKey
	if _, err := checkKeyProperties(key); err != nil {
		return nil, err
	}
	k, err := t.unwrapKey(parent, key)
	if err != nil {
		return nil, err
	}
	switch {
	case key.KeyUsage == keyUsageIdentity && key.KeyFlags&keyFlagMigratable != 0:
		return nil, rcE(rcInvalidKeyUsage, "migratable identity key")
	case key.KeyUsage == keyUsageAuthChg:
		return nil, rcE(rcInvalidKeyUsage, "authchange key")
	case key.KeyFlags&keyFlagMigratable == 0 && k.migrationAuth != t.ps.TPMProof:
		return nil, rcE(rcInvalidKeyUsage, "non-migratable key of another TPM")
	}
	h, err := t.addKey(k)
	if err != nil {
		return nil, err
	}
	return &handleOut{Handle: h}, nil
}

// loadKey is TPM_LoadKey, Part 3 §27.8 (deprecated): TPM_LoadKey2 whose
// handle is an output parameter the response HMAC covers.
func (t *TPM) loadKey(c *call, in *loadKeyIn) (*handleOut, error) {
	return t.loadKey2(c, in)
}

// getPubKey is TPM_GetPubKey, Part 3 §10.6: the TPM_PUBKEY of a loaded
// key or, while readSRKPub is set, of the SRK. Without a session the
// key's authDataUsage must be TPM_AUTH_NEVER or TPM_NO_READ_PUBKEY_AUTH.
func (t *TPM) getPubKey(c *call, in *handleIn) (*pubKey, error) {
	k, err := t.useKey(in.Handle, true)
	if err != nil {
		return nil, err
	}
	if err := t.authorizeKeyUse(c, k, authNoReadPubKey); err != nil {
		return nil, err
	}
	if k.isSRK() && !t.ps.Flags.ReadSRKPub {
		return nil, rcE(rcInvalidKeyHandle, "readSRKPub is clear")
	}
	return k.key.pub(), nil
}

// evictKeyCmd is TPM_EvictKey, Part 3 §27.x (deprecated for
// TPM_FlushSpecific): the loaded key evictHandle is flushed.
func (t *TPM) evictKeyCmd(_ *call, in *handleIn) (*none, error) {
	if err := t.evictKey(in.Handle); err != nil {
		return nil, err
	}
	return &none{}, nil
}

type signIn struct {
	KeyHandle  uint32
	AreaToSign []byte
}

func (p *signIn) unmarshal(r *reader) {
	p.KeyHandle = r.u32()
	p.AreaToSign = r.sized(bufferMax)
}

// sign is TPM_Sign, Part 3 §13.1: a PKCS #1 v1.5 signature by a signing
// or legacy key, of a SHA-1 digest (TPM_SS_RSASSAPKCS1v15_SHA1), of the
// bytes as given (_DER), or of the SHA-1 of a TPM_SIGN_INFO holding them
// and the caller's nonceOdd (_INFO).
func (t *TPM) sign(c *call, in *signIn) (*sizedOut, error) {
	k, err := t.useKey(in.KeyHandle, false)
	if err != nil {
		return nil, err
	}
	if err := t.authorizeKeyUse(c, k); err != nil {
		return nil, err
	}
	if len(in.AreaToSign) == 0 {
		return nil, rcE(rcBadParameter, "nothing to sign")
	}
	if k.key.KeyUsage != keyUsageSigning && k.key.KeyUsage != keyUsageLegacy {
		return nil, rcE(rcInvalidKeyUsage, "key usage %#x", k.key.KeyUsage)
	}
	hash, msg := crypto.SHA1, in.AreaToSign
	switch k.key.AlgorithmParms.SigScheme {
	case ssRSASSASHA1:
		if len(msg) != digestSize {
			return nil, rcE(rcBadParameter, "%d bytes to sign with _SHA1", len(msg))
		}
	case ssRSASSADER:
		if len(msg) > k.priv.Size()-11 {
			return nil, rcE(rcBadParameter, "%d bytes to sign with _DER", len(msg))
		}
		hash = 0
	case ssRSASSAINFO:
		if len(c.auth) == 0 {
			return nil, rcE(rcBadParameter, "_INFO needs nonceOdd")
		}
		w := &writer{}
		w.u16(tagSignInfo)
		w.bytes([]byte("SIGN"))
		w.bytes(c.auth[0].nonceOdd[:])
		w.sized(msg)
		d := sha1.Sum(w.b)
		msg = d[:]
	default:
		return nil, rcE(rcInvalidKeyUsage, "signature scheme %#x", k.key.AlgorithmParms.SigScheme)
	}
	sig, err := rsa.SignPKCS1v15(nil, k.priv, hash, msg)
	if err != nil {
		return nil, rcE(rcFail, "sign: %v", err)
	}
	return &sizedOut{Data: sig}, nil
}

type unBindIn struct {
	KeyHandle uint32
	InData    []byte
}

func (p *unBindIn) unmarshal(r *reader) {
	p.KeyHandle = r.u32()
	p.InData = r.sized(bufferMax)
}

// unBind is TPM_UnBind, Part 3 §13.3: data encrypted to a bind or legacy
// key is decrypted with the key's scheme. A TPM_BOUND_DATA (version
// 1.1, payload TPM_PT_BIND) gives its payload; a legacy key with
// TPM_ES_RSAESPKCSv15 gives the decrypted bytes as they are.
func (t *TPM) unBind(c *call, in *unBindIn) (*sizedOut, error) {
	if len(in.InData) == 0 {
		return nil, rcE(rcBadParameter, "no data")
	}
	k, err := t.useKey(in.KeyHandle, false)
	if err != nil {
		return nil, err
	}
	if err := t.authorizeKeyUse(c, k); err != nil {
		return nil, err
	}
	if k.key.KeyUsage != keyUsageBind && k.key.KeyUsage != keyUsageLegacy {
		return nil, rcE(rcInvalidKeyUsage, "key usage %#x", k.key.KeyUsage)
	}
	var pt []byte
	switch k.key.AlgorithmParms.EncScheme {
	case esRSAESOAEPSHA1MGF1:
		pt, err = t.decryptOAEP(k.priv, in.InData)
	case esRSAESPKCSv15:
		pt, err = rsa.DecryptPKCS1v15(nil, k.priv, in.InData)
		if err != nil {
			err = rcE(rcDecryptError, "PKCS #1 v1.5: %v", err)
		}
	default:
		err = rcE(rcInappropriateEnc, "encryption scheme %#x", k.key.AlgorithmParms.EncScheme)
	}
	if err != nil {
		return nil, err
	}
	if k.key.KeyUsage == keyUsageLegacy && k.key.AlgorithmParms.EncScheme != esRSAESOAEPSHA1MGF1 {
		return &sizedOut{Data: pt}, nil
	}
	// TPM_BOUND_DATA, Part 2 §9.5: TPM_STRUCT_VER, payload, and the
	// payload data filling the rest.
	switch {
	case len(pt) < 4:
		return nil, rcE(rcBadParamSize, "TPM_BOUND_DATA of %d bytes", len(pt))
	case pt[0] != 1 || pt[1] != 1:
		return nil, rcE(rcBadVersion, "TPM_BOUND_DATA version %x", pt[:4])
	case len(pt) < 5:
		return nil, rcE(rcBadParamSize, "TPM_BOUND_DATA without payload")
	case pt[4] != ptBind:
		return nil, rcE(rcInvalidStructure, "payload %#x", pt[4])
	}
	return &sizedOut{Data: pt[5:]}, nil
}
