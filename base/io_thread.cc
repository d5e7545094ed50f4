#include "base/io_thread.h"

#include <pthread.h>
#include <unistd.h>

#include <boost/asio/post.hpp>
#include <future>

namespace skiff {

struct IoThread::Watch::State {
  explicit State(boost::asio::io_context& io, int fd, std::function<void()> cb)
      : descriptor(io, fd), on_signal(std::move(cb)) {}
  boost::asio::posix::stream_descriptor descriptor;
  std::function<void()> on_signal;
  IoThread* owner = nullptr;
  bool stopped = false;  // only touched on the I/O thread

  // Waits for the next signal; re-arms itself until stopped.
  static void arm(const std::shared_ptr<State>& state);
};

IoThread::IoThread()
    : work_(std::make_unique<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>>(
          io_.get_executor())) {
  thread_ = std::thread([this] {
    pthread_setname_np(pthread_self(), "skiff-io");
    io_.run();
  });
}

IoThread::~IoThread() {
  work_.reset();
  io_.stop();
  if (thread_.joinable()) thread_.join();
}

void IoThread::post(std::function<void()> fn) { boost::asio::post(io_, std::move(fn)); }

void IoThread::run_sync(const std::function<void()>& fn) {
  if (on_io_thread()) {
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

void IoThread::Watch::State::arm(const std::shared_ptr<State>& state) {
  state->descriptor.async_wait(boost::asio::posix::stream_descriptor::wait_read,
                               [state](const boost::system::error_code& ec) {
                                 if (ec || state->stopped) return;
                                 uint64_t count;
                                 // Non-blocking eventfd: consume the counter, then act.
                                 if (::read(state->descriptor.native_handle(), &count, sizeof count) > 0)
                                   state->on_signal();
                                 if (!state->stopped) arm(state);
                               });
}

std::unique_ptr<IoThread::Watch> IoThread::watch(int fd, std::function<void()> on_signal) {
  auto state = std::make_shared<Watch::State>(io_, fd, std::move(on_signal));
  state->owner = this;
  post([state] { Watch::State::arm(state); });
  return std::unique_ptr<Watch>(new Watch(state));
}

IoThread::Watch::~Watch() {
  // Stop on the I/O thread, where the handler runs; hand the fd back to its owner.
  auto state = state_;
  state->owner->run_sync([state] {
    state->stopped = true;
    boost::system::error_code ignored;
    state->descriptor.cancel(ignored);
    state->descriptor.release();
  });
}

}  // namespace skiff
