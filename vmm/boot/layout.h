#pragma once
// Guest-physical layout of an x86-64 Skiff VM. Low addresses follow the
// conventions of Firecracker and Cloud Hypervisor so Linux finds what it
// expects where it expects it.
#include <cstdint>
#include <vector>

#include "memory/guest_memory.h"

namespace skiff::layout {

inline constexpr uint64_t kGdtAddr = 0x500;
inline constexpr uint64_t kIdtAddr = 0x520;
inline constexpr uint64_t kPvhStartInfoAddr = 0x6000;
inline constexpr uint64_t kPvhModlistAddr = 0x6040;
inline constexpr uint64_t kPvhMemmapAddr = 0x7000;  // PVH only; the zero page uses 0x7000 on the Linux path
inline constexpr uint64_t kZeroPageAddr = 0x7000;
inline constexpr uint64_t kBootStackTop = 0x8ff0;
inline constexpr uint64_t kPml4Addr = 0x9000;
inline constexpr uint64_t kPdptAddr = 0xa000;
inline constexpr uint64_t kPdAddr = 0xb000;
inline constexpr uint64_t kCmdlineAddr = 0x20000;
inline constexpr uint64_t kCmdlineMaxSize = 0x10000;
// The MP table sits in the last KiB of conventional memory, where Linux scans
// for it (the start of the EBDA).
inline constexpr uint64_t kMpTableAddr = 0x9fc00;
inline constexpr uint64_t kEbdaStart = 0x9fc00;
// ACPI: the RSDP where Linux also scans for it, the other tables after it,
// below the MP table in the F-segment.
inline constexpr uint64_t kRsdpAddr = 0xe0000;
inline constexpr uint64_t kAcpiTablesEnd = 0xf0000;
inline constexpr uint64_t kHighMemStart = 0x100000;  // kernels load at 1 MiB
inline constexpr uint64_t kKernelLoadAddr = 0x100000;

// 32-bit hole for device MMIO, LAPIC, IOAPIC and the TSS: RAM beyond 3 GiB
// continues at 4 GiB.
inline constexpr uint64_t kMmioGapStart = 0xc0000000;
inline constexpr uint64_t kMmioGapEnd = 0x100000000;
inline constexpr uint64_t kDeviceMmioStart = 0xd0000000;
// virtio-mmio windows, one page each, above the first 16 MiB of the device
// MMIO range (kept free for the test devices of the kvm tier).
inline constexpr uint64_t kVirtioMmioStart = 0xd1000000;
inline constexpr uint64_t kVirtioMmioWindow = 0x1000;
inline constexpr uint64_t kIoapicAddr = 0xfec00000;
inline constexpr uint64_t kLapicAddr = 0xfee00000;
// Three pages for the VMX real-mode TSS and one for its identity map, just
// below the BIOS area; unused by SVM and PVM but harmless.
inline constexpr uint64_t kIdentityMapAddr = 0xfffbc000;
inline constexpr uint64_t kTssAddr = 0xfffbd000;

inline constexpr uint32_t kIoapicPins = 24;

// RAM regions for a guest of `mem_size` bytes, split around the MMIO gap.
std::vector<RegionSpec> ram_regions(uint64_t mem_size);

// virtio-mem's hotplug region (virtio/mem/mem_device.h): above RAM and the
// 32-bit gap, both ends on Linux's x86-64 memory block (128 MiB below 64 GiB
// of RAM), since the driver adds memory a whole block at a time and warns
// that a misaligned region leaves part of itself unusable. It is not in the
// e820 map: the guest learns of it from the device alone.
inline constexpr uint64_t kHotplugAlign = 128ull << 20;
// The region for `hotplug_size` bytes beside `mem_size` bytes of RAM; its
// size is rounded up to kHotplugAlign (the device offers no more than the
// VM's maximum, whatever the region's size).
RegionSpec hotplug_region(uint64_t mem_size, uint64_t hotplug_size);

}  // namespace skiff::layout
