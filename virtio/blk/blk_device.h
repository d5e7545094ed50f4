#pragma once
// virtio-blk (virtio 1.2, section 5.2) over a raw image file or block device.
//
// Threading: queue_notify() runs on the caller's thread (the I/O thread, for a
// kick through an ioeventfd): it pops every
// available chain under that queue's mutex, parses it, and hands the I/O to a
// BlockBackend without holding any lock, the whole kick as one batch (one
// io_uring_enter). Results arrive in batches on a backend thread or on the
// kicking thread itself (inline, or io_uring reads the kernel finished at
// once); for each queue in a batch the queue's mutex is taken once to write
// the status bytes, add_used() and ask needs_notification(), and the
// interrupt is injected at most once per batch, outside the lock. reset()
// stops new work, waits for every in-flight request to complete, then drops
// the queues.
//
// Each request in flight lives in one of a fixed set of slots made with the
// device (BlockConfig::max_inflight of them): the backend refers to it until
// it reports the result, and nothing is allocated per request. A kick that
// finds every slot taken submits what it has and, with an event loop
// (BlockConfig::loop), defers the queue: it stops popping, leaves the rest of
// the ring where it is, and returns; the completion that frees a slot posts
// the queue back to the loop, which carries on where it stopped. Nothing on
// the loop waits. Without a loop (tests and tools that drive the device from
// a thread of their own) the kick waits for a slot instead.
//
// Data moves straight between the file and guest RAM: each descriptor range
// (already validated by the Virtqueue) becomes an iovec via GuestMemory::slice.
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <vector>

#include "base/event_loop.h"
#include "virtio/blk/block_backend.h"
#include "virtio/virtqueue.h"
#include "virtio/device.h"
#include "memory/guest_memory.h"
#include "base/unique_fd.h"

namespace skiff::virtio {

// Feature bits (spec 5.2.3).
inline constexpr unsigned kBlkFSizeMax = 1;
inline constexpr unsigned kBlkFSegMax = 2;
inline constexpr unsigned kBlkFGeometry = 4;
inline constexpr unsigned kBlkFRo = 5;
inline constexpr unsigned kBlkFBlkSize = 6;
inline constexpr unsigned kBlkFFlush = 9;
inline constexpr unsigned kBlkFTopology = 10;
inline constexpr unsigned kBlkFConfigWce = 11;
inline constexpr unsigned kBlkFMq = 12;
inline constexpr unsigned kBlkFDiscard = 13;
inline constexpr unsigned kBlkFWriteZeroes = 14;

// Request types and status values (spec 5.2.6).
inline constexpr uint32_t kBlkTIn = 0;
inline constexpr uint32_t kBlkTOut = 1;
inline constexpr uint32_t kBlkTFlush = 4;
inline constexpr uint32_t kBlkTGetId = 8;
inline constexpr uint32_t kBlkTDiscard = 11;
inline constexpr uint32_t kBlkTWriteZeroes = 13;
inline constexpr uint8_t kBlkSOk = 0;
inline constexpr uint8_t kBlkSIoErr = 1;
inline constexpr uint8_t kBlkSUnsupp = 2;

inline constexpr uint64_t kSectorSize = 512;
inline constexpr size_t kBlkIdBytes = 20;
inline constexpr uint32_t kBlkMaxDiscardSectors = 0x3fffff;  // per segment
inline constexpr uint32_t kBlkMaxDiscardSegments = 32;
inline constexpr uint32_t kBlkWriteZeroesUnmap = 1;  // segment flag

enum class BlockBackendKind {
  kAuto,        // io_uring, falling back to the thread pool when it can't be set up
  kIoUring,     // io_uring or the constructor throws std::system_error
  kThreadPool,  // `threads` workers
  kInline,      // synchronous: every request completes inside queue_notify (fuzzer, tests)
};

struct BlockConfig {
  std::string path;
  bool read_only = false;
  std::string serial;  // GET_ID: at most 20 bytes are reported
  size_t queues = 1;
  uint16_t queue_size = 256;  // power of two in [4, 1024] (1024 = IOV_MAX)
  BlockBackendKind backend = BlockBackendKind::kAuto;
  unsigned threads = 4;  // thread pool workers
  // Chains popped per queue_notify before returning; 0: until the ring is
  // empty (production). The fuzzer bounds it: with inline completions a
  // hostile ring layout can feed the device's own writes back as new requests.
  size_t max_chains_per_notify = 0;
  // Requests handed to the backend at once, across queues (the io_uring
  // ring's size); 0: 4 x queue_size x queues, at most 4096.
  unsigned max_inflight = 0;
  // Where a deferred queue is resumed (see the header comment); must outlive
  // the device. Null: a kick that finds every slot taken waits.
  EventLoop* loop = nullptr;
};

class BlockDevice : public VirtioDevice, private BlockCompletionSink {
 public:
  // Opens the image; throws std::system_error ("open disk /x: ...") or
  // std::invalid_argument (bad config, not a regular file or block device).
  BlockDevice(const GuestMemory& mem, BlockConfig config);
  ~BlockDevice() override;

