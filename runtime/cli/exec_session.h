#pragma once
// One exec into a running container, from a command line (`skiff exec`,
// `skiffctl exec`): the process runs with this program's stdio, or with a
// terminal (the sandbox's pty handed to --console-socket, or to this program
// itself, which then copies between it and the person's terminal), and its
// exit status comes back.
#include <nlohmann/json.hpp>

#include <functional>
#include <string>
#include <vector>

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

// What a command line changes of the process an exec starts from (the
// container's own, as runc exec takes it: user, env, capabilities, rlimits).
struct ExecOverrides {
  std::vector<std::string> args;  // the command and its arguments
  std::vector<std::string> env;   // KEY=value, each replacing the template's KEY
  std::string cwd;                // empty: the template's
  bool tty = false;
};

// ConfigError for a bad one: `--env "FOO": must be KEY=value`,
// `--cwd "tmp": must be an absolute path`.
void check_exec_overrides(const ExecOverrides& o);

// `base` (an OCI process object, or null) with args, terminal, cwd and env from `o`.
nlohmann::json apply_exec_overrides(nlohmann::json base, const ExecOverrides& o);

// Returns the process's exit status (0 when detached). Throws ConfigError
// for a bad process, ControlCallError for a refused call.
int run_exec_session(runtime::ControlClient& client, const ExecSession& session);

// SIGWINCH (the terminal's resizes) and SIGUSR2 blocked in this thread and
// every thread started after: TerminalProxy takes them with sigwait.
void block_terminal_signals();

}  // namespace skiff::cli
