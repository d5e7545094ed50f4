/*
 * virtio_entry.S - PVH entry of virtio.elf: from the 32-bit entry to long
 * mode, then into the C driver (virtio_guest.c).
 *
 * Long mode rather than 32-bit C: ENTER_LONG_MODE already maps the first
 * 4 GiB (the virtio-mmio windows at 0xd1000000 uncached), and the C code can
 * then be built with the compiler's default x86-64 target, no -m32 multilib.
 * guest_main returning means success: an i8042 reset ends the VM.
 */
#include "guest.h"

	PVH_NOTE _start
	GUEST_GDT
	GUEST_STACK 16384
	GUEST_PAGE_TABLES

	.section .text.entry, "ax"
	.code32
	.globl _start
_start:
	PVH_START                       /* also zeroes the C code's .bss */
	ENTER_LONG_MODE long_mode

	.code64
long_mode:
	mov $stack_top, %rsp            /* 16-byte aligned, as the SysV ABI wants before a call */
	call guest_main
	jmp reset

	GUEST_HELPERS r
