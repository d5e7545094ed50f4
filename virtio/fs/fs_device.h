#pragma once
// virtio-fs (virtio 1.2, section 5.11): a FUSE server reached through
// virtqueues. Queue 0 is the high-priority queue (FORGET, BATCH_FORGET,
// INTERRUPT: no reply), queues 1..n carry requests. Each chain is one FUSE
// request: its readable part is fuse_in_header + arguments, its writable
// part receives fuse_out_header + the reply.
//
// Threading: queue_notify() (the I/O thread, from the queue's ioeventfd) pops
// every available chain (under the device lock, so that a reset on a vCPU
// thread can't drop the ring mid-pop) and hands it to a worker pool, so a
// slow host file system never stalls the ring or the I/O thread. A worker
// runs the FuseHandler with a ChainReader and ChainWriter over the chain's
// guest memory, then completes it through the QueueSet (add_used and
// needs_notification under the queue's lock) and injects the interrupt
// outside every lock. reset() stops new work, waits for the requests in
// flight, then drops the queues.
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "virtio/device.h"
#include "virtio/fs/fuse_handler.h"
#include "virtio/virtqueue.h"
#include "memory/dax_window.h"
#include "memory/guest_memory.h"

namespace skiff::virtio {

inline constexpr uint32_t kFsDeviceType = 26;
inline constexpr size_t kFsTagBytes = 36;

struct FsConfig {
  std::string tag;            // what the guest mounts: mount -t virtiofs TAG /mnt; 1..36 bytes
  unsigned request_queues = 1;
  uint16_t queue_size = 1024;  // Linux puts one descriptor per page of a request
  unsigned workers = 4;        // threads running FUSE requests
  // The DAX cache window, shared memory region 0 (VIRTIO_FS_SHMCAP_ID_CACHE);
  // the FUSE server maps files into it. Null: no DAX.
  std::shared_ptr<DaxWindow> dax;
};

class FsDevice : public VirtioDevice {
 public:
  // Throws std::invalid_argument for a tag that is empty or over 36 bytes,
  // no request queue, or no worker.
  FsDevice(const GuestMemory& mem, FsConfig config, std::shared_ptr<FuseHandler> server);
  ~FsDevice() override;
  FsDevice(const FsDevice&) = delete;
  FsDevice& operator=(const FsDevice&) = delete;

  uint32_t device_type() const override { return kFsDeviceType; }
  uint64_t device_features() const override;
  size_t queue_count() const override { return 1 + config_.request_queues; }
  uint16_t queue_max_size(size_t) const override { return config_.queue_size; }
  void read_config(uint64_t offset, std::span<uint8_t> data) override;
  bool activate(uint64_t features, std::vector<std::unique_ptr<Virtqueue>> queues,
                std::shared_ptr<DeviceInterrupt> interrupt) override;
  void queue_notify(size_t queue) override;
  void reset() override;
  std::optional<SharedMemoryRegion> shared_memory_region(uint8_t id) const override;

  const FsConfig& config() const { return config_; }
  // Requests whose chain was malformed or whose memory could not be mapped
  // (completed with nothing written).
  uint64_t bad_requests() const;

 private:
  struct Job {
    size_t queue;
    DescriptorChain chain;
    uint64_t generation;
  };

  void worker();
  void run(Job& job);
  void complete(const Job& job, uint32_t written);

  const GuestMemory& mem_;
  const FsConfig config_;
  const std::shared_ptr<FuseHandler> server_;

  mutable std::mutex mu_;  // everything below
  std::condition_variable work_cv_, idle_cv_;
  QueueSet queues_;  // inactive while not activated
  std::deque<Job> jobs_;
  size_t running_ = 0;
  uint64_t generation_ = 0;  // bumped by reset(): a late completion is dropped
  uint64_t bad_requests_ = 0;
  bool stop_ = false;
  std::vector<std::thread> workers_;
};

}  // namespace skiff::virtio
