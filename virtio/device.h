#pragma once
// What a virtio device model gives its transport (virtio-mmio today): its
// type, features, queues and configuration space, and what it is told: the
// negotiated features and live queues at DRIVER_OK, queue kicks, reset.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <vector>

#include "virtio/virtqueue.h"

namespace skiff::virtio {

// Feature bits every device model deals with (virtio 1.2, section 6).
inline constexpr unsigned kFeatureIndirectDesc = 28;
inline constexpr unsigned kFeatureEventIdx = 29;
inline constexpr unsigned kFeatureVersion1 = 32;
inline constexpr uint64_t bit(unsigned feature) { return uint64_t{1} << feature; }

// How a device tells the driver that it used buffers of a queue or changed
// its configuration. The transport owns the interrupt line and status bits.
class DeviceInterrupt {
 public:
  virtual ~DeviceInterrupt() = default;
  virtual void used_buffers() = 0;
  virtual void config_changed() = 0;
};

// A virtio shared memory region (virtio 1.2, section 2.10): guest-physical
// memory the device and driver share, e.g. virtio-fs's DAX cache window.
struct SharedMemoryRegion {
  uint64_t guest_base = 0;
  uint64_t length = 0;
};

// Copies bytes [offset, offset + data.size()) of a configuration space into
// `data`; bytes past its end read as 0. What read_config() does for a device
// whose whole configuration space is one structure.
inline void read_config_window(std::span<const uint8_t> space, uint64_t offset, std::span<uint8_t> data) {
  for (size_t i = 0; i < data.size(); ++i)
    data[i] = offset < space.size() && i < space.size() - offset ? space[offset + i] : 0;
}

class VirtioDevice {
 public:
  virtual ~VirtioDevice() = default;

  virtual uint32_t device_type() const = 0;  // virtio device id: 2 block, 19 vsock...
  // Every feature offered, VIRTIO_F_VERSION_1 included.
  virtual uint64_t device_features() const = 0;
  virtual size_t queue_count() const = 0;
  virtual uint16_t queue_max_size(size_t queue) const = 0;

  // The device-specific configuration space; reads past its end return 0,
  // writes past it are ignored. Read-only unless a device says otherwise
  // (none of ours offers a writable field).
  virtual void read_config(uint64_t offset, std::span<uint8_t> data) = 0;
  virtual void write_config(uint64_t /*offset*/, std::span<const uint8_t> /*data*/) {}

  // DRIVER_OK: the negotiated features and one queue per queue_count() (null
  // for queues the driver left disabled). Returns false to refuse, and the
  // transport reports DEVICE_NEEDS_RESET.
  virtual bool activate(uint64_t features, std::vector<std::unique_ptr<Virtqueue>> queues,
                        std::shared_ptr<DeviceInterrupt> interrupt) = 0;
  // The driver kicked `queue`. Kicks come straight from the queue's ioeventfd,
  // at any time: before activate and after reset they must do nothing.
  virtual void queue_notify(size_t queue) = 0;
  // Back to the state before activate: drop the queues, stop all work.
  virtual void reset() = 0;
  // Shared memory region `id`, if the device has one.
  virtual std::optional<SharedMemoryRegion> shared_memory_region(uint8_t /*id*/) const { return std::nullopt; }
};

}  // namespace skiff::virtio
