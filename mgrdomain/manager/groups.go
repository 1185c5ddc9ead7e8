package manager

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/xenvtpm/xenvtpm/mgrdomain/hwtpm"
	"github.com/xenvtpm/xenvtpm/mgrdomain/proto"
	"github.com/xenvtpm/xenvtpm/mgrdomain/saa"
	"github.com/xenvtpm/xenvtpm/mgrdomain/store"
)

// Groups (xen-vtpmmgr(7), "Boot Configurations and TPM Groups";
// docs/manager-groups.md). Every vTPM record belongs to one group
// (store.Record.Group). A group has a UUID, the public key of its System
// Approval Agent (SAA) and the signed list of configurations its SAA
// approved, whose sequence number only moves forward. Group 0 exists from
// the first start; it gets its SAA with the first GROUP_NEW.
//
// Groups live in the store beside the vTPM records, so a group change and
// its counter binding commit atomically like a save: a power cut leaves
// the old group or the new one. A group is encoded (marshal) and cut into
// records of up to store.MaxBlob bytes under reserved keys, groupMagic ‖
// group ID ‖ chunk number; no vTPM may have such a UUID.
//
// What an approval list does: a vTPM of a group whose list approves none
// of the host's current configurations is refused its key (LOADHASHKEY,
// SAVEHASHKEY), with a console line. That check is the manager's; the
// hardware TPM enforces group 0's approvals too, when the storage key is
// sealed to them (approve.go).

// MaxGroups bounds the groups of one manager.
const MaxGroups = 1024

const (
	groupMagic = "XVGROUP\x00"
	// groupVersion is a group without an EK CA; groupVersionCA one with
	// (ekcert.go), so groups written before EK certificates read as they
	// were and are written as they were until they get a CA;
	// groupVersionAIK one with a TPM 1.2 identity key (deepquote12.go),
	// with or without a CA.
	groupVersion    = 1
	groupVersionCA  = 2
	groupVersionAIK = 3
	// maxGroupBytes bounds an encoded group: fixed fields, the largest
	// SAA key, the largest signed list, the EK CA and the identity key.
	maxGroupBytes = 1 + 4 + 16 + 2 + proto.SAAKeyRSA + 8 + 2 + saa.MaxListSize + 2 + maxCAKey + 2 + maxCACert +
		2 + maxAIKBlob + 2 + maxAIKPub + 2 + maxAIKBinding
)

// group is one group as the manager holds it.
type group struct {
	id   uint32
	uuid [16]byte
	key  []byte // the SAA's public key (saa wire form); nil: none yet
	list []byte // the installed signed list; nil: none
	seq  uint64 // its sequence number
	nrec uint32 // store records it takes (0: not stored yet)
	// caKey (PKCS #8) and caCert (DER) are the group's EK CA
	// (ekcert.go); nil: none made yet.
	caKey, caCert []byte
	// aikBlob (the TPM_KEY only this TPM's SRK unwraps), aikPub (its
	// TPM_PUBKEY) and aikBinding (TPM_MakeIdentity's identityBinding)
	// are the group's TPM 1.2 identity key (deepquote12.go); nil: none
	// made yet, or TPM 2.0 hardware.
	aikBlob, aikPub, aikBinding []byte

	// Derived at load and update, not stored.
	pub      *saa.PublicKey
	signed   *saa.Signed
	approved bool // no list, or the current PCRs match one of its approvals
	match    int  // the index of the approval they matched; -1: none or no list
}

// isReserved reports a key of the groups' records.
func isReserved(u store.UUID) bool { return bytes.HasPrefix(u[:], []byte(groupMagic)) }

func groupKey(id, chunk uint32) store.UUID {
	var u store.UUID
	copy(u[:], groupMagic)
	binary.BigEndian.PutUint32(u[8:], id)
	binary.BigEndian.PutUint32(u[12:], chunk)
	return u
}

