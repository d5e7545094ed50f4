#include "vmm/boot/acpi.h"

#include <cstring>
#include <stdexcept>
#include <string>

#include "devices/acpi_pm.h"
#include "vmm/boot/aml.h"
#include "vmm/boot/layout.h"
#include "vmm/boot/mptable.h"

namespace skiff::boot {
namespace {

constexpr uint32_t kFadtLength = 276;
constexpr uint8_t kFadtRevision = 6, kFadtMinorRevision = 5;
constexpr uint32_t kFadtWbinvd = 1u << 0, kFadtProcC1 = 1u << 2, kFadtNoPowerButton = 1u << 4,
                   kFadtNoSleepButton = 1u << 5, kFadtResetRegSupported = 1u << 10;
constexpr uint16_t kBootArch8042 = 1 << 1, kBootArchNoVga = 1 << 2, kBootArchNoCmosRtc = 1 << 5;
constexpr uint8_t kGasSystemIo = 1, kGasByteAccess = 1;
constexpr uint8_t kMadtRevision = 5;  // ACPI 6.3: the online-capable flag is honoured
constexpr uint32_t kMadtPcatCompat = 1;
constexpr uint32_t kLapicEnabled = 1, kLapicOnlineCapable = 2;

void put(std::vector<uint8_t>& t, size_t off, const void* v, size_t n) {
  if (t.size() < off + n) t.resize(off + n);
  std::memcpy(t.data() + off, v, n);
}
template <typename T>
void put(std::vector<uint8_t>& t, size_t off, T v) {
  put(t, off, &v, sizeof v);
}

// The 36-byte header every table but the RSDP starts with; length and
// checksum are filled in by finish().
std::vector<uint8_t> header(const char* signature, uint8_t revision) {
  std::vector<uint8_t> t(36, 0);
  put(t, 0, signature, 4);
  put(t, 8, revision);
  put(t, 10, "SKIFF ", 6);
  put(t, 16, "SKIFFVM ", 8);
  put(t, 24, uint32_t{1});
  put(t, 28, "SKIF", 4);
  put(t, 32, uint32_t{1});
  return t;
}

std::vector<uint8_t> finish(std::vector<uint8_t> t) {
  put(t, 4, static_cast<uint32_t>(t.size()));
  t[9] = 0;
  t[9] = acpi_checksum(t);
  return t;
}

// Generic Address Structure for a one-byte I/O register.
void put_io_gas(std::vector<uint8_t>& t, size_t off, uint16_t port) {
  put(t, off + 0, kGasSystemIo);
  put(t, off + 1, uint8_t{8});  // bit width
  put(t, off + 2, uint8_t{0});  // bit offset
  put(t, off + 3, kGasByteAccess);
  put(t, off + 4, uint64_t{port});
}

uint64_t align16(uint64_t v) { return (v + 15) & ~uint64_t{15}; }

}  // namespace

uint8_t acpi_checksum(std::span<const uint8_t> bytes) {
  uint8_t sum = 0;
  for (uint8_t b : bytes) sum = static_cast<uint8_t>(sum + b);
  return static_cast<uint8_t>(-sum);
}

std::vector<uint8_t> build_dsdt(const AcpiPlatform& p) {
  using namespace aml;
  auto t = header("DSDT", 2);
  Bytes body = scope("\\_SB_", {device("PEVT", {name("_HID", string("QEMU0001")),
                                                 name("_CRS", resource_template({io_port(p.pvpanic_port, 1)})),
                                                 name("_STA", integer(0x0f))})});
  Bytes s5 = name("\\_S5_", package({integer(devices::AcpiPm::kSleepTypeS5), integer(0)}));
  t.insert(t.end(), body.begin(), body.end());
  t.insert(t.end(), s5.begin(), s5.end());
  return finish(std::move(t));
}

std::vector<uint8_t> build_fadt(uint64_t dsdt_addr, uint64_t facs_addr, const AcpiPlatform& p) {
  auto t = header("FACP", kFadtRevision);
  t.resize(kFadtLength, 0);
  put(t, 36, static_cast<uint32_t>(facs_addr));                                // FIRMWARE_CTRL
  put(t, 40, static_cast<uint32_t>(dsdt_addr));                                // DSDT
  put(t, 46, uint16_t{kAcpiSciIrq});                                           // SCI_INT
  // SMI_CMD 0: no switch to ACPI mode needed, PM1_CNT.SCI_EN reads set.
  put(t, 56, static_cast<uint32_t>(p.pm_port));                                // PM1a_EVT_BLK
  put(t, 64, static_cast<uint32_t>(p.pm_port + 4));                            // PM1a_CNT_BLK
  put(t, 88, uint8_t{4});                                                      // PM1_EVT_LEN
  put(t, 89, uint8_t{2});                                                      // PM1_CNT_LEN
  put(t, 109, static_cast<uint16_t>(kBootArch8042 | kBootArchNoVga | kBootArchNoCmosRtc));
  put(t, 112, kFadtWbinvd | kFadtProcC1 | kFadtNoPowerButton | kFadtNoSleepButton | kFadtResetRegSupported);
  put_io_gas(t, 116, static_cast<uint16_t>(p.pm_port + 6));                   // RESET_REG
  put(t, 128, devices::AcpiPm::kResetValue);
  put(t, 131, kFadtMinorRevision);
  put(t, 132, facs_addr);                                                      // X_FIRMWARE_CTRL
  put(t, 140, dsdt_addr);                                                      // X_DSDT
  put(t, 268, "SKIFFVMM", 8);                                                  // hypervisor vendor identity
  return finish(std::move(t));
}

std::vector<uint8_t> build_facs() {
  // No checksum; the guest would keep its waking vector and global lock here.
  std::vector<uint8_t> t(64, 0);
  put(t, 0, "FACS", 4);
  put(t, 4, uint32_t{64});
  put(t, 32, uint8_t{2});  // version
  return t;
}

std::vector<uint8_t> build_madt(const AcpiPlatform& p) {
  auto t = header("APIC", kMadtRevision);
  put(t, 36, static_cast<uint32_t>(layout::kLapicAddr));
  put(t, 40, kMadtPcatCompat);
  auto add = [&](std::initializer_list<uint8_t> bytes) { t.insert(t.end(), bytes); };
  for (uint32_t i = 0; i < p.max_cpus; ++i) {
    uint32_t flags = i < p.present_cpus ? kLapicEnabled : kLapicOnlineCapable;
    add({0, 8, static_cast<uint8_t>(i), static_cast<uint8_t>(i), static_cast<uint8_t>(flags), 0, 0, 0});
  }
  // IOAPIC: id after the CPUs' (as in the MP table), GSI base 0.
  const uint32_t ioapic = static_cast<uint32_t>(layout::kIoapicAddr);
  add({1, 12, static_cast<uint8_t>(p.max_cpus), 0, static_cast<uint8_t>(ioapic), static_cast<uint8_t>(ioapic >> 8),
       static_cast<uint8_t>(ioapic >> 16), static_cast<uint8_t>(ioapic >> 24), 0, 0, 0, 0});
  // ISA IRQ 0 (the PIT) arrives on GSI 2, as on every PC; the SCI is level-triggered, active high.
  add({2, 10, 0, 0, 2, 0, 0, 0, 0, 0});
  add({2, 10, 0, kAcpiSciIrq, kAcpiSciIrq, 0, 0, 0, 0x0d, 0});
  // NMI on LINT1 of every processor.
  add({4, 6, 0xff, 0, 0, 1});
  return finish(std::move(t));
}

std::vector<uint8_t> build_xsdt(const std::vector<uint64_t>& table_addrs) {
  auto t = header("XSDT", 1);
  for (uint64_t a : table_addrs) put(t, t.size(), a);
  return finish(std::move(t));
}

std::vector<uint8_t> build_rsdp(uint64_t xsdt_addr) {
  std::vector<uint8_t> r(36, 0);
  put(r, 0, "RSD PTR ", 8);
  put(r, 9, "SKIFF ", 6);
  put(r, 15, uint8_t{2});  // revision: ACPI 2.0+ with an XSDT
  put(r, 20, uint32_t{36});
  put(r, 24, xsdt_addr);
  r[8] = acpi_checksum(std::span(r).first(20));
  r[32] = acpi_checksum(r);
  return r;
}

void write_acpi_tables(const GuestMemory& mem, const AcpiPlatform& p, uint64_t rsdp_addr, uint64_t limit) {
  if (p.present_cpus == 0 || p.present_cpus > p.max_cpus || p.max_cpus > kMpMaxCpus)
    throw std::invalid_argument("ACPI: bad CPU counts " + std::to_string(p.present_cpus) + "/" +
                                std::to_string(p.max_cpus));
  // The FACS must be 64-byte aligned; the other tables 16.
  uint64_t next = (rsdp_addr + 36 + 63) & ~uint64_t{63};
  auto place = [&](const std::vector<uint8_t>& table) {
    uint64_t at = next;
    if (at + table.size() > limit) throw std::invalid_argument("ACPI tables do not fit below the BIOS area limit");
    mem.write(GuestAddress(at), table);
    next = align16(at + table.size());
    return at;
  };
  const uint64_t facs = place(build_facs());
  const uint64_t dsdt = place(build_dsdt(p));
  const uint64_t fadt = place(build_fadt(dsdt, facs, p));
  const uint64_t madt = place(build_madt(p));
  const uint64_t xsdt = place(build_xsdt({fadt, madt}));
  mem.write(GuestAddress(rsdp_addr), build_rsdp(xsdt));
}

}  // namespace skiff::boot
