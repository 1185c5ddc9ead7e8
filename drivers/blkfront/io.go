package blkfront

import (
	"fmt"
	"io"
)

// Bytes is a byte-addressed view of a Device for code written against
// io.ReaderAt and io.WriterAt. Offsets and lengths must still be whole
// sectors: the device cannot transfer less.
type Bytes struct{ D *Device }

// ReadAt implements io.ReaderAt.
func (b Bytes) ReadAt(p []byte, off int64) (int, error) {
	sector, err := b.sector(off)
	if err != nil {
		return 0, err
	}
	size := int64(b.D.Sectors()) * int64(b.D.SectorSize())
	if off >= size && len(p) > 0 {
		return 0, io.EOF
	}
	n := len(p)
	if int64(n) > size-off {
		n = int(size - off)
	}
	if err := b.D.ReadAt(p[:n], sector); err != nil {
		return 0, err
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// WriteAt implements io.WriterAt.
func (b Bytes) WriteAt(p []byte, off int64) (int, error) {
	sector, err := b.sector(off)
	if err != nil {
		return 0, err
	}
	if err := b.D.WriteAt(p, sector); err != nil {
		return 0, err
	}
	return len(p), nil
}

func (b Bytes) sector(off int64) (uint64, error) {
	ss := int64(b.D.SectorSize())
	if off < 0 || off%ss != 0 {
		return 0, fmt.Errorf("blkfront: %s: byte offset %d: %w (%d)", b.D.node, off, ErrAlign, ss)
	}
	return uint64(off / ss), nil
}

var (
	_ io.ReaderAt = Bytes{}
	_ io.WriterAt = Bytes{}
)
