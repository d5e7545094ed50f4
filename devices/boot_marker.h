#pragma once
// A port the guest writes when it reaches a boot milestone (the agent, the
// guest's /init, writes kUserspace first thing), so the host can time boot without
// parsing the console. Like Firecracker's boot-timer device.
#include <cstdint>
#include <functional>
#include <span>

#include "devices/bus.h"

namespace skiff::devices {

class BootMarker final : public BusDevice {
 public:
  static constexpr uint64_t kPort = 0x440;
  static constexpr uint64_t kLength = 1;
  static constexpr uint8_t kUserspace = 1;

  explicit BootMarker(std::function<void(uint8_t milestone)> on_mark) : on_mark_(std::move(on_mark)) {}

  void read(uint64_t, std::span<uint8_t> data) override {
    for (auto& b : data) b = 0;
  }
  void write(uint64_t, std::span<const uint8_t> data) override {
    if (!data.empty() && on_mark_) on_mark_(data[0]);
  }

 private:
  std::function<void(uint8_t)> on_mark_;
};

}  // namespace skiff::devices
