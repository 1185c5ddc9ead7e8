package domain

import (
	"strings"
	"testing"
)

func TestMemoryLine(t *testing.T) {
	const mib = 1 << 20
	v := map[string]uint64{
		metricTotal:      6 * mib,
		metricObjects:    mib,
		metricHeapFree:   2 * mib,
		metricReleased:   mib / 2,
		metricStacks:     mib / 4,
		metricHeapUnused: mib / 4,
		metricSpansInUse: mib / 8,
		metricSpansFree:  mib / 8,
		metricOtherMeta:  mib,
		metricGCCycles:   37,
	}
	got := memoryLine(8*mib, v)
	for _, want := range []string{
		"holds 6.00 MiB of the 8.00 MiB",
		"heap arenas 4.00 MiB (1.00 MiB in live objects, 37 GC cycles)",
		"outside them 2.00 MiB (span structures 0.25 MiB, collector and allocator metadata 1.00 MiB, other 0.75 MiB)",
		"not held 2.00 MiB",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("memory line %q lacks %q", got, want)
		}
	}
	if got := memoryLine(4*mib, v); !strings.HasSuffix(got, "not held none") {
		t.Errorf("with more held than the room: %q", got)
	}
	// The host's own runtime gives every class the line reads.
	if line := readMemoryLine(1 << 30); strings.Contains(line, "holds 0.00 MiB") || strings.Contains(line, "heap arenas 0.00 MiB") {
		t.Errorf("the runtime's metrics were not read: %q", line)
	}
}
