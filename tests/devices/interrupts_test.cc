#include "devices/interrupts.h"

#include <gtest/gtest.h>

namespace skiff::devices {
namespace {

TEST(EventFd, SignalsAccumulateUntilConsumed) {
  EventFd e;
  EXPECT_FALSE(e.consume().has_value());
  EXPECT_FALSE(e.wait(0));
  e.signal();
  e.signal(2);
  EXPECT_TRUE(e.wait(0));
  EXPECT_EQ(e.consume(), 3u);
  EXPECT_FALSE(e.consume().has_value());
}

TEST(GsiAllocator, HandsOutEachLineOnceAndReportsExhaustion) {
  GsiAllocator a(kFirstDeviceGsi, 3);
  EXPECT_EQ(a.allocate(), 5u);
  EXPECT_EQ(a.allocate(), 6u);
  EXPECT_EQ(a.allocate(), 7u);
  EXPECT_EQ(a.available(), 0u);
  try {
    a.allocate();
    FAIL();
  } catch (const std::runtime_error& e) {
    EXPECT_STREQ(e.what(), "no free interrupt line (GSI) left: all 3 are taken");
  }
  a.release(6);
  a.release(99);  // not ours: ignored
  EXPECT_EQ(a.allocate(), 6u);
}

}  // namespace
}  // namespace skiff::devices
