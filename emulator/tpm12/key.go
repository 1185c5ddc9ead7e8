package tpm12

import (
	"crypto/rsa"
	"crypto/sha1"
)

// Key usages and flags, Part 2 §5.8, §5.10, and the structure tag of
// TPM_KEY12 (§3.1).
const (
	keyUsageStorage   uint16 = 0x0011 // TPM_KEY_STORAGE
	keyFlagMigratable uint32 = 0x00000002
	// keyFlagsMask is the TPM_KEY_FLAGS bits Part 2 §5.10 defines.
	keyFlagsMask uint32 = 0x0000001F
	tagKey12     uint16 = 0x0028 // TPM_TAG_KEY12
)

// Key handles of the TPM's own keys, Part 2 §4.5 (TPM_KH_*).
const (
	khSRK uint32 = 0x40000000
	khEK  uint32 = 0x40000006
)

// tpmKey is TPM_KEY (Part 2 §10.2) or, when Tag is TPM_TAG_KEY12,
// TPM_KEY12 (§10.3): they differ only in their first four bytes, a
// TPM_STRUCT_VER of 1.1.0.0 or the tag and a zero fill. PCRInfo is kept
// as sent: TPM_PCR_INFO for TPM_KEY, TPM_PCR_INFO_LONG for TPM_KEY12.
type tpmKey struct {
	Tag            uint16
	KeyUsage       uint16
	KeyFlags       uint32
	AuthDataUsage  uint8
	AlgorithmParms keyParms
	PCRInfo        []byte
	PubKey         []byte
	EncData        []byte
}

func (k *tpmKey) unmarshal(r *reader) {
	if len(r.b) > 0 && r.b[0] != 0 {
		if v := r.take(4); v[0] != 1 || v[1] != 1 {
			r.fail(rcE(rcBadVersion, "TPM_KEY version %x", v))
		}
	} else {
		k.Tag = r.u16()
		if fill := r.u16(); k.Tag != tagKey12 || fill != 0 {
			r.fail(rcE(rcInvalidStructure, "TPM_KEY12 tag %#x fill %#x", k.Tag, fill))
		}
	}
	k.KeyUsage = r.u16()
	k.KeyFlags = r.u32()
	if k.KeyFlags&^keyFlagsMask != 0 {
		r.fail(rcE(rcBadKeyProperty, "key flags %#x", k.KeyFlags))
	}
	k.AuthDataUsage = r.u8()
	k.AlgorithmParms.unmarshal(r)
	k.PCRInfo = r.sized(bufferMax)
	if len(k.PCRInfo) != 0 {
		// libtpms decodes pcrInfo with the key.
		if _, err := decodeKeyPCRInfo(k.Tag == tagKey12, k.PCRInfo); err != nil {
			r.fail(err)
		}
	}
	k.PubKey = r.sized(maxPubKeyBytes)
	k.EncData = r.sized(bufferMax)
}

// decodeKeyPCRInfo decodes the pcrInfo of a key: TPM_PCR_INFO_LONG in a
// TPM_KEY12 (another tag is TPM_INVALID_STRUCTURE), TPM_PCR_INFO in a
// TPM_KEY. Too short is TPM_BAD_PARAM_SIZE; bytes after the structure
// are not looked at, as in libtpms.
func decodeKeyPCRInfo(long bool, b []byte) (*pcrInfo, error) {
	if long && (len(b) < 2 || b[0] != 0 || b[1] != byte(tagPCRInfoLong)) {
		return nil, rcE(rcInvalidStructure, "TPM_PCR_INFO_LONG tag")
	}
	p := &pcrInfo{Long: long}
	r := &reader{b: b}
	p.unmarshal(r)
	if r.err != nil {
		return nil, r.err
	}
	if r.short {
		return nil, rcE(rcBadParamSize, "key pcrInfo")
	}
	return p, nil
}

func (k *tpmKey) marshal(w *writer) {
	if k.Tag == tagKey12 {
		w.u16(tagKey12)
		w.u16(0)
	} else {
		(&version{Major: 1, Minor: 1}).marshal(w)
	}
	w.u16(k.KeyUsage)
	w.u32(k.KeyFlags)
	w.u8(k.AuthDataUsage)
	k.AlgorithmParms.marshal(w)
	w.sized(k.PCRInfo)
	w.sized(k.PubKey)
	w.sized(k.EncData)
}

// pub is the key's TPM_PUBKEY.
func (k *tpmKey) pub() *pubKey {
	return &pubKey{AlgorithmParms: k.AlgorithmParms, Key: k.PubKey}
}

// rsaParms decodes the TPM_RSA_KEY_PARMS of an RSA key.
func (k *tpmKey) rsaParms() (*rsaKeyParms, error) {
	if k.AlgorithmParms.AlgorithmID != algRSA {
		return nil, rcE(rcBadKeyProperty, "algorithm %#x", k.AlgorithmParms.AlgorithmID)
	}
	var p rsaKeyParms
	r := &reader{b: k.AlgorithmParms.Parms}
	p.unmarshal(r)
	if r.short || r.err != nil || len(r.b) != 0 {
		return nil, rcE(rcBadKeyProperty, "RSA key parameters")
	}
	return &p, nil
}

// oaepLabel is the OAEP encoding parameter of every TPM 1.2 RSA
// encryption (Part 1 §31.1.1).
var oaepLabel = []byte("TCPA")

// decryptOAEP decrypts a TPM_ES_RSAESOAEP_SHA1_MGF1 ciphertext under k.
func (t *TPM) decryptOAEP(k *rsa.PrivateKey, ct []byte) ([]byte, error) {
	pt, err := rsa.DecryptOAEP(sha1.New(), nil, k, ct, oaepLabel)
	if err != nil {
		return nil, rcE(rcDecryptError, "OAEP: %v", err)
	}
	return pt, nil
}
