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
  for (size_t i = 0; i < data.size(); ++i)
    data[i] = offset < kConfigBytes && i < kConfigBytes - offset ? cfg[offset + i] : 0;
}

void FsDevice::write_config(uint64_t, std::span<const uint8_t>) {}  // read-only

bool FsDevice::activate(uint64_t, std::vector<std::unique_ptr<Virtqueue>> queues,
                        std::shared_ptr<DeviceInterrupt> interrupt) {
  reset();
  if (queues.size() != queue_count() || !interrupt) return false;
  for (const auto& q : queues)
    if (q && !q->valid()) return false;
  std::lock_guard lock(mu_);
  for (auto& q : queues) {
    auto entry = std::make_unique<Queue>();
    entry->vq = std::move(q);
    queues_.push_back(std::move(entry));
  }
  interrupt_ = std::move(interrupt);
  return true;
}

void FsDevice::queue_notify(size_t queue) {
  Queue* q;
  uint64_t generation;
  {
    std::lock_guard lock(mu_);
    if (queue >= queues_.size() || !queues_[queue]->vq) return;
    q = queues_[queue].get();
    generation = generation_;
  }
  std::vector<Job> popped;
  {
    std::lock_guard lock(q->mu);
    while (auto chain = q->vq->pop()) popped.push_back(Job{queue, std::move(*chain), generation});
  }
  if (popped.empty()) return;
  {
    std::lock_guard lock(mu_);
    // A reset between the pop and here: those chains belong to a dead ring.
    if (generation != generation_) return;
    for (auto& j : popped) jobs_.push_back(std::move(j));
  }
  // Wake as many workers as there is work for, not the whole pool.
  for (size_t i = 0; i < std::min<size_t>(popped.size(), config_.workers); ++i) work_cv_.notify_one();
}

void FsDevice::reset() {
  std::unique_lock lock(mu_);
  ++generation_;
  jobs_.clear();
  idle_cv_.wait(lock, [this] { return running_ == 0; });
  queues_.clear();
  interrupt_.reset();
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
  std::vector<std::span<const uint8_t>> in;
  std::vector<std::span<uint8_t>> out;
  try {
    for (const auto& d : job.chain.descriptors) {
      if (d.len == 0) continue;
      auto s = mem_.slice(d.addr, d.len);
      if (d.write) out.push_back(s);
      else in.emplace_back(s.data(), s.size());
    }
  } catch (const std::exception&) {
    // The virtqueue checked every range against guest RAM; this is belt and braces.
    complete(job, 0);
    return;
  }
  FuseReader reader(std::move(in));
  FuseWriter writer(std::move(out));
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
    if (job.generation != generation_ || job.queue >= queues_.size()) return;
    Queue& q = *queues_[job.queue];
    std::lock_guard qlock(q.mu);
    q.vq->add_used(job.chain.head, written);
    if (q.vq->needs_notification()) irq = interrupt_;
  }
  if (irq) irq->used_buffers();
}

}  // namespace skiff::virtio
