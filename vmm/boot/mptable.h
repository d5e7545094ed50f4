#pragma once
// Intel MultiProcessor Specification 1.4 table: how a guest without ACPI
// learns its CPUs, IOAPIC and interrupt routing. It lists `max_cpus`
// processors; those at or above `present_cpus` are marked disabled, so the
// guest counts them as possible CPUs that can be hot-added later.
#include <cstdint>
#include <vector>

#include "memory/guest_memory.h"

namespace skiff::boot {

#pragma pack(push, 1)
struct MpFloatingPointer {
  char signature[4];  // "_MP_"
  uint32_t physptr;
  uint8_t length;     // in 16-byte units
  uint8_t spec_rev;
  uint8_t checksum;
  uint8_t feature[5];
};
struct MpConfigHeader {
  char signature[4];  // "PCMP"
  uint16_t length;
  uint8_t spec_rev;
  uint8_t checksum;
  char oem[8];
  char product[12];
  uint32_t oem_ptr;
  uint16_t oem_size;
  uint16_t entry_count;
  uint32_t lapic_addr;
  uint16_t ext_length;
  uint8_t ext_checksum;
  uint8_t reserved;
};
struct MpProcessor {
  uint8_t type;  // 0
  uint8_t apic_id;
  uint8_t apic_version;
  uint8_t cpu_flags;  // bit 0 enabled, bit 1 bootstrap processor
  uint32_t signature;
  uint32_t feature_flags;
  uint32_t reserved[2];
};
struct MpBus {
  uint8_t type;  // 1
  uint8_t bus_id;
  char bus_type[6];
};
struct MpIoapic {
  uint8_t type;  // 2
  uint8_t apic_id;
  uint8_t apic_version;
  uint8_t flags;  // bit 0 enabled
  uint32_t addr;
};
struct MpInterrupt {
  uint8_t type;  // 3 I/O interrupt, 4 local interrupt
  uint8_t irq_type;  // 0 INT, 1 NMI, 2 SMI, 3 ExtINT
  uint16_t irq_flags;
  uint8_t src_bus;
  uint8_t src_irq;
  uint8_t dst_apic;
  uint8_t dst_irq;
};
#pragma pack(pop)
static_assert(sizeof(MpFloatingPointer) == 16 && sizeof(MpConfigHeader) == 44 && sizeof(MpProcessor) == 20 &&
              sizeof(MpBus) == 8 && sizeof(MpIoapic) == 8 && sizeof(MpInterrupt) == 8);

inline constexpr uint8_t kMpCpuEnabled = 1;
inline constexpr uint8_t kMpCpuBsp = 2;
// The largest table that fits: APIC ids are 8 bits and 0xff is broadcast.
inline constexpr uint32_t kMpMaxCpus = 254;

// Serialized table: floating pointer at `fp_addr`, configuration table at
// `table_addr`, both returned as the bytes to write there.
struct MpTableImage {
  std::vector<uint8_t> floating_pointer;
  std::vector<uint8_t> config_table;
};
MpTableImage build_mptable(uint32_t present_cpus, uint32_t max_cpus, uint32_t table_addr);

// Writes the floating pointer at the start of the EBDA and the table in the
// BIOS F-segment (0xf0000), which has room for kMpMaxCpus processors. Throws
// std::invalid_argument for 0 CPUs, present > max or max > kMpMaxCpus.
void write_mptable(const GuestMemory& mem, uint32_t present_cpus, uint32_t max_cpus);

uint8_t mp_checksum(const uint8_t* data, size_t len);

}  // namespace skiff::boot
