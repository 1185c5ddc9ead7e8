//go:build tamago

package pvh

import _ "unsafe"

// RAM for the Go runtime starts at 2 MiB; the low pages hold the boot page
// tables and GDT. cpuinit replaces ramSize with the size of the RAM region
// Xen gave us; the default only applies when start_info is missing.
//
//go:linkname ramStart runtime/goos.RamStart
var ramStart uint = 0x00200000

//go:linkname ramSize runtime/goos.RamSize
var ramSize uint = 0x01000000

// startInfoPA is written by cpuinit from EBX.
var startInfoPA uint64
