#pragma once
// `skiffctl exec`: a new process in a running container, its stdio (or,
// with -t, the person's terminal) through, its exit status ours.
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace skiff::runtime::ctl {

struct ExecOptions {
  std::string sandbox, container;
  std::vector<std::string> args;  // the command and its arguments
  std::vector<std::string> env;   // KEY=value, each replacing the template's KEY
  std::string cwd;                // empty: the template's
  bool tty = false;
};

// ConfigError for a bad flag: `--env "FOO": must be KEY=value`,
// `--cwd "tmp": must be an absolute path`, `exec: no command given`.
void check_exec_options(const ExecOptions& o);

// The exec's OCI process object: `base` (the container's own process, as
// runc exec takes it: user, env, capabilities, rlimits) with args, terminal,
// cwd and env from `o`.
nlohmann::json exec_process(const ExecOptions& o, const nlohmann::json& base);

// Runs it in the sandbox under `root`; returns the process's exit status
// (128 + N for a signal N). Throws as find_sandbox/connect do, and
// ControlCallError for a failed call.
int run_exec(const std::string& root, const ExecOptions& o);

}  // namespace skiff::runtime::ctl
