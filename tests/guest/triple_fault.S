/*
 * triple_fault.elf - end in a triple fault, which the VMM reports as shutdown.
 *
 * Reports 0x7f (so the host knows the guest ran), loads an empty IDT and
 * executes ud2: #UD cannot be delivered (#GP), nor can #GP (#DF), nor #DF,
 * so the CPU shuts down. (ud2 rather than int3: a software-emulated KVM
 * (kvm-pvm) fails int3 with an internal error instead of a shutdown.)
 */
#include "guest.h"

	PVH_NOTE _start
	GUEST_GDT
	GUEST_STACK 4096

	.section .text.entry, "ax"
	.code32
	.globl _start
_start:
	PVH_START
	REPORT_IMM 0x7f
	lidt empty_idt
	ud2
1:	hlt                             /* not reached */
	jmp 1b

	GUEST_HELPERS e

	.section .rodata
	.balign 8
empty_idt:
	.word 0                         /* limit 0: every vector is out of range */
	.long 0
