package domain

import (
	"fmt"
	"runtime/metrics"
)

// The runtime/metrics classes a memory line is made of. Every byte the
// runtime holds is in exactly one /memory/classes leaf: the heap's arenas
// are the heap leaves, and everything else is kept outside them, except
// the collector's work buffers, which come from the arenas but count as
// metadata (few are left between cycles, when a domain logs the line).
const (
	metricTotal      = "/memory/classes/total:bytes"
	metricObjects    = "/memory/classes/heap/objects:bytes"
	metricHeapFree   = "/memory/classes/heap/free:bytes"
	metricReleased   = "/memory/classes/heap/released:bytes"
	metricStacks     = "/memory/classes/heap/stacks:bytes"
	metricHeapUnused = "/memory/classes/heap/unused:bytes"
	metricSpansInUse = "/memory/classes/metadata/mspan/inuse:bytes"
	metricSpansFree  = "/memory/classes/metadata/mspan/free:bytes"
	metricOtherMeta  = "/memory/classes/metadata/other:bytes"
	metricGCCycles   = "/gc/cycles/total:gc-cycles"
)

var memoryMetrics = []string{
	metricTotal, metricObjects, metricHeapFree, metricReleased, metricStacks, metricHeapUnused,
	metricSpansInUse, metricSpansFree, metricOtherMeta, metricGCCycles,
}

// memoryLine says how the runtime uses room, the RAM it may take (from the
// image's end to the boot stack): its heap arenas, the live objects in
// them, what it keeps outside them (span structures, the collector's
// metadata, its allocator's own tables) and what it does not hold. That
// outside share grows with a domain's work and is never given back; it is
// what a domain's smallest memory= depends on once the heap fits.
func memoryLine(room uint64, v map[string]uint64) string {
	heap := v[metricObjects] + v[metricHeapFree] + v[metricReleased] + v[metricStacks] + v[metricHeapUnused]
	total := v[metricTotal]
	outside := total - min(heap, total)
	spans := v[metricSpansInUse] + v[metricSpansFree]
	gcMeta := v[metricOtherMeta]
	free := "none"
	if room > total {
		free = mib(room - total)
	}
	return fmt.Sprintf("memory: the runtime holds %s of the %s between the image and the boot stack: heap arenas %s (%s in live objects, %d GC cycles), outside them %s (span structures %s, collector and allocator metadata %s, other %s); not held %s",
		mib(total), mib(room), mib(heap), mib(v[metricObjects]), v[metricGCCycles],
		mib(outside), mib(spans), mib(gcMeta), mib(outside-min(spans+gcMeta, outside)), free)
}

func mib(n uint64) string { return fmt.Sprintf("%.2f MiB", float64(n)/(1<<20)) }

// readMemoryLine reads the runtime's figures now.
func readMemoryLine(room uint64) string {
	s := make([]metrics.Sample, len(memoryMetrics))
	for i, name := range memoryMetrics {
		s[i].Name = name
	}
	metrics.Read(s)
	v := make(map[string]uint64, len(s))
	for _, m := range s {
		if m.Value.Kind() == metrics.KindUint64 {
			v[m.Name] = m.Value.Uint64()
		}
	}
	return memoryLine(room, v)
}
