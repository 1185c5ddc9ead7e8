package conformance

import (
	"bytes"
	"crypto"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdh"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"

	gt "github.com/google/go-tpm/tpm2"
	"github.com/google/go-tpm/tpm2/transport"
)

// Duplication steps, Part 3 §13 and Part 1 §23.3.2. Seeds and
// TPM-generated keys are random, so the steps compare what is not: the
// response codes, whether the wrappers verify, and the sensitive area the
// test recovers by unwrapping with keys it holds (its own storage keys,
// loaded public-only with LoadExternal) or by using the imported key.

// The test's storage parents: both TPMs load their public areas; only the
// test can unwrap what is wrapped to them.
var (
	dupRSAKey, _ = rsa.GenerateKey(rand.Reader, 2048)
	dupECCKey, _ = ecdh.P256().GenerateKey(rand.Reader)
)

func aesCFB(bits gt.TPMKeyBits) gt.TPMTSymDefObject {
	return gt.TPMTSymDefObject{Algorithm: gt.TPMAlgAES, KeyBits: gt.NewTPMUSymKeyBits(gt.TPMAlgAES, bits),
		Mode: gt.NewTPMUSymMode(gt.TPMAlgAES, gt.TPMAlgCFB)}
}

// innerSym is symmetricAlg of Duplicate and Import (a TPMT_SYM_DEF in
// go-tpm, marshalled as TPMT_SYM_DEF_OBJECT is).
func innerSym(bits gt.TPMKeyBits) gt.TPMTSymDef {
	if bits == 0 {
		return gt.TPMTSymDef{Algorithm: gt.TPMAlgNull}
	}
	return gt.TPMTSymDef{Algorithm: gt.TPMAlgAES, KeyBits: gt.NewTPMUSymKeyBits(gt.TPMAlgAES, bits),
		Mode: gt.NewTPMUSymMode(gt.TPMAlgAES, gt.TPMAlgCFB)}
}

var storageAttrs = gt.TPMAObject{Restricted: true, Decrypt: true, UserWithAuth: true}

func dupRSAPublic() gt.TPMTPublic {
	return gt.TPMTPublic{Type: gt.TPMAlgRSA, NameAlg: gt.TPMAlgSHA256, ObjectAttributes: storageAttrs,
		Parameters: gt.NewTPMUPublicParms(gt.TPMAlgRSA, &gt.TPMSRSAParms{Symmetric: aesCFB(128),
			Scheme: gt.TPMTRSAScheme{Scheme: gt.TPMAlgNull}, KeyBits: 2048}),
		Unique: gt.NewTPMUPublicID(gt.TPMAlgRSA, &gt.TPM2BPublicKeyRSA{Buffer: dupRSAKey.N.Bytes()})}
}

func dupECCPublic() gt.TPMTPublic {
	raw := dupECCKey.PublicKey().Bytes()[1:]
	return gt.TPMTPublic{Type: gt.TPMAlgECC, NameAlg: gt.TPMAlgSHA256, ObjectAttributes: storageAttrs,
		Parameters: gt.NewTPMUPublicParms(gt.TPMAlgECC, &gt.TPMSECCParms{Symmetric: aesCFB(256),
			Scheme: gt.TPMTECCScheme{Scheme: gt.TPMAlgNull}, CurveID: gt.TPMECCNistP256, KDF: gt.TPMTKDFScheme{Scheme: gt.TPMAlgNull}}),
		Unique: gt.NewTPMUPublicID(gt.TPMAlgECC, &gt.TPMSECCPoint{X: gt.TPM2BECCParameter{Buffer: raw[:32]}, Y: gt.TPM2BECCParameter{Buffer: raw[32:]}})}
}

// unwrapOuter removes the outer wrapper of a duplicate wrapped to one of
// the test's keys (Part 1 §23.3.2): the seed from encSeed (RSA-OAEP or
// ECDH + KDFe, label "DUPLICATE"), then the HMAC check and decryption.
func unwrapOuter(parent gt.TPMTPublic, encSeed, name, dup []byte) ([]byte, error) {
	var seed []byte
	bits := 128
	switch parent.Type {
	case gt.TPMAlgRSA:
		s, err := rsa.DecryptOAEP(sha256.New(), nil, dupRSAKey, encSeed, []byte("DUPLICATE\x00"))
		if err != nil {
			return nil, fmt.Errorf("seed: %v", err)
		}
		seed = s
	case gt.TPMAlgECC:
		p, err := gt.Unmarshal[gt.TPMSECCPoint](encSeed)
		if err != nil {
			return nil, fmt.Errorf("seed point: %v", err)
		}
		raw := append([]byte{4}, append(leftPad32(p.X.Buffer), leftPad32(p.Y.Buffer)...)...)
		eph, err := ecdh.P256().NewPublicKey(raw)
		if err != nil {
			return nil, fmt.Errorf("seed point: %v", err)
		}
		z, err := dupECCKey.ECDH(eph)
		if err != nil {
			return nil, err
		}
		seed = gt.KDFe(crypto.SHA256, z, "DUPLICATE", p.X.Buffer, dupECCKey.PublicKey().Bytes()[1:33], 256)
		bits = 256
	}
	if len(dup) < 2+32 || binary.BigEndian.Uint16(dup) != 32 {
		return nil, errors.New("no outer integrity")
	}
	integ, enc := dup[2:34], dup[34:]
	m := hmac.New(sha256.New, gt.KDFa(crypto.SHA256, seed, "INTEGRITY", nil, nil, 256))
	m.Write(enc)
	m.Write(name)
	if !hmac.Equal(m.Sum(nil), integ) {
		return nil, errors.New("outer HMAC does not verify")
	}
	return cfbDecrypt(gt.KDFa(crypto.SHA256, seed, "STORAGE", name, nil, bits), enc), nil
}

