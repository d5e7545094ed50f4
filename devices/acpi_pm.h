#pragma once
// The ACPI fixed-hardware registers the FADT points the guest at, and the
// pvpanic port the DSDT declares: how a guest powers off, reboots or reports
// a kernel panic to the VMM.
//
// Not hardware-reduced ACPI: on x86 that makes Linux drop the legacy PIC and
// PIT, and with them ISA IRQ 4 of the serial console. So the PM1a event and
// control blocks are here, with SCI_EN always set (ACPI mode from the start).
#include <cstdint>
#include <functional>
#include <mutex>
#include <span>

#include "devices/bus.h"

namespace skiff::devices {

// Ports from kBase: +0 PM1a_STS (2 bytes), +2 PM1a_EN (2), +4 PM1a_CNT (2),
// +6 the reset register (1).
class AcpiPm final : public BusDevice {
 public:
  static constexpr uint64_t kBase = 0x600;
  static constexpr uint64_t kLength = 7;
  static constexpr uint64_t kEventBlock = kBase;
  static constexpr uint64_t kControlBlock = kBase + 4;
  static constexpr uint64_t kResetRegister = kBase + 6;
  static constexpr uint16_t kSciEnable = 1;        // PM1_CNT.SCI_EN
  static constexpr uint16_t kSleepEnable = 1 << 13;  // PM1_CNT.SLP_EN
  static constexpr unsigned kSleepTypeShift = 10;    // PM1_CNT.SLP_TYP, bits 12:10
  static constexpr uint8_t kSleepTypeS5 = 5;         // \_S5 in the DSDT
  static constexpr uint8_t kResetValue = 1;

  AcpiPm(std::function<void()> on_power_off, std::function<void()> on_reset)
      : on_power_off_(std::move(on_power_off)), on_reset_(std::move(on_reset)) {}

  void read(uint64_t offset, std::span<uint8_t> data) override;
  void write(uint64_t offset, std::span<const uint8_t> data) override;

 private:
  std::function<void()> on_power_off_;
  std::function<void()> on_reset_;
  std::mutex mutex_;
  uint16_t enable_ = 0;
  uint16_t control_ = kSciEnable;
};

// QEMU's pvpanic ISA device (ACPI id QEMU0001): the guest reads the events
// it may report, and writes bit 0 when its kernel panicked, bit 1 when a
// crash kernel took over.
class PvPanic final : public BusDevice {
 public:
  static constexpr uint64_t kPort = 0x505;
  static constexpr uint64_t kLength = 1;
  static constexpr uint8_t kPanicked = 1;
  static constexpr uint8_t kCrashLoaded = 2;

  PvPanic(std::function<void()> on_panic, std::function<void()> on_crash_loaded)
      : on_panic_(std::move(on_panic)), on_crash_loaded_(std::move(on_crash_loaded)) {}

  void read(uint64_t offset, std::span<uint8_t> data) override;
  void write(uint64_t offset, std::span<const uint8_t> data) override;

 private:
  std::function<void()> on_panic_;
  std::function<void()> on_crash_loaded_;
};

}  // namespace skiff::devices
