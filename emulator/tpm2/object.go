package tpm2

import (
	"crypto"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rsa"
	"fmt"
	"math/big"

	gt "github.com/google/go-tpm/tpm2"
)

// Objects: keys, sealed data and sequences (Part 1 §23–27).

type object struct {
	pub        gt.TPMTPublic
	sens       gt.TPMTSensitive
	name       []byte
	qn         []byte // qualified name, Part 1 §16
	hierarchy  uint32
	publicOnly bool
	// external: loaded with LoadExternal; its qualified name is its name
	// (no parent chain vouches for it), as the reference implementation
	// reports it.
	external bool
	seq      *sequence
	key      any // parsed private (or, if publicOnly, public) key
	// pubBytes/sensBytes cache the marshalled areas (see encoded).
	pubBytes, sensBytes []byte
}

func (o *object) attrs() gt.TPMAObject { return o.pub.ObjectAttributes }

// isStorageParent reports a restricted decryption key: a parent that can
// wrap children (Part 1 §25.1).
func (o *object) isStorageParent() bool {
	a := o.attrs()
	return !o.publicOnly && a.Restricted && a.Decrypt && !a.SignEncrypt &&
		(o.pub.Type == gt.TPMAlgRSA || o.pub.Type == gt.TPMAlgECC)
}

// isDerivationParent reports a restricted decryption keyedhash object: a
// parent whose children are derived from its secret (Part 1 §28.2). One
// loaded with LoadExternal is not a parent of any kind.
func (o *object) isDerivationParent() bool {
	a := o.attrs()
	return !o.publicOnly && !o.external && o.seq == nil && a.Restricted && a.Decrypt &&
		o.pub.Type == gt.TPMAlgKeyedHash
}

func (o *object) fillEntity(e *entity) {
	e.obj = o
	e.name = o.name
	if o.seq != nil {
		e.auth = o.seq.auth
		e.userWithAuth, e.noDA = true, true
		return
	}
	e.auth = o.sens.AuthValue.Buffer
	e.policy = o.pub.AuthPolicy.Buffer
	e.policyAlg = o.pub.NameAlg
	a := o.attrs()
	e.userWithAuth = a.UserWithAuth
	e.adminWithPolicy = a.AdminWithPolicy
	e.noDA = a.NoDA
}

// objectName is Part 1 §16: nameAlg || H_nameAlg(TPMT_PUBLIC).
func objectName(pub *gt.TPMTPublic) ([]byte, error) {
	n, err := gt.ObjectName(pub)
	if err != nil {
		return nil, err
	}
	return n.Buffer, nil
}

func qualifiedName(nameAlg gt.TPMIAlgHash, parentQN, name []byte) []byte {
	h, _ := nameAlg.Hash()
	d := h.New()
	d.Write(parentQN)
	d.Write(name)
	return append(u16(uint16(nameAlg)), d.Sum(nil)...)
}

func objectFromBytes(pub, sens []byte, hierarchy uint32) (*object, error) {
	p, err := gt.Unmarshal[gt.TPMTPublic](pub)
	if err != nil {
		return nil, err
	}
	s, err := gt.Unmarshal[gt.TPMTSensitive](sens)
	if err != nil {
		return nil, err
	}
	o := &object{pub: *p, sens: *s, hierarchy: hierarchy}
	if err := o.finish(nil); err != nil {
		return nil, err
	}
	return o, nil
}

// finish computes the name and parses the key material.
func (o *object) finish(parentQN []byte) error {
	name, err := objectName(&o.pub)
	if err != nil {
		return err
	}
	o.name = name
	if parentQN == nil {
		parentQN = u32(o.hierarchy)
	}
	o.qn = qualifiedName(o.pub.NameAlg, parentQN, name)
	if o.external {
		o.qn = name
	}
	if o.publicOnly {
		if o.pub.Type == gt.TPMAlgRSA || o.pub.Type == gt.TPMAlgECC {
			k, err := gt.Pub(o.pub)
			if err != nil {
				return err
			}
			o.key = k
		}
		return nil
	}
	switch o.pub.Type {
	case gt.TPMAlgRSA:
		k, err := rsaFromSensitive(&o.pub, &o.sens)
		if err != nil {
			return err
		}
		o.key = k
	case gt.TPMAlgECC:
		k, err := eccFromSensitive(&o.pub, &o.sens)
		if err != nil {
			return err
		}
		o.key = k
	}
	return nil
}

func rsaFromSensitive(pub *gt.TPMTPublic, sens *gt.TPMTSensitive) (*rsa.PrivateKey, error) {
	parms, err := pub.Parameters.RSADetail()
	if err != nil {
		return nil, err
	}
	uniq, err := pub.Unique.RSA()
	if err != nil {
		return nil, err
	}
	sp, err := sens.Sensitive.RSA()
	if err != nil {
		return nil, err
	}
	n := new(big.Int).SetBytes(uniq.Buffer)
	p := new(big.Int).SetBytes(sp.Buffer)
	if p.Sign() <= 0 || n.Sign() <= 0 {
		return nil, fmt.Errorf("empty RSA key")
	}
	q, rem := new(big.Int).QuoRem(n, p, new(big.Int))
	if rem.Sign() != 0 || q.Cmp(big.NewInt(1)) <= 0 {
		return nil, fmt.Errorf("RSA prime does not divide the modulus")
	}
	e := int(parms.Exponent)
	if e == 0 {
		e = 65537
	}
	return rsaFromPrimes(p, q, e)
}

