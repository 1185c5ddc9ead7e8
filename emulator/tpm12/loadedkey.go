package tpm12

// Loaded keys: the key slots of Part 1 §25 and their handles (Part 2
// §4.5, resource type TPM_RT_KEY). Entry points for the commands that use
// keys:
//
//   - (*TPM).loadedKey(h): the key a handle names, the SRK (khSRK)
//     included; TPM_INVALID_KEYHANDLE for a handle nothing is loaded at.
//   - (*loadedKey).checkPCRs(t): the key's PCR binding (digestAtRelease,
//     localityAtRelease), TPM_WRONGPCRVAL when it does not hold.
//   - (*TPM).authorizeKey(c, i, k): the i-th session of c against the
//     key's usage authData (OIAP, or OSAP bound to the key).
//   - (*TPM).wrapKey(parent, key, asym) and (*TPM).unwrapKey(parent, key):
//     the TPM_STORE_ASYMKEY of a key encrypted to, and decrypted by, a
//     storage parent (Part 2 §10.6).
//   - (*TPM).addKey(k) and (*TPM).evictKey(h): the slot table.
//
// _TPM_Init (Reset) and OwnerClear flush loaded keys; SaveState keeps
// them for Startup(ST_STATE) (saveKeys, restoreKeys; doc.go).

import (
	"crypto/hmac"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/x509"
	"encoding/binary"
	"fmt"
	"math/big"
	"slices"
)

// Key usages (Part 2 §5.8), the flags a key carries (§5.10), its
// authDataUsage values (§5.9) and the payload type of a stored key
// (§5.6).
const (
	keyUsageSigning   uint16 = 0x0010 // TPM_KEY_SIGNING
	keyUsageIdentity  uint16 = 0x0012 // TPM_KEY_IDENTITY
	keyUsageAuthChg   uint16 = 0x0013 // TPM_KEY_AUTHCHANGE
	keyUsageBind      uint16 = 0x0014 // TPM_KEY_BIND
	keyUsageLegacy    uint16 = 0x0015 // TPM_KEY_LEGACY
	keyUsageMigrate   uint16 = 0x0016 // TPM_KEY_MIGRATE
	keyFlagRedirect   uint32 = 0x00000001
	keyFlagVolatile   uint32 = 0x00000004
	keyFlagPCRIgnored uint32 = 0x00000008 // TPM_PCRIGNOREDONREAD
	keyFlagMigrateAut uint32 = 0x00000010 // migrateAuthority
	authNever         uint8  = 0x00       // TPM_AUTH_NEVER
	authAlways        uint8  = 0x01       // TPM_AUTH_ALWAYS
	authPrivUseOnly   uint8  = 0x11       // TPM_AUTH_PRIV_USE_ONLY
	ptAsym            uint8  = 0x01       // TPM_PT_ASYM
)

// loadedKey is one key in a slot: the TPM_KEY or TPM_KEY12 it was loaded
// from, as parsed, and what its encData held.
type loadedKey struct {
	handle uint32
	key    *tpmKey
	priv   *rsa.PrivateKey
	// usageAuth and migrationAuth are TPM_STORE_ASYMKEY's.
	usageAuth, migrationAuth digest
	// pcr is key.PCRInfo decoded, nil for a key bound to no PCRs.
	pcr *pcrInfo
	// parent is the handle of the key it was loaded under; 0 for the
	// SRK.
	parent uint32
}

// isSRK reports whether k is the storage root key.
func (k *loadedKey) isSRK() bool { return k.handle == khSRK }

// loadedKey returns the key handle h names: a loaded key or the SRK.
// The other reserved handles answer as in libtpms: the EK is not a key
// to use by handle (TPM_KEYNOTFOUND), the owner, operator, revoke,
// transport and admin handles are no keys at all (TPM_INVALID_RESOURCE).
func (t *TPM) loadedKey(h uint32) (*loadedKey, error) {
	switch {
	case h == khSRK && t.ps.SRK != nil:
		priv, pub, err := t.srkKey()
		if err != nil {
			return nil, err
		}
		return &loadedKey{handle: khSRK, key: pub, priv: priv, usageAuth: t.ps.SRK.Auth}, nil
	case h == khSRK || h == khEK:
		return nil, rcE(rcKeyNotFound, "key handle %#x", h)
	case h > khSRK && h < khEK:
		return nil, rcE(rcInvalidResource, "key handle %#x", h)
	}
	if k := t.keys[h]; k != nil {
		return k, nil
	}
	return nil, rcE(rcInvalidKeyHandle, "key handle %#x", h)
}

