package tpm2

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/hmac"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"hash"
	"io"
	"math/big"
	"sync"

	gt "github.com/google/go-tpm/tpm2"
)

// Template checks and key generation, Part 1 §27 (object attributes) and
// §26 (primary objects derived from hierarchy seeds).

// parsePublic decodes a TPMT_PUBLIC that must fill b exactly.
func parsePublic(b []byte, n int) (*gt.TPMTPublic, error) {
	p, err := gt.Unmarshal[gt.TPMTPublic](b)
	if err != nil {
		return nil, rcP(rcValue, n, "public area: %v", err)
	}
	if len(gt.Marshal(p)) != len(b) {
		return nil, rcP(rcSize, n, "public area has trailing bytes")
	}
	return p, nil
}

// sensitiveCreate decodes TPMS_SENSITIVE_CREATE (userAuth, data).
func sensitiveCreate(b []byte, n int) (auth, data []byte, err error) {
	rd := func() ([]byte, bool) {
		if len(b) < 2 {
			return nil, false
		}
		l := int(binary.BigEndian.Uint16(b))
		if len(b) < 2+l {
			return nil, false
		}
		v := b[2 : 2+l]
		b = b[2+l:]
		return v, true
	}
	auth, ok1 := rd()
	data, ok2 := rd()
	if !ok1 || !ok2 {
		return nil, nil, rcP(rcInsufficient, n, "sensitive create")
	}
	if len(b) != 0 {
		return nil, nil, rcP(rcSize, n, "sensitive create has trailing bytes")
	}
	return auth, data, nil
}

func checkSymObject(sym *gt.TPMTSymDefObject, n int, allowNull bool) error {
	switch sym.Algorithm {
	case gt.TPMAlgNull:
		if !allowNull {
			return rcP(rcSymmetric, n, "symmetric algorithm required")
		}
		return nil
	case gt.TPMAlgAES:
		bits, err := sym.KeyBits.AES()
		if err != nil || (*bits != 128 && *bits != 192 && *bits != 256) {
			return rcP(rcValue, n, "AES key size")
		}
		mode, err := sym.Mode.AES()
		if err != nil {
			return rcP(rcMode, n, "AES mode")
		}
		switch *mode {
		case gt.TPMAlgCFB, gt.TPMAlgCBC, gt.TPMAlgCTR, gt.TPMAlgOFB, gt.TPMAlgECB, gt.TPMAlgNull:
			return nil
		}
		return rcP(rcMode, n, "AES mode 0x%x", uint16(*mode))
	}
	return rcP(rcSymmetric, n, "symmetric algorithm 0x%x", uint16(sym.Algorithm))
}

func schemeHash(h gt.TPMIAlgHash, n int) error {
	if !hashSupported(h) {
		return rcP(rcHash, n, "scheme hash 0x%x", uint16(h))
	}
	return nil
}

