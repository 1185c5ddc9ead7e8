package tpm12

import (
	"bytes"
	"crypto/hmac"
	"crypto/rsa"
	"crypto/sha1"
)

// Structure tags and the payload type of sealed data, Part 2 §3.1, §9.1.
const (
	tagPCRInfoLong  uint16 = 0x0006 // TPM_TAG_PCR_INFO_LONG
	tagStoredData12 uint16 = 0x0016 // TPM_TAG_STORED_DATA12
	ptSeal          uint8  = 0x05   // TPM_PT_SEAL
)

// pcrInfo is TPM_PCR_INFO (Part 2 §8.3) or, when Long, TPM_PCR_INFO_LONG
// (§8.4). For TPM_PCR_INFO only Release is used, as the selection of
// both digests.
type pcrInfo struct {
	Long                                  bool
	LocalityAtCreation, LocalityAtRelease uint8
	Creation, Release                     pcrSelection
	DigestAtCreation, DigestAtRelease     digest
}

func (p *pcrInfo) unmarshal(r *reader) {
	if p.Long {
		if r.u16() != tagPCRInfoLong {
			r.fail(rcE(rcBadIndex, "TPM_PCR_INFO_LONG tag"))
		}
		p.LocalityAtCreation = r.u8()
		p.LocalityAtRelease = r.u8()
		// A TPM_LOCALITY_SELECTION names localities 0-4, at least one.
		for _, l := range []uint8{p.LocalityAtCreation, p.LocalityAtRelease} {
			if l == 0 || l > 0x1F {
				r.fail(rcE(rcInvalidStructure, "locality selection %#x", l))
			}
		}
		p.Creation.unmarshal(r)
		p.Release.unmarshal(r)
		p.DigestAtCreation = r.digest()
		p.DigestAtRelease = r.digest()
		return
	}
	p.Release.unmarshal(r)
	p.DigestAtRelease = r.digest()
	p.DigestAtCreation = r.digest()
}

func (p *pcrInfo) marshal(w *writer) {
	if p.Long {
		w.u16(tagPCRInfoLong)
		w.u8(p.LocalityAtCreation)
		w.u8(p.LocalityAtRelease)
		p.Creation.marshal(w)
		p.Release.marshal(w)
		w.bytes(p.DigestAtCreation[:])
		w.bytes(p.DigestAtRelease[:])
		return
	}
	p.Release.marshal(w)
	w.bytes(p.DigestAtRelease[:])
	w.bytes(p.DigestAtCreation[:])
}

// compositeHash is the SHA-1 of the TPM_PCR_COMPOSITE of the PCRs sel
// selects (Part 1 §4.4.1).
func (t *TPM) compositeHash(sel pcrSelection) digest {
	c := pcrComposite{Select: sel}
	for _, i := range sel.selected() {
		c.Values = append(c.Values, t.pcr[i])
	}
	w := &writer{}
	c.marshal(w)
	return sha1.Sum(w.b)
}

// storedData is TPM_STORED_DATA (Part 2 §9.1) or, when Tag is
// TPM_TAG_STORED_DATA12, TPM_STORED_DATA12 (§9.2).
type storedData struct {
	Tag      uint16
	ET       uint16
	SealInfo []byte
	EncData  []byte
}

func (s *storedData) unmarshal(r *reader) {
	if len(r.b) > 0 && r.b[0] == 1 {
		if v := r.take(4); v[1] != 1 || v[2] != 0 || v[3] != 0 {
			r.fail(rcE(rcBadVersion, "TPM_STORED_DATA version %x", v))
		}
	} else {
		s.Tag = r.u16()
		s.ET = r.u16()
		if s.Tag != tagStoredData12 {
			r.fail(rcE(rcBadVersion, "TPM_STORED_DATA12 tag %#x", s.Tag))
		}
	}
	s.SealInfo = r.sized(bufferMax)
	s.EncData = r.sized(bufferMax)
}

func (s *storedData) marshal(w *writer) {
	if s.Tag == tagStoredData12 {
		w.u16(s.Tag)
		w.u16(s.ET)
	} else {
		(&version{Major: 1, Minor: 1}).marshal(w)
	}
	w.sized(s.SealInfo)
	w.sized(s.EncData)
}

// digestWithoutEncData is the storedDigest of Part 3 §10.1: SHA-1 of the
// structure with encDataSize 0.
func (s *storedData) digestWithoutEncData() digest {
	c := *s
	c.EncData = nil
	w := &writer{}
	c.marshal(w)
	return sha1.Sum(w.b)
}

// sealedData is TPM_SEALED_DATA, Part 2 §9.3: what encData holds,
// encrypted to the parent key.
type sealedData struct {
	Payload      uint8
	AuthData     digest
	TPMProof     digest
	StoredDigest digest
	Data         []byte
}

func (s *sealedData) marshal(w *writer) {
	w.u8(s.Payload)
	w.bytes(s.AuthData[:])
	w.bytes(s.TPMProof[:])
	w.bytes(s.StoredDigest[:])
	w.sized(s.Data)
}

func (s *sealedData) unmarshal(r *reader) {
	s.Payload = r.u8()
	s.AuthData = r.digest()
	s.TPMProof = r.digest()
	s.StoredDigest = r.digest()
	s.Data = r.sized(bufferMax)
}

// sealingKey checks that k may seal and unseal (Part 3 §10.1 actions 3
// and 4, §10.2 actions 2 and 3): a storage key that cannot migrate.
func sealingKey(k *loadedKey) error {
	if k.key.KeyUsage != keyUsageStorage || k.key.KeyFlags&keyFlagMigratable != 0 {
		return rcE(rcInvalidKeyUsage, "key usage %#x flags %#x", k.key.KeyUsage, k.key.KeyFlags)
	}
	return nil
}