// keyHandles lists the loaded keys' handles in ascending order.
func (t *TPM) keyHandles() []uint32 {
	hs := make([]uint32, 0, len(t.keys))
	for h := range t.keys {
		hs = append(hs, h)
	}
	slices.Sort(hs)
	return hs
}

// addKey puts k in a free slot under a fresh handle. Handles are random,
// as libtpms makes them, never 0 and never in the 0x40xxxxxx range of
// the reserved key handles. A full table is TPM_NOSPACE.
func (t *TPM) addKey(k *loadedKey) (uint32, error) {
	if len(t.keys) >= keySlotsMax {
		return 0, rcE(rcNoSpace, "%d keys loaded", len(t.keys))
	}
	var b [4]byte
	for {
		t.randBytes(b[:])
		h := binary.BigEndian.Uint32(b[:])
		if h == 0 || h&0xFF000000 == 0x40000000 || t.keys[h] != nil {
			continue
		}
		k.handle = h
		t.keys[h] = k
		return h, nil
	}
}

// evictKey frees the slot of the loaded key h and ends the OSAP
// sessions bound to it (Part 3 §22.1 action 8).
func (t *TPM) evictKey(h uint32) error {
	if t.keys[h] == nil {
		return rcE(rcInvalidKeyHandle, "key handle %#x", h)
	}
	delete(t.keys, h)
	for sh, s := range t.sessions {
		if s.pid == pidOSAP && s.entityType == etKeyHandle && s.entityValue == h {
			delete(t.sessions, sh)
		}
	}
	return nil
}

// checkPCRs is the PCR check of Part 1 §25.1 before a key is used: the
// PCRs releasePCRSelection names must compose to digestAtRelease and,
// for a TPM_KEY12, the command's locality must be in localityAtRelease.
// libtpms answers either failure with TPM_WRONGPCRVAL.
func (k *loadedKey) checkPCRs(t *TPM) error {
	p := k.pcr
	if p == nil {
		return nil
	}
	if len(p.Release.selected()) != 0 && t.compositeHash(p.Release) != p.DigestAtRelease {
		return rcE(rcWrongPCRVal, "PCRs differ from the key's digestAtRelease")
	}
	if p.Long && p.LocalityAtRelease != 0x1F && p.LocalityAtRelease&localityBit(t.locality) == 0 {
		return rcE(rcWrongPCRVal, "locality %d not in the key's localityAtRelease", t.locality)
	}
	return nil
}

// keyEntity is the entity type and value an OSAP session bound to k
// records (session.go's osap records the SRK as TPM_ET_SRK, however it
// was named).
func (k *loadedKey) keyEntity() (uint8, uint32) {
	if k.isSRK() {
		return etSRK, khSRK
	}
	return etKeyHandle, k.handle
}

// authorizeKey checks the i-th authorization session of c against k's
// usage authData: an OIAP session, or an OSAP session bound to k.
func (t *TPM) authorizeKey(c *call, i int, k *loadedKey) error {
	et, ev := k.keyEntity()
	return t.authorize(c, i, k.usageAuth, et, ev)
}

// storeAsymKey is TPM_STORE_ASYMKEY, Part 2 §10.6: what a key's encData
// holds, encrypted to its parent. privKey (TPM_STORE_PRIVKEY, §10.7)
// holds the prime p; the other values follow from it and the modulus.
type storeAsymKey struct {
	Payload                  uint8
	UsageAuth, MigrationAuth digest
	PubDataDigest            digest
	PrivKey                  []byte
}

func (s *storeAsymKey) marshal(w *writer) {
	w.u8(s.Payload)
	w.bytes(s.UsageAuth[:])
	w.bytes(s.MigrationAuth[:])
	w.bytes(s.PubDataDigest[:])
	w.sized(s.PrivKey)
}

