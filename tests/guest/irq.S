/*
 * irq.elf - take one interrupt through the IOAPIC and the local APIC.
 *
 * 32-bit protected mode, paging off (the APICs and 0xd0001000 are directly
 * addressable). Sequence:
 *   IDT: vector 0x30 -> irq_handler, 0xff (spurious) -> iret, all others ->
 *        unexpected (reports 0xdead0002, then reset)
 *   LAPIC: mask LINT0, SVR = 0x1ff (software-enable, spurious vector 0xff)
 *   IOAPIC pin 5: vector 0x30, fixed, physical dest APIC id 0, edge, high,
 *        unmasked
 *   outl 0x1234 -> 0x520 (ioeventfd), movl 0x5678 -> 0xd0001000 (ioeventfd)
 *   report 0x1 ("ready for irq"), then sti; hlt in a loop
 *   irq_handler: report 0x30, EOI, reset
 *
 * With -DSKIFF_GUEST_QEMU_IRQ5 it also enables the THR-empty interrupt of a
 * 16550 at 0x2f8, so QEMU raises pin 5 itself when run with
 * -device isa-serial,iobase=0x2f8,irq=5,... (QEMU has no test device).
 */
#include "guest.h"

#define IRQ_PIN 5
#define IRQ_VECTOR 0x30
#define SPURIOUS_VECTOR 0xff

	PVH_NOTE _start
	GUEST_GDT
	GUEST_STACK 4096

	.section .text.entry, "ax"
	.code32
	.globl _start
_start:
	PVH_START

	/* IDT: catch everything, so a stray vector is reported, not a triple fault. */
	xor %ecx, %ecx
1:	mov $unexpected, %eax
	call set_gate
	inc %ecx
	cmp $256, %ecx
	jne 1b
	mov $IRQ_VECTOR, %ecx
	mov $irq_handler, %eax
	call set_gate
	mov $SPURIOUS_VECTOR, %ecx
	mov $spurious, %eax
	call set_gate
	lidt idt_desc

	/* Local APIC. The 8259 is wired to LINT0 as ExtINT, and KVM's default
	 * routing also sends GSI 5 to it, so mask LINT0 to get only the IOAPIC's
	 * copy of the interrupt. */
	orl $0x10000, LAPIC_BASE + LAPIC_LVT_LINT0
	movl $(0x100 | SPURIOUS_VECTOR), LAPIC_BASE + LAPIC_SVR

	/* IOAPIC redirection entry for pin 5: high dword (destination) first, so
	 * the entry is only unmasked once it is complete. */
	movl $(0x11 + 2 * IRQ_PIN), IOAPIC_BASE + IOAPIC_IOREGSEL
	movl $0, IOAPIC_BASE + IOAPIC_IOWIN             /* dest APIC id 0 */
	movl $(0x10 + 2 * IRQ_PIN), IOAPIC_BASE + IOAPIC_IOREGSEL
	movl $IRQ_VECTOR, IOAPIC_BASE + IOAPIC_IOWIN    /* fixed, physical, edge, high, unmasked */

	/* Poke both ioeventfds, then tell the host we are ready. */
	mov $PORT_IOEVENTFD, %dx
	mov $0x1234, %eax
	out %eax, %dx
	movl $0x5678, MMIO_IOEVENTFD
	REPORT_IMM 1

#ifdef SKIFF_GUEST_QEMU_IRQ5
	mov $0x2f9, %dx                 /* COM2 IER: THR-empty interrupt */
	mov $0x02, %al
	out %al, %dx
#endif

	/* sti's one-instruction shadow makes "sti; hlt" atomic: an interrupt that
	 * is already pending wakes the hlt instead of being missed. */
1:	sti
	hlt
	jmp 1b

irq_handler:
	REPORT_IMM IRQ_VECTOR
	movl $0, LAPIC_BASE + LAPIC_EOI
	jmp reset

spurious:
	iret                            /* spurious interrupts get no EOI */

unexpected:
	REPORT_IMM 0xdead0002
	jmp reset

/* set_gate: IDT[%ecx] = 32-bit interrupt gate to %eax. Clobbers %edx. */
set_gate:
	mov %eax, %edx
	and $0xffff, %edx
	or $(SEL_CODE32 << 16), %edx
	mov %edx, idt(, %ecx, 8)
	mov %eax, %edx
	and $0xffff0000, %edx
	or $0x8e00, %edx                /* present, DPL 0, 32-bit interrupt gate */
	mov %edx, idt + 4(, %ecx, 8)
	ret

	GUEST_HELPERS e

	.section .rodata
	.balign 8
	.word 0
idt_desc:
	.word 256 * 8 - 1
	.long idt

	.section .bss
	.balign 8
idt:
	.skip 256 * 8
