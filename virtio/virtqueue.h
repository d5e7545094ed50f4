#pragma once
// Device side of a virtio 1.x split virtqueue (virtio spec 1.2, section 2.7),
// and all a device model does with its queues: Virtqueue (the ring),
// ChainReader/ChainWriter (moving bytes through a chain) and QueueSet (a
// device's queues, their locks and its interrupt). One unit, so that a
// device's request path has one place to look for queue work.
//
// Everything in the rings and descriptor tables is written by the guest and is
// treated as hostile (docs/DESIGN.md section 4): every access goes through
// GuestMemory's checked accessors, every chain walk is count-bounded, and
// nothing guest-controlled makes pop()/add_used() throw.
//
// Error model:
//  * Queue configuration (set by the transport): the constructor never throws;
//    a bad configuration (size not a power of two in [1, 32768], a ring
//    misaligned or not wholly inside guest RAM) gives valid() == false, and such
//    a queue is also broken(): pop() returns nullopt, add_used() does nothing.
//    The transport should refuse DRIVER_OK / set DEVICE_NEEDS_RESET.
//  * Ring-level guest bugs (avail idx more than `size` ahead of the device):
//    the queue becomes broken() for good; pop() returns nullopt thereafter. The
//    device should set DEVICE_NEEDS_RESET.
//  * A malformed descriptor chain is consumed by pop() and returned with
//    `error` set and `descriptors` EMPTY (nothing of a bad chain is ever handed
//    to the device). The device completes it with add_used(chain.head, 0) (its
//    "bad request"); it may also set DEVICE_NEEDS_RESET if it prefers.
#include <sys/uio.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "memory/guest_address.h"
#include "memory/guest_memory.h"

namespace skiff::virtio {

class DeviceInterrupt;  // virtio/device.h: a QueueSet only holds and calls it

// Descriptor flags (spec 2.7.5).
inline constexpr uint16_t kDescFNext = 1;
inline constexpr uint16_t kDescFWrite = 2;
inline constexpr uint16_t kDescFIndirect = 4;
// Ring flags (spec 2.7.6, 2.7.8).
inline constexpr uint16_t kAvailFNoInterrupt = 1;
inline constexpr uint16_t kUsedFNoNotify = 1;

inline constexpr uint16_t kMaxQueueSize = 32768;
inline constexpr uint64_t kDescSize = 16;

// The in-memory layout of one descriptor (little-endian guest, x86-64 host).
struct RawDescriptor {
  uint64_t addr;
  uint32_t len;
  uint16_t flags;
  uint16_t next;
};
static_assert(sizeof(RawDescriptor) == 16);

struct UsedElem {
  uint32_t id;
  uint32_t len;
};
static_assert(sizeof(UsedElem) == 8);

struct QueueConfig {
  uint16_t size = 0;  // power of two <= 32768, set by the transport
  GuestAddress desc, avail, used;
  bool event_idx = false;  // VIRTIO_F_EVENT_IDX negotiated
};

// Byte sizes of the three areas for a queue of `size` entries.
constexpr uint64_t desc_table_bytes(uint16_t size) { return kDescSize * size; }
constexpr uint64_t avail_ring_bytes(uint16_t size) { return 6 + 2ull * size; }
constexpr uint64_t used_ring_bytes(uint16_t size) { return 6 + 8ull * size; }

struct Descriptor {
  GuestAddress addr;
  uint32_t len = 0;
  bool write = false;  // device-writable
};

// One available buffer, flattened (indirect tables followed). All readable
// descriptors come before all writable ones. Every [addr, addr+len) is inside
// one guest RAM region (a zero-length one too: its address must be in RAM);
// the total length fits in 32 bits; the chain has at most `size` descriptors
// (counting those in an indirect table, not the descriptor that points at
// the table: devices must keep seg_max-style limits <= the queue size).
// Indirect: a descriptor with VIRTQ_DESC_F_INDIRECT (and without NEXT) ends
// the direct part of the chain and continues at entry 0 of its table; its
// WRITE flag is ignored; an INDIRECT inside a table is rejected (nested).
struct DescriptorChain {
  uint16_t head = 0;
  std::vector<Descriptor> descriptors;  // empty when error is set
  std::string error;                    // non-empty: malformed chain, complete with add_used(head, 0)

