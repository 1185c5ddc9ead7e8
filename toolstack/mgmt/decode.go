package mgmt

import (
	"bytes"
	"encoding/binary"
	"fmt"

	"github.com/xenvtpm/xenvtpm/mgrdomain/proto"
	"github.com/xenvtpm/xenvtpm/mgrdomain/saa"
)

// The response decoders take the parameters after the header (the body
// of a response whose return code was 0) and refuse anything but the
// exact shape: a short, long or out-of-range field is an error naming
// it.

// GroupInfo is GROUP_SHOW's answer.
type GroupInfo struct {
	UUID [16]byte
	Key  saa.PublicKey // zero if the group has no SAA key
	// Seq is the installed list's sequence number (0: none installed);
	// NextSeq the lowest the next list may carry.
	Seq, NextSeq uint64
	Family       saa.Family // of the installed list; 0 if none
	Approvals    []ShownApproval
	VTPMs        uint32
	Flags        uint8
}

// ShownApproval is an installed approval: PCRs and their digest.
type ShownApproval struct {
	PCRs   []uint
	Digest []byte
}

// GROUP_SHOW flags.
const (
	FlagAutoCreate uint8 = proto.GroupAutocreate // unknown UUIDs are created in this group
	FlagSealed     uint8 = proto.GroupSealed     // the storage key is sealed to this group's approvals
	FlagPCRsMatch  uint8 = proto.GroupApproved   // no list, or the hardware PCRs match one of its approvals
)

// AutoCreate, Sealed and PCRsMatch read Flags.
func (g *GroupInfo) AutoCreate() bool { return g.Flags&FlagAutoCreate != 0 }
func (g *GroupInfo) Sealed() bool     { return g.Flags&FlagSealed != 0 }
func (g *GroupInfo) PCRsMatch() bool  { return g.Flags&FlagPCRsMatch != 0 }

// body reads fields off a response body.
type body struct {
	what string
	b    []byte
	off  int
}

func (r *body) take(n int, field string) ([]byte, error) {
	if len(r.b)-r.off < n {
		return nil, fmt.Errorf("%s: response truncated in %s (offset %d, %d bytes needed, %d left)", r.what, field, r.off, n, len(r.b)-r.off)
	}
	p := r.b[r.off : r.off+n]
	r.off += n
	return p, nil
}

func (r *body) uint(n int, field string) (uint64, error) {
	p, err := r.take(n, field)
	if err != nil {
		return 0, err
	}
	var v uint64
	for _, c := range p {
		v = v<<8 | uint64(c)
	}
	return v, nil
}

func (r *body) end() error {
	if r.off != len(r.b) {
		return fmt.Errorf("%s: %d unexpected bytes after the response", r.what, len(r.b)-r.off)
	}
	return nil
}

// DecodeGroupList decodes u32 n ‖ n × u32 group ID, IDs strictly
// ascending.
func DecodeGroupList(p []byte) ([]uint32, error) {
	r := &body{what: "GROUP_LIST", b: p}
	n, err := r.uint(4, "count")
	if err != nil {
		return nil, err
	}
	if n > uint64(len(p)/4) {
		return nil, fmt.Errorf("GROUP_LIST: count %d but %d bytes", n, len(p))
	}
	ids := make([]uint32, 0, n)
	for i := range n {
		id, err := r.uint(4, fmt.Sprintf("group ID %d", i))
		if err != nil {
			return nil, err
		}
		if i > 0 && uint32(id) <= ids[i-1] {
			return nil, fmt.Errorf("GROUP_LIST: group IDs not ascending (%d after %d)", id, ids[i-1])
		}
		ids = append(ids, uint32(id))
	}
	return ids, r.end()
}

// DecodeGroupNew decodes 16-byte UUID ‖ u32 group ID.
func DecodeGroupNew(p []byte) (uuid [16]byte, id uint32, err error) {
	if len(p) != UUIDSize+4 {
		return uuid, 0, fmt.Errorf("GROUP_NEW: %d-byte response, want %d (UUID and group ID)", len(p), UUIDSize+4)
	}
	copy(uuid[:], p)
	return uuid, binary.BigEndian.Uint32(p[UUIDSize:]), nil
}

// DecodeVTPMNew decodes the new vTPM's 16-byte UUID.
func DecodeVTPMNew(p []byte) ([16]byte, error) {
	var u [16]byte
	if len(p) != UUIDSize {
		return u, fmt.Errorf("VTPM_NEW: %d-byte response, want %d (UUID)", len(p), UUIDSize)
	}
	copy(u[:], p)
	return u, nil
}

