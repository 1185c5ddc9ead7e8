//go:build tamago

#include "textflag.h"

// The event-channel upcall, and the one place the domain runs with
// interrupts enabled (see idle in board.go): once it has more channels
// than SCHEDOP_poll can name.
//
// Xen injects the callback vector (HVM_PARAM_CALLBACK_IRQ, type vector)
// whenever vcpu_info's evtchn_upcall_pending is set and RFLAGS.IF is 1,
// and it needs no EOI. pollIdle enables interrupts only across its
// SCHEDOP_poll, so Xen counts a pending upcall as an event that needs
// delivery and the poll cannot sleep through one set before it.

#define RFLAGS_IF 0x200

// func pollIdle(arg uintptr, svm bool) int64
//
// SCHEDOP_poll(arg) with interrupts enabled. The instruction after STI
// runs in its interrupt shadow, during which Xen would treat interrupts as
// blocked, so a NOP takes the shadow and the hypercall instruction comes
// after it. An upcall taken before the hypercall makes upcallEntry step
// over it: events are pending, there is nothing to wait for.
TEXT ·pollIdle(SB),NOSPLIT,$0-24
	MOVQ	arg+0(FP), SI
	MOVQ	$3, DI		// SCHEDOP_poll
	MOVQ	$29, AX		// __HYPERVISOR_sched_op
	MOVBLZX	svm+8(FP), CX
	TESTL	CX, CX
	JNE	amd
	STI
	BYTE	$0x90	// NOP (the assembler drops its NOP pseudo-instruction)
	BYTE	$0x0f; BYTE $0x01; BYTE $0xc1	// VMCALL
	CLI
	MOVQ	AX, ret+16(FP)
	RET
amd:
	STI
	BYTE	$0x90	// NOP (the assembler drops its NOP pseudo-instruction)
	BYTE	$0x0f; BYTE $0x01; BYTE $0xd9	// VMMCALL
	CLI
	MOVQ	AX, ret+16(FP)
	RET

// upcallEntry is the callback vector's handler. It clears IF in the
// interrupted frame, so the vector, which Xen re-injects for as long as an
// upcall is pending, is taken once; the events themselves are delivered by
// idle after pollIdle returns. Interrupted before pollIdle's hypercall (at
// the VMCALL or VMMCALL; or at the NOP before it, which only a hypervisor
// that lost STI's shadow across a VM exit would do), it resumes after the
// hypercall, with AX still the hypercall number: the poll would otherwise
// run with interrupts disabled and sleep through the pending upcall.
// Nothing else runs with interrupts enabled.
TEXT ·upcallEntry(SB),NOSPLIT|NOFRAME,$0
	// 64-bit interrupt frame: RIP, CS, RFLAGS, RSP, SS.
	PUSHQ	AX
	PUSHQ	CX
	PUSHQ	DX
	ANDQ	$~RFLAGS_IF, 40(SP)
	MOVQ	24(SP), AX
	MOVL	(AX), CX
	MOVL	CX, DX
	ANDL	$0xffffff, DX
	CMPL	DX, $0xc1010f	// VMCALL
	JEQ	skip3
	CMPL	DX, $0xd9010f	// VMMCALL
	JEQ	skip3
	CMPL	CX, $-1056895088	// NOP; VMCALL (0xc1010f90)
	JEQ	skip4
	CMPL	CX, $-654241904		// NOP; VMMCALL (0xd9010f90)
	JNE	done
skip4:
	ADDQ	$1, 24(SP)
skip3:
	ADDQ	$3, 24(SP)
done:
	POPQ	DX
	POPQ	CX
	POPQ	AX
	IRETQ

// func sidt() (base uintptr)
TEXT ·sidt(SB),NOSPLIT,$16-8
	SIDT	0(SP)
	MOVQ	2(SP), AX
	MOVQ	AX, ret+0(FP)
	RET

// func upcallEntryPC() uintptr
TEXT ·upcallEntryPC(SB),NOSPLIT,$0-8
	MOVQ	$·upcallEntry(SB), AX
	MOVQ	AX, ret+0(FP)
	RET
