//go:build tamago && linkcpuinit

#include "textflag.h"

// Low-memory layout used before Go runs. Go's RAM starts at 1 MiB
// (linkramstart), so these pages stay ours for the life of the domain.
#define BOOTSTACK 0x8000
#define GDT       0x8f00	// 3 descriptors + the GDTR image at GDT+24
#define PML4T     0x9000
#define PDPT      0xa000
#define PDT       0xb000
#define PT        0xc000

#define MSR_EFER  0xc0000080
#define START_INFO_MAGIC 0x336ec578
#define BOOT_INFO_RESERVE 0x10000

// cpuinit is the PVH entry point (XEN_ELFNOTE_PHYS32_ENTRY via the ELF
// entry): 32-bit protected mode, paging off, EBX = hvm_start_info.
// The code up to the far return runs in 32-bit mode although the Go
// assembler encodes it as 64-bit: only instructions whose encoding means the
// same in both modes are used (no REX prefixes, no RIP-relative operands).
TEXT cpuinit(SB),NOSPLIT|NOFRAME,$0
	CLI
	// SI carries the start_info pointer into long mode; nothing below
	// writes it.
	MOVL	BX, SI
	MOVL	$BOOTSTACK, SP

	// Four zeroed table pages.
	XORL	AX, AX
	MOVL	$PML4T, DI
	MOVL	$0x4000, CX
	REP;	STOSB

	MOVL	$PML4T, DI
	MOVL	$(PDPT | 3), (DI)
	MOVL	$PDPT, DI
	MOVL	$(PDT | 3), (DI)
	// 1-3 GiB as write-back 1 GiB pages; 3-4 GiB uncached: device MMIO
	// (LAPIC, an iomem TPM at 0xfed40000) and Xen's special pages live there.
	MOVL	$(0x40000000 | 0x83), 8(DI)
	MOVL	$(0x80000000 | 0x83), 16(DI)
	MOVL	$(0xc0000000 | 0x93), 24(DI)

	// 0-1 GiB in 2 MiB pages, except the first, which PT splits.
	MOVL	$PDT, DI
	MOVL	$(PT | 3), (DI)
	ADDL	$8, DI
	MOVL	$(0x200000 | 0x83), AX
pdt:
	MOVL	AX, (DI)
	ADDL	$0x200000, AX
	ADDL	$8, DI
	CMPL	DI, $(PDT + 0x1000)
	JCS	pdt

	// 0-2 MiB in 4 KiB pages; page 0 stays absent so nil dereferences fault.
	MOVL	$(PT + 8), DI
	MOVL	$(0x1000 | 3), AX
pt:
	MOVL	AX, (DI)
	ADDL	$0x1000, AX
	ADDL	$8, DI
	CMPL	DI, $(PT + 0x1000)
	JCS	pt

	// A flat GDT: null, 64-bit code (0x08), data (0x10).
	MOVL	$GDT, DI
	MOVL	$0, 0(DI)
	MOVL	$0, 4(DI)
	MOVL	$0, 8(DI)
	MOVL	$0x00209a00, 12(DI)
	MOVL	$0, 16(DI)
	MOVL	$0x00009200, 20(DI)
	MOVW	$23, 24(DI)
	MOVL	$GDT, 26(DI)
	MOVL	$0, 30(DI)
	LGDT	24(DI)

	// Long mode: PAE + PGE, EFER.LME, then paging.
	MOVL	$PML4T, AX
	MOVL	AX, CR3
	MOVL	CR4, AX
	ORL	$(1<<5 | 1<<7), AX
	MOVL	AX, CR4
	MOVL	$MSR_EFER, CX
	RDMSR
	ORL	$(1<<8), AX
	WRMSR
	MOVL	CR0, AX
	ORL	$0x80000001, AX
	MOVL	AX, CR0

	// Far return into 64-bit code. The target's address is computed from
	// our own PC because a symbol operand here would be RIP-relative,
	// which 32-bit mode reads as an absolute displacement.
	CALL	·pc<>(SB)
	LEAL	·long<>(SB), BX		// 6 bytes: BX = target - next instruction
	ADDL	$6, AX
	ADDL	BX, AX
	PUSHQ	$0x08
	PUSHQ	AX
	BYTE	$0xcb			// RETF

