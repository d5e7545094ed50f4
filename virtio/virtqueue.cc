#include "virtio/virtqueue.h"

#include <algorithm>
#include <atomic>
#include <bit>

#include "virtio/device.h"

namespace skiff::virtio {

namespace {

bool area_ok(const GuestMemory& mem, GuestAddress addr, uint64_t align, uint64_t len) {
  return addr.value() % align == 0 && mem.contains(addr, len);
}

// Offsets inside the areas validated by the constructor: they cannot overflow.
constexpr uint64_t kAvailFlags = 0, kAvailIdx = 2, kAvailRing = 4;
constexpr uint64_t kUsedIdx = 2, kUsedRing = 4;

}  // namespace

uint64_t DescriptorChain::readable_bytes() const {
  uint64_t n = 0;
  for (const auto& d : descriptors) n += d.write ? 0 : d.len;
  return n;
}

uint64_t DescriptorChain::writable_bytes() const {
  uint64_t n = 0;
  for (const auto& d : descriptors) n += d.write ? d.len : 0;
  return n;
}

Virtqueue::Virtqueue(const GuestMemory& mem, QueueConfig config) : mem_(mem), config_(config) {
  const uint16_t s = config.size;
  valid_ = s != 0 && s <= kMaxQueueSize && std::has_single_bit(s) &&
           area_ok(mem, config.desc, 16, desc_table_bytes(s)) && area_ok(mem, config.avail, 2, avail_ring_bytes(s)) &&
           area_ok(mem, config.used, 4, used_ring_bytes(s));
  broken_ = !valid_;
}

void Virtqueue::set_indices(uint16_t last_avail_idx, uint16_t used_idx) {
  last_avail_idx_ = last_avail_idx;
  used_idx_ = used_idx;
  signalled_used_valid_ = false;
}

std::optional<DescriptorChain> Virtqueue::pop() noexcept {
  if (broken_) return std::nullopt;
  try {
    const uint16_t avail_idx = mem_.read_obj<uint16_t>(config_.avail.unchecked_add(kAvailIdx));
    // Pairs with the driver's write barrier before its avail idx store: ring
    // entries and descriptors are read after the index.
    std::atomic_thread_fence(std::memory_order_acquire);
    const uint16_t pending = static_cast<uint16_t>(avail_idx - last_avail_idx_);
    if (pending > config_.size) {
      broken_ = true;  // the driver claims more buffers than the ring holds
      return std::nullopt;
    }
    if (pending == 0) return std::nullopt;
    const uint64_t slot = last_avail_idx_ & (config_.size - 1u);
    const uint16_t head = mem_.read_obj<uint16_t>(config_.avail.unchecked_add(kAvailRing + 2 * slot));
    ++last_avail_idx_;
    if (config_.event_idx) {
      set_avail_event(last_avail_idx_);
      // The avail_event store must be visible before we next read avail idx.
      std::atomic_thread_fence(std::memory_order_seq_cst);
    }
    return read_chain(head);
  } catch (const std::exception&) {
    // Unreachable with a valid queue (the rings were checked); bad_alloc or a
    // GuestMemoryError still must not escape to the vCPU/IO thread.
    broken_ = true;
    return std::nullopt;
  }
}

DescriptorChain Virtqueue::read_chain(uint16_t head) const {
  DescriptorChain chain;
  chain.head = head;
  // Most requests are header + data + status: one allocation, not three.
  chain.descriptors.reserve(4);
  auto fail = [&chain](std::string why) {
    chain.descriptors.clear();
    chain.error = std::move(why);
    return chain;
  };
  if (head >= config_.size) return fail("head descriptor index out of range");

  GuestAddress table = config_.desc;
  uint32_t table_len = config_.size;  // entries in the current table
  uint32_t walked = 0;                // descriptors walked in the current table (loop bound)
  bool indirect = false;
  bool seen_write = false;
  uint64_t total = 0;
  uint16_t index = head;

  try {
    for (;;) {
      if (++walked > table_len) return fail(indirect ? "indirect chain loops" : "descriptor chain loops");
      // index < table_len and the table is inside guest RAM: no overflow.
      const auto d = mem_.read_obj<RawDescriptor>(table.unchecked_add(kDescSize * index));

      if (d.flags & kDescFIndirect) {
        if (indirect) return fail("nested indirect descriptor");
        if (d.flags & kDescFNext) return fail("indirect descriptor with NEXT flag");
        if (d.len == 0 || d.len % kDescSize != 0) return fail("indirect table length not a non-zero multiple of 16");
        if (!mem_.contains(GuestAddress(d.addr), d.len)) return fail("indirect table outside guest memory");
        indirect = true;
        table = GuestAddress(d.addr);
        table_len = d.len / kDescSize;
        walked = 0;
        index = 0;
        continue;
      }

      const bool write = (d.flags & kDescFWrite) != 0;
      if (!write && seen_write) return fail("readable descriptor after a writable one");
      seen_write = seen_write || write;
      if (!mem_.contains(GuestAddress(d.addr), d.len)) return fail("buffer outside guest memory");
      total += d.len;
      if (total > UINT32_MAX) return fail("chain length exceeds 2^32-1 bytes");
      if (chain.descriptors.size() >= config_.size) return fail("descriptor chain longer than the queue size");
      chain.descriptors.push_back(Descriptor{GuestAddress(d.addr), d.len, write});

      if (!(d.flags & kDescFNext)) break;
      if (d.next >= table_len) return fail("next descriptor index out of range");
      index = d.next;
    }
  } catch (const std::exception&) {
    return fail("descriptor not readable");
  }
  return chain;
}

void Virtqueue::add_used(uint16_t head, uint32_t written) noexcept {
  if (broken_) return;
  try {
    const uint64_t slot = used_idx_ & (config_.size - 1u);
    mem_.write_obj(config_.used.unchecked_add(kUsedRing + 8 * slot), UsedElem{head, written});
    // The element must be visible before the index that publishes it.
    std::atomic_thread_fence(std::memory_order_release);
    ++used_idx_;
    mem_.write_obj(config_.used.unchecked_add(kUsedIdx), used_idx_);
  } catch (const std::exception&) {
    broken_ = true;
  }
}

bool Virtqueue::needs_notification() noexcept {
  if (broken_) return false;
  // The used idx store must be visible before we read the driver's
  // suppression state (it may be re-enabling interrupts right now).
  std::atomic_thread_fence(std::memory_order_seq_cst);
  const uint16_t new_idx = used_idx_;
  const uint16_t old_idx = signalled_used_;
  const bool was_valid = signalled_used_valid_;
  if (was_valid && new_idx == old_idx) return false;  // nothing new since the last notification
  try {
    if (config_.event_idx) {
      signalled_used_ = new_idx;
      signalled_used_valid_ = true;
      if (!was_valid) return true;
      const uint16_t used_event =
          mem_.read_obj<uint16_t>(config_.avail.unchecked_add(kAvailRing + 2ull * config_.size));
      // vring_need_event(event, new, old)
      return static_cast<uint16_t>(new_idx - used_event - 1) < static_cast<uint16_t>(new_idx - old_idx);
    }
    const uint16_t flags = mem_.read_obj<uint16_t>(config_.avail.unchecked_add(kAvailFlags));
    if (flags & kAvailFNoInterrupt) return false;
    signalled_used_ = new_idx;
    signalled_used_valid_ = true;
    return true;
  } catch (const std::exception&) {
    broken_ = true;
    return false;
  }
}

void Virtqueue::set_avail_event(uint16_t value) noexcept {
  if (!valid_) return;
  try {
    mem_.write_obj(config_.used.unchecked_add(kUsedRing + 8ull * config_.size), value);
  } catch (const std::exception&) {
    broken_ = true;
  }
}

// ---- QueueSet ----

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
