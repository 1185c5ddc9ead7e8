//go:build tamago

package q35

import (
	"runtime/goos"
	_ "unsafe" // go:linkname

	"github.com/usbarmory/tamago/amd64"
	"github.com/usbarmory/tamago/soc/intel/uart"

	"github.com/xenvtpm/xenvtpm/board/reg"
)

// Platform addresses and ports.
const (
	COM1 = 0x3F8

	// HPET is the HPET's register block (IA-PC HPET §2.3).
	HPET = 0xFED00000

	// DebugExit is the I/O port the run scripts give QEMU's isa-debug-exit
	// (iobase=0xf4), the port most bare-metal test harnesses use.
	DebugExit = 0xF4

	picMasterData = 0x21
	picSlaveData  = 0xA1
)

// HPET registers (IA-PC HPET §2.3.1).
const (
	hpetGCAPID   = 0x000 // bits 32..63: main counter tick period in femtoseconds
	hpetGENCONF  = 0x010 // bit 0: ENABLE_CNF
	hpetMainCntr = 0x0F0
)

var (
	// AMD64 is the boot processor.
	AMD64 = &amd64.CPU{TimerMultiplier: 1}

	// UART0 is the serial console on COM1.
	UART0 = &uart.UART{Index: 1, Base: COM1}

	// TSCFreq is the TSC frequency in Hz measured against the HPET at boot
	// (0 if the HPET was not found and CPUID's value, if any, is used).
	TSCFreq uint64
)

// HPET accesses go through package reg: one access each, which the
// compiler cannot elide or merge (the counter changes between two reads).
func hpetRead32(off uint32) uint32     { return reg.Read32(HPET + uintptr(off)) }
func hpetWrite32(off uint32, v uint32) { reg.Write32(HPET+uintptr(off), v) }

// calibrateTSC measures the TSC rate against the HPET over three 50 ms
// windows and keeps the median. Each HPET read is bracketed by two TSC reads
// and retried when the bracket is wide: under TCG the vCPU thread can be
// descheduled between the two clocks' reads, which once skewed a single-window
// measurement by almost 3x on a loaded host.
func calibrateTSC() uint64 {
	period := uint64(hpetRead32(hpetGCAPID + 4)) // fs per tick
	if period == 0 || period > 100_000_000 {     // §2.3.4: at most 100 ns
		return 0
	}
	hpetWrite32(hpetGENCONF, hpetRead32(hpetGENCONF)|1)
	window := uint32(50_000_000_000_000 / period) // 50 ms in ticks

	var f [3]uint64
	for i := range f {
		for try := 0; try < 10 && f[i] == 0; try++ {
			f[i] = measure(window, period)
		}
	}
	// median of three
	if f[0] > f[1] {
		f[0], f[1] = f[1], f[0]
	}
	if f[1] > f[2] {
		f[1], f[2] = f[2], f[1]
	}
	if f[0] > f[1] {
		f[0], f[1] = f[1], f[0]
	}
	return f[1]
}

// measure returns the TSC rate over one window of HPET ticks, or 0 if a
// bracket around an HPET read was wider than 1/1000 of the window.
func measure(window uint32, period uint64) uint64 {
	a0 := AMD64.Counter()
	h0 := hpetRead32(hpetMainCntr)
	b0 := AMD64.Counter()
	var a1, b1 uint64
	var h1 uint32
	for {
		a1 = AMD64.Counter()
		h1 = hpetRead32(hpetMainCntr)
		b1 = AMD64.Counter()
		if h1-h0 >= window {
			break
		}
	}
	tsc := (a1+b1)/2 - (a0+b0)/2
	if (b0-a0)*1000 > tsc || (b1-a1)*1000 > tsc {
		return 0
	}
	ns := uint64(h1-h0) * period / 1_000_000
	if ns == 0 {
		return 0
	}
	return tsc * 1_000_000_000 / ns
}

//go:linkname nanotime runtime/goos.Nanotime
func nanotime() int64 {
	return AMD64.GetTime()
}

// Init runs early in the runtime's start-up (goos.Hwinit1).
//
//go:linkname Init runtime/goos.Hwinit1
func Init() {
	AMD64.Init()

	// Nothing here takes interrupts from the legacy PIC.
	reg.Out8(picMasterData, 0xFF)
	reg.Out8(picSlaveData, 0xFF)

	UART0.Init()

	if f := calibrateTSC(); f != 0 {
		TSCFreq = f
		AMD64.TimerMultiplier = 1e9 / float64(f)
		AMD64.SetTime(0)
	}

	goos.Exit = Exit
}

// Exit ends the QEMU run with status (code << 1) | 1 through isa-debug-exit;
// without that device it falls back to a triple fault (QEMU with -no-reboot
// then exits with status 0).
func Exit(code int32) {
	reg.Out8(DebugExit, uint8(code))
	amd64.Fault()
}

func init() {
	AMD64.EnableExceptions()
}