// unwrapInner decrypts the inner wrapper and checks its digest.
func unwrapInner(key, name, blob []byte) ([]byte, error) {
	plain := cfbDecrypt(key, blob)
	if len(plain) < 34 || binary.BigEndian.Uint16(plain) != 32 {
		return nil, errors.New("no inner integrity")
	}
	d := sha256.New()
	d.Write(plain[34:])
	d.Write(name)
	if !bytes.Equal(d.Sum(nil), plain[2:34]) {
		return nil, errors.New("inner digest does not verify")
	}
	return plain[34:], nil
}

func cfbDecrypt(key, data []byte) []byte {
	blk, err := aes.NewCipher(key)
	if err != nil {
		return nil
	}
	out := make([]byte, len(data))
	cipher.NewCFBDecrypter(blk, make([]byte, 16)).XORKeyStream(out, data)
	return out
}

func leftPad32(b []byte) []byte {
	if len(b) >= 32 {
		return b
	}
	return append(make([]byte, 32-len(b)), b...)
}

// The object duplicated: an HMAC key whose sensitive area the test
// chooses (it is imported), so that its duplicates carry the same
// plaintext on both TPMs and its HMACs can be checked.
var (
	dupHMACKey = bytes.Repeat([]byte{0x5a}, 32)
	dupSeed    = bytes.Repeat([]byte{0x11}, 32)
	dupAuth    = []byte("dupauth")
)

func dupSensitive() gt.TPMTSensitive {
	return gt.TPMTSensitive{SensitiveType: gt.TPMAlgKeyedHash, AuthValue: gt.TPM2BAuth{Buffer: dupAuth},
		SeedValue: gt.TPM2BDigest{Buffer: dupSeed},
		Sensitive: gt.NewTPMUSensitiveComposite(gt.TPMAlgKeyedHash, &gt.TPM2BSensitiveData{Buffer: dupHMACKey})}
}

func dupPublic(policy []byte, encryptedDuplication bool) gt.TPMTPublic {
	u := sha256.Sum256(append(append([]byte{}, dupSeed...), dupHMACKey...))
	return gt.TPMTPublic{Type: gt.TPMAlgKeyedHash, NameAlg: gt.TPMAlgSHA256,
		ObjectAttributes: gt.TPMAObject{SignEncrypt: true, UserWithAuth: true, EncryptedDuplication: encryptedDuplication},
		AuthPolicy:       gt.TPM2BDigest{Buffer: policy},
		Parameters: gt.NewTPMUPublicParms(gt.TPMAlgKeyedHash, &gt.TPMSKeyedHashParms{Scheme: gt.TPMTKeyedHashScheme{Scheme: gt.TPMAlgHMAC,
			Details: gt.NewTPMUSchemeKeyedHash(gt.TPMAlgHMAC, &gt.TPMSSchemeHMAC{HashAlg: gt.TPMAlgSHA256})}}),
		Unique: gt.NewTPMUPublicID(gt.TPMAlgKeyedHash, &gt.TPM2BDigest{Buffer: u[:]})}
}

// dupPolicy is PolicyCommandCode(TPM2_Duplicate).
var dupPolicy = calcPolicy(func(pc *gt.PolicyCalculator) error {
	return gt.PolicyCommandCode{Code: gt.TPMCCDuplicate}.Update(pc)
})

// importPlain imports pub with the test's sensitive area, unwrapped, under
// parent and loads it.
func importPlain(tr transport.TPM, parent gt.NamedHandle, pub gt.TPMTPublic) (gt.NamedHandle, error) {
	s := dupSensitive()
	im, err := (gt.Import{ParentHandle: parent, ObjectPublic: gt.New2B(pub),
		Duplicate: gt.TPM2BPrivate{Buffer: sized2(gt.Marshal(&s))}, Symmetric: innerSym(0)}).Execute(tr)
	if err != nil {
		return gt.NamedHandle{}, fmt.Errorf("Import: %s", rcString(err))
	}
	return loadUnder(tr, parent, pub, im.OutPrivate)
}

func loadUnder(tr transport.TPM, parent gt.NamedHandle, pub gt.TPMTPublic, priv gt.TPM2BPrivate) (gt.NamedHandle, error) {
	l, err := (gt.Load{ParentHandle: parent, InPublic: gt.New2B(pub), InPrivate: priv}).Execute(tr)
	if err != nil {
		return gt.NamedHandle{}, fmt.Errorf("Load: %s", rcString(err))
	}
	return gt.NamedHandle{Handle: l.ObjectHandle, Name: l.Name}, nil
}

