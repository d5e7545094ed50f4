#pragma once
// A container's stdio on the host side: bytes between the agent's streams
// and plain file descriptors (the caller's stdio that `skiff create` passed
// down, a pty, a FIFO). The fds stay blocking, as the caller gave them (a
// terminal is shared with the user's shell: O_NONBLOCK on it would leak to
// the shell), so the blocking reads and writes run on a thread per fd, never
// on the control thread's KJ loop; the loop sees promises fulfilled across
// threads, and flow control reaches the guest through the streaming calls.
#include <kj/async-io.h>

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

// Copies `fd` into `stream` until EOF, then ends the stream. The fd stays
// blocking, so a detached thread copies it into a socket pair and the loop
// reads the other end and makes the streaming writes: every capability stays
// on the loop's thread (a thread holding one would outlive the loop when the
// process ends while stdin is still open, and KJ aborts). A failed write
// (the process is gone) stops it quietly. Destroy it on the loop's thread;
// the copier, if still blocked in read(), owns nothing but its two fds and
// ends at its next write.
class FdInputPump {
 public:
  FdInputPump(kj::AsyncIoContext& io, UniqueFd fd, api::ByteStream::Client stream);
  FdInputPump(const FdInputPump&) = delete;
  FdInputPump& operator=(const FdInputPump&) = delete;

 private:
  kj::Own<kj::AsyncIoStream> socket_;  // before pump_, which reads it
  kj::Promise<void> pump_;
};

}  // namespace skiff::runtime
