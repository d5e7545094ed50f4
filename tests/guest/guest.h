/*
 * guest.h - shared constants and assembler macros for Skiff's test guests.
 *
 * Included through the C preprocessor by every .S file in this folder. The
 * guests are freestanding x86 programs: a PVH ELF (or a bzImage) that the VMM
 * loads at 1 MiB, entered in 32-bit protected mode with paging off.
 *
 * Build with -DSKIFF_GUEST_DEBUG to also echo every test-device report on
 * COM1 as "report 0x%08x" (handy under QEMU, which has no test device).
 */
#ifndef SKIFF_TESTS_GUEST_GUEST_H
#define SKIFF_TESTS_GUEST_GUEST_H

/* Devices. */
#define COM1_THR 0x3f8
#define COM1_LSR 0x3fd
#define LSR_THRE 0x20               /* transmit holding register empty */
#define I8042_CMD 0x64
#define I8042_RESET 0xfe            /* pulse the CPU reset line */

/* The host test device. */
#define PORT_REPORT 0x510           /* 32-bit out: host records (vcpu, value) */
#define TESTDEV_PIO 0x518           /* 0x518-0x51f: recorded writes, patterned reads */
#define PORT_IOEVENTFD 0x520
#define TESTDEV_MMIO 0xd0000000     /* 0xd0000000-0xd0000fff */
#define MMIO_IOEVENTFD 0xd0001000

/* Interrupt controllers. */
#define LAPIC_BASE 0xfee00000
#define LAPIC_ID 0x020
#define LAPIC_EOI 0x0b0
#define LAPIC_SVR 0x0f0
#define LAPIC_ICR_LO 0x300
#define LAPIC_ICR_HI 0x310
#define LAPIC_LVT_LINT0 0x350
#define IOAPIC_BASE 0xfec00000
#define IOAPIC_IOREGSEL 0x00
#define IOAPIC_IOWIN 0x10

/* Boot protocols. */
#define HVM_START_MAGIC 0x336ec578  /* struct hvm_start_info.magic */
#define XEN_ELFNOTE_PHYS32_ENTRY 18

/* Selectors of the GDT that GUEST_GDT defines. */
#define SEL_CODE32 0x08
#define SEL_DATA 0x10
#define SEL_CODE64 0x18

/*
 * PVH_NOTE entry: the Xen ELF note that marks the image as PVH-bootable and
 * gives its 32-bit physical entry point. The linker script puts .note.Xen in
 * a PT_NOTE segment (4-byte aligned, as note readers expect).
 */
.macro PVH_NOTE entry
	.pushsection .note.Xen, "a", @note
	.balign 4
	.long 4                         /* namesz: "Xen\0" */
	.long 4                         /* descsz: one 32-bit address */
	.long XEN_ELFNOTE_PHYS32_ENTRY
	.asciz "Xen"
	.long \entry
	.popsection
.endm

/*
 * GUEST_GDT: flat 32-bit code/data plus a 64-bit code segment, and the
 * pseudo-descriptor for lgdt. The VMM's boot GDT lives in low memory we must
 * not rely on, so every guest loads this one first. Read-only is fine: the
 * accessed bits are preset, so the CPU never writes to it.
 */
.macro GUEST_GDT
	.pushsection .rodata
	.balign 16
gdt:
	.quad 0                         /* null */
	.quad 0x00cf9b000000ffff        /* 0x08: 32-bit code, base 0, 4 GiB */
	.quad 0x00cf93000000ffff        /* 0x10: data, base 0, 4 GiB */
	.quad 0x00af9b000000ffff        /* 0x18: 64-bit code */
gdt_end:
	.balign 4
	.word 0                         /* pad so the base below is aligned */
gdt_desc:
	.word gdt_end - gdt - 1
	.long gdt
	.popsection
.endm

/* GUEST_STACK size: a stack in .bss; stack_top is its (16-byte aligned) end. */
.macro GUEST_STACK size
	.pushsection .bss
	.balign 16
stack:
	.skip \size
stack_top:
	.popsection
.endm

/* GUEST_PAGE_TABLES: room for ENTER_LONG_MODE's identity map of 4 GiB. */
.macro GUEST_PAGE_TABLES
	.pushsection .bss
	.balign 4096
pml4:
	.skip 4096
pdpt:
	.skip 4096
pd:
	.skip 4 * 4096                  /* 4 page directories x 512 x 2 MiB */
	.popsection
.endm

/*
 * PVH_START: first thing at the PVH entry point (32-bit, paging off, no
 * stack). Loads our GDT and flat segments, sets the stack and zeroes .bss
 * (page tables and counters rely on that). Preserves %ebx (start_info).
 */
.macro PVH_START
	cli
	cld
	lgdt gdt_desc
	ljmp $SEL_CODE32, $1f
