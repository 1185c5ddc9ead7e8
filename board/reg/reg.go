//go:build tamago && amd64

package reg

// Defined in reg_amd64.s.

// Read8 loads the byte at addr.
func Read8(addr uintptr) uint8

// Write8 stores v at addr.
func Write8(addr uintptr, v uint8)

// Read32 loads the 32-bit word at addr, which must be 4-byte aligned.
func Read32(addr uintptr) uint32

// Write32 stores the 32-bit word v at addr, which must be 4-byte aligned.
func Write32(addr uintptr, v uint32)

// Out8 writes v to I/O port port.
func Out8(port uint16, v uint8)
