#pragma once
// The VMM's I/O thread (docs/DESIGN.md section 2): one Boost.Asio io_context on
// its own thread. Device back ends run here; queue kicks arrive as
// ioeventfds watched here, so a kick never goes through a vCPU thread.
#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <functional>
#include <memory>
#include <thread>

namespace skiff {

class IoThread {
 public:
  IoThread();
  ~IoThread();
  IoThread(const IoThread&) = delete;
  IoThread& operator=(const IoThread&) = delete;

  // While the returned watch lives, `on_signal` runs on the I/O thread each
  // time the eventfd `fd` is signalled (its counter is consumed first). The
  // fd stays owned by the caller and must outlive the watch.
  class Watch {
   public:
    ~Watch();
    Watch(const Watch&) = delete;
    Watch& operator=(const Watch&) = delete;

   private:
    friend class IoThread;
    struct State;
    explicit Watch(std::shared_ptr<State> state) : state_(std::move(state)) {}
    std::shared_ptr<State> state_;
  };
  std::unique_ptr<Watch> watch(int fd, std::function<void()> on_signal);

  // Runs `fn` on the I/O thread.
  void post(std::function<void()> fn);
  // Runs `fn` on the I/O thread and waits for it; on the I/O thread itself,
  // runs it at once.
  void run_sync(const std::function<void()>& fn);
  bool on_io_thread() const { return std::this_thread::get_id() == thread_.get_id(); }
  boost::asio::io_context& context() { return io_; }

 private:
  boost::asio::io_context io_;
  std::unique_ptr<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>> work_;
  std::thread thread_;
};

}  // namespace skiff
