//go:build tamago

#include "textflag.h"

// func out8(port uint16, val uint8)
TEXT ·out8(SB),NOSPLIT,$0-3
	MOVW	port+0(FP), DX
	MOVB	val+2(FP), AL
	OUTB
	RET

// func read32(addr uintptr) uint32
TEXT ·read32(SB),NOSPLIT,$0-12
	MOVQ	addr+0(FP), AX
	MOVL	(AX), BX
	MOVL	BX, ret+8(FP)
	RET

// func write32(addr uintptr, val uint32)
TEXT ·write32(SB),NOSPLIT,$0-12
	MOVQ	addr+0(FP), AX
	MOVL	val+8(FP), BX
	MOVL	BX, (AX)
	RET
