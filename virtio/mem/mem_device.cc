#include "virtio/mem/mem_device.h"

#include <linux/virtio_mem.h>

#include <bit>
#include <cstddef>
#include <exception>
#include <stdexcept>
#include <string>

#include "base/hex.h"
#include "base/log.h"

namespace skiff::virtio {
namespace {

// The layouts are Linux's (little-endian, as every virtio 1.x device).
static_assert(sizeof(virtio_mem_req) == kMemRequestBytes);
static_assert(sizeof(virtio_mem_resp) == kMemResponseBytes);
static_assert(offsetof(virtio_mem_req, u.plug.addr) == 8);
static_assert(offsetof(virtio_mem_req, u.plug.nb_blocks) == 16);
static_assert(offsetof(virtio_mem_req, u.unplug.addr) == 8 && offsetof(virtio_mem_req, u.state.addr) == 8);
static_assert(offsetof(virtio_mem_resp, u.state.state) == 8);
static_assert(offsetof(virtio_mem_config, addr) == 16);
static_assert(offsetof(virtio_mem_config, usable_region_size) == 32);
static_assert(offsetof(virtio_mem_config, requested_size) == 48);
static_assert(sizeof(virtio_mem_config) == 56);
static_assert(kMemReqPlug == VIRTIO_MEM_REQ_PLUG && kMemReqUnplug == VIRTIO_MEM_REQ_UNPLUG &&
              kMemReqUnplugAll == VIRTIO_MEM_REQ_UNPLUG_ALL && kMemReqState == VIRTIO_MEM_REQ_STATE);
static_assert(kMemRespAck == VIRTIO_MEM_RESP_ACK && kMemRespNack == VIRTIO_MEM_RESP_NACK &&
              kMemRespBusy == VIRTIO_MEM_RESP_BUSY && kMemRespError == VIRTIO_MEM_RESP_ERROR);
static_assert(kMemStatePlugged == VIRTIO_MEM_STATE_PLUGGED && kMemStateUnplugged == VIRTIO_MEM_STATE_UNPLUGGED &&
              kMemStateMixed == VIRTIO_MEM_STATE_MIXED);

[[noreturn]] void bad_config(const std::string& why) { throw std::invalid_argument("virtio-mem: " + why); }

}  // namespace

MemDevice::MemDevice(const GuestMemory& mem, MemConfig config)
    : mem_(mem), config_(config), blocks_(config.block_size ? config.region_size / config.block_size : 0) {
  const uint64_t bs = config_.block_size;
  if (!std::has_single_bit(bs) || bs < mem_.page_size())
    bad_config("block size " + hex(bs) + " is not a power of two of at least the " + hex(mem_.page_size()) +
               " pages of guest memory");
  if (config_.region_size == 0 || config_.region_size % bs || config_.addr.value() % bs)
    bad_config("region [" + hex(config_.addr.value()) + ", +" + hex(config_.region_size) +
               ") is empty or not aligned to its " + hex(bs) + " blocks");
  if (!mem_.contains(config_.addr, config_.region_size))
    bad_config("region [" + hex(config_.addr.value()) + ", +" + hex(config_.region_size) + ") is not guest memory");
  const uint16_t qs = config_.queue_size;
  if (qs == 0 || qs > kMaxQueueSize || !std::has_single_bit(qs))
    bad_config("queue size " + std::to_string(qs) + " is not a power of two up to 32768");
  bitmap_.assign((blocks_ + 63) / 64, 0);
}

MemDevice::~MemDevice() { reset(); }

uint64_t MemDevice::device_features() const {
  // Neither ACPI_PXM (no NUMA nodes) nor UNPLUGGED_INACCESSIBLE (unplugged
  // memory stays mapped, reading as zeroes).
  return bit(kFeatureVersion1) | bit(kFeatureEventIdx) | bit(kFeatureIndirectDesc);
}

void MemDevice::read_config(uint64_t offset, std::span<uint8_t> data) {
  virtio_mem_config c{};
  {
    std::lock_guard lock(mu_);
    c.block_size = config_.block_size;
    c.node_id = 0;
    c.addr = config_.addr.value();
    c.region_size = config_.region_size;
    c.usable_region_size = config_.region_size;
    c.plugged_size = plugged_blocks_ * config_.block_size;
    c.requested_size = requested_size_;
  }
  read_config_window(std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(&c), sizeof c), offset, data);
}

bool MemDevice::activate(uint64_t, std::vector<std::unique_ptr<Virtqueue>> queues,
                         std::shared_ptr<DeviceInterrupt> interrupt) {
  std::lock_guard lock(mu_);
  queues_.reset();
  return queues_.activate(1, bit(0), std::move(queues), std::move(interrupt));
}

void MemDevice::reset() {
  std::lock_guard lock(mu_);
  queues_.reset();  // the blocks keep their state
}

void MemDevice::set_requested_size(uint64_t bytes) {
  if (bytes % config_.block_size || bytes > config_.region_size)
    throw std::invalid_argument("virtio-mem: requested size " + hex(bytes) + " is not a multiple of the " +
                                hex(config_.block_size) + " blocks up to the region's " + hex(config_.region_size));
  std::lock_guard lock(mu_);
  if (bytes == requested_size_) return;
  requested_size_ = bytes;
  // Under the lock: the generation moves before a config read (which takes
  // the lock) can see the new value, so a driver reading the 64-bit field
  // as two halves around the change reads the generation again and retries.
  if (queues_.active()) queues_.interrupt()->config_changed();
}

