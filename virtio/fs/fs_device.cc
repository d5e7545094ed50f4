#include "virtio/fs/fs_device.h"

#include <pthread.h>

#include <algorithm>
#include <cstring>
#include <stdexcept>

namespace skiff::virtio {
namespace {

// struct virtio_fs_config (spec 5.11.4): tag[36], num_request_queues.
constexpr size_t kConfigBytes = kFsTagBytes + 4;

}  // namespace

FsDevice::FsDevice(const GuestMemory& mem, FsConfig config, std::shared_ptr<FuseHandler> server)
    : mem_(mem), config_(std::move(config)), server_(std::move(server)) {
  if (config_.tag.empty() || config_.tag.size() > kFsTagBytes)
    throw std::invalid_argument("virtio-fs tag \"" + config_.tag + "\" must be 1 to 36 bytes");
  if (config_.request_queues == 0) throw std::invalid_argument("virtio-fs needs at least one request queue");
  if (config_.workers == 0) throw std::invalid_argument("virtio-fs needs at least one worker");
  if (!server_) throw std::invalid_argument("virtio-fs needs a FUSE server");
  for (unsigned i = 0; i < config_.workers; ++i)
    workers_.emplace_back([this] {
      pthread_setname_np(pthread_self(), "skiff-fs");
      worker();
    });
}

FsDevice::~FsDevice() {
  reset();
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  work_cv_.notify_all();
  for (auto& t : workers_) t.join();
}

uint64_t FsDevice::device_features() const {
  return bit(kFeatureVersion1) | bit(kFeatureEventIdx) | bit(kFeatureIndirectDesc);
}

void FsDevice::read_config(uint64_t offset, std::span<uint8_t> data) {
  uint8_t cfg[kConfigBytes] = {};
  std::memcpy(cfg, config_.tag.data(), config_.tag.size());
  const uint32_t queues = config_.request_queues;
  std::memcpy(cfg + kFsTagBytes, &queues, 4);
  read_config_window(cfg, offset, data);
}

bool FsDevice::activate(uint64_t, std::vector<std::unique_ptr<Virtqueue>> queues,
                        std::shared_ptr<DeviceInterrupt> interrupt) {
  reset();
  std::lock_guard lock(mu_);
  return queues_.activate(queue_count(), 0, std::move(queues), std::move(interrupt));
}

void FsDevice::queue_notify(size_t queue) {
  size_t popped = 0;
  {
    // Under mu_: reset() (a vCPU thread) can't drop the queues mid-pop.
    std::lock_guard lock(mu_);
    while (auto chain = queues_.pop(queue)) {
      jobs_.push_back(Job{queue, std::move(*chain), generation_});
      ++popped;
    }
  }
  // Wake as many workers as there is work for, not the whole pool.
  for (size_t i = 0; i < std::min<size_t>(popped, config_.workers); ++i) work_cv_.notify_one();
}

void FsDevice::reset() {
  std::unique_lock lock(mu_);
  ++generation_;
  jobs_.clear();
  idle_cv_.wait(lock, [this] { return running_ == 0; });
  queues_.reset();
  // A guest driver that resets the device starts over with INIT: its inodes
  // and open files go with it (their host fds close now, not at the next INIT).
  server_->reset();
}

std::optional<SharedMemoryRegion> FsDevice::shared_memory_region(uint8_t id) const {
  if (id != 0 || !config_.dax) return std::nullopt;
  return SharedMemoryRegion{config_.dax->base().value(), config_.dax->size()};
}

uint64_t FsDevice::bad_requests() const {
  std::lock_guard lock(mu_);
  return bad_requests_;
}

void FsDevice::worker() {
  std::unique_lock lock(mu_);
  for (;;) {
    work_cv_.wait(lock, [this] { return stop_ || !jobs_.empty(); });
    if (stop_) return;
    Job job = std::move(jobs_.front());
    jobs_.pop_front();
    ++running_;
    lock.unlock();
    run(job);
    lock.lock();
    if (--running_ == 0) idle_cv_.notify_all();
  }
}

void FsDevice::run(Job& job) {
  if (!job.chain.ok()) {
    complete(job, 0);
    return;
  }
  ChainReader reader;
  ChainWriter writer;
  try {
    reader.assign(mem_, job.chain);
    writer.assign(mem_, job.chain);
  } catch (const std::exception&) {
    // The virtqueue checked every range against guest RAM; this is belt and braces.
    complete(job, 0);
    return;
  }
  uint32_t written = 0;
  try {
    // A reply can't be longer than what the server moved into the chain.
    const uint32_t claimed = server_->handle(reader, writer);
    written = static_cast<uint32_t>(std::min<uint64_t>(claimed, writer.consumed()));
  } catch (const std::exception&) {
    // The server promises not to throw for guest input; a host failure
    // (allocation) costs this request, not the device.
    written = 0;
  }
  complete(job, written);
}

void FsDevice::complete(const Job& job, uint32_t written) {
  std::shared_ptr<DeviceInterrupt> irq;
  {
    std::lock_guard lock(mu_);
    if (!job.chain.ok()) ++bad_requests_;
    if (job.generation != generation_) return;
    if (queues_.update(job.queue, [&](Virtqueue& vq) { vq.add_used(job.chain.head, written); }))
      irq = queues_.interrupt();
  }
  if (irq) irq->used_buffers();
}

}  // namespace skiff::virtio
