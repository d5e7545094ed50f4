#pragma once
// `skiffctl exec`'s stdin into the process's stdin stream. The caller's
// stdin stays blocking (a terminal is shared with the person's shell), so a
// thread copies it into a socket pair, and the loop reads the other end and
// makes the streaming writes: every capability stays on the loop's thread.
//
// Not runtime::FdInputPump: its thread holds the stream capability itself,
// so a client that ends while stdin is still open (the process exited
// first, the usual case on a terminal) destroys its event loop under a live
// import and KJ aborts ("EventLoop destroyed with events still in the queue").
#include <kj/async-io.h>

#include "api/agent.capnp.h"
#include "base/unique_fd.h"

namespace skiff::runtime::ctl {

class StdinForwarder {
 public:
  // Copies `fd` into `stream` until EOF, then ends the stream. A failed
  // write (the process is gone) stops it quietly.
  StdinForwarder(kj::AsyncIoContext& io, UniqueFd fd, api::ByteStream::Client stream);
  // On the loop's thread. The copier thread, if still blocked in read(),
  // owns nothing but its two fds: its next write fails (EPIPE) and it ends.
  ~StdinForwarder() = default;
  StdinForwarder(const StdinForwarder&) = delete;
  StdinForwarder& operator=(const StdinForwarder&) = delete;

 private:
  kj::Own<kj::AsyncIoStream> socket_;  // before pump_, which reads it
  kj::Promise<void> pump_;
};

}  // namespace skiff::runtime::ctl
