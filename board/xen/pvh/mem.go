//go:build tamago

package pvh

import _ "unsafe"

// RAM for the Go runtime starts at 1 MiB; the low pages hold the boot page
// tables and GDT. cpuinit replaces ramSize with the size of the RAM region
// Xen gave us; the default only applies when start_info is missing.
//
//go:linkname ramStart runtime/goos.RamStart
var ramStart uint = 0x00100000

//go:linkname ramSize runtime/goos.RamSize
var ramSize uint = 0x01000000

// startInfoPA is written by cpuinit from EBX.
var startInfoPA uint64

// reclaim is {magic, address, size} of the FIPS-only scratch buffer that
// build/imgtrim cut out of the image's load span; cpuinit starts the heap
// there instead of after it. It stays {magic, 0, 0} in untrimmed images.
var reclaim = [3]uint64{0x524d5054564e4558, 0, 0}
