#pragma once
// What the VMM hands the kernel besides the image: command line, initramfs,
// the e820 memory map, and either the Linux zero page (boot_params) or the
// PVH hvm_start_info.
#include <asm/bootparam.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "vmm/boot/kernel_image.h"
#include "memory/guest_memory.h"

namespace skiff::boot {

inline constexpr uint32_t kE820Ram = 1;
inline constexpr uint32_t kE820Reserved = 2;

struct E820Entry {
  uint64_t addr;
  uint64_t size;
  uint32_t type;
  bool operator==(const E820Entry&) const = default;
};

// RAM below the EBDA, RAM from 1 MiB, RAM above 4 GiB; the EBDA (MP table)
// is reported reserved. Regions from `ram_end` up are device memory (the
// virtio-mem hotplug region, layout::hotplug_region) and left out.
std::vector<E820Entry> e820_map(const GuestMemory& mem, uint64_t ram_end = UINT64_MAX);

struct InitrdPlacement {
  uint64_t addr = 0;
  uint64_t size = 0;
};

// Highest page-aligned address in the first RAM region, below `addr_max`
// (the kernel's initrd_addr_max), above the kernel. Throws BootImageError when
// the initramfs does not fit.
InitrdPlacement place_initrd(const GuestMemory& mem, uint64_t kernel_end, uint64_t size, uint64_t addr_max);

// Writes the NUL-terminated command line at layout::kCmdlineAddr. Throws
// BootImageError when it is longer than `max_len` (the kernel's cmdline_size).
void write_cmdline(const GuestMemory& mem, const std::string& cmdline, uint64_t max_len);

struct BootInfo {
  std::string cmdline;
  uint64_t rsdp = 0;  // ACPI RSDP, 0 when there are no ACPI tables
  std::optional<InitrdPlacement> initrd;
  std::vector<E820Entry> e820;
};

// The zero page for the 64-bit Linux boot protocol. `header` is the bzImage's
// setup header (nullopt for an ELF vmlinux without a PVH note).
boot_params make_zero_page(const std::optional<setup_header>& header, const BootInfo& info);

// hvm_start_info and friends, per xen/include/public/arch-x86/hvm/start_info.h.
inline constexpr uint32_t kHvmStartMagic = 0x336ec578;
struct HvmStartInfo {
  uint32_t magic;
  uint32_t version;
  uint32_t flags;
  uint32_t nr_modules;
  uint64_t modlist_paddr;
  uint64_t cmdline_paddr;
  uint64_t rsdp_paddr;
  uint64_t memmap_paddr;
  uint32_t memmap_entries;
  uint32_t reserved;
};
struct HvmModlistEntry {
  uint64_t paddr;
  uint64_t size;
  uint64_t cmdline_paddr;
  uint64_t reserved;
};
struct HvmMemmapEntry {
  uint64_t addr;
  uint64_t size;
  uint32_t type;
  uint32_t reserved;
};
static_assert(sizeof(HvmStartInfo) == 56 && sizeof(HvmModlistEntry) == 32 && sizeof(HvmMemmapEntry) == 24);

// Writes the zero page at layout::kZeroPageAddr, or the start info, module
// list and memory map at their layout addresses.
void write_zero_page(const GuestMemory& mem, const boot_params& params);
void write_pvh_start_info(const GuestMemory& mem, const BootInfo& info);

}  // namespace skiff::boot
