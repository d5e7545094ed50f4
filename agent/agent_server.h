#pragma once
// Serves the agent API on a listening socket (AF_VSOCK in the guest, a Unix
// socket in tests) until the agent is told to power off, or until the
// runtime's connections are gone and none comes back within the grace
// period: the runtime reconnects after a restart, but a VM whose runtime has
// gone for good must not run on.
#include <chrono>
#include <cstdint>
#include <string>

#include "agent/agent_service.h"
#include "agent/fd.h"

namespace skiff::agent {

enum class ServeEnd { PowerOff, Reboot, RuntimeGone };

struct ServeOptions {
  AgentOptions agent;  // its power_off is set by serve()
  // How long to wait for a new connection after the last one closed.
  std::chrono::milliseconds reconnect_grace{std::chrono::seconds(10)};
};

// A listening socket; throws std::runtime_error with the reason.
Fd listen_vsock(uint32_t port);
Fd listen_unix(const std::string& path);

// Sets up its own KJ loop (after kj::UnixEventPort::captureChildExit(), which
// the caller makes before starting any thread) and serves until the end.
ServeEnd serve(Fd listener, ServeOptions options);

}  // namespace skiff::agent
