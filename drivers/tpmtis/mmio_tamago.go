//go:build tamago && amd64

package tpmtis

import (
	"fmt"

	"github.com/xenvtpm/xenvtpm/board/reg"
)

// mmio is one locality's register page, identity-mapped and uncached
// (tamago maps 0xC0000000-0xFFFFFFFF with PCD set). Every access is one
// bus access of the register's width (package reg): a 32-bit read of
// TPM_DATA_FIFO would pop four bytes.
type mmio struct {
	page uintptr
}

// Offsets come from the driver's constants; the bound check keeps a wrong
// one inside the page instead of reaching another locality or device.
func (m mmio) Read8(off uint32) uint8 {
	if off >= pageSize {
		return 0xFF
	}
	return reg.Read8(m.page + uintptr(off))
}

func (m mmio) Write8(off uint32, v uint8) {
	if off < pageSize {
		reg.Write8(m.page+uintptr(off), v)
	}
}

func (m mmio) Read32(off uint32) uint32 {
	if off > pageSize-4 || off%4 != 0 {
		return 0xFFFFFFFF
	}
	return reg.Read32(m.page + uintptr(off))
}

func (m mmio) Write32(off uint32, v uint32) {
	if off <= pageSize-4 && off%4 == 0 {
		reg.Write32(m.page+uintptr(off), v)
	}
}

// Open drives the TPM whose locality-0 page is at cfg.Base (DefaultBase if
// zero) through memory-mapped I/O at cfg.Locality. The page must be mapped
// uncached at its physical address, as tamago's amd64 identity map does for
// 0xC0000000-0xFFFFFFFF.
func Open(cfg Config) (*TPM, error) {
	if cfg.Locality < 0 || cfg.Locality >= maxLocalities {
		return nil, fmt.Errorf("%w: %d", ErrBadLocality, cfg.Locality)
	}
	base := cfg.Base
	if base == 0 {
		base = DefaultBase
	}
	if base%pageSize != 0 {
		return nil, fmt.Errorf("tpmtis: base 0x%x is not page aligned", base)
	}
	page := base + uint64(cfg.Locality)*pageSize
	if page < 0xC0000000 || page+pageSize > 1<<32 {
		return nil, fmt.Errorf("tpmtis: page 0x%x is outside the uncached window 0xC0000000-0xFFFFFFFF", page)
	}
	return New(mmio{page: uintptr(page)}, cfg)
}