// marshal: version u8 ‖ id u32 ‖ uuid ‖ u16 keyLen ‖ key ‖ u64 seq ‖ u16
// listLen ‖ list, then in version 2 u16 caKeyLen ‖ caKey ‖ u16 caCertLen
// ‖ caCert, and in version 3 the same two fields (both empty without a
// CA) then u16 ‖ aikBlob ‖ u16 ‖ aikPub ‖ u16 ‖ aikBinding. A group is
// written in the lowest version that holds it, so a record of versions 1
// and 2 re-encodes as it was read.
func (g *group) marshal() []byte {
	v := byte(groupVersion)
	switch {
	case g.aikBlob != nil:
		v = groupVersionAIK
	case g.caKey != nil:
		v = groupVersionCA
	}
	b := []byte{v}
	b = binary.BigEndian.AppendUint32(b, g.id)
	b = append(b, g.uuid[:]...)
	b = binary.BigEndian.AppendUint16(b, uint16(len(g.key)))
	b = append(b, g.key...)
	b = binary.BigEndian.AppendUint64(b, g.seq)
	b = binary.BigEndian.AppendUint16(b, uint16(len(g.list)))
	b = append(b, g.list...)
	if v >= groupVersionCA {
		b = binary.BigEndian.AppendUint16(b, uint16(len(g.caKey)))
		b = append(b, g.caKey...)
		b = binary.BigEndian.AppendUint16(b, uint16(len(g.caCert)))
		b = append(b, g.caCert...)
	}
	if v == groupVersionAIK {
		for _, f := range [][]byte{g.aikBlob, g.aikPub, g.aikBinding} {
			b = binary.BigEndian.AppendUint16(b, uint16(len(f)))
			b = append(b, f...)
		}
	}
	return b
}

// unmarshalAIK reads version 3's tail: the EK CA's two fields (both
// empty, or as in version 2) and the identity key's three (none empty).
func unmarshalAIK(g *group, b []byte) error {
	var f [5][]byte
	for i, max := range []int{maxCAKey, maxCACert, maxAIKBlob, maxAIKPub, maxAIKBinding} {
		if len(b) < 2 {
			return errors.New("truncated in its EK CA or identity key")
		}
		n := int(binary.BigEndian.Uint16(b))
		if n > max || len(b) < 2+n || (n == 0 && i >= 2) {
			return fmt.Errorf("EK CA or identity key field of %d bytes (at most %d) with %d left", n, max, len(b)-2)
		}
		if n > 0 {
			f[i] = slices.Clone(b[2 : 2+n])
		}
		b = b[2+n:]
	}
	if len(b) != 0 {
		return fmt.Errorf("%d bytes after the identity key", len(b))
	}
	if (f[0] == nil) != (f[1] == nil) {
		return errors.New("an EK CA key without its certificate, or the reverse")
	}
	g.caKey, g.caCert, g.aikBlob, g.aikPub, g.aikBinding = f[0], f[1], f[2], f[3], f[4]
	return nil
}

func unmarshalGroup(b []byte) (*group, error) {
	if len(b) < 1+4+16+2 {
		return nil, fmt.Errorf("group record of %d bytes", len(b))
	}
	v := b[0]
	if v != groupVersion && v != groupVersionCA && v != groupVersionAIK {
		return nil, fmt.Errorf("group record version %d", b[0])
	}
	g := &group{id: binary.BigEndian.Uint32(b[1:])}
	copy(g.uuid[:], b[5:21])
	b = b[21:]
	kl := int(binary.BigEndian.Uint16(b))
	if len(b) < 2+kl+8+2 {
		return nil, errors.New("group record truncated in its SAA key")
	}
	if kl > 0 {
		g.key = slices.Clone(b[2 : 2+kl])
	}
	b = b[2+kl:]
	g.seq = binary.BigEndian.Uint64(b)
	ll := int(binary.BigEndian.Uint16(b[8:]))
	if len(b) < 10+ll || (v == groupVersion && len(b) != 10+ll) {
		return nil, errors.New("group record: list length does not match")
	}
	if ll > 0 {
		g.list = slices.Clone(b[10 : 10+ll])
	}
	switch v {
	case groupVersionCA:
		var err error
		if g.caKey, g.caCert, err = unmarshalCA(b[10+ll:]); err != nil {
			return nil, fmt.Errorf("group record: %w", err)
		}
	case groupVersionAIK:
		if err := unmarshalAIK(g, b[10+ll:]); err != nil {
			return nil, fmt.Errorf("group record: %w", err)
		}
	}
	return g, nil
}

