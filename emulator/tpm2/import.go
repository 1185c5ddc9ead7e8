package tpm2

import (
	"crypto"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"encoding/binary"
	"io"

	gt "github.com/google/go-tpm/tpm2"
)

// Duplication, Part 3 §13: TPM2_Duplicate, TPM2_Rewrap and TPM2_Import,
// with the two wrappers of Part 1 §23.3.2:
//   - the inner wrapper protects the TPM2B_SENSITIVE with symmetricAlg
//     (CFB, zero IV) under a caller's or the TPM's key, after an
//     integrity digest H_nameAlg(sensitive || Name) with the object's
//     nameAlg;
//   - the outer wrapper is the storage protection of Part 1 §23.3.2.3 but
//     keyed from a seed shared with the new parent (label "DUPLICATE":
//     RSA-OAEP, or ECDH and KDFe) instead of the parent's seedValue.
//
// The order of the checks, and their response codes, are the reference
// implementation's, so that clients see what they see from hardware.

// labelDuplicate is the label L of the duplication seed (Part 1 §4).
const labelDuplicate = "DUPLICATE"

// maxDigest2B is the largest TPM2B_DIGEST (sizeof TPMU_HA, SHA-512).
const maxDigest2B = 64

// isStorage reports a key that can be a new parent of a duplicate: a
// restricted decryption key with a public part, with or without its
// private part (the new parent usually lives in another TPM and is
// loaded here with LoadExternal).
func isStorage(o *object) bool {
	a := o.attrs()
	return o.seq == nil && a.Restricted && a.Decrypt && !a.SignEncrypt &&
		(o.pub.Type == gt.TPMAlgRSA || o.pub.Type == gt.TPMAlgECC)
}

// wrapParent resolves handle n of Duplicate or Rewrap, a TPMI_DH_OBJECT+
// that names the parent whose wrapper is added or removed: nil for
// TPM_RH_NULL (no outer wrapper), else a storage key.
func (t *TPM) wrapParent(h uint32, n int) (*object, error) {
	if h == rhNull {
		return nil, nil
	}
	if ht := h >> 24; ht != htTransient && ht != htPersistent {
		return nil, rcH(rcValue, n, "0x%08x is neither an object nor TPM_RH_NULL", h)
	}
	o, err := t.loadedObject(h, n)
	if err != nil {
		return nil, err
	}
	if !isStorage(o) {
		return nil, rcH(rcType, n, "not a storage key")
	}
	return o, nil
}

// symKeySize is the octets of a key for sym (an inner wrapper's
// symmetricAlg, a parent's symmetric definition).
func symKeySize(sym *gt.TPMTSymDefObject) int {
	bits, err := sym.KeyBits.AES()
	if err != nil {
		return 0
	}
	return (int(*bits) + 7) / 8
}

// cfb runs AES-CFB with a zero IV, the mode of both wrappers whatever
// mode the key's definition names (Part 1 §23.3.2.3).
func cfb(key []byte, decrypt bool, data []byte) ([]byte, error) {
	blk, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	out := make([]byte, len(data))
	iv := make([]byte, aes.BlockSize)
	if decrypt {
		cipher.NewCFBDecrypter(blk, iv).XORKeyStream(out, data)
	} else {
		cipher.NewCFBEncrypter(blk, iv).XORKeyStream(out, data)
	}
	return out, nil
}

// takeDigest2B reads a TPM2B_DIGEST from the front of b as the reference
// unmarshals one; its errors apply to parameter n.
func takeDigest2B(b []byte, n int) (d, rest []byte, err error) {
	if len(b) < 2 {
		return nil, nil, rcP(rcInsufficient, n, "integrity size")
	}
	size := int(binary.BigEndian.Uint16(b))
	if size > maxDigest2B {
		return nil, nil, rcP(rcSize, n, "integrity of %d octets", size)
	}
	if len(b)-2 < size {
		return nil, nil, rcP(rcInsufficient, n, "integrity")
	}
	return b[2 : 2+size], b[2+size:], nil
}

