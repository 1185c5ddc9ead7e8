package tpm2

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"encoding/binary"

	gt "github.com/google/go-tpm/tpm2"
	"github.com/google/go-tpm/tpm2/transport"
)

// TPM2_Import, Part 3 §13.3, with the outer wrapper of Part 1 §23.3.2
// (seed shared through the new parent's key). Inner wrappers
// (symmetricAlg other than TPM_ALG_NULL) are not implemented yet.

type importCmd struct {
	ParentHandle  gt.UnmarshalledHandle `gotpm:"handle,auth"`
	EncryptionKey gt.TPM2BData
	ObjectPublic  gt.TPM2BData
	Duplicate     gt.TPM2BPrivate
	InSymSeed     gt.TPM2BEncryptedSecret
	Symmetric     gt.TPMTSymDefObject
}

func (importCmd) Command() gt.TPMCC { return gt.TPMCCImport }
func (importCmd) Execute(transport.TPM, ...gt.Session) (*gt.ImportResponse, error) {
	return nil, errEngineSide
}

func init() {
	register(func(t *TPM, c *call, cmd *importCmd) (*reply, error) {
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
		return &reply{params: sized(priv)}, nil
	})
}

type duplicateCmd struct {
	ObjectHandle    gt.UnmarshalledHandle `gotpm:"handle,auth"`
	NewParentHandle gt.UnmarshalledHandle `gotpm:"handle"`
	EncryptionKeyIn gt.TPM2BData
	Symmetric       gt.TPMTSymDefObject
}

func (duplicateCmd) Command() gt.TPMCC { return gt.TPMCCDuplicate }
func (duplicateCmd) Execute(transport.TPM, ...gt.Session) (*gt.DuplicateResponse, error) {
	return nil, errEngineSide
}

func init() {
	// TPM2_Duplicate, Part 3 §13.1: outer wrapper only (as Import).
	register(func(t *TPM, c *call, cmd *duplicateCmd) (*reply, error) {
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
			b := sized(nil)
			b = append(b, sized(sized(sens))...)
			return &reply{params: append(b, sized(nil)...)}, nil
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
		b := sized(nil)
		b = append(b, sized(dup)...)
		return &reply{params: append(b, sized(seed)...)}, nil
	}, roleDup)
}
