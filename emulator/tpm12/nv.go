package tpm12

import (
	"bytes"
	"slices"
)

// NV attributes (TPM_NV_PER_*), reserved indices and structure tags,
// Part 2 §19.
const (
	nvPerReadSTClear  uint32 = 0x80000000
	nvPerAuthRead     uint32 = 0x00040000
	nvPerOwnerRead    uint32 = 0x00020000
	nvPerPPRead       uint32 = 0x00010000
	nvPerGlobalLock   uint32 = 0x00008000
	nvPerWriteSTClear uint32 = 0x00004000
	nvPerWriteDefine  uint32 = 0x00002000
	nvPerWriteAll     uint32 = 0x00001000
	nvPerAuthWrite    uint32 = 0x00000004
	nvPerOwnerWrite   uint32 = 0x00000002
	nvPerPPWrite      uint32 = 0x00000001

	nvIndexLock  uint32 = 0xFFFFFFFF // TPM_NV_INDEX_LOCK
	nvIndex0     uint32 = 0x00000000 // TPM_NV_INDEX0
	nvIndexDBit  uint32 = 0x10000000
	tagNVAttr    uint16 = 0x0017 // TPM_TAG_NV_ATTRIBUTES
	tagNVDataPub uint16 = 0x0018 // TPM_TAG_NV_DATA_PUBLIC

	// nvSpaceMax is the NV storage the indices may take together
	// (TPM_CAP_PROP_MAX_NV_AVAILABLE); maxNVWriteNoOwner is
	// TPM_MAX_NV_WRITE_NOOWNER, libtpms' value.
	nvSpaceMax        = 4096
	maxNVWriteNoOwner = 64
)

// rcAreaLocked is TPM_AREA_LOCKED (Part 2 §16): the index is locked
// against writes (WRITEDEFINE, WRITE_STCLEAR, GLOBALLOCK).
const rcAreaLocked uint32 = 0x3C

// nvArea is one defined NV index: TPM_NV_DATA_PUBLIC's fields, the
// index's authData and its data (TPM_NV_DATA_SENSITIVE, Part 2 §19.3,
// §19.4). WriteDefine is bWriteDefine, set for good by a zero-size
// write; the index's bReadSTClear and bWriteSTClear, which Startup(ST_CLEAR)
// clears, are volatile and kept in TPM.nvLocks.
type nvArea struct {
	Index       uint32
	ReadInfo    pcrInfoShort
	WriteInfo   pcrInfoShort
	Attributes  uint32
	Auth        digest
	Data        []byte
	WriteDefine bool `json:",omitempty"`
}

// nvLock is an index's bReadSTClear and bWriteSTClear (Part 2 §19.3):
// volatile, cleared by Startup(ST_CLEAR), kept by TPM_SaveState for
// Startup(ST_STATE), as libtpms keeps them with its volatile state.
type nvLock struct {
	Read, Write bool
}

// nvDataPublic is TPM_NV_DATA_PUBLIC, Part 2 §19.3.
type nvDataPublic struct {
	Index                                  uint32
	ReadInfo, WriteInfo                    pcrInfoShort
	Attributes                             uint32
	ReadSTClear, WriteSTClear, WriteDefine bool
	DataSize                               uint32
}

func (p *nvDataPublic) unmarshal(r *reader) {
	if r.u16() != tagNVDataPub {
		r.fail(rcE(rcInvalidStructure, "TPM_NV_DATA_PUBLIC tag"))
	}
	p.Index = r.u32()
	for _, i := range []*pcrInfoShort{&p.ReadInfo, &p.WriteInfo} {
		i.unmarshal(r)
		if l := i.LocalityAtRelease; l == 0 || l > locAll {
			r.fail(rcE(rcInvalidStructure, "localityAtRelease %#x", l))
		}
	}
	if r.u16() != tagNVAttr {
		r.fail(rcE(rcInvalidStructure, "TPM_NV_ATTRIBUTES tag"))
	}
	p.Attributes = r.u32()
	p.ReadSTClear, p.WriteSTClear, p.WriteDefine = r.bool(), r.bool(), r.bool()
	p.DataSize = r.u32()
}

func (p *nvDataPublic) marshal(w *writer) {
	w.u16(tagNVDataPub)
	w.u32(p.Index)
	p.ReadInfo.marshal(w)
	p.WriteInfo.marshal(w)
	w.u16(tagNVAttr)
	w.u32(p.Attributes)
	w.bool(p.ReadSTClear)
	w.bool(p.WriteSTClear)
	w.bool(p.WriteDefine)
	w.u32(p.DataSize)
}