// DecodeVTPMList decodes u32 total ‖ up to MaxListPage sorted UUIDs.
func DecodeVTPMList(p []byte) (total uint32, page [][16]byte, err error) {
	if len(p) < 4 || (len(p)-4)%UUIDSize != 0 {
		return 0, nil, fmt.Errorf("VTPM_LIST: %d-byte response, want 4 + a multiple of %d", len(p), UUIDSize)
	}
	total = binary.BigEndian.Uint32(p)
	n := (len(p) - 4) / UUIDSize
	if n > MaxListPage {
		return 0, nil, fmt.Errorf("VTPM_LIST: %d UUIDs in one response, at most %d", n, MaxListPage)
	}
	if uint64(n) > uint64(total) {
		return 0, nil, fmt.Errorf("VTPM_LIST: %d UUIDs but a total of %d", n, total)
	}
	page = make([][16]byte, n)
	for i := range page {
		copy(page[i][:], p[4+i*UUIDSize:])
		if i > 0 && bytes.Compare(page[i][:], page[i-1][:]) <= 0 {
			return 0, nil, fmt.Errorf("VTPM_LIST: UUIDs not in ascending order at %d", i)
		}
	}
	return total, page, nil
}

// DecodeGroupShow decodes GROUP_SHOW's answer (docs/manager-groups.md).
func DecodeGroupShow(p []byte) (*GroupInfo, error) {
	r := &body{what: "GROUP_SHOW", b: p}
	g := &GroupInfo{}
	u, err := r.take(UUIDSize, "UUID")
	if err != nil {
		return nil, err
	}
	copy(g.UUID[:], u)
	kl, err := r.uint(2, "key length")
	if err != nil {
		return nil, err
	}
	switch kl {
	case 0:
	case saa.RSAKeySize, saa.ECDSAKeySize:
		k, err := r.take(int(kl), "key")
		if err != nil {
			return nil, err
		}
		if g.Key, err = saa.ParsePublicKey(k); err != nil {
			return nil, fmt.Errorf("GROUP_SHOW: key: %w", err)
		}
	default:
		return nil, fmt.Errorf("GROUP_SHOW: key length %d, want 0, %d or %d", kl, saa.ECDSAKeySize, saa.RSAKeySize)
	}
	if g.Seq, err = r.uint(8, "sequence number"); err != nil {
		return nil, err
	}
	if g.NextSeq, err = r.uint(8, "next sequence number"); err != nil {
		return nil, err
	}
	if g.NextSeq <= g.Seq {
		return nil, fmt.Errorf("GROUP_SHOW: next sequence number %d is not above the installed %d", g.NextSeq, g.Seq)
	}
	fam, err := r.uint(1, "family")
	if err != nil {
		return nil, err
	}
	g.Family = saa.Family(fam)
	n, err := r.uint(1, "approval count")
	if err != nil {
		return nil, err
	}
	switch {
	case g.Family == 0:
		if g.Seq != 0 || n != 0 {
			return nil, fmt.Errorf("GROUP_SHOW: no list installed (family 0) but sequence %d and %d approvals", g.Seq, n)
		}
	case g.Family.DigestSize() == 0:
		return nil, fmt.Errorf("GROUP_SHOW: family %d, want 0 (none), 1 (TPM 1.2) or 2 (TPM 2.0)", fam)
	case g.Seq == 0:
		return nil, fmt.Errorf("GROUP_SHOW: a TPM %s list with sequence number 0", g.Family)
	case n == 0 || n > saa.MaxApprovals:
		return nil, fmt.Errorf("GROUP_SHOW: approval count %d, want 1..%d", n, saa.MaxApprovals)
	}
	for i := range n {
		m, err := r.uint(4, fmt.Sprintf("approval %d PCR bitmap", i))
		if err != nil {
			return nil, err
		}
		if m == 0 || m>>24 != 0 {
			return nil, fmt.Errorf("GROUP_SHOW: approval %d PCR bitmap %#08x, want PCRs within 0..23", i, m)
		}
		dl, err := r.uint(1, fmt.Sprintf("approval %d digest length", i))
		if err != nil {
			return nil, err
		}
		if int(dl) != g.Family.DigestSize() {
			return nil, fmt.Errorf("GROUP_SHOW: approval %d digest of %d bytes, want %d for TPM %s", i, dl, g.Family.DigestSize(), g.Family)
		}
		d, err := r.take(int(dl), fmt.Sprintf("approval %d digest", i))
		if err != nil {
			return nil, err
		}
		g.Approvals = append(g.Approvals, ShownApproval{PCRs: saa.PCRsOf(uint32(m)), Digest: bytes.Clone(d)})
	}
	v, err := r.uint(4, "vTPM count")
	if err != nil {
		return nil, err
	}
	g.VTPMs = uint32(v)
	f, err := r.uint(1, "flags")
	if err != nil {
		return nil, err
	}
	g.Flags = uint8(f)
	return g, r.end()
}
