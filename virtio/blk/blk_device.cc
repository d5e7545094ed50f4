#include "virtio/blk/blk_device.h"

#include <fcntl.h>
#include <linux/fs.h>
#include <linux/virtio_blk.h>
#include <sys/ioctl.h>
#include <sys/stat.h>

#include <algorithm>
#include <utility>
#include <cerrno>
#include <cstddef>
#include <cstring>
#include <stdexcept>
#include <system_error>

namespace skiff::virtio {
namespace {

struct RequestHeader {
  uint32_t type;
  uint32_t reserved;
  uint64_t sector;
};
static_assert(sizeof(RequestHeader) == 16);

struct Segment {  // discard / write-zeroes
  uint64_t sector;
  uint32_t num_sectors;
  uint32_t flags;
};
static_assert(sizeof(Segment) == 16);

// The config layout is Linux's struct virtio_blk_config (packed, little-endian).
static_assert(offsetof(virtio_blk_config, capacity) == 0);
static_assert(offsetof(virtio_blk_config, seg_max) == 12);
static_assert(offsetof(virtio_blk_config, blk_size) == 20);
static_assert(offsetof(virtio_blk_config, num_queues) == 34);
static_assert(offsetof(virtio_blk_config, max_discard_sectors) == 36);
static_assert(offsetof(virtio_blk_config, write_zeroes_may_unmap) == 56);

// Slots queue_notify moves off the shared free list per lock: one lock per
// request would be a visible share of a page-cached read.
constexpr size_t kSlotsTakenAtOnce = 16;

// [sector, sector + count) lies inside a disk of `capacity` sectors.
bool in_range(uint64_t sector, uint64_t count, uint64_t capacity) {
  return count <= capacity && sector <= capacity - count;
}

}  // namespace

BlockDevice::BlockDevice(const GuestMemory& mem, BlockConfig config) : mem_(mem), config_(std::move(config)) {
  const uint16_t qs = config_.queue_size;
  if (qs < 4 || qs > 1024 || (qs & (qs - 1)) != 0)
    throw std::invalid_argument("disk " + config_.path + ": queue size " + std::to_string(qs) +
                                " is not a power of two in [4, 1024]");
  if (config_.queues == 0 || config_.queues > 64)
    throw std::invalid_argument("disk " + config_.path + ": queue count must be 1..64");
  fd_ = UniqueFd(::open(config_.path.c_str(), (config_.read_only ? O_RDONLY : O_RDWR) | O_CLOEXEC));
  if (!fd_) throw std::system_error(errno, std::generic_category(), "open disk " + config_.path);
  struct stat st {};
  if (::fstat(fd_.get(), &st) != 0) throw std::system_error(errno, std::generic_category(), "stat disk " + config_.path);
  uint64_t bytes = 0;
  if (S_ISREG(st.st_mode)) {
    bytes = static_cast<uint64_t>(st.st_size);
  } else if (S_ISBLK(st.st_mode)) {
    if (::ioctl(fd_.get(), BLKGETSIZE64, &bytes) != 0)
      throw std::system_error(errno, std::generic_category(), "BLKGETSIZE64 on disk " + config_.path);
  } else {
    throw std::invalid_argument("disk " + config_.path + ": not a regular file or block device");
  }
  capacity_ = bytes / kSectorSize;  // a partial last sector is not exposed

  const unsigned inflight = std::min(
      config_.max_inflight ? config_.max_inflight : 4u * qs * static_cast<unsigned>(config_.queues), 4096u);
  slot_count_ = inflight;
  slots_ = std::make_unique<Slot[]>(slot_count_);
  batch_.reserve(slot_count_);
  spare_slots_.reserve(kSlotsTakenAtOnce);
  free_slots_.reserve(slot_count_);
  for (uint32_t i = 0; i < slot_count_; ++i) {
    slots_[i].io.tag = i;
    free_slots_.push_back(i);
  }

  BlockCompletionSink& sink = *this;
  switch (config_.backend) {
    case BlockBackendKind::kIoUring:
      backend_ = make_io_uring_backend(fd_.get(), inflight, sink);
      break;
    case BlockBackendKind::kAuto:
      try {
        backend_ = make_io_uring_backend(fd_.get(), inflight, sink);
      } catch (const std::system_error&) {
        backend_ = make_thread_pool_backend(fd_.get(), std::max(1u, config_.threads), sink);
      }
      break;
    case BlockBackendKind::kThreadPool:
      backend_ = make_thread_pool_backend(fd_.get(), std::max(1u, config_.threads), sink);
      break;
    case BlockBackendKind::kInline:
      backend_ = make_thread_pool_backend(fd_.get(), 0, sink);
      break;
  }
}

BlockDevice::~BlockDevice() {
  reset();
  backend_.reset();  // joins its threads before fd_ closes
  if (config_.loop) {
    // A resumption already posted finds the device gone; one running now
    // ends before the loop runs this.
    alive_.reset();
    config_.loop->run_sync([] {});
  }
}

uint64_t BlockDevice::device_features() const {
  uint64_t f = bit(kFeatureVersion1) | bit(kFeatureEventIdx) | bit(kFeatureIndirectDesc) | bit(kBlkFSegMax) |
               bit(kBlkFBlkSize) | bit(kBlkFFlush) | bit(kBlkFDiscard) | bit(kBlkFWriteZeroes);
  if (config_.read_only) f |= bit(kBlkFRo);
  if (config_.queues > 1) f |= bit(kBlkFMq);
  return f;
}

std::vector<uint8_t> BlockDevice::config_space() const {
  virtio_blk_config c{};
  c.capacity = capacity_;
  c.seg_max = config_.queue_size - 2u;  // header and status take a descriptor each
  c.blk_size = kSectorSize;
  c.num_queues = static_cast<uint16_t>(config_.queues);
  c.max_discard_sectors = kBlkMaxDiscardSectors;
  c.max_discard_seg = kBlkMaxDiscardSegments;
  c.discard_sector_alignment = 1;
  c.max_write_zeroes_sectors = kBlkMaxDiscardSectors;
  c.max_write_zeroes_seg = kBlkMaxDiscardSegments;
  c.write_zeroes_may_unmap = 0;
  std::vector<uint8_t> out(offsetof(virtio_blk_config, write_zeroes_may_unmap) + 4);  // up to unused1
  std::memcpy(out.data(), &c, out.size());
  return out;
}

// Nothing in it is writable without VIRTIO_BLK_F_CONFIG_WCE, which we don't offer.
void BlockDevice::read_config(uint64_t offset, std::span<uint8_t> data) {
  read_config_window(config_space(), offset, data);
}

bool BlockDevice::activate(uint64_t, std::vector<std::unique_ptr<Virtqueue>> queues,
                           std::shared_ptr<DeviceInterrupt> interrupt) {
  reset();
  std::lock_guard lock(state_mu_);
  return queues_.activate(config_.queues, 0, std::move(queues), std::move(interrupt));
}

void BlockDevice::queue_notify(size_t queue) {
  std::lock_guard lock(state_mu_);
  if (!queues_.enabled(queue)) return;
  // Until the ring is empty (or the configured bound). A guest that keeps the
  // ring non-empty only spins its own vCPU thread here.
  for (size_t n = 0; config_.max_chains_per_notify == 0 || n < config_.max_chains_per_notify; ++n) {
    // A slot before the chain: with none, the chain stays in the ring.
    bool deferred = false;
    while (!reserve_slot()) {
      submit_batch();  // held back, these would never free a slot
      if (reserve_slot()) break;
      if ((deferred = defer_or_wait(queue))) break;
    }
    if (deferred) break;
    std::optional<DescriptorChain> chain = queues_.pop(queue);
    if (!chain) break;
    process(queue, std::move(*chain));
  }
  submit_batch();
  if (!spare_slots_.empty()) {
    {
      std::lock_guard ilock(inflight_mu_);
      free_slots_.insert(free_slots_.end(), spare_slots_.begin(), spare_slots_.end());
    }
    spare_slots_.clear();
    inflight_cv_.notify_all();
  }
}

void BlockDevice::submit_batch() {
  if (batch_.empty()) return;
  backend_->submit(batch_);
  batch_.clear();
}

bool BlockDevice::reserve_slot() {
  if (!spare_slots_.empty()) return true;
  std::lock_guard lock(inflight_mu_);
  if (free_slots_.empty()) return false;
  const size_t n = std::min(free_slots_.size(), kSlotsTakenAtOnce);
  spare_slots_.assign(free_slots_.end() - static_cast<std::ptrdiff_t>(n), free_slots_.end());
  free_slots_.resize(free_slots_.size() - n);
  return true;
}

bool BlockDevice::defer_or_wait(size_t q) {
  std::unique_lock lock(inflight_mu_);
  if (config_.loop) {
    // Under the lock that complete() frees slots under: either a slot is
    // free now or that completion sees the bit.
    if (!free_slots_.empty()) return false;
    deferred_ |= uint64_t{1} << q;
    return true;
  }
  inflight_cv_.wait(lock, [this] { return !free_slots_.empty(); });
  return false;
}

void BlockDevice::resume(uint64_t queues) {
  for (size_t q = 0; queues; ++q, queues >>= 1) {
    if (!(queues & 1)) continue;
    config_.loop->post([this, alive = std::weak_ptr<int>(alive_), q] {
      if (!alive.expired()) queue_notify(q);
    });
  }
}

BlockDevice::Slot& BlockDevice::take_slot() {
  const uint32_t i = spare_slots_.back();
  spare_slots_.pop_back();
  return slots_[i];
}

void BlockDevice::process(size_t q, DescriptorChain chain) {
  if (!chain.ok()) return complete_bad(q, chain.head);
  const uint64_t writable = chain.writable_bytes();
  if (writable == 0) return complete_bad(q, chain.head);  // nowhere to put a status
  const uint64_t readable = chain.readable_bytes();
  const uint64_t data_in = writable - 1;  // device-writable data before the status byte
  reader_.assign(mem_, chain);
  writer_.assign(mem_, chain);

  RequestHeader hdr{};
  if (!reader_.read_obj(hdr)) return complete_now(q, chain, kBlkSIoErr, 1);

  // Checked before a slot is taken, so that requests that fail here never
  // wait for one.
  BlockRequest::Op op;
  uint64_t len = 0;  // read/write: data bytes
  uint64_t ranges[kBlkMaxDiscardSegments][2];  // discard/write-zeroes as validated: {offset, length}
  size_t nranges = 0;
  switch (hdr.type) {
    case kBlkTIn:
    case kBlkTOut: {
      const bool is_write = hdr.type == kBlkTOut;
      if (is_write && config_.read_only) return complete_now(q, chain, kBlkSIoErr, 1);
      len = is_write ? readable - sizeof(hdr) : data_in;
      if (len % kSectorSize != 0 || !in_range(hdr.sector, len / kSectorSize, capacity_))
        return complete_now(q, chain, kBlkSIoErr, 1);
      op = is_write ? BlockRequest::Op::kWrite : BlockRequest::Op::kRead;
      break;
    }
    case kBlkTFlush:
      op = BlockRequest::Op::kFlush;
      break;
    case kBlkTGetId: {
      uint8_t id[kBlkIdBytes] = {};
      std::memcpy(id, config_.serial.data(), std::min(config_.serial.size(), kBlkIdBytes));
      const size_t n = static_cast<size_t>(std::min<uint64_t>(data_in, kBlkIdBytes));
      writer_.write_some(std::span<const uint8_t>(id, n));
      return complete_now(q, chain, kBlkSOk, static_cast<uint32_t>(n + 1));
    }
    case kBlkTDiscard:
    case kBlkTWriteZeroes: {
      const bool discard = hdr.type == kBlkTDiscard;
      if (config_.read_only) return complete_now(q, chain, kBlkSIoErr, 1);
      const uint64_t bytes = readable - sizeof(hdr);
      if (bytes == 0 || bytes % sizeof(Segment) != 0 || bytes / sizeof(Segment) > kBlkMaxDiscardSegments)
        return complete_now(q, chain, kBlkSIoErr, 1);
      for (Segment seg{}; reader_.read_obj(seg);) {
        const uint32_t allowed_flags = discard ? 0 : kBlkWriteZeroesUnmap;
        if (seg.flags & ~allowed_flags) return complete_now(q, chain, kBlkSUnsupp, 1);
        if (seg.num_sectors > kBlkMaxDiscardSectors || !in_range(seg.sector, seg.num_sectors, capacity_))
          return complete_now(q, chain, kBlkSIoErr, 1);
        ranges[nranges][0] = seg.sector * kSectorSize;
        ranges[nranges++][1] = uint64_t{seg.num_sectors} * kSectorSize;
      }
      op = discard ? BlockRequest::Op::kDiscard : BlockRequest::Op::kWriteZeroes;
      break;
    }
    default:
      return complete_now(q, chain, kBlkSUnsupp, 1);
  }

  Slot& slot = take_slot();
  BlockRequest& req = slot.io;
  req.op = op;
  req.offset = hdr.sector * kSectorSize;
  req.iov.clear();  // keeps its capacity: no allocation once the slot has been used
  req.ranges.clear();
  slot.ok_written = 1;
  switch (op) {
    case BlockRequest::Op::kRead:
      writer_.append_iovecs(req.iov, len);
      slot.ok_written = static_cast<uint32_t>(len + 1);
      break;
    case BlockRequest::Op::kWrite:
      reader_.append_iovecs(req.iov, len);  // after the header
      break;
    case BlockRequest::Op::kFlush:
      break;
    case BlockRequest::Op::kDiscard:
    case BlockRequest::Op::kWriteZeroes:
      for (size_t i = 0; i < nranges; ++i) req.ranges.emplace_back(ranges[i][0], ranges[i][1]);
      break;
  }
  slot.status = status_byte(chain);
  slot.head = chain.head;
  slot.queue = static_cast<uint16_t>(q);
  batch_.push_back(&req);
}

uint8_t* BlockDevice::status_byte(const DescriptorChain& chain) const {
  for (auto it = chain.descriptors.rbegin(); it != chain.descriptors.rend(); ++it)
    if (it->write && it->len > 0) return mem_.slice(it->addr, it->len).data() + (it->len - 1);
  return nullptr;  // unreachable: callers checked writable_bytes() > 0
}

void BlockDevice::complete(std::span<const BlockResult> results) {
  uint64_t queues = 0;  // at most 64 queues (checked in the constructor)
  for (const BlockResult& r : results) queues |= uint64_t{1} << slots_[r.tag].queue;
  bool notify = false;
  for (size_t q = 0; queues; ++q, queues >>= 1) {
    if (!(queues & 1)) continue;
    notify |= queues_.update(q, [&](Virtqueue& vq) {
      for (const BlockResult& r : results) {
        const Slot& slot = slots_[r.tag];
        if (size_t{slot.queue} != q) continue;
        *slot.status = r.result == 0 ? kBlkSOk : kBlkSIoErr;
        vq.add_used(slot.head, r.result == 0 ? slot.ok_written : 1);
      }
    });
  }
  if (notify) queues_.notify();
  uint64_t deferred;
  {
    std::lock_guard lock(inflight_mu_);
    for (const BlockResult& r : results) free_slots_.push_back(r.tag);
    deferred = std::exchange(deferred_, 0);
  }
  inflight_cv_.notify_all();
  if (deferred) resume(deferred);
}

void BlockDevice::complete_now(size_t q, const DescriptorChain& chain, uint8_t status, uint32_t written) {
  *status_byte(chain) = status;
  queues_.complete(q, chain.head, written);
}

void BlockDevice::complete_bad(size_t q, uint16_t head) { queues_.complete(q, head, 0); }

void BlockDevice::drain() {
  std::unique_lock lock(inflight_mu_);
  inflight_cv_.wait(lock, [this] { return free_slots_.size() == slot_count_; });
}

// On a vCPU thread (a status write of 0): the one place the device waits,
// for the requests the backend still holds to come back.
void BlockDevice::reset() {
  std::lock_guard lock(state_mu_);
  drain();
  {
    std::lock_guard ilock(inflight_mu_);
    deferred_ = 0;
  }
  queues_.reset();
}

}  // namespace skiff::virtio
