/*
 * count.elf - report 1, 2, 3, ... forever.
 *
 * 32-bit protected mode, paging off. Each iteration is one 32-bit out of the
 * counter to 0x510; the guest never stops by itself, so the host can pause,
 * resume and stop it and check that the sequence carries on without gaps.
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
	mov $1, %ebx
1:	mov %ebx, %eax
	REPORT
	inc %ebx
	jmp 1b

	GUEST_HELPERS e
