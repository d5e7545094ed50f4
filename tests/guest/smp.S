/*
 * smp.elf - start every enabled vCPU listed in the MP table.
 *
 * BSP (32-bit protected mode, paging off):
 *   find the MP floating pointer ("_MP_", valid checksum) in the EBDA
 *   (0x9fc00-0x9ffff) or the BIOS area (0xf0000-0xfffff); none, or no
 *   configuration table: report 0xdead0001 and reset
 *   software-enable the local APIC (SVR = 0x1ff)
 *   report 0x100 | own APIC id
 *   copy the AP trampoline to 0x8000; for each enabled processor entry (N in
 *   all, the BSP included) other than itself: INIT, SIPI, SIPI (vector 0x08)
 *   wait until N-1 APs have checked in, report 0x200 | N, reset
 * AP (real mode at 0x8000 -> 32-bit protected mode):
 *   report 0x100 | APIC id (CPUID.1:EBX[31:24]), lock incl ap_count,
 *   then cli; hlt forever
 */
#include "guest.h"

#define TRAMPOLINE 0x8000               /* free page below 1 MiB; SIPI vector 0x08 */
#define AP_STACK_SIZE 256
#define MAX_APS 256

#define MP_FP_SIG 0x5f504d5f            /* "_MP_" */
#define MP_CFG_SIG 0x504d4350           /* "PCMP" */
#define MP_CFG_ENTRY_COUNT 34
#define MP_CFG_ENTRIES 44
#define MP_PROCESSOR 0                  /* entry type: processor, 20 bytes */
#define MP_LAST_TYPE 4                  /* types 1..4 are 8 bytes long */

#define ICR_INIT 0x00004500             /* INIT, assert */
#define ICR_STARTUP (0x00004600 | (TRAMPOLINE >> 12))
#define ICR_BUSY 0x00001000             /* delivery status */

	PVH_NOTE _start
	GUEST_GDT
	GUEST_STACK 4096

	.section .text.entry, "ax"
	.code32
	.globl _start
_start:
	PVH_START                       /* also zeroes ap_count */

	mov $0x9fc00, %esi              /* EBDA, where the VMM puts it */
	mov $0xa0000, %edi
	call scan_mp
	test %esi, %esi
	jnz 1f
	mov $0xf0000, %esi              /* BIOS area, where SeaBIOS puts it */
	mov $0x100000, %edi
	call scan_mp
	test %esi, %esi
	jz no_mp
1:	mov 4(%esi), %esi               /* -> MP configuration table */
	test %esi, %esi
	jz no_mp                        /* "default configuration": no table */
	cmpl $MP_CFG_SIG, (%esi)
	jne no_mp

	/* Software-enable our local APIC before sending IPIs, as firmware and
	 * OSes do (KVM also refreshes its APIC-id map when this changes). */
	movl $0x1ff, LAPIC_BASE + LAPIC_SVR     /* enable, spurious vector 0xff */

	mov $1, %eax                    /* %ebx = our APIC id */
	cpuid
	shr $24, %ebx
	mov %ebx, %eax
	or $0x100, %eax
	REPORT

	push %esi
	mov $ap_trampoline, %esi
	mov $TRAMPOLINE, %edi
	mov $(ap_trampoline_end - ap_trampoline), %ecx
	rep movsb
	pop %esi

	/* Walk the table: %esi = entry, %edi = entries left, %ebp = N. */
	movzwl MP_CFG_ENTRY_COUNT(%esi), %edi
	add $MP_CFG_ENTRIES, %esi
	xor %ebp, %ebp
2:	test %edi, %edi
	jz 5f
	dec %edi
	movzbl (%esi), %eax
	cmp $MP_PROCESSOR, %eax
	jne 4f
	testb $1, 3(%esi)               /* cpu flags: enabled */
	jz 3f
	inc %ebp
	movzbl 1(%esi), %eax            /* local APIC id */
	cmp %ebx, %eax
	je 3f
	call start_ap
3:	add $20, %esi
	jmp 2b
4:	cmp $MP_LAST_TYPE, %eax
	ja 5f                           /* unknown entry type: size unknown, stop */
	add $8, %esi
	jmp 2b

