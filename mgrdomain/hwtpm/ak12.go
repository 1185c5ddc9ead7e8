package hwtpm

import (
	"crypto"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"encoding/binary"
	"errors"
	"fmt"
	"math/big"
	"slices"

	"github.com/google/go-tpm/tpm"
	"github.com/google/go-tpm/tpmutil"
)

// Identity keys (TPM 1.2): the TPM 1.2 counterpart of ak.go's group
// attestation keys. TPM 1.2 cannot re-derive a key from a seed, so the
// identity key is made once with TPM_MakeIdentity (TPM 1.2 Part 3, 15.1)
// and its wrapped blob (a TPM_KEY whose private part only this TPM's SRK
// unwraps) is kept by the caller, in the manager's sealed store; every
// use loads it with TPM_LoadKey2 (Part 3, 10.5) and flushes it after
// (TPM_FlushSpecific, Part 3, 22.3). A privacy CA certifies it through
// TPM_ActivateIdentity (Part 3, 15.2), and TPM_Quote (Part 3, 16.1)
// signs PCR values with it.
//
// The identity key's usage authorisation is the well-known secret (20
// zero bytes). The blob is useless outside this TPM (only its SRK
// unwraps it, with srk_auth=), it is stored in the manager's sealed
// store, and an identity key only signs TPM-made structures (TPM_Quote's
// TPM_QUOTE_INFO, TPM_MakeIdentity's binding, TPM_CertifyKey): a secret
// would only keep other software on the same TPM from quoting with a
// blob it could not read anyway. The well-known value also spares a
// secret to keep and pass around.
//
// Authorisations: TPM_MakeIdentity needs the SRK (OIAP, srk_auth=) and
// the owner (OSAP, owner_auth=; the new key's identityAuth goes
// ADIP-encrypted under the owner session's shared secret, TPM 1.2 Part 1,
// "Authorization-Data Insertion Protocol"). TPM_LoadKey2 runs in an OIAP
// session with srk_auth= kept open (continueAuthSession) for the loaded
// key's own use next, which saves a TPM_OIAP per operation: OIAP sessions
// are not bound to an entity.

const (
	tag12RquAuth2         = 0x00C3     // TPM_TAG_RQU_AUTH2_COMMAND
	ord12Quote            = 0x00000016 // TPM_ORD_Quote
	ord12LoadKey2         = 0x00000041 // TPM_ORD_LoadKey2
	ord12MakeIdentity     = 0x00000079 // TPM_ORD_MakeIdentity
	ord12ActivateIdentity = 0x0000007A // TPM_ORD_ActivateIdentity
	ord12FlushSpecific    = 0x000000BA // TPM_ORD_FlushSpecific
	rt12Key               = 0x00000001 // TPM_RT_KEY
	rt12Auth              = 0x00000002 // TPM_RT_AUTH
	rc12Auth2Fail         = 0x1D       // TPM_AUTH2FAIL
	rc12BadParameter      = 0x03       // TPM_BAD_PARAMETER

	keyUsage12Identity = 0x0012     // TPM_KEY_IDENTITY
	alg12RSA           = 0x00000001 // TPM_ALG_RSA
	es12None           = 0x0001     // TPM_ES_NONE
	ss12PKCS1SHA1      = 0x0002     // TPM_SS_RSASSAPKCS1v15_SHA1
	authAlways12       = 0x01       // TPM_AUTH_ALWAYS

	// maxKeyBlob12 bounds a TPM_KEY the caller hands back: an RSA-2048
	// key's is about 600 bytes.
	maxKeyBlob12 = 4096
)

// ver11 is TPM_STRUCT_VER 1.1.0.0, the version TPM_KEY,
// TPM_IDENTITY_CONTENTS and TPM_QUOTE_INFO carry (Part 2, 5.1).
var ver11 = []byte{1, 1, 0, 0}

// identityAuth12 is the identity key's usage authorisation: the
// well-known secret (see above).
var identityAuth12 [20]byte

