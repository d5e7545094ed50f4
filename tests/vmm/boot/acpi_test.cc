// ACPI tables and the power-management devices behind them. The tables are
// also handed to ACPICA's own disassembler (iasl, from acpica-tools) when it
// is installed: the reference parser must accept what Linux will parse.
#include "vmm/boot/acpi.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>

#include "devices/acpi_pm.h"
#include "vmm/boot/aml.h"
#include "vmm/boot/layout.h"

namespace skiff::boot {
namespace {

const AcpiPlatform kPlatform{2, 4, 0x600, 0x505};

template <typename T>
T at(const std::vector<uint8_t>& t, size_t off) {
  T v;
  std::memcpy(&v, t.data() + off, sizeof v);
  return v;
}

uint8_t sum(const std::vector<uint8_t>& t) {
  uint8_t s = 0;
  for (uint8_t b : t) s = static_cast<uint8_t>(s + b);
  return s;
}

TEST(Aml, EncodesPackagesNamesAndLengths) {
  using namespace aml;
  EXPECT_EQ(name("\\_S5_", package({integer(5), integer(0)})),
            (Bytes{0x08, 0x5c, '_', 'S', '5', '_', 0x12, 0x05, 0x02, 0x0a, 0x05, 0x00}));
  EXPECT_EQ(integer(1), Bytes{0x01});
  EXPECT_EQ(integer(0x1234), (Bytes{0x0b, 0x34, 0x12}));
  EXPECT_EQ(integer(0x12345678), (Bytes{0x0c, 0x78, 0x56, 0x34, 0x12}));
  EXPECT_EQ(string("AB"), (Bytes{0x0d, 'A', 'B', 0}));
  EXPECT_EQ(resource_template({io_port(0x505, 1)}),
            (Bytes{0x11, 0x0d, 0x0a, 0x0a, 0x47, 0x01, 0x05, 0x05, 0x05, 0x05, 0x01, 0x01, 0x79, 0x00}));
  // PkgLength: one byte up to 63, then a lead byte with the count of extra bytes.
  EXPECT_EQ(pkg_length(62), Bytes{63});
  EXPECT_EQ(pkg_length(63), (Bytes{0x40 | ((63 + 2) & 0xf), (63 + 2) >> 4}));
  EXPECT_EQ(pkg_length(4000), (Bytes{0x40 | ((4000 + 2) & 0xf), static_cast<uint8_t>((4000 + 2) >> 4)}));
  EXPECT_EQ(pkg_length(5000), (Bytes{0x80 | ((5000 + 3) & 0xf), static_cast<uint8_t>((5000 + 3) >> 4),
                                     static_cast<uint8_t>((5000 + 3) >> 12)}));
  EXPECT_THROW(name_string("TOOLONG"), std::invalid_argument);
}

TEST(Acpi, EveryTableChecksumsToZero) {
  for (const auto& t : {build_dsdt(kPlatform), build_fadt(0xe0100, 0xe0040, kPlatform), build_madt(kPlatform),
                        build_xsdt({0xe0200, 0xe0300})}) {
    EXPECT_EQ(sum(t), 0) << std::string(t.begin(), t.begin() + 4);
    EXPECT_EQ(at<uint32_t>(t, 4), t.size());
  }
  auto rsdp = build_rsdp(0xe0400);
  EXPECT_EQ(std::string(rsdp.begin(), rsdp.begin() + 8), "RSD PTR ");
  EXPECT_EQ(sum(std::vector<uint8_t>(rsdp.begin(), rsdp.begin() + 20)), 0);
  EXPECT_EQ(sum(rsdp), 0);
  EXPECT_EQ(rsdp[15], 2);
  EXPECT_EQ(at<uint64_t>(rsdp, 24), 0xe0400u);
}

TEST(Acpi, FadtIsHardwareReducedWithSleepAndResetRegisters) {
  auto f = build_fadt(0xe0080, 0xe0040, kPlatform);
  ASSERT_EQ(f.size(), 276u);
  EXPECT_EQ(std::string(f.begin(), f.begin() + 4), "FACP");
  EXPECT_EQ(f[8], 6);                                  // revision
  EXPECT_EQ(at<uint32_t>(f, 36), 0xe0040u);            // FIRMWARE_CTRL (FACS)
  EXPECT_EQ(at<uint32_t>(f, 40), 0xe0080u);            // DSDT
  EXPECT_EQ(at<uint16_t>(f, 46), kAcpiSciIrq);         // SCI_INT
  EXPECT_EQ(at<uint32_t>(f, 48), 0u);                  // SMI_CMD: already in ACPI mode
  EXPECT_EQ(at<uint32_t>(f, 56), 0x600u);              // PM1a_EVT_BLK
  EXPECT_EQ(at<uint32_t>(f, 64), 0x604u);              // PM1a_CNT_BLK
  EXPECT_EQ(f[88], 4);                                 // PM1_EVT_LEN
  EXPECT_EQ(f[89], 2);                                 // PM1_CNT_LEN
  EXPECT_FALSE(at<uint32_t>(f, 112) & (1u << 20));     // not HW_REDUCED_ACPI: Linux keeps the PIC and PIT
  EXPECT_TRUE(at<uint32_t>(f, 112) & (1u << 10));      // RESET_REG_SUP
  EXPECT_EQ(f[116], 1);                                // RESET_REG in system I/O
  EXPECT_EQ(at<uint64_t>(f, 120), 0x606u);
  EXPECT_EQ(f[128], devices::AcpiPm::kResetValue);
  EXPECT_EQ(at<uint64_t>(f, 132), 0xe0040u);           // X_FIRMWARE_CTRL
  EXPECT_EQ(at<uint64_t>(f, 140), 0xe0080u);           // X_DSDT
  auto facs = build_facs();
  EXPECT_EQ(std::string(facs.begin(), facs.begin() + 4), "FACS");
  EXPECT_EQ(at<uint32_t>(facs, 4), 64u);
}

TEST(Acpi, MadtListsPresentAndHotpluggableCpus) {
  auto m = build_madt(kPlatform);
  EXPECT_EQ(m[8], 5);  // revision 5: online-capable is honoured
  EXPECT_EQ(at<uint32_t>(m, 36), layout::kLapicAddr);
  size_t off = 44;
  for (uint8_t i = 0; i < 4; ++i, off += 8) {
    EXPECT_EQ(m[off], 0);
    EXPECT_EQ(m[off + 1], 8);
    EXPECT_EQ(m[off + 3], i);                          // APIC id
    EXPECT_EQ(at<uint32_t>(m, off + 4), i < 2 ? 1u : 2u);  // enabled, or online-capable
  }
  EXPECT_EQ(m[off], 1);  // IOAPIC
  EXPECT_EQ(m[off + 2], 4);
  EXPECT_EQ(at<uint32_t>(m, off + 4), layout::kIoapicAddr);
  off += 12;
  EXPECT_EQ(m[off], 2);  // interrupt source override: IRQ 0 -> GSI 2
  EXPECT_EQ(at<uint32_t>(m, off + 4), 2u);
  off += 10;
  EXPECT_EQ(m[off], 2);  // the SCI: IRQ 9, level-triggered, active high
  EXPECT_EQ(m[off + 3], 9);
  EXPECT_EQ(at<uint16_t>(m, off + 8), 0x0du);
}

TEST(Acpi, TablesLandInGuestMemoryLinkedFromTheRsdp) {
  auto mem = GuestMemory::create(layout::ram_regions(16 << 20));
  write_acpi_tables(mem, kPlatform, layout::kRsdpAddr, layout::kAcpiTablesEnd);
  auto rsdp = mem.read_obj<std::array<uint8_t, 36>>(GuestAddress(layout::kRsdpAddr));
  uint64_t xsdt;
  std::memcpy(&xsdt, rsdp.data() + 24, 8);
  EXPECT_EQ(mem.read_obj<uint32_t>(GuestAddress(xsdt)), 0x54445358u);  // "XSDT"
  auto fadt = mem.read_obj<uint64_t>(GuestAddress(xsdt + 36));
  auto facs = mem.read_obj<uint64_t>(GuestAddress(fadt + 132));
  EXPECT_EQ(facs % 64, 0u);
  EXPECT_EQ(mem.read_obj<uint32_t>(GuestAddress(facs)), 0x53434146u);  // "FACS"
  auto madt = mem.read_obj<uint64_t>(GuestAddress(xsdt + 44));
  EXPECT_EQ(mem.read_obj<uint32_t>(GuestAddress(fadt)), 0x50434146u);  // "FACP"
  EXPECT_EQ(mem.read_obj<uint32_t>(GuestAddress(madt)), 0x43495041u);  // "APIC"
  auto dsdt = mem.read_obj<uint64_t>(GuestAddress(fadt + 140));
  EXPECT_EQ(mem.read_obj<uint32_t>(GuestAddress(dsdt)), 0x54445344u);  // "DSDT"
  EXPECT_THROW(write_acpi_tables(mem, {1, 254, 0x600, 0x505}, layout::kRsdpAddr, layout::kRsdpAddr + 0x100),
               std::invalid_argument);
  EXPECT_THROW(write_acpi_tables(mem, {3, 2, 0x600, 0x505}, layout::kRsdpAddr, layout::kAcpiTablesEnd),
               std::invalid_argument);
}

TEST(Acpi, AcpicaDisassemblesTheDsdt) {
  if (system("command -v iasl >/dev/null 2>&1") != 0) GTEST_SKIP() << "iasl (acpica-tools) not installed";
  std::string dir = ::testing::TempDir() + "skiff-acpi-" + std::to_string(getpid());
  ASSERT_EQ(system(("mkdir -p " + dir).c_str()), 0);
  auto dsdt = build_dsdt(kPlatform);
  std::ofstream(dir + "/dsdt.dat", std::ios::binary).write(reinterpret_cast<const char*>(dsdt.data()),
                                                           static_cast<std::streamsize>(dsdt.size()));
  ASSERT_EQ(system(("cd " + dir + " && iasl -d dsdt.dat >iasl.log 2>&1").c_str()), 0);
  std::ifstream dsl(dir + "/dsdt.dsl");
  std::string text((std::istreambuf_iterator<char>(dsl)), std::istreambuf_iterator<char>());
  EXPECT_NE(text.find("Name (\\_S5, Package (0x02)"), std::string::npos) << text;
  EXPECT_NE(text.find("Device (PEVT)"), std::string::npos) << text;
  EXPECT_NE(text.find("\"QEMU0001\""), std::string::npos) << text;
  EXPECT_NE(text.find("IO (Decode16,\n                    0x0505,"), std::string::npos) << text;
  EXPECT_EQ(system(("rm -rf " + dir).c_str()), 0);
}

}  // namespace
}  // namespace skiff::boot

