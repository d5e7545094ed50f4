#include "vmm/boot/kernel_image.h"

#include <elf.h>

#include <cstdio>
#include <cstring>

#include "vmm/boot/layout.h"
#include "base/hex.h"

namespace skiff::boot {
namespace {

constexpr uint32_t kHdrSMagic = 0x53726448;  // "HdrS"
constexpr uint16_t kBootFlag = 0xaa55;
constexpr uint16_t kMinProtocol = 0x020c;  // 2.12: xloadflags and the 64-bit entry
constexpr uint64_t kSetupHeaderOffset = 0x1f1;
constexpr uint64_t kStartup64Offset = 0x200;
constexpr uint32_t kXenElfnotePhys32Entry = 18;


template <typename T>
T read_at(std::span<const uint8_t> bytes, uint64_t offset, const char* what) {
  if (offset > bytes.size() || bytes.size() - offset < sizeof(T))
    throw BootImageError(std::string("kernel image truncated: ") + what + " at " + hex(offset) + " lies past the end (" +
                         std::to_string(bytes.size()) + " bytes)");
  T v;
  std::memcpy(&v, bytes.data() + offset, sizeof(T));
  return v;
}

void copy_to_guest(const GuestMemory& mem, uint64_t paddr, std::span<const uint8_t> bytes, uint64_t mem_size) {
  if (!mem.contains(GuestAddress(paddr), mem_size))
    throw BootImageError("kernel image does not fit in guest memory: needs [" + hex(paddr) + ", " +
                         hex(paddr + mem_size) + ") but RAM ends at " + hex(mem.regions().front().end()) +
                         " (raise --memory)");
  mem.write(GuestAddress(paddr), bytes);
  if (mem_size > bytes.size()) mem.fill(GuestAddress(paddr + bytes.size()), mem_size - bytes.size(), 0);
}

template <typename Ehdr, typename Phdr, typename Nhdr>
ElfImage parse_elf_class(std::span<const uint8_t> image) {
  auto eh = read_at<Ehdr>(image, 0, "ELF header");
  if (eh.e_machine != EM_X86_64 && eh.e_machine != EM_386)
    throw BootImageError("ELF kernel is not for x86 (e_machine " + std::to_string(eh.e_machine) + ")");
  if (eh.e_phentsize != sizeof(Phdr)) throw BootImageError("ELF kernel has a bad program header size");
  if (eh.e_phnum == 0) throw BootImageError("ELF kernel has no program headers");
  ElfImage out;
  out.elf_entry = eh.e_entry;
  for (unsigned i = 0; i < eh.e_phnum; ++i) {
    auto ph = read_at<Phdr>(image, eh.e_phoff + uint64_t(i) * sizeof(Phdr), "ELF program header");
    if (ph.p_offset > image.size() || ph.p_filesz > image.size() - ph.p_offset)
      throw BootImageError("ELF segment " + std::to_string(i) + " lies past the end of the file");
    auto bytes = image.subspan(ph.p_offset, ph.p_filesz);
    if (ph.p_type == PT_LOAD) {
      if (ph.p_memsz < ph.p_filesz) throw BootImageError("ELF segment " + std::to_string(i) + " has memsz < filesz");
      if (ph.p_memsz == 0) continue;
      out.segments.push_back({ph.p_paddr, bytes, ph.p_memsz});
    } else if (ph.p_type == PT_NOTE) {
      // Walk the notes: 4-byte aligned name and descriptor.
      uint64_t off = 0;
      while (bytes.size() - off >= sizeof(Nhdr)) {
        auto nh = read_at<Nhdr>(bytes, off, "ELF note");
        uint64_t name_off = off + sizeof(Nhdr);
        uint64_t desc_off = name_off + ((uint64_t(nh.n_namesz) + 3) & ~3ull);
        uint64_t next = desc_off + ((uint64_t(nh.n_descsz) + 3) & ~3ull);
        if (next > bytes.size()) throw BootImageError("ELF note runs past its segment");
        if (nh.n_type == kXenElfnotePhys32Entry && nh.n_namesz == 4 && std::memcmp(bytes.data() + name_off, "Xen", 4) == 0) {
          uint64_t entry = 0;
          if (nh.n_descsz == 4) entry = read_at<uint32_t>(bytes, desc_off, "PVH entry");
          else if (nh.n_descsz == 8) entry = read_at<uint64_t>(bytes, desc_off, "PVH entry");
          else throw BootImageError("PVH entry note has a bad size");
          if (entry > UINT32_MAX) throw BootImageError("PVH entry " + hex(entry) + " is above 4 GiB");
          out.pvh_entry = static_cast<uint32_t>(entry);
        }
        off = next;
      }
    }
  }
  if (out.segments.empty()) throw BootImageError("ELF kernel has no loadable segment");
  return out;
}

}  // namespace

bool looks_like_elf(std::span<const uint8_t> image) {
  return image.size() >= SELFMAG && std::memcmp(image.data(), ELFMAG, SELFMAG) == 0;
}

BzImage parse_bzimage(std::span<const uint8_t> image) {
  if (image.size() < 1024) throw BootImageError("kernel image truncated: " + std::to_string(image.size()) + " bytes");
  if (read_at<uint16_t>(image, 0x1fe, "boot flag") != kBootFlag)
    throw BootImageError("not a Linux kernel image: no 0xAA55 boot flag (expected a bzImage or an ELF vmlinux)");
  if (read_at<uint32_t>(image, 0x202, "header magic") != kHdrSMagic)
    throw BootImageError("not a bzImage: setup header magic \"HdrS\" missing");

  BzImage bz;
  // The header's real length is given by the jump at 0x200; copy no further
  // than that so fields the kernel doesn't have stay zero.
  uint64_t header_end = 0x202 + read_at<uint8_t>(image, 0x201, "setup jump");
  uint64_t copy = std::min<uint64_t>(sizeof(setup_header), header_end - kSetupHeaderOffset);
  std::memcpy(&bz.header, image.data() + kSetupHeaderOffset, copy);
  const auto& h = bz.header;

  if (h.version < kMinProtocol) {
    char v[16];
    std::snprintf(v, sizeof v, "%u.%02u", h.version >> 8, h.version & 0xff);
    throw BootImageError(std::string("bzImage boot protocol ") + v + " is too old: Skiff needs 2.12 or later");
  }
  if (!(h.loadflags & LOADED_HIGH)) throw BootImageError("bzImage is a zImage (not LOADED_HIGH): unsupported");
  if (!(h.xloadflags & XLF_KERNEL_64)) throw BootImageError("bzImage has no 64-bit entry point (XLF_KERNEL_64)");
  if (h.relocatable_kernel) {
    uint32_t a = h.kernel_alignment;
    if (a == 0 || (a & (a - 1)) || a < 4096)
      throw BootImageError("bzImage kernel_alignment " + hex(a) + " is not a power of two of at least 4 KiB");
  }
  uint64_t sects = h.setup_sects ? h.setup_sects : 4;  // 0 means 4, as the protocol says
  bz.setup_size = (sects + 1) * 512;
  if (bz.setup_size >= image.size())
    throw BootImageError("kernel image truncated: setup of " + std::to_string(bz.setup_size) + " bytes, file has " +
                         std::to_string(image.size()));
  uint64_t pm_size = image.size() - bz.setup_size;
  if (h.syssize && uint64_t(h.syssize) * 16 > pm_size + 15)
    throw BootImageError("kernel image truncated: header says " + std::to_string(uint64_t(h.syssize) * 16) +
                         " bytes of kernel, file has " + std::to_string(pm_size));
  if (pm_size <= kStartup64Offset) throw BootImageError("kernel image truncated: no room for the 64-bit entry");
  bz.protected_mode = image.subspan(bz.setup_size);
  return bz;
}

ElfImage parse_elf(std::span<const uint8_t> image) {
  if (!looks_like_elf(image)) throw BootImageError("not an ELF file");
  if (image.size() < EI_NIDENT) throw BootImageError("ELF kernel truncated");
  if (image[EI_DATA] != ELFDATA2LSB) throw BootImageError("ELF kernel is not little-endian");
  if (image[EI_CLASS] == ELFCLASS64) return parse_elf_class<Elf64_Ehdr, Elf64_Phdr, Elf64_Nhdr>(image);
  if (image[EI_CLASS] == ELFCLASS32) return parse_elf_class<Elf32_Ehdr, Elf32_Phdr, Elf32_Nhdr>(image);
  throw BootImageError("ELF kernel has an unknown class");
}

LoadedKernel load_kernel(const GuestMemory& mem, std::span<const uint8_t> image) {
  if (image.empty()) throw BootImageError("kernel image is empty");
  LoadedKernel k;
  if (looks_like_elf(image)) {
    auto elf = parse_elf(image);
    for (const auto& s : elf.segments) {
      if (s.paddr < layout::kHighMemStart)
        throw BootImageError("ELF segment at " + hex(s.paddr) + " overlaps the VMM's boot data below 1 MiB");
      copy_to_guest(mem, s.paddr, s.file_bytes, s.mem_size);
      k.end = std::max(k.end, s.paddr + s.mem_size);
    }
    if (elf.pvh_entry) {
      k.mode = EntryMode::Pvh32;
      k.entry = *elf.pvh_entry;
    } else {
      k.mode = EntryMode::Linux64;
      k.entry = elf.elf_entry;
    }
    return k;
  }
  auto bz = parse_bzimage(image);
  // The decompressor needs init_size bytes from the load address.
  uint64_t footprint = std::max<uint64_t>(bz.protected_mode.size(), bz.header.init_size);
  copy_to_guest(mem, layout::kKernelLoadAddr, bz.protected_mode, bz.protected_mode.size());
  if (!mem.contains(GuestAddress(layout::kKernelLoadAddr), footprint))
    throw BootImageError("kernel needs " + std::to_string(footprint >> 20) + " MiB from 1 MiB to decompress; guest RAM is too small");
  k.mode = EntryMode::Linux64;
  k.entry = layout::kKernelLoadAddr + kStartup64Offset;
  k.end = layout::kKernelLoadAddr + footprint;
  k.header = bz.header;
  return k;
}

}  // namespace skiff::boot
