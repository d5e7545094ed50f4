#pragma once
// The control API (api/control.capnp) of one sandbox process, served on a
// Unix socket on the control thread's KJ loop. The socket is made mode 0600
// and each connecting peer's uid (SO_PEERCRED) must be root's or ours; any
// other is closed unanswered.
#include <kj/async-io.h>

#include <functional>
#include <string>

#include "api/control.capnp.h"
#include "runtime/sandbox/sandbox.h"

namespace skiff::runtime {

// The bootstrap capability for `sandbox`; `on_shutdown` runs once a client's
// Sandbox.shutdown has been answered and the VM has ended.
api::control::Sandbox::Client make_control_sandbox(Sandbox& sandbox, std::function<void()> on_shutdown);

class ControlServer {
 public:
  // Listens on `socket_path` (a stale socket file is replaced). Throws
  // std::system_error naming the path.
  ControlServer(kj::AsyncIoContext& io, std::string socket_path, api::control::Sandbox::Client bootstrap);
  ~ControlServer();
  ControlServer(const ControlServer&) = delete;
  ControlServer& operator=(const ControlServer&) = delete;

  const std::string& path() const { return path_; }

 private:
  class Impl;
  kj::Own<Impl> impl_;
  std::string path_;
};

}  // namespace skiff::runtime
