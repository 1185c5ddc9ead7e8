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

// Offsets inside struct shared_info (xen.h, x86_64) of the wall clock:
// the time of day at Xen system time 0, which Xen sets from the host's
// real-time clock and keeps as dom0 sets the time.
const (
	wcVersion = 3072
	wcSec     = 3076
	wcNsec    = 3080
	wcSecHi   = 3084
)

// ReadWallClock returns the wall clock of the shared_info page p: the
// nanoseconds since 1970-01-01 UTC at Xen system time 0 (add the system
// time for the time of day); ok false while Xen has set none (0).
func ReadWallClock(p *shm.Page) (ns int64, ok bool) {
	for {
		v := p.Load32(wcVersion)
		if v&1 != 0 {
			continue
		}
		sec := int64(p.Load32(wcSecHi))<<32 | int64(p.Load32(wcSec))
		nsec := int64(p.Load32(wcNsec))
		if p.Load32(wcVersion) == v {
			return sec*1e9 + nsec, sec != 0
		}
	}
}
