/*
 * pio_mmio.elf - exercise the test device with every access width.
 *
 * Runs in 64-bit long mode (so an 8-byte MMIO access exists) with the first
 * 4 GiB identity-mapped. Sequence (each "report" is a 32-bit out to 0x510):
 *   PIO writes   outb 0x11 -> 0x518, outw 0x2233 -> 0x51a, outl 0x44556677 -> 0x51c
 *   PIO reads    inb 0x518, inw 0x51a, inl 0x51c; report each (zero-extended)
 *   MMIO writes  1 byte 0x88 -> 0xd0000010, 2 bytes 0x99aa -> 0xd0000020,
 *                4 bytes 0xbbccddee -> 0xd0000030,
 *                8 bytes 0x0102030405060708 -> 0xd0000040
 *   MMIO reads   1, 2, 4, 8 bytes at 0xd0000050/60/70/80; report each
 *                (the 8-byte value as low 32 bits, then high 32 bits)
 *   reset
 * With the test device's read patterns the reports are:
 *   0x42, 0x4140, 0x45444746, 0xf5, 0xc4c5, 0xd6d7d4d5, 0x26272425, 0x22232021
 */
#include "guest.h"

	PVH_NOTE _start
	GUEST_GDT
	GUEST_STACK 4096
	GUEST_PAGE_TABLES

	.section .text.entry, "ax"
	.code32
	.globl _start
_start:
	PVH_START
	ENTER_LONG_MODE long_mode

	.code64
long_mode:
	mov $stack_top, %rsp

	/* PIO writes of width 1, 2, 4. */
	mov $(TESTDEV_PIO + 0), %dx
	mov $0x11, %al
	out %al, %dx
	mov $(TESTDEV_PIO + 2), %dx
	mov $0x2233, %ax
	out %ax, %dx
	mov $(TESTDEV_PIO + 4), %dx
	mov $0x44556677, %eax
	out %eax, %dx

	/* PIO reads of width 1, 2, 4. */
	mov $(TESTDEV_PIO + 0), %dx
	xor %eax, %eax
	in %dx, %al
	REPORT
	mov $(TESTDEV_PIO + 2), %dx
	xor %eax, %eax
	in %dx, %ax
	REPORT
	mov $(TESTDEV_PIO + 4), %dx
	in %dx, %eax
	REPORT

	/* MMIO writes of width 1, 2, 4, 8 (0xd0000000 is above 2 GiB, so use a
	 * base register rather than a sign-extended 32-bit displacement). */
	mov $TESTDEV_MMIO, %ebx         /* zero-extends into %rbx */
	movb $0x88, 0x10(%rbx)
	movw $0x99aa, 0x20(%rbx)
	movl $0xbbccddee, 0x30(%rbx)
	movabs $0x0102030405060708, %rax
	mov %rax, 0x40(%rbx)

	/* MMIO reads of width 1, 2, 4, 8. */
	movzbl 0x50(%rbx), %eax
	REPORT
	movzwl 0x60(%rbx), %eax
	REPORT
	movl 0x70(%rbx), %eax
	REPORT
	mov 0x80(%rbx), %rcx
	mov %ecx, %eax                  /* low half */
	REPORT
	shr $32, %rcx
	mov %ecx, %eax                  /* high half */
	REPORT

	jmp reset

	GUEST_HELPERS r