  bool ok() const { return error.empty(); }
  uint64_t readable_bytes() const;
  uint64_t writable_bytes() const;
};

class Virtqueue {
 public:
  Virtqueue(const GuestMemory& mem, QueueConfig config);

  bool valid() const { return valid_; }
  bool broken() const { return broken_; }
  const QueueConfig& config() const { return config_; }
  uint16_t size() const { return config_.size; }
  uint16_t last_avail_idx() const { return last_avail_idx_; }
  uint16_t used_idx() const { return used_idx_; }

  // Snapshot restore: continue from these ring positions.
  void set_indices(uint16_t last_avail_idx, uint16_t used_idx);

  // The next available chain, or nullopt when the ring is empty or the queue
  // is broken. With event_idx, also publishes avail_event = last_avail_idx.
  std::optional<DescriptorChain> pop() noexcept;

  // The guest memory its chains point into (for a ChainReader/ChainWriter).
  const GuestMemory& memory() const { return mem_; }

  // Publishes a used element, then (after a release fence) the used idx.
  void add_used(uint16_t head, uint32_t written) noexcept;

  // Whether the driver wants an interrupt for the used buffers added since the
  // last time this returned true (false when none were added). EVENT_IDX:
  // vring_need_event(used_event, used_idx, used idx at last notification),
  // always true the first time after construction/set_indices (as QEMU);
  // otherwise: avail flags lack VIRTQ_AVAIL_F_NO_INTERRUPT. Call it after a
  // batch of add_used() and inject the interrupt when it returns true.
  bool needs_notification() noexcept;

  // Writes avail_event (end of the used ring); only meaningful with event_idx.
  void set_avail_event(uint16_t value) noexcept;

 private:
  DescriptorChain read_chain(uint16_t head) const;

  const GuestMemory& mem_;
  QueueConfig config_;
  bool valid_ = false;
  bool broken_ = false;
  uint16_t last_avail_idx_ = 0;
  uint16_t used_idx_ = 0;
  uint16_t signalled_used_ = 0;
  bool signalled_used_valid_ = false;
};

// ---- Reading and writing a chain ----
// The one way a device model moves bytes through a descriptor chain:
// ChainReader walks its device-readable part front to back, ChainWriter its
// device-writable part. Both see host spans of guest RAM that
// GuestMemory::slice produced for ranges the Virtqueue already checked, so a
// device never computes a guest address; iovecs() hands the same ranges to
// preadv/pwritev (virtio-blk, virtio-fs READ/WRITE) with no copy in between.
//
// Everything a reader sees was written by the guest and may change under us
// while we read it (another vCPU): copy a header out once, then use the copy.
//
// assign() refills a cursor and keeps its capacity: a device that keeps one
// per thread allocates nothing per request.

template <typename Byte>
class ChainCursor {
 public:
  ChainCursor() = default;
  explicit ChainCursor(std::vector<std::span<Byte>> spans) : spans_(std::move(spans)) { count(); }
  ChainCursor(const GuestMemory& mem, const DescriptorChain& chain) { assign(mem, chain); }

  // The chain's readable (ChainReader) or writable (ChainWriter) descriptors,
  // from their start. A malformed chain (no descriptors) gives an empty cursor.
  void assign(const GuestMemory& mem, const DescriptorChain& chain) {
    spans_.clear();
    for (const auto& d : chain.descriptors) {
      if (d.write != kWritable || d.len == 0) continue;
      const auto s = mem.slice(d.addr, d.len);
      spans_.emplace_back(s.data(), s.size());
    }
    count();
  }

