package pvh

import "testing"

func TestHeapLimit(t *testing.T) {
	const mib = 1 << 20
	for _, c := range []struct {
		name                   string
		ramEnd, bloc, stackOff uint64
		want                   uint64
	}{
		// memory=14: RAM ends at 13 MiB, the image at 7.2: one arena, 8-12 MiB.
		{"one arena", 13 * mib, 7*mib + 0x30000, 0x100, 4 * mib / 8 * 7},
		// memory=13: the arena at 8-12 MiB would reach the boot stack.
		{"arena meets the stack", 12 * mib, 7*mib + 0x30000, 0x100, 0},
		// The heap's start on a boundary wastes nothing.
		{"aligned start", 17 * mib, 8 * mib, 0x100, 8 * mib / 8 * 7},
		// memory=64: arenas from 8 MiB up to the stack below 63 MiB.
		{"large", 63 * mib, 7 * mib, 0x100, 13 * 4 * mib / 8 * 7},
		{"no room", 5 * mib, 7 * mib, 0x100, 0},
	} {
		if got := heapLimit(c.ramEnd, c.bloc, c.stackOff); got != c.want {
			t.Errorf("%s: heapLimit = %d, want %d", c.name, got, c.want)
		}
	}
}

func TestRuntimeRoom(t *testing.T) {
	const mib = 1 << 20
	// memory=16: RAM ends at 15 MiB, the heap starts at 7 MiB + 192 KiB,
	// the boot stack is 64 KiB below a 256-octet offset.
	if got, want := runtimeRoom(15*mib, 7*mib+0x30000, 0x100), uint64(15*mib-0x100-64<<10-(7*mib+0x30000)); got != want {
		t.Errorf("runtimeRoom = %d, want %d", got, want)
	}
	if got := runtimeRoom(7*mib, 7*mib, 0x100); got != 0 {
		t.Errorf("runtimeRoom with the image meeting the stack = %d, want 0", got)
	}
}