  uint32_t device_type() const override { return 2; }
  uint64_t device_features() const override;
  size_t queue_count() const override { return config_.queues; }
  uint16_t queue_max_size(size_t) const override { return config_.queue_size; }
  void read_config(uint64_t offset, std::span<uint8_t> data) override;
  bool activate(uint64_t features, std::vector<std::unique_ptr<Virtqueue>> queues,
                std::shared_ptr<DeviceInterrupt> interrupt) override;
  void queue_notify(size_t queue) override;
  void reset() override;

  // Blocks until every submitted request has completed.
  void drain();
  uint64_t capacity_sectors() const { return capacity_; }
  const char* backend_name() const { return backend_->name(); }

 private:
  // A request in the backend's hands (its `io.tag` is its slot index).
  struct Slot {
    BlockRequest io;
    uint8_t* status = nullptr;  // the chain's last writable byte, in guest RAM
    uint32_t ok_written = 0;    // used length on success
    uint16_t head = 0;
    uint16_t queue = 0;
  };
  // Parses and submits (or completes) one chain.
  void process(size_t q, DescriptorChain chain);
  // Backend results: status bytes, used elements, one interrupt.
  void complete(std::span<const BlockResult> results) override;
  // Writes `status` to the chain's last writable byte, add_used(written),
  // and notifies if needed (requests that never reach the backend).
  void complete_now(size_t q, const DescriptorChain& chain, uint8_t status, uint32_t written);
  // add_used(head, 0) for chains without a status byte.
  void complete_bad(size_t q, uint16_t head);
  // Host address of the chain's status byte (its last writable byte).
  uint8_t* status_byte(const DescriptorChain& chain) const;
  // Makes sure spare_slots_ holds a slot; false when every slot is taken.
  bool reserve_slot();
  // With a loop: marks `q` to be resumed when a slot comes free and returns
  // true, unless one already has (false: go on). Without: waits for a slot.
  bool defer_or_wait(size_t q);
  // Posts a kick of each queue in `queues` (a bit per queue) to the loop.
  void resume(uint64_t queues);
  // A reserved slot (reserve_slot() returned true).
  Slot& take_slot();
  // Hands batch_ to the backend.
  void submit_batch();
  std::vector<uint8_t> config_space() const;

  const GuestMemory& mem_;
  BlockConfig config_;
  UniqueFd fd_;
  uint64_t capacity_ = 0;  // sectors
  std::unique_ptr<BlockBackend> backend_;

  std::mutex state_mu_;  // activate/queue_notify/reset
  QueueSet queues_;
  // queue_notify's own (under state_mu_): cursors over the chain it parses.
  ChainReader reader_;
  ChainWriter writer_;

  std::unique_ptr<Slot[]> slots_;
  size_t slot_count_ = 0;
  // queue_notify's own, under state_mu_: requests not yet submitted, and
  // free slots taken a few at a time (returned when the kick is done).
  std::vector<BlockRequest*> batch_;
  std::vector<uint32_t> spare_slots_;
  std::mutex inflight_mu_;
  std::condition_variable inflight_cv_;  // a slot came free
  std::vector<uint32_t> free_slots_;     // guarded by inflight_mu_
  uint64_t deferred_ = 0;                // queues waiting for a slot, a bit each; guarded by inflight_mu_
  // Resumptions posted to the loop check it: none runs once the device is gone.
  std::shared_ptr<int> alive_ = std::make_shared<int>(0);
};

}  // namespace skiff::virtio
