/*
 * first_reset.elf - a PVH guest whose first port write asks the i8042 for a
 * CPU reset (0xfe to port 0x64), which ends `skiff boot` with exit status 3.
 */
#include "guest.h"  /* tests/guest: PVH_NOTE */

	PVH_NOTE _start

	.section .text.entry, "ax"
	.code32
	.globl _start
_start:
	mov $0xfe, %al
	out %al, $0x64
1:	cli
	hlt
	jmp 1b
