// The virtio-fs device model, driven by the simulated guest driver, with a
// scripted FUSE server behind it: request/reply plumbing, the hiprio queue,
// the worker pool, malformed chains and reset with requests in flight.
#include "virtio/fs/fs_device.h"

#include <gtest/gtest.h>
#include <linux/fuse.h>
#include <rapidcheck/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <functional>
#include <mutex>
#include <thread>

#include "virtio/testing/driver_queue.h"

namespace skiff::virtio {
namespace {

using testing::DriverQueue;

class CountingIrq : public DeviceInterrupt {
 public:
  void used_buffers() override { ++count; }
  void config_changed() override {}
  std::atomic<int> count{0};
};

// Answers every request with its unique id and the bytes after the header
// reversed; FORGET gets no reply. `gate` can hold requests of a given opcode.
class ScriptedServer : public FuseHandler {
 public:
  uint32_t handle(ChainReader& in, ChainWriter& out) override {
    fuse_in_header h;
    if (!in.read_obj(h)) return 0;
    ++seen;
    if (h.opcode == hold_opcode) {
      std::unique_lock lock(mu);
      ++held;
      cv.notify_all();
      cv.wait(lock, [&] { return released; });
    }
    if (h.opcode == FUSE_FORGET) return 0;
    std::vector<uint8_t> body(in.remaining());
    in.read(body.data(), body.size());
    std::reverse(body.begin(), body.end());
    fuse_out_header o{};
    o.len = static_cast<uint32_t>(sizeof(o) + body.size());
    o.unique = h.unique;
    if (o.len > out.remaining()) {
      o.len = sizeof(o);
      o.error = -ERANGE;
      body.clear();
    }
    if (!out.write_obj(o)) return lie_about_length ? o.len : 0;
    out.write(body.data(), body.size());
    return o.len;
  }
  void release() {
    std::lock_guard lock(mu);
    released = true;
    cv.notify_all();
  }
  bool wait_held(int n) {
    std::unique_lock lock(mu);
    return cv.wait_for(lock, std::chrono::seconds(5), [&] { return held >= n; });
  }
  std::atomic<int> seen{0};
  uint32_t hold_opcode = UINT32_MAX;  // none
  bool lie_about_length = false;  // a buggy server: claims a reply it could not write
  std::mutex mu;
  std::condition_variable cv;
  int held = 0;
  bool released = false;
};

std::vector<uint8_t> request(uint32_t opcode, uint64_t unique, const std::string& payload) {
  fuse_in_header h{};
  h.len = static_cast<uint32_t>(sizeof(h) + payload.size());
  h.opcode = opcode;
  h.unique = unique;
  std::vector<uint8_t> raw(sizeof(h) + payload.size());
  std::memcpy(raw.data(), &h, sizeof(h));
  if (!payload.empty()) std::memcpy(raw.data() + sizeof(h), payload.data(), payload.size());
  return raw;
}

struct Rig {
  explicit Rig(unsigned workers = 2, unsigned request_queues = 2)
      : mem(GuestMemory::create({{GuestAddress(0), 4 << 20}})),
        server(std::make_shared<ScriptedServer>()),
        irq(std::make_shared<CountingIrq>()),
        dev(mem, FsConfig{"myfs", request_queues, 64, workers, nullptr}, server) {
    std::vector<std::unique_ptr<Virtqueue>> q;
    for (unsigned i = 0; i < 1 + request_queues; ++i) {
      drivers.push_back(std::make_unique<DriverQueue>(mem, cfg(i), GuestAddress(0x100000 + i * 0x80000), 0x80000));
      q.push_back(std::make_unique<Virtqueue>(mem, cfg(i)));
    }
    activated = dev.activate(bit(kFeatureVersion1) | bit(kFeatureEventIdx), std::move(q), irq);
  }
  // A failed assertion must not leave a held request for ~FsDevice to wait on.
  ~Rig() { server->release(); }
  static QueueConfig cfg(unsigned i) {
    const uint64_t base = 0x10000ull * i;
    return QueueConfig{64, GuestAddress(base), GuestAddress(base + 0x1000), GuestAddress(base + 0x2000), true};
  }
  // Waits for the next used element of queue `q`.
  std::optional<UsedElem> wait_used(size_t q) {
    for (int i = 0; i < 2500; ++i) {
      if (auto u = drivers[q]->next_used()) return u;
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    return std::nullopt;
  }
  GuestMemory mem;
  std::shared_ptr<ScriptedServer> server;
  std::shared_ptr<CountingIrq> irq;
  std::vector<std::unique_ptr<DriverQueue>> drivers;
  FsDevice dev;
  bool activated = false;
};

TEST(FsDevice, ConfigSpaceCarriesTagAndQueueCount) {
  Rig r(1, 3);
  EXPECT_EQ(r.dev.device_type(), 26u);
  EXPECT_EQ(r.dev.queue_count(), 4u);
  EXPECT_TRUE(r.dev.device_features() & bit(kFeatureVersion1));
  uint8_t cfg[44];
  r.dev.read_config(0, cfg);
  EXPECT_EQ(std::string(reinterpret_cast<char*>(cfg)), "myfs");
  EXPECT_EQ(cfg[4], 0);
  uint32_t n;
  std::memcpy(&n, cfg + 36, 4);
  EXPECT_EQ(n, 3u);
  EXPECT_EQ(cfg[40], 0);  // past the end
  uint8_t tail[2];
  r.dev.read_config(36, tail);
  EXPECT_EQ(tail[0], 3);
}

// Kicks come straight from the queue's ioeventfd, active or not.
TEST(FsDevice, KicksAfterResetDoNothing) {
  Rig r;
  ASSERT_TRUE(r.activated);
  r.dev.reset();
  r.drivers[1]->add_chain({std::vector<uint8_t>(40, 0)}, {64});
  r.dev.queue_notify(1);
  r.dev.queue_notify(0);
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_FALSE(r.drivers[1]->next_used());
  EXPECT_EQ(r.irq->count.load(), 0);
}

TEST(FsDevice, RejectsBadConfiguration) {
  auto mem = GuestMemory::create({{GuestAddress(0), 1 << 20}});
  auto s = std::make_shared<ScriptedServer>();
  EXPECT_THROW(FsDevice(mem, FsConfig{"", 1, 64, 1, nullptr}, s), std::invalid_argument);
  EXPECT_THROW(FsDevice(mem, FsConfig{std::string(37, 't'), 1, 64, 1, nullptr}, s), std::invalid_argument);
  EXPECT_THROW(FsDevice(mem, FsConfig{"t", 0, 64, 1, nullptr}, s), std::invalid_argument);
  EXPECT_THROW(FsDevice(mem, FsConfig{"t", 1, 64, 0, nullptr}, s), std::invalid_argument);
  EXPECT_NO_THROW(FsDevice(mem, FsConfig{std::string(36, 't'), 1, 64, 1, nullptr}, s));
}

TEST(FsDevice, RequestAndReplyAcrossScatteredBuffers) {
  Rig r;
  ASSERT_TRUE(r.activated);
  auto raw = request(FUSE_GETATTR, 77, "abcdef");
  // The request split over three readable buffers, the reply over two writable ones.
  std::vector<std::vector<uint8_t>> parts{{raw.begin(), raw.begin() + 10},
                                          {raw.begin() + 10, raw.begin() + 41},
                                          {raw.begin() + 41, raw.end()}};
  auto chain = r.drivers[1]->add_chain(parts, {5, 100});
  r.dev.queue_notify(1);
  auto used = r.wait_used(1);
  ASSERT_TRUE(used);
  EXPECT_EQ(used->id, chain.head);
  ASSERT_EQ(used->len, sizeof(fuse_out_header) + 6);
  auto a = r.drivers[1]->read_bytes(chain.writable[0], 5);
  auto b = r.drivers[1]->read_bytes(chain.writable[1], used->len - 5);
  a.insert(a.end(), b.begin(), b.end());
  fuse_out_header o;
  std::memcpy(&o, a.data(), sizeof(o));
  EXPECT_EQ(o.unique, 77u);
  EXPECT_EQ(o.len, used->len);
  EXPECT_EQ(std::string(a.begin() + sizeof(o), a.end()), "fedcba");
  EXPECT_GE(r.irq->count.load(), 1);
}

TEST(FsDevice, HiprioForgetTakesNoReply) {
  Rig r;
  auto chain = r.drivers[0]->add_chain({request(FUSE_FORGET, 5, std::string(8, '\0'))}, {});
  r.dev.queue_notify(0);
  auto used = r.wait_used(0);
  ASSERT_TRUE(used);
  EXPECT_EQ(used->id, chain.head);
  EXPECT_EQ(used->len, 0u);
}

TEST(FsDevice, MalformedChainIsCompletedEmptyAndTheDeviceGoesOn) {
  Rig r;
  // A descriptor pointing past guest RAM.
  const uint16_t head = 63;  // add_chain() allocates from 0 up
  r.drivers[1]->raw_desc(head, RawDescriptor{0xfffff000ull << 12, 64, 0, 0});
  r.drivers[1]->push_avail(head);
  r.dev.queue_notify(1);
  auto used = r.wait_used(1);
  ASSERT_TRUE(used);
  EXPECT_EQ(used->id, head);
  EXPECT_EQ(used->len, 0u);
  EXPECT_EQ(r.dev.bad_requests(), 1u);
  EXPECT_EQ(r.server->seen.load(), 0);
  r.drivers[1]->add_chain({request(FUSE_STATFS, 1, "")}, {64});
  r.dev.queue_notify(1);
  used = r.wait_used(1);
  ASSERT_TRUE(used);
  EXPECT_EQ(used->len, sizeof(fuse_out_header));
}

TEST(FsDevice, ASlowRequestDoesNotHoldUpTheQueue) {
  Rig r(2);
  r.server->hold_opcode = FUSE_FSYNC;
  auto slow = r.drivers[1]->add_chain({request(FUSE_FSYNC, 1, "")}, {64});
  r.dev.queue_notify(1);
  ASSERT_TRUE(r.server->wait_held(1));
  auto fast = r.drivers[1]->add_chain({request(FUSE_GETATTR, 2, "x")}, {64});
  r.dev.queue_notify(1);
  auto used = r.wait_used(1);
  ASSERT_TRUE(used);
  EXPECT_EQ(used->id, fast.head);  // completed while FSYNC is still running
  r.server->release();
  used = r.wait_used(1);
  ASSERT_TRUE(used);
  EXPECT_EQ(used->id, slow.head);
}

TEST(FsDevice, ResetWaitsForRequestsInFlightAndDropsTheirCompletion) {
  Rig r(2);
  r.server->hold_opcode = FUSE_READ;
  r.drivers[1]->add_chain({request(FUSE_READ, 1, "")}, {64});
  r.dev.queue_notify(1);
  ASSERT_TRUE(r.server->wait_held(1));
  std::atomic<bool> reset_done{false};
  std::thread resetter([&] {
    r.dev.reset();
    reset_done = true;
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_FALSE(reset_done.load());  // waits for the request
  r.server->release();
  resetter.join();
  EXPECT_TRUE(reset_done.load());
  EXPECT_FALSE(r.drivers[1]->next_used());  // the ring belonged to the old driver
  r.dev.queue_notify(1);                   // after reset: ignored, no crash
}

// Whatever chains the guest posts (sizes, splits, bad descriptors), each is
// completed exactly once, never with more bytes than it could hold.
RC_GTEST_PROP(FsDeviceProperty, EveryChainCompletesOnceWithinItsBuffers, ()) {
  Rig r(3, 1);
  r.server->lie_about_length = *rc::gen::arbitrary<bool>();
  // At most 20 chains: add_chain() takes descriptors 0..39, the raw ones 63 down.
  const auto n = *rc::gen::inRange(1, 21);
  uint16_t next_raw = 63;
  std::map<uint16_t, uint64_t> writable_of;
  for (int i = 0; i < n; ++i) {
    const auto payload = *rc::gen::container<std::string>(*rc::gen::inRange(0, 300), rc::gen::character<char>());
    const auto out_len = *rc::gen::inRange<uint32_t>(0, 400);
    if (*rc::gen::inRange(0, 8) == 0) {
      const uint16_t head = next_raw--;
      r.drivers[1]->raw_desc(head, RawDescriptor{*rc::gen::arbitrary<uint64_t>(), *rc::gen::arbitrary<uint32_t>(),
                                                 static_cast<uint16_t>(*rc::gen::inRange(0, 8)), 0});
      r.drivers[1]->push_avail(head);
      writable_of[head] = UINT64_MAX;  // any outcome but a crash, once
    } else {
      auto c = r.drivers[1]->add_chain({request(FUSE_GETATTR, static_cast<uint64_t>(i), payload)},
                                       out_len ? std::vector<uint32_t>{out_len} : std::vector<uint32_t>{});
      writable_of[c.head] = out_len;
    }
    if (*rc::gen::inRange(0, 3) == 0) r.dev.queue_notify(1);
  }
  r.dev.queue_notify(1);
  std::map<uint16_t, int> completions;
  for (size_t got = 0; got < writable_of.size();) {
    auto u = r.wait_used(1);
    RC_ASSERT(u.has_value());
    ++got;
    const auto it = writable_of.find(static_cast<uint16_t>(u->id));
    RC_ASSERT(it != writable_of.end());
    RC_ASSERT(++completions[static_cast<uint16_t>(u->id)] == 1);
    if (it->second != UINT64_MAX) RC_ASSERT(u->len <= it->second);
  }
}

}  // namespace
}  // namespace skiff::virtio
