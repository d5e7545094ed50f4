#pragma once
// A container's stdio on the host side: bytes between the agent's streams
// and plain file descriptors (the caller's stdio that `skiff create` passed
// down, a pty, a FIFO). The fds stay blocking, as the caller gave them (a
// terminal is shared with the user's shell: O_NONBLOCK on it would leak to
// the shell), so the blocking reads and writes run on a thread per fd, never
// on the control thread's KJ loop; the loop sees promises fulfilled across
// threads, and flow control reaches the guest through the streaming calls.
#include <kj/async.h>

#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>

#include "api/agent.capnp.h"
#include "base/unique_fd.h"

namespace skiff::runtime {

// The agent writes the container's output here; each write resolves once the
// bytes are in the fd (or the fd is gone: a reader that went away loses the
// rest, as with a closed pipe, and the container is not held up).
class FdOutputStream final : public api::ByteStream::Server {
 public:
  explicit FdOutputStream(UniqueFd fd);
  ~FdOutputStream();

  kj::Promise<void> write(WriteContext ctx) override;
  kj::Promise<void> end(EndContext ctx) override;

 private:
  struct Chunk {
    std::string bytes;
    kj::Own<kj::CrossThreadPromiseFulfiller<void>> done;
  };
  void run();

  UniqueFd fd_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Chunk> queue_;
  bool stopping_ = false;
  std::thread writer_;
};

// Copies `fd` into `stream` until EOF (then stream.end()), on a thread of its
// own, each write waiting for the previous one. `on_done` (may be empty) runs
// on the loop once it ends. The thread is detached at destruction if it is
// still blocked in read(); it touches nothing of this object afterwards.
class FdInputPump {
 public:
  FdInputPump(UniqueFd fd, api::ByteStream::Client stream);
  ~FdInputPump();
  FdInputPump(const FdInputPump&) = delete;
  FdInputPump& operator=(const FdInputPump&) = delete;

 private:
  struct Shared;
  std::shared_ptr<Shared> shared_;
};

}  // namespace skiff::runtime
