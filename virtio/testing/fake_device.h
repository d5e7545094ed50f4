#pragma once
// A virtio device model for transport tests and fuzzing: records what the
// transport tells it and exposes a small configuration space.
#include <array>
#include <optional>
#include <cstring>
#include <memory>
#include <mutex>
#include <vector>

#include "virtio/device.h"

namespace skiff::virtio::testing {

class FakeDevice : public VirtioDevice {
 public:
  static constexpr uint32_t kType = 42;
  explicit FakeDevice(uint64_t features = bit(kFeatureVersion1) | bit(kFeatureEventIdx), size_t queues = 2,
                      uint16_t max_size = 256)
      : features_(features), queue_count_(queues), max_size_(max_size) {}

  uint32_t device_type() const override { return kType; }
  uint64_t device_features() const override { return features_; }
  size_t queue_count() const override { return queue_count_; }
  uint16_t queue_max_size(size_t) const override { return max_size_; }
  void read_config(uint64_t offset, std::span<uint8_t> data) override {
    std::lock_guard lock(mutex_);
    for (size_t i = 0; i < data.size(); ++i) data[i] = offset + i < config.size() ? config[offset + i] : 0;
  }
  void write_config(uint64_t offset, std::span<const uint8_t> data) override {
    std::lock_guard lock(mutex_);
    for (size_t i = 0; i < data.size(); ++i)
      if (offset + i < config.size()) config[offset + i] = data[i];
  }
  bool activate(uint64_t features, std::vector<std::unique_ptr<Virtqueue>> q,
                std::shared_ptr<DeviceInterrupt> irq) override {
    std::lock_guard lock(mutex_);
    ++activations;
    negotiated = features;
    queues = std::move(q);
    interrupt = std::move(irq);
    return accept_activation;
  }
  void queue_notify(size_t queue) override {
    std::lock_guard lock(mutex_);
    notified.push_back(queue);
  }
  void reset() override {
    std::lock_guard lock(mutex_);
    ++resets;
    queues.clear();
    interrupt.reset();
  }

  // What the transport did, for the test to check.
  std::optional<SharedMemoryRegion> shared_memory_region(uint8_t id) const override {
    if (id == shm_id && shm) return shm;
    return std::nullopt;
  }
  std::array<uint8_t, 16> config{};
  uint8_t shm_id = 0;
  std::optional<SharedMemoryRegion> shm;  // shared memory region shm_id, if set
  int activations = 0;
  int resets = 0;
  uint64_t negotiated = 0;
  std::vector<std::unique_ptr<Virtqueue>> queues;
  std::shared_ptr<DeviceInterrupt> interrupt;
  std::vector<size_t> notified;
  bool accept_activation = true;

 private:
  std::mutex mutex_;
  uint64_t features_;
  size_t queue_count_;
  uint16_t max_size_;
};

}  // namespace skiff::virtio::testing
