//go:build tamago

package pvh

import (
	"runtime/debug"
	"runtime/goos"
)

func init() {
	if limit := heapLimit(uint64(ramStart)+uint64(ramSize), uint64(goos.Bloc), uint64(goos.RamStackOffset)); limit > 0 {
		debug.SetMemoryLimit(int64(limit))
	}
}

// RuntimeRAM is the RAM the Go runtime can take in this domain: from the
// end of the image to the boot stack (see runtimeRoom).
func RuntimeRAM() uint64 {
	return runtimeRoom(uint64(ramStart)+uint64(ramSize), uint64(goos.Bloc), uint64(goos.RamStackOffset))
}