// parse derives pub and signed from key and list.
func (g *group) parse() error {
	g.pub, g.signed = nil, nil
	if len(g.key) > 0 {
		k, err := saa.ParsePublicKey(g.key)
		if err != nil {
			return fmt.Errorf("group %d: SAA key: %w", g.id, err)
		}
		g.pub = &k
	}
	if len(g.list) > 0 {
		s, err := saa.ParseList(g.list)
		if err != nil {
			return fmt.Errorf("group %d: approval list: %w", g.id, err)
		}
		g.signed = s
	}
	return nil
}

// putGroup writes g into the batch, deleting the chunks an older, longer
// encoding (old) used.
func putGroup(b *store.Batch, old, g *group) {
	enc := g.marshal()
	n := uint32(0)
	for off := 0; off < len(enc); off += store.MaxBlob {
		end := min(off+store.MaxBlob, len(enc))
		b.Put(groupKey(g.id, n), store.Record{Blob: enc[off:end], Group: g.id, Flags: uint32(len(enc))})
		n++
	}
	g.nrec = n
	if old != nil {
		for c := n; c < chunks(len(old.marshal())); c++ {
			b.Delete(groupKey(g.id, c))
		}
	}
}

func delGroup(b *store.Batch, g *group) {
	for c := range chunks(len(g.marshal())) {
		b.Delete(groupKey(g.id, c))
	}
}

func chunks(n int) uint32 { return uint32((n + store.MaxBlob - 1) / store.MaxBlob) }

// loadGroups reads every group from the store and counts the vTPMs.
func loadGroups(st *store.Store) (map[uint32]*group, error) {
	parts := map[uint32][]byte{}
	want := map[uint32]uint32{}
	var bad error
	err := st.Range(func(u store.UUID, r store.Record) bool {
		if !isReserved(u) {
			return true
		}
		id, c := binary.BigEndian.Uint32(u[8:]), binary.BigEndian.Uint32(u[12:])
		if c != chunks(len(parts[id])) || (c > 0 && want[id] != r.Flags) || r.Flags > uint32(maxGroupBytes) {
			bad = fmt.Errorf("group %d: chunk %d out of order or of another length", id, c)
			return false
		}
		want[id] = r.Flags
		parts[id] = append(parts[id], r.Blob...)
		return true
	})
	if err == nil {
		err = bad
	}
	if err != nil {
		return nil, err
	}
	gs := map[uint32]*group{}
	for id, enc := range parts {
		if uint32(len(enc)) != want[id] {
			return nil, fmt.Errorf("group %d: %d bytes of %d", id, len(enc), want[id])
		}
		g, err := unmarshalGroup(enc)
		if err != nil {
			return nil, fmt.Errorf("group %d: %w", id, err)
		}
		if g.id != id {
			return nil, fmt.Errorf("group %d: record says %d", id, g.id)
		}
		if err := g.parse(); err != nil {
			return nil, err
		}
		g.nrec = chunks(len(enc))
		gs[id] = g
	}
	return gs, nil
}

// newUUID is a random version 4 UUID.
func newUUID() ([16]byte, error) {
	var u [16]byte
	if _, err := rand.Read(u[:]); err != nil {
		return u, err
	}
	u[6] = u[6]&0x0f | 0x40
	u[8] = u[8]&0x3f | 0x80
	return u, nil
}

// family is the hardware's TPM family in the lists' terms.
func (m *Manager) family() saa.Family {
	if _, ok := m.hw.(*hwtpm.TPM12); ok {
		return saa.Family12
	}
	return saa.Family20
}

// pcrReader is the hardware's PCR bank the approvals are checked against
// (SHA-256 on TPM 2.0, SHA-1 on TPM 1.2).
type pcrReader interface {
	PCRValues(pcrs []uint) ([][]byte, error)
}

// pcrCache reads each PCR from the hardware once, however many groups'
// approvals name it (start-up checks every group's).
type pcrCache struct {
	r    pcrReader
	vals map[uint][]byte
}

func (c *pcrCache) PCRValues(pcrs []uint) ([][]byte, error) {
	var miss []uint
	for _, p := range pcrs {
		if c.vals[p] == nil {
			miss = append(miss, p)
		}
	}
	if len(miss) > 0 {
		v, err := c.r.PCRValues(miss)
		if err != nil {
			return nil, err
		}
		for i, p := range miss {
			c.vals[p] = v[i]
		}
	}
	out := make([][]byte, len(pcrs))
	for i, p := range pcrs {
		out[i] = c.vals[p]
	}
	return out, nil
}

