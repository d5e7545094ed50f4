#include "virtio/virtqueue.h"

#include <numeric>

#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include "virtio/testing/driver_queue.h"

namespace skiff::virtio {
namespace {

using testing::DriverQueue;

constexpr uint64_t kMiB = 1 << 20;
constexpr GuestAddress kDesc{0x0}, kAvail{0x8000}, kUsed{0xa000}, kBuffers{0x10000};
constexpr uint64_t kRam = kMiB;

QueueConfig config(uint16_t size, bool event_idx = false) { return QueueConfig{size, kDesc, kAvail, kUsed, event_idx}; }

std::vector<uint8_t> pattern(size_t n, uint8_t seed) {
  std::vector<uint8_t> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = static_cast<uint8_t>(seed + i * 7);
  return v;
}

class VirtqueueTest : public ::testing::Test {
 protected:
  GuestMemory mem = GuestMemory::create({{GuestAddress(0), kRam}});
  DriverQueue driver{mem, config(16), kBuffers, kRam - kBuffers.value()};
  Virtqueue queue{mem, config(16)};

  // Pops one chain that must be malformed; the device completes it.
  std::string pop_error() {
    auto c = queue.pop();
    if (!c) return "<nothing popped>";
    EXPECT_TRUE(c->descriptors.empty());
    EXPECT_FALSE(queue.broken());
    queue.add_used(c->head, 0);
    return c->error;
  }
};

TEST_F(VirtqueueTest, EmptyRingPopsNothing) {
  EXPECT_TRUE(queue.valid());
  EXPECT_FALSE(queue.pop());
  EXPECT_FALSE(queue.broken());
}

TEST_F(VirtqueueTest, ChainsOfOneToNDescriptorsRoundTrip) {
  for (size_t readable = 0; readable <= 8; ++readable) {
    for (size_t writable = (readable == 0 ? 1 : 0); writable + readable <= 16 && writable <= 8; ++writable) {
      std::vector<std::vector<uint8_t>> in;
      std::vector<uint8_t> all_in;
      for (size_t i = 0; i < readable; ++i) {
        in.push_back(pattern(1 + i * 13, static_cast<uint8_t>(i)));
        all_in.insert(all_in.end(), in.back().begin(), in.back().end());
      }
      std::vector<uint32_t> lens;
      uint32_t wtotal = 0;
      for (size_t i = 0; i < writable; ++i) lens.push_back(static_cast<uint32_t>(3 + i * 5)), wtotal += lens.back();
      const auto sent = driver.add_chain(in, lens);

      auto chain = queue.pop();
      ASSERT_TRUE(chain);
      ASSERT_TRUE(chain->ok()) << chain->error;
      EXPECT_EQ(chain->head, sent.head);
      EXPECT_EQ(chain->descriptors.size(), readable + writable);
      EXPECT_EQ(chain->readable_bytes(), all_in.size());
      EXPECT_EQ(chain->writable_bytes(), wtotal);

      std::vector<uint8_t> got(all_in.size() + 10);
      EXPECT_EQ(ChainReader(mem, *chain).read_some(got), all_in.size());
      got.resize(all_in.size());
      EXPECT_EQ(got, all_in);

      const auto out = pattern(wtotal + 5, 0x40);
      EXPECT_EQ(ChainWriter(mem, *chain).write_some(out), wtotal);
      size_t off = 0;
      for (size_t i = 0; i < writable; ++i) {
        EXPECT_EQ(driver.read_bytes(sent.writable[i], lens[i]),
                  std::vector<uint8_t>(out.begin() + off, out.begin() + off + lens[i]));
        off += lens[i];
      }
      queue.add_used(chain->head, wtotal);
      auto used = driver.next_used();
      ASSERT_TRUE(used);
      EXPECT_EQ(used->id, sent.head);
      EXPECT_EQ(used->len, wtotal);
      EXPECT_FALSE(driver.next_used());
      EXPECT_FALSE(queue.pop());
    }
  }
}

TEST_F(VirtqueueTest, ReadAndWriteAtOffsetsAcrossDescriptors) {
  driver.add_chain({pattern(5, 1), pattern(7, 2)}, {4, 4});
  auto chain = queue.pop();
  ASSERT_TRUE(chain && chain->ok());
  std::vector<uint8_t> got(6);
  ChainReader r(mem, *chain);
  EXPECT_TRUE(r.skip(3));
  EXPECT_EQ(r.read_some(got), 6u);
  auto a = pattern(5, 1), b = pattern(7, 2);
  EXPECT_EQ(got, (std::vector<uint8_t>{a[3], a[4], b[0], b[1], b[2], b[3]}));
  EXPECT_EQ(r.remaining(), 3u);
  EXPECT_FALSE(r.read(got.data(), 4));  // an exact read that doesn't fit consumes nothing
  EXPECT_EQ(r.skip_some(5), 3u);
  EXPECT_EQ(r.read_some(got), 0u);
  EXPECT_EQ(r.consumed(), 12u);
  ChainWriter w(mem, *chain);
  EXPECT_EQ(w.remaining(), 8u);
  EXPECT_TRUE(w.skip(6));
  const std::vector<uint8_t> bytes{1, 2, 3};
  EXPECT_FALSE(w.write(bytes.data(), bytes.size()));
  EXPECT_EQ(w.write_some(bytes), 2u);  // only 2 bytes left after offset 6
  const auto iov = ChainWriter(mem, *chain).iovecs(6);  // 4 + 2, across the two writable descriptors
  ASSERT_EQ(iov.size(), 2u);
  EXPECT_EQ(iov[0].iov_len, 4u);
  EXPECT_EQ(iov[1].iov_len, 2u);
}

TEST_F(VirtqueueTest, IndirectTableIsFlattened) {
  const auto sent = driver.add_chain({pattern(9, 3), pattern(4, 4)}, {8, 2, 1}, /*indirect=*/true);
  auto chain = queue.pop();
  ASSERT_TRUE(chain);
  ASSERT_TRUE(chain->ok()) << chain->error;
  EXPECT_EQ(chain->head, sent.head);
  ASSERT_EQ(chain->descriptors.size(), 5u);
  EXPECT_FALSE(chain->descriptors[1].write);
  EXPECT_TRUE(chain->descriptors[2].write);
  std::vector<uint8_t> got(13);
  EXPECT_EQ(ChainReader(mem, *chain).read_some(got), 13u);
  const std::vector<uint8_t> w(11, 0x5a);
  EXPECT_EQ(ChainWriter(mem, *chain).write_some(w), 11u);
  EXPECT_EQ(driver.read_bytes(sent.writable[2], 1), std::vector<uint8_t>{0x5a});
}

TEST_F(VirtqueueTest, RejectsDescriptorLoop) {
  driver.raw_desc(0, {kBuffers.value(), 8, kDescFNext, 1});
  driver.raw_desc(1, {kBuffers.value(), 8, kDescFNext, 0});
  driver.push_avail(0);
  EXPECT_NE(pop_error(), "");
}

TEST_F(VirtqueueTest, RejectsSelfLoop) {
  driver.raw_desc(3, {kBuffers.value(), 8, kDescFNext | kDescFWrite, 3});
  driver.push_avail(3);
  EXPECT_NE(pop_error(), "");
}

TEST_F(VirtqueueTest, RejectsIndicesOutOfRange) {
  driver.push_avail(16);  // head >= size
  EXPECT_EQ(pop_error(), "head descriptor index out of range");
  driver.raw_desc(0, {kBuffers.value(), 8, kDescFNext, 16});
  driver.push_avail(0);
  EXPECT_EQ(pop_error(), "next descriptor index out of range");
  // The queue keeps working.
  const auto sent = driver.add_chain({pattern(4, 0)}, {});
  auto chain = queue.pop();
  ASSERT_TRUE(chain && chain->ok());
  EXPECT_EQ(chain->head, sent.head);
}

TEST_F(VirtqueueTest, RejectsBuffersOutsideGuestMemory) {
  for (auto [addr, len] : std::vector<std::pair<uint64_t, uint32_t>>{
           {kRam, 1}, {kRam - 8, 16}, {~0ull - 4, 16}, {0x1000, 0xffffffffu}, {1ull << 40, 0}}) {
    driver.raw_desc(0, {addr, len, 0, 0});
    driver.push_avail(0);
    EXPECT_EQ(pop_error(), "buffer outside guest memory") << addr << "+" << len;
  }
}

TEST(Virtqueue, RejectsChainLongerThanFourGiB) {
  // Sparse: a 3 GiB region that is never touched.
  auto mem = GuestMemory::create({{GuestAddress(0), kMiB}, {GuestAddress(1ull << 32), 3ull << 30}});
  DriverQueue driver(mem, config(16), kBuffers, kMiB - kBuffers.value());
  Virtqueue queue(mem, config(16));
  driver.raw_desc(0, {1ull << 32, 0x80000000u, kDescFNext, 1});
  driver.raw_desc(1, {1ull << 32, 0x7fffffffu, kDescFNext, 2});
  driver.raw_desc(2, {1ull << 32, 1, 0, 0});
  driver.push_avail(0);
  auto chain = queue.pop();
  ASSERT_TRUE(chain);
  EXPECT_EQ(chain->error, "chain length exceeds 2^32-1 bytes");
  // Exactly 2^32-1 is fine.
  driver.raw_desc(2, {1ull << 32, 0, 0, 0});
  driver.push_avail(0);
  chain = queue.pop();
  ASSERT_TRUE(chain);
  EXPECT_TRUE(chain->ok()) << chain->error;
}

TEST_F(VirtqueueTest, RejectsNestedIndirect) {
  const GuestAddress table = driver.alloc(32, 16), inner = driver.alloc(16, 16);
  driver.raw_desc_at(inner, {kBuffers.value(), 4, 0, 0});
  driver.raw_desc_at(table, {kBuffers.value(), 4, kDescFNext, 1});
  driver.raw_desc_at(table.unchecked_add(16), {inner.value(), 16, kDescFIndirect, 0});
  driver.raw_desc(0, {table.value(), 32, kDescFIndirect, 0});
  driver.push_avail(0);
  EXPECT_EQ(pop_error(), "nested indirect descriptor");
}

TEST_F(VirtqueueTest, RejectsBadIndirectTables) {
  const GuestAddress table = driver.alloc(64, 16);
  for (uint32_t len : {0u, 8u, 17u, 40u}) {
    driver.raw_desc(0, {table.value(), len, kDescFIndirect, 0});
    driver.push_avail(0);
    EXPECT_EQ(pop_error(), "indirect table length not a non-zero multiple of 16") << len;
  }
  driver.raw_desc(0, {kRam - 16, 32, kDescFIndirect, 0});
  driver.push_avail(0);
  EXPECT_EQ(pop_error(), "indirect table outside guest memory");
  driver.raw_desc(0, {table.value(), 16, kDescFIndirect | kDescFNext, 1});
  driver.push_avail(0);
  EXPECT_EQ(pop_error(), "indirect descriptor with NEXT flag");
  // A loop inside the table, and a next index past its end.
  driver.raw_desc_at(table, {kBuffers.value(), 4, kDescFNext, 1});
  driver.raw_desc_at(table.unchecked_add(16), {kBuffers.value(), 4, kDescFNext, 0});
  driver.raw_desc(0, {table.value(), 32, kDescFIndirect, 0});
  driver.push_avail(0);
  EXPECT_NE(pop_error(), "");
  driver.raw_desc_at(table.unchecked_add(16), {kBuffers.value(), 4, kDescFNext, 2});
  driver.push_avail(0);
  EXPECT_EQ(pop_error(), "next descriptor index out of range");
}

TEST_F(VirtqueueTest, RejectsIndirectChainLongerThanQueue) {
  std::vector<std::vector<uint8_t>> in(17, std::vector<uint8_t>{1});
  driver.add_chain(in, {}, /*indirect=*/true);
  EXPECT_EQ(pop_error(), "descriptor chain longer than the queue size");
  in.pop_back();
  driver.add_chain(in, {}, /*indirect=*/true);
  auto chain = queue.pop();
  ASSERT_TRUE(chain && chain->ok()) << chain->error;
  EXPECT_EQ(chain->descriptors.size(), 16u);
}

TEST_F(VirtqueueTest, RejectsReadableAfterWritable) {
  driver.raw_desc(0, {kBuffers.value(), 4, kDescFWrite | kDescFNext, 1});
  driver.raw_desc(1, {kBuffers.value(), 4, 0, 0});
  driver.push_avail(0);
  EXPECT_EQ(pop_error(), "readable descriptor after a writable one");
}

TEST_F(VirtqueueTest, AvailIdxJumpBreaksQueue) {
  driver.add_chain({pattern(4, 0)}, {});
  driver.set_avail_idx(17);  // 17 > size ahead of last_avail_idx 0
  EXPECT_FALSE(queue.pop());
  EXPECT_TRUE(queue.broken());
  driver.set_avail_idx(1);
  EXPECT_FALSE(queue.pop());  // broken for good
  queue.add_used(0, 0);
  EXPECT_FALSE(driver.next_used());
}

TEST_F(VirtqueueTest, AvailIdxExactlySizeAheadIsFine) {
  for (int i = 0; i < 16; ++i) driver.add_chain({pattern(4, 0)}, {});
  for (int i = 0; i < 16; ++i) {
    auto c = queue.pop();
    ASSERT_TRUE(c && c->ok());
  }
  EXPECT_FALSE(queue.pop());
  EXPECT_FALSE(queue.broken());
}

TEST(Virtqueue, RejectsBadConfiguration) {
  auto mem = GuestMemory::create({{GuestAddress(0), kMiB}});
  EXPECT_TRUE(Virtqueue(mem, config(16)).valid());
  EXPECT_TRUE(Virtqueue(mem, QueueConfig{32768, GuestAddress(0), GuestAddress(0x80000), GuestAddress(0x90000), true}).valid());
  for (uint16_t size : {0, 3, 48, 65535}) EXPECT_FALSE(Virtqueue(mem, config(size)).valid()) << size;
  EXPECT_FALSE(Virtqueue(mem, QueueConfig{16, GuestAddress(8), kAvail, kUsed, false}).valid());
  EXPECT_FALSE(Virtqueue(mem, QueueConfig{16, kDesc, GuestAddress(0x8001), kUsed, false}).valid());
  EXPECT_FALSE(Virtqueue(mem, QueueConfig{16, kDesc, kAvail, GuestAddress(0xa002), false}).valid());
  EXPECT_FALSE(Virtqueue(mem, QueueConfig{16, GuestAddress(kMiB - 128), kAvail, kUsed, false}).valid());
  EXPECT_FALSE(Virtqueue(mem, QueueConfig{16, kDesc, GuestAddress(kMiB - 36), kUsed, false}).valid());
  EXPECT_FALSE(Virtqueue(mem, QueueConfig{16, kDesc, kAvail, GuestAddress(kMiB - 132), false}).valid());
  Virtqueue bad(mem, config(3));
  EXPECT_TRUE(bad.broken());
  EXPECT_FALSE(bad.pop());
  bad.add_used(0, 0);
  EXPECT_FALSE(bad.needs_notification());
}

TEST(Virtqueue, EventIdxSuppressesNotifications) {
  auto mem = GuestMemory::create({{GuestAddress(0), kMiB}});
  DriverQueue driver(mem, config(16, true), kBuffers, kMiB - kBuffers.value());
  Virtqueue queue(mem, config(16, true));
  for (int i = 0; i < 4; ++i) driver.add_chain({pattern(4, 0)}, {});
  for (int i = 0; i < 4; ++i) {
    auto c = queue.pop();
    ASSERT_TRUE(c && c->ok());
    EXPECT_EQ(driver.avail_event(), i + 1);  // avail_event tracks last_avail_idx
    queue.add_used(c->head, 0);
    if (i == 0) {
      EXPECT_TRUE(queue.needs_notification());  // first notification always goes out
      EXPECT_FALSE(queue.needs_notification());  // nothing new since
      driver.set_used_event(2);                 // "interrupt me when used idx passes 2"
    } else {
      // used idx 2: old=1 new=2, event 2 -> not yet; used idx 3: crosses 2 -> yes.
      EXPECT_EQ(queue.needs_notification(), i == 2) << i;
    }
  }
  queue.set_avail_event(0x1234);
  EXPECT_EQ(driver.avail_event(), 0x1234);
}

TEST_F(VirtqueueTest, NoInterruptFlagSuppressesNotifications) {
  driver.set_avail_flags(kAvailFNoInterrupt);
  driver.add_chain({pattern(4, 0)}, {});
  auto c = queue.pop();
  queue.add_used(c->head, 0);
  EXPECT_FALSE(queue.needs_notification());
  driver.set_avail_flags(0);
  EXPECT_TRUE(queue.needs_notification());
  EXPECT_FALSE(queue.needs_notification());  // nothing new
}

TEST(Virtqueue, RingIndicesWrapPast65535) {
  auto mem = GuestMemory::create({{GuestAddress(0), kMiB}});
  DriverQueue driver(mem, config(4, true), kBuffers, kMiB - kBuffers.value());
  Virtqueue queue(mem, config(4, true));
  for (uint32_t i = 0; i < 70000; ++i) {
    const uint8_t v = static_cast<uint8_t>(i);
    const auto sent = driver.add_chain({{v}}, {1});
    auto c = queue.pop();
    ASSERT_TRUE(c && c->ok()) << i;
    ASSERT_EQ(c->head, sent.head);
    uint8_t got = 0;
    ASSERT_EQ(ChainReader(mem, *c).read_some(std::span(&got, 1)), 1u);
    ASSERT_EQ(got, v);
    queue.add_used(c->head, 1);
    auto used = driver.next_used();
    ASSERT_TRUE(used) << i;
    ASSERT_EQ(used->id, sent.head);
    ASSERT_FALSE(queue.pop());
  }
  EXPECT_EQ(queue.last_avail_idx(), static_cast<uint16_t>(70000));
  EXPECT_EQ(queue.used_idx(), static_cast<uint16_t>(70000));
  EXPECT_FALSE(queue.broken());
}

// Random raw guest writes into the descriptor table, the avail ring and an
// indirect-table area, then pops: never throws, never hands out a buffer
// outside guest RAM, and no good chain is longer than the queue.
RC_GTEST_PROP(VirtqueueProperty, RandomGuestWritesNeverEscape, ()) {
  const uint16_t size = static_cast<uint16_t>(1u << *rc::gen::inRange(0, 6));
  const bool event_idx = *rc::gen::arbitrary<bool>();
  // Two regions with a hole, so buffers can straddle it.
  static const GuestMemory mem =
      GuestMemory::create({{GuestAddress(0), 0x20000}, {GuestAddress(0x30000), 0x10000}});
  mem.fill(GuestAddress(0), 0x20000, 0);
  const QueueConfig cfg{size, GuestAddress(0x1000), GuestAddress(0x2000), GuestAddress(0x3000), event_idx};
  Virtqueue queue(mem, cfg);
  RC_ASSERT(queue.valid());

  const auto addr_gen = rc::gen::oneOf(
      rc::gen::arbitrary<uint64_t>(), rc::gen::inRange<uint64_t>(0, 0x41000),
      rc::gen::element<uint64_t>(0, 0x1fff0, 0x20000, 0x2fff8, 0x30000, 0x3fff0, ~0ull, ~0ull - 15, 0x4000));
  const auto len_gen = rc::gen::oneOf(rc::gen::arbitrary<uint32_t>(), rc::gen::inRange<uint32_t>(0, 64),
                                      rc::gen::element<uint32_t>(16, 32, 48, 0x10000, 0xffffffffu, 0x80000000u));
  const auto flags_gen = rc::gen::inRange<uint16_t>(0, 8);
  const auto ops = *rc::gen::nonEmpty(rc::gen::container<std::vector<int>>(
      rc::gen::weightedElement<int>({{4, 0}, {3, 1}, {2, 2}, {3, 3}, {1, 4}})));
  size_t good = 0, bad = 0;
  for (int op : ops) {
    switch (op) {
      case 0: {  // a descriptor in the queue's table
        const auto idx = *rc::gen::inRange<uint16_t>(0, size);
        mem.write_obj(cfg.desc.unchecked_add(16ull * idx),
                      RawDescriptor{*addr_gen, *len_gen, *flags_gen, *rc::gen::inRange<uint16_t>(0, size + 2)});
        break;
      }
      case 1: {  // a descriptor in the indirect-table area
        const auto idx = *rc::gen::inRange<uint16_t>(0, 64);
        mem.write_obj(GuestAddress(0x4000 + 16ull * idx),
                      RawDescriptor{*addr_gen, *len_gen, *flags_gen, *rc::gen::inRange<uint16_t>(0, 66)});
        break;
      }
      case 2:  // an avail ring entry
        mem.write_obj(cfg.avail.unchecked_add(4 + 2ull * *rc::gen::inRange<uint16_t>(0, size)),
                      *rc::gen::inRange<uint16_t>(0, size + 2));
        break;
      case 3:  // avail idx: a few entries ahead of the device mostly, sometimes anything
        mem.write_obj(cfg.avail.unchecked_add(2),
                      *rc::gen::weightedOneOf<uint16_t>(
                          {{9, rc::gen::map(rc::gen::inRange<int>(1, size + 1),
                                            [&](int n) { return static_cast<uint16_t>(queue.last_avail_idx() + n); })},
                           {1, rc::gen::arbitrary<uint16_t>()}}));
        break;
      case 4: {  // any bytes anywhere in the rings/tables
        const auto off = *rc::gen::inRange<uint64_t>(0x1000, 0x5000);
        mem.write_obj(GuestAddress(off), *rc::gen::arbitrary<uint8_t>());
        break;
      }
    }
    for (int i = 0; i <= size; ++i) {
      std::optional<DescriptorChain> chain;
      chain = queue.pop();  // noexcept
      if (!chain) break;
      if (chain->ok()) {
        RC_ASSERT(chain->descriptors.size() <= size);
        uint64_t total = 0;
        bool seen_write = false;
        for (const auto& d : chain->descriptors) {
          RC_ASSERT(mem.contains(d.addr, d.len));
          RC_ASSERT(!(seen_write && !d.write));
          seen_write = seen_write || d.write;
          total += d.len;
        }
        RC_ASSERT(total <= UINT32_MAX);
        ++good;
      } else {
        ++bad;
        RC_ASSERT(chain->descriptors.empty());
      }
      queue.add_used(chain->head, 0);
    }
  }
  RC_CLASSIFY(good > 0, "good chains");
  RC_CLASSIFY(bad > 0, "malformed chains");
  RC_CLASSIFY(queue.broken(), "broken");
}

}  // namespace
}  // namespace skiff::virtio
