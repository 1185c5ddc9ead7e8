package vstate

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
)

// On-disk format, version 1 (docs/vtpm-storage.md §2). Integers are
// big-endian, like every other structure the manager protocol carries.
const (
	formatVersion = 1

	hdrLen   = 64 // the meaningful prefix of a header sector; the rest is zero
	nonceLen = 12 // AES-GCM standard nonce
	tagLen   = 16 // AES-GCM tag, part of the ciphertext length
	keyLen   = 32 // AES-256
	blobLen  = keyLen + 32

	kindState  = 1 // the slot holds a sealed state
	kindMarker = 2 // "the other slot's first save was acknowledged" (§4)

	// DefaultSlotSize fits the TPM engine's largest state blob (1 MiB)
	// twice over, so the format never has to change when NV grows.
	DefaultSlotSize = 2 << 20
)

var magic = [8]byte{'X', 'V', 'T', 'P', 'M', '-', 'V', 'S'}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// header is a slot header's fields.
type header struct {
	kind        uint8
	slot        uint8
	sectorSize  uint32
	slotSectors uint32
	ctLen       uint32 // ciphertext bytes, AEAD tag included; 0 for a marker
	gen         uint64
	nonce       [nonceLen]byte
}

func (h *header) encode(b []byte) {
	clear(b[:hdrLen])
	copy(b[0:8], magic[:])
	binary.BigEndian.PutUint16(b[8:10], formatVersion)
	b[10] = h.kind
	b[11] = h.slot
	binary.BigEndian.PutUint32(b[12:16], h.sectorSize)
	binary.BigEndian.PutUint32(b[16:20], h.slotSectors)
	binary.BigEndian.PutUint32(b[20:24], h.ctLen)
	binary.BigEndian.PutUint64(b[24:32], h.gen)
	copy(b[32:44], h.nonce[:])
	binary.BigEndian.PutUint32(b[60:64], crc32.Checksum(b[:60], castagnoli))
}

// hasMagic reports whether a header sector looks like ours at all. It is
// how a disk that was never written by vstate is told from one that was.
func hasMagic(sec []byte) bool { return bytes.Equal(sec[:8], magic[:]) }

// decodeHeader checks a header sector fully. The manager's hash already
// vouches for the bytes when a slot matched; the checks here catch a
// header that is intact but not one this code can use (another version,
// another geometry), and classify disks when the manager has no record.
func decodeHeader(sec []byte) (header, error) {
	var h header
	if !hasMagic(sec) {
		return h, fmt.Errorf("no vstate magic")
	}
	if v := binary.BigEndian.Uint16(sec[8:10]); v != formatVersion {
		return h, fmt.Errorf("format version %d, this build reads version %d", v, formatVersion)
	}
	if crc32.Checksum(sec[:60], castagnoli) != binary.BigEndian.Uint32(sec[60:64]) {
		return h, fmt.Errorf("header checksum mismatch (torn or damaged header)")
	}
	for _, c := range sec[44:60] {
		if c != 0 {
			return h, fmt.Errorf("reserved header bytes are not zero")
		}
	}
	for _, c := range sec[hdrLen:] {
		if c != 0 {
			return h, fmt.Errorf("header sector padding is not zero")
		}
	}
	h.kind = sec[10]
	h.slot = sec[11]
	h.sectorSize = binary.BigEndian.Uint32(sec[12:16])
	h.slotSectors = binary.BigEndian.Uint32(sec[16:20])
	h.ctLen = binary.BigEndian.Uint32(sec[20:24])
	h.gen = binary.BigEndian.Uint64(sec[24:32])
	copy(h.nonce[:], sec[32:44])
	switch h.kind {
	case kindState:
		if h.ctLen < tagLen {
			return h, fmt.Errorf("ciphertext length %d is shorter than the AEAD tag", h.ctLen)
		}
	case kindMarker:
		if h.ctLen != 0 {
			return h, fmt.Errorf("marker with ciphertext length %d", h.ctLen)
		}
	default:
		return h, fmt.Errorf("unknown slot kind %d", h.kind)
	}
	return h, nil
}

// rawCtLen is the ciphertext length a header claims, read without any
// checks: hashing must cover exactly the extent Save wrote, whatever the
// header's state, so that a mismatch is reported as a mismatch.
func rawCtLen(sec []byte) uint32 { return binary.BigEndian.Uint32(sec[20:24]) }
