package manager

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"

	"golang.org/x/crypto/hkdf"

	"github.com/xenvtpm/xenvtpm/mgrdomain/hwtpm"
	"github.com/xenvtpm/xenvtpm/mgrdomain/store"
)

// The manager's disk: a header region of two 4 KiB slots, then the store
// (docs/manager-storage.md, "The manager's disk").
const (
	slotSize    = 4096
	headerSlots = 2
	headerBytes = headerSlots * slotSize

	hdrMagic   = "XVTPMMH1"
	hdrVersion = 1
	hdrFixed   = 42 // bytes before the sealed blob
	macLen     = sha256.Size
)

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// header is one decoded header slot.
type header struct {
	gen           uint64 // ≥ 1; slot = gen mod 2
	formatCounter uint64 // the hardware counter value the store was formatted with
	counterIndex  uint32 // NV index of the counter (informational)
	blob          []byte // hwtpm.SealedBlob, encoded
	mac           [macLen]byte
}

// Why a header slot was refused.
var (
	errBlankSlot = errors.New("blank (all zero)")
	errNoMagic   = errors.New("no header magic (garbage or a foreign disk)")
	errCorrupt   = errors.New("corrupt (bad checksum or field)")
)

// signedPart is what the MAC covers: every field and the blob.
func (h *header) signedPart() []byte {
	b := make([]byte, hdrFixed, hdrFixed+len(h.blob))
	copy(b, hdrMagic)
	binary.BigEndian.PutUint32(b[8:], hdrVersion)
	binary.BigEndian.PutUint32(b[12:], uint32(hdrFixed+len(h.blob)+macLen+4))
	binary.BigEndian.PutUint64(b[16:], h.gen)
	binary.BigEndian.PutUint64(b[24:], h.formatCounter)
	binary.BigEndian.PutUint32(b[32:], h.counterIndex)
	binary.BigEndian.PutUint16(b[40:], uint16(len(h.blob)))
	return append(b, h.blob...)
}

// headerMACKey derives the header's HMAC key from the storage key: the
// header is readable before unsealing (it carries the sealed blob) and is
// authenticated right after.
func headerMACKey(key []byte) []byte {
	k := make([]byte, 32)
	io.ReadFull(hkdf.New(sha256.New, key, nil, []byte("xenvtpm manager header mac")), k)
	return k
}

func (h *header) sign(key []byte) {
	m := hmac.New(sha256.New, headerMACKey(key))
	m.Write(h.signedPart())
	copy(h.mac[:], m.Sum(nil))
}

func (h *header) verify(key []byte) bool {
	m := hmac.New(sha256.New, headerMACKey(key))
	m.Write(h.signedPart())
	return hmac.Equal(m.Sum(nil), h.mac[:])
}

// encode renders a full slot.
func (h *header) encode() ([]byte, error) {
	if hdrFixed+len(h.blob)+macLen+4 > slotSize {
		return nil, fmt.Errorf("manager: sealed blob of %d bytes does not fit the header slot", len(h.blob))
	}
	b := make([]byte, slotSize)
	n := copy(b, h.signedPart())
	n += copy(b[n:], h.mac[:])
	binary.BigEndian.PutUint32(b[n:], crc32.Checksum(b[:n], crcTable))
	return b, nil
}