// outerKeys derives the outer wrapper's symmetric key and HMAC key from
// seed for protector p and the object's name (Part 1 §23.3.2.3–4).
func outerKeys(p *gt.TPMTPublic, seed, name []byte) (symKey, hmacKey []byte, h crypto.Hash, err error) {
	h, err = p.NameAlg.Hash()
	if err != nil {
		return nil, nil, 0, err
	}
	sym, _ := symAndScheme(p)
	bits := symKeySize(&sym) * 8
	if bits == 0 {
		return nil, nil, 0, rcE(rcSymmetric, "protector has no AES definition")
	}
	symKey = gt.KDFa(h, seed, "STORAGE", name, nil, bits)
	hmacKey = gt.KDFa(h, seed, "INTEGRITY", nil, nil, h.Size()*8)
	return symKey, hmacKey, h, nil
}

// outerWrap encrypts data for protector p and prepends the integrity
// HMAC over the ciphertext and name.
func outerWrap(p *gt.TPMTPublic, seed, name, data []byte) ([]byte, error) {
	symKey, hmacKey, h, err := outerKeys(p, seed, name)
	if err != nil {
		return nil, err
	}
	enc, err := cfb(symKey, false, data)
	if err != nil {
		return nil, err
	}
	m := hmac.New(h.New, hmacKey)
	m.Write(enc)
	m.Write(name)
	return append(sized(m.Sum(nil)), enc...), nil
}

// outerUnwrap checks and removes the outer wrapper of blob (parameter
// n): TPM_RC_INTEGRITY when the HMAC does not match.
func outerUnwrap(p *gt.TPMTPublic, seed, name, blob []byte, n int) ([]byte, error) {
	integ, enc, err := takeDigest2B(blob, n)
	if err != nil {
		return nil, err
	}
	symKey, hmacKey, h, err := outerKeys(p, seed, name)
	if err != nil {
		return nil, err
	}
	m := hmac.New(h.New, hmacKey)
	m.Write(enc)
	m.Write(name)
	if !hmac.Equal(m.Sum(nil), integ) {
		return nil, rcP(rcIntegrity, n, "outer wrapper integrity")
	}
	plain, err := cfb(symKey, true, enc)
	if err != nil {
		return nil, rcE(rcFailure, "%v", err)
	}
	return plain, nil
}

// innerWrap prepends H_nameAlg(data || name) to data and encrypts both
// with key.
func innerWrap(nameAlg gt.TPMIAlgHash, name, data, key []byte) ([]byte, error) {
	h, err := nameAlg.Hash()
	if err != nil {
		return nil, err
	}
	d := h.New()
	d.Write(data)
	d.Write(name)
	return cfb(key, false, append(sized(d.Sum(nil)), data...))
}

// innerUnwrap decrypts blob (parameter n) with key and checks its
// integrity digest.
func innerUnwrap(nameAlg gt.TPMIAlgHash, name, blob, key []byte, n int) ([]byte, error) {
	h, err := nameAlg.Hash()
	if err != nil {
		return nil, rcP(rcHash, 2, "nameAlg")
	}
	plain, err := cfb(key, true, blob)
	if err != nil {
		return nil, rcE(rcFailure, "%v", err)
	}
	integ, data, err := takeDigest2B(plain, n)
	if err != nil {
		return nil, err
	}
	d := h.New()
	d.Write(data)
	d.Write(name)
	if !hmac.Equal(d.Sum(nil), integ) {
		return nil, rcP(rcIntegrity, n, "inner wrapper integrity")
	}
	return data, nil
}

// duplicationSensitive is the TPM2B_SENSITIVE a duplicate carries: the
// authValue padded with zeros to the nameAlg digest, as the reference
// marshals every sensitive area it protects (trailing zeros are not part
// of an authValue, Part 1 §19.6.4.3).
func duplicationSensitive(o *object) []byte {
	s := o.sens
	if h, err := o.pub.NameAlg.Hash(); err == nil && len(s.AuthValue.Buffer) < h.Size() {
		a := make([]byte, h.Size())
		copy(a, s.AuthValue.Buffer)
		s.AuthValue = gt.TPM2BAuth{Buffer: a}
	}
	return sized(gt.Marshal(&s))
}

// encapsulate makes a fresh duplication seed for new parent np and its
// encryption to np (Part 1 §23.3.2.2, Annex B.10.3, C.6.4).
func encapsulate(rand io.Reader, np *object, n int) (seed, encSeed []byte, err error) {
	k, err := gt.ImportEncapsulationKey(&np.pub)
	if err != nil {
		return nil, nil, rcH(rcKey, n, "%v", err)
	}
	seed, encSeed, err = k.Encapsulate(rand, labelDuplicate)
	if err != nil {
		return nil, nil, rcH(rcKey, n, "%v", err)
	}
	return seed, encSeed, nil
}

