#include "vmm/boot/cpu_setup.h"

#include <algorithm>
#include <bit>
#include <cstring>

#include "vmm/boot/layout.h"

namespace skiff::boot {
namespace {

constexpr uint32_t kMsrSysenterCs = 0x174, kMsrSysenterEsp = 0x175, kMsrSysenterEip = 0x176;
constexpr uint32_t kMsrStar = 0xc0000081, kMsrLstar = 0xc0000082, kMsrCstar = 0xc0000083;
constexpr uint32_t kMsrSyscallMask = 0xc0000084, kMsrKernelGsBase = 0xc0000102;
constexpr uint32_t kMsrTsc = 0x10, kMsrMiscEnable = 0x1a0, kMsrMtrrDefType = 0x2ff;
constexpr uint64_t kMiscEnableFastString = 1;
constexpr uint64_t kMtrrEnable = 1 << 11, kMtrrTypeWriteBack = 6;

constexpr uint64_t kCr0Pe = 1, kCr0Et = 1 << 4, kCr0Pg = 1ull << 31;
constexpr uint64_t kCr4Pae = 1 << 5;
constexpr uint64_t kEferLme = 1 << 8, kEferLma = 1 << 10;
constexpr uint64_t kPtePresent = 1, kPteWrite = 2, kPtePageSize = 0x80;

constexpr uint16_t kCode64 = 0xa09b, kCode32 = 0xc09b, kData = 0xc093, kTss64 = 0x808b, kTss32 = 0x008b;
constexpr uint16_t kCodeSel = 1 << 3, kDataSel = 2 << 3, kTssSel = 3 << 3;

constexpr uint32_t kLapicLvtLint0 = 0x350, kLapicLvtLint1 = 0x360;
constexpr uint32_t kApicModeExtInt = 7, kApicModeNmi = 4;

kvm_segment segment_from_gdt(uint64_t entry, uint16_t selector) {
  kvm_segment s{};
  s.base = ((entry >> 16) & 0xffffff) | (((entry >> 56) & 0xff) << 24);
  uint32_t limit = static_cast<uint32_t>((entry & 0xffff) | (((entry >> 48) & 0xf) << 16));
  s.g = (entry >> 55) & 1;
  s.limit = s.g ? (limit << 12) | 0xfff : limit;
  s.selector = selector;
  s.type = (entry >> 40) & 0xf;
  s.present = (entry >> 47) & 1;
  s.dpl = (entry >> 45) & 3;
  s.db = (entry >> 54) & 1;
  s.s = (entry >> 44) & 1;
  s.l = (entry >> 53) & 1;
  s.avl = (entry >> 52) & 1;
  s.unusable = s.present ? 0 : 1;
  return s;
}

void set_segments(kvm_sregs& sregs, const uint64_t gdt[4]) {
  sregs.gdt.base = layout::kGdtAddr;
  sregs.gdt.limit = 4 * sizeof(uint64_t) - 1;
  sregs.idt.base = layout::kIdtAddr;
  sregs.idt.limit = sizeof(uint64_t) - 1;
  sregs.cs = segment_from_gdt(gdt[1], kCodeSel);
  kvm_segment data = segment_from_gdt(gdt[2], kDataSel);
  sregs.ds = sregs.es = sregs.fs = sregs.gs = sregs.ss = data;
  sregs.tr = segment_from_gdt(gdt[3], kTssSel);
}

const uint64_t* long_mode_gdt() {
  static const uint64_t gdt[4] = {0, gdt_entry(kCode64, 0, 0xfffff), gdt_entry(kData, 0, 0xfffff),
                                  gdt_entry(kTss64, 0, 0xfffff)};
  return gdt;
}
const uint64_t* pvh_gdt() {
  static const uint64_t gdt[4] = {0, gdt_entry(kCode32, 0, 0xfffff), gdt_entry(kData, 0, 0xfffff),
                                  gdt_entry(kTss32, 0, 0x67)};
  return gdt;
}

void write_gdt(const GuestMemory& mem, const uint64_t gdt[4]) {
  for (int i = 0; i < 4; ++i) mem.write_obj(GuestAddress(layout::kGdtAddr + i * 8), gdt[i]);
  mem.write_obj(GuestAddress(layout::kIdtAddr), uint64_t{0});
}

}  // namespace

uint64_t gdt_entry(uint16_t flags, uint32_t base, uint32_t limit) {
  return ((uint64_t(base) & 0xff000000) << 32) | ((uint64_t(flags) & 0xf0ff) << 40) |
         ((uint64_t(limit) & 0xf0000) << 32) | ((uint64_t(base) & 0x00ffffff) << 16) | (uint64_t(limit) & 0xffff);
}

std::vector<kvm_cpuid_entry2> guest_cpuid(const std::vector<kvm_cpuid_entry2>& supported, const CpuTopology& topo) {
  std::vector<kvm_cpuid_entry2> out = supported;
  const uint32_t apic_id = topo.vcpu_index;
  const uint32_t n = std::max<uint32_t>(topo.max_vcpus, 1);
  // Bits of the APIC id that number the cores of the socket.
  const uint32_t core_bits = n > 1 ? std::bit_width(n - 1) : 0;
  for (auto& e : out) {
    switch (e.function) {
      case 1:
        e.ebx = (apic_id << 24) | (std::min<uint32_t>(n, 255) << 16) | (8 << 8) /* CLFLUSH line, 8 qwords */;
        e.ecx |= 1u << 31;  // running under a hypervisor
        if (n > 1) e.edx |= 1u << 28;  // HTT: the package holds several logical CPUs
        // Without TSC-deadline Linux falls back to a LAPIC timer it must
        // calibrate, which fails under nested virtualization.
        if (topo.tsc_deadline) e.ecx |= 1u << 24;
        break;
      case 4:
        // Deterministic cache parameters: cores per package - 1 in bits 31:26,
        // threads sharing the cache in 25:14 (a single thread per core).
        e.eax = (e.eax & 0x3fff) | ((std::min<uint32_t>(n, 64) - 1) << 26);
        break;
      case 0xb:
      case 0x1f:
        // Extended topology: level 0 = SMT (one thread), level 1 = core.
        if (e.index == 0) {
          e.eax = 0;
          e.ebx = 1;
          e.ecx = (1 << 8) | 0;
        } else if (e.index == 1) {
          e.eax = core_bits;
          e.ebx = n;
          e.ecx = (2 << 8) | 1;
        } else {
          e.eax = 0;
          e.ebx = 0;
          e.ecx = e.index;
        }
        e.edx = apic_id;
        break;
      case 0x80000008:
        // AMD: cores per package - 1 and the APIC id bits that number them.
        e.ecx = (core_bits << 12) | (n - 1);
        break;
      default:
        break;
    }
  }
  return out;
}

std::vector<kvm_msr_entry> boot_msrs(const std::vector<uint32_t>& index_list) {
  const std::pair<uint32_t, uint64_t> wanted[] = {
      {kMsrSysenterCs, 0}, {kMsrSysenterEsp, 0}, {kMsrSysenterEip, 0}, {kMsrStar, 0}, {kMsrCstar, 0},
      {kMsrKernelGsBase, 0}, {kMsrSyscallMask, 0}, {kMsrLstar, 0}, {kMsrTsc, 0},
      {kMsrMiscEnable, kMiscEnableFastString}, {kMsrMtrrDefType, kMtrrEnable | kMtrrTypeWriteBack},
  };
  std::vector<kvm_msr_entry> out;
  for (const auto& [index, value] : wanted) {
    if (std::find(index_list.begin(), index_list.end(), index) == index_list.end()) continue;
    kvm_msr_entry e{};
    e.index = index;
    e.data = value;
    out.push_back(e);
  }
  return out;
}

void write_long_mode_tables(const GuestMemory& mem) {
  write_gdt(mem, long_mode_gdt());
  // One PML4 entry -> one PDPT entry -> 512 PD entries of 2 MiB: 1 GiB identity map.
  const uint64_t pml4[512] = {layout::kPdptAddr | kPtePresent | kPteWrite};
  mem.write_obj(GuestAddress(layout::kPml4Addr), pml4);
  const uint64_t pdpt[512] = {layout::kPdAddr | kPtePresent | kPteWrite};
  mem.write_obj(GuestAddress(layout::kPdptAddr), pdpt);
  uint64_t pd[512];
  for (uint64_t i = 0; i < 512; ++i) pd[i] = (i << 21) | kPtePresent | kPteWrite | kPtePageSize;
  mem.write_obj(GuestAddress(layout::kPdAddr), pd);
}

void write_pvh_gdt(const GuestMemory& mem) { write_gdt(mem, pvh_gdt()); }

void set_long_mode_sregs(kvm_sregs& sregs) {
  set_segments(sregs, long_mode_gdt());
  sregs.cr3 = layout::kPml4Addr;
  sregs.cr4 |= kCr4Pae;
  sregs.cr0 |= kCr0Pe | kCr0Pg | kCr0Et;
  sregs.efer |= kEferLme | kEferLma;
}

void set_pvh_sregs(kvm_sregs& sregs) {
  // PVH: flat 32-bit protected mode, paging off, CR0.PE alone among the
  // writable bits, CR4 clear.
  set_segments(sregs, pvh_gdt());
  sregs.cr0 = kCr0Pe | kCr0Et;
  sregs.cr4 = 0;
  sregs.cr3 = 0;
  sregs.efer = 0;
}

kvm_regs boot_regs(const LoadedKernel& kernel) {
  kvm_regs r{};
  r.rflags = 2;  // bit 1 is reserved and always set
  r.rip = kernel.entry;
  if (kernel.mode == EntryMode::Linux64) {
    r.rsp = r.rbp = layout::kBootStackTop;
    r.rsi = layout::kZeroPageAddr;
  } else {
    r.rbx = layout::kPvhStartInfoAddr;
  }
  return r;
}

void configure_vcpu(kvm::Vcpu& vcpu, const std::vector<kvm_cpuid_entry2>& supported,
                    const std::vector<uint32_t>& msr_list, const CpuTopology& topo, const LoadedKernel& kernel) {
  vcpu.set_cpuid(guest_cpuid(supported, topo));
  vcpu.set_msrs(boot_msrs(msr_list));
  kvm_fpu fpu{};
  fpu.fcw = 0x37f;
  fpu.mxcsr = 0x1f80;
  vcpu.set_fpu(fpu);

  // LINT0 delivers the legacy PIC's ExtINT, LINT1 NMIs, as a PC BIOS leaves them.
  auto lapic = vcpu.get_lapic();
  auto set_lvt = [&](uint32_t reg, uint32_t mode) {
    uint32_t v;
    std::memcpy(&v, lapic.regs + reg, 4);
    v = (v & ~0x700u) | (mode << 8);
    std::memcpy(lapic.regs + reg, &v, 4);
  };
  set_lvt(kLapicLvtLint0, kApicModeExtInt);
  set_lvt(kLapicLvtLint1, kApicModeNmi);
  vcpu.set_lapic(lapic);

  if (topo.vcpu_index != 0) return;
  auto sregs = vcpu.get_sregs();
  if (kernel.mode == EntryMode::Linux64) set_long_mode_sregs(sregs);
  else set_pvh_sregs(sregs);
  vcpu.set_sregs(sregs);
  vcpu.set_regs(boot_regs(kernel));
}

}  // namespace skiff::boot