// checkPublicParms validates algorithm parameters (TestParms and object
// templates).
func checkPublicParms(typ gt.TPMIAlgPublic, parms *gt.TPMUPublicParms, n int) error {
	switch typ {
	case gt.TPMAlgRSA:
		p, err := parms.RSADetail()
		if err != nil {
			return rcP(rcValue, n, "RSA parameters")
		}
		switch p.KeyBits {
		case 1024, 2048, 3072, 4096:
		default:
			// TPMI_RSA_KEY_BITS is checked when unmarshalled: VALUE.
			return rcP(rcValue, n, "RSA key size %d", p.KeyBits)
		}
		if p.Exponent != 0 && p.Exponent != 65537 {
			return rcP(rcValue, n, "RSA exponent %d", p.Exponent)
		}
		if err := checkSymObject(&p.Symmetric, n, true); err != nil {
			return err
		}
		switch p.Scheme.Scheme {
		case gt.TPMAlgNull, gt.TPMAlgRSAES:
		case gt.TPMAlgRSASSA:
			s, _ := p.Scheme.Details.RSASSA()
			return schemeHash(s.HashAlg, n)
		case gt.TPMAlgRSAPSS:
			s, _ := p.Scheme.Details.RSAPSS()
			return schemeHash(s.HashAlg, n)
		case gt.TPMAlgOAEP:
			s, _ := p.Scheme.Details.OAEP()
			return schemeHash(s.HashAlg, n)
		default:
			return rcP(rcScheme, n, "RSA scheme 0x%x", uint16(p.Scheme.Scheme))
		}
	case gt.TPMAlgECC:
		p, err := parms.ECCDetail()
		if err != nil {
			return rcP(rcValue, n, "ECC parameters")
		}
		if _, err := curveOf(p.CurveID); err != nil {
			return rcP(rcCurve, n, "%v", err)
		}
		if p.KDF.Scheme != gt.TPMAlgNull {
			return rcP(rcKDF, n, "ECC KDF must be NULL")
		}
		if err := checkSymObject(&p.Symmetric, n, true); err != nil {
			return err
		}
		switch p.Scheme.Scheme {
		case gt.TPMAlgNull:
		case gt.TPMAlgECDSA:
			s, _ := p.Scheme.Details.ECDSA()
			return schemeHash(s.HashAlg, n)
		case gt.TPMAlgECDAA:
			s, _ := p.Scheme.Details.ECDAA()
			return schemeHash(s.HashAlg, n)
		case gt.TPMAlgECDH, gt.TPMAlgECMQV:
			// go-tpm v0.9.8's TPMUAsymScheme.ECDH() checks the wrong
			// selector; read the hash from the encoding instead.
			return schemeHash(detailHash(&p.Scheme), n)
		default:
			return rcP(rcScheme, n, "ECC scheme 0x%x", uint16(p.Scheme.Scheme))
		}
	case gt.TPMAlgKeyedHash:
		p, err := parms.KeyedHashDetail()
		if err != nil {
			return rcP(rcValue, n, "keyedhash parameters")
		}
		switch p.Scheme.Scheme {
		case gt.TPMAlgNull:
		case gt.TPMAlgHMAC:
			s, _ := p.Scheme.Details.HMAC()
			return schemeHash(s.HashAlg, n)
		case gt.TPMAlgXOR:
			s, _ := p.Scheme.Details.XOR()
			return schemeHash(s.HashAlg, n)
		default:
			return rcP(rcScheme, n, "keyedhash scheme 0x%x", uint16(p.Scheme.Scheme))
		}
	case gt.TPMAlgSymCipher:
		p, err := parms.SymDetail()
		if err != nil {
			return rcP(rcValue, n, "symcipher parameters")
		}
		return checkSymObject(&p.Sym, n, false)
	default:
		return rcP(rcType, n, "object type 0x%x", uint16(typ))
	}
	return nil
}

// checkTemplate applies the creation rules of Part 1 §27 and Part 3 §12.1
// (the reference implementation's CreateChecks) to a template: parent is
// nil for a primary object; pubN/sensN are the parameter numbers of
// inPublic and inSensitive.
func checkTemplate(p *gt.TPMTPublic, auth, data []byte, parent *object, pubN, sensN int) error {
	h, err := p.NameAlg.Hash()
	if err != nil || !hashSupported(p.NameAlg) {
		return rcP(rcHash, pubN, "nameAlg 0x%x", uint16(p.NameAlg))
	}
	if len(auth) > h.Size() {
		return rcP(rcSize, sensN, "userAuth longer than nameAlg digest")
	}
	if err := checkPublicParms(p.Type, &p.Parameters, pubN); err != nil {
		return err
	}
	a := p.ObjectAttributes
	// Either the TPM makes the secret or the caller supplies it, not
	// both; a primary object's data only seeds its derivation.
	if !a.SensitiveDataOrigin && len(data) == 0 {
		return rcP(rcAttributes, pubN, "no sensitive data and not sensitiveDataOrigin")
	}
	if parent != nil && a.SensitiveDataOrigin && len(data) != 0 {
		return rcP(rcAttributes, pubN, "sensitiveDataOrigin with caller data")
	}
	switch p.Type {
	case gt.TPMAlgKeyedHash, gt.TPMAlgSymCipher:
		if p.Type == gt.TPMAlgKeyedHash && !a.SignEncrypt && !a.Decrypt && a.SensitiveDataOrigin {
			return rcP(rcAttributes, pubN, "the TPM cannot make a data object's data")
		}
		// A restricted symmetric key with caller-supplied secret must be
		// duplicable: the secret exists outside the TPM.
		if a.Restricted && !a.SensitiveDataOrigin && (a.FixedParent || a.FixedTPM) {
			return rcP(rcAttributes, pubN, "restricted key with a supplied secret cannot be fixed")
		}
	default:
		if !a.SensitiveDataOrigin {
			return rcP(rcAttributes, pubN, "asymmetric keys take no sensitive data")
		}
	}
	return checkAttributes(parent, p, pubN)
}

