#pragma once
// ACPI tables for a hardware-reduced platform (ACPI 6.x): RSDP, XSDT, FADT
// with sleep-control and reset registers (guest power-off and reboot reach
// the VMM), MADT with every possible CPU (absent ones online-capable, for
// hot-add), and a DSDT declaring \_S5 and a pvpanic device.
#include <cstdint>
#include <span>
#include <vector>

#include "vmm/guest_memory.h"

namespace skiff::boot {

struct AcpiPlatform {
  uint32_t present_cpus = 1;
  uint32_t max_cpus = 1;
  uint16_t pm_port = 0;       // devices::AcpiPm: sleep control, sleep status, reset
  uint16_t pvpanic_port = 0;  // devices::PvPanic: QEMU0001, one byte
};

uint8_t acpi_checksum(std::span<const uint8_t> bytes);

std::vector<uint8_t> build_dsdt(const AcpiPlatform& p);
std::vector<uint8_t> build_fadt(uint64_t dsdt_addr, const AcpiPlatform& p);
std::vector<uint8_t> build_madt(const AcpiPlatform& p);
std::vector<uint8_t> build_xsdt(const std::vector<uint64_t>& table_addrs);
std::vector<uint8_t> build_rsdp(uint64_t xsdt_addr);

// Writes the RSDP at `rsdp_addr` and the other tables after it; throws
// std::invalid_argument when they do not fit below `limit`.
void write_acpi_tables(const GuestMemory& mem, const AcpiPlatform& p, uint64_t rsdp_addr, uint64_t limit);

}  // namespace skiff::boot