namespace skiff::devices {
namespace {

TEST(AcpiPm, S5PowersOffResetValueResets) {
  int off = 0, reset = 0;
  AcpiPm pm([&] { ++off; }, [&] { ++reset; });
  auto write16 = [&](uint64_t offset, uint16_t v) {
    uint8_t b[2] = {static_cast<uint8_t>(v), static_cast<uint8_t>(v >> 8)};
    pm.write(offset, b);
  };
  auto read16 = [&](uint64_t offset) {
    uint8_t b[2];
    pm.read(offset, b);
    return static_cast<uint16_t>(b[0] | (b[1] << 8));
  };
  EXPECT_EQ(read16(4) & AcpiPm::kSciEnable, AcpiPm::kSciEnable);  // ACPI mode from the start
  EXPECT_EQ(read16(0), 0u);                                        // no fixed events pending
  const uint16_t s5 = AcpiPm::kSleepTypeS5 << AcpiPm::kSleepTypeShift;
  write16(4, s5);                                 // SLP_TYP first, as ACPICA does
  write16(4, (3 << AcpiPm::kSleepTypeShift) | AcpiPm::kSleepEnable);  // S3: not a power-off
  EXPECT_EQ(off, 0);
  write16(4, s5 | AcpiPm::kSleepEnable);
  EXPECT_EQ(off, 1);
  EXPECT_EQ(read16(4) & AcpiPm::kSleepEnable, 0u);  // SLP_EN reads back clear
  // Byte-wide writes of the high half alone also count.
  const uint8_t high = static_cast<uint8_t>((s5 | AcpiPm::kSleepEnable) >> 8);
  pm.write(5, {&high, 1});
  EXPECT_EQ(off, 2);
  write16(2, 0x0121);
  EXPECT_EQ(read16(2), 0x0121u);  // PM1_EN keeps what the guest wrote
  const uint8_t two = 2, one = 1;
  pm.write(6, {&two, 1});
  EXPECT_EQ(reset, 0);
  pm.write(6, {&one, 1});
  EXPECT_EQ(reset, 1);
  pm.write(0, {});
  EXPECT_EQ(off, 2);
}

TEST(PvPanic, ReportsPanicAndCrashLoaded) {
  int panics = 0, crash_loaded = 0;
  PvPanic p([&] { ++panics; }, [&] { ++crash_loaded; });
  uint8_t caps = 0;
  p.read(0, {&caps, 1});
  EXPECT_EQ(caps, PvPanic::kPanicked | PvPanic::kCrashLoaded);
  const uint8_t loaded = PvPanic::kCrashLoaded, panicked = PvPanic::kPanicked, nothing = 0;
  p.write(0, {&nothing, 1});
  p.write(0, {&loaded, 1});
  EXPECT_EQ(crash_loaded, 1);
  EXPECT_EQ(panics, 0);
  p.write(0, {&panicked, 1});
  EXPECT_EQ(panics, 1);
}

}  // namespace
}  // namespace skiff::devices
