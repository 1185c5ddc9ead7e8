package xen

import (
	"math/bits"

	"github.com/xenvtpm/xenvtpm/board/xen/shm"
)

// Offsets inside struct vcpu_time_info (xen.h), 32 bytes.
const (
	timeVersion   = 0
	timeTSCStamp  = 8
	timeSystem    = 16
	timeMul       = 24
	timeShiftFlag = 28 // tsc_shift (int8) and flags share this word
)

// TimeInfo reads a vcpu_time_info record, at off in page, that the
// hypervisor updates concurrently; the version protocol (odd while an update
// is in progress, changed after) makes a consistent snapshot.
type TimeInfo struct {
	TSCTimestamp uint64
	SystemTime   uint64
	Mul          uint32
	Shift        int8
}

// ReadTimeInfo takes a consistent snapshot of the record at off.
func ReadTimeInfo(p *shm.Page, off int) TimeInfo {
	for {
		v := p.Load32(off + timeVersion)
		if v&1 != 0 {
			continue
		}
		t := TimeInfo{
			TSCTimestamp: p.Load64(off + timeTSCStamp),
			SystemTime:   p.Load64(off + timeSystem),
			Mul:          p.Load32(off + timeMul),
			Shift:        int8(p.Load8(off + timeShiftFlag)),
		}
		if p.Load32(off+timeVersion) == v {
			return t
		}
	}
}

// Nanotime converts a TSC reading to Xen system time in nanoseconds:
// system_time + ((tsc - tsc_timestamp) << shift) * mul / 2^32.
func (t TimeInfo) Nanotime(tsc uint64) int64 {
	delta := tsc - t.TSCTimestamp
	if t.Shift < 0 {
		delta >>= uint(-t.Shift)
	} else {
		delta <<= uint(t.Shift)
	}
	hi, lo := bits.Mul64(delta, uint64(t.Mul))
	return int64(t.SystemTime + (hi<<32 | lo>>32))
}

// TSCHz is the TSC frequency the record implies.
func (t TimeInfo) TSCHz() uint64 {
	if t.Mul == 0 {
		return 0
	}
	// mul scales shifted ticks to ns with 32 fractional bits.
	hz := (uint64(1e9) << 32) / uint64(t.Mul)
	if t.Shift < 0 {
		hz <<= uint(-t.Shift)
	} else {
		hz >>= uint(t.Shift)
	}
	return hz
}
