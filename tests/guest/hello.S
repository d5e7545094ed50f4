/*
 * hello.elf - the smallest useful PVH guest.
 *
 * Switches itself from the 32-bit PVH entry to 64-bit long mode, checks that
 * %ebx pointed at a struct hvm_start_info, prints one line on COM1 and ends
 * the VM with an i8042 reset.
 *
 * COM1: "Hello from a Skiff guest\n" (or "bad start info\n"), then reset.
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
	PVH_START                       /* keeps %ebx = start_info */
	ENTER_LONG_MODE long_mode

	.code64
long_mode:
	mov $stack_top, %rsp
	mov %ebx, %ebx                  /* zero-extend the start_info address */
	mov $msg_hello, %esi
	cmpl $HVM_START_MAGIC, (%rbx)
	je 1f
	mov $msg_bad, %esi
1:	call serial_puts
	jmp reset

	GUEST_HELPERS r

	.section .rodata
msg_hello:
	.asciz "Hello from a Skiff guest\n"
msg_bad:
	.asciz "bad start info\n"