func (t *TPM) nvPublic(a *nvArea) *nvDataPublic {
	l := t.nvLocks[a.Index]
	return &nvDataPublic{Index: a.Index, ReadInfo: a.ReadInfo, WriteInfo: a.WriteInfo,
		Attributes: a.Attributes, ReadSTClear: l.Read, WriteSTClear: l.Write, WriteDefine: a.WriteDefine,
		DataSize: uint32(len(a.Data))}
}

// setNVLock changes the volatile locks of index.
func (t *TPM) setNVLock(index uint32, f func(l *nvLock)) {
	l := t.nvLocks[index]
	f(&l)
	if l == (nvLock{}) {
		delete(t.nvLocks, index)
	} else {
		t.nvLocks[index] = l
	}
}

// nvFind returns the position of index in ps.NV, or -1.
func (t *TPM) nvFind(index uint32) int {
	return slices.IndexFunc(t.ps.NV, func(a *nvArea) bool { return a.Index == index })
}

func (t *TPM) nvUsed() int {
	n := 0
	for _, a := range t.ps.NV {
		n += len(a.Data)
	}
	return n
}

// nvIndices lists the defined indices in the order they were defined
// (TPM_CAP_NV_LIST).
func (t *TPM) nvIndices() []uint32 {
	var l []uint32
	for _, a := range t.ps.NV {
		l = append(l, a.Index)
	}
	return l
}

// nvActiveChecks are the disabled and deactivated checks NV commands
// make only once nvLocked is set (Part 3 §20: before that the TPM is
// being manufactured).
func (t *TPM) nvActiveChecks() error {
	if !t.ps.Flags.NVLocked {
		return nil
	}
	if t.ps.Flags.Disable {
		return rcE(rcDisabled, "disabled")
	}
	if t.stclear.Deactivated {
		return rcE(rcDeactivated, "deactivated")
	}
	return nil
}

// pcrCheck applies a TPM_PCR_INFO_SHORT of an index: the locality must
// be one localityAtRelease names, and the selected PCRs must have the
// composite digestAtRelease.
func (t *TPM) pcrCheck(p *pcrInfoShort) error {
	if p.LocalityAtRelease&localityBit(t.locality) == 0 {
		return rcE(rcBadLocality, "locality %d", t.locality)
	}
	if len(p.Select.selected()) != 0 && t.compositeHash(p.Select) != p.DigestAtRelease {
		return rcE(rcWrongPCRVal, "PCRs differ from digestAtRelease")
	}
	return nil
}

type nvDefineSpaceIn struct {
	PubInfo nvDataPublic
	EncAuth digest
}

func (p *nvDefineSpaceIn) unmarshal(r *reader) {
	p.PubInfo.unmarshal(r)
	p.EncAuth = r.digest()
}