func decodeHeader(b []byte, slot int) (*header, error) {
	if bytes.Count(b, []byte{0}) == len(b) {
		return nil, errBlankSlot
	}
	if string(b[:8]) != hdrMagic {
		return nil, errNoMagic
	}
	n := int(binary.BigEndian.Uint32(b[12:]))
	if binary.BigEndian.Uint32(b[8:]) != hdrVersion || n < hdrFixed+macLen+4 || n > len(b) {
		return nil, fmt.Errorf("%w: version %d, length %d", errCorrupt, binary.BigEndian.Uint32(b[8:]), n)
	}
	if crc32.Checksum(b[:n-4], crcTable) != binary.BigEndian.Uint32(b[n-4:]) {
		return nil, fmt.Errorf("%w: CRC32C mismatch (torn or damaged)", errCorrupt)
	}
	// The whole slot is written at once; a non-zero tail is a torn write
	// over a longer earlier header, or damage.
	if bytes.Count(b[n:], []byte{0}) != len(b)-n {
		return nil, fmt.Errorf("%w: non-zero bytes past the header (torn write)", errCorrupt)
	}
	h := &header{
		gen:           binary.BigEndian.Uint64(b[16:]),
		formatCounter: binary.BigEndian.Uint64(b[24:]),
		counterIndex:  binary.BigEndian.Uint32(b[32:]),
	}
	bl := int(binary.BigEndian.Uint16(b[40:]))
	if hdrFixed+bl+macLen+4 != n || h.gen == 0 || h.gen%headerSlots != uint64(slot) {
		return nil, fmt.Errorf("%w: blob length %d, generation %d in slot %d", errCorrupt, bl, h.gen, slot)
	}
	h.blob = bytes.Clone(b[hdrFixed : hdrFixed+bl])
	copy(h.mac[:], b[hdrFixed+bl:])
	if _, err := hwtpm.UnmarshalSealedBlob(h.blob); err != nil {
		return nil, fmt.Errorf("%w: %w", errCorrupt, err)
	}
	return h, nil
}

// readHeaders returns the valid header slots, newest first ([0] nil if
// none is valid, [1] nil unless both are). blank is set when both slots
// are all zero (a new disk). An I/O error is returned as ioErr, apart
// from the slots' verdicts in err.
func readHeaders(dev store.Device) (hs [headerSlots]*header, blank bool, err, ioErr error) {
	ss := dev.SectorSize()
	buf := make([]byte, slotSize)
	var errs []error
	nblank := 0
	for slot := range headerSlots {
		if err := dev.ReadAt(buf, uint64(slot*slotSize/ss)); err != nil {
			return hs, false, nil, fmt.Errorf("manager: reading header slot %d: %w", slot, err)
		}
		c, err := decodeHeader(buf, slot)
		if err != nil {
			if errors.Is(err, errBlankSlot) {
				nblank++
			}
			errs = append(errs, fmt.Errorf("header slot %d: %w", slot, err))
			continue
		}
		switch {
		case hs[0] == nil:
			hs[0] = c
		case c.gen > hs[0].gen:
			hs[0], hs[1] = c, hs[0]
		default:
			hs[1] = c
		}
	}
	if hs[0] != nil {
		return hs, false, nil, nil
	}
	return hs, nblank == headerSlots, errors.Join(errs...), nil
}

// writeHeader writes h into slot gen mod 2 and flushes. The other slot
// keeps the previous header until the next write, so a torn write leaves
// that one.
func writeHeader(dev store.Device, h *header) error {
	b, err := h.encode()
	if err != nil {
		return err
	}
	slot := int(h.gen % headerSlots)
	if err := dev.WriteAt(b, uint64(slot*slotSize/dev.SectorSize())); err != nil {
		return fmt.Errorf("manager: writing header slot %d: %w", slot, err)
	}
	if err := dev.Flush(); err != nil {
		return fmt.Errorf("manager: flushing header: %w", err)
	}
	return nil
}

// wipeHeaderSlot zeroes a slot, so a header left by an earlier format
// cannot outrank the new one.
func wipeHeaderSlot(dev store.Device, slot int) error {
	if err := dev.WriteAt(make([]byte, slotSize), uint64(slot*slotSize/dev.SectorSize())); err != nil {
		return fmt.Errorf("manager: wiping header slot %d: %w", slot, err)
	}
	return dev.Flush()
}

// storeDevice is the disk past the header region: what the store sees as
// its whole device.
type storeDevice struct {
	dev store.Device
	off uint64 // sectors
}

func (d storeDevice) ReadAt(p []byte, sector uint64) error  { return d.dev.ReadAt(p, sector+d.off) }
func (d storeDevice) WriteAt(p []byte, sector uint64) error { return d.dev.WriteAt(p, sector+d.off) }
func (d storeDevice) SectorSize() int                       { return d.dev.SectorSize() }
func (d storeDevice) Sectors() uint64                       { return d.dev.Sectors() - d.off }
func (d storeDevice) Flush() error                          { return d.dev.Flush() }
