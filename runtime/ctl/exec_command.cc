#include "runtime/ctl/exec_command.h"

#include <pthread.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <fstream>
#include <memory>
#include <sstream>

#include "base/config_error.h"
#include "runtime/cli/terminal_proxy.h"
#include "runtime/ctl/sandboxes.h"
#include "runtime/ctl/stdin_forwarder.h"
#include "runtime/oci/oci_spec.h"
#include "runtime/sandbox/stdio_streams.h"

namespace skiff::runtime::ctl {
namespace {

// TerminalProxy's resize thread sigwaits for SIGWINCH (and SIGUSR2 to stop):
// they must be blocked in every thread, so before any thread starts.
void block_winch() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGWINCH);
  sigaddset(&set, SIGUSR2);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
}

// The container's own process from its bundle; if the bundle can't be read
// (moved, or on another mount namespace's view), runc's default process, so
// that a look inside still works.
nlohmann::json template_process(const std::string& bundle) {
  const std::string path = bundle + "/config.json";
  try {
    std::ifstream f(path);
    if (!f) throw ConfigError(path + ": cannot be read");
    std::stringstream ss;
    ss << f.rdbuf();
    auto config = oci::parse_json_text(ss.str(), path);
    if (!config.contains("process") || !config["process"].is_object()) throw ConfigError(path + ": process: missing");
    return config["process"];
  } catch (const ConfigError& e) {
    std::fprintf(stderr, "skiffctl: warning: %s: the exec gets runc's default process\n", e.what());
    return oci::default_spec()["process"];
  }
}

}  // namespace

void check_exec_options(const ExecOptions& o) {
  if (o.args.empty()) throw ConfigError("exec: no command given (skiffctl exec SANDBOX CONTAINER -- CMD ARGS...)");
  for (const auto& e : o.env)
    if (e.find('=') == std::string::npos || e.front() == '=') throw ConfigError("--env \"" + e + "\": must be KEY=value");
  if (!o.cwd.empty() && o.cwd.front() != '/') throw ConfigError("--cwd \"" + o.cwd + "\": must be an absolute path");
}

nlohmann::json exec_process(const ExecOptions& o, const nlohmann::json& base) {
  nlohmann::json p = base.is_object() ? base : nlohmann::json::object();
  p["args"] = o.args;
  p["terminal"] = o.tty;
  if (!o.cwd.empty()) p["cwd"] = o.cwd;
  if (!p.contains("env") || !p["env"].is_array()) p["env"] = nlohmann::json::array();
  for (const auto& e : o.env) {
    const std::string key = e.substr(0, e.find('=') + 1);
    bool replaced = false;
    for (auto& old : p["env"])
      if (old.is_string() && old.get<std::string>().rfind(key, 0) == 0) {
        old = e;
        replaced = true;
      }
    if (!replaced) p["env"].push_back(e);
  }
  return p;
}

int run_exec(const std::string& root, const ExecOptions& o) {
  check_exec_options(o);
  const SandboxRef sandbox = find_sandbox(root, o.sandbox);
  if (o.tty) block_winch();
  auto client = connect(sandbox);
  auto container = client->container(o.container);
  auto info = client->wait(container.infoRequest().send());
  const auto process = exec_process(o, template_process(info.getInfo().getBundle().cStr()));

  std::unique_ptr<cli::ConsoleReceiver> receiver;
  if (o.tty) receiver = std::make_unique<cli::ConsoleReceiver>();
  auto req = container.execRequest();
  req.setExecId("skiffctl-" + std::to_string(::getpid()));
  oci::to_agent_process(process, req.initProcess());
  if (receiver) {
    req.setConsoleSocket(receiver->path());
  } else {
    auto stdio = req.initStdio();
    stdio.setStdout(kj::heap<FdOutputStream>(UniqueFd(::dup(STDOUT_FILENO))));
    stdio.setStderr(kj::heap<FdOutputStream>(UniqueFd(::dup(STDERR_FILENO))));
    stdio.setStdin(true);
  }
  // The request goes out only while the loop runs, so wait for the answer
  // before taking the terminal: the sandbox process sends the pty master
  // (connect + sendmsg, queued in our listener's backlog) before it answers,
  // and a refused exec reports its own error instead of "no terminal came".
  auto proc = client->wait(req.send()).getProcess();
  std::unique_ptr<cli::TerminalProxy> proxy;
  if (receiver) proxy = std::make_unique<cli::TerminalProxy>(receiver->receive(5000));
  std::unique_ptr<StdinForwarder> input;  // destroyed before the client, on its loop
  if (!receiver) {
    auto stream = client->wait(proc.stdinRequest().send()).getStream();
    input = std::make_unique<StdinForwarder>(client->io(), UniqueFd(::dup(STDIN_FILENO)), kj::mv(stream));
  }
  const int code = client->wait(proc.waitRequest().send()).getStatus().getCode();
  proxy.reset();  // the terminal back as it was before anything is printed
  return code;
}

}  // namespace skiff::runtime::ctl
