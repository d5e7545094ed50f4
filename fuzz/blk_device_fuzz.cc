// libFuzzer target for the virtio-blk device model (virtio/blk/blk_device.h).
//
// Guest RAM is 64 KiB at 0 (created once, zeroed per input); the disk is a
// 64 KiB temporary image file (created once, re-zeroed per input). The device
// uses the inline backend, so every request completes inside queue_notify.
// Input: 4 control bytes, then bytes copied to guest address 0 (at most 64 KiB).
//   byte 0: queue size = 1 << (byte % 9)   (1..256; the device allows up to 256)
//   byte 1: bit 0: VIRTIO_F_EVENT_IDX; bit 1: read-only device; bit 2: notify twice
//   bytes 2-3: initial last_avail_idx == used idx (LE)
// Rings are packed from 0 as in virtqueue_fuzz.cc: desc table at 0, avail ring
// right after it, used ring after that (aligned to 4). Requests, segments and
// buffers may be anywhere, including over the rings.
//
// Checked beyond "no crash / no sanitizer report": the disk never changes size
// and the device is idle after each notify (inline mode). At most 4*size
// chains are taken per notify (BlockConfig::max_chains_per_notify).
//
// Seeds in fuzz/corpus/blk_device/ are made by fuzz/blk_device_seeds.py.
#include <sys/stat.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>

#include "virtio/blk/blk_device.h"
#include "virtio/virtqueue.h"
#include "memory/guest_memory.h"
#include "base/unique_fd.h"

namespace {

using skiff::GuestAddress;
using skiff::GuestMemory;
using namespace skiff::virtio;

constexpr uint64_t kRam = 64 * 1024;
constexpr off_t kDisk = 64 * 1024;

void check(bool ok) {
  if (!ok) std::abort();
}

const GuestMemory& memory() {
  static const GuestMemory mem = GuestMemory::create({{GuestAddress(0), kRam}});
  return mem;
}

// The image path; the file is unlinked at exit.
struct Image {
  std::string path;
  Image() {
    const char* dir = std::getenv("TMPDIR");
    std::string tmpl = std::string(dir && *dir ? dir : "/tmp") + "/skiff-blk-fuzz-XXXXXX";
    skiff::UniqueFd fd(::mkstemp(tmpl.data()));
    check(fd.valid());
    path = tmpl;
  }
  ~Image() { ::unlink(path.c_str()); }
};

const std::string& image() {
  static Image img;
  return img.path;
}

class NullInterrupt : public DeviceInterrupt {
 public:
  void used_buffers() override { ++count; }
  void config_changed() override {}
  uint64_t count = 0;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 4) return 0;
  const GuestMemory& mem = memory();
  mem.fill(GuestAddress(0), kRam, 0);
  const uint16_t qsize = static_cast<uint16_t>(1u << (data[0] % 9));
  const bool event_idx = data[1] & 1;
  const bool read_only = data[1] & 2;
  const bool twice = data[1] & 4;
  uint16_t start;
  std::memcpy(&start, data + 2, 2);
  const size_t payload = std::min<size_t>(size - 4, kRam);
  mem.write(GuestAddress(0), std::span<const uint8_t>(data + 4, payload));

  const std::string& path = image();
  check(::truncate(path.c_str(), 0) == 0 && ::truncate(path.c_str(), kDisk) == 0);

  BlockConfig cfg;
  cfg.path = path;
  cfg.read_only = read_only;
  cfg.serial = "fuzz-serial";
  cfg.backend = BlockBackendKind::kInline;
  cfg.max_chains_per_notify = 4u * qsize;
  BlockDevice dev(mem, cfg);

  const uint64_t desc = 0, avail = desc_table_bytes(qsize);
  const uint64_t used_addr = (avail + avail_ring_bytes(qsize) + 3) & ~uint64_t{3};
  const QueueConfig qc{qsize, GuestAddress(desc), GuestAddress(avail), GuestAddress(used_addr), event_idx};
  auto vq = std::make_unique<Virtqueue>(mem, qc);
  check(vq->valid());
  vq->set_indices(start, start);
  std::vector<std::unique_ptr<Virtqueue>> queues;
  queues.push_back(std::move(vq));
  auto irq = std::make_shared<NullInterrupt>();
  check(dev.activate(dev.device_features(), std::move(queues), irq));
  dev.queue_notify(0);
  if (twice) dev.queue_notify(0);
  dev.drain();
  dev.reset();

  struct stat st {};
  check(::stat(path.c_str(), &st) == 0 && st.st_size == kDisk);
  return 0;
}
