#include "vmm/boot/boot_params.h"

#include <algorithm>
#include <cstring>

#include "vmm/boot/layout.h"

namespace skiff::boot {
namespace {
constexpr uint64_t kPage = 4096;
constexpr uint8_t kLoaderTypeUndefined = 0xff;
}  // namespace

std::vector<E820Entry> e820_map(const GuestMemory& mem, uint64_t ram_end) {
  std::vector<E820Entry> map;
  const auto& regions = mem.regions();
  const auto& low = regions.front();
  map.push_back({0, std::min<uint64_t>(layout::kEbdaStart, low.end()), kE820Ram});
  if (low.end() > layout::kEbdaStart)
    map.push_back({layout::kEbdaStart, std::min<uint64_t>(0xa0000, low.end()) - layout::kEbdaStart, kE820Reserved});
  if (low.end() > layout::kHighMemStart) map.push_back({layout::kHighMemStart, low.end() - layout::kHighMemStart, kE820Ram});
  for (size_t i = 1; i < regions.size() && regions[i].start().value() < ram_end; ++i)
    map.push_back({regions[i].start().value(), regions[i].size(), kE820Ram});
  return map;
}

InitrdPlacement place_initrd(const GuestMemory& mem, uint64_t kernel_end, uint64_t size, uint64_t addr_max) {
  if (size == 0) throw BootImageError("initramfs is empty");
  // Stay in the first region (below the MMIO gap) and below what the kernel can reach.
  uint64_t top = std::min<uint64_t>(mem.regions().front().end(), addr_max + 1);
  if (size > top) throw BootImageError("initramfs of " + std::to_string(size >> 20) + " MiB does not fit in guest RAM");
  uint64_t addr = (top - size) & ~(kPage - 1);
  uint64_t floor = (kernel_end + kPage - 1) & ~(kPage - 1);
  if (addr < floor)
    throw BootImageError("initramfs of " + std::to_string(size >> 20) + " MiB does not fit in guest RAM beside the kernel (raise --memory)");
  return {addr, size};
}

void write_cmdline(const GuestMemory& mem, const std::string& cmdline, uint64_t max_len) {
  max_len = std::min<uint64_t>(max_len, layout::kCmdlineMaxSize - 1);
  if (cmdline.size() > max_len)
    throw BootImageError("kernel command line is " + std::to_string(cmdline.size()) + " bytes; the kernel accepts " +
                         std::to_string(max_len));
  if (cmdline.find('\0') != std::string::npos) throw BootImageError("kernel command line contains a NUL byte");
  mem.write(GuestAddress(layout::kCmdlineAddr),
            std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(cmdline.c_str()), cmdline.size() + 1));
}

boot_params make_zero_page(const std::optional<setup_header>& header, const BootInfo& info) {
  boot_params p;
  std::memset(&p, 0, sizeof p);
  if (header) {
    p.hdr = *header;
  } else {
    // ELF vmlinux entered at its 64-bit entry: synthesize the header fields
    // the kernel reads, as Firecracker does.
    p.hdr.boot_flag = 0xaa55;
    p.hdr.header = 0x53726448;
    p.hdr.kernel_alignment = 0x1000000;
  }
  p.hdr.type_of_loader = kLoaderTypeUndefined;
  p.acpi_rsdp_addr = info.rsdp;
  p.hdr.cmd_line_ptr = static_cast<uint32_t>(layout::kCmdlineAddr);
  p.hdr.cmdline_size = static_cast<uint32_t>(info.cmdline.size() + 1);
  if (info.initrd) {
    p.hdr.ramdisk_image = static_cast<uint32_t>(info.initrd->addr);
    p.hdr.ramdisk_size = static_cast<uint32_t>(info.initrd->size);
    p.ext_ramdisk_image = static_cast<uint32_t>(info.initrd->addr >> 32);
    p.ext_ramdisk_size = static_cast<uint32_t>(info.initrd->size >> 32);
  }
  size_t n = std::min<size_t>(info.e820.size(), E820_MAX_ENTRIES_ZEROPAGE);
  for (size_t i = 0; i < n; ++i) {
    p.e820_table[i].addr = info.e820[i].addr;
    p.e820_table[i].size = info.e820[i].size;
    p.e820_table[i].type = info.e820[i].type;
  }
  p.e820_entries = static_cast<uint8_t>(n);
  return p;
}

void write_zero_page(const GuestMemory& mem, const boot_params& params) {
  mem.write_obj(GuestAddress(layout::kZeroPageAddr), params);
}

void write_pvh_start_info(const GuestMemory& mem, const BootInfo& info) {
  HvmStartInfo si{};
  si.magic = kHvmStartMagic;
  si.version = 1;
  si.cmdline_paddr = layout::kCmdlineAddr;
  si.rsdp_paddr = info.rsdp;
  si.memmap_paddr = layout::kPvhMemmapAddr;
  si.memmap_entries = static_cast<uint32_t>(info.e820.size());
  if (info.initrd) {
    si.nr_modules = 1;
    si.modlist_paddr = layout::kPvhModlistAddr;
    mem.write_obj(GuestAddress(layout::kPvhModlistAddr), HvmModlistEntry{info.initrd->addr, info.initrd->size, 0, 0});
  }
  mem.write_obj(GuestAddress(layout::kPvhStartInfoAddr), si);
  for (size_t i = 0; i < info.e820.size(); ++i) {
    HvmMemmapEntry e{info.e820[i].addr, info.e820[i].size, info.e820[i].type, 0};
    mem.write_obj(GuestAddress(layout::kPvhMemmapAddr + i * sizeof e), e);
  }
}

}  // namespace skiff::boot
