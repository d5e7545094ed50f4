#pragma once
// The hardware-reduced ACPI registers the FADT points the guest at, and the
// pvpanic port the DSDT declares: how a guest powers off, reboots or reports
// a kernel panic to the VMM.
#include <cstdint>
#include <functional>
#include <mutex>
#include <span>

#include "devices/bus.h"

namespace skiff::devices {

// Port base+0: sleep control (SLP_TYP in bits 4:2, SLP_EN in bit 5; S5 is
// power-off), base+1: sleep status (wake status always set), base+2: reset
// (kResetValue reboots). Other writes are ignored.
class AcpiPm final : public BusDevice {
 public:
  static constexpr uint64_t kBase = 0x3c0;
  static constexpr uint64_t kLength = 3;
  static constexpr uint8_t kSleepTypeS5 = 5;
  static constexpr uint8_t kSleepEnable = 0x20;
  static constexpr uint8_t kWakeStatus = 0x80;
  static constexpr uint8_t kResetValue = 1;

  AcpiPm(std::function<void()> on_power_off, std::function<void()> on_reset)
      : on_power_off_(std::move(on_power_off)), on_reset_(std::move(on_reset)) {}

  void read(uint64_t offset, std::span<uint8_t> data) override;
  void write(uint64_t offset, std::span<const uint8_t> data) override;

 private:
  std::function<void()> on_power_off_;
  std::function<void()> on_reset_;
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
