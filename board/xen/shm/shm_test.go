package shm

import "testing"

func TestNarrowAccessesKeepNeighbours(t *testing.T) {
	p := New(make([]byte, 64))
	p.Store32(8, 0x11223344)
	p.Store8(9, 0xAA)
	if got := p.Load32(8); got != 0x1122AA44 {
		t.Fatalf("Store8 at 9: word = %#x, want 0x1122aa44", got)
	}
	if got := p.Load8(11); got != 0x11 {
		t.Fatalf("Load8(11) = %#x", got)
	}
	p.Store16(10, 0xBEEF)
	if got := p.Load32(8); got != 0xBEEFAA44 {
		t.Fatalf("Store16 at 10: word = %#x", got)
	}
	if p.CompareAndSwap16(10, 0x1234, 0) {
		t.Fatal("CompareAndSwap16 succeeded with a wrong old value")
	}
	if !p.CompareAndSwap16(10, 0xBEEF, 0x0102) || p.Load16(10) != 0x0102 {
		t.Fatal("CompareAndSwap16 with the right old value failed")
	}
	p.Store64(16, 0xF0F0)
	if old := p.And64(16, 0x0F0F|0x00F0); old != 0xF0F0 || p.Load64(16) != 0x00F0 {
		t.Fatalf("And64: old %#x new %#x", old, p.Load64(16))
	}
	if old := p.Swap64(16, 7); old != 0x00F0 || p.Load64(16) != 7 {
		t.Fatal("Swap64")
	}
	p.Or64(16, 8)
	if p.Load64(16) != 15 {
		t.Fatal("Or64")
	}
}

func TestOutOfRangePanics(t *testing.T) {
	p := New(make([]byte, 16))
	for _, f := range []func(){
		func() { p.Load32(14) },
		func() { p.Load32(2) },
		func() { p.Store64(12, 0) },
		func() { p.Load8(-1) },
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Error("out-of-range access did not panic")
				}
			}()
			f()
		}()
	}
}
