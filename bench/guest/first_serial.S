/*
 * first_serial.elf - a PVH guest whose first port write puts one byte ('!')
 * on COM1, so a parent reading the VMM's stdout sees the guest's first
 * instruction without waiting for the VMM to exit. Then it ends the VMM:
 * 0xf4 for QEMU's isa-debug-exit (exit status 3), and, since Skiff leaves
 * 0xf4 unclaimed, 0xfe to the i8042 for Skiff (exit status 3).
 */
#include "guest.h"  /* tests/guest: PVH_NOTE */

	PVH_NOTE _start

	.section .text.entry, "ax"
	.code32
	.globl _start
_start:
	mov $0x3f8, %dx
	mov $'!', %al
	out %al, %dx                    /* COM1 THR */
	mov $1, %al
	out %al, $0xf4                  /* QEMU: isa-debug-exit */
	mov $0xfe, %al
	out %al, $0x64                  /* Skiff: i8042 reset */
1:	cli
	hlt
	jmp 1b