// pcrs is the PCR reader approvals are checked with: the hardware, or
// the start-up cache.
func (m *Manager) pcrs() (pcrReader, error) {
	if m.pcrCache != nil {
		return m.pcrCache, nil
	}
	r, ok := m.hw.(pcrReader)
	if !ok {
		return nil, errors.New("the hardware TPM cannot read its PCR bank")
	}
	return r, nil
}

// matchApproval returns the index of the first approval of s that the
// hardware's current PCRs satisfy, or -1.
func (m *Manager) matchApproval(s *saa.Signed) (int, error) {
	r, err := m.pcrs()
	if err != nil {
		return -1, err
	}
	for i, a := range s.List.Approvals {
		vals, err := r.PCRValues(a.PCRs)
		if err != nil {
			return -1, err
		}
		var d []byte
		if s.List.Family == saa.Family12 {
			c, err := saa.Composite12(a.PCRs, vals)
			if err != nil {
				return -1, err
			}
			d = c[:]
		} else {
			d = saa.PCRDigest(vals)
		}
		if bytes.Equal(d, a.Digest) {
			return i, nil
		}
	}
	return -1, nil
}

// checkApproved sets g.approved from the current PCRs and says so.
func (m *Manager) checkApproved(g *group) error {
	g.approved, g.match = true, -1
	if g.signed == nil {
		return nil
	}
	if g.signed.List.Family != m.family() {
		g.approved = false
		m.logf("manager: group %d: its approval list (sequence %d) is for TPM %s hardware, not this host's: its vTPMs are refused", g.id, g.seq, g.signed.List.Family)
		return nil
	}
	i, err := m.matchApproval(g.signed)
	if err != nil {
		g.approved = false
		return fmt.Errorf("manager: group %d: reading the PCRs its approvals name: %w", g.id, err)
	}
	g.approved, g.match = i >= 0, i
	if !g.approved {
		m.logf("manager: group %d: its SAA approved none of this host's configurations (list sequence %d): its vTPMs are refused their keys", g.id, g.seq)
	}
	return nil
}

// openGroups loads the groups at start-up; a disk from before groups has
// none, and gets group 0 at its first group change.
func (m *Manager) openGroups() error {
	gs, err := loadGroups(m.st)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrBadDisk, err)
	}
	if gs[0] == nil {
		u, err := newUUID()
		if err != nil {
			return err
		}
		gs[0] = &group{id: 0, uuid: u}
	}
	if r, ok := m.hw.(pcrReader); ok {
		m.pcrCache = &pcrCache{r: r, vals: map[uint][]byte{}}
		defer func() { m.pcrCache = nil }()
	}
	for _, g := range gs {
		if err := m.checkApproved(g); err != nil {
			return err
		}
	}
	m.groups = gs
	if !m.cfg.NoAutocreate && gs[m.cfg.AutocreateGroup] == nil {
		m.logf("manager: autocreate=group:%d names no group: saves of unknown vTPMs will be refused until it exists", m.cfg.AutocreateGroup)
	}
	return nil
}

// usableGroup refuses a vTPM whose group does not exist or whose SAA has
// not approved this host (mu held).
func (m *Manager) usableGroup(uuid [16]byte, id uint32) error {
	g := m.groups[id]
	switch {
	case g == nil:
		return fmt.Errorf("%w: vTPM %x belongs to group %d, which does not exist", proto.ErrForbidden, uuid, id)
	case !g.approved:
		return fmt.Errorf("%w: vTPM %x: group %d's SAA has not approved this host's configuration", proto.ErrForbidden, uuid, id)
	}
	return nil
}