// checkAttributes is the attribute consistency of Part 1 §27.2 between an
// object and its parent (nil: a hierarchy), then checkSchemes.
func checkAttributes(parent *object, p *gt.TPMTPublic, n int) error {
	h, _ := p.NameAlg.Hash()
	if l := len(p.AuthPolicy.Buffer); l != 0 && l != h.Size() {
		return rcP(rcSize, n, "authPolicy size")
	}
	a := p.ObjectAttributes
	var pa gt.TPMAObject
	if parent != nil {
		pa = parent.attrs()
	}
	if parent == nil || pa.FixedTPM {
		if a.FixedParent != a.FixedTPM {
			return rcP(rcAttributes, n, "fixedTPM and fixedParent differ under a fixedTPM parent")
		}
	} else if a.FixedTPM {
		return rcP(rcAttributes, n, "fixedTPM child of a non-fixedTPM parent")
	}
	if a.SignEncrypt == a.Decrypt {
		if a.Restricted {
			return rcP(rcAttributes, n, "restricted key must either sign or decrypt")
		}
		if p.Type != gt.TPMAlgKeyedHash && !a.SignEncrypt {
			return rcP(rcAttributes, n, "only a data object neither signs nor decrypts")
		}
	}
	if a.FixedTPM && a.EncryptedDuplication {
		return rcP(rcAttributes, n, "encryptedDuplication on a fixedTPM object")
	}
	if parent != nil && !pa.FixedTPM && a.EncryptedDuplication != pa.EncryptedDuplication {
		return rcP(rcAttributes, n, "encryptedDuplication differs from the duplicable parent's")
	}
	if parent != nil && parent.isDerivationParent() {
		if a.FixedTPM != pa.FixedTPM || !a.FixedParent {
			return rcP(rcAttributes, n, "a derived object is fixedParent and fixedTPM as its parent")
		}
	}
	return checkSchemes(parent, p, n)
}

