#include "base/io_thread.h"

#include <pthread.h>
#include <unistd.h>

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <future>

namespace skiff {
namespace {

using boost::asio::posix::stream_descriptor;

// Watches one eventfd; re-arms itself until stopped.
struct EventState {
  EventState(boost::asio::io_context& io, int fd, std::function<void()> cb) : descriptor(io, fd), on_signal(std::move(cb)) {}
  stream_descriptor descriptor;
  std::function<void()> on_signal;
  bool stopped = false;  // only touched on the I/O thread

  static void arm(const std::shared_ptr<EventState>& s) {
    s->descriptor.async_wait(stream_descriptor::wait_read, [s](const boost::system::error_code& ec) {
      if (ec || s->stopped) return;
      uint64_t count;
      // Non-blocking eventfd: consume the counter, then act.
      if (::read(s->descriptor.native_handle(), &count, sizeof count) > 0) s->on_signal();
      if (!s->stopped) arm(s);
    });
  }
};

class AsioWatch final : public EventLoop::Watch {
 public:
  AsioWatch(IoThread& io, std::shared_ptr<EventState> s) : io_(io), state_(std::move(s)) {}
  ~AsioWatch() override {
    // Stop on the I/O thread, where the handler runs; the fd goes back to its owner.
    auto s = state_;
    io_.run_sync([s] {
      s->stopped = true;
      boost::system::error_code ignored;
      s->descriptor.cancel(ignored);
      s->descriptor.release();
    });
  }

 private:
  IoThread& io_;
  std::shared_ptr<EventState> state_;
};

// The descriptor outlives the FdWatch while handlers still hold it; `cancelled`
// keeps them from calling back once the FdWatch is gone.
struct FdState {
  FdState(boost::asio::io_context& io, int fd) : descriptor(io, fd) {}
  stream_descriptor descriptor;
  std::atomic<bool> cancelled{false};
};

class AsioFdWatch final : public EventLoop::FdWatch {
 public:
  AsioFdWatch(boost::asio::io_context& io, int fd) : state_(std::make_shared<FdState>(io, fd)) {}
  ~AsioFdWatch() override {
    state_->cancelled = true;
    boost::system::error_code ignored;
    state_->descriptor.cancel(ignored);
    state_->descriptor.release();  // the fd stays the caller's
  }
  void wait(EventLoop::Ready what, std::function<void()> on_ready) override {
    state_->descriptor.async_wait(
        what == EventLoop::Ready::Readable ? stream_descriptor::wait_read : stream_descriptor::wait_write,
        [s = state_, cb = std::move(on_ready)](const boost::system::error_code& ec) {
          if (ec == boost::asio::error::operation_aborted || s->cancelled) return;
          cb();
        });
  }

 private:
  std::shared_ptr<FdState> state_;
};

struct TimerState {
  explicit TimerState(boost::asio::io_context& io) : timer(io) {}
  boost::asio::steady_timer timer;
  std::atomic<bool> cancelled{false};
};

class AsioTimer final : public EventLoop::Timer {
 public:
  explicit AsioTimer(boost::asio::io_context& io) : state_(std::make_shared<TimerState>(io)) {}
  ~AsioTimer() override {
    state_->cancelled = true;
    state_->timer.cancel();
  }
  void after(std::chrono::milliseconds delay, std::function<void()> fn) override {
    state_->timer.expires_after(delay);
    state_->timer.async_wait([s = state_, cb = std::move(fn)](const boost::system::error_code& ec) {
      if (ec || s->cancelled) return;
      cb();
    });
  }

 private:
  std::shared_ptr<TimerState> state_;
};

}  // namespace

struct IoThread::Impl {
  boost::asio::io_context io;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work{io.get_executor()};
};

IoThread::IoThread() : impl_(std::make_unique<Impl>()) {
  thread_ = std::thread([this] {
    pthread_setname_np(pthread_self(), "skiff-io");
    impl_->io.run();
  });
}

IoThread::~IoThread() {
  impl_->work.reset();
  impl_->io.stop();
  if (thread_.joinable()) thread_.join();
}

void IoThread::post(std::function<void()> fn) { boost::asio::post(impl_->io, std::move(fn)); }

void IoThread::run_sync(const std::function<void()>& fn) {
  if (on_loop_thread()) {
    fn();
    return;
  }
  std::promise<void> done;
  post([&] {
    fn();
    done.set_value();
  });
  done.get_future().wait();
}

std::unique_ptr<EventLoop::Watch> IoThread::watch(int fd, std::function<void()> on_signal) {
  auto state = std::make_shared<EventState>(impl_->io, fd, std::move(on_signal));
  post([state] { EventState::arm(state); });
  return std::make_unique<AsioWatch>(*this, state);
}

std::unique_ptr<EventLoop::FdWatch> IoThread::watch_fd(int fd) {
  return std::make_unique<AsioFdWatch>(impl_->io, fd);
}

std::unique_ptr<EventLoop::Timer> IoThread::timer() { return std::make_unique<AsioTimer>(impl_->io); }

}  // namespace skiff
