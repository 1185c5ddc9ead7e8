package store

import (
	"bytes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"

	"golang.org/x/crypto/chacha20poly1305"
)

// On-disk constants (docs/manager-storage.md, "Layout").
const (
	PageSize      = 4096
	KeySize       = 32 // the caller's storage key
	MaxBlob       = 64 // the largest SAVEHASHKEY blob
	formatVersion = 1

	sbSlots      = 2 // pages 0 and 1
	firstData    = sbSlots
	sbLen        = 132 // meaningful bytes of a superblock sector
	sbMACOff     = 96
	sbCRCOff     = 128
	pageHdrLen   = 16
	nonceLen     = chacha20poly1305.NonceSizeX // 24
	tagLen       = chacha20poly1305.Overhead   // 16
	cipherOff    = pageHdrLen + nonceLen       // 40
	plainLen     = PageSize - cipherOff - tagLen
	nodeHdrLen   = 8
	leafEntLen   = 16 + 4 + 4 + 1 + MaxBlob // 89
	branchEntLen = 16 + 8 + tagLen          // 40
	// Physical capacities: the most entries a page can hold.
	maxLeafEnts   = (plainLen - nodeHdrLen) / leafEntLen   // 45
	maxBranchEnts = (plainLen - nodeHdrLen) / branchEntLen // 100
	// maxHeight bounds tree depth: 100-way branches reach 2^64 pages long
	// before this; a larger value on disk is corruption.
	maxHeight = 12

	kindLeaf   = 1
	kindBranch = 2
)

var (
	sbMagic   = [8]byte{'X', 'V', 'T', 'P', 'M', 'S', 'B', '1'}
	pageMagic = [4]byte{'X', 'V', 'P', 'G'}
	crcTable  = crc32.MakeTable(crc32.Castagnoli)
)

// Errors. Returned errors wrap one of these with context; test with
// errors.Is.
var (
	// ErrNotFormatted: neither superblock carries the magic (a blank or
	// foreign disk, or a disk full of garbage).
	ErrNotFormatted = errors.New("store: disk not formatted")
	// ErrCorrupt: a structure fails its checksum or consistency checks
	// (torn write, media damage, truncation, a foreign page).
	ErrCorrupt = errors.New("store: corrupt")
	// ErrAuth: a superblock MAC or page AEAD tag does not verify: the
	// wrong storage key, or the disk was tampered with.
	ErrAuth = errors.New("store: authentication failed")
	// ErrRollback: the newest intact state binds an older counter value
	// than the hardware counter: the disk was replaced by an older copy
	// (or the newest superblock was destroyed).
	ErrRollback = errors.New("store: rollback detected")
	// ErrTruncated: the device is smaller than the store written on it.
	ErrTruncated = errors.New("store: device truncated")
	// ErrNoSpace: no free page left for a commit.
	ErrNoSpace = errors.New("store: no space left on device")
	// ErrNotFound: no record with that UUID.
	ErrNotFound = errors.New("store: record not found")
	// ErrBroken: a superblock write failed half-way, so the in-memory view
	// may disagree with the disk; reopen the store.
	ErrBroken = errors.New("store: superblock write failed, reopen required")
)

// UUID is a vTPM's identity, the record key.
type UUID [16]byte

// Record is what the store keeps for one vTPM.
type Record struct {
	Blob  []byte // the SAVEHASHKEY payload, ≤ MaxBlob bytes
	Flags uint32 // manager-defined (admin, …)
	Group uint32 // manager-defined group index
}

// entry is a Record in its fixed on-disk shape.
type entry struct {
	key   UUID
	flags uint32
	group uint32
	n     uint8
	blob  [MaxBlob]byte
}

func (e *entry) record() Record {
	return Record{Blob: append([]byte(nil), e.blob[:e.n]...), Flags: e.flags, Group: e.group}
}

func makeEntry(k UUID, r Record) (entry, error) {
	if len(r.Blob) > MaxBlob {
		return entry{}, fmt.Errorf("store: record %x: blob of %d bytes exceeds %d", k, len(r.Blob), MaxBlob)
	}
	e := entry{key: k, flags: r.Flags, group: r.Group, n: uint8(len(r.Blob))}
	copy(e.blob[:], r.Blob)
	return e, nil
}

// superblock is the decoded form of a superblock sector.
type superblock struct {
	storeID    [16]byte
	gen        uint64
	counter    uint64
	totalPages uint64
	records    uint64
	rootPage   uint64
	rootTag    [tagLen]byte
	height     uint32
}

