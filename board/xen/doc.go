// Package xen is the Xen x86 platform layer for a tamago domain: CPUID
// discovery of the hypervisor, the hypercall page, typed hypercall wrappers,
// HVM parameters and the pvclock time source.
//
// It follows Xen's public headers (xen/include/public: xen.h, memory.h,
// event_channel.h, grant_table.h, sched.h, vcpu.h, hvm/hvm_op.h,
// hvm/params.h, arch-x86/cpuid.h). Hypercall argument structures are laid
// out exactly as there (x86-64, little-endian) and passed by guest-physical
// address, which equals the virtual address under tamago's identity map.
//
// Everything that executes privileged instructions is built only for
// GOOS=tamago; the pure computations (pvclock scaling, error names) are
// ordinary Go and tested on the host.
package xen