type sealIn struct {
	KeyHandle uint32
	EncAuth   digest
	PCRInfo   []byte
	InData    []byte
}

func (p *sealIn) unmarshal(r *reader) {
	p.KeyHandle = r.u32()
	p.EncAuth = r.digest()
	p.PCRInfo = r.sized(bufferMax)
	p.InData = r.sized(bufferMax)
}

// seal is TPM_Seal, Part 3 §10.1: inData bound to a non-migratable
// storage key (the SRK or a loaded one), tpmProof, and
// the PCR values pcrInfo names (TPM_PCR_INFO gives a TPM_STORED_DATA,
// TPM_PCR_INFO_LONG a TPM_STORED_DATA12), with the authData encAuth
// carries under the XOR ADIP of the OSAP session that authorizes the
// key.
func (t *TPM) seal(c *call, in *sealIn) (*storedData, error) {
	k, err := t.useKey(in.KeyHandle, false)
	if err != nil {
		return nil, err
	}
	if s := t.sessions[c.auth[0].handle]; s != nil && s.pid != pidOSAP {
		return nil, rcE(rcBadMode, "TPM_Seal needs an OSAP session")
	}
	if err := t.authorizeKey(c, 0, k); err != nil {
		return nil, err
	}
	if len(in.InData) == 0 {
		return nil, rcE(rcBadParameter, "no data")
	}
	if err := sealingKey(k); err != nil {
		return nil, err
	}
	sd := &storedData{}
	if len(in.PCRInfo) != 0 {
		info := pcrInfo{Long: len(in.PCRInfo) >= 2 && in.PCRInfo[0] == 0 && in.PCRInfo[1] == byte(tagPCRInfoLong)}
		r := &reader{b: in.PCRInfo}
		info.unmarshal(r)
		if r.short || r.err != nil || len(r.b) != 0 {
			return nil, rcE(rcBadIndex, "pcrInfo")
		}
		if info.Long {
			sd.Tag = tagStoredData12
			info.LocalityAtCreation = localityBit(t.locality)
			info.DigestAtCreation = t.compositeHash(info.Creation)
		} else {
			info.DigestAtCreation = t.compositeHash(info.Release)
		}
		w := &writer{}
		info.marshal(w)
		sd.SealInfo = w.b
	}
	sealed := &sealedData{
		Payload:      ptSeal,
		AuthData:     adipDecrypt(c.auth[0].sess, in.EncAuth),
		TPMProof:     t.ps.TPMProof,
		StoredDigest: sd.digestWithoutEncData(),
		Data:         in.InData,
	}
	w := &writer{}
	sealed.marshal(w)
	sd.EncData, err = rsa.EncryptOAEP(sha1.New(), t.rand, &k.priv.PublicKey, w.b, oaepLabel)
	if err != nil {
		return nil, rcE(rcEncryptError, "%d bytes to seal: %v", len(in.InData), err)
	}
	return sd, nil
}

type unsealIn struct {
	ParentHandle uint32
	InData       storedData
}

func (p *unsealIn) unmarshal(r *reader) {
	p.ParentHandle = r.u32()
	p.InData.unmarshal(r)
}

// unseal is TPM_Unseal, Part 3 §10.2: the first session authorizes the
// parent key, the second (OIAP) the sealed data with the authData sealed
// in it. A blob that does not decrypt to sealed data of this TPM (its
// tpmProof) and of this very structure (storedDigest) is
// TPM_NOTSEALED_BLOB; PCRs that differ from digestAtRelease,
// TPM_WRONGPCRVAL.
func (t *TPM) unseal(c *call, in *unsealIn) (*sizedOut, error) {
	k, err := t.useKey(in.ParentHandle, false)
	if err != nil {
		return nil, err
	}
	if err := t.authorizeKey(c, 0, k); err != nil {
		return nil, err
	}
	if err := sealingKey(k); err != nil {
		return nil, err
	}
	s := &in.InData
	var sealed sealedData
	pt, err := t.decryptOAEP(k.priv, s.EncData)
	ok := err == nil
	if ok {
		r := &reader{b: pt}
		sealed.unmarshal(r)
		proof, stored := sealed.TPMProof, sealed.StoredDigest
		want := s.digestWithoutEncData()
		ok = !r.short && r.err == nil && len(r.b) == 0 && sealed.Payload == ptSeal &&
			hmac.Equal(proof[:], t.ps.TPMProof[:]) && bytes.Equal(stored[:], want[:])
	}
	if !ok {
		return nil, rcE(rcNotSealedBlob, "not a blob this TPM sealed")
	}
	if len(s.SealInfo) != 0 {
		info := pcrInfo{Long: s.Tag == tagStoredData12}
		r := &reader{b: s.SealInfo}
		info.unmarshal(r)
		if r.short || r.err != nil || len(r.b) != 0 {
			return nil, rcE(rcNotSealedBlob, "sealInfo")
		}
		if info.Long && info.LocalityAtRelease&localityBit(t.locality) == 0 {
			return nil, rcE(rcBadLocality, "locality %d", t.locality)
		}
		if len(info.Release.selected()) != 0 && t.compositeHash(info.Release) != info.DigestAtRelease {
			return nil, rcE(rcWrongPCRVal, "PCRs differ from digestAtRelease")
		}
	}
	if sess := t.sessions[c.auth[1].handle]; sess != nil && sess.pid != pidOIAP {
		return nil, rcE(rcBadMode, "the data session must be OIAP")
	}
	if err := t.authorize(c, 1, sealed.AuthData, 0, 0); err != nil {
		return nil, err
	}
	return &sizedOut{Data: sealed.Data}, nil
}