func flush(tr transport.TPM, hs ...gt.NamedHandle) {
	for _, h := range hs {
		if h.Handle != 0 {
			(gt.FlushContext{FlushHandle: h.Handle}).Execute(tr)
		}
	}
}

func primary(tr transport.TPM, hier gt.TPMHandle, tmpl gt.TPMTPublic) (gt.NamedHandle, error) {
	p, err := (gt.CreatePrimary{PrimaryHandle: hier, InPublic: gt.New2B(tmpl)}).Execute(tr)
	if err != nil {
		return gt.NamedHandle{}, fmt.Errorf("CreatePrimary: %s", rcString(err))
	}
	return gt.NamedHandle{Handle: p.ObjectHandle, Name: p.Name}, nil
}

func loadExternal(tr transport.TPM, pub gt.TPMTPublic) (gt.NamedHandle, error) {
	l, err := (gt.LoadExternal{InPublic: gt.New2B(pub), Hierarchy: gt.TPMRHOwner}).Execute(tr)
	if err != nil {
		return gt.NamedHandle{}, fmt.Errorf("LoadExternal: %s", rcString(err))
	}
	return gt.NamedHandle{Handle: l.ObjectHandle, Name: l.Name}, nil
}

// duplicateWith runs TPM2_Duplicate on obj, authorized by a policy
// session that runs policy (PolicyCommandCode(Duplicate) when nil).
func duplicateWith(tr transport.TPM, obj gt.NamedHandle, newParent gt.NamedHandle, keyIn []byte, sym gt.TPMTSymDef, policy gt.PolicyCallback) (*gt.DuplicateResponse, error) {
	if policy == nil {
		policy = func(tpm transport.TPM, s gt.TPMISHPolicy, _ gt.TPM2BNonce) error {
			_, err := (gt.PolicyCommandCode{PolicySession: s, Code: gt.TPMCCDuplicate}).Execute(tpm)
			return err
		}
	}
	var np any = newParent
	if newParent.Handle == gt.TPMRHNull || newParent.Handle == gt.TPMRHOwner {
		np = newParent.Handle
	}
	return gt.Duplicate{ObjectHandle: gt.AuthHandle{Handle: obj.Handle, Name: obj.Name, Auth: gt.Policy(gt.TPMAlgSHA256, 16, policy)},
		NewParentHandle: np.(interface {
			HandleValue() uint32
			KnownName() *gt.TPM2BName
		}), EncryptionKeyIn: gt.TPM2BData{Buffer: keyIn}, Symmetric: sym}.Execute(tr)
}

// rewrap sends TPM2_Rewrap (go-tpm has no structure) with an empty
// password for oldParent.
func rewrap(tr transport.TPM, oldParent, newParent gt.TPMHandle, dup, name, seed []byte) (outDup, outSeed []byte, rc string) {
	p := append(append(sized2(dup), sized2(name)...), sized2(seed)...)
	rsp, err := tr.Send(rawCommand(uint32(gt.TPMCCRewrap), []uint32{uint32(oldParent), uint32(newParent)}, emptyPassword, p))
	if err != nil {
		return nil, nil, "error: " + err.Error()
	}
	if len(rsp) < 10 {
		return nil, nil, fmt.Sprintf("short response % x", rsp)
	}
	if code := binary.BigEndian.Uint32(rsp[6:]); code != 0 {
		return nil, nil, fmt.Sprintf("rc=0x%03x", code)
	}
	b := rsp[14:]
	take := func() []byte {
		if len(b) < 2 || len(b) < 2+int(binary.BigEndian.Uint16(b)) {
			return nil
		}
		n := int(binary.BigEndian.Uint16(b))
		v := b[2 : 2+n]
		b = b[2+n:]
		return v
	}
	outDup = take()
	outSeed = take()
	return outDup, outSeed, "ok"
}

// hmacCheck computes an HMAC with the loaded duplicate and compares it
// with the test's own.
func hmacCheck(tr transport.TPM, k gt.NamedHandle) string {
	r, err := (gt.Hmac{Handle: gt.AuthHandle{Handle: k.Handle, Name: k.Name, Auth: gt.PasswordAuth(dupAuth)},
		Buffer: gt.TPM2BMaxBuffer{Buffer: []byte("duplicated")}, HashAlg: gt.TPMAlgSHA256}).Execute(tr)
	if err != nil {
		return "HMAC: " + rcString(err)
	}
	m := hmac.New(sha256.New, dupHMACKey)
	m.Write([]byte("duplicated"))
	if hmac.Equal(m.Sum(nil), r.OutHMAC.Buffer) {
		return "HMAC verified"
	}
	return "HMAC differs"
}

func digest(b []byte) string {
	d := sha256.Sum256(b)
	return fmt.Sprintf("%x", d[:8])
}

// withDupObject runs f with an ECC SRK under the owner and the test's
// HMAC key imported and loaded under it (authPolicy policy).
func withDupObject(tr transport.TPM, policy []byte, f func(srk, obj gt.NamedHandle) string) string {
	srk, err := primary(tr, gt.TPMRHOwner, gt.ECCSRKTemplate)
	if err != nil {
		return err.Error()
	}
	defer flush(tr, srk)
	obj, err := importPlain(tr, srk, dupPublic(policy, false))
	if err != nil {
		return err.Error()
	}
	defer flush(tr, obj)
	return f(srk, obj)
}