// checkSchemes matches a key's scheme to its sign/decrypt/restricted
// attributes (Part 2 §12.2.3.6 TPMT_PUBLIC_PARMS, Part 1 §27.2): a key
// that both signs and decrypts, or neither, has no scheme; a signing key
// has a signing scheme (or none, if unrestricted), a decryption key a
// decryption scheme; a parent has a symmetric algorithm and, if
// fixedParent, its parent's nameAlg and symmetric algorithm.
func checkSchemes(parent *object, p *gt.TPMTPublic, n int) error {
	a := p.ObjectAttributes
	var sym *gt.TPMTSymDefObject
	switch p.Type {
	case gt.TPMAlgSymCipher:
		sp, _ := p.Parameters.SymDetail()
		sym = &sp.Sym
	case gt.TPMAlgKeyedHash:
		kp, _ := p.Parameters.KeyedHashDetail()
		scheme := kp.Scheme.Scheme
		switch {
		case a.SignEncrypt == a.Decrypt:
			if scheme != gt.TPMAlgNull {
				return rcP(rcScheme, n, "keyedhash scheme on a key that signs and decrypts alike")
			}
		case a.SignEncrypt:
			if scheme != gt.TPMAlgHMAC {
				return rcP(rcScheme, n, "keyedhash signing key without HMAC")
			}
		default:
			if scheme != gt.TPMAlgXOR {
				return rcP(rcScheme, n, "keyedhash decryption key without XOR")
			}
			// A derivation parent names its KDF: SP 800-108 is the one
			// implemented, and there is no default hash.
			if a.Restricted {
				x, _ := kp.Scheme.Details.XOR()
				if x.KDF != gt.TPMAlgKDF1SP800108 {
					return rcP(rcScheme, n, "derivation parent KDF 0x%x", uint16(x.KDF))
				}
				if x.HashAlg == gt.TPMAlgNull {
					return rcP(rcHash, n, "derivation parent without a hash")
				}
			}
		}
	default:
		s, scheme := symAndScheme(p)
		sym = &s
		switch {
		case a.SignEncrypt == a.Decrypt:
			if scheme != gt.TPMAlgNull {
				return rcP(rcScheme, n, "scheme on a key that signs and decrypts alike")
			}
		case a.SignEncrypt:
			if isSignScheme(p.Type, scheme) {
				if schemeDetailHash(p) == gt.TPMAlgNull {
					return rcP(rcScheme, n, "signing scheme without a hash")
				}
			} else if a.Restricted || scheme != gt.TPMAlgNull {
				return rcP(rcScheme, n, "signing key with scheme 0x%x", uint16(scheme))
			}
		default:
			if a.Restricted {
				if scheme != gt.TPMAlgNull {
					return rcP(rcScheme, n, "storage key with a scheme")
				}
			} else if scheme != gt.TPMAlgNull && !isDecryptScheme(p.Type, scheme) {
				return rcP(rcScheme, n, "decryption key with scheme 0x%x", uint16(scheme))
			}
		}
		if !(a.Restricted && a.Decrypt) && s.Algorithm != gt.TPMAlgNull {
			return rcP(rcSymmetric, n, "only storage keys have a symmetric algorithm")
		}
	}
	if sym != nil && a.Restricted && a.Decrypt {
		if sym.Algorithm == gt.TPMAlgNull {
			return rcP(rcSymmetric, n, "storage key without symmetric algorithm")
		}
		if a.FixedParent && parent != nil {
			if p.NameAlg != parent.pub.NameAlg {
				return rcP(rcHash, n, "non-duplicable storage key with its parent's nameAlg")
			}
			ps, _ := symAndScheme(&parent.pub)
			if parent.pub.Type == gt.TPMAlgKeyedHash || !bytes.Equal(gt.Marshal(sym), gt.Marshal(&ps)) {
				return rcP(rcSymmetric, n, "non-duplicable storage key with its parent's symmetric algorithm")
			}
		}
	}
	return nil
}

func isSignScheme(typ gt.TPMIAlgPublic, s gt.TPMAlgID) bool {
	if typ == gt.TPMAlgRSA {
		return s == gt.TPMAlgRSASSA || s == gt.TPMAlgRSAPSS
	}
	return s == gt.TPMAlgECDSA || s == gt.TPMAlgECDAA || s == gt.TPMAlgECSchnorr || s == gt.TPMAlgSM2
}

func isDecryptScheme(typ gt.TPMIAlgPublic, s gt.TPMAlgID) bool {
	if typ == gt.TPMAlgRSA {
		return s == gt.TPMAlgRSAES || s == gt.TPMAlgOAEP
	}
	return s == gt.TPMAlgECDH || s == gt.TPMAlgECMQV
}

// schemeDetailHash is the hash of an asymmetric key's scheme.
func schemeDetailHash(p *gt.TPMTPublic) gt.TPMIAlgHash {
	if p.Type == gt.TPMAlgRSA {
		r, _ := p.Parameters.RSADetail()
		return detailHash(&r.Scheme)
	}
	e, _ := p.Parameters.ECCDetail()
	return detailHash(&e.Scheme)
}

// detailHash returns the hash of a scheme structure (TPMT_*_SCHEME): in
// every scheme with details, the hash algorithm comes first.
func detailHash(m gt.Marshallable) gt.TPMIAlgHash {
	b := gt.Marshal(m)
	if len(b) < 4 {
		return gt.TPMAlgNull
	}
	return gt.TPMIAlgHash(binary.BigEndian.Uint16(b[2:]))
}