// nvDefineSpace is TPM_NV_DefineSpace, Part 3 §20.1: the owner (on an
// OSAP session, the index's authData under its ADIP) defines an index,
// or deletes one by defining it with size 0. Until nvLocked is set
// (defining TPM_NV_INDEX_LOCK) the authorization checks are skipped,
// as on a TPM being manufactured, but no more than 64 writes are made
// without an owner.
func (t *TPM) nvDefineSpace(c *call, in *nvDefineSpaceIn) (*none, error) {
	if err := t.nvActiveChecks(); err != nil {
		return nil, err
	}
	pub := &in.PubInfo
	if pub.Index == nvIndexLock && len(c.auth) == 0 {
		if pub.DataSize != 0 {
			return nil, rcE(rcBadIndex, "TPM_NV_INDEX_LOCK of size %d", pub.DataSize)
		}
		if !t.ps.Flags.NVLocked {
			t.ps.Flags.NVLocked = true
			t.nvDirty = true
		}
		return &none{}, nil
	}
	ignoreAuth := !t.ps.Flags.NVLocked
	if pub.Index == nvIndex0 || !ignoreAuth && pub.Index&nvIndexDBit != 0 {
		return nil, rcE(rcBadIndex, "index %#x", pub.Index)
	}
	var auth digest
	countWrite := false
	if len(c.auth) > 0 {
		a := &c.auth[0]
		if s := t.sessions[a.handle]; s != nil && s.pid != pidOSAP {
			return nil, rcE(rcBadMode, "TPM_NV_DefineSpace needs an OSAP session")
		}
		if !t.ps.Owned {
			return nil, rcE(rcAuthFail, "no owner")
		}
		if err := t.authorize(c, 0, t.ps.OwnerAuth, etOwner, 0); err != nil {
			return nil, err
		}
		auth = adipDecrypt(a.sess, in.EncAuth)
		a.cont = false
	} else {
		if !ignoreAuth {
			if !t.physicalPresence() {
				return nil, rcE(rcBadPresence, "physical presence not asserted")
			}
			if t.ps.Owned {
				return nil, rcE(rcOwnerSet, "owner installed")
			}
			if pub.DataSize == 0 {
				return nil, rcE(rcBadDataSize, "deleting without the owner")
			}
		}
		if t.ps.NoOwnerNVWrite+1 > maxNVWriteNoOwner {
			return nil, rcE(rcMaxNVWrites, "%d writes without an owner", t.ps.NoOwnerNVWrite)
		}
		countWrite = true
		auth = in.EncAuth
	}
	// A redefined index keeps its place in TPM_CAP_NV_LIST, which lists
	// the indices in the order they were defined, as libtpms does.
	at := len(t.ps.NV)
	if i := t.nvFind(pub.Index); i >= 0 {
		// §20.1 action 6: a locked index is not redefined or deleted.
		old := t.ps.NV[i]
		if !ignoreAuth && old.Attributes&nvPerGlobalLock != 0 && t.stclear.BGlobalLock {
			return nil, rcE(rcAreaLocked, "index %#x under bGlobalLock", pub.Index)
		}
		if !ignoreAuth && old.Attributes&nvPerWriteSTClear != 0 && t.nvLocks[pub.Index].Write {
			return nil, rcE(rcAreaLocked, "index %#x under bWriteSTClear", pub.Index)
		}
		delete(t.nvLocks, pub.Index)
		at = i
		t.ps.NV = slices.Delete(t.ps.NV, i, i+1)
		t.nvDirty = true
		if countWrite {
			t.ps.NoOwnerNVWrite++
		}
		if pub.DataSize == 0 {
			return &none{}, nil
		}
	}
	attr := pub.Attributes
	if attr&nvPerOwnerWrite != 0 && attr&nvPerAuthWrite != 0 || attr&nvPerOwnerRead != 0 && attr&nvPerAuthRead != 0 {
		return nil, rcE(rcAuthConflict, "attributes %#x", attr)
	}
	// libtpms takes the write localities from pcrInfoRead; so does this
	// TPM, to answer alike.
	if attr&(nvPerOwnerWrite|nvPerAuthWrite|nvPerWriteDefine|nvPerPPWrite) == 0 && pub.ReadInfo.LocalityAtRelease == locAll {
		return nil, rcE(rcPerNoWrite, "no write protection")
	}
	if pub.DataSize == 0 {
		return nil, rcE(rcBadParamSize, "index of size 0")
	}
	if pub.DataSize > nvSpaceMax || t.nvUsed()+int(pub.DataSize) > nvSpaceMax {
		return nil, rcE(rcNoSpace, "%d bytes", pub.DataSize)
	}
	// A new index starts unlocked (§20.1 action 10), whatever locks an
	// index of that number deleted by OwnerClear left.
	delete(t.nvLocks, pub.Index)
	data := make([]byte, pub.DataSize)
	for i := range data {
		data[i] = 0xFF
	}
	t.ps.NV = slices.Insert(t.ps.NV, at, &nvArea{Index: pub.Index, ReadInfo: pub.ReadInfo, WriteInfo: pub.WriteInfo,
		Attributes: attr, Auth: auth, Data: data})
	if countWrite {
		t.ps.NoOwnerNVWrite++
	}
	t.nvDirty = true
	return &none{}, nil
}

type nvWriteIn struct {
	Index  uint32
	Offset uint32
	Data   []byte
}

func (p *nvWriteIn) unmarshal(r *reader) {
	p.Index = r.u32()
	p.Offset = r.u32()
	p.Data = r.sized(bufferMax)
}