// toTestKey duplicates the test's HMAC key to one of the test's storage
// keys and unwraps the result: what the test recovers is the same on
// every conformant TPM.
func toTestKey(parent gt.TPMTPublic, keyIn []byte, bits gt.TPMKeyBits) func(tr transport.TPM) string {
	return func(tr transport.TPM) string {
		return withDupObject(tr, dupPolicy, func(_, obj gt.NamedHandle) string {
			np, err := loadExternal(tr, parent)
			if err != nil {
				return err.Error()
			}
			defer flush(tr, np)
			d, err := duplicateWith(tr, obj, np, keyIn, innerSym(bits), nil)
			if err != nil {
				return "Duplicate: " + rcString(err)
			}
			out := fmt.Sprintf("keyOut %d octets, seed %v; ", len(d.EncryptionKeyOut.Buffer), len(d.OutSymSeed.Buffer) != 0)
			plain, err := unwrapOuter(parent, d.OutSymSeed.Buffer, obj.Name.Buffer, d.Duplicate.Buffer)
			if err != nil {
				return out + err.Error()
			}
			out += "outer verified; "
			if bits != 0 {
				key := keyIn
				if len(key) == 0 {
					key = d.EncryptionKeyOut.Buffer
				}
				if plain, err = unwrapInner(key, obj.Name.Buffer, plain); err != nil {
					return out + err.Error()
				}
				out += "inner verified; "
			}
			return out + "sensitive " + digest(plain)
		})
	}
}

// roundTrip duplicates the test's key to a parent in the same TPM (an
// RSA or ECC primary in the endorsement hierarchy), imports it there,
// loads it and uses it.
func roundTrip(tmpl gt.TPMTPublic, keyIn []byte, bits gt.TPMKeyBits, viaRewrap bool) func(tr transport.TPM) string {
	return func(tr transport.TPM) string {
		srk, err := primary(tr, gt.TPMRHOwner, gt.ECCSRKTemplate)
		if err != nil {
			return err.Error()
		}
		pub := dupPublic(dupPolicy, false)
		obj, err := importPlain(tr, srk, pub)
		if err != nil {
			flush(tr, srk)
			return err.Error()
		}
		np, err := primary(tr, gt.TPMRHEndorsement, tmpl)
		if err != nil {
			flush(tr, obj, srk)
			return err.Error()
		}
		defer flush(tr, np)
		target := np
		if viaRewrap {
			// Duplicate to the owner's SRK, then move the outer wrapper
			// to the new parent.
			target = srk
		}
		d, err := duplicateWith(tr, obj, target, keyIn, innerSym(bits), nil)
		flush(tr, obj, srk)
		if err != nil {
			return "Duplicate: " + rcString(err)
		}
		out := ""
		dup, seed := d.Duplicate.Buffer, d.OutSymSeed.Buffer
		if viaRewrap {
			// The SRK was flushed to make room: load it again (a primary
			// is the same key for the same template).
			srk, err = primary(tr, gt.TPMRHOwner, gt.ECCSRKTemplate)
			if err != nil {
				return err.Error()
			}
			var rc string
			dup, seed, rc = rewrap(tr, srk.Handle, np.Handle, dup, obj.Name.Buffer, seed)
			flush(tr, srk)
			out += "Rewrap " + rc + "; "
			if rc != "ok" {
				return out
			}
		}
		key := keyIn
		if len(key) == 0 {
			key = d.EncryptionKeyOut.Buffer
		}
		im, err := (gt.Import{ParentHandle: np, EncryptionKey: gt.TPM2BData{Buffer: key}, ObjectPublic: gt.New2B(pub),
			Duplicate: gt.TPM2BPrivate{Buffer: dup}, InSymSeed: gt.TPM2BEncryptedSecret{Buffer: seed}, Symmetric: innerSym(bits)}).Execute(tr)
		if err != nil {
			return out + "Import: " + rcString(err)
		}
		k, err := loadUnder(tr, np, pub, im.OutPrivate)
		if err != nil {
			return out + err.Error()
		}
		defer flush(tr, k)
		return out + fmt.Sprintf("keyOut %d octets; imported, loaded (same name %v); %s", len(d.EncryptionKeyOut.Buffer),
			bytes.Equal(k.Name.Buffer, obj.Name.Buffer), hmacCheck(tr, k))
	}
}