  size_t remaining() const { return remaining_; }
  size_t consumed() const { return consumed_; }

  // The next `len` bytes (or fewer, at the end) as iovecs appended to `out`,
  // consumed.
  void append_iovecs(std::vector<iovec>& out, size_t len) {
    while (len > 0 && idx_ < spans_.size()) {
      const size_t n = std::min(len, spans_[idx_].size() - off_);
      out.push_back(iovec{const_cast<uint8_t*>(reinterpret_cast<const uint8_t*>(spans_[idx_].data() + off_)), n});
      advance(n);
      len -= n;
    }
  }
  std::vector<iovec> iovecs(size_t len) {
    std::vector<iovec> out;
    append_iovecs(out, len);
    return out;
  }
  // Skips `len` bytes, or what remains; returns the bytes skipped.
  size_t skip_some(size_t len) {
    const size_t n = std::min(len, remaining_);
    for (size_t left = n; left > 0;) {
      const size_t step = std::min(left, spans_[idx_].size() - off_);
      advance(step);
      left -= step;
    }
    return n;
  }
  // Skips exactly `len` bytes; false (nothing skipped) when fewer remain.
  bool skip(size_t len) { return len <= remaining_ && skip_some(len) == len; }

 protected:
  static constexpr bool kWritable = !std::is_const_v<Byte>;

  // Copies min(len, remaining()) bytes between `p` and the cursor, consumed;
  // returns how many.
  template <typename Ptr>
  size_t copy(Ptr p, size_t len) {
    const size_t n = std::min(len, remaining_);
    for (size_t done = 0; done < n;) {
      const size_t step = std::min(n - done, spans_[idx_].size() - off_);
      if constexpr (kWritable)
        std::memcpy(spans_[idx_].data() + off_, p + done, step);
      else
        std::memcpy(p + done, spans_[idx_].data() + off_, step);
      advance(step);
      done += step;
    }
    return n;
  }

 private:
  void count() {
    remaining_ = consumed_ = idx_ = off_ = 0;
    for (const auto& s : spans_) remaining_ += s.size();
    skip_empty();
  }
  void advance(size_t n) {
    off_ += n;
    remaining_ -= n;
    consumed_ += n;
    skip_empty();
  }
  void skip_empty() {
    while (idx_ < spans_.size() && off_ == spans_[idx_].size()) {
      ++idx_;
      off_ = 0;
    }
  }

  std::vector<std::span<Byte>> spans_;
  size_t idx_ = 0, off_ = 0, remaining_ = 0, consumed_ = 0;
};

class ChainReader : public ChainCursor<const uint8_t> {
 public:
  using ChainCursor::ChainCursor;
  // Copies up to out.size() bytes out; returns how many (short at the end).
  size_t read_some(std::span<uint8_t> out) { return copy(out.data(), out.size()); }
  // Copies exactly `len` bytes out; false (nothing consumed) when fewer remain.
  bool read(void* dst, size_t len) { return len <= remaining() && copy(static_cast<uint8_t*>(dst), len) == len; }
  template <typename T>
  bool read_obj(T& obj) {
    return read(&obj, sizeof(T));
  }
};

class ChainWriter : public ChainCursor<uint8_t> {
 public:
  using ChainCursor::ChainCursor;
  // Copies up to in.size() bytes in; returns how many (short at the end).
  size_t write_some(std::span<const uint8_t> in) { return copy(in.data(), in.size()); }
  // Copies exactly `len` bytes in; false (nothing written) when they don't fit.
  bool write(const void* src, size_t len) {
    return len <= remaining() && copy(static_cast<const uint8_t*>(src), len) == len;
  }
  template <typename T>
  bool write_obj(const T& obj) {
    return write(&obj, sizeof(T));
  }
};

// ---- A device's queues ----
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
