#pragma once
// Device side of a virtio 1.x split virtqueue (virtio spec 1.2, section 2.7).
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
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "memory/guest_address.h"
#include "memory/guest_memory.h"

namespace skiff::virtio {

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

}  // namespace skiff::virtio
