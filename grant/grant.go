// Package grant implements Xen grant tables, version 1, as specified by
// xen/include/public/grant_table.h.
//
// Two roles live here:
//
//   - Frontend (granting) side: Table maps the domain's grant-table frames
//     into a guest-physical window with XENMEM_add_to_physmap
//     (XENMAPSPACE_grant_table), hands out grant references, writes
//     grant_entry_v1 records in the order the header requires (frame and
//     domid, barrier, then flags) and revokes them with a cmpxchg loop that
//     refuses while Xen still reports GTF_reading or GTF_writing. NewPage
//     allocates page-aligned memory to grant.
//
//   - Backend (mapping) side: Mapper maps other domains' grants with
//     GNTTABOP_map_grant_ref into a dedicated guest-physical window, one
//     4 KiB slot per mapping, and unmaps them with GNTTABOP_unmap_grant_ref.
//     It counts live mappings so a caller (and the tests) can check that
//     nothing is left behind.
//
// The hypercalls are the Ops interface, implemented by board/xen inside a
// domain and by test doubles on the host, so all the logic here is ordinary
// Go tested without Xen.
package grant

import (
	"errors"
	"fmt"

	"github.com/xenvtpm/xenvtpm/board/xen/shm"
)

// PageSize is the size of a grant-table frame and of a granted page.
const PageSize = 4096

// Ref is a grant reference (grant_ref_t): an index into the granting
// domain's grant table.
type Ref uint32

// grant_entry_v1 layout: flags u16 @0, domid u16 @2, frame u32 @4.
const (
	entrySize       = 8
	entriesPerFrame = PageSize / entrySize
	offFlags        = 0
	offDomid        = 2
	offFrame        = 4
)

// NrReservedEntries is GNTTAB_NR_RESERVED_ENTRIES: the first entries are
// reserved for the toolstack (console and xenstore pages) and are never
// handed out.
const NrReservedEntries = 8

// grant_entry_v1.flags (GTF_*).
const (
	GTFInvalid      = 0
	GTFPermitAccess = 1
	GTFTypeMask     = 3
	GTFReadonly     = 1 << 2
	GTFReading      = 1 << 3 // set by Xen while the peer maps the page read-only or read-write
	GTFWriting      = 1 << 4 // set by Xen while the peer maps the page writable
)

// gnttab_map_grant_ref.flags (GNTMAP_*).
const (
	GNTMAPDeviceMap = 1 << 0
	GNTMAPHostMap   = 1 << 1
	GNTMAPReadonly  = 1 << 2
)

// Ops are the hypercalls grant tables need. board/xen implements them with
// HYPERVISOR_grant_table_op and HYPERVISOR_memory_op.
type Ops interface {
	// QuerySize is GNTTABOP_query_size for this domain: the frames the
	// table has now and the most it may grow to.
	QuerySize() (nrFrames, maxNrFrames uint32, err error)
	// AddToPhysmap maps grant-table frame idx at guest frame gfn
	// (XENMEM_add_to_physmap, XENMAPSPACE_grant_table).
	AddToPhysmap(idx uint64, gfn uint64) error
	// MapGrantRef is one GNTTABOP_map_grant_ref. A hypercall failure is
	// err; the per-operation outcome is status (GNTST_*).
	MapGrantRef(hostAddr uint64, flags uint32, ref Ref, dom uint16) (handle uint32, status int16, err error)
	// UnmapGrantRef is one GNTTABOP_unmap_grant_ref.
	UnmapGrantRef(hostAddr uint64, handle uint32) (status int16, err error)
	// Memory returns the guest-physical range [gpa, gpa+length) as shared
	// memory (the identity map inside a domain).
	Memory(gpa uint64, length int) *shm.Page
}

// Status is a GNTST_* code returned in a map or unmap operation.
type Status int16

// GNTST_* codes.
const (
	StatusOkay             Status = 0
	StatusGeneralError     Status = -1
	StatusBadDomain        Status = -2
	StatusBadGntref        Status = -3
	StatusBadHandle        Status = -4
	StatusBadVirtAddr      Status = -5
	StatusBadDevAddr       Status = -6
	StatusNoDeviceSpace    Status = -7
	StatusPermissionDenied Status = -8
	StatusBadPage          Status = -9
	StatusBadCopyArg       Status = -10
	StatusAddressTooBig    Status = -11
	StatusEagain           Status = -12
	StatusNoSpace          Status = -13
)

// Errors for the GNTST_* codes; a Status error matches its sentinel with
// errors.Is.
var (
	ErrGeneral          = errors.New("grant: general error (GNTST_general_error)")
	ErrBadDomain        = errors.New("grant: unrecognised domain (GNTST_bad_domain)")
	ErrBadGntref        = errors.New("grant: unrecognised or inappropriate grant reference (GNTST_bad_gntref)")
	ErrBadHandle        = errors.New("grant: unrecognised or inappropriate handle (GNTST_bad_handle)")
	ErrBadVirtAddr      = errors.New("grant: inappropriate host address (GNTST_bad_virt_addr)")
	ErrBadDevAddr       = errors.New("grant: inappropriate device address (GNTST_bad_dev_addr)")
	ErrNoDeviceSpace    = errors.New("grant: out of space in I/O MMU (GNTST_no_device_space)")
	ErrPermissionDenied = errors.New("grant: not enough privilege (GNTST_permission_denied)")
	ErrBadPage          = errors.New("grant: specified page was invalid (GNTST_bad_page)")
	ErrBadCopyArg       = errors.New("grant: copy arguments cross page boundary (GNTST_bad_copy_arg)")
	ErrAddressTooBig    = errors.New("grant: transfer page address too large (GNTST_address_too_big)")
	ErrEagain           = errors.New("grant: operation not done, try again (GNTST_eagain)")
	ErrNoSpace          = errors.New("grant: out of space (GNTST_no_space)")
)

var statusErrs = map[Status]error{
	StatusGeneralError: ErrGeneral, StatusBadDomain: ErrBadDomain, StatusBadGntref: ErrBadGntref,
	StatusBadHandle: ErrBadHandle, StatusBadVirtAddr: ErrBadVirtAddr, StatusBadDevAddr: ErrBadDevAddr,
	StatusNoDeviceSpace: ErrNoDeviceSpace, StatusPermissionDenied: ErrPermissionDenied,
	StatusBadPage: ErrBadPage, StatusBadCopyArg: ErrBadCopyArg, StatusAddressTooBig: ErrAddressTooBig,
	StatusEagain: ErrEagain, StatusNoSpace: ErrNoSpace,
}

// Err is nil for StatusOkay and otherwise an error matching the code's
// sentinel.
func (s Status) Err() error {
	if s == StatusOkay {
		return nil
	}
	if e, ok := statusErrs[s]; ok {
		return e
	}
	return fmt.Errorf("grant: unknown status %d: %w", int16(s), ErrGeneral)
}

func (s Status) String() string {
	if s == StatusOkay {
		return "GNTST_okay"
	}
	return s.Err().Error()
}
