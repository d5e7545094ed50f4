#pragma once
// virtio-mem (virtio 1.2, section 5.15; the layout of Linux's
// include/uapi/linux/virtio_mem.h): a region of guest-physical memory, its
// own GuestMemory region, that the guest plugs and unplugs block by block
// to follow requested_size, which the host sets (Machine::resize_memory).
// The guest asks over one queue: PLUG and UNPLUG a run of blocks,
// UNPLUG_ALL, STATE of a run; the device answers ACK, NACK (a plug past
// requested_size), BUSY (the host could not discard, try again) or ERROR.
//
// Everything in a request is the guest's and is checked before it is used:
// a run must be block-aligned, non-empty, inside the usable region and
// wholly in the state the request expects (plugged for UNPLUG, unplugged for
// PLUG); anything else is ERROR and changes nothing. A chain too short for a
// request is ERROR; one with no room for the 10-byte response is used with
// length 0 and changes nothing. The device touches guest memory only
// through the chain cursors and GuestMemory::discard.
//
// Unplugged blocks give their memory back to the host (GuestMemory::discard
// punches a hole in the region's memfd). The region stays one KVM memslot:
// a guest that touches unplugged memory gets zero pages, bounded by the
// region's size, as with QEMU's virtio-mem without
// VIRTIO_MEM_F_UNPLUGGED_INACCESSIBLE (not offered).
//
// The plugged state survives a device reset (the spec: a reset changes no
// block's state); a driver that finds plugged_size non-zero at probe sends
// UNPLUG_ALL (Linux does). usable_region_size is the whole region, always.
//
// Threading: one mutex guards the bitmap and the configuration: requests run
// on the kicking thread (the I/O thread), set_requested_size on the
// caller's (the runtime's control thread), config reads on vCPU threads.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <vector>

#include "memory/guest_address.h"
#include "memory/guest_memory.h"
#include "virtio/device.h"
#include "virtio/virtqueue.h"

namespace skiff::virtio {

inline constexpr uint32_t kMemDeviceType = 24;  // VIRTIO_ID_MEM

// Request types, response types and block states (spec 5.15.6).
inline constexpr uint16_t kMemReqPlug = 0, kMemReqUnplug = 1, kMemReqUnplugAll = 2, kMemReqState = 3;
inline constexpr uint16_t kMemRespAck = 0, kMemRespNack = 1, kMemRespBusy = 2, kMemRespError = 3;
inline constexpr uint16_t kMemStatePlugged = 0, kMemStateUnplugged = 1, kMemStateMixed = 2;
inline constexpr size_t kMemRequestBytes = 24;   // struct virtio_mem_req
inline constexpr size_t kMemResponseBytes = 10;  // struct virtio_mem_resp

// 2 MiB: the x86-64 pageblock, so Linux runs its sub-block mode with one
// device block per sub-block inside its 128 MiB memory blocks, and a block
// is one huge page when guest RAM is on huge pages.
inline constexpr uint64_t kMemDefaultBlockSize = 2ull << 20;

struct MemConfig {
  GuestAddress addr;         // the region's start: a GuestMemory region (or inside one)
  uint64_t region_size = 0;  // a multiple of block_size
  uint64_t block_size = kMemDefaultBlockSize;  // a power of two, at least GuestMemory::page_size()
  uint16_t queue_size = 128;                   // a power of two, 1..32768
  // Requests taken per queue_notify before returning; 0: until the ring is
  // empty. The fuzzer bounds it (a ring can be laid over its own responses).
  size_t max_requests_per_notify = 0;
};

class MemDevice : public VirtioDevice {
 public:
  // Throws std::invalid_argument for a config no device can have: a block
  // size that is not a power of two of at least the memory's page size, a
  // region that is empty, not block-aligned or not wholly guest memory.
  MemDevice(const GuestMemory& mem, MemConfig config);
  ~MemDevice() override;

  uint32_t device_type() const override { return kMemDeviceType; }
  uint64_t device_features() const override;
  size_t queue_count() const override { return 1; }
  uint16_t queue_max_size(size_t) const override { return config_.queue_size; }
  void read_config(uint64_t offset, std::span<uint8_t> data) override;
  bool activate(uint64_t features, std::vector<std::unique_ptr<Virtqueue>> queues,
                std::shared_ptr<DeviceInterrupt> interrupt) override;
  void queue_notify(size_t queue) override;
  void reset() override;

  // The host's side: asks the guest to plug or unplug until plugged_size()
  // is `bytes`. Raises the configuration-change interrupt when the value
  // changes and a driver is active (a driver that is still probing reads it
  // then). Throws std::invalid_argument unless `bytes` is a multiple of
  // block_size and at most region_size.
  void set_requested_size(uint64_t bytes);

  uint64_t requested_size() const;
  uint64_t plugged_size() const;
  GuestAddress addr() const { return config_.addr; }
  uint64_t region_size() const { return config_.region_size; }
  uint64_t block_size() const { return config_.block_size; }
  uint64_t block_count() const { return blocks_; }
  // From the bitmap itself (counted, not the running total): for tests and
  // the fuzzer's invariants.
  uint64_t count_plugged_blocks() const;
  bool block_plugged(uint64_t block) const;

 private:
  struct Answer {
    uint16_t type = kMemRespError;
    uint16_t state = 0;  // STATE's answer
  };
  // Under mu_. Answers one chain; returns the used length.
  uint32_t process(const DescriptorChain& chain);
  Answer handle(uint16_t type, uint64_t addr, uint16_t nb_blocks);
  // The first block of [addr, addr + nb_blocks blocks) if that run is valid.
  bool block_range(uint64_t addr, uint16_t nb_blocks, uint64_t& first) const;
  uint64_t plugged_in(uint64_t first, uint64_t count) const;
  void set_blocks(uint64_t first, uint64_t count, bool plugged);
  // Gives the memory of the run back to the host; false if it couldn't.
  bool discard(uint64_t first, uint64_t count);
  bool test(uint64_t block) const { return (bitmap_[block / 64] >> (block % 64)) & 1; }

  const GuestMemory& mem_;
  const MemConfig config_;
  const uint64_t blocks_;

  mutable std::mutex mu_;
  QueueSet queues_;
  std::vector<uint64_t> bitmap_;  // a bit per block, set = plugged
  uint64_t plugged_blocks_ = 0;
  uint64_t requested_size_ = 0;
  // process()'s cursors, reused (under mu_).
  ChainReader reader_;
  ChainWriter writer_;
};

}  // namespace skiff::virtio