// keys are the subkeys derived from the storage key for one store.
type keys struct {
	aead   cipher.AEAD
	macKey []byte
}

// deriveKeys binds the subkeys to the store's random ID, so two stores
// under one storage key never share page or MAC keys.
func deriveKeys(master []byte, storeID [16]byte) (*keys, error) {
	if len(master) != KeySize {
		return nil, fmt.Errorf("store: storage key of %d bytes, want %d", len(master), KeySize)
	}
	pk, err := hkdf.Key(sha256.New, master, storeID[:], "xenvtpm manager store v1 page key", chacha20poly1305.KeySize)
	if err != nil {
		return nil, fmt.Errorf("store: deriving page key: %w", err)
	}
	mk, err := hkdf.Key(sha256.New, master, storeID[:], "xenvtpm manager store v1 superblock mac", 32)
	if err != nil {
		return nil, fmt.Errorf("store: deriving superblock key: %w", err)
	}
	a, err := chacha20poly1305.NewX(pk)
	if err != nil {
		return nil, fmt.Errorf("store: page cipher: %w", err)
	}
	return &keys{aead: a, macKey: mk}, nil
}

// encodeSuperblock fills b (one sector) with sb, MAC'd and checksummed.
func encodeSuperblock(b []byte, sb *superblock, k *keys) {
	clear(b)
	copy(b[0:8], sbMagic[:])
	be := binary.BigEndian
	be.PutUint32(b[8:], formatVersion)
	be.PutUint32(b[12:], PageSize)
	copy(b[16:32], sb.storeID[:])
	be.PutUint64(b[32:], sb.gen)
	be.PutUint64(b[40:], sb.counter)
	be.PutUint64(b[48:], sb.totalPages)
	be.PutUint64(b[56:], sb.records)
	be.PutUint64(b[64:], sb.rootPage)
	copy(b[72:88], sb.rootTag[:])
	be.PutUint32(b[88:], sb.height)
	m := hmac.New(sha256.New, k.macKey)
	m.Write(b[:sbMACOff])
	copy(b[sbMACOff:sbCRCOff], m.Sum(nil))
	be.PutUint32(b[sbCRCOff:], crc32.Checksum(b[:sbCRCOff], crcTable))
}

// peekSuperblock checks a superblock sector's framing (magic, checksum,
// version) without a key and returns its store ID, which the subkeys are
// derived from. A torn or damaged sector fails here, as ErrCorrupt.
func peekSuperblock(b []byte) ([16]byte, error) {
	var id [16]byte
	if len(b) < sbLen {
		return id, fmt.Errorf("%w: superblock sector of %d bytes", ErrCorrupt, len(b))
	}
	if !bytes.Equal(b[0:8], sbMagic[:]) {
		return id, fmt.Errorf("%w: no superblock magic", ErrNotFormatted)
	}
	be := binary.BigEndian
	if got, want := crc32.Checksum(b[:sbCRCOff], crcTable), be.Uint32(b[sbCRCOff:]); got != want {
		return id, fmt.Errorf("%w: superblock checksum %#08x, stored %#08x (torn or damaged)", ErrCorrupt, got, want)
	}
	if v := be.Uint32(b[8:]); v != formatVersion {
		return id, fmt.Errorf("%w: superblock format version %d, want %d", ErrCorrupt, v, formatVersion)
	}
	if ps := be.Uint32(b[12:]); ps != PageSize {
		return id, fmt.Errorf("%w: page size %d, want %d", ErrCorrupt, ps, PageSize)
	}
	copy(id[:], b[16:32])
	return id, nil
}