// pc returns its caller's return address in AX.
TEXT ·pc<>(SB),NOSPLIT|NOFRAME,$0
	MOVL	(SP), AX
	RET

TEXT ·long<>(SB),NOSPLIT|NOFRAME,$0
	MOVL	$0x10, AX
	MOVW	AX, DS
	MOVW	AX, ES
	MOVW	AX, SS
	XORL	AX, AX
	MOVW	AX, FS
	MOVW	AX, GS
	CALL	sse_enable(SB)

	// Upper register halves are undefined after the mode switch.
	MOVL	SI, SI
	MOVQ	SI, ·startInfoPA(SB)

	// RAM for Go is the memory-map RAM entry that holds RamStart; without
	// a valid start_info the linked default stays and Go reports why.
	TESTQ	SI, SI
	JZ	sized
	CMPL	(SI), $START_INFO_MAGIC
	JNE	sized
	MOVQ	40(SI), DI		// memmap_paddr
	MOVL	48(SI), CX		// memmap_entries
	CMPL	CX, $128
	JHI	sized
	MOVQ	runtime∕goos·RamStart(SB), R8
entry:
	TESTL	CX, CX
	JZ	sized
	CMPL	16(DI), $1		// E820 RAM
	JNE	next
	MOVQ	0(DI), R9
	CMPQ	R8, R9
	JCS	next
	MOVQ	8(DI), R10
	ADDQ	R9, R10
	CMPQ	R8, R10
	JCC	next
	SUBQ	R8, R10
	MOVQ	R10, runtime∕goos·RamSize(SB)
	JMP	sized
next:
	ADDQ	$24, DI
	DECL	CX
	JMP	entry

sized:
	MOVQ	runtime∕goos·RamStart(SB), SP
	ADDQ	runtime∕goos·RamSize(SB), SP
	SUBQ	runtime∕goos·RamStackOffset(SB), SP

	// Xen's domain builder puts start_info, its memory map and command line
	// right after the image's load span, where the heap would begin: start
	// the heap past them so Go can still read them in Hwinit1. A trimmed
	// image's span ends at the reclaimed scratch buffer (see mem.go).
	LEAQ	runtime·end(SB), AX
	MOVQ	·reclaim+8(SB), BX
	TESTQ	BX, BX
	JZ	heap
	MOVQ	BX, AX
heap:
	ADDQ	$(BOOT_INFO_RESERVE + 0xfff), AX
	ANDQ	$~0xfff, AX
	MOVQ	AX, runtime∕goos·Bloc(SB)

	// Until Hwinit1 installs the real exit (SCHEDOP_shutdown needs the
	// hypercall page), a fatal error during runtime start-up - typically
	// too little memory= - crashes the domain instead of spinning forever.
	LEAQ	·earlyExitFunc(SB), AX
	MOVQ	AX, runtime∕goos·Exit(SB)

	JMP	_rt0_tamago_start(SB)

// earlyExitFunc is a func value for earlyExit.
DATA	·earlyExitFunc+0(SB)/8, $·earlyExit(SB)
GLOBL	·earlyExitFunc(SB), RODATA, $8

// earlyExit triple-faults: with an empty IDT, INT3 cannot be delivered, and
// Xen ends the domain as crashed. It ignores its argument, so it is safe to
// call through a func value from any calling convention.
TEXT ·earlyExit(SB),NOSPLIT|NOFRAME,$0
	CLI
	SUBQ	$16, SP
	MOVQ	$0, 0(SP)
	MOVQ	$0, 8(SP)
	LIDT	(SP)
	INT	$3
	HLT
