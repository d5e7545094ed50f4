#include "devices/acpi_pm.h"

#include <algorithm>

namespace skiff::devices {
namespace {

// Reads `data` as a little-endian value placed at byte `offset` of a 16-bit
// register that starts at `reg`: byte-wide guest accesses update one half.
void merge16(uint16_t& reg, uint64_t reg_offset, uint64_t offset, std::span<const uint8_t> data) {
  for (size_t i = 0; i < data.size(); ++i) {
    uint64_t byte = offset + i - reg_offset;
    if (byte < 2) reg = static_cast<uint16_t>((reg & ~(0xff << (8 * byte))) | (data[i] << (8 * byte)));
  }
}

void split16(uint16_t reg, uint64_t reg_offset, uint64_t offset, std::span<uint8_t> data) {
  for (size_t i = 0; i < data.size(); ++i) {
    uint64_t byte = offset + i - reg_offset;
    if (byte < 2) data[i] = static_cast<uint8_t>(reg >> (8 * byte));
  }
}

}  // namespace

void AcpiPm::read(uint64_t offset, std::span<uint8_t> data) {
  std::fill(data.begin(), data.end(), 0);
  std::lock_guard lock(mutex_);
  // PM1_STS (offset 0) reads 0: Skiff raises no fixed events.
  if (offset >= 2 && offset < 4) split16(enable_, 2, offset, data);
  if (offset >= 4 && offset < 6) split16(control_, 4, offset, data);
}

void AcpiPm::write(uint64_t offset, std::span<const uint8_t> data) {
  if (data.empty()) return;
  if (offset == 6) {
    if (data[0] == kResetValue && on_reset_) on_reset_();
    return;
  }
  bool power_off = false;
  {
    std::lock_guard lock(mutex_);
    if (offset >= 2 && offset < 4) merge16(enable_, 2, offset, data);
    if (offset >= 4 && offset < 6) {
      merge16(control_, 4, offset, data);
      const unsigned sleep_type = (control_ >> kSleepTypeShift) & 0x7;
      power_off = (control_ & kSleepEnable) && sleep_type == kSleepTypeS5;
      // SLP_EN is write-only; SCI_EN stays set: the guest is always in ACPI mode.
      control_ = static_cast<uint16_t>((control_ & ~kSleepEnable) | kSciEnable);
    }
  }
  if (power_off && on_power_off_) on_power_off_();
}

void PvPanic::read(uint64_t, std::span<uint8_t> data) {
  std::fill(data.begin(), data.end(), 0);
  if (!data.empty()) data[0] = kPanicked | kCrashLoaded;
}

void PvPanic::write(uint64_t, std::span<const uint8_t> data) {
  if (data.empty()) return;
  if ((data[0] & kPanicked) && on_panic_) on_panic_();
  else if ((data[0] & kCrashLoaded) && on_crash_loaded_) on_crash_loaded_();
}

}  // namespace skiff::devices