uint64_t MemDevice::requested_size() const {
  std::lock_guard lock(mu_);
  return requested_size_;
}

uint64_t MemDevice::plugged_size() const {
  std::lock_guard lock(mu_);
  return plugged_blocks_ * config_.block_size;
}

uint64_t MemDevice::count_plugged_blocks() const {
  std::lock_guard lock(mu_);
  uint64_t n = 0;
  for (uint64_t w : bitmap_) n += static_cast<uint64_t>(std::popcount(w));
  return n;
}

bool MemDevice::block_plugged(uint64_t block) const {
  std::lock_guard lock(mu_);
  return block < blocks_ && test(block);
}

void MemDevice::queue_notify(size_t queue) {
  std::shared_ptr<DeviceInterrupt> irq;
  {
    std::lock_guard lock(mu_);
    if (queue != 0 || !queues_.enabled(0)) return;
    bool used = false;
    for (size_t n = 0; config_.max_requests_per_notify == 0 || n < config_.max_requests_per_notify; ++n) {
      std::optional<DescriptorChain> chain = queues_.pop(0);
      if (!chain) break;
      queues_.add_used(0, chain->head, process(*chain));
      used = true;
    }
    if (used && queues_.needs_notification(0)) irq = queues_.interrupt();
  }
  if (irq) irq->used_buffers();  // outside the lock, as every device
}

uint32_t MemDevice::process(const DescriptorChain& chain) {
  if (!chain.ok()) return 0;  // malformed: nothing of it is read
  writer_.assign(queues_.memory(), chain);
  // No room for the answer: the driver can learn nothing, so nothing changes.
  if (writer_.remaining() < kMemResponseBytes) return 0;
  reader_.assign(queues_.memory(), chain);
  virtio_mem_req req{};
  Answer a;  // ERROR for a request shorter than its 24 bytes
  // Copied out once: the guest may rewrite the buffer while we look at it.
  if (reader_.read_obj(req)) a = handle(req.type, req.u.plug.addr, req.u.plug.nb_blocks);
  virtio_mem_resp resp{};
  resp.type = a.type;
  resp.u.state.state = a.state;
  writer_.write(&resp, kMemResponseBytes);
  return kMemResponseBytes;
}

MemDevice::Answer MemDevice::handle(uint16_t type, uint64_t addr, uint16_t nb_blocks) {
  uint64_t first = 0;
  switch (type) {
    case kMemReqPlug:
      if (!block_range(addr, nb_blocks, first)) return {kMemRespError};
      // In blocks: requested_size_ is a multiple of the block size.
      if (plugged_blocks_ + nb_blocks > requested_size_ / config_.block_size) return {kMemRespNack};
      if (plugged_in(first, nb_blocks) != 0) return {kMemRespError};
      set_blocks(first, nb_blocks, true);
      return {kMemRespAck};
    case kMemReqUnplug:
      // May go below requested_size: the guest decides what it can spare.
      if (!block_range(addr, nb_blocks, first) || plugged_in(first, nb_blocks) != nb_blocks) return {kMemRespError};
      if (!discard(first, nb_blocks)) return {kMemRespBusy};
      set_blocks(first, nb_blocks, false);
      return {kMemRespAck};
    case kMemReqUnplugAll:
      if (plugged_blocks_ && !discard(0, blocks_)) return {kMemRespBusy};
      set_blocks(0, blocks_, false);
      return {kMemRespAck};
    case kMemReqState: {
      if (!block_range(addr, nb_blocks, first)) return {kMemRespError};
      const uint64_t plugged = plugged_in(first, nb_blocks);
      const uint16_t state = plugged == nb_blocks ? kMemStatePlugged : plugged == 0 ? kMemStateUnplugged : kMemStateMixed;
      return {kMemRespAck, state};
    }
    default: return {kMemRespError};
  }
}

bool MemDevice::block_range(uint64_t addr, uint16_t nb_blocks, uint64_t& first) const {
  // Overflow-free: the offset is checked against the region before any sum.
  if (nb_blocks == 0 || addr < config_.addr.value()) return false;
  const uint64_t offset = addr - config_.addr.value();
  if (offset % config_.block_size) return false;
  first = offset / config_.block_size;
  return first < blocks_ && nb_blocks <= blocks_ - first;  // usable region = the region
}

uint64_t MemDevice::plugged_in(uint64_t first, uint64_t count) const {
  uint64_t n = 0;
  for (uint64_t b = first; b < first + count; ++b) n += test(b);
  return n;
}

void MemDevice::set_blocks(uint64_t first, uint64_t count, bool plugged) {
  for (uint64_t b = first; b < first + count; ++b) {
    if (test(b) == plugged) continue;
    bitmap_[b / 64] ^= uint64_t{1} << (b % 64);
    plugged ? ++plugged_blocks_ : --plugged_blocks_;
  }
}

bool MemDevice::discard(uint64_t first, uint64_t count) {
  const GuestAddress at = config_.addr.unchecked_add(first * config_.block_size);  // inside the region (block_range)
  try {
    mem_.discard(at, count * config_.block_size);
    return true;
  } catch (const std::exception& e) {
    // The blocks stay plugged and the guest is told BUSY: it tries again later.
    log::warn("virtio", "virtio-mem could not give unplugged memory back", {{"error", std::string(e.what())}});
    return false;
  }
}

}  // namespace skiff::virtio
