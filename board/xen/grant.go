//go:build tamago

package xen

import (
	"unsafe"

	"github.com/xenvtpm/xenvtpm/board/xen/shm"
	"github.com/xenvtpm/xenvtpm/grant"
)

// GNTTABOP_* commands (grant_table.h).
const (
	gnttabMapGrantRef   = 0
	gnttabUnmapGrantRef = 1
	gnttabQuerySize     = 6
)

// struct gnttab_map_grant_ref, 32 bytes.
type gnttabMap struct {
	hostAddr   uint64
	flags      uint32
	ref        uint32
	dom        uint16
	status     int16
	handle     uint32
	devBusAddr uint64
}

// struct gnttab_unmap_grant_ref, 24 bytes.
type gnttabUnmap struct {
	hostAddr   uint64
	devBusAddr uint64
	handle     uint32
	status     int16
	_          uint16
}

// struct gnttab_query_size, 16 bytes.
type gnttabQuery struct {
	dom         uint16
	_           uint16
	nrFrames    uint32
	maxNrFrames uint32
	status      int16
	_           uint16
}

// The hypervisor reads these structs at fixed offsets; a layout change
// must not compile.
var (
	_ [32 - unsafe.Sizeof(gnttabMap{})]byte
	_ [unsafe.Sizeof(gnttabMap{}) - 32]byte
	_ [24 - unsafe.Sizeof(gnttabUnmap{})]byte
	_ [unsafe.Sizeof(gnttabUnmap{}) - 24]byte
	_ [16 - unsafe.Sizeof(gnttabQuery{})]byte
	_ [unsafe.Sizeof(gnttabQuery{}) - 16]byte
)

// GrantOps implements grant.Ops with GNTTABOP_* and XENMEM_add_to_physmap.
// Host addresses are guest-physical (PVH is auto-translated) and equal
// virtual addresses under the board's identity map.
type GrantOps struct{ H *Hypervisor }

// QuerySize is GNTTABOP_query_size for this domain.
func (o GrantOps) QuerySize() (nrFrames, maxNrFrames uint32, err error) {
	a := gnttabQuery{dom: domidSelf}
	if err := Result("GNTTABOP_query_size", o.H.GrantTableOp(gnttabQuerySize, unsafe.Pointer(&a), 1)); err != nil {
		return 0, 0, err
	}
	if err := grant.Status(a.status).Err(); err != nil {
		return 0, 0, err
	}
	return a.nrFrames, a.maxNrFrames, nil
}

// AddToPhysmap maps grant-table frame idx at gfn.
func (o GrantOps) AddToPhysmap(idx, gfn uint64) error {
	return o.H.AddToPhysmap(MapSpaceGrantTable, idx, gfn)
}

// MapGrantRef is one GNTTABOP_map_grant_ref.
func (o GrantOps) MapGrantRef(hostAddr uint64, flags uint32, ref grant.Ref, dom uint16) (uint32, int16, error) {
	a := gnttabMap{hostAddr: hostAddr, flags: flags, ref: uint32(ref), dom: dom}
	err := Result("GNTTABOP_map_grant_ref", o.H.GrantTableOp(gnttabMapGrantRef, unsafe.Pointer(&a), 1))
	return a.handle, a.status, err
}

// UnmapGrantRef is one GNTTABOP_unmap_grant_ref.
func (o GrantOps) UnmapGrantRef(hostAddr uint64, handle uint32) (int16, error) {
	a := gnttabUnmap{hostAddr: hostAddr, handle: handle}
	err := Result("GNTTABOP_unmap_grant_ref", o.H.GrantTableOp(gnttabUnmapGrantRef, unsafe.Pointer(&a), 1))
	return a.status, err
}

// Memory views identity-mapped guest-physical memory.
func (o GrantOps) Memory(gpa uint64, length int) *shm.Page {
	return shm.At(uintptr(gpa), length)
}
