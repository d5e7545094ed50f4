// Zero page, e820 map, command line, initramfs placement and PVH start info,
// checked against the offsets of the Linux boot protocol
// (Documentation/arch/x86/boot.rst, zero-page.rst) and the PVH ABI.
#include "vmm/boot/boot_params.h"

#include <gtest/gtest.h>

#include <cstring>

#include "vmm/boot/layout.h"

namespace skiff::boot {
namespace {

constexpr uint64_t kMiB = 1 << 20;

template <typename T>
T field_at(const boot_params& p, size_t offset) {
  T v;
  std::memcpy(&v, reinterpret_cast<const uint8_t*>(&p) + offset, sizeof v);
  return v;
}

TEST(E820, SmallGuestHasLowRamEbdaAndHighRam) {
  auto mem = GuestMemory::create(layout::ram_regions(128 * kMiB));
  auto map = e820_map(mem);
  ASSERT_EQ(map.size(), 3u);
  EXPECT_EQ(map[0], (E820Entry{0, 0x9fc00, kE820Ram}));
  EXPECT_EQ(map[1], (E820Entry{0x9fc00, 0x400, kE820Reserved}));
  EXPECT_EQ(map[2], (E820Entry{0x100000, 127 * kMiB, kE820Ram}));
}

TEST(E820, LargeGuestSkipsTheMmioGap) {
  auto mem = GuestMemory::create(layout::ram_regions(4096 * kMiB));
  auto map = e820_map(mem);
  ASSERT_EQ(map.size(), 4u);
  EXPECT_EQ(map[2], (E820Entry{0x100000, layout::kMmioGapStart - 0x100000, kE820Ram}));
  EXPECT_EQ(map[3], (E820Entry{1ull << 32, 4096 * kMiB - layout::kMmioGapStart, kE820Ram}));
  for (const auto& e : map) EXPECT_FALSE(e.addr < layout::kMmioGapEnd && e.addr + e.size > layout::kMmioGapStart);
}

// virtio-mem's hotplug region: above RAM and 4 GiB, on 128 MiB boundaries,
// its own region of guest memory but not RAM the e820 map reports.
TEST(E820, TheHotplugRegionIsNotInTheMap) {
  const auto hp = layout::hotplug_region(128 * kMiB, 256 * kMiB);
  EXPECT_EQ(hp.start.value(), layout::kMmioGapEnd);
  EXPECT_EQ(hp.size, 256 * kMiB);
  auto specs = layout::ram_regions(128 * kMiB);
  specs.push_back(hp);
  auto mem = GuestMemory::create(specs);
  const auto map = e820_map(mem, hp.start.value());
  ASSERT_EQ(map.size(), 3u);
  EXPECT_EQ(map[2], (E820Entry{0x100000, 127 * kMiB, kE820Ram}));
  EXPECT_EQ(e820_map(mem).size(), 4u) << "without the bound every region is RAM";

  // RAM past the gap: the region starts above it, on the next 128 MiB.
  const auto big = layout::hotplug_region(3100 * kMiB, 130 * kMiB);
  EXPECT_EQ(big.start.value(), layout::kMmioGapEnd + 128 * kMiB);  // RAM ends at 4 GiB + 28 MiB
  EXPECT_EQ(big.size, 256 * kMiB) << "rounded up to whole memory blocks";
  auto big_specs = layout::ram_regions(3100 * kMiB);
  big_specs.push_back(big);
  auto big_mem = GuestMemory::create(big_specs);
  const auto big_map = e820_map(big_mem, big.start.value());
  ASSERT_EQ(big_map.size(), 4u);
  EXPECT_EQ(big_map[3], (E820Entry{1ull << 32, 28 * kMiB, kE820Ram}));
  EXPECT_EQ(layout::hotplug_region(4096 * kMiB, 2 * kMiB).start.value(), (5ull << 30));
}

TEST(ZeroPage, FieldsSitAtTheBootProtocolOffsets) {
  setup_header hdr{};
  hdr.boot_flag = 0xaa55;
  hdr.header = 0x53726448;
  hdr.version = 0x020f;
  hdr.loadflags = LOADED_HIGH;
  BootInfo info;
  info.cmdline = "console=ttyS0";
  info.initrd = InitrdPlacement{0x7000000, 0x123456};
  info.e820 = {{0, 0x9fc00, kE820Ram}, {0x100000, 0x7f00000, kE820Ram}};
  auto p = make_zero_page(hdr, info);

  static_assert(sizeof(boot_params) == 4096);
  EXPECT_EQ(field_at<uint8_t>(p, 0x1e8), 2);                      // e820_entries
  EXPECT_EQ(field_at<uint16_t>(p, 0x1fe), 0xaa55);                // hdr.boot_flag
  EXPECT_EQ(field_at<uint32_t>(p, 0x202), 0x53726448u);           // hdr.header "HdrS"
  EXPECT_EQ(field_at<uint16_t>(p, 0x206), 0x020f);                // hdr.version
  EXPECT_EQ(field_at<uint8_t>(p, 0x210), 0xff);                   // type_of_loader: undefined
  EXPECT_EQ(field_at<uint8_t>(p, 0x211) & LOADED_HIGH, LOADED_HIGH);
  EXPECT_EQ(field_at<uint32_t>(p, 0x218), 0x7000000u);            // ramdisk_image
  EXPECT_EQ(field_at<uint32_t>(p, 0x21c), 0x123456u);             // ramdisk_size
  EXPECT_EQ(field_at<uint32_t>(p, 0x228), layout::kCmdlineAddr);  // cmd_line_ptr
  EXPECT_EQ(field_at<uint64_t>(p, 0x2d0 + 20), 0x100000u);        // e820_table[1].addr
  EXPECT_EQ(field_at<uint64_t>(p, 0x2d0 + 28), 0x7f00000u);       // e820_table[1].size
  EXPECT_EQ(field_at<uint32_t>(p, 0x2d0 + 36), kE820Ram);         // e820_table[1].type
}

TEST(ZeroPage, ElfWithoutSetupHeaderGetsTheFieldsLinuxChecks) {
  BootInfo info;
  info.cmdline = "x";
  auto p = make_zero_page(std::nullopt, info);
  EXPECT_EQ(p.hdr.boot_flag, 0xaa55);
  EXPECT_EQ(p.hdr.header, 0x53726448u);
  EXPECT_EQ(p.hdr.ramdisk_image, 0u);
  EXPECT_EQ(p.hdr.cmdline_size, 2u);
}

TEST(Cmdline, WrittenNulTerminatedAndLengthChecked) {
  auto mem = GuestMemory::create(layout::ram_regions(16 * kMiB));
  write_cmdline(mem, "console=ttyS0 panic=1", 255);
  char buf[32] = {};
  mem.read(GuestAddress(layout::kCmdlineAddr), std::span<uint8_t>(reinterpret_cast<uint8_t*>(buf), 22));
  EXPECT_STREQ(buf, "console=ttyS0 panic=1");
  EXPECT_THROW(write_cmdline(mem, std::string(256, 'a'), 255), BootImageError);
  EXPECT_NO_THROW(write_cmdline(mem, std::string(255, 'a'), 255));
  EXPECT_THROW(write_cmdline(mem, std::string("a\0b", 3), 255), BootImageError);
}

TEST(Initrd, PlacedAtTheTopBelowTheKernelLimit) {
  auto mem = GuestMemory::create(layout::ram_regions(128 * kMiB));
  auto p = place_initrd(mem, 0x200000, 0x1800, 0x7fffffff);
  EXPECT_EQ(p.addr, 128 * kMiB - 0x2000);  // page-aligned down
  EXPECT_EQ(p.size, 0x1800u);
  EXPECT_EQ(p.addr % 4096, 0u);
  // initrd_addr_max below the end of RAM caps it.
  auto capped = place_initrd(mem, 0x200000, 0x1000, 64 * kMiB - 1);
  EXPECT_EQ(capped.addr, 64 * kMiB - 0x1000);
  EXPECT_THROW(place_initrd(mem, 0x200000, 127 * kMiB, 0x7fffffff), BootImageError);  // collides with kernel
  EXPECT_THROW(place_initrd(mem, 0x200000, 0, 0x7fffffff), BootImageError);
  EXPECT_THROW(place_initrd(mem, 0x200000, 1ull << 40, 0x7fffffff), BootImageError);
}

TEST(Pvh, StartInfoModuleAndMemmap) {
  auto mem = GuestMemory::create(layout::ram_regions(64 * kMiB));
  BootInfo info;
  info.cmdline = "quiet";
  info.initrd = InitrdPlacement{0x3000000, 0x5000};
  info.e820 = e820_map(mem);
  write_pvh_start_info(mem, info);
  auto si = mem.read_obj<HvmStartInfo>(GuestAddress(layout::kPvhStartInfoAddr));
  EXPECT_EQ(si.magic, kHvmStartMagic);
  EXPECT_EQ(si.version, 1u);
  EXPECT_EQ(si.nr_modules, 1u);
  EXPECT_EQ(si.cmdline_paddr, layout::kCmdlineAddr);
  EXPECT_EQ(si.memmap_entries, info.e820.size());
  auto mod = mem.read_obj<HvmModlistEntry>(GuestAddress(si.modlist_paddr));
  EXPECT_EQ(mod.paddr, 0x3000000u);
  EXPECT_EQ(mod.size, 0x5000u);
  for (size_t i = 0; i < info.e820.size(); ++i) {
    auto e = mem.read_obj<HvmMemmapEntry>(GuestAddress(si.memmap_paddr + i * sizeof(HvmMemmapEntry)));
    EXPECT_EQ(e.addr, info.e820[i].addr);
    EXPECT_EQ(e.size, info.e820[i].size);
    EXPECT_EQ(e.type, info.e820[i].type);
  }
  // The PVH tables stay clear of the AP trampoline page at 0x8000.
  EXPECT_LE(si.memmap_paddr + si.memmap_entries * sizeof(HvmMemmapEntry), 0x8000u);
}

}  // namespace
}  // namespace skiff::boot
