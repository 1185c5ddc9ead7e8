// Package pvh is the tamago board for Xen PVH domUs (xen/docs/misc/pvh.pandoc,
// arch-x86/hvm/start_info.h).
//
// Importing it makes a GOOS=tamago program a Xen domain: its cpuinit keeps
// the hvm_start_info pointer Xen passes in EBX and sizes RAM from the memory
// map; Hwinit1 installs the hypercall page, maps shared_info, takes time from
// Xen's pvclock and moves the log to the PV console ring; idle delivers
// pending event channels and blocks the vCPU in SCHEDOP_poll until the next
// event or timer (naming every channel; beyond the 128 a poll can name,
// with interrupts enabled only across that poll, so that a pending upcall
// ends it; events are never delivered from an interrupt handler); exit
// and panic end the domain with SCHEDOP_shutdown (poweroff or crash). The
// runtime's memory limit is set to what the heap arenas that fit in RAM
// hold (heaplimit.go).
//
// Images must be built with the tags `linkcpuinit linkramstart` and linked
// at 0x110000 (see the Makefile).
package pvh
