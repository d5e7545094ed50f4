#include "virtio/mmio_transport.h"

#include <algorithm>
#include <cstring>

#include "base/hex.h"
#include "base/log.h"

namespace skiff::virtio {

// The device's view of the transport's interrupt: sets InterruptStatus and
// pulses the line. Outlives a reset harmlessly (the device drops it then).
class MmioTransport::Interrupt final : public DeviceInterrupt {
 public:
  explicit Interrupt(MmioTransport& t) : t_(t) {}
  void used_buffers() override { raise(kInterruptUsedBuffer); }
  void config_changed() override { t_.config_changed(); }
  void raise(uint32_t bits) {
    t_.interrupt_status_.fetch_or(bits);
    if (t_.irq_) t_.irq_->trigger();
  }

 private:
  MmioTransport& t_;
};

MmioTransport::MmioTransport(const GuestMemory& mem, std::shared_ptr<VirtioDevice> device,
                             std::shared_ptr<devices::InterruptLine> irq)
    : mem_(mem), device_(std::move(device)), irq_(std::move(irq)), queues_(device_->queue_count()) {
  interrupt_ = std::make_shared<Interrupt>(*this);
}

MmioTransport::~MmioTransport() {
  // The device holds our interrupt while active: make it let go.
  std::lock_guard lock(mutex_);
  if (activated_) device_->reset();
}

void MmioTransport::notify(size_t queue) {
  {
    std::lock_guard lock(mutex_);
    if (!activated_ || queue >= queues_.size()) return;
  }
  device_->queue_notify(queue);
}

uint32_t MmioTransport::status() const {
  std::lock_guard lock(mutex_);
  return status_;
}

bool MmioTransport::activated() const {
  std::lock_guard lock(mutex_);
  return activated_;
}

uint64_t MmioTransport::driver_features() const {
  std::lock_guard lock(mutex_);
  return driver_features_;
}

void MmioTransport::config_changed() {
  config_generation_.fetch_add(1);
  interrupt_->raise(kInterruptConfigChange);
}

MmioTransport::QueueState* MmioTransport::selected_queue() {
  return queue_sel_ < queues_.size() ? &queues_[queue_sel_] : nullptr;
}

bool MmioTransport::queue_config_writable() const {
  // Section 4.2.3.2: queues are set up after FEATURES_OK and before DRIVER_OK.
  return (status_ & kStatusFeaturesOk) && !(status_ & kStatusDriverOk);
}

void MmioTransport::read(uint64_t offset, std::span<uint8_t> data) {
  std::fill(data.begin(), data.end(), 0);
  if (offset >= mmio::kConfig) {
    device_->read_config(offset - mmio::kConfig, data);
    return;
  }
  // Registers are 32 bits wide and read 32 bits at a time (section 4.2.2.2);
  // anything else reads 0.
  if (data.size() != 4 || offset % 4) return;
  const uint32_t v = read_register(offset);
  std::memcpy(data.data(), &v, 4);
}

void MmioTransport::write(uint64_t offset, std::span<const uint8_t> data) {
  if (offset >= mmio::kConfig) {
    device_->write_config(offset - mmio::kConfig, data);
    return;
  }
  if (data.size() != 4 || offset % 4) return;
  uint32_t v;
  std::memcpy(&v, data.data(), 4);
  write_register(offset, v);
}

uint32_t MmioTransport::read_register(uint64_t offset) {
  std::lock_guard lock(mutex_);
  QueueState* q = selected_queue();
  switch (offset) {
    case mmio::kMagicValue: return mmio::kMagic;
    case mmio::kVersion: return 2;
    case mmio::kDeviceId: return device_->device_type();
    case mmio::kVendorId: return mmio::kVendor;
    case mmio::kDeviceFeatures:
      return device_features_sel_ < 2 ? static_cast<uint32_t>(device_->device_features() >> (32 * device_features_sel_))
                                      : 0;
    case mmio::kQueueNumMax: return q ? device_->queue_max_size(queue_sel_) : 0;
    case mmio::kQueueReady: return q && q->ready ? 1 : 0;
    case mmio::kInterruptStatus: return interrupt_status_.load();
    case mmio::kStatus: return status_;
    case mmio::kShmLenLow:
    case mmio::kShmLenHigh:
    case mmio::kShmBaseLow:
    case mmio::kShmBaseHigh: {
      // A region that does not exist reads as length and base all ones (section 4.2.2).
      const auto r = shm_sel_ <= 0xff ? device_->shared_memory_region(static_cast<uint8_t>(shm_sel_)) : std::nullopt;
      const uint64_t v = !r ? ~uint64_t{0}
                         : (offset == mmio::kShmLenLow || offset == mmio::kShmLenHigh) ? r->length
                                                                                       : r->guest_base;
      return (offset == mmio::kShmLenLow || offset == mmio::kShmBaseLow) ? static_cast<uint32_t>(v)
                                                                         : static_cast<uint32_t>(v >> 32);
    }
    case mmio::kConfigGeneration: return config_generation_.load();
    default: return 0;  // write-only or reserved
  }
}

void MmioTransport::write_register(uint64_t offset, uint32_t v) {
  std::unique_lock lock(mutex_);
  QueueState* q = selected_queue();
  auto set_low = [](uint64_t& a, uint32_t v) { a = (a & ~0xffffffffull) | v; };
  auto set_high = [](uint64_t& a, uint32_t v) { a = (a & 0xffffffffull) | (uint64_t{v} << 32); };
  switch (offset) {
    case mmio::kDeviceFeaturesSel: device_features_sel_ = v; break;
    case mmio::kDriverFeaturesSel: driver_features_sel_ = v; break;
    case mmio::kDriverFeatures:
      // Only while negotiating (before FEATURES_OK), and only the first 64 bits exist.
      if ((status_ & kStatusDriver) && !(status_ & kStatusFeaturesOk) && driver_features_sel_ < 2) {
        if (driver_features_sel_ == 0) set_low(driver_features_, v);
        else set_high(driver_features_, v);
      }
      break;
    case mmio::kQueueSel: queue_sel_ = v; break;
    case mmio::kQueueNum:
      if (q && queue_config_writable() && !q->ready) q->num = static_cast<uint16_t>(std::min<uint32_t>(v, 0xffff));
      break;
    case mmio::kQueueReady:
      if (q && queue_config_writable()) q->ready = (v & 1) != 0;
      break;
    case mmio::kQueueDescLow: if (q && queue_config_writable() && !q->ready) set_low(q->desc, v); break;
    case mmio::kQueueDescHigh: if (q && queue_config_writable() && !q->ready) set_high(q->desc, v); break;
    case mmio::kQueueDriverLow: if (q && queue_config_writable() && !q->ready) set_low(q->driver, v); break;
    case mmio::kQueueDriverHigh: if (q && queue_config_writable() && !q->ready) set_high(q->driver, v); break;
    case mmio::kQueueDeviceLow: if (q && queue_config_writable() && !q->ready) set_low(q->device, v); break;
    case mmio::kQueueDeviceHigh: if (q && queue_config_writable() && !q->ready) set_high(q->device, v); break;
    case mmio::kShmSel: shm_sel_ = v; break;
    case mmio::kInterruptAck: interrupt_status_.fetch_and(~v); break;
    case mmio::kStatus: write_status(v); break;
    case mmio::kQueueNotify:
      // Kicks normally arrive through an ioeventfd; this is the slow path.
      lock.unlock();  // the device does its own locking and may take long
      notify(v);
      break;
    default: break;  // read-only or reserved
  }
}

void MmioTransport::write_status(uint32_t v) {
  if (v == 0) {
    reset_locked();
    return;
  }
  // The driver only ever adds bits (section 3.1.1); anything else is a driver
  // bug that the device reports by refusing to go on.
  if ((v & status_) != status_) {
    status_ |= kStatusNeedsReset;
    return;
  }
  const uint32_t added = v & ~status_;
  if (added & kStatusFeaturesOk) {
    const uint64_t offered = device_->device_features();
    const bool acceptable = (driver_features_ & ~offered) == 0 && (driver_features_ & bit(kFeatureVersion1));
    if (!acceptable) v &= ~kStatusFeaturesOk;  // the driver reads it back and gives up
  }
  status_ = v;
  if ((added & kStatusDriverOk) && (status_ & kStatusFeaturesOk) && !activated_) activate();
}

void MmioTransport::activate() {
  std::vector<std::unique_ptr<Virtqueue>> queues(queues_.size());
  const bool event_idx = (driver_features_ & bit(kFeatureEventIdx)) != 0;
  for (size_t i = 0; i < queues_.size(); ++i) {
    const QueueState& s = queues_[i];
    if (!s.ready) continue;
    if (s.num == 0 || s.num > device_->queue_max_size(i)) {
      status_ |= kStatusNeedsReset;
      return;
    }
    QueueConfig cfg{s.num, GuestAddress(s.desc), GuestAddress(s.driver), GuestAddress(s.device), event_idx};
    auto vq = std::make_unique<Virtqueue>(mem_, cfg);
    if (!vq->valid()) {
      log::warn("virtio", "driver set up an invalid queue",
                {{"device", uint64_t{device_->device_type()}}, {"queue", uint64_t{i}}, {"desc", hex(s.desc)}});
      status_ |= kStatusNeedsReset;
      return;
    }
    queues[i] = std::move(vq);
  }
  if (!device_->activate(driver_features_, std::move(queues), interrupt_)) {
    status_ |= kStatusNeedsReset;
    return;
  }
  activated_ = true;
}

void MmioTransport::reset_locked() {
  if (activated_) device_->reset();
  activated_ = false;
  status_ = 0;
  device_features_sel_ = driver_features_sel_ = queue_sel_ = shm_sel_ = 0;
  driver_features_ = 0;
  std::fill(queues_.begin(), queues_.end(), QueueState{});
  interrupt_status_.store(0);
}

std::string mmio_cmdline_arg(uint64_t base, uint64_t size, uint32_t gsi) {
  return "virtio_mmio.device=" + std::to_string(size >> 10) + "K@" + hex(base) + ":" + std::to_string(gsi);
}

}  // namespace skiff::virtio
