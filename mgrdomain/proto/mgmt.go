package proto

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Management requests (tag 0x01C2), as DecodeRequest returns them. The
// layouts follow vtpmmgr's where its design is sound; docs/manager-groups.md,
// "Wire", lists every difference and why.
type (
	// GroupList: the group IDs.
	GroupList struct{}
	// GroupNew: make a group whose SAA is SAAKey (a 256-byte RSA-2048
	// modulus, as vtpmmgr, or a 65-byte uncompressed P-256 point), or
	// give group 0 its SAA if it has none yet. CADigest is vtpmmgr's
	// privacy-CA label digest, kept for the attestation key.
	GroupNew struct {
		CADigest [20]byte
		SAAKey   []byte
	}
	// GroupDel: delete an empty group other than 0.
	GroupDel struct{ Group uint32 }
	// GroupUpdate: install a signed configuration list (mgrdomain/saa).
	GroupUpdate struct {
		Group uint32
		List  []byte
	}
	// GroupShow: a group's SAA, installed list and vTPM count.
	GroupShow struct{ Group uint32 }
	// VTPMList: the UUIDs of a group's vTPMs from Offset on.
	VTPMList struct{ Group, Offset uint32 }
	// VTPMNew: create a vTPM record in Group, with UUID if given (else a
	// random version 4 UUID).
	VTPMNew struct {
		Group uint32
		UUID  *[16]byte
	}
	// VTPMDel: delete a vTPM that is not connected.
	VTPMDel struct{ UUID [16]byte }
)

// More return codes of the management ordinals (TPM 1.2 Part 2, 16).
const (
	TPMBadIndex       uint32 = 2    // TPM_BADINDEX: no such group
	TPMBadKeyProperty uint32 = 0x28 // TPM_BAD_KEY_PROPERTY: SAA key type
	TPMAreaLocked     uint32 = 0x3C // TPM_AREA_LOCKED: in use
	TPMBadCounter     uint32 = 0x45 // TPM_BAD_COUNTER: sequence not above the installed one
)

// Errors an Admin returns (wrapped) to select those codes.
var (
	// ErrNoGroup: no group with that ID (TPM_BADINDEX).
	ErrNoGroup = errors.New("no such group")
	// ErrInUse: a connected vTPM, a group that still has vTPMs, or group
	// 0 (TPM_AREA_LOCKED).
	ErrInUse = errors.New("in use")
	// ErrStale: a configuration list whose sequence number is not above
	// the installed one (TPM_BAD_COUNTER).
	ErrStale = errors.New("sequence number not above the installed list's")
	// ErrBadSignature: a list not signed by the group's SAA, or for
	// another group (TPM_AUTHFAIL).
	ErrBadSignature = errors.New("not signed by the group's SAA")
	// ErrKeyType: an SAA key that is neither RSA-2048 nor P-256
	// (TPM_BAD_KEY_PROPERTY).
	ErrKeyType = errors.New("unsupported SAA key")
	// ErrBadRequest: a well-framed request whose contents are invalid
	// (TPM_BAD_PARAMETER).
	ErrBadRequest = errors.New("invalid request")
)

// Sizes of the management messages.
const (
	// SAAKeyRSA and SAAKeyP256 are the SAA public key encodings GROUP_NEW
	// takes.
	SAAKeyRSA  = 256
	SAAKeyP256 = 65
	// MaxVTPMList is the most UUIDs one VTPM_LIST answer carries: what
	// fits in MaxMessage after the header and the count (vtpmmgr's
	// answer could outgrow the shared page and hang the ring).
	MaxVTPMList = (MaxMessage - HeaderSize - 4) / 16
)

// GroupInfo is GROUP_SHOW's answer.
type GroupInfo struct {
	UUID      [16]byte
	SAAKey    []byte // empty: no SAA yet
	Seq       uint64 // the installed list's sequence number; 0: none
	NextSeq   uint64 // the lowest sequence number the next list may carry
	Family    uint8  // the installed list's TPM family (1: 1.2, 2: 2.0); 0: none
	Approvals []ApprovalInfo
	VTPMs     uint32
	Flags     uint8 // GroupAutocreate, GroupSealed, GroupApproved
}

