// libFuzzer target for the virtio-mem device model (virtio/mem/mem_device.h).
//
// Guest RAM is 64 KiB at 0 (created once, zeroed per input) and the device's
// region 8 MiB at 16 MiB (created once; each input gets a fresh device, so a
// fresh bitmap, over it). Input: 6 control bytes, then bytes copied to guest
// address 0 (at most 64 KiB).
//   byte 0: queue size = 1 << (byte % 8)   (1..128, the device's maximum)
//   byte 1: bits 0-3: block size = 4 KiB << (bits % 10) (4 KiB..2 MiB);
//           bit 4: VIRTIO_F_EVENT_IDX; bit 5: notify twice; bit 6: reset
//           and activate again between the two notifies
//   byte 2: requested size before the first notify, in blocks (capped)
//   byte 3: requested size before the second, in blocks (capped)
//   bytes 4-5: initial last_avail_idx == used idx (LE)
// Rings are packed from 0 as in blk_device_fuzz.cc: desc table at 0, avail
// ring right after it, used ring after that (aligned to 4). Requests and
// responses may be anywhere, the region included, and over the rings.
//
// Checked beyond "no crash / no sanitizer report": plugged_size is always
// the bitmap's count of plugged blocks times the block size, never more than
// the region, and never more than the largest requested size so far (a
// PLUG past requested_size is refused). At most 4*size requests are taken
// per notify (MemConfig::max_requests_per_notify).
//
// Seeds in fuzz/corpus/mem_device/ are made by fuzz/mem_device_seeds.py.
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <span>
#include <vector>

#include "memory/guest_memory.h"
#include "virtio/mem/mem_device.h"
#include "virtio/virtqueue.h"

namespace {

using skiff::GuestAddress;
using skiff::GuestMemory;
using namespace skiff::virtio;

constexpr uint64_t kRam = 64 * 1024;
constexpr uint64_t kRegion = 16ull << 20;
constexpr uint64_t kRegionSize = 8ull << 20;

void check(bool ok) {
  if (!ok) std::abort();
}

const GuestMemory& memory() {
  static const GuestMemory mem = GuestMemory::create({{GuestAddress(0), kRam}, {GuestAddress(kRegion), kRegionSize}});
  return mem;
}

class NullInterrupt : public DeviceInterrupt {
 public:
  void used_buffers() override {}
  void config_changed() override {}
};

std::vector<std::unique_ptr<Virtqueue>> queue(const GuestMemory& mem, const QueueConfig& qc, uint16_t start) {
  auto vq = std::make_unique<Virtqueue>(mem, qc);
  check(vq->valid());
  vq->set_indices(start, start);
  std::vector<std::unique_ptr<Virtqueue>> queues;
  queues.push_back(std::move(vq));
  return queues;
}

void check_invariants(const MemDevice& dev, uint64_t most_requested) {
  check(dev.plugged_size() == dev.count_plugged_blocks() * dev.block_size());
  check(dev.plugged_size() <= dev.region_size());
  check(dev.plugged_size() <= most_requested);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 6) return 0;
  const GuestMemory& mem = memory();
  mem.fill(GuestAddress(0), kRam, 0);
  const uint16_t qsize = static_cast<uint16_t>(1u << (data[0] % 8));
  const uint64_t block = uint64_t{4096} << ((data[1] & 0xf) % 10);
  const bool event_idx = data[1] & 0x10;
  const bool twice = data[1] & 0x20;
  const bool reset_between = data[1] & 0x40;
  uint16_t start;
  std::memcpy(&start, data + 4, 2);
  const size_t payload = std::min<size_t>(size - 6, kRam);
  mem.write(GuestAddress(0), std::span<const uint8_t>(data + 6, payload));

  MemConfig cfg;
  cfg.addr = GuestAddress(kRegion);
  cfg.region_size = kRegionSize;
  cfg.block_size = block;
  cfg.max_requests_per_notify = 4u * qsize;
  MemDevice dev(mem, cfg);
  const uint64_t blocks = dev.block_count();
  const uint64_t first_request = std::min<uint64_t>(data[2], blocks) * block;
  const uint64_t second_request = std::min<uint64_t>(data[3], blocks) * block;

  const uint64_t desc = 0, avail = desc_table_bytes(qsize);
  const uint64_t used_addr = (avail + avail_ring_bytes(qsize) + 3) & ~uint64_t{3};
  const QueueConfig qc{qsize, GuestAddress(desc), GuestAddress(avail), GuestAddress(used_addr), event_idx};
  auto irq = std::make_shared<NullInterrupt>();
  check(dev.activate(dev.device_features(), queue(mem, qc, start), irq));
  dev.set_requested_size(first_request);
  dev.queue_notify(0);
  check_invariants(dev, first_request);
  if (twice) {
    if (reset_between) {
      dev.reset();
      check(dev.activate(dev.device_features(), queue(mem, qc, start), irq));
    }
    dev.set_requested_size(second_request);
    dev.queue_notify(0);
    check_invariants(dev, std::max(first_request, second_request));
  }
  dev.reset();
  check_invariants(dev, std::max(first_request, twice ? second_request : 0));
  return 0;
}
