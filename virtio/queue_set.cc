#include "virtio/queue_set.h"

namespace skiff::virtio {

bool QueueSet::activate(size_t count, uint64_t required, std::vector<std::unique_ptr<Virtqueue>> queues,
                        std::shared_ptr<DeviceInterrupt> interrupt) {
  reset();
  if (queues.size() != count || count == 0 || !interrupt) return false;
  for (size_t q = 0; q < count; ++q) {
    const bool needed = q < 64 && (required >> q & 1);
    if (queues[q] ? !queues[q]->valid() : needed) return false;
  }
  for (auto& q : queues) {
    if (q && !mem_) mem_ = &q->memory();
    auto entry = std::make_unique<Entry>();
    entry->vq = std::move(q);
    queues_.push_back(std::move(entry));
  }
  interrupt_ = std::move(interrupt);
  return true;
}

void QueueSet::reset() {
  queues_.clear();
  interrupt_.reset();
  mem_ = nullptr;
}

std::optional<DescriptorChain> QueueSet::pop(size_t q) {
  if (!enabled(q)) return std::nullopt;
  Entry& e = *queues_[q];
  std::lock_guard lock(e.mu);
  return e.vq->pop();
}

void QueueSet::add_used(size_t q, uint16_t head, uint32_t written) {
  if (!enabled(q)) return;
  Entry& e = *queues_[q];
  std::lock_guard lock(e.mu);
  e.vq->add_used(head, written);
}

bool QueueSet::needs_notification(size_t q) {
  return update(q, [](Virtqueue&) {});
}

void QueueSet::complete(size_t q, uint16_t head, uint32_t written) {
  if (update(q, [&](Virtqueue& vq) { vq.add_used(head, written); })) notify();
}

void QueueSet::notify() const {
  if (interrupt_) interrupt_->used_buffers();
}

}  // namespace skiff::virtio