// duplicate is TPM2_Duplicate, Part 3 §13.1.
func (t *TPM) duplicate(c *call, cmd *duplicateCmd) (*gt.DuplicateResponse, error) {
	sym := &cmd.Symmetric
	if err := checkSymObject(sym, 2, true); err != nil {
		return nil, err
	}
	o, err := t.loadedObject(c.handles[0], 1)
	if err != nil {
		return nil, err
	}
	if o.publicOnly || o.seq != nil || o.attrs().FixedParent {
		return nil, rcH(rcAttributes, 1, "object cannot be duplicated")
	}
	np, err := t.wrapParent(c.handles[1], 2)
	if err != nil {
		return nil, err
	}
	if o.attrs().EncryptedDuplication {
		if sym.Algorithm == gt.TPMAlgNull {
			return nil, rcP(rcSymmetric, 2, "encryptedDuplication needs an inner wrapper")
		}
		if np == nil {
			return nil, rcH(rcHierarchy, 2, "encryptedDuplication needs a new parent")
		}
	}
	keyIn := cmd.EncryptionKeyIn.Buffer
	if sym.Algorithm == gt.TPMAlgNull && len(keyIn) != 0 {
		return nil, rcP(rcSize, 1, "encryptionKeyIn without symmetricAlg")
	}
	if sym.Algorithm != gt.TPMAlgNull && len(keyIn) != 0 && len(keyIn) != symKeySize(sym) {
		return nil, rcP(rcSize, 1, "encryptionKeyIn size")
	}
	var seed, encSeed []byte
	if np != nil {
		if seed, encSeed, err = encapsulate(t.rand, np, 2); err != nil {
			return nil, err
		}
	}
	blob := duplicationSensitive(o)
	var keyOut []byte
	if sym.Algorithm != gt.TPMAlgNull {
		key := keyIn
		if len(key) == 0 {
			key = make([]byte, symKeySize(sym))
			if _, err := io.ReadFull(t.rand, key); err != nil {
				return nil, rcE(rcFailure, "%v", err)
			}
			keyOut = key
		}
		if blob, err = innerWrap(o.pub.NameAlg, o.name, blob, key); err != nil {
			return nil, rcE(rcFailure, "%v", err)
		}
	}
	if np != nil {
		if blob, err = outerWrap(&np.pub, seed, o.name, blob); err != nil {
			return nil, rcH(rcKey, 2, "%v", err)
		}
	}
	return &gt.DuplicateResponse{
		EncryptionKeyOut: gt.TPM2BData{Buffer: keyOut},
		Duplicate:        gt.TPM2BPrivate{Buffer: blob},
		OutSymSeed:       gt.TPM2BEncryptedSecret{Buffer: encSeed},
	}, nil
}

// rewrap is TPM2_Rewrap, Part 3 §13.2: the TPM as duplication authority
// moves a duplicate's outer wrapper from oldParent to newParent. It sees
// only the object's Name, so encryptedDuplication is for Import to
// enforce.
func (t *TPM) rewrap(c *call, cmd *rewrapCmd) (*rewrapResponse, error) {
	for i, h := range c.handles {
		if ht := h >> 24; h != rhNull && ht != htTransient && ht != htPersistent {
			return nil, rcH(rcValue, i+1, "0x%08x is neither an object nor TPM_RH_NULL", h)
		}
	}
	inSeed := cmd.InSymSeed.Buffer
	if (len(inSeed) == 0) != (c.handles[0] == rhNull) {
		return nil, rcH(rcHandle, 1, "inSymSeed goes with an old parent, its absence with TPM_RH_NULL")
	}
	name := cmd.Name.Buffer
	blob := cmd.InDuplicate.Buffer
	if c.handles[0] != rhNull {
		old, err := t.wrapParent(c.handles[0], 1)
		if err != nil {
			return nil, err
		}
		seed, err := t.decryptSecret(old, inSeed, labelDuplicate, 3, 1)
		if err != nil {
			return nil, rcP(rcValue, 3, "inSymSeed: %v", err)
		}
		if blob, err = outerUnwrap(&old.pub, seed, name, blob, 1); err != nil {
			return nil, err
		}
	}
	np, err := t.wrapParent(c.handles[1], 2)
	if err != nil {
		return nil, err
	}
	if np == nil {
		return &rewrapResponse{OutDuplicate: gt.TPM2BPrivate{Buffer: blob}}, nil
	}
	seed, encSeed, err := encapsulate(t.rand, np, 2)
	if err != nil {
		return nil, err
	}
	if blob, err = outerWrap(&np.pub, seed, name, blob); err != nil {
		return nil, rcH(rcKey, 2, "%v", err)
	}
	return &rewrapResponse{
		OutDuplicate: gt.TPM2BPrivate{Buffer: blob},
		OutSymSeed:   gt.TPM2BEncryptedSecret{Buffer: encSeed},
	}, nil
}

