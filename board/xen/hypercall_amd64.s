//go:build tamago

#include "textflag.h"

// func hypercall(page uintptr, nr uintptr, a1, a2, a3, a4, a5 uintptr) int64
//
// Calls the stub Xen wrote for hypercall nr into the hypercall page (32 bytes
// per stub: mov eax, nr; vmcall or vmmcall; ret), so the vendor-specific
// instruction is Xen's choice, not ours. 64-bit HVM ABI: rdi, rsi, rdx, r10,
// r8; result in rax.
TEXT ·hypercall(SB),NOSPLIT,$0-64
	MOVQ	page+0(FP), AX
	MOVQ	nr+8(FP), CX
	SHLQ	$5, CX
	ADDQ	CX, AX
	MOVQ	a1+16(FP), DI
	MOVQ	a2+24(FP), SI
	MOVQ	a3+32(FP), DX
	MOVQ	a4+40(FP), R10
	MOVQ	a5+48(FP), R8
	CALL	AX
	MOVQ	AX, ret+56(FP)
	RET

// func cpuid(leaf, subleaf uint32) (eax, ebx, ecx, edx uint32)
TEXT ·cpuid(SB),NOSPLIT,$0-24
	MOVL	leaf+0(FP), AX
	MOVL	subleaf+4(FP), CX
	CPUID
	MOVL	AX, eax+8(FP)
	MOVL	BX, ebx+12(FP)
	MOVL	CX, ecx+16(FP)
	MOVL	DX, edx+20(FP)
	RET

// func wrmsr(msr, lo, hi uint32)
TEXT ·wrmsr(SB),NOSPLIT,$0-12
	MOVL	msr+0(FP), CX
	MOVL	lo+4(FP), AX
	MOVL	hi+8(FP), DX
	WRMSR
	RET

// func rdtsc() uint64
TEXT ·rdtsc(SB),NOSPLIT,$0-8
	LFENCE
	RDTSC
	SHLQ	$32, DX
	ORQ	DX, AX
	MOVQ	AX, ret+0(FP)
	RET
