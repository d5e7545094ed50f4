#pragma once
// One exec into a running container, from a command line (`skiff exec`,
// `skiffctl exec`): the process runs with this program's stdio, or with a
// terminal (the sandbox's pty handed to --console-socket, or to this program
// itself, which then copies between it and the person's terminal), and its
// exit status comes back.
#include <nlohmann/json.hpp>

#include <functional>
#include <string>

#include "runtime/control/control_client.h"

namespace skiff::cli {

struct ExecSession {
  std::string container_id;
  std::string exec_id;
  nlohmann::json process;      // an OCI process object
  std::string console_socket;  // with a terminal; empty: this program receives it
  bool detach = false;         // return once it runs (without a terminal, its output is discarded)
  std::function<void()> on_started;  // runs once the process exists (the CLI's --pid-file)
};

// Returns the process's exit status (0 when detached). Throws ConfigError
// for a bad process, ControlCallError for a refused call.
int run_exec_session(runtime::ControlClient& client, const ExecSession& session);

// SIGWINCH (the terminal's resizes) and SIGUSR2 blocked in this thread and
// every thread started after: TerminalProxy takes them with sigwait.
void block_terminal_signals();

}  // namespace skiff::cli
