#include "runtime/cli/exec_session.h"

#include <pthread.h>
#include <unistd.h>

#include <csignal>
#include <memory>

#include "base/config_error.h"
#include "runtime/cli/terminal_proxy.h"
#include "runtime/oci/oci_spec.h"
#include "runtime/sandbox/stdio_streams.h"

namespace skiff::cli {

void block_terminal_signals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGWINCH);
  sigaddset(&set, SIGUSR2);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
}

void check_exec_overrides(const ExecOverrides& o) {
  for (const auto& e : o.env)
    if (e.find('=') == std::string::npos || e.front() == '=') throw ConfigError("--env \"" + e + "\": must be KEY=value");
  if (!o.cwd.empty() && o.cwd.front() != '/') throw ConfigError("--cwd \"" + o.cwd + "\": must be an absolute path");
}

nlohmann::json apply_exec_overrides(nlohmann::json base, const ExecOverrides& o) {
  nlohmann::json p = base.is_object() ? std::move(base) : nlohmann::json::object();
  p["args"] = o.args;
  p["terminal"] = o.tty;
  if (!o.cwd.empty()) p["cwd"] = o.cwd;
  if (!p.contains("env") || !p["env"].is_array()) p["env"] = nlohmann::json::array();
  for (const auto& e : o.env) {
    const std::string key = e.substr(0, e.find('=') + 1);
    bool replaced = false;
    for (auto& old : p["env"])
      if (old.is_string() && old.get<std::string>().starts_with(key)) {
        old = e;
        replaced = true;
      }
    if (!replaced) p["env"].push_back(e);
  }
  return p;
}

int run_exec_session(runtime::ControlClient& client, const ExecSession& s) {
  const bool terminal = s.process.value("terminal", false);
  if (terminal && s.detach && s.console_socket.empty())
    throw ConfigError("a detached exec with a terminal needs --console-socket: nothing would hold the terminal");
  std::unique_ptr<ConsoleReceiver> receiver;
  std::string console_socket = s.console_socket;
  if (terminal && console_socket.empty()) {
    block_terminal_signals();
    receiver = std::make_unique<ConsoleReceiver>();
    console_socket = receiver->path();
  }
  auto req = client.container(s.container_id).execRequest();
  req.setExecId(s.exec_id);
  runtime::oci::to_agent_process(s.process, req.initProcess());
  if (terminal) {
    req.setConsoleSocket(console_socket);
  } else if (!s.detach) {
    auto stdio = req.initStdio();
    stdio.setStdout(kj::heap<runtime::FdOutputStream>(UniqueFd(::dup(STDOUT_FILENO))));
    stdio.setStderr(kj::heap<runtime::FdOutputStream>(UniqueFd(::dup(STDERR_FILENO))));
    stdio.setStdin(true);
  }
  // The request leaves only while the loop runs, and the sandbox sends the
  // pty master (queued in our listener's backlog) before it answers: the
  // answer first, then the terminal; a refused exec says its own error.
  auto reply = client.wait(req.send());
  std::unique_ptr<TerminalProxy> proxy;
  if (receiver) proxy = std::make_unique<TerminalProxy>(receiver->receive(10000));
  auto proc = reply.getProcess();
  if (s.on_started) s.on_started();
  if (s.detach) return 0;
  std::unique_ptr<runtime::FdInputPump> input;  // destroyed before the client, on its loop
  if (!terminal) {
    auto stream = client.wait(proc.stdinRequest().send()).getStream();
    input = std::make_unique<runtime::FdInputPump>(client.io(), UniqueFd(::dup(STDIN_FILENO)), kj::mv(stream));
  }
  const int code = client.wait(proc.waitRequest().send()).getStatus().getCode();
  proxy.reset();  // the terminal back as it was before anything more is printed
  return code;
}

}  // namespace skiff::cli