// ApprovalInfo is one approved configuration of GROUP_SHOW: a bitmap of
// PCRs (bit i = PCR i) and the digest of their approved values.
type ApprovalInfo struct {
	PCRs   uint32
	Digest []byte
}

// GroupInfo.Flags.
const (
	GroupAutocreate = 1 << 0 // unknown UUIDs are created in this group
	GroupSealed     = 1 << 1 // the storage key is sealed to this group's approvals in the hardware TPM
	GroupApproved   = 1 << 2 // the hardware PCRs now match one of its approvals
)

// Marshal encodes GROUP_SHOW's answer.
func (g *GroupInfo) Marshal() []byte {
	b := append([]byte(nil), g.UUID[:]...)
	b = binary.BigEndian.AppendUint16(b, uint16(len(g.SAAKey)))
	b = append(b, g.SAAKey...)
	b = binary.BigEndian.AppendUint64(b, g.Seq)
	b = binary.BigEndian.AppendUint64(b, g.NextSeq)
	b = append(b, g.Family, uint8(len(g.Approvals)))
	for _, a := range g.Approvals {
		b = binary.BigEndian.AppendUint32(b, a.PCRs)
		b = append(b, uint8(len(a.Digest)))
		b = append(b, a.Digest...)
	}
	b = binary.BigEndian.AppendUint32(b, g.VTPMs)
	return append(b, g.Flags)
}

// Admin is the Backend extension that serves the management ordinals.
// Backend.Authorize decides who may send them; without an Admin they are
// answered VTPM_UNSUPPORTED.
type Admin interface {
	GroupList() ([]uint32, error)
	GroupNew(m GroupNew) (uuid [16]byte, id uint32, err error)
	GroupDel(id uint32) error
	GroupUpdate(id uint32, list []byte) error
	GroupShow(id uint32) (*GroupInfo, error)
	// VTPMList returns the group's vTPMs in ascending UUID order.
	VTPMList(group uint32) ([][16]byte, error)
	VTPMNew(group uint32, uuid *[16]byte) ([16]byte, error)
	VTPMDel(uuid [16]byte) error
}

// decodeMgmt decodes the parameters of a management ordinal.
func decodeMgmt(r *Request) (any, error) {
	p := r.Params
	u32 := func() uint32 { return binary.BigEndian.Uint32(p) }
	want := func(name string, n ...int) error {
		for _, k := range n {
			if len(p) == k {
				return nil
			}
		}
		return errorf(TPMBadParameter, "%s takes %v bytes of parameters, got %d", name, n, len(p))
	}
	switch r.Code {
	case OrdGroupList:
		return GroupList{}, want("GROUP_LIST", 0)
	case OrdGroupNew:
		if err := want("GROUP_NEW", 20+SAAKeyRSA, 20+SAAKeyP256); err != nil {
			return nil, err
		}
		m := GroupNew{SAAKey: p[20:]}
		copy(m.CADigest[:], p)
		return m, nil
	case OrdGroupDel:
		if err := want("GROUP_DEL", 4); err != nil {
			return nil, err
		}
		return GroupDel{u32()}, nil
	case OrdGroupShow:
		if err := want("GROUP_SHOW", 4); err != nil {
			return nil, err
		}
		return GroupShow{u32()}, nil
	case OrdGroupUpdate:
		if len(p) < 5 {
			return nil, errorf(TPMBadParameter, "GROUP_UPDATE needs a group and a signed list, got %d bytes", len(p))
		}
		return GroupUpdate{Group: u32(), List: p[4:]}, nil
	case OrdVTPMList:
		if err := want("VTPM_LIST", 8); err != nil {
			return nil, err
		}
		return VTPMList{Group: u32(), Offset: binary.BigEndian.Uint32(p[4:])}, nil
	case OrdVTPMNew:
		// vtpmmgr's script appends a NUL to the UUID (its manager then
		// refused the request): accept it.
		if err := want("VTPM_NEW", 4, 20, 21); err != nil {
			return nil, err
		}
		if len(p) == 21 && p[20] != 0 {
			return nil, errorf(TPMBadParameter, "VTPM_NEW: byte after the UUID is %#x, not NUL", p[20])
		}
		m := VTPMNew{Group: u32()}
		if len(p) >= 20 {
			var u [16]byte
			copy(u[:], p[4:20])
			m.UUID = &u
		}
		return m, nil
	case OrdVTPMDel:
		if err := want("VTPM_DEL", 16, 17); err != nil {
			return nil, err
		}
		if len(p) == 17 && p[16] != 0 {
			return nil, errorf(TPMBadParameter, "VTPM_DEL: byte after the UUID is %#x, not NUL", p[16])
		}
		var m VTPMDel
		copy(m.UUID[:], p)
		return m, nil
	case OrdGroupCACert:
		if err := want("GROUP_CA_CERT", 4); err != nil {
			return nil, err
		}
		return GroupCACert{u32()}, nil
	case OrdGroupAK:
		if err := want("GROUP_AK", 4); err != nil {
			return nil, err
		}
		return GroupAK{u32()}, nil
	case OrdGroupActivate:
		return decodeGroupActivate(p)
	case OrdGroupRegister, OrdGroupQuote, OrdGroupRecover1, OrdGroupRecover2, OrdVTPMShow, OrdVTPMEdit:
		return Unsupported{r.Tag, r.Code}, nil
	}
	if r.Code >= ordMgmtTPMFirst && r.Code <= ordMgmtTPMLast {
		return Unsupported{r.Tag, r.Code}, nil
	}
	return nil, errorf(TPMBadOrdinal, "unknown management ordinal %#x", r.Code)
}