func symAndScheme(p *gt.TPMTPublic) (gt.TPMTSymDefObject, gt.TPMAlgID) {
	switch p.Type {
	case gt.TPMAlgRSA:
		r, _ := p.Parameters.RSADetail()
		return r.Symmetric, gt.TPMAlgID(r.Scheme.Scheme)
	case gt.TPMAlgECC:
		e, _ := p.Parameters.ECCDetail()
		return e.Symmetric, gt.TPMAlgID(e.Scheme.Scheme)
	}
	return gt.TPMTSymDefObject{Algorithm: gt.TPMAlgNull}, gt.TPMAlgNull
}

// kdfStream is the deterministic random source for primary objects: KDFa
// keyed with the hierarchy seed over the template, counter-extended. The
// same seed and template always yield the same key (Part 1 §26.1).
type kdfStream struct {
	h       crypto.Hash
	seed    []byte
	context []byte
	counter uint32
	buf     []byte
}

func (k *kdfStream) Read(p []byte) (int, error) {
	for len(k.buf) < len(p) {
		k.counter++
		k.buf = append(k.buf, gt.KDFa(k.h, k.seed, "XVTPM PRIMARY", k.context, u32(k.counter), 1024*8)...)
	}
	n := copy(p, k.buf)
	k.buf = k.buf[n:]
	return n, nil
}

// smallPrimes for sieving RSA prime candidates.
var smallPrimes = func() []uint64 {
	var ps []uint64
	for n := uint64(3); len(ps) < 2048; n += 2 {
		isP := true
		for _, p := range ps {
			if p*p > n {
				break
			}
			if n%p == 0 {
				isP = false
				break
			}
		}
		if isP {
			ps = append(ps, n)
		}
	}
	return ps
}()

// detPrime searches upward from a random odd bits-bit start for a prime p
// with gcd(p-1, e) = 1; the candidate's top two bits are set so p*q has
// exactly 2*bits bits.
func detPrime(rng io.Reader, bits int, e int64) (*big.Int, error) {
	buf := make([]byte, (bits+7)/8)
	for attempt := 0; attempt < 64; attempt++ {
		if _, err := io.ReadFull(rng, buf); err != nil {
			return nil, err
		}
		buf[0] |= 0xC0
		buf[len(buf)-1] |= 1
		start := new(big.Int).SetBytes(buf)
		res := make([]uint64, len(smallPrimes))
		m := new(big.Int)
		for i, sp := range smallPrimes {
			res[i] = m.Mod(start, new(big.Int).SetUint64(sp)).Uint64()
		}
		bigE := big.NewInt(e)
		one := big.NewInt(1)
		for delta := uint64(0); delta < 1<<16; delta += 2 {
			ok := true
			for i, sp := range smallPrimes {
				if (res[i]+delta)%sp == 0 {
					ok = false
					break
				}
			}
			if !ok {
				continue
			}
			c := new(big.Int).Add(start, new(big.Int).SetUint64(delta))
			if c.BitLen() != bits {
				break
			}
			pm1 := new(big.Int).Sub(c, one)
			if new(big.Int).GCD(nil, nil, pm1, bigE).Cmp(one) != 0 {
				continue
			}
			// Four Miller-Rabin rounds plus Baillie-PSW: FIPS 186-5 Table
			// B.1 asks for 4 MR rounds with a Lucas test for 1024-bit primes.
			if c.ProbablyPrime(4) {
				return c, nil
			}
		}
	}
	return nil, fmt.Errorf("no prime found")
}

// detRSAKey derives an RSA key from ks. p and q come from independent
// sub-streams so the two prime searches can run in parallel; the result
// depends only on the stream's seed and context.
func detRSAKey(ks *kdfStream, bits int, e int64) (*rsa.PrivateKey, error) {
	sub := func(label string) *kdfStream {
		d := ks.h.New()
		d.Write(ks.context)
		d.Write([]byte(label))
		return &kdfStream{h: ks.h, seed: ks.seed, context: d.Sum(nil)}
	}
	ps, qs := sub("p"), sub("q")
	for {
		var p, q *big.Int
		var perr, qerr error
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			p, perr = detPrime(ps, bits/2, e)
		}()
		q, qerr = detPrime(qs, bits/2, e)
		wg.Wait()
		if perr != nil {
			return nil, perr
		}
		if qerr != nil {
			return nil, qerr
		}
		// |p-q| must not be tiny (FIPS 186-5 A.1.3); with independent
		// 1024-bit draws this practically never repeats.
		diff := new(big.Int).Sub(p, q)
		if diff.Abs(diff).BitLen() <= bits/2-100 {
			continue
		}
		return rsaFromPrimes(p, q, int(e))
	}
}