func (s *storeAsymKey) unmarshal(r *reader) {
	s.Payload = r.u8()
	s.UsageAuth = r.digest()
	s.MigrationAuth = r.digest()
	s.PubDataDigest = r.digest()
	s.PrivKey = r.sized(maxPubKeyBytes)
}

// pubDataDigest is the SHA-1 of k without its encData (neither the size
// nor the data), the pubDataDigest of TPM_STORE_ASYMKEY.
func (k *tpmKey) pubDataDigest() digest {
	c := *k
	c.EncData = nil
	w := &writer{}
	c.marshal(w)
	return sha1.Sum(w.b[:len(w.b)-4])
}

// rsaExponent is the public exponent of an RSA key's parameters: 65537
// when the exponent field is empty.
func rsaExponent(p *rsaKeyParms) (int, bool) {
	if len(p.Exponent) == 0 {
		return defaultRSAExponent, true
	}
	e := new(big.Int).SetBytes(p.Exponent)
	if !e.IsInt64() || e.Int64() < 3 || e.Int64() > 1<<31-1 || e.Bit(0) == 0 {
		return 0, false
	}
	return int(e.Int64()), true
}

// wrapKey sets key.EncData to asym, with asym's pubDataDigest computed
// for key, OAEP-encrypted to the storage key parent.
func (t *TPM) wrapKey(parent *loadedKey, key *tpmKey, asym *storeAsymKey) error {
	if parent.key.KeyUsage != keyUsageStorage {
		return rcE(rcInvalidKeyUsage, "parent usage %#x", parent.key.KeyUsage)
	}
	asym.Payload = ptAsym
	asym.PubDataDigest = key.pubDataDigest()
	w := &writer{}
	asym.marshal(w)
	ct, err := rsa.EncryptOAEP(sha1.New(), t.rand, &parent.priv.PublicKey, w.b, oaepLabel)
	if err != nil {
		return rcE(rcEncryptError, "wrapping a key: %v", err)
	}
	key.EncData = ct
	return nil
}

// unwrapKey decrypts key's encData with the storage key parent and
// rebuilds the private key. As in libtpms, a blob that does not decrypt
// to a TPM_STORE_ASYMKEY whose prime divides the modulus is
// TPM_DECRYPT_ERROR, one of another payload TPM_INVALID_STRUCTURE, and
// one of another key (pubDataDigest) TPM_AUTHFAIL.
func (t *TPM) unwrapKey(parent *loadedKey, key *tpmKey) (*loadedKey, error) {
	if parent.key.KeyUsage != keyUsageStorage {
		return nil, rcE(rcInvalidKeyUsage, "parent usage %#x", parent.key.KeyUsage)
	}
	rp, err := key.rsaParms()
	if err != nil {
		return nil, err
	}
	e, ok := rsaExponent(rp)
	if !ok {
		return nil, rcE(rcBadKeyProperty, "exponent %x", rp.Exponent)
	}
	pt, err := t.decryptOAEP(parent.priv, key.EncData)
	if err != nil {
		return nil, err
	}
	var asym storeAsymKey
	r := &reader{b: pt}
	asym.unmarshal(r)
	if r.short || r.err != nil || len(r.b) != 0 {
		return nil, rcE(rcDecryptError, "encData is no TPM_STORE_ASYMKEY")
	}
	if asym.Payload != ptAsym {
		return nil, rcE(rcInvalidStructure, "payload %#x", asym.Payload)
	}
	want := key.pubDataDigest()
	if !hmac.Equal(asym.PubDataDigest[:], want[:]) {
		// libtpms compares the digests as it compares HMACs.
		return nil, rcE(rcAuthFail, "pubDataDigest of another key")
	}
	priv, err := rsaFromPrime(key.PubKey, e, asym.PrivKey)
	if err != nil {
		return nil, err
	}
	k := &loadedKey{key: key, priv: priv, usageAuth: asym.UsageAuth, migrationAuth: asym.MigrationAuth, parent: parent.handle}
	if len(key.PCRInfo) != 0 {
		p, err := parseKeyPCRInfo(key)
		if err != nil {
			return nil, err
		}
		k.pcr = p
	}
	return k, nil
}

// parseKeyPCRInfo decodes the pcrInfo of key (key.go).
func parseKeyPCRInfo(key *tpmKey) (*pcrInfo, error) {
	return decodeKeyPCRInfo(key.Tag == tagKey12, key.PCRInfo)
}

