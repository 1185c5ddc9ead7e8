package pvh

// Go's heap on this board grows in tamago's 4 MiB arenas, each aligned to
// 4 MiB, from the heap's start (goos.Bloc, after the image) up to the boot
// stack at the top of RAM; an arena that does not fit whole is never
// used. The garbage collector knows nothing of that ceiling: by default it
// lets the heap reach 4 MiB before its first cycle, so a domain with room
// for one arena runs out of memory mid-cycle ("cannot allocate
// 4194304-byte block"). The runtime's memory limit is set to what the
// arenas that fit can hold, less an eighth for what is allocated while a
// cycle runs, so the collector works to keep the heap within them.

const (
	arenaBytes   = 4 << 20  // tamago's heapArenaBytes on amd64
	bootStackLen = 64 << 10 // the g0 stack the runtime makes below the boot SP
)

// runtimeRoom returns the RAM the runtime can take, for its heap and for
// what it keeps outside it: from the heap's start at bloc to the bottom of
// the boot stack, whose top is stackOffset below ramEnd.
func runtimeRoom(ramEnd, bloc, stackOffset uint64) uint64 {
	if ramEnd < stackOffset+bootStackLen+bloc {
		return 0
	}
	return ramEnd - stackOffset - bootStackLen - bloc
}

// heapLimit returns the memory limit for a heap starting at bloc in RAM
// ending at ramEnd, whose boot stack's top is stackOffset below ramEnd;
// 0 when not one arena fits.
func heapLimit(ramEnd, bloc, stackOffset uint64) uint64 {
	first := (bloc + arenaBytes - 1) &^ (arenaBytes - 1)
	n := runtimeRoom(ramEnd, first, stackOffset) / arenaBytes
	return n * arenaBytes / 8 * 7
}
