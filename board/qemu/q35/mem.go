//go:build tamago && !linkramsize

package q35

import _ "unsafe"

// ramSize covers 0x10000000-0x20000000 (tamago's default RamStart for amd64
// plus 256 MiB), so the guest needs -m 512M or more.
//
//go:linkname ramSize runtime/goos.RamSize
var ramSize uint64 = 0x10000000