// idKeyParams12 is the TPM_KEY template TPM_MakeIdentity takes (Part 2,
// 10.2): an RSA-2048 TPM_KEY_IDENTITY, not migratable, signing with
// RSASSA-PKCS1-v1_5 SHA-1 (the only scheme of an identity key), usage
// authorised always, no PCR binding; the TPM fills in the public key and
// the wrapped private part.
var idKeyParams12 = func() []byte {
	b := slices.Clone(ver11)
	b = binary.BigEndian.AppendUint16(b, keyUsage12Identity)
	b = binary.BigEndian.AppendUint32(b, 0) // keyFlags
	b = append(b, authAlways12)
	b = binary.BigEndian.AppendUint32(b, alg12RSA)
	b = binary.BigEndian.AppendUint16(b, es12None)
	b = binary.BigEndian.AppendUint16(b, ss12PKCS1SHA1)
	b = binary.BigEndian.AppendUint32(b, 12)   // parmSize: TPM_RSA_KEY_PARMS
	b = binary.BigEndian.AppendUint32(b, 2048) // keyLength
	b = binary.BigEndian.AppendUint32(b, 2)    // numPrimes
	b = binary.BigEndian.AppendUint32(b, 0)    // exponentSize: 65537
	b = binary.BigEndian.AppendUint32(b, 0)    // PCRInfoSize
	b = binary.BigEndian.AppendUint32(b, 0)    // pubKey.keyLength
	return binary.BigEndian.AppendUint32(b, 0) // encSize
}()

// reader12 reads TPM 1.2 structures; after the first short read every
// read returns zero values and err says what was missing, so parsers
// never index out of range.
type reader12 struct {
	b   []byte
	err error
}

func (r *reader12) bytes(n int, what string) []byte {
	if r.err != nil {
		return nil
	}
	if n < 0 || n > len(r.b) {
		r.err = fmt.Errorf("%s: %d bytes wanted, %d left", what, n, len(r.b))
		return nil
	}
	p := r.b[:n]
	r.b = r.b[n:]
	return p
}

func (r *reader12) u16(what string) uint16 {
	if p := r.bytes(2, what); p != nil {
		return binary.BigEndian.Uint16(p)
	}
	return 0
}

func (r *reader12) u32(what string) uint32 {
	if p := r.bytes(4, what); p != nil {
		return binary.BigEndian.Uint32(p)
	}
	return 0
}

// sized32 reads a UINT32 size and that many bytes.
func (r *reader12) sized32(what string) []byte {
	n := r.u32(what + " size")
	if uint64(n) > uint64(len(r.b)) && r.err == nil {
		r.err = fmt.Errorf("%s: %d bytes announced, %d left", what, n, len(r.b))
	}
	return r.bytes(int(min(n, uint32(len(r.b)))), what)
}

// end fails if bytes are left.
func (r *reader12) end(what string) error {
	if r.err == nil && len(r.b) != 0 {
		r.err = fmt.Errorf("%s: %d trailing bytes", what, len(r.b))
	}
	return r.err
}

// key12 is a parsed TPM_KEY or TPM_KEY12 (Part 2, 10.2 and 10.3: the
// same layout after their first four bytes).
type key12 struct {
	raw      []byte // the whole structure
	usage    uint16
	parms    []byte // TPM_KEY_PARMS
	storePub []byte // TPM_STORE_PUBKEY: UINT32 keyLength ‖ key
}

// pubKey is the key's TPM_PUBKEY (Part 2, 10.5): algorithmParms ‖ pubKey.
func (k *key12) pubKey() []byte { return append(slices.Clone(k.parms), k.storePub...) }

// parseKey12 reads a TPM_KEY at the start of p and returns it with the
// number of bytes it takes.
func parseKey12(p []byte) (*key12, int, error) {
	r := &reader12{b: p}
	r.bytes(4, "TPM_KEY version")
	k := &key12{usage: r.u16("TPM_KEY keyUsage")}
	r.bytes(4+1, "TPM_KEY keyFlags, authDataUsage")
	parmsAt := len(p) - len(r.b)
	r.bytes(4+2+2, "TPM_KEY_PARMS")
	r.sized32("TPM_KEY_PARMS parms")
	k.parms = p[parmsAt : len(p)-len(r.b)]
	r.sized32("TPM_KEY PCRInfo")
	pubAt := len(p) - len(r.b)
	r.sized32("TPM_STORE_PUBKEY")
	k.storePub = p[pubAt : len(p)-len(r.b)]
	r.sized32("TPM_KEY encData")
	if r.err != nil {
		return nil, 0, fmt.Errorf("hwtpm: malformed TPM_KEY: %w", r.err)
	}
	n := len(p) - len(r.b)
	k.raw = p[:n]
	return k, n, nil
}

