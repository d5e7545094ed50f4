#include "virtio/blk/blk_device.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <fstream>
#include <map>
#include <mutex>
#include <set>

#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include "base/io_thread.h"
#include <rapidcheck/gtest.h>

#include "virtio/testing/driver_queue.h"

namespace skiff::virtio {
namespace {

using testing::DriverQueue;

constexpr uint64_t kMiB = 1 << 20;
constexpr uint64_t kRam = 4 * kMiB;
constexpr uint64_t kDiskSectors = 256;  // 128 KiB
constexpr uint16_t kQueueSize = 256;

std::vector<uint8_t> pattern(size_t n, uint8_t seed) {
  std::vector<uint8_t> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = static_cast<uint8_t>(seed + i * 7 + (i >> 9));
  return v;
}

std::vector<uint8_t> header(uint32_t type, uint64_t sector) {
  std::vector<uint8_t> h(16, 0);
  std::memcpy(h.data(), &type, 4);
  std::memcpy(h.data() + 8, &sector, 8);
  return h;
}

std::vector<uint8_t> segments(std::vector<std::tuple<uint64_t, uint32_t, uint32_t>> segs) {
  std::vector<uint8_t> out;
  for (auto [sector, n, flags] : segs) {
    uint8_t b[16];
    std::memcpy(b, &sector, 8);
    std::memcpy(b + 8, &n, 4);
    std::memcpy(b + 12, &flags, 4);
    out.insert(out.end(), b, b + 16);
  }
  return out;
}

// A temporary image file, removed on destruction.
class TempImage {
 public:
  explicit TempImage(uint64_t bytes, uint8_t seed = 0x11) {
    const char* dir = std::getenv("TMPDIR");
    std::string tmpl = std::string(dir && *dir ? dir : "/tmp") + "/skiff-blk-test-XXXXXX";
    UniqueFd fd(::mkstemp(tmpl.data()));
    if (!fd) throw std::runtime_error("mkstemp");
    path_ = tmpl;
    const auto data = pattern(bytes, seed);
    if (::pwrite(fd.get(), data.data(), data.size(), 0) != static_cast<ssize_t>(data.size()))
      throw std::runtime_error("pwrite");
  }
  ~TempImage() { ::unlink(path_.c_str()); }
  const std::string& path() const { return path_; }
  std::vector<uint8_t> contents() const {
    std::ifstream f(path_, std::ios::binary);
    return std::vector<uint8_t>((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  }

 private:
  std::string path_;
};

class CountingInterrupt : public DeviceInterrupt {
 public:
  void used_buffers() override { ++used; }
  void config_changed() override { ++config; }
  std::atomic<int> used{0}, config{0};
};

struct Done {
  uint16_t head = 0;
  uint32_t len = 0;
  uint8_t status = 0xff;
  std::vector<uint8_t> in;  // all writable bytes, the status byte last
};

std::string backend_label(BlockBackendKind k) {
  switch (k) {
    case BlockBackendKind::kIoUring: return "IoUring";
    case BlockBackendKind::kThreadPool: return "ThreadPool";
    case BlockBackendKind::kInline: return "Inline";
    default: return "Auto";
  }
}

class BlkTest : public ::testing::TestWithParam<BlockBackendKind> {
 protected:
  GuestMemory mem = GuestMemory::create({{GuestAddress(0), kRam}});
  TempImage image{kDiskSectors * kSectorSize};
  std::unique_ptr<BlockDevice> dev;
  std::vector<std::unique_ptr<DriverQueue>> drivers;
  std::shared_ptr<CountingInterrupt> irq = std::make_shared<CountingInterrupt>();

  static QueueConfig qconfig(size_t q) {
    const uint64_t base = q * 0x10000;
    return QueueConfig{kQueueSize, GuestAddress(base), GuestAddress(base + 0x1000), GuestAddress(base + 0x2000), false};
  }

  // Builds and activates the device; false (and the test is skipped) when the
  // backend can't be set up here.
  bool start(BlockConfig cfg = {}) {
    cfg.path = image.path();
    cfg.backend = GetParam();
    if (cfg.serial.empty()) cfg.serial = "skiff-disk-0";
    try {
      dev = std::make_unique<BlockDevice>(mem, cfg);
    } catch (const std::system_error& e) {
      if (GetParam() == BlockBackendKind::kIoUring) return false;
      throw;
    }
    std::vector<std::unique_ptr<Virtqueue>> queues;
    for (size_t q = 0; q < cfg.queues; ++q) {
      drivers.push_back(std::make_unique<DriverQueue>(mem, qconfig(q), GuestAddress(kMiB + q * kMiB), kMiB));
      queues.push_back(std::make_unique<Virtqueue>(mem, qconfig(q)));
    }
    EXPECT_TRUE(dev->activate(dev->device_features(), std::move(queues), irq));
    return true;
  }

  Done collect(size_t q, const DriverQueue::Chain& chain, const std::vector<uint32_t>& wlens) {
    Done d;
    auto used = drivers[q]->next_used();
    if (!used) {
      ADD_FAILURE() << "no used element";
      return d;
    }
    d.head = static_cast<uint16_t>(used->id);
    d.len = used->len;
    EXPECT_EQ(used->id, chain.head);
    for (size_t i = 0; i < wlens.size(); ++i) {
      const auto b = drivers[q]->read_bytes(chain.writable[i], wlens[i]);
      d.in.insert(d.in.end(), b.begin(), b.end());
    }
    if (!d.in.empty()) d.status = d.in.back();
    return d;
  }

  // One request: publish, kick, wait, and read the single used element back.
  Done request(const std::vector<std::vector<uint8_t>>& readable, const std::vector<uint32_t>& wlens, size_t q = 0,
               bool indirect = false) {
    const auto chain = drivers[q]->add_chain(readable, wlens, indirect);
    dev->queue_notify(q);
    dev->drain();
    Done d = collect(q, chain, wlens);
    EXPECT_FALSE(drivers[q]->next_used()) << "more than one completion";
    return d;
  }

  Done write(uint64_t sector, const std::vector<uint8_t>& data, size_t q = 0) {
    return request({header(kBlkTOut, sector), data}, {1}, q);
  }
  // Reads `sectors`; returns the data (status checked OK).
  std::vector<uint8_t> read(uint64_t sector, uint32_t sectors, size_t q = 0) {
    Done d = request({header(kBlkTIn, sector)}, {sectors * 512u, 1}, q);
    EXPECT_EQ(d.status, kBlkSOk);
    EXPECT_EQ(d.len, sectors * 512u + 1);
    d.in.pop_back();
    return d.in;
  }
  std::vector<uint8_t> file_range(uint64_t sector, uint64_t sectors) {
    const auto all = image.contents();
    return std::vector<uint8_t>(all.begin() + static_cast<std::ptrdiff_t>(sector * 512),
                                all.begin() + static_cast<std::ptrdiff_t>((sector + sectors) * 512));
  }
};

#define START(...)                                                   \
  do {                                                               \
    if (!start(__VA_ARGS__)) GTEST_SKIP() << "io_uring unavailable here"; \
  } while (0)

TEST_P(BlkTest, ConfigSpaceAndFeatures) {
  START();
  EXPECT_EQ(dev->device_type(), 2u);
  const uint64_t f = dev->device_features();
  for (unsigned b : {kFeatureVersion1, kFeatureEventIdx, kFeatureIndirectDesc, kBlkFSegMax, kBlkFBlkSize, kBlkFFlush,
                     kBlkFDiscard, kBlkFWriteZeroes})
    EXPECT_TRUE(f & bit(b)) << b;
  EXPECT_FALSE(f & bit(kBlkFRo));
  EXPECT_FALSE(f & bit(kBlkFMq));
  EXPECT_EQ(dev->queue_count(), 1u);
  EXPECT_EQ(dev->queue_max_size(0), kQueueSize);

  auto cfg = [&](uint64_t off, size_t len) {
    uint64_t v = 0;
    std::vector<uint8_t> b(len);
    dev->read_config(off, b);
    std::memcpy(&v, b.data(), len);
    return v;
  };
  EXPECT_EQ(cfg(0, 8), kDiskSectors);
  EXPECT_EQ(cfg(12, 4), kQueueSize - 2u);
  EXPECT_EQ(cfg(20, 4), 512u);
  EXPECT_EQ(cfg(34, 2), 1u);
  EXPECT_EQ(cfg(36, 4), kBlkMaxDiscardSectors);
  EXPECT_EQ(cfg(40, 4), kBlkMaxDiscardSegments);
  EXPECT_EQ(cfg(44, 4), 1u);
  EXPECT_EQ(cfg(48, 4), kBlkMaxDiscardSectors);
  EXPECT_EQ(cfg(52, 4), kBlkMaxDiscardSegments);
  EXPECT_EQ(cfg(56, 1), 0u);
  EXPECT_EQ(cfg(200, 8), 0u);  // past the end
  EXPECT_EQ(cfg(58, 8), 0u);   // straddling the end
  const uint8_t junk[4] = {1, 2, 3, 4};
  dev->write_config(0, junk);  // ignored
  EXPECT_EQ(cfg(0, 8), kDiskSectors);
}

// Kicks come straight from the queue's ioeventfd, active or not.
TEST_P(BlkTest, KicksBeforeActivationAndAfterResetDoNothing) {
  {
    BlockConfig cfg;
    cfg.path = image.path();
    cfg.backend = BlockBackendKind::kThreadPool;
    BlockDevice idle(mem, cfg);
    idle.queue_notify(0);
    idle.queue_notify(7);
  }
  START();
  dev->reset();
  drivers[0]->add_chain({header(kBlkTIn, 0)}, {512, 1});
  dev->queue_notify(0);
  dev->drain();
  EXPECT_FALSE(drivers[0]->next_used());
  EXPECT_EQ(irq->used.load(), 0);
}

TEST_P(BlkTest, ReadWriteRoundTripAcrossTheDisk) {
  START();
  for (uint64_t sector : {uint64_t{0}, uint64_t{7}, uint64_t{100}, kDiskSectors - 4}) {
    const auto data = pattern(4 * 512, static_cast<uint8_t>(sector));
    // Several readable descriptors whose lengths are not sector multiples.
    std::vector<std::vector<uint8_t>> rd{header(kBlkTOut, sector), {data.begin(), data.begin() + 100},
                                         {data.begin() + 100, data.begin() + 1100}, {data.begin() + 1100, data.end()}};
    Done w = request(rd, {1});
    EXPECT_EQ(w.status, kBlkSOk);
    EXPECT_EQ(w.len, 1u);
    EXPECT_EQ(file_range(sector, 4), data);

    // Read back through several writable descriptors, the status in its own byte...
    Done r = request({header(kBlkTIn, sector)}, {300, 1748, 1});
    EXPECT_EQ(r.status, kBlkSOk);
    EXPECT_EQ(r.len, 2049u);
    EXPECT_EQ(std::vector<uint8_t>(r.in.begin(), r.in.end() - 1), data);
    // ...and sharing the last data descriptor, through an indirect table.
    Done ri = request({header(kBlkTIn, sector)}, {1000, 1049}, 0, true);
    EXPECT_EQ(ri.status, kBlkSOk);
    EXPECT_EQ(std::vector<uint8_t>(ri.in.begin(), ri.in.end() - 1), data);
  }
  // Untouched sectors keep their original bytes.
  const auto original = pattern(kDiskSectors * 512, 0x11);
  EXPECT_EQ(file_range(50, 2), std::vector<uint8_t>(original.begin() + 50 * 512, original.begin() + 52 * 512));
  EXPECT_GT(irq->used.load(), 0);
}

TEST_P(BlkTest, ZeroLengthReadSucceeds) {
  START();
  Done d = request({header(kBlkTIn, 3)}, {1});
  EXPECT_EQ(d.status, kBlkSOk);
}

TEST_P(BlkTest, Flush) {
  START();
  write(1, pattern(512, 9));
  Done d = request({header(kBlkTFlush, 0)}, {1});
  EXPECT_EQ(d.status, kBlkSOk);
  EXPECT_EQ(d.len, 1u);
}

TEST_P(BlkTest, GetIdIsZeroPadded) {
  START();
  Done d = request({header(kBlkTGetId, 0)}, {20, 1});
  EXPECT_EQ(d.status, kBlkSOk);
  EXPECT_EQ(d.len, 21u);
  std::vector<uint8_t> want(20, 0);
  std::memcpy(want.data(), "skiff-disk-0", 12);
  EXPECT_EQ(std::vector<uint8_t>(d.in.begin(), d.in.begin() + 20), want);
  // A shorter buffer gets what fits.
  Done s = request({header(kBlkTGetId, 0)}, {6});
  EXPECT_EQ(s.status, kBlkSOk);
  EXPECT_EQ(std::string(s.in.begin(), s.in.begin() + 5), "skiff");
}

TEST_P(BlkTest, LongSerialIsTruncatedTo20Bytes) {
  BlockConfig cfg;
  cfg.serial = "0123456789abcdefghijKLMNOP";
  START(cfg);
  Done d = request({header(kBlkTGetId, 0)}, {24, 1});
  EXPECT_EQ(std::string(d.in.begin(), d.in.begin() + 20), "0123456789abcdefghij");
  EXPECT_EQ(d.in[20], 0xEE);  // beyond the id: untouched
}

TEST_P(BlkTest, DiscardAndWriteZeroes) {
  START();
  const auto before = image.contents();
  Done d = request({header(kBlkTDiscard, 0), segments({{8, 8, 0}, {40, 3, 0}})}, {1});
  EXPECT_EQ(d.status, kBlkSOk);
  Done z = request({header(kBlkTWriteZeroes, 0), segments({{100, 5, 0}, {kDiskSectors - 1, 1, kBlkWriteZeroesUnmap}})},
                   {1});
  EXPECT_EQ(z.status, kBlkSOk);
  const auto after = image.contents();
  ASSERT_EQ(after.size(), before.size());  // KEEP_SIZE
  auto zeroed = [](uint64_t s) {
    return (s >= 8 && s < 16) || (s >= 40 && s < 43) || (s >= 100 && s < 105) || s == kDiskSectors - 1;
  };
  for (uint64_t s = 0; s < kDiskSectors; ++s) {
    const auto b = after.begin() + static_cast<std::ptrdiff_t>(s * 512);
    if (zeroed(s))
      EXPECT_TRUE(std::all_of(b, b + 512, [](uint8_t x) { return x == 0; })) << s;
    else
      EXPECT_TRUE(std::equal(b, b + 512, before.begin() + static_cast<std::ptrdiff_t>(s * 512))) << s;
  }
  EXPECT_EQ(read(8, 1), std::vector<uint8_t>(512, 0));
}

TEST_P(BlkTest, ReadOnlyDeviceRefusesWrites) {
  BlockConfig cfg;
  cfg.read_only = true;
  START(cfg);
  EXPECT_TRUE(dev->device_features() & bit(kBlkFRo));
  const auto before = image.contents();
  EXPECT_EQ(write(0, pattern(512, 1)).status, kBlkSIoErr);
  EXPECT_EQ(request({header(kBlkTDiscard, 0), segments({{0, 1, 0}})}, {1}).status, kBlkSIoErr);
  EXPECT_EQ(request({header(kBlkTWriteZeroes, 0), segments({{0, 1, 0}})}, {1}).status, kBlkSIoErr);
  EXPECT_EQ(request({header(kBlkTFlush, 0)}, {1}).status, kBlkSOk);
  EXPECT_EQ(read(0, 2), file_range(0, 2));
  EXPECT_EQ(image.contents(), before);
}

TEST_P(BlkTest, BadRequestsFailAndTheDeviceKeepsServing) {
  START();
  const auto before = image.contents();
  auto still_serving = [&] { EXPECT_EQ(read(5, 1), file_range(5, 1)); };

  // Past the end, straddling the end, and a sector that overflows.
  EXPECT_EQ(request({header(kBlkTIn, kDiskSectors)}, {512, 1}).status, kBlkSIoErr);
  still_serving();
  EXPECT_EQ(request({header(kBlkTIn, kDiskSectors - 1)}, {1024, 1}).status, kBlkSIoErr);
  EXPECT_EQ(write(kDiskSectors - 1, pattern(1024, 3)).status, kBlkSIoErr);
  EXPECT_EQ(write(UINT64_MAX / 512 + 5, pattern(512, 3)).status, kBlkSIoErr);
  EXPECT_EQ(write(UINT64_MAX, pattern(512, 3)).status, kBlkSIoErr);
  still_serving();
  // Lengths that are not sector multiples.
  EXPECT_EQ(write(0, pattern(100, 3)).status, kBlkSIoErr);
  EXPECT_EQ(request({header(kBlkTIn, 0)}, {100, 1}).status, kBlkSIoErr);
  still_serving();
  // Unknown type.
  EXPECT_EQ(request({header(99, 0)}, {1}).status, kBlkSUnsupp);
  EXPECT_EQ(request({header(kBlkTGetId + 100, 0)}, {512, 1}).status, kBlkSUnsupp);
  still_serving();
  // Header too short (8 bytes), or none at all.
  {
    Done d = request({std::vector<uint8_t>(8, 0)}, {512, 1});
    EXPECT_EQ(d.status, kBlkSIoErr);
    EXPECT_EQ(d.len, 1u);
    EXPECT_EQ(d.in[0], 0xEE);  // no data written
  }
  EXPECT_EQ(request({}, {512, 1}).status, kBlkSIoErr);
  still_serving();
  // No writable status byte: used with length 0, nothing written.
  {
    Done d = request({header(kBlkTIn, 0)}, {});
    EXPECT_EQ(d.len, 0u);
    Done w = request({header(kBlkTOut, 0), pattern(512, 1)}, {});
    EXPECT_EQ(w.len, 0u);
  }
  still_serving();
  // Discard / write-zeroes: bad flags, ragged segments, no segments, past the end, too many.
  EXPECT_EQ(request({header(kBlkTDiscard, 0), segments({{0, 1, 1}})}, {1}).status, kBlkSUnsupp);
  EXPECT_EQ(request({header(kBlkTWriteZeroes, 0), segments({{0, 1, 2}})}, {1}).status, kBlkSUnsupp);
  EXPECT_EQ(request({header(kBlkTDiscard, 0), std::vector<uint8_t>(10, 0)}, {1}).status, kBlkSIoErr);
  EXPECT_EQ(request({header(kBlkTDiscard, 0)}, {1}).status, kBlkSIoErr);
  EXPECT_EQ(request({header(kBlkTDiscard, 0), segments({{kDiskSectors - 1, 2, 0}})}, {1}).status, kBlkSIoErr);
  EXPECT_EQ(request({header(kBlkTWriteZeroes, 0), segments({{UINT64_MAX, 1, 0}})}, {1}).status, kBlkSIoErr);
  {
    std::vector<std::tuple<uint64_t, uint32_t, uint32_t>> many(kBlkMaxDiscardSegments + 1, {0, 1, 0});
    EXPECT_EQ(request({header(kBlkTDiscard, 0), segments(many)}, {1}).status, kBlkSIoErr);
  }
  still_serving();
  // A malformed chain (buffer outside guest RAM): add_used(head, 0).
  {
    drivers[0]->raw_desc(kQueueSize - 1, RawDescriptor{0xFFFF00000000ull, 16, 0, 0});
    drivers[0]->push_avail(kQueueSize - 1);
    dev->queue_notify(0);
    dev->drain();
    auto u = drivers[0]->next_used();
    ASSERT_TRUE(u);
    EXPECT_EQ(u->id, kQueueSize - 1u);
    EXPECT_EQ(u->len, 0u);
  }
  still_serving();
  EXPECT_EQ(image.contents(), before);
}

TEST_P(BlkTest, TwoQueues) {
  BlockConfig cfg;
  cfg.queues = 2;
  START(cfg);
  EXPECT_TRUE(dev->device_features() & bit(kBlkFMq));
  uint8_t nq[2];
  dev->read_config(34, nq);
  EXPECT_EQ(nq[0] | nq[1] << 8, 2);
  EXPECT_EQ(write(10, pattern(1024, 5), 1).status, kBlkSOk);
  EXPECT_EQ(read(10, 2, 0), pattern(1024, 5));
  EXPECT_EQ(write(20, pattern(512, 6), 0).status, kBlkSOk);
  EXPECT_EQ(read(20, 1, 1), pattern(512, 6));
  // Kicking an idle queue does nothing.
  dev->queue_notify(1);
  dev->queue_notify(7);
  EXPECT_FALSE(drivers[1]->next_used());
}

TEST_P(BlkTest, ResetWaitsForInFlightRequests) {
  START();
  std::vector<uint16_t> heads;
  for (int i = 0; i < 40; ++i)
    heads.push_back(drivers[0]->add_chain({header(kBlkTOut, i), pattern(2048, static_cast<uint8_t>(i))}, {1}).head);
  dev->queue_notify(0);
  dev->reset();  // returns only once all 40 are used
  std::multiset<uint16_t> used;
  while (auto u = drivers[0]->next_used()) used.insert(static_cast<uint16_t>(u->id));
  EXPECT_EQ(used, std::multiset<uint16_t>(heads.begin(), heads.end()));
  dev->queue_notify(0);  // after reset: ignored
  for (int i = 0; i < 40; ++i) EXPECT_EQ(file_range(i, 4), pattern(2048, static_cast<uint8_t>(i))) << i;
}

// One kick carrying far more requests than may be in flight: the device
// must hand the backend what it holds back before it waits for a slot, or
// the kick never returns (with io_uring the ring has 4 entries here).
TEST_P(BlkTest, OneKickWithMoreRequestsThanMayBeInFlight) {
  BlockConfig cfg;
  cfg.max_inflight = 4;
  START(cfg);
  constexpr int kEach = 30;
  std::map<uint16_t, int> writes, reads;  // head -> sector
  std::map<uint16_t, DriverQueue::Chain> read_chains;
  for (int i = 0; i < kEach; ++i) {
    writes[drivers[0]->add_chain({header(kBlkTOut, i), pattern(512, static_cast<uint8_t>(i))}, {1}).head] = i;
    const auto c = drivers[0]->add_chain({header(kBlkTIn, 100 + i)}, {512, 1});
    reads[c.head] = 100 + i;
    read_chains[c.head] = c;
  }
  dev->queue_notify(0);
  dev->drain();
  const auto original = pattern(kDiskSectors * 512, 0x11);
  std::multiset<uint16_t> used;
  while (auto u = drivers[0]->next_used()) {
    const auto h = static_cast<uint16_t>(u->id);
    used.insert(h);
    if (auto r = read_chains.find(h); r != read_chains.end()) {
      EXPECT_EQ(u->len, 513u);
      EXPECT_EQ(drivers[0]->read_bytes(r->second.writable[1], 1)[0], kBlkSOk);
      const auto at = original.begin() + reads[h] * 512;
      EXPECT_EQ(drivers[0]->read_bytes(r->second.writable[0], 512), std::vector<uint8_t>(at, at + 512)) << reads[h];
    } else {
      EXPECT_EQ(u->len, 1u);
    }
  }
  EXPECT_EQ(used.size(), 2u * kEach);
  for (const auto& [head, sector] : writes) EXPECT_EQ(used.count(head), 1u);
  for (const auto& [head, sector] : reads) EXPECT_EQ(used.count(head), 1u);
  for (int i = 0; i < kEach; ++i) EXPECT_EQ(file_range(i, 1), pattern(512, static_cast<uint8_t>(i))) << i;
  // The slots all came back: the device keeps serving.
  EXPECT_EQ(read(3, 1), pattern(512, 3));
}

// With an event loop the kick never waits for a slot: with one slot and 40
// requests it defers the queue, and the completions post it back to the loop
// until every request is done, each exactly once.
TEST_P(BlkTest, AFullSlotTableDefersTheQueueToTheLoop) {
  IoThread loop;
  BlockConfig cfg;
  cfg.max_inflight = 1;
  cfg.loop = &loop;
  START(cfg);
  constexpr int kReads = 40;
  std::map<uint16_t, int> reads;
  for (int i = 0; i < kReads; ++i) reads[drivers[0]->add_chain({header(kBlkTIn, i)}, {512, 1}).head] = i;
  loop.run_sync([&] { dev->queue_notify(0); });
  std::multiset<uint16_t> used;
  for (int spins = 0; used.size() < kReads && spins < 5000; ++spins) {
    loop.run_sync([&] {
      while (auto u = drivers[0]->next_used()) used.insert(static_cast<uint16_t>(u->id));
    });
    if (used.size() < kReads) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  ASSERT_EQ(used.size(), static_cast<size_t>(kReads));
  for (const auto& [head, sector] : reads) EXPECT_EQ(used.count(head), 1u) << sector;
  dev.reset();  // before the loop: the device's resumptions run there
}

// The image shrinking under the device: io_uring's short or empty reads
// are finished (or failed) off the ring.
TEST_P(BlkTest, ReadsPastAShrunkImageFail) {
  START();
  ASSERT_EQ(::truncate(image.path().c_str(), 64 * 512), 0);
  EXPECT_EQ(request({header(kBlkTIn, 100)}, {512, 1}).status, kBlkSIoErr);
  EXPECT_EQ(request({header(kBlkTIn, 62)}, {2048, 1}).status, kBlkSIoErr);
  EXPECT_EQ(read(60, 4), file_range(60, 4));
}

TEST_P(BlkTest, EveryCompletionExactlyOnceUnderLoad) {
  START();
  std::multiset<uint16_t> heads;
  for (int round = 0; round < 20; ++round) {
    for (int i = 0; i < 16; ++i) {
      const uint64_t sector = static_cast<uint64_t>(round * 16 + i) % (kDiskSectors - 1);
      heads.insert(i % 2 ? drivers[0]->add_chain({header(kBlkTIn, sector)}, {512, 1}).head
                         : drivers[0]->add_chain({header(kBlkTOut, sector), pattern(512, 1)}, {1}).head);
    }
    dev->queue_notify(0);
    dev->drain();
    std::multiset<uint16_t> used;
    while (auto u = drivers[0]->next_used()) used.insert(static_cast<uint16_t>(u->id));
    EXPECT_EQ(used, heads);
    heads.clear();
  }
}

TEST_P(BlkTest, PropertyMatchesAnInMemoryModel) {
  if (GetParam() == BlockBackendKind::kIoUring) {
    try {
      BlockConfig c;
      c.path = image.path();
      c.backend = BlockBackendKind::kIoUring;
      BlockDevice probe(mem, c);
    } catch (const std::system_error& e) {
      GTEST_SKIP() << "io_uring unavailable: " << e.what();
    }
  }
  const auto result = rc::check("writes and reads through the device match a model", [&] {
    constexpr uint64_t kSectors = 64;
    TempImage img(kSectors * 512, 0x5a);
    std::vector<uint8_t> model = img.contents();
    BlockConfig cfg;
    cfg.path = img.path();
    cfg.backend = GetParam();
    cfg.threads = 3;
    BlockDevice d(mem, cfg);
    const QueueConfig qc = qconfig(0);
    DriverQueue driver(mem, qc, GuestAddress(kMiB), kMiB);
    std::vector<std::unique_ptr<Virtqueue>> qs;
    qs.push_back(std::make_unique<Virtqueue>(mem, qc));
    RC_ASSERT(d.activate(d.device_features(), std::move(qs), std::make_shared<CountingInterrupt>()));

    struct Pending {
      bool write;
      uint64_t sector;
      uint32_t n;
      DriverQueue::Chain chain;
      std::vector<uint8_t> expect;  // reads: the model's bytes at submission
    };
    std::vector<Pending> group;
    auto flush_group = [&] {
      d.queue_notify(0);
      d.drain();
      std::map<uint16_t, int> seen;
      while (auto u = driver.next_used()) {
        ++seen[static_cast<uint16_t>(u->id)];
        const auto it = std::find_if(group.begin(), group.end(), [&](const Pending& p) { return p.chain.head == u->id; });
        RC_ASSERT(it != group.end());
        RC_ASSERT(u->len == (it->write ? 1u : it->n * 512u + 1));
      }
      RC_ASSERT(seen.size() == group.size());
      for (const auto& [head, count] : seen) RC_ASSERT(count == 1);
      for (const auto& p : group) {
        RC_ASSERT(driver.read_bytes(p.chain.writable.back(), 1)[0] == kBlkSOk);
        if (!p.write) RC_ASSERT(driver.read_bytes(p.chain.writable[0], p.n * 512) == p.expect);
      }
      group.clear();
    };
    const auto ops = *rc::gen::container<std::vector<std::tuple<bool, uint64_t, uint32_t, uint8_t>>>(
        rc::gen::tuple(rc::gen::arbitrary<bool>(), rc::gen::inRange<uint64_t>(0, kSectors),
                       rc::gen::inRange<uint32_t>(1, 5), rc::gen::arbitrary<uint8_t>()));
    for (auto [is_write, sector, n, seed] : ops) {
      n = static_cast<uint32_t>(std::min<uint64_t>(n, kSectors - sector));
      if (n == 0) continue;
      // Requests in flight together never overlap (the device may reorder).
      for (const auto& p : group)
        if (sector < p.sector + p.n && p.sector < sector + n && (is_write || p.write)) {
          flush_group();
          break;
        }
      const uint64_t off = sector * 512, len = uint64_t{n} * 512;
      if (is_write) {
        const auto data = pattern(len, seed);
        std::copy(data.begin(), data.end(), model.begin() + static_cast<std::ptrdiff_t>(off));
        group.push_back({true, sector, n, driver.add_chain({header(kBlkTOut, sector), data}, {1}), {}});
      } else {
        group.push_back({false, sector, n, driver.add_chain({header(kBlkTIn, sector)}, {static_cast<uint32_t>(len), 1}),
                         std::vector<uint8_t>(model.begin() + static_cast<std::ptrdiff_t>(off),
                                              model.begin() + static_cast<std::ptrdiff_t>(off + len))});
      }
      if (group.size() >= 8) flush_group();
    }
    flush_group();
    RC_ASSERT(img.contents() == model);
  });
  EXPECT_TRUE(result);
}

INSTANTIATE_TEST_SUITE_P(Backends, BlkTest,
                         ::testing::Values(BlockBackendKind::kIoUring, BlockBackendKind::kThreadPool,
                                           BlockBackendKind::kInline),
                         [](const auto& info) { return backend_label(info.param); });

// The backends on their own: every request reported once, with its tag.
class RecordingSink final : public BlockCompletionSink {
 public:
  void complete(std::span<const BlockResult> results) override {
    {
      std::lock_guard lock(mu_);
      for (const auto& r : results) results_.emplace_back(r.tag, r.result);
    }
    cv_.notify_all();
  }
  // The results once `n` have come, sorted by tag.
  std::vector<std::pair<uint32_t, int>> wait_for(size_t n) {
    std::unique_lock lock(mu_);
    EXPECT_TRUE(cv_.wait_for(lock, std::chrono::seconds(10), [&] { return results_.size() >= n; }));
    auto out = results_;
    std::sort(out.begin(), out.end());
    return out;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::pair<uint32_t, int>> results_;
};

class BlockBackendTest : public ::testing::TestWithParam<BlockBackendKind> {
 protected:
  static constexpr unsigned kMaxInflight = 64;
  std::unique_ptr<BlockBackend> make(int fd, RecordingSink& sink) {
    switch (GetParam()) {
      case BlockBackendKind::kIoUring:
        try {
          return make_io_uring_backend(fd, kMaxInflight, sink);
        } catch (const std::system_error&) {
          return nullptr;
        }
      case BlockBackendKind::kThreadPool: return make_thread_pool_backend(fd, 3, sink);
      default: return make_thread_pool_backend(fd, 0, sink);
    }
  }
};

TEST_P(BlockBackendTest, OneBatchOfEveryKind) {
  constexpr uint64_t kBytes = 64 * 1024;
  TempImage img(kBytes, 0x21);
  const auto original = img.contents();
  UniqueFd fd(::open(img.path().c_str(), O_RDWR | O_CLOEXEC));
  ASSERT_TRUE(fd);
  RecordingSink sink;
  auto backend = make(fd.get(), sink);
  if (!backend) GTEST_SKIP() << "io_uring unavailable here";

  std::vector<std::vector<uint8_t>> bufs;
  std::vector<BlockRequest> reqs(9);
  auto buf = [&](size_t n, uint8_t fill) -> iovec {
    bufs.emplace_back(n, fill);
    return iovec{bufs.back().data(), n};
  };
  bufs.reserve(16);  // iovecs point into them
  using Op = BlockRequest::Op;
  reqs[0] = {Op::kRead, 4096, {buf(4096, 0)}, {}, 0};                     // one buffer
  reqs[1] = {Op::kRead, 512, {buf(100, 0), buf(0, 0), buf(924, 0)}, {}, 1};  // several, one empty
  const auto w = pattern(1024, 0x77);
  bufs.emplace_back(w);
  reqs[2] = {Op::kWrite, 8192, {iovec{bufs.back().data(), 1024}}, {}, 2};
  reqs[3] = {Op::kFlush, 0, {}, {}, 3};
  reqs[4] = {Op::kDiscard, 0, {}, {{16384, 4096}}, 4};
  reqs[5] = {Op::kWriteZeroes, 0, {}, {{20480, 512}, {24576, 1024}}, 5};
  reqs[6] = {Op::kRead, kBytes - 512, {buf(1024, 0)}, {}, 6};  // straddles the end
  reqs[7] = {Op::kRead, kBytes, {buf(512, 0)}, {}, 7};         // wholly past it
  reqs[8] = {Op::kRead, 0, {}, {}, 8};                         // nothing at all
  std::vector<BlockRequest*> batch;
  for (auto& r : reqs) batch.push_back(&r);
  backend->submit(batch);

  const auto results = sink.wait_for(reqs.size());
  ASSERT_EQ(results.size(), reqs.size());
  const int want[] = {0, 0, 0, 0, 0, 0, -EIO, -EIO, 0};
  for (uint32_t i = 0; i < reqs.size(); ++i) {
    EXPECT_EQ(results[i].first, i);
    EXPECT_EQ(results[i].second, want[i]) << i;
  }
  EXPECT_EQ(bufs[0], std::vector<uint8_t>(original.begin() + 4096, original.begin() + 8192));
  EXPECT_EQ(bufs[1], std::vector<uint8_t>(original.begin() + 512, original.begin() + 612));
  EXPECT_EQ(bufs[3], std::vector<uint8_t>(original.begin() + 612, original.begin() + 1536));
  backend.reset();  // nothing late arrives after it
  EXPECT_EQ(sink.wait_for(0).size(), reqs.size());
  const auto after = img.contents();
  EXPECT_EQ(std::vector<uint8_t>(after.begin() + 8192, after.begin() + 9216), w);
  for (uint64_t at : {16384u, 20480u, 24576u})
    EXPECT_EQ(after[at], 0) << at;
  EXPECT_EQ(after[20480 + 512], original[20480 + 512]);
}

// Batches one after another while earlier ones are still out: each result
// arrives once however the backend splits the reaping between the
// submitting thread and its own.
TEST_P(BlockBackendTest, ManyBatchesEachResultOnce) {
  TempImage img(256 * 1024, 0x33);
  UniqueFd fd(::open(img.path().c_str(), O_RDWR | O_CLOEXEC));
  ASSERT_TRUE(fd);
  RecordingSink sink;
  auto backend = make(fd.get(), sink);
  if (!backend) GTEST_SKIP() << "io_uring unavailable here";
  constexpr uint32_t kBatches = 50, kPerBatch = 40;
  std::vector<BlockRequest> reqs(kBatches * kPerBatch);
  std::vector<std::vector<uint8_t>> bufs(reqs.size(), std::vector<uint8_t>(512));
  for (uint32_t b = 0; b < kBatches; ++b) {
    std::vector<BlockRequest*> batch;
    for (uint32_t i = 0; i < kPerBatch; ++i) {
      const uint32_t t = b * kPerBatch + i;
      const bool write = t % 3 == 0;
      reqs[t] = {write ? BlockRequest::Op::kWrite : BlockRequest::Op::kRead, uint64_t{t % 500} * 512,
                 {iovec{bufs[t].data(), 512}}, {}, t};
      batch.push_back(&reqs[t]);
    }
    if (b >= 1) sink.wait_for(b * kPerBatch - (kMaxInflight - kPerBatch));
    backend->submit(batch);
  }
  const auto results = sink.wait_for(reqs.size());
  ASSERT_EQ(results.size(), reqs.size());
  for (uint32_t t = 0; t < reqs.size(); ++t) {
    EXPECT_EQ(results[t].first, t);
    EXPECT_EQ(results[t].second, 0) << t;
  }
}

INSTANTIATE_TEST_SUITE_P(Backends, BlockBackendTest,
                         ::testing::Values(BlockBackendKind::kIoUring, BlockBackendKind::kThreadPool,
                                           BlockBackendKind::kInline),
                         [](const auto& info) { return backend_label(info.param); });

TEST(BlkDeviceConfig, ConstructorErrorsHaveContext) {
  GuestMemory mem = GuestMemory::create({{GuestAddress(0), kMiB}});
  BlockConfig cfg;
  cfg.path = "/nonexistent/skiff.img";
  try {
    BlockDevice d(mem, cfg);
    FAIL() << "no throw";
  } catch (const std::system_error& e) {
    EXPECT_EQ(e.code().value(), ENOENT);
    EXPECT_NE(std::string(e.what()).find("open disk /nonexistent/skiff.img"), std::string::npos) << e.what();
  }
  TempImage img(4096);
  cfg.path = img.path();
  cfg.queue_size = 100;
  EXPECT_THROW(BlockDevice(mem, cfg), std::invalid_argument);
  cfg.queue_size = 256;
  cfg.queues = 0;
  EXPECT_THROW(BlockDevice(mem, cfg), std::invalid_argument);
  cfg.queues = 1;
  cfg.path = "/dev/null";  // a character device
  EXPECT_THROW(BlockDevice(mem, cfg), std::invalid_argument);
}

TEST(BlkDeviceConfig, AutoBackendAlwaysWorks) {
  GuestMemory mem = GuestMemory::create({{GuestAddress(0), kMiB}});
  TempImage img(4096 + 100);  // a partial last sector is not exposed
  BlockConfig cfg;
  cfg.path = img.path();
  BlockDevice d(mem, cfg);
  EXPECT_EQ(d.capacity_sectors(), 8u);
  EXPECT_TRUE(std::string(d.backend_name()) == "io_uring" || std::string(d.backend_name()) == "thread-pool");
}

}  // namespace
}  // namespace skiff::virtio
