#pragma once
// virtio-mmio transport, version 2 (virtio 1.2, section 4.2): the register
// block a guest driver discovers from `virtio_mmio.device=` on its command
// line, feature negotiation, the device status state machine, queue set-up,
// the configuration generation counter and reset. One instance per device;
// vCPU threads call it concurrently.
#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <vector>

#include "devices/bus.h"
#include "devices/interrupt_line.h"
#include "virtio/device.h"
#include "memory/guest_memory.h"

namespace skiff::virtio {

// Register offsets.
namespace mmio {
inline constexpr uint64_t kMagicValue = 0x000, kVersion = 0x004, kDeviceId = 0x008, kVendorId = 0x00c;
inline constexpr uint64_t kDeviceFeatures = 0x010, kDeviceFeaturesSel = 0x014;
inline constexpr uint64_t kDriverFeatures = 0x020, kDriverFeaturesSel = 0x024;
inline constexpr uint64_t kQueueSel = 0x030, kQueueNumMax = 0x034, kQueueNum = 0x038, kQueueReady = 0x044;
inline constexpr uint64_t kQueueNotify = 0x050, kInterruptStatus = 0x060, kInterruptAck = 0x064, kStatus = 0x070;
inline constexpr uint64_t kQueueDescLow = 0x080, kQueueDescHigh = 0x084, kQueueDriverLow = 0x090;
inline constexpr uint64_t kQueueDriverHigh = 0x094, kQueueDeviceLow = 0x0a0, kQueueDeviceHigh = 0x0a4;
inline constexpr uint64_t kShmSel = 0x0ac, kShmLenLow = 0x0b0, kShmLenHigh = 0x0b4, kShmBaseLow = 0x0b8;
inline constexpr uint64_t kShmBaseHigh = 0x0bc, kQueueReset = 0x0c0, kConfigGeneration = 0x0fc, kConfig = 0x100;
inline constexpr uint32_t kMagic = 0x74726976;  // "virt"
inline constexpr uint32_t kVendor = 0x46464b53;  // "SKFF"
inline constexpr uint64_t kWindowSize = 0x1000;
}  // namespace mmio

// Device status bits (section 2.1).
inline constexpr uint32_t kStatusAcknowledge = 1, kStatusDriver = 2, kStatusDriverOk = 4, kStatusFeaturesOk = 8;
inline constexpr uint32_t kStatusNeedsReset = 64, kStatusFailed = 128;
// InterruptStatus bits.
inline constexpr uint32_t kInterruptUsedBuffer = 1, kInterruptConfigChange = 2;

class MmioTransport final : public devices::BusDevice {
 public:
  MmioTransport(const GuestMemory& mem, std::shared_ptr<VirtioDevice> device,
                std::shared_ptr<devices::InterruptLine> irq);
  ~MmioTransport() override;

  void read(uint64_t offset, std::span<uint8_t> data) override;
  void write(uint64_t offset, std::span<const uint8_t> data) override;

  // A queue kick that arrived through an ioeventfd: passed to the device
  // once it is active, ignored before.
  void notify(size_t queue);
  size_t queue_count() const { return queues_.size(); }

  uint32_t status() const;
  bool activated() const;
  uint64_t driver_features() const;
  // The device changed its configuration space: bump the generation and
  // interrupt the driver.
  void config_changed();

 private:
  class Interrupt;
  struct QueueState {
    uint16_t num = 0;
    bool ready = false;
    uint64_t desc = 0, driver = 0, device = 0;
  };

  uint32_t read_register(uint64_t offset);
  void write_register(uint64_t offset, uint32_t value);
  void write_status(uint32_t value);
  void activate();
  void reset_locked();
  QueueState* selected_queue();
  bool queue_config_writable() const;

  const GuestMemory& mem_;
  const std::shared_ptr<VirtioDevice> device_;
  const std::shared_ptr<devices::InterruptLine> irq_;
  std::shared_ptr<Interrupt> interrupt_;

  mutable std::mutex mutex_;
  uint32_t status_ = 0;
  uint32_t device_features_sel_ = 0;
  uint32_t driver_features_sel_ = 0;
  uint64_t driver_features_ = 0;
  uint32_t queue_sel_ = 0;
  uint32_t shm_sel_ = 0;
  std::vector<QueueState> queues_;
  bool activated_ = false;
  std::atomic<uint32_t> interrupt_status_{0};
  std::atomic<uint32_t> config_generation_{0};
};

// The kernel command-line argument declaring a virtio-mmio device:
// "virtio_mmio.device=4K@0xd0000000:5".
std::string mmio_cmdline_arg(uint64_t base, uint64_t size, uint32_t gsi);

}  // namespace skiff::virtio