// ParsePubKey12 decodes a TPM 1.2 TPM_PUBKEY (TPM 1.2 Part 2, 10.5) of
// an RSA key, such as MakeIdentity's, or the EK's from
// TPM_OwnerReadInternalPub.
func ParsePubKey12(p []byte) (*rsa.PublicKey, error) {
	r := &reader12{b: p}
	alg := r.u32("algorithmID")
	r.bytes(4, "encScheme, sigScheme")
	parms := &reader12{b: r.sized32("TPM_RSA_KEY_PARMS")}
	mod := r.sized32("TPM_STORE_PUBKEY")
	if err := r.end("TPM_PUBKEY"); err != nil {
		return nil, fmt.Errorf("hwtpm: malformed TPM_PUBKEY: %w", err)
	}
	if alg != alg12RSA {
		return nil, fmt.Errorf("hwtpm: TPM_PUBKEY of algorithm %#x, not RSA", alg)
	}
	bits := parms.u32("keyLength")
	parms.u32("numPrimes")
	exp := parms.sized32("exponent")
	if err := parms.end("TPM_RSA_KEY_PARMS"); err != nil {
		return nil, fmt.Errorf("hwtpm: malformed TPM_PUBKEY: %w", err)
	}
	e := 65537 // an empty exponent is the default (Part 2, 10.1.1)
	if len(exp) > 0 {
		if len(exp) > 4 {
			return nil, fmt.Errorf("hwtpm: TPM_PUBKEY: %d-byte exponent", len(exp))
		}
		e = int(new(big.Int).SetBytes(exp).Int64())
	}
	n := new(big.Int).SetBytes(mod)
	if e < 3 || e%2 == 0 || n.BitLen() < 512 || n.BitLen() != int(bits) {
		return nil, fmt.Errorf("hwtpm: TPM_PUBKEY: exponent %d, %d-bit modulus for a %d-bit key", e, n.BitLen(), bits)
	}
	return &rsa.PublicKey{N: n, E: e}, nil
}

// use12 is one authorisation session of a command, with its
// continueAuthSession flag.
type use12 struct {
	s    *authSession
	cont bool
}

// authCmd runs a TPM 1.2 command with one or two authorisation sessions
// (TPM_TAG_RQU_AUTH1_COMMAND / _AUTH2_; Part 1, 13): each HMAC covers
// SHA-1(ordinal ‖ params) (the 1S digest; handles are not in it) and the
// session's nonces. The response's HMACs, over SHA-1(returnCode ‖ ordinal
// ‖ output parameters), are checked, and the sessions' nonceEven updated
// for a next use. It returns the response before its authorisation
// areas: outHandles bytes of handles (outside the HMAC), then the output
// parameters. A session whose cont is false is ended by the TPM; so is
// every session of a command that fails.
func (t *TPM12) authCmd(name string, ord uint32, handles []uint32, params []byte, outHandles int, uses ...use12) ([]byte, error) {
	digest := sha1.Sum(append(binary.BigEndian.AppendUint32(nil, ord), params...))
	var body []byte
	for _, h := range handles {
		body = binary.BigEndian.AppendUint32(body, h)
	}
	body = append(body, params...)
	odd := make([][20]byte, len(uses))
	for i, u := range uses {
		if _, err := rand.Read(odd[i][:]); err != nil {
			return nil, err
		}
		c := byte(0)
		if u.cont {
			c = 1
		}
		m := hmac.New(sha1.New, u.s.key[:])
		m.Write(digest[:])
		m.Write(u.s.nonceEven[:])
		m.Write(odd[i][:])
		m.Write([]byte{c})
		body = binary.BigEndian.AppendUint32(body, u.s.handle)
		body = append(body, odd[i][:]...)
		body = append(body, c)
		body = m.Sum(body)
	}
	tag := uint16(tag12RquAuth1)
	if len(uses) == 2 {
		tag = tag12RquAuth2
	}
	rsp, err := t.run12(name, tag, ord, tpmutil.RawBytes(body))
	if err != nil {
		return nil, err
	}
	return checkAuthResponse(name, ord, rsp, outHandles, odd, uses)
}