// adminCommit commits a batch of group or vTPM changes and increments the
// hardware counter, as a save does. cmu is held (lockAdmin), so the
// committer's saves cannot slip between a request's checks and this
// commit.
func (m *Manager) adminCommit(b *store.Batch) error {
	m.mu.Lock()
	owed := m.owed
	m.mu.Unlock()
	deadline := m.clk.Now().Add(m.cfg.BusyAfter)
	if owed {
		if err := m.increment(deadline); err != nil {
			return fmt.Errorf("%w: hardware counter: %w", proto.ErrBusy, err)
		}
		m.mu.Lock()
		m.owed = false
		m.wrote(m.clk.Now())
		m.mu.Unlock()
	}
	if err := m.st.Commit(b); err != nil {
		if errors.Is(err, store.ErrNoSpace) {
			return fmt.Errorf("%w: %w", proto.ErrNoSpace, err)
		}
		return fmt.Errorf("manager: store commit: %w", err)
	}
	err := m.increment(deadline)
	m.mu.Lock()
	defer m.mu.Unlock()
	m.stats.Commits++
	switch {
	case err == nil:
		m.wrote(m.clk.Now())
	case hwtpm.IsBusy(err):
		// The change is on disk; the counter is made up before the next
		// commit, as after a save that met back-pressure.
		m.owed = true
		m.pressure(err)
	default:
		m.broken = fmt.Errorf("manager: hardware counter increment after commit: %w (restart the manager)", err)
		return m.broken
	}
	return nil
}

// vtpmsOf returns the UUIDs of a group's vTPMs, ascending.
func (m *Manager) vtpmsOf(id uint32) ([][16]byte, error) {
	var out [][16]byte
	err := m.st.Range(func(u store.UUID, r store.Record) bool {
		if !isReserved(u) && r.Group == id {
			out = append(out, u)
		}
		return true
	})
	return out, err
}

// The proto.Admin methods. A request that changes something holds amu
// (management requests run one at a time) and cmu from its checks to its
// commit (no save commits in between: a vTPM being deleted cannot save,
// a group being deleted cannot gain a vTPM, a record being created is not
// overwritten).

// lockAdmin takes amu and cmu; the returned function releases them.
func (m *Manager) lockAdmin() func() {
	m.amu.Lock()
	m.cmu.Lock()
	return func() {
		m.cmu.Unlock()
		m.amu.Unlock()
	}
}

var _ proto.Admin = (*Manager)(nil)

