#include "vmm/boot/cpu_setup.h"

#include <gtest/gtest.h>

#include "vmm/boot/layout.h"

namespace skiff::boot {
namespace {

TEST(Gdt, EntriesEncodeLikeTheCpuReadsThem) {
  // Known encodings (the same as Firecracker's and Linux's boot GDTs).
  EXPECT_EQ(gdt_entry(0xa09b, 0, 0xfffff), 0x00af9b000000ffffull);  // 64-bit code
  EXPECT_EQ(gdt_entry(0xc09b, 0, 0xfffff), 0x00cf9b000000ffffull);  // 32-bit code
  EXPECT_EQ(gdt_entry(0xc093, 0, 0xfffff), 0x00cf93000000ffffull);  // data
  EXPECT_EQ(gdt_entry(0x808b, 0, 0xfffff), 0x008f8b000000ffffull);  // TSS
  EXPECT_EQ(gdt_entry(0x0093, 0x12345678, 0xabcde), 0x120a93345678bcdeull);
}

TEST(LongMode, PageTablesIdentityMapTheFirstGiB) {
  auto mem = GuestMemory::create(layout::ram_regions(16 << 20));
  write_long_mode_tables(mem);
  auto pml4 = mem.read_obj<uint64_t>(GuestAddress(layout::kPml4Addr));
  EXPECT_EQ(pml4 & ~0xfffull, layout::kPdptAddr);
  EXPECT_EQ(pml4 & 3, 3u);  // present, writable
  auto pdpt = mem.read_obj<uint64_t>(GuestAddress(layout::kPdptAddr));
  EXPECT_EQ(pdpt & ~0xfffull, layout::kPdAddr);
  for (uint64_t i = 0; i < 512; ++i) {
    auto pde = mem.read_obj<uint64_t>(GuestAddress(layout::kPdAddr + 8 * i));
    ASSERT_EQ(pde, (i << 21) | 0x83) << i;  // 2 MiB page, present, writable
  }
  EXPECT_EQ(mem.read_obj<uint64_t>(GuestAddress(layout::kPml4Addr + 8)), 0u);
  EXPECT_EQ(mem.read_obj<uint64_t>(GuestAddress(layout::kGdtAddr + 8)), 0x00af9b000000ffffull);
}

TEST(LongMode, SregsEnablePagingPaeAndLongMode) {
  kvm_sregs s{};
  set_long_mode_sregs(s);
  EXPECT_EQ(s.cr3, layout::kPml4Addr);
  EXPECT_TRUE(s.cr0 & 1);
  EXPECT_TRUE(s.cr0 & (1u << 31));
  EXPECT_TRUE(s.cr4 & (1 << 5));
  EXPECT_EQ(s.efer & 0x500, 0x500u);
  EXPECT_EQ(s.cs.l, 1);
  EXPECT_EQ(s.cs.selector, 8);
  EXPECT_EQ(s.ds.selector, 16);
  EXPECT_EQ(s.gdt.base, layout::kGdtAddr);
}

TEST(Pvh, SregsAreFlat32BitProtectedModeWithoutPaging) {
  kvm_sregs s{};
  s.cr4 = 0x20;
  s.efer = 0x500;
  set_pvh_sregs(s);
  EXPECT_EQ(s.cr0 & 0x80000001, 1u);
  EXPECT_EQ(s.cr4, 0u);
  EXPECT_EQ(s.efer, 0u);
  EXPECT_EQ(s.cs.db, 1);
  EXPECT_EQ(s.cs.l, 0);
  EXPECT_EQ(s.cs.base, 0u);
  EXPECT_EQ(s.cs.limit, 0xffffffffu);
  EXPECT_EQ(s.ss.limit, 0xffffffffu);
  EXPECT_EQ(s.tr.limit, 0x67u);
}

TEST(Regs, EntryRegistersPerMode) {
  LoadedKernel linux64{EntryMode::Linux64, 0x100200, 0, std::nullopt};
  auto r = boot_regs(linux64);
  EXPECT_EQ(r.rip, 0x100200u);
  EXPECT_EQ(r.rsi, layout::kZeroPageAddr);
  EXPECT_EQ(r.rflags, 2u);
  LoadedKernel pvh{EntryMode::Pvh32, 0x1000123, 0, std::nullopt};
  r = boot_regs(pvh);
  EXPECT_EQ(r.rip, 0x1000123u);
  EXPECT_EQ(r.rbx, layout::kPvhStartInfoAddr);
}

kvm_cpuid_entry2 leaf(uint32_t fn, uint32_t index = 0) {
  kvm_cpuid_entry2 e{};
  e.function = fn;
  e.index = index;
  return e;
}

TEST(Cpuid, ApicIdTopologyAndHypervisorBit) {
  std::vector<kvm_cpuid_entry2> supported = {leaf(0), leaf(1), leaf(4), leaf(0xb, 0), leaf(0xb, 1), leaf(0xb, 2),
                                             leaf(0x40000000), leaf(0x80000008)};
  auto cpuid = guest_cpuid(supported, {5, 8});
  auto find = [&](uint32_t fn, uint32_t idx = 0) {
    for (const auto& e : cpuid)
      if (e.function == fn && e.index == idx) return e;
    ADD_FAILURE() << "leaf " << fn << " missing";
    return kvm_cpuid_entry2{};
  };
  auto l1 = find(1);
  EXPECT_EQ(l1.ebx >> 24, 5u);
  EXPECT_EQ((l1.ebx >> 16) & 0xff, 8u);
  EXPECT_TRUE(l1.ecx & (1u << 31));
  EXPECT_TRUE(l1.edx & (1u << 28));
  EXPECT_EQ(find(4).eax >> 26, 7u);
  EXPECT_EQ(find(0xb, 0).edx, 5u);
  EXPECT_EQ(find(0xb, 1).eax, 3u);  // 8 cores need 3 APIC id bits
  EXPECT_EQ(find(0xb, 1).ebx, 8u);
  EXPECT_EQ((find(0xb, 1).ecx >> 8) & 0xff, 2u);
  EXPECT_EQ(find(0xb, 2).ebx, 0u);
  EXPECT_EQ(find(0x80000008).ecx & 0xff, 7u);
  EXPECT_FALSE(l1.ecx & (1u << 24));
  // A single-vCPU guest has no HTT bit; TSC-deadline only when KVM emulates it.
  EXPECT_FALSE(guest_cpuid(supported, {0, 1})[1].edx & (1u << 28));
  EXPECT_TRUE(guest_cpuid(supported, {0, 1, true})[1].ecx & (1u << 24));
}

TEST(Msrs, OnlyThoseKvmHandles) {
  auto all = boot_msrs({0x174, 0x175, 0x176, 0xc0000081, 0xc0000082, 0xc0000083, 0xc0000084, 0xc0000102, 0x10,
                        0x1a0, 0x2ff});
  EXPECT_EQ(all.size(), 11u);
  auto some = boot_msrs({0x10, 0x2ff, 0x12345});
  ASSERT_EQ(some.size(), 2u);
  EXPECT_EQ(some[1].index, 0x2ffu);
  EXPECT_EQ(some[1].data, (1u << 11) | 6u);
}

}  // namespace
}  // namespace skiff::boot
