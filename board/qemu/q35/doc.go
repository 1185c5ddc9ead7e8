// Package q35 is a tamago board for QEMU's q35 machine without Xen, used to
// run drivers against QEMU's emulated devices (the TPM TIS at 0xFED40000)
// under TCG. It follows the PC platform as QEMU builds it: a 16550 UART on
// COM1 (PC16550D), the IA-PC HPET (IA-PC HPET Specification 1.0a) as the
// reference clock, the 8259A PIC masked, and QEMU's isa-debug-exit port to
// end the run with a status.
//
// Time comes from the TSC, calibrated at boot against the HPET: under TCG
// neither CPUID nor KVM's pvclock gives a TSC frequency, and tamago's default
// would otherwise leave time running at the wrong rate.
//
// Run with at least 512 MiB of RAM (the image lives at 0x10000000-0x20000000,
// tamago's default RamStart for amd64) and `-M q35,pit=off`: SeaBIOS leaves
// the PIT's IRQ 0 routed to vector 8, which tamago enables interrupts on
// before any board code runs. Add
// `-device isa-debug-exit,iobase=0xf4,iosize=0x04` (the device's default
// port is 0x501) so Exit reaches the host as QEMU's exit status
// ((code << 1) | 1).
//
// This package is only meant for GOOS=tamago GOARCH=amd64.
package q35
