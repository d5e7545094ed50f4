#pragma once
// The VMM's I/O thread (docs/DESIGN.md section 2): one Boost.Asio
// io_context on its own thread, the EventLoop the devices run on. Queue kicks
// arrive as ioeventfds watched here, so a kick never goes through a vCPU
// thread. Only this file's implementation includes Boost.Asio.
#include <memory>
#include <thread>

#include "base/event_loop.h"

namespace skiff {

class IoThread final : public EventLoop {
 public:
  IoThread();
  ~IoThread() override;
  IoThread(const IoThread&) = delete;
  IoThread& operator=(const IoThread&) = delete;

  std::unique_ptr<Watch> watch(int eventfd, std::function<void()> on_signal) override;
  std::unique_ptr<FdWatch> watch_fd(int fd) override;
  std::unique_ptr<Timer> timer() override;
  void post(std::function<void()> fn) override;
  void run_sync(const std::function<void()>& fn) override;
  bool on_loop_thread() const override { return std::this_thread::get_id() == thread_.get_id(); }
  bool on_io_thread() const { return on_loop_thread(); }

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  std::thread thread_;
};

}  // namespace skiff