// nvWriteValue is TPM_NV_WriteValue, Part 3 §20.2: a write authorized
// by the owner, or by nobody to an index the owner does not protect.
// Until nvLocked is set only TPM_NV_PER_AUTHWRITE is enforced. A
// zero-size write to TPM_NV_INDEX0 sets bGlobalLock, before any check
// of the owner's authorization when none is sent, so that a BIOS can
// lock without knowing it.
func (t *TPM) nvWriteValue(c *call, in *nvWriteIn) (*none, error) {
	ignoreAuth := !t.ps.Flags.NVLocked
	if in.Index == nvIndex0 {
		if len(c.auth) > 0 {
			if err := t.authorize(c, 0, t.ps.OwnerAuth, etOwner, 0); err != nil {
				return nil, err
			}
		}
		if len(in.Data) != 0 {
			return nil, rcE(rcBadIndex, "write of %d bytes to TPM_NV_INDEX0", len(in.Data))
		}
		t.stclear.BGlobalLock = true
		return &none{}, nil
	}
	i := t.nvFind(in.Index)
	if i < 0 {
		return nil, rcE(rcBadIndex, "index %#x", in.Index)
	}
	a := t.ps.NV[i]
	if t.ps.Flags.NVLocked && a.Attributes&nvPerOwnerWrite != 0 {
		if err := t.nvActiveChecks(); err != nil {
			return nil, err
		}
	}
	countWrite := false
	if len(c.auth) > 0 {
		if a.Attributes&nvPerOwnerWrite == 0 {
			return nil, rcE(rcAuthConflict, "index %#x is not owner-written", in.Index)
		}
		if err := t.authorize(c, 0, t.ps.OwnerAuth, etOwner, 0); err != nil {
			return nil, err
		}
	} else {
		if !ignoreAuth && a.Attributes&nvPerOwnerWrite != 0 {
			return nil, rcE(rcAuthConflict, "index %#x needs the owner", in.Index)
		}
		if !t.ps.Owned {
			if t.ps.NoOwnerNVWrite+1 > maxNVWriteNoOwner {
				return nil, rcE(rcMaxNVWrites, "%d writes without an owner", t.ps.NoOwnerNVWrite)
			}
			countWrite = true
		}
	}
	if a.Attributes&nvPerAuthWrite != 0 {
		return nil, rcE(rcAuthConflict, "index %#x needs its authorization", in.Index)
	}
	changed, err := t.nvWrite(a, in, ignoreAuth)
	if err != nil {
		return nil, err
	}
	// Only a write that changed NV storage counts (libtpms counts
	// what it stores).
	if countWrite && changed {
		t.ps.NoOwnerNVWrite++
	}
	return &none{}, nil
}

// nvWrite makes the checks every write makes and writes; it reports
// whether NV storage changed. A zero-size write sets the index's write
// locks (§20.2 action 14): bWriteSTClear until Startup(ST_CLEAR), and
// bWriteDefine for good. Every successful write clears bReadSTClear.
func (t *TPM) nvWrite(a *nvArea, in *nvWriteIn, ignoreAuth bool) (bool, error) {
	if !ignoreAuth {
		if a.WriteInfo.LocalityAtRelease&localityBit(t.locality) == 0 {
			return false, rcE(rcBadLocality, "locality %d", t.locality)
		}
		if a.Attributes&nvPerPPWrite != 0 && !t.physicalPresence() {
			return false, rcE(rcBadPresence, "physical presence not asserted")
		}
		switch {
		case a.Attributes&nvPerWriteDefine != 0 && a.WriteDefine:
			return false, rcE(rcAreaLocked, "index %#x under bWriteDefine", a.Index)
		case a.Attributes&nvPerGlobalLock != 0 && t.stclear.BGlobalLock:
			return false, rcE(rcAreaLocked, "index %#x under bGlobalLock", a.Index)
		case a.Attributes&nvPerWriteSTClear != 0 && t.nvLocks[a.Index].Write:
			return false, rcE(rcAreaLocked, "index %#x under bWriteSTClear", a.Index)
		}
		if err := t.pcrCheck(&a.WriteInfo); err != nil {
			return false, err
		}
	}
	changed := false
	if len(in.Data) == 0 {
		t.setNVLock(a.Index, func(l *nvLock) { l.Write = true })
		if !a.WriteDefine {
			a.WriteDefine = true
			changed = true
		}
	} else {
		end := uint64(in.Offset) + uint64(len(in.Data))
		if end > uint64(len(a.Data)) {
			return false, rcE(rcNoSpace, "write past the end of index %#x", a.Index)
		}
		if a.Attributes&nvPerWriteAll != 0 && len(in.Data) != len(a.Data) {
			return false, rcE(rcNotFullWrite, "partial write of index %#x", a.Index)
		}
		changed = !bytes.Equal(a.Data[in.Offset:end], in.Data)
		copy(a.Data[in.Offset:], in.Data)
	}
	t.setNVLock(a.Index, func(l *nvLock) { l.Read = false })
	if changed {
		t.nvDirty = true
	}
	return changed, nil
}

// nvWriteValueAuth is TPM_NV_WriteValueAuth, Part 3 §20.3: a write
// authorized by the index's own authData (TPM_NV_PER_AUTHWRITE).
func (t *TPM) nvWriteValueAuth(c *call, in *nvWriteIn) (*none, error) {
	i := t.nvFind(in.Index)
	if i < 0 {
		return nil, rcE(rcBadIndex, "index %#x", in.Index)
	}
	a := t.ps.NV[i]
	if a.Attributes&nvPerAuthWrite == 0 {
		return nil, rcE(rcAuthConflict, "index %#x has no write authorization", in.Index)
	}
	if err := t.authorize(c, 0, a.Auth, etNV, in.Index); err != nil {
		return nil, err
	}
	_, err := t.nvWrite(a, in, false)
	return &none{}, err
}

