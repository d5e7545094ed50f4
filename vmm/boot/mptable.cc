#include "vmm/boot/mptable.h"

#include <cstring>
#include <stdexcept>
#include <string>

#include "vmm/boot/layout.h"

namespace skiff::boot {
namespace {

constexpr uint8_t kApicVersion = 0x14;
constexpr uint8_t kSpecRev = 4;
constexpr uint32_t kMpTableFSegment = 0xf0000;
// The x86 CPU signature and feature flags Linux's MP parser shows; a family
// 6 CPU with an FPU and an APIC, as Firecracker reports.
constexpr uint32_t kCpuSignature = (6 << 8) | (0xf << 4);
constexpr uint32_t kCpuFeatures = (1 << 0) | (1 << 9);

template <typename T>
void append(std::vector<uint8_t>& out, const T& v) {
  const auto* p = reinterpret_cast<const uint8_t*>(&v);
  out.insert(out.end(), p, p + sizeof(T));
}

}  // namespace

uint8_t mp_checksum(const uint8_t* data, size_t len) {
  uint8_t sum = 0;
  for (size_t i = 0; i < len; ++i) sum = static_cast<uint8_t>(sum + data[i]);
  return static_cast<uint8_t>(-sum);
}

MpTableImage build_mptable(uint32_t present_cpus, uint32_t max_cpus, uint32_t table_addr) {
  if (present_cpus == 0) throw std::invalid_argument("MP table: no vCPUs");
  if (present_cpus > max_cpus)
    throw std::invalid_argument("MP table: " + std::to_string(present_cpus) + " vCPUs exceed the maximum " +
                                std::to_string(max_cpus));
  if (max_cpus > kMpMaxCpus) throw std::invalid_argument("MP table: at most 254 vCPUs");

  const uint8_t ioapic_id = static_cast<uint8_t>(max_cpus);  // first APIC id after the CPUs'
  std::vector<uint8_t> entries;
  uint16_t count = 0;
  for (uint32_t i = 0; i < max_cpus; ++i, ++count) {
    MpProcessor p{};
    p.type = 0;
    p.apic_id = static_cast<uint8_t>(i);
    p.apic_version = kApicVersion;
    p.cpu_flags = static_cast<uint8_t>((i < present_cpus ? kMpCpuEnabled : 0) | (i == 0 ? kMpCpuBsp : 0));
    p.signature = kCpuSignature;
    p.feature_flags = kCpuFeatures;
    append(entries, p);
  }
  MpBus bus{1, 0, {'I', 'S', 'A', ' ', ' ', ' '}};
  append(entries, bus);
  ++count;
  MpIoapic ioapic{2, ioapic_id, kApicVersion, 1, static_cast<uint32_t>(layout::kIoapicAddr)};
  append(entries, ioapic);
  ++count;
  // ISA IRQ n is IOAPIC pin n (conforming polarity and trigger); pin 0 gets
  // the legacy PIC's ExtINT, as on a PC.
  for (uint8_t irq = 0; irq < layout::kIoapicPins; ++irq, ++count) {
    MpInterrupt in{3, static_cast<uint8_t>(irq == 0 ? 3 : 0), 0, 0, irq, ioapic_id, irq};
    append(entries, in);
  }
  // LINT0 takes ExtINT, LINT1 NMI, on every local APIC (0xff).
  append(entries, MpInterrupt{4, 3, 0, 0, 0, 0xff, 0});
  append(entries, MpInterrupt{4, 1, 0, 0, 0, 0xff, 1});
  count += 2;

  MpConfigHeader h{};
  std::memcpy(h.signature, "PCMP", 4);
  h.length = static_cast<uint16_t>(sizeof(h) + entries.size());
  h.spec_rev = kSpecRev;
  std::memcpy(h.oem, "SKIFF   ", 8);
  std::memcpy(h.product, "MICROVM     ", 12);
  h.entry_count = count;
  h.lapic_addr = static_cast<uint32_t>(layout::kLapicAddr);

  MpTableImage img;
  append(img.config_table, h);
  img.config_table.insert(img.config_table.end(), entries.begin(), entries.end());
  img.config_table[offsetof(MpConfigHeader, checksum)] = mp_checksum(img.config_table.data(), img.config_table.size());

  MpFloatingPointer fp{};
  std::memcpy(fp.signature, "_MP_", 4);
  fp.physptr = table_addr;
  fp.length = 1;
  fp.spec_rev = kSpecRev;
  append(img.floating_pointer, fp);
  img.floating_pointer[offsetof(MpFloatingPointer, checksum)] =
      mp_checksum(img.floating_pointer.data(), img.floating_pointer.size());
  return img;
}

void write_mptable(const GuestMemory& mem, uint32_t present_cpus, uint32_t max_cpus) {
  auto img = build_mptable(present_cpus, max_cpus, kMpTableFSegment);
  mem.write(GuestAddress(layout::kMpTableAddr), img.floating_pointer);
  mem.write(GuestAddress(kMpTableFSegment), img.config_table);
}

}  // namespace skiff::boot
