#pragma once
// The agent API (api/agent.capnp) served by the agent: the Sandbox
// bootstrap capability, the Containers it creates and their Processes, on
// one KJ event loop (the agent is single-threaded: its container set-up
// forks, see container_launcher.h). A process's output is pumped from its
// pipe or pty into the host's ByteStream with streaming writes, so a slow
// host reader slows the container, not the agent's memory.
#include <kj/async-unix.h>
#include <kj/async-io.h>

#include <functional>
#include <string>

#include "api/agent.capnp.h"

namespace skiff::agent {

struct AgentOptions {
  // cgroup v2 directory the containers' cgroups go under; empty: none (and
  // pause, resume, stats and update are refused).
  std::string cgroup_parent;
  // The agent's root is an initramfs (PID 1 in the guest).
  bool no_pivot = false;
  std::string version = "0.1.0";
  // Sandbox.powerOff: what the agent does once its containers are killed
  // (agent_server.h ends the serving, then PID 1 powers off or reboots);
  // unset: the call is refused (an agent that does not own its machine).
  std::function<void(bool reboot)> power_off;
  // Where Sandbox.setOnlineCpus takes vCPUs online (tests give a fake one).
  std::string cpu_sysfs_dir = "/sys/devices/system/cpu";
};

// `events` must come from a KJ loop set up after
// kj::UnixEventPort::captureChildExit().
kj::Own<api::Sandbox::Server> make_sandbox(kj::UnixEventPort& events, kj::LowLevelAsyncIoProvider& io, AgentOptions options);

}  // namespace skiff::agent
