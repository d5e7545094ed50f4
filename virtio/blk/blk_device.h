#pragma once
// virtio-blk (virtio 1.2, section 5.2) over a raw image file or block device.
//
// Threading: queue_notify() runs on the caller's (vCPU) thread: it pops every
// available chain under that queue's mutex, parses it, and hands the I/O to a
// BlockBackend without holding any lock. Completions may arrive on a backend
// thread (or inline); each takes the queue's mutex to write the status byte,
// add_used() and ask needs_notification(), then injects the interrupt outside
// the lock. reset() stops new work, waits for every in-flight request to
// complete, then drops the queues.
//
// Data moves straight between the file and guest RAM: each descriptor range
// (already validated by the Virtqueue) becomes an iovec via GuestMemory::slice.
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "virtio/blk/block_backend.h"
#include "virtio/device.h"
#include "vmm/guest_memory.h"
#include "vmm/unique_fd.h"

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
};

class BlockDevice : public VirtioDevice {
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
  void write_config(uint64_t offset, std::span<const uint8_t> data) override;
  bool activate(uint64_t features, std::vector<std::unique_ptr<Virtqueue>> queues,
                std::shared_ptr<DeviceInterrupt> interrupt) override;
  void queue_notify(size_t queue) override;
  void reset() override;

  // Blocks until every submitted request has completed.
  void drain();
  uint64_t capacity_sectors() const { return capacity_; }
  const char* backend_name() const { return backend_->name(); }

 private:
  struct Queue {
    std::mutex mu;
    std::unique_ptr<Virtqueue> vq;
  };
  // Parses and submits (or completes) one chain.
  void process(size_t q, DescriptorChain chain);
  // Writes `status` to the chain's last writable byte, add_used(written),
  // notifies if needed, and retires one in-flight request.
  void complete(size_t q, const DescriptorChain& chain, uint8_t status, uint32_t written);
  // add_used(head, 0) for chains without a status byte.
  void complete_bad(size_t q, uint16_t head);
  void finish_one(size_t q, bool notify);
  // iovecs over the readable (write=false) or writable descriptors, bytes
  // [offset, offset+len) of that side.
  std::vector<iovec> iovecs(const DescriptorChain& chain, bool writable, uint64_t offset, uint64_t len) const;
  std::vector<uint8_t> config_space() const;

  const GuestMemory& mem_;
  BlockConfig config_;
  UniqueFd fd_;
  uint64_t capacity_ = 0;  // sectors
  std::unique_ptr<BlockBackend> backend_;

  std::mutex state_mu_;  // activate/queue_notify/reset
  bool active_ = false;
  std::vector<std::unique_ptr<Queue>> queues_;
  std::shared_ptr<DeviceInterrupt> interrupt_;

  std::mutex inflight_mu_;
  std::condition_variable inflight_cv_;
  uint64_t inflight_ = 0;
};

}  // namespace skiff::virtio
