#pragma once
// What a device gets to run its I/O on: watch an fd, post work, a timer.
// Devices see only this interface (docs/DESIGN.md section 2); the VMM's I/O
// thread (base/io_thread.h) implements it with Boost.Asio. The rule for
// everything that runs on a loop: it never waits. A handler that cannot go
// on (no rx buffer, no free request slot) stops and is resumed by the event
// that makes room, posted back to the loop.
#include <chrono>
#include <functional>
#include <memory>

namespace skiff {

class EventLoop {
 public:
  virtual ~EventLoop() = default;

  // While it lives, an eventfd's signals run a callback on the loop (the
  // counter is consumed first). Destroying it stops that: once the
  // destructor returns, the callback never runs again.
  class Watch {
   public:
    virtual ~Watch() = default;
  };
  virtual std::unique_ptr<Watch> watch(int eventfd, std::function<void()> on_signal) = 0;

  enum class Ready { Readable, Writable };
  // One-shot readiness waits on an fd the caller owns and keeps open while
  // the FdWatch lives. Each wait() runs `on_ready` once on the loop when the
  // fd is ready; destroying the FdWatch cancels the waits still pending (a
  // callback already under way may still finish: callers that destroy it
  // off the loop guard their own state).
  class FdWatch {
   public:
    virtual ~FdWatch() = default;
    virtual void wait(Ready what, std::function<void()> on_ready) = 0;
  };
  virtual std::unique_ptr<FdWatch> watch_fd(int fd) = 0;

  // Runs a callback on the loop after a delay; re-arming replaces the one
  // pending, destroying the timer cancels it.
  class Timer {
   public:
    virtual ~Timer() = default;
    virtual void after(std::chrono::milliseconds delay, std::function<void()> fn) = 0;
  };
  virtual std::unique_ptr<Timer> timer() = 0;

  // Runs `fn` on the loop, later.
  virtual void post(std::function<void()> fn) = 0;
  // Runs `fn` on the loop and waits for it; on the loop itself, at once. For
  // set-up and teardown (never from code that runs on the loop's behalf).
  virtual void run_sync(const std::function<void()>& fn) = 0;
  virtual bool on_loop_thread() const = 0;
};

}  // namespace skiff
