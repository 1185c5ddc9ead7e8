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
	hdrVersion = 1 // sealed to PCRs: one blob
	// hdrVersion2 adds group 0's approval list and, on TPM 1.2, a blob
	// per further approved configuration (approve.go).
	hdrVersion2 = 2
	hdrFixed    = 42 // bytes before the sealed blob
	macLen      = sha256.Size
)

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// header is one decoded header slot.
type header struct {
	gen           uint64 // ≥ 1; slot = gen mod 2
	formatCounter uint64 // the hardware counter value the store was formatted with
	counterIndex  uint32 // NV index of the counter (informational)
	blob          []byte // hwtpm.SealedBlob, encoded
	// Version 2: the approval list the key is sealed to (saa, signed by
	// group 0's SAA) and, on TPM 1.2, the blobs sealed to its second and
	// further approvals (blob is the first's).
	list  []byte
	extra [][]byte
	mac   [macLen]byte
}

func (h *header) version() uint32 {
	if len(h.list) > 0 || len(h.extra) > 0 {
		return hdrVersion2
	}
	return hdrVersion
}

// blobs are every sealed blob of the header, in approval order.
func (h *header) blobs() [][]byte { return append([][]byte{h.blob}, h.extra...) }

// Why a header slot was refused.
var (
	errBlankSlot = errors.New("blank (all zero)")
	errNoMagic   = errors.New("no header magic (garbage or a foreign disk)")
	errCorrupt   = errors.New("corrupt (bad checksum or field)")
)

// signedPart is what the MAC covers: every field and the blobs.
func (h *header) signedPart() []byte {
	b := make([]byte, hdrFixed, hdrFixed+len(h.blob))
	copy(b, hdrMagic)
	binary.BigEndian.PutUint32(b[8:], h.version())
	binary.BigEndian.PutUint64(b[16:], h.gen)
	binary.BigEndian.PutUint64(b[24:], h.formatCounter)
	binary.BigEndian.PutUint32(b[32:], h.counterIndex)
	binary.BigEndian.PutUint16(b[40:], uint16(len(h.blob)))
	b = append(b, h.blob...)
	if h.version() == hdrVersion2 {
		b = binary.BigEndian.AppendUint16(b, uint16(len(h.list)))
		b = append(b, h.list...)
		b = append(b, uint8(len(h.extra)))
		for _, x := range h.extra {
			b = binary.BigEndian.AppendUint16(b, uint16(len(x)))
			b = append(b, x...)
		}
	}
	binary.BigEndian.PutUint32(b[12:], uint32(len(b)+macLen+4))
	return b
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
	if n := len(h.signedPart()) + macLen + 4; n > slotSize || len(h.extra) > 255 {
		return nil, fmt.Errorf("manager: header of %d bytes (sealed blobs and approval list) does not fit the %d-byte slot", n, slotSize)
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
	v := binary.BigEndian.Uint32(b[8:])
	if (v != hdrVersion && v != hdrVersion2) || n < hdrFixed+macLen+4 || n > len(b) {
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
	body := b[hdrFixed : n-macLen-4]
	take := func() ([]byte, bool) {
		if len(body) < 2 || len(body) < 2+int(binary.BigEndian.Uint16(body)) {
			return nil, false
		}
		l := int(binary.BigEndian.Uint16(body))
		x := bytes.Clone(body[2 : 2+l])
		body = body[2+l:]
		return x, true
	}
	bl := int(binary.BigEndian.Uint16(b[40:]))
	if bl > len(body) || h.gen == 0 || h.gen%headerSlots != uint64(slot) {
		return nil, fmt.Errorf("%w: blob length %d, generation %d in slot %d", errCorrupt, bl, h.gen, slot)
	}
	h.blob, body = bytes.Clone(body[:bl]), body[bl:]
	if v == hdrVersion2 {
		var ok bool
		if h.list, ok = take(); !ok || len(body) < 1 {
			return nil, fmt.Errorf("%w: approval list truncated", errCorrupt)
		}
		nx := int(body[0])
		body = body[1:]
		for range nx {
			x, ok := take()
			if !ok {
				return nil, fmt.Errorf("%w: sealed blobs truncated", errCorrupt)
			}
			h.extra = append(h.extra, x)
		}
		if len(h.list) == 0 && nx == 0 {
			return nil, fmt.Errorf("%w: version 2 header without a list or blobs", errCorrupt)
		}
	}
	if len(body) != 0 {
		return nil, fmt.Errorf("%w: %d bytes after the header's fields", errCorrupt, len(body))
	}
	copy(h.mac[:], b[n-macLen-4:])
	for _, x := range h.blobs() {
		if _, err := hwtpm.UnmarshalSealedBlob(x); err != nil {
			return nil, fmt.Errorf("%w: %w", errCorrupt, err)
		}
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
