#include "devices/bus.h"

#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include <map>

namespace skiff::devices {
namespace {

// Records the last access and answers reads with its offset.
class Recorder : public BusDevice {
 public:
  void read(uint64_t offset, std::span<uint8_t> data) override {
    last_offset = offset;
    for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<uint8_t>(offset + i);
    ++reads;
  }
  void write(uint64_t offset, std::span<const uint8_t> data) override {
    last_offset = offset;
    written.assign(data.begin(), data.end());
    ++writes;
  }
  uint64_t last_offset = ~0ull;
  std::vector<uint8_t> written;
  int reads = 0, writes = 0;
};

TEST(Bus, DispatchesWithOffsetRelativeToBase) {
  Bus bus("test");
  auto dev = std::make_shared<Recorder>();
  bus.insert(dev, 0x3f8, 8);
  uint8_t byte = 0x41;
  ASSERT_TRUE(bus.write(0x3fd, {&byte, 1}));
  EXPECT_EQ(dev->last_offset, 5u);
  EXPECT_EQ(dev->written, std::vector<uint8_t>{0x41});
  uint8_t buf[2];
  ASSERT_TRUE(bus.read(0x3f9, buf));
  EXPECT_EQ(buf[0], 1);
  EXPECT_EQ(buf[1], 2);
}

TEST(Bus, UnclaimedAccessesReturnFalse) {
  Bus bus("test");
  bus.insert(std::make_shared<Recorder>(), 0x100, 0x10);
  uint8_t b[4];
  EXPECT_FALSE(bus.read(0xff, {b, 1}));
  EXPECT_FALSE(bus.read(0x110, {b, 1}));
  // Straddling the end of the range is not delivered to the device.
  EXPECT_FALSE(bus.read(0x10e, {b, 4}));
  EXPECT_TRUE(bus.read(0x10c, {b, 4}));
  EXPECT_FALSE(bus.read(0x100, {b, 0}));
}

TEST(Bus, RejectsOverlapsEmptyAndWrappingRanges) {
  Bus bus("mmio");
  bus.insert(std::make_shared<Recorder>(), 0x1000, 0x100);
  EXPECT_THROW(bus.insert(std::make_shared<Recorder>(), 0x1000, 0x100), std::invalid_argument);
  EXPECT_THROW(bus.insert(std::make_shared<Recorder>(), 0xf00, 0x101), std::invalid_argument);   // tail overlaps
  EXPECT_THROW(bus.insert(std::make_shared<Recorder>(), 0x10ff, 0x10), std::invalid_argument);  // head overlaps
  EXPECT_THROW(bus.insert(std::make_shared<Recorder>(), 0x1010, 0x10), std::invalid_argument);  // inside
  EXPECT_THROW(bus.insert(std::make_shared<Recorder>(), 0x0, 0x10000), std::invalid_argument);  // covers
  EXPECT_THROW(bus.insert(std::make_shared<Recorder>(), 0x5000, 0), std::invalid_argument);
  EXPECT_THROW(bus.insert(std::make_shared<Recorder>(), ~0ull - 4, 0x10), std::invalid_argument);
  EXPECT_THROW(bus.insert(nullptr, 0x9000, 1), std::invalid_argument);
  // Adjacent ranges on both sides are fine.
  bus.insert(std::make_shared<Recorder>(), 0xf00, 0x100);
  bus.insert(std::make_shared<Recorder>(), 0x1100, 0x100);
  bus.insert(std::make_shared<Recorder>(), ~0ull, 1);
  EXPECT_EQ(bus.size(), 4u);
}

TEST(Bus, OverlapErrorNamesBothRanges) {
  Bus bus("pio");
  bus.insert(std::make_shared<Recorder>(), 0x60, 5);
  try {
    bus.insert(std::make_shared<Recorder>(), 0x64, 1);
    FAIL() << "overlap accepted";
  } catch (const std::invalid_argument& e) {
    EXPECT_STREQ(e.what(), "pio bus: range [0x64, 0x64] overlaps [0x60, 0x64]");
  }
}

TEST(Bus, RemoveFreesTheRange) {
  Bus bus("test");
  auto dev = std::make_shared<Recorder>();
  bus.insert(dev, 0x10, 4);
  EXPECT_FALSE(bus.remove(0x11));
  EXPECT_TRUE(bus.remove(0x10));
  uint8_t b;
  EXPECT_FALSE(bus.read(0x10, {&b, 1}));
  bus.insert(dev, 0x10, 4);
  EXPECT_TRUE(bus.read(0x13, {&b, 1}));
}

// Any set of accepted ranges dispatches exactly like a linear scan over them.
RC_GTEST_PROP(BusProperty, LookupMatchesLinearModel, ()) {
  Bus bus("prop");
  std::map<uint64_t, std::pair<uint64_t, std::shared_ptr<Recorder>>> model;  // base -> (len, dev)
  auto n = *rc::gen::inRange(1, 40);
  for (int i = 0; i < n; ++i) {
    uint64_t base = *rc::gen::inRange<uint64_t>(0, 0x10000);
    uint64_t len = *rc::gen::inRange<uint64_t>(1, 0x800);
    bool overlaps = false;
    for (const auto& [b, e] : model) overlaps |= base < b + e.first && b < base + len;
    auto dev = std::make_shared<Recorder>();
    if (overlaps) {
      RC_ASSERT_THROWS_AS(bus.insert(dev, base, len), std::invalid_argument);
    } else {
      bus.insert(dev, base, len);
      model[base] = {len, dev};
    }
  }
  for (int i = 0; i < 200; ++i) {
    uint64_t addr = *rc::gen::inRange<uint64_t>(0, 0x10900);
    uint64_t width = *rc::gen::element<uint64_t>(1, 2, 4, 8);
    std::shared_ptr<Recorder> expect;
    uint64_t expect_offset = 0;
    for (const auto& [b, e] : model)
      if (addr >= b && addr + width <= b + e.first) {
        expect = e.second;
        expect_offset = addr - b;
      }
    uint8_t buf[8];
    bool hit = bus.read(addr, std::span<uint8_t>(buf, width));
    RC_ASSERT(hit == (expect != nullptr));
    if (hit) RC_ASSERT(expect->last_offset == expect_offset);
  }
}

}  // namespace
}  // namespace skiff::devices
