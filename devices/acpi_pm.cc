#include "devices/acpi_pm.h"

#include <algorithm>

namespace skiff::devices {

void AcpiPm::read(uint64_t offset, std::span<uint8_t> data) {
  std::fill(data.begin(), data.end(), 0);
  // A hardware-reduced guest polls wake status after a sleep it can return
  // from; Skiff never sleeps, so the guest is always "awake".
  if (offset == 1 && !data.empty()) data[0] = kWakeStatus;
}

void AcpiPm::write(uint64_t offset, std::span<const uint8_t> data) {
  if (data.empty()) return;
  const uint8_t v = data[0];
  if (offset == 0) {
    const uint8_t sleep_type = (v >> 2) & 0x7;
    if ((v & kSleepEnable) && sleep_type == kSleepTypeS5 && on_power_off_) on_power_off_();
  } else if (offset == 2 && v == kResetValue && on_reset_) {
    on_reset_();
  }
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