func rsaFromPrimes(p, q *big.Int, e int) (*rsa.PrivateKey, error) {
	one := big.NewInt(1)
	phi := new(big.Int).Mul(new(big.Int).Sub(p, one), new(big.Int).Sub(q, one))
	d := new(big.Int).ModInverse(big.NewInt(int64(e)), phi)
	if d == nil {
		return nil, fmt.Errorf("RSA exponent not invertible")
	}
	k := &rsa.PrivateKey{
		PublicKey: rsa.PublicKey{N: new(big.Int).Mul(p, q), E: e},
		D:         d,
		Primes:    []*big.Int{p, q},
	}
	k.Precompute()
	if err := k.Validate(); err != nil {
		return nil, err
	}
	return k, nil
}

func curveOf(id gt.TPMECCCurve) (elliptic.Curve, error) {
	switch id {
	case gt.TPMECCNistP256:
		return elliptic.P256(), nil
	case gt.TPMECCNistP384:
		return elliptic.P384(), nil
	case gt.TPMECCNistP521:
		return elliptic.P521(), nil
	}
	return nil, fmt.Errorf("curve 0x%x not implemented", uint16(id))
}

func eccFromSensitive(pub *gt.TPMTPublic, sens *gt.TPMTSensitive) (*ecdsa.PrivateKey, error) {
	parms, err := pub.Parameters.ECCDetail()
	if err != nil {
		return nil, err
	}
	c, err := curveOf(parms.CurveID)
	if err != nil {
		return nil, err
	}
	d, err := sens.Sensitive.ECC()
	if err != nil {
		return nil, err
	}
	size := (c.Params().BitSize + 7) / 8
	if len(d.Buffer) > size {
		return nil, fmt.Errorf("ECC private key too long")
	}
	k, err := ecdsa.ParseRawPrivateKey(c, leftPad(d.Buffer, size))
	if err != nil {
		return nil, err
	}
	uniq, err := pub.Unique.ECC()
	if err != nil {
		return nil, err
	}
	if new(big.Int).SetBytes(uniq.X.Buffer).Cmp(k.X) != 0 || new(big.Int).SetBytes(uniq.Y.Buffer).Cmp(k.Y) != 0 {
		return nil, fmt.Errorf("ECC public point does not match the private key")
	}
	return k, nil
}

func leftPad(b []byte, n int) []byte {
	if len(b) >= n {
		return b
	}
	out := make([]byte, n)
	copy(out[n-len(b):], b)
	return out
}

// Proof values, Part 1 §14.4: per-hierarchy secrets that key tickets.
func (t *TPM) proof(hierarchy uint32) []byte {
	var seed []byte
	switch hierarchy {
	case rhOwner:
		seed = t.ps.SPS
	case rhEndorsement:
		seed = t.ps.EPS
	case rhPlatform:
		seed = t.ps.PPS
	default:
		seed = t.nullSeed
	}
	m := hmac.New(crypto.SHA256.New, seed)
	m.Write([]byte("proof"))
	return m.Sum(nil)
}

func (t *TPM) hierarchySeed(h uint32) []byte {
	switch h {
	case rhOwner:
		return t.ps.SPS
	case rhEndorsement:
		return t.ps.EPS
	case rhPlatform:
		return t.ps.PPS
	}
	return t.nullSeed
}

func (t *TPM) hierarchyEnabled(h uint32) bool {
	switch h {
	case rhOwner:
		return t.ps.ShEnable
	case rhEndorsement:
		return t.ps.EhEnable
	case rhPlatform:
		return t.phEnable
	}
	return true
}

// ticketDigest is a ticket's HMAC under the hierarchy's proof (Part 1
// §15.4), empty for a NULL ticket.
func (t *TPM) ticketDigest(tag uint16, hierarchy uint32, hash crypto.Hash, parts ...[]byte) []byte {
	if hierarchy == rhNull {
		return nil
	}
	m := hmac.New(hash.New, t.proof(hierarchy))
	m.Write(u16(tag))
	for _, p := range parts {
		m.Write(p)
	}
	return m.Sum(nil)
}

// checkTicket verifies a ticket the TPM produced earlier.
func (t *TPM) checkTicket(tag uint16, hierarchy uint32, digest []byte, hash crypto.Hash, parts ...[]byte) bool {
	if hierarchy == rhNull {
		return false
	}
	m := hmac.New(hash.New, t.proof(hierarchy))
	m.Write(u16(tag))
	for _, p := range parts {
		m.Write(p)
	}
	return hmac.Equal(m.Sum(nil), digest)
}