// GroupList returns the group IDs, ascending.
func (m *Manager) GroupList() ([]uint32, error) {
	m.amu.Lock()
	defer m.amu.Unlock()
	m.mu.Lock()
	defer m.mu.Unlock()
	ids := make([]uint32, 0, len(m.groups))
	for id := range m.groups {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids, nil
}

// GroupNew gives group 0 its SAA if it has none, or makes a new group.
func (m *Manager) GroupNew(req proto.GroupNew) ([16]byte, uint32, error) {
	if err := m.usable(); err != nil {
		return [16]byte{}, 0, err
	}
	k, err := saa.ParsePublicKey(req.SAAKey)
	if err != nil {
		return [16]byte{}, 0, fmt.Errorf("%w: %w", proto.ErrKeyType, err)
	}
	defer m.lockAdmin()()
	m.mu.Lock()
	g0 := m.groups[0]
	var g *group
	if g0.key == nil {
		c := *g0
		g = &c
	} else {
		if len(m.groups) >= MaxGroups {
			m.mu.Unlock()
			return [16]byte{}, 0, fmt.Errorf("%w: %d groups already", proto.ErrNoSpace, MaxGroups)
		}
		id := uint32(1)
		for m.groups[id] != nil {
			id++
		}
		u, err := newUUID()
		if err != nil {
			m.mu.Unlock()
			return [16]byte{}, 0, err
		}
		g = &group{id: id, uuid: u}
	}
	m.mu.Unlock()
	if g.id == 0 {
		// Group 0's SAA signs for this TPM's approval counter: it must
		// exist before the SAA picks a sequence number.
		if err := m.defineApprovals(); err != nil {
			return [16]byte{}, 0, err
		}
	}
	g.key, g.pub = k.Bytes(), &k
	var b store.Batch
	putGroup(&b, m.groups[g.id], g)
	if err := m.adminCommit(&b); err != nil {
		return [16]byte{}, 0, err
	}
	g.approved, g.match = true, -1
	m.mu.Lock()
	m.groups[g.id] = g
	m.mu.Unlock()
	m.logf("manager: group %d (uuid %x) has SAA key %s", g.id, g.uuid, k.Fingerprint())
	return g.uuid, g.id, nil
}

// GroupDel deletes a group other than 0 that has no vTPMs.
func (m *Manager) GroupDel(id uint32) error {
	if err := m.usable(); err != nil {
		return err
	}
	defer m.lockAdmin()()
	m.mu.Lock()
	g := m.groups[id]
	m.mu.Unlock()
	switch {
	case g == nil:
		return fmt.Errorf("%w: %d", proto.ErrNoGroup, id)
	case id == 0:
		return fmt.Errorf("%w: group 0 is never deleted", proto.ErrInUse)
	}
	vs, err := m.vtpmsOf(id)
	if err != nil {
		return err
	}
	if len(vs) > 0 {
		return fmt.Errorf("%w: group %d still has %d vTPMs (delete them first)", proto.ErrInUse, id, len(vs))
	}
	var b store.Batch
	delGroup(&b, g)
	if err := m.adminCommit(&b); err != nil {
		return err
	}
	m.mu.Lock()
	delete(m.groups, id)
	m.mu.Unlock()
	m.logf("manager: group %d deleted", id)
	return nil
}

// GroupShow describes a group.
func (m *Manager) GroupShow(id uint32) (*proto.GroupInfo, error) {
	if err := m.usable(); err != nil {
		return nil, err
	}
	m.amu.Lock()
	defer m.amu.Unlock()
	m.mu.Lock()
	g := m.groups[id]
	m.mu.Unlock()
	if g == nil {
		return nil, fmt.Errorf("%w: %d", proto.ErrNoGroup, id)
	}
	vs, err := m.vtpmsOf(id)
	if err != nil {
		return nil, err
	}
	next, _, err := m.nextSeq(g)
	if err != nil {
		return nil, err
	}
	info := &proto.GroupInfo{UUID: g.uuid, SAAKey: g.key, Seq: g.seq, NextSeq: next, VTPMs: uint32(len(vs))}
	if g.signed != nil {
		info.Family = uint8(g.signed.List.Family)
		for _, a := range g.signed.List.Approvals {
			var bits uint32
			for _, p := range a.PCRs {
				bits |= 1 << p
			}
			info.Approvals = append(info.Approvals, proto.ApprovalInfo{PCRs: bits, Digest: a.Digest})
		}
	}
	if !m.cfg.NoAutocreate && m.cfg.AutocreateGroup == id {
		info.Flags |= proto.GroupAutocreate
	}
	if id == 0 && m.sealedToGroup0() {
		info.Flags |= proto.GroupSealed
	}
	if g.approved {
		info.Flags |= proto.GroupApproved
	}
	return info, nil
}

// GroupUpdate installs a signed list in a group.
func (m *Manager) GroupUpdate(id uint32, list []byte) error {
	if err := m.usable(); err != nil {
		return err
	}
	defer m.lockAdmin()()
	m.mu.Lock()
	old := m.groups[id]
	m.mu.Unlock()
	if old == nil {
		return fmt.Errorf("%w: %d", proto.ErrNoGroup, id)
	}
	if old.pub == nil {
		return fmt.Errorf("%w: group %d has no SAA key yet (GROUP_NEW first)", proto.ErrBadRequest, id)
	}
	s, err := saa.ParseList(list)
	if err != nil {
		return fmt.Errorf("%w: %w", proto.ErrBadRequest, err)
	}
	if s.List.Group != old.uuid {
		return fmt.Errorf("%w: the list is signed for group uuid %x, this is %x", proto.ErrBadSignature, s.List.Group, old.uuid)
	}
	if err := s.Verify(*old.pub); err != nil {
		return fmt.Errorf("%w: %w", proto.ErrBadSignature, err)
	}
	if bytes.Equal(list, old.list) {
		return nil
	}
	lo, hi, err := m.nextSeq(old)
	if err != nil {
		return err
	}
	switch {
	case s.List.Seq < lo:
		return fmt.Errorf("%w: list sequence %d, the next must be at least %d", proto.ErrStale, s.List.Seq, lo)
	case s.List.Seq > hi:
		return fmt.Errorf("%w: list sequence %d is more than %d above the approval counter (the highest this TPM takes now is %d): ask the SAA for a nearer one", proto.ErrBadRequest, s.List.Seq, hwtpm.MaxApprovalJump, hi)
	}
	if s.List.Family != m.family() {
		return fmt.Errorf("%w: the list approves TPM %s configurations; this host's TPM is %s", proto.ErrBadRequest, s.List.Family, m.family())
	}
	// A new list keeps the group's EK CA and identity key (it used to
	// drop the CA, which the next CERTIFY_EK replaced with a new one).
	g := &group{id: id, uuid: old.uuid, key: old.key, pub: old.pub, list: list, seq: s.List.Seq, signed: s,
		caKey: old.caKey, caCert: old.caCert, aikBlob: old.aikBlob, aikPub: old.aikPub, aikBinding: old.aikBinding}
	t0 := time.Now()
	if id == 0 {
		if err := m.sealToApprovals(g); err != nil {
			return err
		}
	}
	var b store.Batch
	putGroup(&b, old, g)
	if err := m.adminCommit(&b); err != nil {
		return err
	}
	if err := m.checkApproved(g); err != nil {
		m.logf("%v", err)
	}
	m.mu.Lock()
	m.groups[id] = g
	m.mu.Unlock()
	if id == 0 {
		// The list is installed whatever this answers; a revocation the
		// TPM refuses now is finished at the next start.
		if err := m.revokeBelow(g.seq); err != nil {
			return err
		}
	}
	m.logf("manager: group %d: approval list sequence %d installed (%d configurations) in %v", id, g.seq, len(s.List.Approvals), time.Since(t0).Round(time.Millisecond))
	return nil
}

// VTPMList lists a group's vTPMs.
func (m *Manager) VTPMList(id uint32) ([][16]byte, error) {
	if err := m.usable(); err != nil {
		return nil, err
	}
	m.mu.Lock()
	g := m.groups[id]
	m.mu.Unlock()
	if g == nil {
		return nil, fmt.Errorf("%w: %d", proto.ErrNoGroup, id)
	}
	return m.vtpmsOf(id)
}

// VTPMNew makes a vTPM record (without a key until its first save).
func (m *Manager) VTPMNew(id uint32, uuid *[16]byte) ([16]byte, error) {
	if err := m.usable(); err != nil {
		return [16]byte{}, err
	}
	defer m.lockAdmin()()
	m.mu.Lock()
	g := m.groups[id]
	m.mu.Unlock()
	if g == nil {
		return [16]byte{}, fmt.Errorf("%w: %d", proto.ErrNoGroup, id)
	}
	var u [16]byte
	if uuid != nil {
		u = *uuid
	} else {
		var err error
		if u, err = newUUID(); err != nil {
			return u, err
		}
	}
	switch _, err := m.st.Get(u); {
	case u == [16]byte{} || isReserved(u):
		return u, fmt.Errorf("%w: UUID %x is reserved", proto.ErrBadRequest, u)
	case err == nil:
		return u, fmt.Errorf("%w: vTPM %x exists", proto.ErrInUse, u)
	case !errors.Is(err, store.ErrNotFound):
		return u, err
	}
	var b store.Batch
	b.Put(u, store.Record{Group: id})
	if err := m.adminCommit(&b); err != nil {
		return u, err
	}
	m.logf("manager: vTPM %x created in group %d", u, id)
	return u, nil
}

// VTPMDel deletes a vTPM's record, unless it is connected.
func (m *Manager) VTPMDel(uuid [16]byte) error {
	if err := m.usable(); err != nil {
		return err
	}
	defer m.lockAdmin()()
	if isReserved(uuid) {
		return fmt.Errorf("%w: %x", proto.ErrNotFound, uuid)
	}
	if _, err := m.st.Get(uuid); errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("%w: %x", proto.ErrNotFound, uuid)
	} else if err != nil {
		return err
	}
	m.mu.Lock()
	open := m.connected[uuid] > 0
	_, saving := m.pending[uuid]
	m.mu.Unlock()
	if open || saving {
		return fmt.Errorf("%w: vTPM %x is connected (stop its vTPM domain first)", proto.ErrInUse, uuid)
	}
	var b store.Batch
	b.Delete(uuid)
	if err := m.adminCommit(&b); err != nil {
		return err
	}
	m.logf("manager: vTPM %x deleted", uuid)
	return nil
}

// Connected tells the manager that a frontend with uuid connected (up) or
// went away: a connected vTPM is not deleted.
func (m *Manager) Connected(uuid [16]byte, up bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if up {
		m.connected[uuid]++
	} else if m.connected[uuid] > 0 {
		m.connected[uuid]--
		if m.connected[uuid] == 0 {
			delete(m.connected, uuid)
		}
	}
}