type nvReadIn struct {
	Index    uint32
	Offset   uint32
	DataSize uint32
}

func (p *nvReadIn) unmarshal(r *reader) {
	p.Index = r.u32()
	p.Offset = r.u32()
	p.DataSize = r.u32()
}

// nvReadValue is TPM_NV_ReadValue, Part 3 §20.4: a read authorized by
// the owner, or by nobody from an index the owner does not protect.
// Until nvLocked is set only TPM_NV_PER_AUTHREAD is enforced.
func (t *TPM) nvReadValue(c *call, in *nvReadIn) (*sizedOut, error) {
	ignoreAuth := !t.ps.Flags.NVLocked
	i := t.nvFind(in.Index)
	if i < 0 {
		return nil, rcE(rcBadIndex, "index %#x", in.Index)
	}
	a := t.ps.NV[i]
	if t.ps.Flags.NVLocked && a.Attributes&nvPerOwnerRead != 0 {
		if err := t.nvActiveChecks(); err != nil {
			return nil, err
		}
	}
	if len(c.auth) > 0 {
		if a.Attributes&nvPerOwnerRead == 0 {
			return nil, rcE(rcAuthConflict, "index %#x is not owner-read", in.Index)
		}
		check := t.authorize
		if ignoreAuth {
			// Part 3 §20.4 action 1.c: the HMAC MAY be checked;
			// libtpms does not.
			check = func(c *call, i int, _ digest, _ uint8, _ uint32) error { return t.bindSession(c, i) }
		}
		if err := check(c, 0, t.ps.OwnerAuth, etOwner, 0); err != nil {
			return nil, err
		}
	} else {
		if a.Attributes&nvPerAuthRead != 0 {
			return nil, rcE(rcAuthConflict, "index %#x needs its authorization", in.Index)
		}
		if !ignoreAuth && a.Attributes&nvPerOwnerRead != 0 {
			return nil, rcE(rcAuthConflict, "index %#x needs the owner", in.Index)
		}
	}
	return t.nvRead(a, in, ignoreAuth)
}

// nvRead makes the checks every read makes and reads.
func (t *TPM) nvRead(a *nvArea, in *nvReadIn, ignoreAuth bool) (*sizedOut, error) {
	if !ignoreAuth {
		if a.ReadInfo.LocalityAtRelease&localityBit(t.locality) == 0 {
			return nil, rcE(rcBadLocality, "locality %d", t.locality)
		}
		if a.Attributes&nvPerPPRead != 0 && !t.physicalPresence() {
			return nil, rcE(rcBadPresence, "physical presence not asserted")
		}
		if a.Attributes&nvPerReadSTClear != 0 && t.nvLocks[a.Index].Read {
			return nil, rcE(rcDisabledCmd, "index %#x under bReadSTClear", a.Index)
		}
		if err := t.pcrCheck(&a.ReadInfo); err != nil {
			return nil, err
		}
	}
	if in.DataSize == 0 {
		// §20.4 action 10: a zero-size read locks reading until
		// Startup(ST_CLEAR) or the next write.
		t.setNVLock(a.Index, func(l *nvLock) { l.Read = true })
		return &sizedOut{}, nil
	}
	end := uint64(in.Offset) + uint64(in.DataSize)
	if end > uint64(len(a.Data)) {
		return nil, rcE(rcNoSpace, "read past the end of index %#x", a.Index)
	}
	return &sizedOut{Data: append([]byte{}, a.Data[in.Offset:end]...)}, nil
}

// nvReadValueAuth is TPM_NV_ReadValueAuth, Part 3 §20.5: a read
// authorized by the index's own authData (TPM_NV_PER_AUTHREAD).
func (t *TPM) nvReadValueAuth(c *call, in *nvReadIn) (*sizedOut, error) {
	i := t.nvFind(in.Index)
	if i < 0 {
		return nil, rcE(rcBadIndex, "index %#x", in.Index)
	}
	a := t.ps.NV[i]
	if a.Attributes&nvPerAuthRead == 0 {
		return nil, rcE(rcAuthConflict, "index %#x has no read authorization", in.Index)
	}
	if err := t.authorize(c, 0, a.Auth, etNV, in.Index); err != nil {
		return nil, err
	}
	return t.nvRead(a, in, false)
}
