package blkfront

import (
	"fmt"

	"github.com/xenvtpm/xenvtpm/board/xen/shm"
)

// The generic shared ring of xen/include/public/io/ring.h as blkif.h
// instantiates it (DEFINE_RING_TYPES(blkif, ...)), x86-64 layout.
//
// struct blkif_sring: req_prod, req_event, rsp_prod, rsp_event (uint32
// each), an 8-byte private union and 44 bytes of padding, then the ring of
// entries, each a union of a request and a response.
const (
	offReqProd  = 0
	offReqEvent = 4
	offRspProd  = 8
	offRspEvent = 12
	ringHeader  = 64

	// PageSize is the ring page and the data page size.
	PageSize = 4096
	// EntrySize is sizeof(union blkif_sring_entry): a request is the
	// larger member at 112 bytes on x86-64.
	EntrySize = 112
	// RingSize is __RING_SIZE for one page: (4096-64)/112 = 36 entries,
	// rounded down to a power of two so the free-running indices wrap
	// with a mask.
	RingSize = 32
)

// struct blkif_request (x86-64): operation u8 @0, nr_segments u8 @1,
// handle u16 @2, 4 bytes padding, id u64 @8, sector_number u64 @16,
// seg[11] @24, each struct blkif_request_segment {gref u32, first_sect u8,
// last_sect u8, 2 bytes padding}.
const (
	reqOp       = 0
	reqNrSeg    = 1
	reqHandle   = 2
	reqID       = 8
	reqSector   = 16
	reqSeg      = 24
	segSize     = 8
	segGref     = 0
	segFirst    = 4
	segLast     = 5
	requestSize = reqSeg + MaxSegments*segSize // 112
)

// struct blkif_response (x86-64): id u64 @0, operation u8 @8, 1 byte
// padding, status s16 @10.
const (
	rspID     = 0
	rspOp     = 8
	rspStatus = 10
)

// Request operations (BLKIF_OP_*).
const (
	OpRead           = 0
	OpWrite          = 1
	OpWriteBarrier   = 2
	OpFlushDiskcache = 3
	OpDiscard        = 5
	OpIndirect       = 6
)

// Response statuses (BLKIF_RSP_*).
const (
	RspEOPNOTSUPP = -2
	RspError      = -1
	RspOkay       = 0
)

// MaxSegments is BLKIF_MAX_SEGMENTS_PER_REQUEST: data pages one direct
// request can carry.
const MaxSegments = 11

// SectorShift: sector_number, first_sect and last_sect always count
// 512-byte units, whatever the backend's sector-size (blkif.h since its
// correction that deprecated feature-large-sector-size, and what Linux's
// blkfront and blkback have always done).
const SectorShift = 9

const sectorsPerPage = PageSize >> SectorShift

// frontRing is struct blkif_front_ring: the shared page plus the
// frontend's private producer and consumer indices.
type frontRing struct {
	sring      *shm.Page
	reqProdPvt uint32
	rspCons    uint32
}

// newFrontRing is SHARED_RING_INIT followed by FRONT_RING_INIT.
func newFrontRing(p *shm.Page) (*frontRing, error) {
	if p.Len() < PageSize {
		return nil, fmt.Errorf("blkfront: ring page is %d bytes, need %d", p.Len(), PageSize)
	}
	clear(p.Bytes()[:ringHeader])
	p.Store32(offReqProd, 0)
	p.Store32(offRspProd, 0)
	p.Store32(offReqEvent, 1)
	p.Store32(offRspEvent, 1)
	return &frontRing{sring: p}, nil
}

func entryOff(idx uint32) int { return ringHeader + int(idx&(RingSize-1))*EntrySize }

// free is RING_FREE_REQUESTS.
func (r *frontRing) free() uint32 { return RingSize - (r.reqProdPvt - r.rspCons) }

// nextRequest returns the offset of RING_GET_REQUEST(req_prod_pvt) and
// advances req_prod_pvt; the caller checked free() first.
func (r *frontRing) nextRequest() int {
	off := entryOff(r.reqProdPvt)
	r.reqProdPvt++
	return off
}

// push is RING_PUSH_REQUESTS_AND_CHECK_NOTIFY: publish the new requests
// (the stores to the entries are ordered before this one) and report
// whether the backend asked to be notified for any of them, i.e. whether
// req_event lies in (old, new].
func (r *frontRing) push() bool {
	old := r.sring.Load32(offReqProd)
	nw := r.reqProdPvt
	r.sring.Store32(offReqProd, nw)
	// Full barrier between publishing req_prod and reading req_event: Go's
	// atomics are sequentially consistent.
	return nw-r.sring.Load32(offReqEvent) < nw-old
}

// rspProd reads rsp_prod; the loads of the entries after it are ordered
// by the atomic load (the rmb of RING_HAS_UNCONSUMED_RESPONSES users).
func (r *frontRing) rspProd() uint32 { return r.sring.Load32(offRspProd) }

// finalCheck is RING_FINAL_CHECK_FOR_RESPONSES: ask for an event at the
// next response, then look again so a response that raced the request for
// an event is not missed.
func (r *frontRing) finalCheck() bool {
	if r.rspProd() != r.rspCons {
		return true
	}
	r.sring.Store32(offRspEvent, r.rspCons+1)
	return r.rspProd() != r.rspCons
}