1:	mov $SEL_DATA, %eax
	mov %eax, %ds
	mov %eax, %es
	mov %eax, %ss
	mov %eax, %fs
	mov %eax, %gs
	mov $stack_top, %esp
	mov $__bss_start, %edi
	mov $__bss_end, %ecx
	sub %edi, %ecx
	xor %eax, %eax
	rep stosb
.endm

/*
 * ENTER_LONG_MODE target64: from 32-bit protected mode with paging off,
 * identity-map the first 4 GiB with 2 MiB pages (so the test MMIO at
 * 0xd0000000 and the APICs are reachable), enable PAE, EFER.LME and paging,
 * then far-jump to the 64-bit code at target64.
 * Needs GUEST_PAGE_TABLES (zeroed) and GUEST_GDT loaded.
 * Clobbers %eax, %ecx, %edx; preserves %ebx, %esi, %edi, %esp.
 */
.macro ENTER_LONG_MODE target64
	movl $(pdpt + 3), pml4          /* present | writable */
	movl $(pd + 0x0000 + 3), pdpt + 0
	movl $(pd + 0x1000 + 3), pdpt + 8
	movl $(pd + 0x2000 + 3), pdpt + 16
	movl $(pd + 0x3000 + 3), pdpt + 24
	xor %ecx, %ecx                  /* PDE index = 2 MiB frame number */
1:	mov %ecx, %eax
	shl $21, %eax
	or $0x83, %eax                  /* present | writable | 2 MiB page */
	cmp $1536, %ecx
	jb 2f
	or $0x18, %eax                  /* PWT | PCD: uncached above 3 GiB (MMIO) */
2:	mov %eax, pd(, %ecx, 8)
	inc %ecx
	cmp $2048, %ecx
	jne 1b

	mov %cr4, %eax
	or $0x20, %eax                  /* CR4.PAE */
	mov %eax, %cr4
	mov $pml4, %eax
	mov %eax, %cr3
	mov $0xc0000080, %ecx           /* IA32_EFER */
	rdmsr
	or $0x100, %eax                 /* EFER.LME */
	wrmsr
	mov %cr0, %eax
	or $0x80000000, %eax            /* CR0.PG: activates long mode */
	mov %eax, %cr0
	ljmp $SEL_CODE64, $\target64
.endm

/* REPORT: send %eax to the test device's report port. Clobbers %edx. */
.macro REPORT
	mov $PORT_REPORT, %dx
	out %eax, %dx
#ifdef SKIFF_GUEST_DEBUG
	call debug_report
#endif
.endm

/* REPORT_IMM value: REPORT a constant. Clobbers %eax, %edx. */
.macro REPORT_IMM value
	mov $\value, %eax
	REPORT
.endm

/*
 * GUEST_HELPERS r: the subroutines below, assembled for the current .code32
 * (r=e) or .code64 (r=r) mode; r only picks the push/pop register width.
 *   serial_putc  %al = byte to send on COM1; preserves all registers
 *   serial_puts  %esi/%rsi = NUL-terminated string; clobbers %eax, %esi
 *   reset        ask the i8042 for a CPU reset (ends the VM); never returns
 * serial_puts and reset are position-independent (the bzImage uses them).
 */
.macro GUEST_HELPERS r
serial_putc:
	push %\r\()dx
	push %\r\()ax
	mov $COM1_LSR, %dx
1:	in %dx, %al                     /* wait until the transmitter is free */
	test $LSR_THRE, %al
	jz 1b
	pop %\r\()ax
	mov $COM1_THR, %dx
	out %al, %dx
	pop %\r\()dx
	ret

serial_puts:
1:	lodsb
	test %al, %al
	jz 2f
	call serial_putc
	jmp 1b
2:	ret

reset:
	mov $I8042_RESET, %al
	out %al, $I8042_CMD
1:	cli                             /* the VMM should have stopped us by now */
	hlt
	jmp 1b

#ifdef SKIFF_GUEST_DEBUG
/* debug_report: print "report 0x%08x\n" for %eax; preserves all registers. */
debug_report:
	push %\r\()ax
	push %\r\()cx
	push %\r\()dx
	push %\r\()si
	mov %eax, %edx
1:	pause                           /* serialise the vCPUs (smp.elf) */
	lock btsl $0, debug_lock
	jc 1b
	mov $debug_prefix, %esi
	call serial_puts
	mov $8, %ecx
2:	rol $4, %edx                    /* next nibble, most significant first */
	mov %dl, %al
	and $0xf, %al
	add $'0', %al
	cmp $'9', %al
	jbe 3f
	add $('a' - '9' - 1), %al
3:	call serial_putc
	loop 2b
	mov $'\n', %al
	call serial_putc
	movl $0, debug_lock
	pop %\r\()si
	pop %\r\()dx
	pop %\r\()cx
	pop %\r\()ax
	ret

	.pushsection .data
debug_lock:
	.long 0
debug_prefix:
	.asciz "report 0x"
	.popsection
#endif
.endm

#endif /* SKIFF_TESTS_GUEST_GUEST_H */
