// libFuzzer target for the device side of the split virtqueue.
//
// Guest RAM is 64 KiB at 0 (created once, zeroed per input).
// Input: 6 control bytes, then bytes copied to guest address 0 (at most 64 KiB).
//   byte 0:     queue size = 1 << (byte % 9)   (1..256)
//   byte 1:     bit 0: VIRTIO_F_EVENT_IDX; bit 1: NO_INTERRUPT-style notify check twice
//   bytes 2-3:  initial last_avail_idx (LE), bytes 4-5: initial used idx (LE)
// Rings are packed from 0: desc table at 0 (16*size bytes), avail ring right
// after it, used ring after that (aligned to 4); indirect tables and buffers
// may be anywhere. The device pops until empty (bounded), reads every chain,
// writes into it (which may overwrite the rings: a hostile guest layout),
// completes it and asks whether to notify.
//
// Checked beyond "no crash / no sanitizer report": every descriptor handed out
// is inside guest RAM, good chains have <= size descriptors, readable before
// writable, total length < 2^32, and a malformed chain carries no descriptors.
//
// Seeds in fuzz/corpus/virtqueue/ are made by fuzz/virtqueue_seeds.py.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "virtio/virtqueue.h"
#include "memory/guest_memory.h"

namespace {

using skiff::GuestAddress;
using skiff::GuestMemory;
using namespace skiff::virtio;

constexpr uint64_t kRam = 64 * 1024;

void check(bool ok) {
  if (!ok) std::abort();
}

const GuestMemory& memory() {
  static const GuestMemory mem = GuestMemory::create({{GuestAddress(0), kRam}});
  return mem;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 6) return 0;
  const GuestMemory& mem = memory();
  mem.fill(GuestAddress(0), kRam, 0);
  const uint16_t qsize = static_cast<uint16_t>(1u << (data[0] % 9));
  const bool event_idx = data[1] & 1;
  const bool double_notify = data[1] & 2;
  uint16_t last_avail, used;
  std::memcpy(&last_avail, data + 2, 2);
  std::memcpy(&used, data + 4, 2);
  const size_t payload = std::min<size_t>(size - 6, kRam);
  mem.write(GuestAddress(0), std::span<const uint8_t>(data + 6, payload));

  const uint64_t desc = 0, avail = desc_table_bytes(qsize);
  const uint64_t used_addr = (avail + avail_ring_bytes(qsize) + 3) & ~uint64_t{3};
  Virtqueue queue(mem, QueueConfig{qsize, GuestAddress(desc), GuestAddress(avail), GuestAddress(used_addr), event_idx});
  check(queue.valid());
  queue.set_indices(last_avail, used);

  static std::vector<uint8_t> buf(kRam);
  for (int round = 0, pops = 0; round < 4 && pops < 4 * (qsize + 1); ++round) {
    while (pops < 4 * (qsize + 1)) {
      auto chain = queue.pop();
      if (!chain) break;
      ++pops;
      if (!chain->ok()) {
        check(chain->descriptors.empty());
        queue.add_used(chain->head, 0);
        continue;
      }
      check(chain->descriptors.size() <= qsize);
      uint64_t total = 0;
      bool seen_write = false;
      for (const auto& d : chain->descriptors) {
        check(mem.contains(d.addr, d.len));
        check(!(seen_write && !d.write));
        seen_write = seen_write || d.write;
        total += d.len;
      }
      check(total <= UINT32_MAX);
      const size_t off = pops % 3;
      skiff::virtio::ChainReader reader(mem, *chain);
      reader.skip_some(off);
      const size_t r = reader.read_some(std::span(buf.data(), std::min<uint64_t>(buf.size(), chain->readable_bytes())));
      check(r <= chain->readable_bytes());
      std::fill(buf.begin(), buf.end(), static_cast<uint8_t>(pops));
      skiff::virtio::ChainWriter writer(mem, *chain);
      writer.skip_some(off);
      const size_t w = writer.write_some(std::span<const uint8_t>(buf.data(), std::min<uint64_t>(buf.size(), chain->writable_bytes())));
      check(w <= chain->writable_bytes());
      queue.add_used(chain->head, static_cast<uint32_t>(w));
      queue.needs_notification();
      if (double_notify) check(!queue.needs_notification() || event_idx);
    }
  }
  return 0;
}