// rsaFromPrime rebuilds an RSA private key from its modulus, public
// exponent and one prime factor.
func rsaFromPrime(modulus []byte, e int, prime []byte) (*rsa.PrivateKey, error) {
	n := new(big.Int).SetBytes(modulus)
	p := new(big.Int).SetBytes(prime)
	if p.Sign() == 0 || n.Sign() == 0 {
		return nil, rcE(rcDecryptError, "empty prime or modulus")
	}
	q, m := new(big.Int).QuoRem(n, p, new(big.Int))
	if m.Sign() != 0 || q.Cmp(big.NewInt(1)) <= 0 || p.Cmp(big.NewInt(1)) <= 0 {
		return nil, rcE(rcDecryptError, "prime does not divide the modulus")
	}
	one := big.NewInt(1)
	phi := new(big.Int).Mul(new(big.Int).Sub(p, one), new(big.Int).Sub(q, one))
	d := new(big.Int).ModInverse(big.NewInt(int64(e)), phi)
	if d == nil {
		return nil, rcE(rcDecryptError, "exponent not invertible")
	}
	k := &rsa.PrivateKey{PublicKey: rsa.PublicKey{N: n, E: e}, D: d, Primes: []*big.Int{p, q}}
	if err := k.Validate(); err != nil {
		return nil, rcE(rcDecryptError, "rebuilt key: %v", err)
	}
	k.Precompute()
	return k, nil
}

// keyPrime is the TPM_STORE_PRIVKEY of k: its first prime, as long as
// half the modulus.
func keyPrime(k *rsa.PrivateKey) []byte {
	return k.Primes[0].FillBytes(make([]byte, (k.N.BitLen()+15)/16))
}

// savedKey is a loaded key as TPM_SaveState keeps it for
// Startup(ST_STATE) (Part 3 §3.3 action 5): libtpms keeps every loaded
// key, under the same handle.
type savedKey struct {
	Handle                   uint32
	Blob                     []byte // TPM_KEY or TPM_KEY12, encData included
	Priv                     []byte // PKCS #1 DER
	UsageAuth, MigrationAuth digest
	Parent                   uint32
}

// saveKeys is the loaded keys as SaveState keeps them.
func (t *TPM) saveKeys() []savedKey {
	var out []savedKey
	for _, h := range t.keyHandles() {
		k := t.keys[h]
		w := &writer{}
		k.key.marshal(w)
		out = append(out, savedKey{Handle: h, Blob: w.b, Priv: x509.MarshalPKCS1PrivateKey(k.priv),
			UsageAuth: k.usageAuth, MigrationAuth: k.migrationAuth, Parent: k.parent})
	}
	return out
}

// restoreKeys decodes saved keys; it is how a state blob's saved keys
// are checked, and how Startup(ST_STATE) reloads them.
func restoreKeys(saved []savedKey) (map[uint32]*loadedKey, error) {
	if len(saved) > keySlotsMax {
		return nil, fmt.Errorf("%d saved keys", len(saved))
	}
	keys := map[uint32]*loadedKey{}
	for _, s := range saved {
		var key tpmKey
		r := &reader{b: s.Blob}
		key.unmarshal(r)
		if r.short || r.err != nil || len(r.b) != 0 {
			return nil, fmt.Errorf("saved key %#x: TPM_KEY", s.Handle)
		}
		priv, err := x509.ParsePKCS1PrivateKey(s.Priv)
		if err != nil {
			return nil, fmt.Errorf("saved key %#x: %v", s.Handle, err)
		}
		k := &loadedKey{handle: s.Handle, key: &key, priv: priv, usageAuth: s.UsageAuth, migrationAuth: s.MigrationAuth, parent: s.Parent}
		if len(key.PCRInfo) != 0 {
			if k.pcr, err = parseKeyPCRInfo(&key); err != nil {
				return nil, fmt.Errorf("saved key %#x: pcrInfo", s.Handle)
			}
		}
		if s.Handle == 0 || s.Handle&0xFF000000 == 0x40000000 || keys[s.Handle] != nil {
			return nil, fmt.Errorf("saved key handle %#x", s.Handle)
		}
		keys[s.Handle] = k
	}
	return keys, nil
}
