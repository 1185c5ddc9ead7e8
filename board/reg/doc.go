// Package reg is the one place boards and drivers touch device registers
// directly: loads and stores of a stated width at a physical address
// (memory-mapped I/O) and x86 port output, as tamago's internal/reg
// provides for its own boards (an internal package, so not importable
// here).
//
// Each function is one assembly instruction, so every call is exactly one
// bus access of the stated width that the compiler can neither merge,
// split, elide nor reorder. Width and count both matter to devices: a
// 32-bit read of a TPM's TPM_DATA_FIFO pops four bytes, and two reads of the
// HPET's main counter give two values.
//
// Addresses are physical and must be mapped at that address, uncached for
// devices (tamago's amd64 identity map sets PCD on 0xC0000000-0xFFFFFFFF;
// board/xen/pvh's does the same). Callers check their offsets: nothing here
// can tell a register from RAM.
//
// The functions exist for GOOS=tamago GOARCH=amd64 only.
package reg