// Ticket tags, Part 2 §6.9.
const (
	stCreation   uint16 = 0x8021
	stVerified   uint16 = 0x8022
	stAuthSecret uint16 = 0x8023
	stHashCheck  uint16 = 0x8024
	stAuthSigned uint16 = 0x8025
)

// wrapSensitive protects a child's sensitive area under its parent, Part 1
// §23.3 (outer wrapper: AES-CFB with a zero IV, then HMAC integrity).
func wrapSensitive(parent *object, name []byte, sens *gt.TPMTSensitive) ([]byte, error) {
	symKey, integKey, hash, err := parentKeys(parent, name)
	if err != nil {
		return nil, err
	}
	plain := sized(gt.Marshal(sens))
	blk, err := aes.NewCipher(symKey)
	if err != nil {
		return nil, err
	}
	enc := make([]byte, len(plain))
	cipher.NewCFBEncrypter(blk, make([]byte, 16)).XORKeyStream(enc, plain)
	m := hmac.New(hash.New, integKey)
	m.Write(enc)
	m.Write(name)
	return append(sized(m.Sum(nil)), enc...), nil
}

func parentKeys(parent *object, name []byte) (symKey, integKey []byte, hash crypto.Hash, err error) {
	hash, err = parent.pub.NameAlg.Hash()
	if err != nil {
		return nil, nil, 0, err
	}
	var sym *gt.TPMTSymDefObject
	switch parent.pub.Type {
	case gt.TPMAlgRSA:
		p, _ := parent.pub.Parameters.RSADetail()
		sym = &p.Symmetric
	case gt.TPMAlgECC:
		p, _ := parent.pub.Parameters.ECCDetail()
		sym = &p.Symmetric
	default:
		return nil, nil, 0, fmt.Errorf("parent is not a storage key")
	}
	bits, err := sym.KeyBits.AES()
	if err != nil {
		return nil, nil, 0, fmt.Errorf("parent symmetric: %v", err)
	}
	seed := parent.sens.SeedValue.Buffer
	symKey = gt.KDFa(hash, seed, "STORAGE", name, nil, int(*bits))
	integKey = gt.KDFa(hash, seed, "INTEGRITY", nil, nil, hash.Size()*8)
	return symKey, integKey, hash, nil
}

// unwrapSensitive reverses wrapSensitive; a wrong HMAC is
// TPM_RC_INTEGRITY on parameter n.
func unwrapSensitive(parent *object, name, priv []byte, n int) (*gt.TPMTSensitive, error) {
	symKey, integKey, hash, err := parentKeys(parent, name)
	if err != nil {
		return nil, rcH(rcType, 1, "%v", err)
	}
	if len(priv) < 2 {
		return nil, rcP(rcInsufficient, n, "private area")
	}
	il := int(priv[0])<<8 | int(priv[1])
	if il != hash.Size() || len(priv) < 2+il+2 {
		return nil, rcP(rcSize, n, "integrity size")
	}
	integ, enc := priv[2:2+il], priv[2+il:]
	m := hmac.New(hash.New, integKey)
	m.Write(enc)
	m.Write(name)
	if !hmac.Equal(m.Sum(nil), integ) {
		return nil, rcP(rcIntegrity, n, "private area integrity")
	}
	blk, err := aes.NewCipher(symKey)
	if err != nil {
		return nil, rcE(rcFailure, "%v", err)
	}
	plain := make([]byte, len(enc))
	cipher.NewCFBDecrypter(blk, make([]byte, 16)).XORKeyStream(plain, enc)
	if len(plain) < 2 || int(plain[0])<<8|int(plain[1]) != len(plain)-2 {
		return nil, rcP(rcSize, n, "sensitive size")
	}
	s, err := gt.Unmarshal[gt.TPMTSensitive](plain[2:])
	if err != nil {
		return nil, rcP(rcValue, n, "sensitive: %v", err)
	}
	return s, nil
}

func (t *TPM) allocObject(o *object) (uint32, error) {
	if len(t.objects) >= loadedObjectsMax {
		return 0, rcE(rcObjectMemory, "%d objects loaded", len(t.objects))
	}
	// One handle per object slot, lowest free first, as the reference
	// implementation numbers them.
	for i := uint32(0); ; i++ {
		h := uint32(htTransient)<<24 | i
		if t.objects[h] == nil {
			t.objects[h] = o
			return h, nil
		}
	}
}

// loadedObject returns the key behind handle h (handle area position n).
func (t *TPM) loadedObject(h uint32, n int) (*object, error) {
	var o *object
	switch h >> 24 {
	case htTransient:
		o = t.objects[h]
	case htPersistent:
		o = t.ps.persistent[h]
	}
	if o == nil {
		return nil, rcH(rcHandle, n, "no object at 0x%08x", h)
	}
	return o, nil
}

func bigOf(b []byte) *big.Int { return new(big.Int).SetBytes(b) }
