/*
 * hello.bzImage - the hello program as a minimal Linux bzImage, to exercise
 * the VMM's 64-bit Linux boot protocol path.
 *
 * Layout (see bzimage.ld):
 *   0x000 boot sector: just halts if anything ever runs it
 *   0x1f1 setup header, boot protocol 2.15
 *   0x26c 16-bit setup code: only used by loaders that run the real-mode
 *         setup (QEMU -kernel); enters protected mode and jumps to
 *         code32_start like Linux's setup does
 *   (setup_sects + 1) * 512: the protected-mode part, loaded at 0x100000
 *     +0x000 startup_32: 32-bit boot protocol entry (%esi = boot_params);
 *            assumes it was loaded at code32_start = 0x100000; switches to
 *            long mode and continues at startup_64
 *     +0x200 startup_64: 64-bit boot protocol entry (long mode, identity
 *            map, %rsi = boot_params). Position-independent (RIP-relative
 *            only), so the kernel may be loaded anywhere.
 * startup_64 prints "Hello from a Skiff bzImage\n" on COM1 if
 * boot_params.hdr.boot_flag (offset 0x1fe) is 0xaa55, else
 * "bad zero page\n", then resets through the i8042.
 */
#include "guest.h"

#define SETUP_SECTS 4

	.section .setup, "ax"
	.code16
bootsect:
1:	cli                             /* not bootable from a disk */
	hlt
	jmp 1b

	.org 0x1f1
setup_sects:		.byte SETUP_SECTS
root_flags:		.word 0
syssize:		.long _syssize          /* pm part size / 16 */
ram_size:		.word 0
vid_mode:		.word 0xffff            /* "normal" */
root_dev:		.word 0
boot_flag:		.word 0xaa55
	/* 0x200 */
jump:			.byte 0xeb, setup_start - 1f  /* short jmp over the header */
1:
header:			.ascii "HdrS"
version:		.word 0x020f
realmode_swtch:		.long 0
start_sys_seg:		.word 0x1000
kernel_version:		.word version_str - 0x200
type_of_loader:		.byte 0
loadflags:		.byte 0x01              /* LOADED_HIGH: pm part at 1 MiB */
setup_move_size:	.word 0x8000
code32_start:		.long 0x100000
ramdisk_image:		.long 0
ramdisk_size:		.long 0
bootsect_kludge:	.long 0
heap_end_ptr:		.word 0
ext_loader_ver:		.byte 0
ext_loader_type:	.byte 0
cmd_line_ptr:		.long 0
initrd_addr_max:	.long 0x7fffffff
kernel_alignment:	.long 0x200000
relocatable_kernel:	.byte 1
min_alignment:		.byte 12                /* log2: any 4 KiB boundary will do */
xloadflags:		.word 0x3               /* XLF_KERNEL_64 | XLF_CAN_BE_LOADED_ABOVE_4G */
cmdline_size:		.long 4096
hardware_subarch:	.long 0
hardware_subarch_data:	.quad 0
payload_offset:		.long 0
payload_length:		.long 0
setup_data:		.quad 0
pref_address:		.quad 0x1000000
init_size:		.long _init_size        /* pm part + .bss, page-rounded */
handover_offset:	.long 0
kernel_info_offset:	.long 0                 /* none */

	/* 0x26c: real-mode setup, entered at (ds + 0x20):0 via "jump" with
	 * ds = es = ss = segment of this image, which is also where the loader
	 * filled in boot_params. */
setup_start:
	cli
	cld
	mov %ds, %ax
	movzwl %ax, %esi
	shl $4, %esi                    /* %esi = linear address of boot_params */
	lea setup_gdt(%esi), %eax       /* patch linear addresses in, as we do not */
	mov %eax, setup_gdt_desc + 2    /* know where the loader put us */
	lea setup_pm(%esi), %eax
	mov %eax, setup_pm_ptr
	lgdtl setup_gdt_desc
	mov %cr0, %eax
	or $1, %eax                     /* CR0.PE */
	mov %eax, %cr0
	ljmpl *setup_pm_ptr

	.code32
setup_pm:
	mov $SEL_DATA, %eax
	mov %eax, %ds
	mov %eax, %es
	mov %eax, %ss
	mov %eax, %fs
	mov %eax, %gs
	jmp *0x214(%esi)                /* code32_start, %esi = boot_params */

	.balign 8
setup_gdt:
	.quad 0
	.quad 0x00cf9b000000ffff        /* 0x08: 32-bit code, flat */
	.quad 0x00cf93000000ffff        /* 0x10: data, flat */
setup_gdt_end:
setup_gdt_desc:
	.word setup_gdt_end - setup_gdt - 1
	.long 0                         /* patched: linear address of setup_gdt */
setup_pm_ptr:
	.long 0                         /* patched: linear address of setup_pm */
	.word SEL_CODE32
version_str:
	.asciz "Skiff test bzImage"

	.org (SETUP_SECTS + 1) * 512    /* the setup part ends here */

	.section .pm, "ax"
	.code32
	.globl startup_32, startup_64
startup_32:
	PVH_START                       /* GDT, segments, stack, .bss; keeps %esi */
	ENTER_LONG_MODE startup_32_64

	.org 0x200
	.code64
startup_64:
	cli
	cld
	lea stack_top(%rip), %rsp
	cmpw $0xaa55, 0x1fe(%rsi)       /* boot_params.hdr.boot_flag */
	lea msg_hello(%rip), %rsi       /* (lea leaves the flags alone) */
	je 1f
	lea msg_bad(%rip), %rsi
1:	call serial_puts
	jmp reset

startup_32_64:
	mov %esi, %esi                  /* zero-extend boot_params */
	jmp startup_64

	GUEST_HELPERS r

msg_hello:
	.asciz "Hello from a Skiff bzImage\n"
msg_bad:
	.asciz "bad zero page\n"

	GUEST_GDT                       /* for startup_32 */
	GUEST_STACK 4096
	GUEST_PAGE_TABLES               /* for startup_32 */
