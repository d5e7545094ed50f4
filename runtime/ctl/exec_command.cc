#include "runtime/ctl/exec_command.h"

#include <pthread.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <fstream>
#include <memory>
#include <sstream>

#include "base/config_error.h"
#include "runtime/cli/exec_session.h"
#include "runtime/ctl/sandboxes.h"
#include "runtime/oci/oci_spec.h"

namespace skiff::runtime::ctl {
namespace {

// The container's own process from its bundle; if the bundle can't be read
// (moved, or on another mount namespace's view), runc's default process, so
// that a look inside still works.
nlohmann::json template_process(const std::string& bundle) {
  const std::string path = bundle + "/config.json";
  try {
    if (bundle.empty()) throw ConfigError("the container has no bundle");
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
  auto client = connect(sandbox);
  auto container = client->container(o.container);
  auto info = client->wait(container.infoRequest().send());
  const auto process = exec_process(o, template_process(info.getInfo().getBundle().cStr()));

  static int counter = 0;  // one exec a process from the CLI, more from tests
  return cli::run_exec_session(*client, {o.container, "skiffctl-" + std::to_string(::getpid()) + "-" + std::to_string(counter++),
                                         process, "", false, nullptr});
}

}  // namespace skiff::runtime::ctl
