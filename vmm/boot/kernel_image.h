#pragma once
// Kernel images Skiff boots: a bzImage (Linux 64-bit boot protocol, entered
// in long mode with a zero page) or an ELF vmlinux (entered through its PVH
// note in 32-bit protected mode with an hvm_start_info; an ELF without the
// note is entered at e_entry with the 64-bit protocol, as Firecracker does).
#include <asm/bootparam.h>

#include <cstdint>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

#include "memory/guest_memory.h"

namespace skiff::boot {

class BootImageError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct BzImage {
  setup_header header{};                        // as in the image, validated
  std::span<const uint8_t> protected_mode;      // loaded at 1 MiB
  uint64_t setup_size = 0;                      // (setup_sects + 1) * 512
};

// Validates the setup header: boot flag, "HdrS" magic, protocol version
// (2.12 or later, for the 64-bit entry), LOADED_HIGH, XLF_KERNEL_64, kernel
// alignment of a relocatable kernel, and sizes against the file.
BzImage parse_bzimage(std::span<const uint8_t> image);

struct ElfSegment {
  uint64_t paddr = 0;
  std::span<const uint8_t> file_bytes;
  uint64_t mem_size = 0;  // >= file_bytes.size(); the rest is zeroed
};

struct ElfImage {
  std::vector<ElfSegment> segments;
  uint64_t elf_entry = 0;                 // e_entry
  std::optional<uint32_t> pvh_entry;      // XEN_ELFNOTE_PHYS32_ENTRY
};

// ELF32 or ELF64 for x86; PT_LOAD segments and the PVH note are checked
// against the file size.
ElfImage parse_elf(std::span<const uint8_t> image);

enum class EntryMode { Linux64, Pvh32 };

struct LoadedKernel {
  EntryMode mode = EntryMode::Linux64;
  uint64_t entry = 0;
  uint64_t end = 0;                 // one past the highest byte the kernel occupies (incl. init_size)
  std::optional<setup_header> header;  // bzImage only
};

bool looks_like_elf(std::span<const uint8_t> image);

// Copies the kernel into guest memory. Throws BootImageError naming the
// problem: bad format, or an image that does not fit the guest's RAM.
LoadedKernel load_kernel(const GuestMemory& mem, std::span<const uint8_t> image);

}  // namespace skiff::boot