// decodeSuperblock verifies and decodes a superblock sector.
func decodeSuperblock(b []byte, k *keys) (*superblock, error) {
	if _, err := peekSuperblock(b); err != nil {
		return nil, err
	}
	m := hmac.New(sha256.New, k.macKey)
	m.Write(b[:sbMACOff])
	if !hmac.Equal(m.Sum(nil), b[sbMACOff:sbCRCOff]) {
		return nil, fmt.Errorf("%w: superblock MAC does not verify (wrong storage key or tampered)", ErrAuth)
	}
	be := binary.BigEndian
	sb := &superblock{
		gen:        be.Uint64(b[32:]),
		counter:    be.Uint64(b[40:]),
		totalPages: be.Uint64(b[48:]),
		records:    be.Uint64(b[56:]),
		rootPage:   be.Uint64(b[64:]),
		height:     be.Uint32(b[88:]),
	}
	copy(sb.storeID[:], b[16:32])
	copy(sb.rootTag[:], b[72:88])
	switch {
	case sb.gen == 0:
		return nil, fmt.Errorf("%w: superblock generation 0", ErrCorrupt)
	case sb.totalPages <= firstData:
		return nil, fmt.Errorf("%w: superblock claims %d pages", ErrCorrupt, sb.totalPages)
	case sb.height > maxHeight:
		return nil, fmt.Errorf("%w: tree height %d exceeds %d", ErrCorrupt, sb.height, maxHeight)
	case (sb.height == 0) != (sb.rootPage == 0):
		return nil, fmt.Errorf("%w: tree height %d with root page %d", ErrCorrupt, sb.height, sb.rootPage)
	case sb.height == 0 && sb.records != 0:
		return nil, fmt.Errorf("%w: empty tree with %d records", ErrCorrupt, sb.records)
	case sb.rootPage != 0 && (sb.rootPage < firstData || sb.rootPage >= sb.totalPages):
		return nil, fmt.Errorf("%w: root page %d outside %d..%d", ErrCorrupt, sb.rootPage, firstData, sb.totalPages-1)
	}
	return sb, nil
}

// node is a B+tree node in memory. Nodes read from disk, or committed,
// are shared and immutable (owner 0 or an old transaction); a transaction
// clones a node before changing it. A leaf read as a branch's child is a
// stub (loaded false) holding only its location until needed.
type node struct {
	level  int    // 0 for leaves
	owner  uint64 // the transaction that may mutate it
	page   uint64 // 0 until written
	tag    [tagLen]byte
	loaded bool
	ents   []entry // leaf
	keys   []UUID  // branch: keys[i] ≤ every key under kids[i] (i > 0)
	kids   []*node // branch
}

// sealPage encodes n into a full page for page number p and seals it;
// the AEAD tag is returned and also stays in the last bytes of out.
func sealPage(out []byte, n *node, p uint64, storeID [16]byte, k *keys, nonce []byte) [tagLen]byte {
	clear(out)
	copy(out[0:4], pageMagic[:])
	be := binary.BigEndian
	if n.level == 0 {
		out[4] = kindLeaf
	} else {
		out[4] = kindBranch
	}
	out[5] = byte(n.level)
	be.PutUint64(out[8:16], p)
	copy(out[pageHdrLen:cipherOff], nonce)
	plain := out[cipherOff : cipherOff+plainLen]
	encodeNode(plain, n)
	aad := pageAAD(out, storeID)
	k.aead.Seal(plain[:0], out[pageHdrLen:cipherOff], plain, aad[:])
	var tag [tagLen]byte
	copy(tag[:], out[PageSize-tagLen:])
	return tag
}

// pageAAD binds a page's header (kind, level, page number) and its store.
func pageAAD(pg []byte, storeID [16]byte) [pageHdrLen + 16]byte {
	var a [pageHdrLen + 16]byte
	copy(a[:pageHdrLen], pg[:pageHdrLen])
	copy(a[pageHdrLen:], storeID[:])
	return a
}

// openPage verifies page pg, read from page number p, against the tag
// and level its parent recorded and decodes it. pg is decrypted in place.
func openPage(pg []byte, p uint64, wantTag [tagLen]byte, level int, totalPages uint64, storeID [16]byte, k *keys) (*node, error) {
	if len(pg) != PageSize {
		return nil, fmt.Errorf("%w: page %d: %d bytes", ErrCorrupt, p, len(pg))
	}
	if !bytes.Equal(pg[0:4], pageMagic[:]) {
		return nil, fmt.Errorf("%w: page %d: no page magic", ErrCorrupt, p)
	}
	be := binary.BigEndian
	kind := byte(kindBranch)
	if level == 0 {
		kind = kindLeaf
	}
	if pg[4] != kind || int(pg[5]) != level || pg[6] != 0 || pg[7] != 0 {
		return nil, fmt.Errorf("%w: page %d: kind %d level %d, want kind %d level %d", ErrCorrupt, p, pg[4], pg[5], kind, level)
	}
	if got := be.Uint64(pg[8:16]); got != p {
		return nil, fmt.Errorf("%w: page %d claims to be page %d", ErrCorrupt, p, got)
	}
	if !bytes.Equal(pg[PageSize-tagLen:], wantTag[:]) {
		return nil, fmt.Errorf("%w: page %d is not the version its parent refers to (stale, moved or damaged)", ErrAuth, p)
	}
	aad := pageAAD(pg, storeID)
	plain, err := k.aead.Open(pg[cipherOff:cipherOff], pg[pageHdrLen:cipherOff], pg[cipherOff:], aad[:])
	if err != nil {
		return nil, fmt.Errorf("%w: page %d does not decrypt (wrong key or tampered)", ErrAuth, p)
	}
	n, err := decodeNode(plain, level, totalPages)
	if err != nil {
		return nil, fmt.Errorf("page %d: %w", p, err)
	}
	n.page, n.tag = p, wantTag
	return n, nil
}

