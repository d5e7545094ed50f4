#pragma once
// The live queues of an activated device and what every device does with
// them: take them at DRIVER_OK (checked), pop chains and add used elements
// under the queue's own lock, ask needs_notification() under that lock, and
// inject the interrupt outside every lock. Devices hold one QueueSet instead
// of a vector of queues, their locks and an interrupt pointer each.
//
// Threading: pop(), add_used(), update(), needs_notification() and complete()
// may run on any thread and on different queues at once; a queue's own calls
// are serialized by its lock. activate() and reset() must not race with
// them: the device makes sure (virtio-blk drains its requests, virtio-fs
// waits for its workers, vsock holds its one lock).
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <utility>
#include <vector>

#include "virtio/device.h"
#include "virtio/virtqueue.h"

namespace skiff::virtio {

class QueueSet {
 public:
  // Takes the queues DRIVER_OK handed over. Refuses (false, the set stays
  // inactive) unless there are `count` of them, every enabled one is valid,
  // every queue with its bit in `required` is enabled, and there is an
  // interrupt.
  bool activate(size_t count, uint64_t required, std::vector<std::unique_ptr<Virtqueue>> queues,
                std::shared_ptr<DeviceInterrupt> interrupt);
  // Drops the queues and the interrupt.
  void reset();

  bool active() const { return !queues_.empty(); }
  size_t size() const { return queues_.size(); }
  // Active, and the driver enabled queue `q`.
  bool enabled(size_t q) const { return q < queues_.size() && queues_[q]->vq; }
  // Enabled and not broken (a ring-level guest bug ends a queue for good).
  bool usable(size_t q) const { return enabled(q) && !queues_[q]->vq->broken(); }

  // The next available chain of an enabled queue (nullopt otherwise).
  std::optional<DescriptorChain> pop(size_t q);
  // One used element; ask needs_notification() after the batch.
  void add_used(size_t q, uint16_t head, uint32_t written);
  // Under q's lock: `use(Virtqueue&)` adds used elements (a batch); returns
  // whether the driver wants an interrupt for them. Raise it with notify().
  template <typename F>
  bool update(size_t q, F&& use) {
    if (!enabled(q)) return false;
    Entry& e = *queues_[q];
    std::lock_guard lock(e.mu);
    use(*e.vq);
    return e.vq->needs_notification();
  }
  bool needs_notification(size_t q);
  // add_used, and the interrupt if the driver wants it.
  void complete(size_t q, uint16_t head, uint32_t written);
  // The interrupt (call it outside every lock).
  void notify() const;
  // The guest memory the queues' chains point into (for a ChainReader or
  // ChainWriter); only while active.
  // (from a chain it popped: some queue is enabled).
  const GuestMemory& memory() const { return *mem_; }
  // For a caller that raises it later, outside its own lock.
  const std::shared_ptr<DeviceInterrupt>& interrupt() const { return interrupt_; }

 private:
  struct Entry {
    std::mutex mu;
    std::unique_ptr<Virtqueue> vq;
  };
  std::vector<std::unique_ptr<Entry>> queues_;
  std::shared_ptr<DeviceInterrupt> interrupt_;
  const GuestMemory* mem_ = nullptr;
};

}  // namespace skiff::virtio