// checkAuthResponse splits a successful response's parameters (rsp,
// after the header) into output and authorisation areas and checks the
// HMACs; see authCmd.
func checkAuthResponse(name string, ord uint32, rsp []byte, outHandles int, odd [][20]byte, uses []use12) ([]byte, error) {
	areas := 41 * len(uses) // nonceEven, continueAuthSession, resAuth
	if len(rsp) < outHandles+areas {
		return nil, fmt.Errorf("hwtpm: %s: %d-byte response, want at least %d", name, len(rsp), outHandles+areas)
	}
	end := len(rsp) - areas
	rd := sha1.New()
	rd.Write(make([]byte, 4)) // returnCode TPM_SUCCESS
	rd.Write(binary.BigEndian.AppendUint32(nil, ord))
	rd.Write(rsp[outHandles:end])
	d := rd.Sum(nil)
	for i, u := range uses {
		a := rsp[end+41*i : end+41*(i+1)]
		m := hmac.New(sha1.New, u.s.key[:])
		m.Write(d)
		m.Write(a[:20])
		m.Write(odd[i][:])
		m.Write(a[20:21])
		if !hmac.Equal(m.Sum(nil), a[21:]) {
			return nil, fmt.Errorf("hwtpm: %s: the response's authorisation HMAC (session %d) does not verify", name, i+1)
		}
		copy(u.s.nonceEven[:], a[:20])
	}
	return rsp[:end], nil
}

// flush12 is TPM_FlushSpecific (Part 3, 22.3) of a key or session; its
// error is ignored: it runs on the way out, after what mattered.
func (t *TPM12) flush12(handle, resourceType uint32) {
	t.run12("TPM_FlushSpecific", tag12RquCommand, ord12FlushSpecific, handle, resourceType)
}

// adip encrypts a new secret for a command authorised in OSAP session s
// (Part 1, ADIP): secret XOR SHA-1(shared secret ‖ nonceEven).
func adip(s *authSession, secret [20]byte) [20]byte {
	pad := sha1.Sum(append(s.key[:], s.nonceEven[:]...))
	for i := range secret {
		secret[i] ^= pad[i]
	}
	return secret
}

// MakeIdentity makes an RSA-2048 identity key with TPM_MakeIdentity (TPM
// 1.2 Part 3, 15.1) for a privacy CA whose TPM_CHOSENID_HASH (SHA-1 of
// its label ‖ TPM_PUBKEY, Part 2, 12.1) is labelPrivCADigest; zeros if
// there is none. It returns the wrapped key (the TPM_KEY, which the
// caller keeps: ActivateIdentity and Quote take it back), its public key
// (TPM_PUBKEY, see ParsePubKey12) and the identityBinding: the key's
// signature over TPM_IDENTITY_CONTENTS (Part 2, 12.5), checked here
// before anything is returned. The usage secret is the well-known one
// (see the top of this file). Costs: TPM_OIAP, TPM_OSAP, TPM_MakeIdentity
// (an RSA-2048 key generation in the TPM: seconds on many parts); no NV
// write.
func (t *TPM12) MakeIdentity(labelPrivCADigest [20]byte) (keyBlob, pubKey, identityBinding []byte, err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	srk, owner := t.cfg.SRKAuth.TPM12(), t.cfg.OwnerAuth.TPM12()
	s1, err := t.oiap(srk)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("%w%s", err, lockoutHint(err))
	}
	s2, err := t.osap(et12Owner, kh12Owner, owner)
	if err != nil {
		t.flush12(s1.handle, rt12Auth)
		return nil, nil, nil, fmt.Errorf("%w%s", err, lockoutHint(err))
	}
	encAuth := adip(s2, identityAuth12)
	params := append(append(encAuth[:], labelPrivCADigest[:]...), idKeyParams12...)
	out, err := t.authCmd("TPM_MakeIdentity", ord12MakeIdentity, nil, params, 0, use12{s: s1}, use12{s: s2})
	if err != nil {
		switch {
		case isRC12(err, rc12AuthFail):
			return nil, nil, nil, fmt.Errorf("%w (srk_auth refused)", err)
		case isRC12(err, rc12Auth2Fail):
			return nil, nil, nil, fmt.Errorf("%w (owner_auth refused)", err)
		case isRC12(err, rc12NoSRK):
			return nil, nil, nil, fmt.Errorf("%w: TPM_MakeIdentity: the TPM has no SRK (no owner): %w", ErrNotReady, err)
		}
		return nil, nil, nil, fmt.Errorf("%w%s", err, lockoutHint(err))
	}
	k, binding, err := parseMakeIdentity(out)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("hwtpm: TPM_MakeIdentity: %w", err)
	}
	pub, err := ParsePubKey12(k.pubKey())
	if err != nil {
		return nil, nil, nil, fmt.Errorf("hwtpm: TPM_MakeIdentity: %w", err)
	}
	if err := checkIdentityBinding12(pub, k.pubKey(), labelPrivCADigest, binding); err != nil {
		return nil, nil, nil, fmt.Errorf("hwtpm: TPM_MakeIdentity: %w", err)
	}
	return slices.Clone(k.raw), k.pubKey(), slices.Clone(binding), nil
}

