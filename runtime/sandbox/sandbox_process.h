#pragma once
// The sandbox process: what `skiff create` starts, detached, for one
// container (docs/DESIGN.md section 1). It holds the VMM and the runtime for
// that sandbox, serves the control API on <root>/<id>/control.sock, keeps
// the state file <root>/<id>/state.json current, and ends when a client
// calls Sandbox.shutdown (skiff delete) or on SIGTERM.
//
// It runs in a mount namespace of its own (slave to the host's), so the
// share's bind mounts vanish with it however it ends. The container's stdio
// is the process's own fds 0-2 as `skiff create` passed them down (runc's
// way), or with a terminal a pty whose master went to the console socket.
#include <string>

namespace skiff::runtime {

struct SandboxProcessOptions {
  std::string id;
  std::string root;         // state root
  std::string bundle;
  std::string config_path;  // empty: /etc/skiff/config.toml or the built-in defaults
  bool config_explicit = false;
  std::string console_socket;
  int ready_fd = -1;  // gets "ok <pid>\n" once the container is created, or "error: <line>\n"
  std::string log_path;  // empty: <root>/<id>/sandbox.log
  std::string log_level = "info";
  bool log_text = false;
  std::string default_kernel, default_initrd;
};

// Returns the process's exit status.
int run_sandbox_process(const SandboxProcessOptions& options);

}  // namespace skiff::runtime