// serveMgmt carries out an authorised management request.
func serveMgmt(a Admin, msg any) ([]byte, error) {
	switch m := msg.(type) {
	case GroupList:
		ids, err := a.GroupList()
		if err != nil {
			return nil, fmt.Errorf("GROUP_LIST: %w", err)
		}
		b := binary.BigEndian.AppendUint32(nil, uint32(len(ids)))
		for _, id := range ids {
			b = binary.BigEndian.AppendUint32(b, id)
		}
		return b, nil
	case GroupNew:
		u, id, err := a.GroupNew(m)
		if err != nil {
			return nil, fmt.Errorf("GROUP_NEW: %w", err)
		}
		return binary.BigEndian.AppendUint32(u[:], id), nil
	case GroupDel:
		if err := a.GroupDel(m.Group); err != nil {
			return nil, fmt.Errorf("GROUP_DEL %d: %w", m.Group, err)
		}
		return nil, nil
	case GroupUpdate:
		// The admin may keep the list; hand it a copy, not the ring.
		if err := a.GroupUpdate(m.Group, append([]byte(nil), m.List...)); err != nil {
			return nil, fmt.Errorf("GROUP_UPDATE %d: %w", m.Group, err)
		}
		return nil, nil
	case GroupShow:
		g, err := a.GroupShow(m.Group)
		if err != nil {
			return nil, fmt.Errorf("GROUP_SHOW %d: %w", m.Group, err)
		}
		return g.Marshal(), nil
	case VTPMList:
		all, err := a.VTPMList(m.Group)
		if err != nil {
			return nil, fmt.Errorf("VTPM_LIST %d: %w", m.Group, err)
		}
		b := binary.BigEndian.AppendUint32(nil, uint32(len(all)))
		if uint64(m.Offset) < uint64(len(all)) {
			page := all[m.Offset:]
			page = page[:min(len(page), MaxVTPMList)]
			for _, u := range page {
				b = append(b, u[:]...)
			}
		}
		return b, nil
	case VTPMNew:
		u, err := a.VTPMNew(m.Group, m.UUID)
		if err != nil {
			return nil, fmt.Errorf("VTPM_NEW in group %d: %w", m.Group, err)
		}
		return u[:], nil
	case VTPMDel:
		if err := a.VTPMDel(m.UUID); err != nil {
			return nil, fmt.Errorf("VTPM_DEL %x: %w", m.UUID, err)
		}
		return nil, nil
	}
	return nil, fmt.Errorf("internal: no management handler for %T", msg)
}