// GroupLabel12 is the labelPrivCADigest (TPM_CHOSENID_HASH) the manager
// makes a group's identity key with: SHA-1 of the group's UUID. The
// identityBinding, which only the TPM makes with an identity key (TPM
// 1.2 Part 3, 15.1), then names the group the key was made for, so a
// key of another group (a swapped record) does not pass as this one's.
func GroupLabel12(group [16]byte) [20]byte { return sha1.Sum(group[:]) }

// CheckIdentityBinding12 checks an identityBinding: the identity key
// pubKey's (TPM_PUBKEY) RSASSA-PKCS1-v1_5 SHA-1 signature over the
// TPM_IDENTITY_CONTENTS (TPM 1.2 Part 2, 12.5: version 1.1.0.0,
// TPM_ORD_MakeIdentity, labelPrivCADigest, the key's TPM_PUBKEY).
func CheckIdentityBinding12(pubKey []byte, labelPrivCADigest [20]byte, binding []byte) error {
	pub, err := ParsePubKey12(pubKey)
	if err != nil {
		return err
	}
	return checkIdentityBinding12(pub, pubKey, labelPrivCADigest, binding)
}

func checkIdentityBinding12(pub *rsa.PublicKey, pubKey []byte, label [20]byte, binding []byte) error {
	contents := append(append(append(slices.Clone(ver11), binary.BigEndian.AppendUint32(nil, ord12MakeIdentity)...), label[:]...), pubKey...)
	h := sha1.Sum(contents)
	if rsa.VerifyPKCS1v15(pub, crypto.SHA1, h[:], binding) != nil {
		return errors.New("hwtpm: the identityBinding does not verify against the identity key and label")
	}
	return nil
}

// parseMakeIdentity splits TPM_MakeIdentity's output: idKey (TPM_KEY),
// identityBindingSize, identityBinding; the key must be an RSA identity
// key.
func parseMakeIdentity(out []byte) (*key12, []byte, error) {
	k, n, err := parseKey12(out)
	if err != nil {
		return nil, nil, err
	}
	r := &reader12{b: out[n:]}
	binding := r.sized32("identityBinding")
	if err := r.end("TPM_MakeIdentity output"); err != nil {
		return nil, nil, err
	}
	if err := checkIdentityKey(k); err != nil {
		return nil, nil, err
	}
	return k, binding, nil
}

func checkIdentityKey(k *key12) error {
	if k.usage != keyUsage12Identity {
		return fmt.Errorf("hwtpm: TPM_KEY of usage %#04x, not an identity key", k.usage)
	}
	_, err := ParsePubKey12(k.pubKey())
	return err
}

// identityKey checks a key blob the caller hands back.
func identityKey(blob []byte) (*key12, *rsa.PublicKey, error) {
	if len(blob) > maxKeyBlob12 {
		return nil, nil, fmt.Errorf("hwtpm: identity key blob of %d bytes", len(blob))
	}
	k, n, err := parseKey12(blob)
	if err == nil && n != len(blob) {
		err = fmt.Errorf("hwtpm: identity key blob: %d trailing bytes", len(blob)-n)
	}
	if err == nil {
		err = checkIdentityKey(k)
	}
	if err != nil {
		return nil, nil, err
	}
	pub, err := ParsePubKey12(k.pubKey())
	return k, pub, err
}

// loadKey2 loads blob under the SRK (TPM_LoadKey2, Part 3, 10.5) in an
// OIAP session authorised with srk_auth=, which it leaves open for the
// caller's next command (with the loaded key's secret). On error nothing
// is left loaded; on success the caller flushes the key, and ends the
// session by using it with continueAuthSession false.
func (t *TPM12) loadKey2(blob []byte) (*authSession, uint32, error) {
	s, err := t.oiap(t.cfg.SRKAuth.TPM12())
	if err != nil {
		return nil, 0, fmt.Errorf("%w%s", err, lockoutHint(err))
	}
	out, err := t.authCmd("TPM_LoadKey2", ord12LoadKey2, []uint32{kh12SRK}, blob, 4, use12{s: s, cont: true})
	if err == nil && len(out) != 4 {
		err = fmt.Errorf("hwtpm: TPM_LoadKey2: %d bytes of output, want a handle", len(out))
		if len(out) >= 4 {
			t.flush12(binary.BigEndian.Uint32(out), rt12Key)
		}
	}
	if err != nil {
		// A command the TPM refused ended the session; one refused here
		// did not.
		t.flush12(s.handle, rt12Auth)
		switch {
		case isRC12(err, rc12AuthFail):
			return nil, 0, fmt.Errorf("%w (srk_auth refused)", err)
		case isRC12(err, rc12DecryptError), isRC12(err, rc12BadDataSize):
			return nil, 0, fmt.Errorf("%w (the key blob was not made under this TPM's SRK)", err)
		}
		return nil, 0, fmt.Errorf("%w%s", err, lockoutHint(err))
	}
	return s, binary.BigEndian.Uint32(out), nil
}