// generate creates the sensitive area and public unique field for a
// checked template. rng is the TPM's random source, or a kdfStream for
// primary objects.
func (t *TPM) generate(p *gt.TPMTPublic, auth, data []byte, rng io.Reader, deterministic bool) (*gt.TPMTSensitive, error) {
	h, _ := p.NameAlg.Hash()
	sens := &gt.TPMTSensitive{SensitiveType: p.Type, AuthValue: gt.TPM2BAuth{Buffer: append([]byte{}, auth...)}}
	read := func(n int) ([]byte, error) {
		b := make([]byte, n)
		_, err := io.ReadFull(rng, b)
		return b, err
	}
	a := p.ObjectAttributes
	switch p.Type {
	case gt.TPMAlgRSA:
		parms, _ := p.Parameters.RSADetail()
		e := int64(parms.Exponent)
		if e == 0 {
			e = 65537
		}
		var key *rsa.PrivateKey
		if deterministic {
			ks, ok := rng.(*kdfStream)
			if !ok {
				return nil, rcE(rcFailure, "deterministic RSA needs a KDF stream")
			}
			var err error
			if key, err = detRSAKey(ks, int(parms.KeyBits), e); err != nil {
				return nil, rcE(rcFailure, "RSA prime: %v", err)
			}
		} else {
			if parms.Exponent != 0 && parms.Exponent != 65537 {
				return nil, rcE(rcValue, "exponent")
			}
			var err error
			key, err = rsa.GenerateKey(t.rand, int(parms.KeyBits))
			if err != nil {
				return nil, rcE(rcFailure, "RSA keygen: %v", err)
			}
		}
		sens.Sensitive = gt.NewTPMUSensitiveComposite(gt.TPMAlgRSA, &gt.TPM2BPrivateKeyRSA{Buffer: key.Primes[0].Bytes()})
		p.Unique = gt.NewTPMUPublicID(gt.TPMAlgRSA, &gt.TPM2BPublicKeyRSA{Buffer: leftPad(key.N.Bytes(), int(parms.KeyBits)/8)})
	case gt.TPMAlgECC:
		parms, _ := p.Parameters.ECCDetail()
		c, _ := curveOf(parms.CurveID)
		size := (c.Params().BitSize + 7) / 8
		var key *ecdsa.PrivateKey
		for {
			// d uniform in [1, n-1] by reduction of a value 64 bits
			// longer than n (FIPS 186-5 A.2.1).
			b, err := read(size + 8)
			if err != nil {
				return nil, rcE(rcFailure, "%v", err)
			}
			nm1 := new(big.Int).Sub(c.Params().N, big.NewInt(1))
			d := new(big.Int).Mod(new(big.Int).SetBytes(b), nm1)
			d.Add(d, big.NewInt(1))
			key, err = ecdsa.ParseRawPrivateKey(c, leftPad(d.Bytes(), size))
			if err == nil {
				break
			}
		}
		sens.Sensitive = gt.NewTPMUSensitiveComposite(gt.TPMAlgECC, &gt.TPM2BECCParameter{Buffer: leftPad(key.D.Bytes(), size)})
		p.Unique = gt.NewTPMUPublicID(gt.TPMAlgECC, &gt.TPMSECCPoint{
			X: gt.TPM2BECCParameter{Buffer: leftPad(key.X.Bytes(), size)},
			Y: gt.TPM2BECCParameter{Buffer: leftPad(key.Y.Bytes(), size)},
		})
	case gt.TPMAlgKeyedHash, gt.TPMAlgSymCipher:
		bits := data
		// A keyed hash's secret is as long as its scheme's digest (the
		// nameAlg's without a scheme).
		kh := h
		if kp, _ := p.Parameters.KeyedHashDetail(); kp != nil && kp.Scheme.Scheme != gt.TPMAlgNull {
			if sh, err := detailHash(&kp.Scheme).Hash(); err == nil {
				kh = sh
			}
		}
		_, derived := rng.(*derivationStream)
		if len(bits) == 0 && (a.SensitiveDataOrigin || derived) {
			n := kh.Size()
			if p.Type == gt.TPMAlgSymCipher {
				sp, _ := p.Parameters.SymDetail()
				kb, _ := sp.Sym.KeyBits.AES()
				n = int(*kb) / 8
			}
			var err error
			if bits, err = read(n); err != nil {
				return nil, rcE(rcFailure, "%v", err)
			}
		}
		if p.Type == gt.TPMAlgSymCipher {
			sp, _ := p.Parameters.SymDetail()
			kb, _ := sp.Sym.KeyBits.AES()
			if len(bits) != int(*kb)/8 {
				return nil, rcP(rcKeySize, 1, "symmetric key size %d", len(bits))
			}
			sens.Sensitive = gt.NewTPMUSensitiveComposite(gt.TPMAlgSymCipher, &gt.TPM2BSymKey{Buffer: bits})
		} else {
			if len(bits) > 128 {
				return nil, rcP(rcSize, 1, "sealed data too large")
			}
			// An HMAC or XOR key longer than the hash's block would be
			// hashed down by HMAC: the reference refuses it.
			if (a.SignEncrypt || a.Decrypt) && len(bits) > kh.New().BlockSize() {
				return nil, rcE(rcSize, "keyed hash key longer than the hash block")
			}
			sens.Sensitive = gt.NewTPMUSensitiveComposite(gt.TPMAlgKeyedHash, &gt.TPM2BSensitiveData{Buffer: bits})
		}
		seed, err := read(h.Size())
		if err != nil {
			return nil, rcE(rcFailure, "%v", err)
		}
		sens.SeedValue = gt.TPM2BDigest{Buffer: seed}
		// A parent's unique is HMAC(seedValue, secret), any other
		// object's H(seedValue || secret), as the reference computes.
		var d hash.Hash
		if a.Restricted && a.Decrypt {
			d = hmac.New(h.New, seed)
		} else {
			d = h.New()
			d.Write(seed)
		}
		d.Write(bits)
		p.Unique = gt.NewTPMUPublicID(p.Type, &gt.TPM2BDigest{Buffer: d.Sum(nil)})
		return sens, nil
	}
	if a.Restricted && a.Decrypt {
		seed, err := read(h.Size())
		if err != nil {
			return nil, rcE(rcFailure, "%v", err)
		}
		sens.SeedValue = gt.TPM2BDigest{Buffer: seed}
	}
	return sens, nil
}

