package xen

import (
	"testing"

	"github.com/xenvtpm/xenvtpm/board/xen/shm"
)

func TestPVClockScaling(t *testing.T) {
	// A 2 GHz TSC: 0.5 ns per tick = mul 2^31 with shift 0.
	ti := TimeInfo{TSCTimestamp: 1000, SystemTime: 5_000_000, Mul: 1 << 31, Shift: 0}
	if got := ti.Nanotime(1000 + 2_000_000_000); got != 5_000_000+1_000_000_000 {
		t.Fatalf("Nanotime = %d", got)
	}
	if hz := ti.TSCHz(); hz != 2_000_000_000 {
		t.Fatalf("TSCHz = %d", hz)
	}
	// The same clock expressed with shift -1 and mul 2^32-ish must agree.
	ti2 := TimeInfo{TSCTimestamp: 1000, SystemTime: 5_000_000, Mul: 0xffffffff, Shift: -1}
	got := ti2.Nanotime(1000 + 2_000_000_000)
	if d := got - (5_000_000 + 1_000_000_000); d < -1 || d > 1 {
		t.Fatalf("Nanotime with shift -1 = %d", got)
	}
	// Large deltas must not overflow the 64-bit intermediate.
	big := TimeInfo{Mul: 1 << 31, Shift: 2}
	if got := big.Nanotime(1 << 60); got != 1<<61 {
		t.Fatalf("large delta: %d", got)
	}
}

func TestReadTimeInfo(t *testing.T) {
	p := shm.New(make([]byte, 64))
	off := 32
	p.Store32(off+timeVersion, 4)
	p.Store64(off+timeTSCStamp, 77)
	p.Store64(off+timeSystem, 88)
	p.Store32(off+timeMul, 99)
	p.Store8(off+timeShiftFlag, 0xfe) // -2
	ti := ReadTimeInfo(p, off)
	if ti.TSCTimestamp != 77 || ti.SystemTime != 88 || ti.Mul != 99 || ti.Shift != -2 {
		t.Fatalf("ReadTimeInfo = %+v", ti)
	}
}

func TestReadWallClock(t *testing.T) {
	p := shm.New(make([]byte, 4096))
	if _, ok := ReadWallClock(p); ok {
		t.Error("a wall clock Xen never set")
	}
	p.Store32(wcVersion, 2)
	p.Store32(wcSec, 0x6a000000)
	p.Store32(wcSecHi, 1)
	p.Store32(wcNsec, 5)
	if ns, ok := ReadWallClock(p); !ok || ns != (1<<32|0x6a000000)*1e9+5 {
		t.Errorf("ReadWallClock = %d, %v", ns, ok)
	}
}
