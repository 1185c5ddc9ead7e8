package tpm2

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"encoding/binary"

	gt "github.com/google/go-tpm/tpm2"
)

// Duplication, Part 3 §13: TPM2_Duplicate and TPM2_Import with the outer
// wrapper of Part 1 §23.3.2 (seed shared through the new parent's key).
// Inner wrappers (symmetricAlg other than TPM_ALG_NULL) are not
// implemented yet.

// importObject is TPM2_Import, Part 3 §13.3.
func (t *TPM) importObject(c *call, cmd *importCmd) (*gt.ImportResponse, error) {
	parent, err := t.storageParent(c.handles[0])
	if err != nil {
		return nil, err
	}
	p, err := parsePublic(cmd.ObjectPublic.Buffer, 2)
	if err != nil {
		return nil, err
	}
	if err := checkPublicParms(p.Type, &p.Parameters, 2); err != nil {
		return nil, err
	}
	if p.ObjectAttributes.FixedTPM || p.ObjectAttributes.FixedParent {
		return nil, rcP(rcAttributes, 2, "fixedTPM/fixedParent objects cannot be imported")
	}
	if cmd.Symmetric.Algorithm != gt.TPMAlgNull {
		return nil, rcP(rcSymmetric, 5, "inner duplication wrapper not supported")
	}
	name, err := objectName(p)
	if err != nil {
		return nil, rcP(rcHash, 2, "%v", err)
	}
	dup := cmd.Duplicate.Buffer
	if len(cmd.InSymSeed.Buffer) != 0 {
		seed, err := t.decryptSecret(parent, cmd.InSymSeed.Buffer, "DUPLICATE", 4, 1)
		if err != nil {
			return nil, err
		}
		h, _ := parent.pub.NameAlg.Hash()
		if len(dup) < 2 || int(binary.BigEndian.Uint16(dup)) != h.Size() || len(dup) < 2+h.Size() {
			return nil, rcP(rcSize, 3, "duplicate outer integrity")
		}
		integ, enc := dup[2:2+h.Size()], dup[2+h.Size():]
		m := hmac.New(h.New, gt.KDFa(h, seed, "INTEGRITY", nil, nil, h.Size()*8))
		m.Write(enc)
		m.Write(name)
		if !hmac.Equal(m.Sum(nil), integ) {
			return nil, rcP(rcIntegrity, 3, "duplicate outer integrity")
		}
		sym, _ := symAndScheme(&parent.pub)
		bits, err := sym.KeyBits.AES()
		if err != nil {
			return nil, rcH(rcSymmetric, 1, "parent symmetric")
		}
		blk, _ := aes.NewCipher(gt.KDFa(h, seed, "STORAGE", name, nil, int(*bits)))
		plain := make([]byte, len(enc))
		cipher.NewCFBDecrypter(blk, make([]byte, 16)).XORKeyStream(plain, enc)
		dup = plain
	} else if p.ObjectAttributes.EncryptedDuplication {
		return nil, rcP(rcAttributes, 2, "encryptedDuplication needs an outer wrapper")
	}
	if len(dup) < 2 || int(binary.BigEndian.Uint16(dup)) != len(dup)-2 {
		return nil, rcP(rcSize, 3, "duplicate sensitive size")
	}
	sens, err := gt.Unmarshal[gt.TPMTSensitive](dup[2:])
	if err != nil {
		return nil, rcP(rcValue, 3, "duplicate sensitive: %v", err)
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

// duplicate is TPM2_Duplicate, Part 3 §13.1.
func (t *TPM) duplicate(c *call, cmd *duplicateCmd) (*gt.DuplicateResponse, error) {
	o, err := t.loadedObject(c.handles[0], 1)
	if err != nil {
		return nil, err
	}
	if o.publicOnly || o.seq != nil || o.attrs().FixedParent {
		return nil, rcH(rcAttributes, 1, "object cannot be duplicated")
	}
	if cmd.Symmetric.Algorithm != gt.TPMAlgNull {
		return nil, rcP(rcSymmetric, 2, "inner duplication wrapper not supported")
	}
	sens := gt.Marshal(&o.sens)
	if c.handles[1] == rhNull {
		if o.attrs().EncryptedDuplication {
			return nil, rcH(rcHierarchy, 2, "encryptedDuplication needs a new parent")
		}
		// No outer wrapper: the duplicate is the TPM2B_SENSITIVE.
		return &gt.DuplicateResponse{Duplicate: gt.TPM2BPrivate{Buffer: sized(sens)}}, nil
	}
	np, err := t.storageParent(c.handles[1])
	if err != nil {
		return nil, rcH(rcType, 2, "new parent is not a storage key")
	}
	k, err := gt.ImportEncapsulationKey(&np.pub)
	if err != nil {
		return nil, rcH(rcKey, 2, "%v", err)
	}
	dup, seed, err := gt.CreateDuplicate(t.rand, k, o.name, sens)
	if err != nil {
		return nil, rcE(rcFailure, "%v", err)
	}
	return &gt.DuplicateResponse{
		Duplicate:  gt.TPM2BPrivate{Buffer: dup},
		OutSymSeed: gt.TPM2BEncryptedSecret{Buffer: seed},
	}, nil
}
