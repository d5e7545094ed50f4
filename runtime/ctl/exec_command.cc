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

cli::ExecOverrides overrides_of(const ExecOptions& o) { return {o.args, o.env, o.cwd, o.tty}; }

void check_exec_options(const ExecOptions& o) {
  if (o.args.empty()) throw ConfigError("exec: no command given (skiffctl exec SANDBOX CONTAINER -- CMD ARGS...)");
  cli::check_exec_overrides(overrides_of(o));
}

nlohmann::json exec_process(const ExecOptions& o, const nlohmann::json& base) {
  return cli::apply_exec_overrides(base, overrides_of(o));
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
