#include "vmm/boot/mptable.h"

#include <gtest/gtest.h>

#include <cstring>

#include "vmm/boot/layout.h"

namespace skiff::boot {
namespace {

uint8_t sum(const std::vector<uint8_t>& v) {
  uint8_t s = 0;
  for (uint8_t b : v) s = static_cast<uint8_t>(s + b);
  return s;
}

std::vector<MpProcessor> processors(const MpTableImage& img) {
  std::vector<MpProcessor> out;
  size_t off = sizeof(MpConfigHeader);
  while (off < img.config_table.size() && img.config_table[off] == 0) {
    MpProcessor p;
    std::memcpy(&p, img.config_table.data() + off, sizeof p);
    out.push_back(p);
    off += sizeof p;
  }
  return out;
}

TEST(MpTable, ChecksumsAndSignatures) {
  auto img = build_mptable(2, 8, 0xf0000);
  ASSERT_EQ(img.floating_pointer.size(), 16u);
  EXPECT_EQ(std::memcmp(img.floating_pointer.data(), "_MP_", 4), 0);
  EXPECT_EQ(sum(img.floating_pointer), 0);
  EXPECT_EQ(std::memcmp(img.config_table.data(), "PCMP", 4), 0);
  EXPECT_EQ(sum(img.config_table), 0);
  MpFloatingPointer fp;
  std::memcpy(&fp, img.floating_pointer.data(), sizeof fp);
  EXPECT_EQ(fp.physptr, 0xf0000u);
  EXPECT_EQ(fp.length, 1);
  EXPECT_EQ(fp.spec_rev, 4);
  MpConfigHeader h;
  std::memcpy(&h, img.config_table.data(), sizeof h);
  EXPECT_EQ(h.length, img.config_table.size());
  EXPECT_EQ(h.lapic_addr, layout::kLapicAddr);
  // 8 CPUs, 1 bus, 1 IOAPIC, 24 I/O interrupts, 2 local interrupts.
  EXPECT_EQ(h.entry_count, 8 + 1 + 1 + 24 + 2);
  EXPECT_EQ(h.length, sizeof(MpConfigHeader) + 8 * 20 + 8 * (1 + 1 + 24 + 2));
}

TEST(MpTable, PresentCpusEnabledOthersDisabledForHotAdd) {
  auto procs = processors(build_mptable(3, 6, 0xf0000));
  ASSERT_EQ(procs.size(), 6u);
  for (uint32_t i = 0; i < 6; ++i) {
    EXPECT_EQ(procs[i].apic_id, i);
    EXPECT_EQ(bool(procs[i].cpu_flags & kMpCpuEnabled), i < 3) << i;
    EXPECT_EQ(bool(procs[i].cpu_flags & kMpCpuBsp), i == 0) << i;
  }
}

TEST(MpTable, IoapicFollowsTheCpusApicIds) {
  auto img = build_mptable(1, 4, 0xf0000);
  size_t off = sizeof(MpConfigHeader) + 4 * sizeof(MpProcessor) + sizeof(MpBus);
  MpIoapic io;
  std::memcpy(&io, img.config_table.data() + off, sizeof io);
  EXPECT_EQ(io.type, 2);
  EXPECT_EQ(io.apic_id, 4);
  EXPECT_EQ(io.addr, layout::kIoapicAddr);
  EXPECT_EQ(io.flags, 1);
}

TEST(MpTable, RejectsImpossibleCounts) {
  EXPECT_THROW(build_mptable(0, 1, 0xf0000), std::invalid_argument);
  EXPECT_THROW(build_mptable(4, 2, 0xf0000), std::invalid_argument);
  EXPECT_THROW(build_mptable(1, kMpMaxCpus + 1, 0xf0000), std::invalid_argument);
  EXPECT_NO_THROW(build_mptable(kMpMaxCpus, kMpMaxCpus, 0xf0000));
}

TEST(MpTable, LargestTableFitsTheFSegment) {
  auto img = build_mptable(kMpMaxCpus, kMpMaxCpus, 0xf0000);
  EXPECT_LE(0xf0000 + img.config_table.size(), 0x100000u);
  auto mem = GuestMemory::create(layout::ram_regions(16 << 20));
  write_mptable(mem, 2, kMpMaxCpus);
  EXPECT_EQ(mem.read_obj<uint32_t>(GuestAddress(layout::kMpTableAddr)), 0x5f504d5fu);  // "_MP_"
  EXPECT_EQ(mem.read_obj<uint32_t>(GuestAddress(0xf0000)), 0x504d4350u);              // "PCMP"
}

}  // namespace
}  // namespace skiff::boot