// encodeNode writes n's entries into a page's plaintext area.
func encodeNode(plain []byte, n *node) {
	be := binary.BigEndian
	if n.level == 0 {
		be.PutUint16(plain[0:2], uint16(len(n.ents)))
		o := nodeHdrLen
		for i := range n.ents {
			e := &n.ents[i]
			copy(plain[o:], e.key[:])
			be.PutUint32(plain[o+16:], e.flags)
			be.PutUint32(plain[o+20:], e.group)
			plain[o+24] = e.n
			copy(plain[o+25:o+25+MaxBlob], e.blob[:])
			o += leafEntLen
		}
		return
	}
	be.PutUint16(plain[0:2], uint16(len(n.kids)))
	o := nodeHdrLen
	for i, c := range n.kids {
		copy(plain[o:], n.keys[i][:])
		be.PutUint64(plain[o+16:], c.page)
		copy(plain[o+24:o+24+tagLen], c.tag[:])
		o += branchEntLen
	}
}

// decodeNode parses and checks a page's plaintext. Children of a branch
// come back as unloaded stubs one level down.
func decodeNode(plain []byte, level int, totalPages uint64) (*node, error) {
	if len(plain) != plainLen {
		return nil, fmt.Errorf("%w: node of %d bytes, want %d", ErrCorrupt, len(plain), plainLen)
	}
	be := binary.BigEndian
	cnt := int(be.Uint16(plain[0:2]))
	for _, b := range plain[2:nodeHdrLen] {
		if b != 0 {
			return nil, fmt.Errorf("%w: node header reserved bytes set", ErrCorrupt)
		}
	}
	n := &node{level: level, loaded: true}
	if level == 0 {
		if cnt > maxLeafEnts {
			return nil, fmt.Errorf("%w: leaf with %d entries, at most %d fit", ErrCorrupt, cnt, maxLeafEnts)
		}
		n.ents = make([]entry, cnt)
		o := nodeHdrLen
		for i := range n.ents {
			e := &n.ents[i]
			copy(e.key[:], plain[o:])
			e.flags = be.Uint32(plain[o+16:])
			e.group = be.Uint32(plain[o+20:])
			e.n = plain[o+24]
			if e.n > MaxBlob {
				return nil, fmt.Errorf("%w: leaf entry %d: blob length %d exceeds %d", ErrCorrupt, i, e.n, MaxBlob)
			}
			copy(e.blob[:], plain[o+25:o+25+MaxBlob])
			for _, b := range e.blob[e.n:] {
				if b != 0 {
					return nil, fmt.Errorf("%w: leaf entry %d: bytes past the blob are not zero", ErrCorrupt, i)
				}
			}
			if i > 0 && bytes.Compare(n.ents[i-1].key[:], e.key[:]) >= 0 {
				return nil, fmt.Errorf("%w: leaf keys out of order at entry %d", ErrCorrupt, i)
			}
			o += leafEntLen
		}
		return n, nil
	}
	if cnt == 0 || cnt > maxBranchEnts {
		return nil, fmt.Errorf("%w: branch with %d children, want 1..%d", ErrCorrupt, cnt, maxBranchEnts)
	}
	n.keys = make([]UUID, cnt)
	n.kids = make([]*node, cnt)
	o := nodeHdrLen
	for i := range cnt {
		copy(n.keys[i][:], plain[o:])
		c := &node{level: level - 1, page: be.Uint64(plain[o+16:])}
		copy(c.tag[:], plain[o+24:o+24+tagLen])
		if c.page < firstData || c.page >= totalPages {
			return nil, fmt.Errorf("%w: branch child %d at page %d, outside %d..%d", ErrCorrupt, i, c.page, firstData, totalPages-1)
		}
		if i > 0 && bytes.Compare(n.keys[i-1][:], n.keys[i][:]) >= 0 {
			return nil, fmt.Errorf("%w: branch keys out of order at child %d", ErrCorrupt, i)
		}
		n.kids[i] = c
		o += branchEntLen
	}
	return n, nil
}
