// QueueSet: what every device does with its queues, driven by the guest
// driver simulator.
#include "virtio/virtqueue.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "virtio/device.h"
#include "virtio/testing/driver_queue.h"

namespace skiff::virtio {
namespace {

using testing::DriverQueue;

constexpr uint64_t kRam = 1 << 20;

// Counts interrupts, and checks that none is raised while a queue lock is
// held: the set's own queue 0 lock is taken from inside the interrupt.
class LockCheckingInterrupt : public DeviceInterrupt {
 public:
  explicit LockCheckingInterrupt(QueueSet& set) : set_(set) {}
  void used_buffers() override {
    ++count;
    // Would deadlock (and the test time out) if raised under queue 0's lock.
    set_.needs_notification(0);
  }
  void config_changed() override {}
  std::atomic<int> count{0};

 private:
  QueueSet& set_;
};

QueueConfig config_at(uint64_t base, uint16_t size) {
  return QueueConfig{size, GuestAddress(base), GuestAddress(base + 0x1000), GuestAddress(base + 0x2000), false};
}

class QueueSetTest : public ::testing::Test {
 protected:
  GuestMemory mem = GuestMemory::create({{GuestAddress(0), kRam}});
  DriverQueue d0{mem, config_at(0, 8), GuestAddress(0x10000), 0x10000};
  DriverQueue d1{mem, config_at(0x4000, 8), GuestAddress(0x20000), 0x10000};
  QueueSet set;
  std::shared_ptr<LockCheckingInterrupt> irq = std::make_shared<LockCheckingInterrupt>(set);

  std::vector<std::unique_ptr<Virtqueue>> queues(bool second = true) {
    std::vector<std::unique_ptr<Virtqueue>> v;
    v.push_back(std::make_unique<Virtqueue>(mem, d0.config()));
    v.push_back(second ? std::make_unique<Virtqueue>(mem, d1.config()) : nullptr);
    return v;
  }
};

TEST_F(QueueSetTest, RefusesWhatADeviceMustNotRunWith) {
  EXPECT_FALSE(set.activate(3, 0, queues(), irq)) << "wrong count";
  EXPECT_FALSE(set.activate(2, 0, queues(), nullptr)) << "no interrupt";
  EXPECT_FALSE(set.activate(2, 0b10, queues(false), irq)) << "a required queue left disabled";
  auto bad = queues();
  bad[1] = std::make_unique<Virtqueue>(mem, QueueConfig{3, GuestAddress(0), GuestAddress(0), GuestAddress(0), false});
  EXPECT_FALSE(set.activate(2, 0, std::move(bad), irq)) << "an invalid queue";
  EXPECT_FALSE(set.active());
  EXPECT_FALSE(set.pop(0));

  ASSERT_TRUE(set.activate(2, 0b01, queues(false), irq)) << "an optional queue may be disabled";
  EXPECT_TRUE(set.enabled(0));
  EXPECT_FALSE(set.enabled(1));
  EXPECT_FALSE(set.enabled(2));
  d1.add_chain({{1}}, {});
  EXPECT_FALSE(set.pop(1));
  set.add_used(1, 0, 0);  // a disabled queue: nothing happens
  set.reset();
  EXPECT_FALSE(set.active());
}

TEST_F(QueueSetTest, CompletesThroughTheUsedRingAndInterruptsOutsideTheLock) {
  ASSERT_TRUE(set.activate(2, 0b11, queues(), irq));
  const auto sent = d0.add_chain({{1, 2, 3}}, {4});
  auto chain = set.pop(0);
  ASSERT_TRUE(chain && chain->ok());
  EXPECT_EQ(chain->head, sent.head);
  ChainReader r(set.memory(), *chain);
  uint8_t got[3];
  ASSERT_TRUE(r.read(got, 3));
  EXPECT_EQ(got[2], 3);
  set.complete(0, chain->head, 4);
  EXPECT_EQ(irq->count, 1);
  auto used = d0.next_used();
  ASSERT_TRUE(used);
  EXPECT_EQ(used->id, sent.head);
  EXPECT_EQ(used->len, 4u);

  // A batch on queue 1: one question, one interrupt.
  d1.add_chain({{9}}, {});
  d1.add_chain({{8}}, {});
  auto a = set.pop(1), b = set.pop(1);
  ASSERT_TRUE(a && b);
  EXPECT_FALSE(set.pop(1));
  const bool want = set.update(1, [&](Virtqueue& vq) {
    vq.add_used(a->head, 0);
    vq.add_used(b->head, 0);
  });
  EXPECT_TRUE(want);
  EXPECT_FALSE(set.needs_notification(1)) << "nothing new since";
  set.notify();
  EXPECT_EQ(irq->count, 2);
  EXPECT_TRUE(d1.next_used() && d1.next_used());

  // The driver asks for no interrupts: complete() adds the element, raises none.
  d0.set_avail_flags(kAvailFNoInterrupt);
  d0.add_chain({{7}}, {});
  auto c = set.pop(0);
  ASSERT_TRUE(c);
  set.complete(0, c->head, 0);
  EXPECT_EQ(irq->count, 2);
  EXPECT_TRUE(d0.next_used());
}

TEST_F(QueueSetTest, QueuesCompleteFromSeveralThreadsAtOnce) {
  ASSERT_TRUE(set.activate(2, 0b11, queues(), irq));
  constexpr int kRounds = 2000;
  auto run = [&](size_t q, DriverQueue& d) {
    for (int i = 0; i < kRounds; ++i) {
      d.add_chain({{static_cast<uint8_t>(i)}}, {});
      auto chain = set.pop(q);
      ASSERT_TRUE(chain);
      set.complete(q, chain->head, 0);
      ASSERT_TRUE(d.next_used());
    }
  };
  std::thread t([&] { run(1, d1); });
  run(0, d0);
  t.join();
  EXPECT_EQ(irq->count, 2 * kRounds);
}

TEST(ConfigWindow, ReadsTheSpaceAndZeroPastItsEnd) {
  const uint8_t space[4] = {1, 2, 3, 4};
  uint8_t out[4];
  read_config_window(space, 2, out);
  EXPECT_EQ(std::vector<uint8_t>(out, out + 4), (std::vector<uint8_t>{3, 4, 0, 0}));
  read_config_window(space, ~uint64_t{0}, out);  // no overflow past the end of the address space
  EXPECT_EQ(std::vector<uint8_t>(out, out + 4), (std::vector<uint8_t>{0, 0, 0, 0}));
}

}  // namespace
}  // namespace skiff::virtio