// createPrimary derives (or fetches from cache) the primary object for
// template p under hierarchy. tmpl is p's encoding as received.
func (t *TPM) createPrimary(hierarchy uint32, p *gt.TPMTPublic, tmpl, auth, data []byte) (*object, error) {
	seed := t.hierarchySeed(hierarchy)
	h, _ := p.NameAlg.Hash()
	ctx := h.New()
	ctx.Write(tmpl)
	ctx.Write(sized(data))
	context := ctx.Sum(nil)
	ck := sha256.New()
	ck.Write(seed)
	ck.Write(context)
	var cacheKey [32]byte
	copy(cacheKey[:], ck.Sum(nil))
	proto := t.primaryCache[cacheKey]
	if proto == nil {
		pub := *p
		sens, err := t.generate(&pub, nil, data, &kdfStream{h: h, seed: seed, context: context}, true)
		if err != nil {
			return nil, err
		}
		proto = &object{pub: pub, sens: *sens, hierarchy: hierarchy}
		if err := proto.finish(nil); err != nil {
			return nil, rcE(rcFailure, "primary: %v", err)
		}
		proto.encoded()
		if len(t.primaryCache) >= 16 {
			for k := range t.primaryCache {
				delete(t.primaryCache, k)
				break
			}
		}
		t.primaryCache[cacheKey] = proto
	}
	o := *proto
	o.sens.AuthValue = gt.TPM2BAuth{Buffer: append([]byte{}, auth...)}
	o.sensBytes = nil // the cached encoding carries the prototype's empty auth
	return &o, nil
}