// ActivateIdentity is TPM_ActivateIdentity (TPM 1.2 Part 3, 15.2): the
// identity key blob (from MakeIdentity) is loaded with TPM_LoadKey2, and
// the TPM decrypts encBlob — a TPM_EK_BLOB or TPM_ASYM_CA_CONTENTS (Part
// 2, 12.4 and 12.3) encrypted to the EK with RSA-OAEP, SHA-1, label
// "TCPA" — and returns its session key, the TPM_SYMMETRIC_KEY (Part 2,
// 11.1) bytes, only if its idDigest is SHA-1 of this identity key's
// TPM_PUBKEY: the privacy CA's proof that the key lives in the TPM of
// that EK. Authorised by the identity key (its well-known secret) and
// the owner (owner_auth=, OIAP). The key is flushed on every path.
// The session key comes back over the bus in clear (TPM 1.2 encrypts no
// response parameter outside a transport session, which this package
// does not use; doc.go): it only unlocks the credential the CA issued
// for a public key, and the CA's proof (that the TPM of that EK holds
// the identity key) is the decryption itself, which a sniffer cannot do.
// Costs: TPM_OIAP, TPM_LoadKey2, TPM_OIAP, TPM_ActivateIdentity (an
// RSA-2048 decryption with the EK), TPM_FlushSpecific.
func (t *TPM12) ActivateIdentity(keyBlob, encBlob []byte) ([]byte, error) {
	if _, _, err := identityKey(keyBlob); err != nil {
		return nil, err
	}
	if len(encBlob) == 0 || len(encBlob) > 512 {
		return nil, fmt.Errorf("hwtpm: TPM_ActivateIdentity: a %d-byte blob (an RSA-2048 ciphertext is 256)", len(encBlob))
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	s1, h, err := t.loadKey2(keyBlob)
	if err != nil {
		return nil, err
	}
	defer t.flush12(h, rt12Key)
	s1.key = identityAuth12
	s2, err := t.oiap(t.cfg.OwnerAuth.TPM12())
	if err != nil {
		t.flush12(s1.handle, rt12Auth)
		return nil, fmt.Errorf("%w%s", err, lockoutHint(err))
	}
	params := append(binary.BigEndian.AppendUint32(nil, uint32(len(encBlob))), encBlob...)
	out, err := t.authCmd("TPM_ActivateIdentity", ord12ActivateIdentity, []uint32{h}, params, 0, use12{s: s1}, use12{s: s2})
	if err != nil {
		switch {
		case isRC12(err, rc12Auth2Fail):
			return nil, fmt.Errorf("%w (owner_auth refused)", err)
		case isRC12(err, rc12BadParameter):
			return nil, fmt.Errorf("%w: %w (the blob was not made for this identity key)", ErrCredential, err)
		case isRC12(err, rc12DecryptError), isRC12(err, rc12BadDataSize):
			return nil, fmt.Errorf("%w: %w (the blob was not encrypted to this TPM's EK)", ErrCredential, err)
		}
		return nil, fmt.Errorf("%w%s", err, lockoutHint(err))
	}
	if err := checkSymKey12(out); err != nil {
		return nil, fmt.Errorf("hwtpm: TPM_ActivateIdentity: %w", err)
	}
	return slices.Clone(out), nil
}

// EKPublic12 returns the endorsement key's TPM_PUBKEY (TPM 1.2 Part 2,
// 10.5) with TPM_OwnerReadInternalPub (Part 3, 27.3: owner-authorised;
// TPM_ReadPubek, 27.2, is refused once the TPM has an owner), checked
// with ParsePubKey12. A privacy CA encrypts its TPM_EK_BLOB to it for
// ActivateIdentity. Costs: TPM_OIAP, TPM_OwnerReadInternalPub.
func (t *TPM12) EKPublic12() ([]byte, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	raw, err := tpm.OwnerReadPubEK(t.rw, t.cfg.OwnerAuth.TPM12())
	if err != nil {
		if isRC12(err, rc12AuthFail) {
			return nil, fmt.Errorf("hwtpm: TPM_OwnerReadInternalPub(EK): %w (owner_auth refused)", err)
		}
		return nil, fmt.Errorf("hwtpm: TPM_OwnerReadInternalPub(EK): %w%s", err, lockoutHint(err))
	}
	if _, err := ParsePubKey12(raw); err != nil {
		return nil, fmt.Errorf("hwtpm: the EK: %w", err)
	}
	return slices.Clone(raw), nil
}

// SymmetricKey12 is a TPM_SYMMETRIC_KEY (TPM 1.2 Part 2, 11.1) of an
// AES-128 key (TPM_ALG_AES128, TPM_ES_SYM_CTR): what a privacy CA puts in
// its TPM_ASYM_CA_CONTENTS and ActivateIdentity returns. The TPM does not
// use the key; it only hands it back, so the algorithm is a label.
func SymmetricKey12(key []byte) []byte {
	b := binary.BigEndian.AppendUint32(nil, 0x00000006) // TPM_ALG_AES128
	b = binary.BigEndian.AppendUint16(b, 0x0004)        // TPM_ES_SYM_CTR
	b = binary.BigEndian.AppendUint16(b, uint16(len(key)))
	return append(b, key...)
}

// ActivationBlob12 is what a privacy CA sends for ActivateIdentity: the
// TPM_SYMMETRIC_KEY symKey (SymmetricKey12) and the SHA-1 digest of the
// identity key's TPM_PUBKEY idPubKey, encrypted to the EK with
// RSA-OAEP (SHA-1, label "TCPA"; TPM 1.2 Part 1, "Identity Creation"), as
// the older TPM_ASYM_CA_CONTENTS (Part 2, 12.3), or with ekBlob as a
// TPM_EK_BLOB (12.4) of type TPM_EK_TYPE_ACTIVATE holding a
// TPM_EK_BLOB_ACTIVATE (12.5) without PCR binding. The TPM releases
// symKey only if it holds the EK's private part and the identity key is
// the one whose digest is inside: the proof `xenvtpm group ak` asks for.
func ActivationBlob12(ek *rsa.PublicKey, symKey, idPubKey []byte, ekBlob bool) ([]byte, error) {
	if err := checkSymKey12(symKey); err != nil {
		return nil, fmt.Errorf("hwtpm: %w", err)
	}
	id := sha1.Sum(idPubKey)
	plain := append(slices.Clone(symKey), id[:]...)
	if ekBlob {
		act := binary.BigEndian.AppendUint16(nil, 0x002B) // TPM_TAG_EK_BLOB_ACTIVATE
		act = append(act, symKey...)
		act = append(act, id[:]...)
		// TPM_PCR_INFO_SHORT: an empty 3-byte selection, any locality,
		// a zero digestAtRelease.
		act = append(act, 0, 3, 0, 0, 0, 0x1F)
		act = append(act, make([]byte, 20)...)
		plain = binary.BigEndian.AppendUint16(nil, 0x000C)   // TPM_TAG_EK_BLOB
		plain = binary.BigEndian.AppendUint16(plain, 0x0001) // TPM_EK_TYPE_ACTIVATE
		plain = binary.BigEndian.AppendUint32(plain, uint32(len(act)))
		plain = append(plain, act...)
	}
	return rsa.EncryptOAEP(sha1.New(), rand.Reader, ek, plain, []byte("TCPA"))
}

// checkSymKey12 checks that p is exactly one TPM_SYMMETRIC_KEY: algId,
// encScheme, a UINT16-sized key.
func checkSymKey12(p []byte) error {
	r := &reader12{b: p}
	r.bytes(4+2, "TPM_SYMMETRIC_KEY algId, encScheme")
	n := r.u16("TPM_SYMMETRIC_KEY size")
	r.bytes(int(n), "TPM_SYMMETRIC_KEY data")
	return r.end("TPM_SYMMETRIC_KEY")
}

// pcrSelection12 is a TPM_PCR_SELECTION (Part 2, 8.1) of 3 bytes (24
// PCRs).
func pcrSelection12(pcrs []uint) []byte {
	var sel [3]byte
	for _, p := range pcrs {
		sel[p/8] |= 1 << (p % 8)
	}
	return append(binary.BigEndian.AppendUint16(nil, 3), sel[:]...)
}

// QuoteInfo12 builds the TPM_QUOTE_INFO (TPM 1.2 Part 2, 11.3) that
// TPM_Quote signs: version 1.1.0.0, "QUOT", the TPM_COMPOSITE_HASH
// (SHA-1 of the TPM_PCR_COMPOSITE) and the nonce (externalData).
func QuoteInfo12(composite []byte, nonce [20]byte) []byte {
	d := sha1.Sum(composite)
	b := append(slices.Clone(ver11), "QUOT"...)
	b = append(b, d[:]...)
	return append(b, nonce[:]...)
}

// parseQuote12 splits TPM_Quote's output: pcrData (TPM_PCR_COMPOSITE,
// Part 2, 8.2), sigSize, sig. The composite must select exactly pcrs
// (ascending) and hold a SHA-1 value for each; it is returned as the TPM
// sent it, for TPM_QUOTE_INFO.
func parseQuote12(out []byte, pcrs []uint) (composite []byte, values [][]byte, sig []byte, err error) {
	r := &reader12{b: out}
	sel := r.bytes(2+int(r.peek16()), "TPM_PCR_SELECTION")
	vals := r.sized32("TPM_PCR_COMPOSITE pcrValue")
	composite = out[:len(out)-len(r.b)]
	sig = r.sized32("sig")
	if err := r.end("TPM_Quote output"); err != nil {
		return nil, nil, nil, err
	}
	if want := pcrSelection12(pcrs); string(sel) != string(want) {
		return nil, nil, nil, fmt.Errorf("TPM_PCR_SELECTION % x, asked % x", sel, want)
	}
	if len(vals) != sha1.Size*len(pcrs) {
		return nil, nil, nil, fmt.Errorf("%d bytes of PCR values for %d PCRs", len(vals), len(pcrs))
	}
	for i := range pcrs {
		values = append(values, slices.Clone(vals[sha1.Size*i:sha1.Size*(i+1)]))
	}
	return composite, values, sig, nil
}

// peek16 is the next UINT16 without reading it (0 if there is none).
func (r *reader12) peek16() uint16 {
	if r.err != nil || len(r.b) < 2 {
		return 0
	}
	return binary.BigEndian.Uint16(r.b)
}

// Quote is TPM_Quote (TPM 1.2 Part 3, 16.1) with the identity key of
// keyBlob over pcrs (SHA-1 PCRs, 0..MaxPCR) with nonce as externalData.
// It returns the TPM_QUOTE_INFO the TPM signed (see QuoteInfo12), the
// signature (RSASSA-PKCS1-v1_5 with SHA-1 over it) and the PCR values, in
// ascending PCR order (pcrs is sorted and stripped of repeats). The
// signature is checked against the key before anything is returned. The
// key is loaded with TPM_LoadKey2 and flushed on every path. Costs:
// TPM_OIAP, TPM_LoadKey2, TPM_Quote, TPM_FlushSpecific.
func (t *TPM12) Quote(keyBlob []byte, nonce [20]byte, pcrs []uint) (quoteInfo, sig []byte, pcrValues [][]byte, err error) {
	pcrs = slices.Compact(slices.Sorted(slices.Values(pcrs)))
	if len(pcrs) == 0 {
		return nil, nil, nil, errors.New("hwtpm: TPM_Quote: no PCRs")
	}
	if pcrs[len(pcrs)-1] > MaxPCR {
		return nil, nil, nil, fmt.Errorf("hwtpm: TPM_Quote: PCR %d out of range 0..%d", pcrs[len(pcrs)-1], MaxPCR)
	}
	_, pub, err := identityKey(keyBlob)
	if err != nil {
		return nil, nil, nil, err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	s, h, err := t.loadKey2(keyBlob)
	if err != nil {
		return nil, nil, nil, err
	}
	defer t.flush12(h, rt12Key)
	s.key = identityAuth12
	params := append(nonce[:], pcrSelection12(pcrs)...)
	out, err := t.authCmd("TPM_Quote", ord12Quote, []uint32{h}, params, 0, use12{s: s})
	if err != nil {
		return nil, nil, nil, fmt.Errorf("%w%s", err, lockoutHint(err))
	}
	composite, values, sig, err := parseQuote12(out, pcrs)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("hwtpm: TPM_Quote: %w", err)
	}
	quoteInfo = QuoteInfo12(composite, nonce)
	d := sha1.Sum(quoteInfo)
	if err := rsa.VerifyPKCS1v15(pub, crypto.SHA1, d[:], sig); err != nil {
		return nil, nil, nil, errors.New("hwtpm: TPM_Quote: the signature does not verify against the identity key")
	}
	return quoteInfo, slices.Clone(sig), values, nil
}