func duplicationSteps() []diffStep {
	key16 := bytes.Repeat([]byte{0xa5}, 16)
	key32 := bytes.Repeat([]byte{0x3c}, 32)
	return []diffStep{
		{"Duplicate to an external RSA parent, outer wrapper only", toTestKey(dupRSAPublic(), nil, 0)},
		{"Duplicate to an external ECC parent, inner AES-128 with encryptionKeyIn", toTestKey(dupECCPublic(), key16, 128)},
		{"Duplicate to an external RSA parent, inner AES-256 with a TPM key", toTestKey(dupRSAPublic(), nil, 256)},
		{"Duplicate to an external ECC parent, inner AES-256 with a TPM key", toTestKey(dupECCPublic(), nil, 256)},
		{"Duplicate to TPM_RH_NULL: no wrapper, inner AES-256, inner AES-128 with a TPM key", func(tr transport.TPM) string {
			return withDupObject(tr, dupPolicy, func(_, obj gt.NamedHandle) string {
				null := gt.NamedHandle{Handle: gt.TPMRHNull}
				out := ""
				d, err := duplicateWith(tr, obj, null, nil, innerSym(0), nil)
				if err != nil {
					return "Duplicate: " + rcString(err)
				}
				// Without wrappers the duplicate is the TPM2B_SENSITIVE.
				out += fmt.Sprintf("plain %s seed %d; ", digest(d.Duplicate.Buffer), len(d.OutSymSeed.Buffer))
				d, err = duplicateWith(tr, obj, null, key32, innerSym(256), nil)
				if err != nil {
					return out + "Duplicate: " + rcString(err)
				}
				out += fmt.Sprintf("inner %s keyOut %d; ", digest(d.Duplicate.Buffer), len(d.EncryptionKeyOut.Buffer))
				d, err = duplicateWith(tr, obj, null, nil, innerSym(128), nil)
				if err != nil {
					return out + "Duplicate: " + rcString(err)
				}
				plain, err := unwrapInner(d.EncryptionKeyOut.Buffer, obj.Name.Buffer, d.Duplicate.Buffer)
				if err != nil {
					return out + err.Error()
				}
				return out + fmt.Sprintf("TPM key %d octets, sensitive %s", len(d.EncryptionKeyOut.Buffer), digest(plain))
			})
		}},
		{"Duplicate, Import under an RSA parent, Load, HMAC: outer and inner with a TPM key", roundTrip(gt.RSASRKTemplate, nil, 128, false)},
		{"Duplicate, Import under an ECC parent, Load, HMAC: outer only", roundTrip(gt.ECCSRKTemplate, nil, 0, false)},
		{"Duplicate, Import under an ECC parent, Load, HMAC: outer and inner AES-256 with encryptionKeyIn", roundTrip(gt.ECCSRKTemplate, bytes.Repeat([]byte{7}, 32), 256, false)},
		{"Duplicate, Rewrap to another parent, Import, Load, HMAC", roundTrip(gt.ECCSRKTemplate, key16, 128, true)},
		{"Rewrap from a TPM parent to the test's ECC key; from TPM_RH_NULL to the test's RSA key; to TPM_RH_NULL", func(tr transport.TPM) string {
			return withDupObject(tr, dupPolicy, func(srk, obj gt.NamedHandle) string {
				ecc, err := loadExternal(tr, dupECCPublic())
				if err != nil {
					return err.Error()
				}
				defer flush(tr, ecc)
				d, err := duplicateWith(tr, obj, srk, key16, innerSym(128), nil)
				if err != nil {
					return "Duplicate: " + rcString(err)
				}
				dup, seed, rc := rewrap(tr, srk.Handle, ecc.Handle, d.Duplicate.Buffer, obj.Name.Buffer, d.OutSymSeed.Buffer)
				out := "Rewrap " + rc + "; "
				if rc == "ok" {
					plain, err := unwrapOuter(dupECCPublic(), seed, obj.Name.Buffer, dup)
					if err == nil {
						plain, err = unwrapInner(key16, obj.Name.Buffer, plain)
					}
					if err != nil {
						return out + err.Error()
					}
					out += "sensitive " + digest(plain) + "; "
				}
				d, err = duplicateWith(tr, obj, gt.NamedHandle{Handle: gt.TPMRHNull}, nil, innerSym(0), nil)
				if err != nil {
					return out + "Duplicate: " + rcString(err)
				}
				flush(tr, ecc)
				rsaK, err := loadExternal(tr, dupRSAPublic())
				if err != nil {
					return out + err.Error()
				}
				defer flush(tr, rsaK)
				dup, seed, rc = rewrap(tr, gt.TPMRHNull, rsaK.Handle, d.Duplicate.Buffer, obj.Name.Buffer, nil)
				out += "Rewrap from NULL " + rc + "; "
				if rc == "ok" {
					plain, err := unwrapOuter(dupRSAPublic(), seed, obj.Name.Buffer, dup)
					if err != nil {
						return out + err.Error()
					}
					out += fmt.Sprintf("same as unwrapped %v; ", bytes.Equal(plain, d.Duplicate.Buffer))
				}
				d, err = duplicateWith(tr, obj, srk, nil, innerSym(0), nil)
				if err != nil {
					return out + "Duplicate: " + rcString(err)
				}
				dup, seed, rc = rewrap(tr, srk.Handle, gt.TPMRHNull, d.Duplicate.Buffer, obj.Name.Buffer, d.OutSymSeed.Buffer)
				return out + fmt.Sprintf("Rewrap to NULL %s: %s seed %d", rc, digest(dup), len(seed))
			})
		}},
		{"Duplicate authorized by PolicyDuplicationSelect: the selected parent, another", func(tr transport.TPM) string {
			np := dupRSAPublic()
			npName, _ := gt.ObjectName(&np)
			policy := calcPolicy(func(pc *gt.PolicyCalculator) error {
				return gt.PolicyDuplicationSelect{NewParentName: *npName}.Update(pc)
			})
			return withDupObject(tr, policy, func(srk, obj gt.NamedHandle) string {
				// nameHash covers the object's Name even when the policy
				// digest does not (includeObject NO).
				sel := func(tpm transport.TPM, s gt.TPMISHPolicy, _ gt.TPM2BNonce) error {
					_, err := (gt.PolicyDuplicationSelect{PolicySession: s, ObjectName: obj.Name, NewParentName: *npName}).Execute(tpm)
					return err
				}
				rsaK, err := loadExternal(tr, np)
				if err != nil {
					return err.Error()
				}
				defer flush(tr, rsaK)
				_, err = duplicateWith(tr, obj, rsaK, nil, innerSym(0), sel)
				out := "selected " + rcString(err)
				_, err = duplicateWith(tr, obj, srk, nil, innerSym(0), sel)
				out += ", another " + rcString(err)
				_, err = duplicateWith(tr, obj, rsaK, nil, innerSym(0), nil)
				return out + ", PolicyCommandCode instead " + rcString(err)
			})
		}},
		{"PolicyDuplicationSelect: digests with and without the object, then PolicyCommandCode, PolicyNameHash", func(tr transport.TPM) string {
			obj, parent := sized2([]byte("object name")), sized2([]byte("parent name"))
			sel := func(include byte) func(s gt.TPMISHPolicy) error {
				return func(s gt.TPMISHPolicy) error {
					return fmt.Errorf("%s", sendRC(tr, rawCommand(uint32(gt.TPMCCPolicyDuplicationSelect), []uint32{uint32(s)}, nil,
						append(append(append([]byte{}, obj...), parent...), include))))
				}
			}
			out := trialDigest(tr, func(s gt.TPMISHPolicy) error { sel(1)(s); return nil })
			out += " " + trialDigest(tr, func(s gt.TPMISHPolicy) error { sel(0)(s); return nil })
			out += " " + trialDigest(tr, func(s gt.TPMISHPolicy) error {
				sel(0)(s)
				_, err := (gt.PolicyCommandCode{PolicySession: s, Code: gt.TPMCCDuplicate}).Execute(tr)
				return err
			})
			out += " " + trialDigest(tr, func(s gt.TPMISHPolicy) error {
				sel(0)(s)
				_, err := (gt.PolicyCommandCode{PolicySession: s, Code: gt.TPMCCUnseal}).Execute(tr)
				return err
			})
			out += " " + trialDigest(tr, func(s gt.TPMISHPolicy) error {
				(gt.PolicyCommandCode{PolicySession: s, Code: gt.TPMCCUnseal}).Execute(tr)
				return sel(0)(s)
			})
			return out + " " + trialDigest(tr, func(s gt.TPMISHPolicy) error {
				sendRC(tr, rawCommand(uint32(gt.TPMCCPolicyNameHash), []uint32{uint32(s)}, nil, sized2(make([]byte, 32))))
				return sel(0)(s)
			})
		}},
		{"policy sessions for a public-only object and a sequence", func(tr transport.TPM) string {
			k, err := loadExternal(tr, dupPublic(dupPolicy, false))
			if err != nil {
				return err.Error()
			}
			_, err = duplicateWith(tr, k, gt.NamedHandle{Handle: gt.TPMRHNull}, nil, innerSym(0), nil)
			flush(tr, k)
			out := "Duplicate of a public-only object: " + rcString(err)
			seq, err := (gt.HashSequenceStart{HashAlg: gt.TPMAlgSHA256}).Execute(tr)
			if err != nil {
				return out + " HashSequenceStart: " + rcString(err)
			}
			defer flush(tr, gt.NamedHandle{Handle: seq.SequenceHandle})
			_, err = (gt.SequenceUpdate{SequenceHandle: gt.AuthHandle{Handle: seq.SequenceHandle, Auth: gt.Policy(gt.TPMAlgSHA256, 16,
				func(transport.TPM, gt.TPMISHPolicy, gt.TPM2BNonce) error { return nil })}, Buffer: gt.TPM2BMaxBuffer{Buffer: []byte("x")}}).Execute(tr)
			return out + "; SequenceUpdate with a policy session: " + rcString(err)
		}},
		{"Duplicate errors", func(tr transport.TPM) string {
			return withDupObject(tr, dupPolicy, func(srk, obj gt.NamedHandle) string {
				sig, err := loadExternal(tr, extPub)
				if err != nil {
					return err.Error()
				}
				null := gt.NamedHandle{Handle: gt.TPMRHNull}
				out := ""
				for _, c := range []struct {
					name  string
					np    gt.NamedHandle
					keyIn []byte
					sym   gt.TPMTSymDef
				}{
					{"signing new parent", sig, nil, innerSym(0)},
					{"owner as new parent", gt.NamedHandle{Handle: gt.TPMRHOwner}, nil, innerSym(0)},
					{"key without symmetricAlg", null, make([]byte, 16), innerSym(0)},
					{"short key", null, make([]byte, 15), innerSym(128)},
					{"AES-128 key for AES-256", srk, make([]byte, 16), innerSym(256)},
					{"AES-100", null, nil, gt.TPMTSymDef{Algorithm: gt.TPMAlgAES, KeyBits: gt.NewTPMUSymKeyBits(gt.TPMAlgAES, gt.TPMKeyBits(100)),
						Mode: gt.NewTPMUSymMode(gt.TPMAlgAES, gt.TPMAlgCFB)}},
					{"XOR inner", null, nil, gt.TPMTSymDef{Algorithm: gt.TPMAlgXOR, KeyBits: gt.NewTPMUSymKeyBits(gt.TPMAlgXOR, gt.TPMAlgSHA256)}},
				} {
					_, err := duplicateWith(tr, obj, c.np, c.keyIn, c.sym, nil)
					out += c.name + " " + rcString(err) + "; "
				}
				flush(tr, sig)
				// A key that is not duplicable: fixedParent.
				fixed, err := (gt.CreateLoaded{ParentHandle: srk, InPublic: gt.New2BTemplate(&gt.TPMTPublic{Type: gt.TPMAlgKeyedHash, NameAlg: gt.TPMAlgSHA256,
					ObjectAttributes: gt.TPMAObject{FixedTPM: true, FixedParent: true, SensitiveDataOrigin: true, UserWithAuth: true, SignEncrypt: true},
					AuthPolicy:       gt.TPM2BDigest{Buffer: dupPolicy},
					Parameters: gt.NewTPMUPublicParms(gt.TPMAlgKeyedHash, &gt.TPMSKeyedHashParms{Scheme: gt.TPMTKeyedHashScheme{Scheme: gt.TPMAlgHMAC,
						Details: gt.NewTPMUSchemeKeyedHash(gt.TPMAlgHMAC, &gt.TPMSSchemeHMAC{HashAlg: gt.TPMAlgSHA256})}})})}).Execute(tr)
				if err != nil {
					return out + "CreateLoaded: " + rcString(err)
				}
				defer flush(tr, gt.NamedHandle{Handle: fixed.ObjectHandle})
				_, err = duplicateWith(tr, gt.NamedHandle{Handle: fixed.ObjectHandle, Name: fixed.Name}, null, nil, innerSym(0), nil)
				out += "fixedParent " + rcString(err) + "; "
				// The DUP role needs a policy session.
				_, err = gt.Duplicate{ObjectHandle: gt.AuthHandle{Handle: obj.Handle, Name: obj.Name, Auth: gt.PasswordAuth(dupAuth)},
					NewParentHandle: gt.TPMRHNull, Symmetric: innerSym(0)}.Execute(tr)
				return out + "password " + rcString(err)
			})
		}},
		{"encryptedDuplication: Duplicate and Import need both wrappers", func(tr transport.TPM) string {
			srk, err := primary(tr, gt.TPMRHOwner, gt.ECCSRKTemplate)
			if err != nil {
				return err.Error()
			}
			pub := dupPublic(dupPolicy, true)
			obj, err := importPlain(tr, srk, pub)
			out := ""
			if err != nil {
				// Import refuses encryptedDuplication without wrappers;
				// create such a key instead.
				out += err.Error() + "; "
				pub = dupPublic(dupPolicy, true)
				pub.ObjectAttributes.SensitiveDataOrigin = true
				pub.Unique = gt.NewTPMUPublicID(gt.TPMAlgKeyedHash, &gt.TPM2BDigest{})
				cl, err := (gt.CreateLoaded{ParentHandle: srk, InPublic: gt.New2BTemplate(&pub)}).Execute(tr)
				if err != nil {
					flush(tr, srk)
					return out + "CreateLoaded: " + rcString(err)
				}
				obj = gt.NamedHandle{Handle: cl.ObjectHandle, Name: cl.Name}
				p, _ := cl.OutPublic.Contents()
				pub = *p
			}
			np, err := primary(tr, gt.TPMRHEndorsement, gt.ECCSRKTemplate)
			if err != nil {
				flush(tr, obj, srk)
				return out + err.Error()
			}
			defer flush(tr, np)
			_, err = duplicateWith(tr, obj, np, nil, innerSym(0), nil)
			out += "no inner " + rcString(err) + "; "
			_, err = duplicateWith(tr, obj, gt.NamedHandle{Handle: gt.TPMRHNull}, nil, innerSym(128), nil)
			out += "no outer " + rcString(err) + "; "
			d, err := duplicateWith(tr, obj, np, nil, innerSym(128), nil)
			flush(tr, obj, srk)
			if err != nil {
				return out + "both " + rcString(err)
			}
			out += "both ok; "
			imp := func(key []byte, sym gt.TPMTSymDef, seed []byte) string {
				_, err := (gt.Import{ParentHandle: np, EncryptionKey: gt.TPM2BData{Buffer: key}, ObjectPublic: gt.New2B(pub),
					Duplicate: d.Duplicate, InSymSeed: gt.TPM2BEncryptedSecret{Buffer: seed}, Symmetric: sym}).Execute(tr)
				return rcString(err)
			}
			k := d.EncryptionKeyOut.Buffer
			out += "Import without inner " + imp(nil, innerSym(0), d.OutSymSeed.Buffer)
			out += ", without outer " + imp(k, innerSym(128), nil)
			return out + ", with both " + imp(k, innerSym(128), d.OutSymSeed.Buffer)
		}},
		{"Import errors", func(tr transport.TPM) string {
			srk, err := primary(tr, gt.TPMRHOwner, gt.ECCSRKTemplate)
			if err != nil {
				return err.Error()
			}
			pub := dupPublic(dupPolicy, false)
			obj, err := importPlain(tr, srk, pub)
			if err != nil {
				flush(tr, srk)
				return err.Error()
			}
			np, err := primary(tr, gt.TPMRHEndorsement, gt.ECCSRKTemplate)
			if err != nil {
				flush(tr, obj, srk)
				return err.Error()
			}
			defer flush(tr, np)
			key := bytes.Repeat([]byte{9}, 16)
			d, err := duplicateWith(tr, obj, np, key, innerSym(128), nil)
			flush(tr, obj, srk)
			if err != nil {
				return "Duplicate: " + rcString(err)
			}
			imp := func(key []byte, pub gt.TPMTPublic, dup []byte, sym gt.TPMTSymDef, seed []byte) string {
				_, err := (gt.Import{ParentHandle: np, EncryptionKey: gt.TPM2BData{Buffer: key}, ObjectPublic: gt.New2B(pub),
					Duplicate: gt.TPM2BPrivate{Buffer: dup}, InSymSeed: gt.TPM2BEncryptedSecret{Buffer: seed}, Symmetric: sym}).Execute(tr)
				return rcString(err)
			}
			dup, seed := d.Duplicate.Buffer, d.OutSymSeed.Buffer
			flip := func(b []byte, i int) []byte {
				c := append([]byte{}, b...)
				c[i] ^= 1
				return c
			}
			fixed := pub
			fixed.ObjectAttributes.FixedParent = true
			other := dupPublic(nil, false)
			out := "genuine " + imp(key, pub, dup, innerSym(128), seed)
			out += "; short key " + imp(key[:15], pub, dup, innerSym(128), seed)
			out += "; key without symmetricAlg " + imp(key, pub, dup, innerSym(0), seed)
			out += "; wrong inner key " + imp(flip(key, 0), pub, dup, innerSym(128), seed)
			out += "; no inner unwrap " + imp(nil, pub, dup, innerSym(0), seed)
			out += "; tampered outer HMAC " + imp(key, pub, flip(dup, 3), innerSym(128), seed)
			out += "; tampered ciphertext " + imp(key, pub, flip(dup, len(dup)-1), innerSym(128), seed)
			out += "; truncated " + imp(key, pub, dup[:20], innerSym(128), seed)
			out += "; another name " + imp(key, other, dup, innerSym(128), seed)
			out += "; fixedParent " + imp(key, fixed, dup, innerSym(128), seed)
			out += "; bad seed " + imp(key, pub, dup, innerSym(128), flip(seed, 5))
			out += "; no seed " + imp(key, pub, dup, innerSym(128), nil)
			ext, err := loadExternal(tr, dupRSAPublic())
			if err != nil {
				return out + "; " + err.Error()
			}
			defer flush(tr, ext)
			_, err = (gt.Import{ParentHandle: ext, EncryptionKey: gt.TPM2BData{Buffer: key}, ObjectPublic: gt.New2B(pub),
				Duplicate: gt.TPM2BPrivate{Buffer: dup}, InSymSeed: gt.TPM2BEncryptedSecret{Buffer: seed}, Symmetric: innerSym(128)}).Execute(tr)
			return out + "; public-only parent " + rcString(err)
		}},
		{"Rewrap errors", func(tr transport.TPM) string {
			return withDupObject(tr, dupPolicy, func(srk, obj gt.NamedHandle) string {
				sig, err := loadExternal(tr, extPub)
				if err != nil {
					return err.Error()
				}
				defer flush(tr, sig)
				d, err := duplicateWith(tr, obj, srk, nil, innerSym(0), nil)
				if err != nil {
					return "Duplicate: " + rcString(err)
				}
				dup, name, seed := d.Duplicate.Buffer, obj.Name.Buffer, d.OutSymSeed.Buffer
				flip := func(b []byte, i int) []byte {
					c := append([]byte{}, b...)
					c[i] ^= 1
					return c
				}
				rc := func(o, n gt.TPMHandle, dup, name, seed []byte) string {
					_, _, r := rewrap(tr, o, n, dup, name, seed)
					return r
				}
				null := gt.TPMRHNull
				out := "no seed " + rc(srk.Handle, null, dup, name, nil)
				out += "; seed from NULL " + rc(null, null, dup, name, seed)
				out += "; signing old parent " + rc(sig.Handle, null, dup, name, seed)
				out += "; signing new parent " + rc(srk.Handle, sig.Handle, dup, name, seed)
				out += "; owner as new parent " + rc(srk.Handle, gt.TPMRHOwner, dup, name, seed)
				out += "; bad seed " + rc(srk.Handle, null, dup, name, flip(seed, 9))
				out += "; tampered " + rc(srk.Handle, null, flip(dup, len(dup)-1), name, seed)
				out += "; another name " + rc(srk.Handle, null, dup, flip(name, 4), seed)
				out += "; short " + rc(srk.Handle, null, dup[:1], name, seed)
				return out + "; NULL to NULL " + rc(null, null, dup, name, nil)
			})
		}},
	}
}
