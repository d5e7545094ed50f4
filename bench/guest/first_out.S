/*
 * first_out.elf - a PVH guest whose first port write is to 0xf4.
 *
 * Under QEMU, `-device isa-debug-exit,iobase=0xf4,iosize=1` ends QEMU at that
 * write (exit status (1 << 1) | 1 = 3). Under Skiff, skiff_bench_startup puts
 * a device on 0xf4 that timestamps the write and stops the VM; under
 * `skiff boot` the port is unclaimed, so the guest goes on and halts for ever
 * with interrupts off (a halted vCPU burns no host CPU), which is what the
 * memory-overhead measurement wants.
 */
#include "guest.h"  /* tests/guest: PVH_NOTE */

	PVH_NOTE _start

	.section .text.entry, "ax"
	.code32
	.globl _start
_start:
	mov $1, %al
	out %al, $0xf4
1:	cli
	hlt
	jmp 1b
