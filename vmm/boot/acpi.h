#pragma once
// ACPI tables (ACPI 6.x): RSDP, XSDT, FADT with the PM1a event and control
// blocks and a reset register (guest power-off and reboot reach the VMM),
// FACS, MADT with every possible CPU (absent ones online-capable, for
// hot-add), and a DSDT declaring \_S5 and a pvpanic device. Not
// hardware-reduced: on x86 Linux then drops the legacy PIC and PIT, and the
// serial console's ISA IRQ with them.
#include <cstdint>
#include <span>
#include <vector>

#include "memory/guest_memory.h"

namespace skiff::boot {

struct AcpiPlatform {
  uint32_t present_cpus = 1;
  uint32_t max_cpus = 1;
  uint16_t pm_port = 0;       // devices::AcpiPm: PM1a event block, control block, reset
  uint16_t pvpanic_port = 0;  // devices::PvPanic: QEMU0001, one byte
};

uint8_t acpi_checksum(std::span<const uint8_t> bytes);

std::vector<uint8_t> build_dsdt(const AcpiPlatform& p);
std::vector<uint8_t> build_fadt(uint64_t dsdt_addr, uint64_t facs_addr, const AcpiPlatform& p);
std::vector<uint8_t> build_facs();
std::vector<uint8_t> build_madt(const AcpiPlatform& p);
std::vector<uint8_t> build_xsdt(const std::vector<uint64_t>& table_addrs);
std::vector<uint8_t> build_rsdp(uint64_t xsdt_addr);

// ISA IRQ of the SCI (never raised: Skiff has no ACPI events yet).
inline constexpr uint8_t kAcpiSciIrq = 9;

// Writes the RSDP at `rsdp_addr` and the other tables after it; throws
// std::invalid_argument when they do not fit below `limit`.
void write_acpi_tables(const GuestMemory& mem, const AcpiPlatform& p, uint64_t rsdp_addr, uint64_t limit);

}  // namespace skiff::boot
