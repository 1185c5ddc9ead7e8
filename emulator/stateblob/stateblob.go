// Package stateblob frames the state blobs the TPM engines save: an
// 8-octet magic naming the engine, a 32-bit version, the 32-bit length
// of the payload, the payload, and the SHA-256 of everything before it
// (all integers big-endian). The checksum catches corruption, not
// tampering: hosts keep blobs where only they can write.
package stateblob

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
)

// headerSize is the magic, the version and the length.
const headerSize = 16

// ErrMagic is returned by Open for a blob that does not begin with the
// expected magic.
var ErrMagic = errors.New("wrong magic")

// Seal frames payload.
func Seal(magic [8]byte, version uint32, payload []byte) []byte {
	b := make([]byte, 0, headerSize+len(payload)+sha256.Size)
	b = append(b, magic[:]...)
	b = binary.BigEndian.AppendUint32(b, version)
	b = binary.BigEndian.AppendUint32(b, uint32(len(payload)))
	b = append(b, payload...)
	sum := sha256.Sum256(b)
	return append(b, sum[:]...)
}

// Open checks blob's framing (at most max octets, magic, version,
// length, checksum) and returns its payload.
func Open(magic [8]byte, version uint32, max int, blob []byte) ([]byte, error) {
	if len(blob) > max {
		return nil, fmt.Errorf("%d bytes exceeds %d", len(blob), max)
	}
	if len(blob) < headerSize+sha256.Size {
		return nil, fmt.Errorf("truncated (%d bytes)", len(blob))
	}
	if !bytes.Equal(blob[:8], magic[:]) {
		return nil, ErrMagic
	}
	if v := binary.BigEndian.Uint32(blob[8:]); v != version {
		return nil, fmt.Errorf("unsupported version %d", v)
	}
	n := binary.BigEndian.Uint32(blob[12:])
	if uint64(n)+headerSize+sha256.Size != uint64(len(blob)) {
		return nil, fmt.Errorf("length %d does not match blob size %d", n, len(blob))
	}
	body := blob[:headerSize+n]
	if sum := sha256.Sum256(body); !bytes.Equal(sum[:], blob[headerSize+n:]) {
		return nil, errors.New("checksum mismatch")
	}
	return body[headerSize:], nil
}
