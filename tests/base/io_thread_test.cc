#include "base/io_thread.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>

#include "devices/interrupts.h"

namespace skiff {
namespace {

using namespace std::chrono_literals;

bool eventually(const std::function<bool()>& pred) {
  for (int i = 0; i < 500; ++i) {
    if (pred()) return true;
    std::this_thread::sleep_for(2ms);
  }
  return pred();
}

TEST(IoThread, RunsTheCallbackOnTheIoThreadForEachSignal) {
  IoThread io;
  devices::EventFd kick;
  std::atomic<int> calls{0};
  std::atomic<bool> on_io{false};
  auto watch = io.watch(kick.fd(), [&] {
    on_io = io.on_io_thread();
    ++calls;
  });
  kick.signal();
  ASSERT_TRUE(eventually([&] { return calls == 1; }));
  EXPECT_TRUE(on_io);
  kick.signal();
  ASSERT_TRUE(eventually([&] { return calls == 2; }));
  EXPECT_FALSE(kick.consume().has_value());  // the watch consumed the counter
}

TEST(IoThread, NoCallbackAfterTheWatchIsGone) {
  IoThread io;
  devices::EventFd kick;
  std::atomic<int> calls{0};
  auto watch = io.watch(kick.fd(), [&] { ++calls; });
  watch.reset();
  kick.signal();
  std::this_thread::sleep_for(50ms);
  EXPECT_EQ(calls, 0);
  EXPECT_EQ(kick.consume(), 1u);  // the fd is still the caller's, and open
}

TEST(IoThread, RunSyncWaitsAndWorksFromTheIoThread) {
  IoThread io;
  int value = 0;
  io.run_sync([&] { value = 1; });
  EXPECT_EQ(value, 1);
  io.run_sync([&] { io.run_sync([&] { value = 2; }); });  // nested: runs inline
  EXPECT_EQ(value, 2);
}

}  // namespace
}  // namespace skiff