5:	lea -1(%ebp), %ecx              /* wait for the N-1 APs */
6:	cmp %ecx, ap_count
	je 7f
	pause
	jmp 6b
7:	mov %ebp, %eax
	or $0x200, %eax
	REPORT
	jmp reset

no_mp:
	REPORT_IMM 0xdead0001
	jmp reset

/*
 * scan_mp: look for a valid MP floating pointer in [%esi, %edi), 16-byte
 * aligned. Returns its address in %esi, or 0. Clobbers %eax, %ecx.
 */
scan_mp:
1:	cmp %edi, %esi
	jae 4f
	cmpl $MP_FP_SIG, (%esi)
	jne 3f
	xor %eax, %eax                  /* the 16 bytes must sum to 0 */
	mov $16, %ecx
2:	add -1(%esi, %ecx), %al
	loop 2b
	test %al, %al
	jz 5f
3:	add $16, %esi
	jmp 1b
4:	xor %esi, %esi
5:	ret

/* start_ap: INIT-SIPI-SIPI the CPU whose APIC id is %eax. Clobbers %eax, %ecx, %edx. */
start_ap:
	shl $24, %eax
	mov %eax, LAPIC_BASE + LAPIC_ICR_HI
	mov $ICR_INIT, %eax
	call send_ipi
	mov $100000, %ecx
	call delay
	mov $ICR_STARTUP, %eax
	call send_ipi
	mov $10000, %ecx
	call delay
	mov $ICR_STARTUP, %eax          /* the second SIPI is ignored if the first worked */
	call send_ipi
	mov $10000, %ecx
	jmp delay

/* send_ipi: write %eax to ICR low and wait until it is delivered. */
send_ipi:
	mov %eax, LAPIC_BASE + LAPIC_ICR_LO
1:	testl $ICR_BUSY, LAPIC_BASE + LAPIC_ICR_LO
	jz 2f
	pause
	jmp 1b
2:	ret

/* delay: spin %ecx times (no timer needed; only has to be roughly ordered). */
delay:
1:	loop 1b
	ret

/* AP, after the trampoline: 32-bit protected mode, flat segments. */
ap_start32:
	mov $SEL_DATA, %eax
	mov %eax, %ds
	mov %eax, %es
	mov %eax, %ss
	mov %eax, %fs
	mov %eax, %gs
	mov $1, %eax                    /* take the next AP stack */
	lock xadd %eax, ap_next_stack
	and $(MAX_APS - 1), %eax
	inc %eax                        /* stacks grow down: use the slot's end */
	imul $AP_STACK_SIZE, %eax
	add $ap_stacks, %eax
	mov %eax, %esp

	mov $1, %eax
	cpuid
	shr $24, %ebx
	mov %ebx, %eax
	or $0x100, %eax
	REPORT                          /* before checking in, so the BSP's final
	                                   report comes after all of these */
	lock incl ap_count
1:	cli
	hlt
	jmp 1b

/*
 * The AP trampoline, copied to TRAMPOLINE. A SIPI with vector 0x08 starts the
 * AP in real mode at 0x0800:0000; it loads the GDT below (its own, inside the
 * page, as real mode can only address that) and jumps into the image.
 */
	.balign 16
	.code16
ap_trampoline:
	cli
	mov %cs, %ax
	mov %ax, %ds
	lgdtl ap_gdt_desc - ap_trampoline
	mov %cr0, %eax
	or $1, %eax                     /* CR0.PE */
	mov %eax, %cr0
	ljmpl $SEL_CODE32, $ap_start32
	.balign 8
ap_gdt:
	.quad 0
	.quad 0x00cf9b000000ffff        /* 0x08: 32-bit code, flat */
	.quad 0x00cf93000000ffff        /* 0x10: data, flat */
ap_gdt_end:
ap_gdt_desc:
	.word ap_gdt_end - ap_gdt - 1
	.long TRAMPOLINE + (ap_gdt - ap_trampoline)
ap_trampoline_end:
	.code32

	GUEST_HELPERS e

	.section .bss
	.balign 4
ap_count:
	.long 0
ap_next_stack:
	.long 0
	.balign 16
ap_stacks:
	.skip MAX_APS * AP_STACK_SIZE
