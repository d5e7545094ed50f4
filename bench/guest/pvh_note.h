/*
 * pvh_note.h - the Xen PVH ELF note shared by the bench guests.
 *
 * XEN_ELFNOTE_PHYS32_ENTRY (type 18, name "Xen"): the 32-bit physical entry
 * point. The VMM enters it in 32-bit protected mode with paging off.
 */
#ifndef SKIFF_BENCH_GUEST_PVH_NOTE_H
#define SKIFF_BENCH_GUEST_PVH_NOTE_H

#define XEN_ELFNOTE_PHYS32_ENTRY 18

.macro PVH_NOTE entry
	.pushsection .note.Xen, "a", @note
	.balign 4
	.long 4                         /* namesz: "Xen\0" */
	.long 4                         /* descsz: one 32-bit address */
	.long XEN_ELFNOTE_PHYS32_ENTRY
	.asciz "Xen"
	.long \entry
	.popsection
.endm

#endif