// importObject is TPM2_Import, Part 3 §13.3.
func (t *TPM) importObject(c *call, cmd *importCmd) (*gt.ImportResponse, error) {
	p, err := parsePublic(cmd.ObjectPublic.Buffer, 2)
	if err != nil {
		return nil, err
	}
	if err := checkPublicParms(p.Type, &p.Parameters, 2); err != nil {
		return nil, err
	}
	sym := &cmd.Symmetric
	if err := checkSymObject(sym, 5, true); err != nil {
		return nil, err
	}
	a := p.ObjectAttributes
	if a.FixedTPM || a.FixedParent {
		return nil, rcP(rcAttributes, 2, "fixedTPM/fixedParent objects cannot be imported")
	}
	parent, err := t.storageParent(c.handles[0])
	if err != nil {
		return nil, err
	}
	key := cmd.EncryptionKey.Buffer
	if sym.Algorithm != gt.TPMAlgNull {
		if len(key) != symKeySize(sym) {
			return nil, rcP(rcSize, 1, "encryptionKey size")
		}
	} else {
		if len(key) != 0 {
			return nil, rcP(rcSize, 1, "encryptionKey without symmetricAlg")
		}
		if a.EncryptedDuplication {
			return nil, rcP(rcAttributes, 1, "encryptedDuplication needs an inner wrapper")
		}
	}
	var seed []byte
	if len(cmd.InSymSeed.Buffer) != 0 {
		if seed, err = t.decryptSecret(parent, cmd.InSymSeed.Buffer, labelDuplicate, 4, 1); err != nil {
			return nil, err
		}
	} else if a.EncryptedDuplication {
		return nil, rcP(rcAttributes, 4, "encryptedDuplication needs an outer wrapper")
	}
	name, err := objectName(p)
	if err != nil {
		return nil, rcP(rcHash, 2, "%v", err)
	}
	dup := cmd.Duplicate.Buffer
	if seed != nil {
		if dup, err = outerUnwrap(&parent.pub, seed, name, dup, 3); err != nil {
			return nil, err
		}
	}
	if sym.Algorithm != gt.TPMAlgNull {
		if dup, err = innerUnwrap(p.NameAlg, name, dup, key, 3); err != nil {
			return nil, err
		}
	}
	if len(dup) < 2 {
		return nil, rcP(rcInsufficient, 3, "duplicate sensitive size")
	}
	if int(binary.BigEndian.Uint16(dup)) != len(dup)-2 {
		return nil, rcP(rcSize, 3, "duplicate sensitive size")
	}
	sens, err := gt.Unmarshal[gt.TPMTSensitive](dup[2:])
	if err != nil {
		return nil, rcP(rcValue, 3, "duplicate sensitive: %v", err)
	}
	if len(gt.Marshal(sens)) != len(dup)-2 {
		return nil, rcP(rcSize, 3, "bytes after the sensitive area")
	}
	if sens.SensitiveType != p.Type {
		return nil, rcP(rcType, 3, "sensitive type does not match public")
	}
	o := &object{pub: *p, sens: *sens, hierarchy: parent.hierarchy}
	if err := o.finish(parent.qn); err != nil {
		return nil, rcP(rcBinding, 3, "%v", err)
	}
	priv, err := wrapSensitive(parent, o.name, sens)
	if err != nil {
		return nil, rcE(rcFailure, "%v", err)
	}
	return &gt.ImportResponse{OutPrivate: gt.TPM2BPrivate{Buffer: priv}}, nil
}
