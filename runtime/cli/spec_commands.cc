// `skiff spec`, `skiff features`, `skiff version` and the hidden
// `skiff sandbox-run` that `create` starts.
#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>

#include "base/config_error.h"
#include "runtime/cli/commands.h"
#include "runtime/cli/global_options.h"
#include "runtime/oci/oci_spec.h"
#include "runtime/sandbox/sandbox_process.h"
#include "runtime/state/state_store.h"
#include "skiff_version.h"

namespace skiff::cli {

void add_spec_commands(CLI::App& app, GlobalOptions& g, int& status) {
  {
    auto bundle = std::make_shared<std::string>(".");
    auto* cmd = app.add_subcommand("spec", "Write a default config.json (runc's) into the bundle directory");
    cmd->add_option("--bundle,-b", *bundle, "bundle directory")->capture_default_str();
    cmd->callback([&status, bundle] {
      const std::string path = *bundle + "/config.json";
      if (std::filesystem::exists(path)) throw ConfigError(path + " exists: remove it first");
      runtime::write_file_atomic(path, runtime::oci::default_spec().dump(2) + "\n", 0644);
      status = 0;
    });
  }
  {
    auto* cmd = app.add_subcommand("features", "Print what this runtime supports (the OCI features document)");
    cmd->callback([&status] {
      std::printf("%s\n", runtime::oci::features().dump(2).c_str());
      status = 0;
    });
  }
  {
    auto* cmd = app.add_subcommand("version", "Print the version, commit and OCI runtime-spec version");
    cmd->callback([&status] {
      std::printf("skiff version %s\ncommit: %s\nspec: 1.0.2\n", SKIFF_VERSION, SKIFF_COMMIT);
      status = 0;
    });
  }
  {
    auto o = std::make_shared<runtime::SandboxProcessOptions>();
    auto* cmd = app.add_subcommand("sandbox-run", "");  // started by create, not by people
    cmd->group("");
    cmd->add_option("--bundle", o->bundle)->required();
    cmd->add_option("--console-socket", o->console_socket);
    cmd->add_option("--ready-fd", o->ready_fd);
    cmd->add_option("id", o->id)->required();
    cmd->callback([&g, &status, o] {
      o->root = g.state_root();
      o->config_path = g.config;
      o->config_explicit = !g.config.empty();
      o->log_path = g.log;
      o->log_level = g.log_level();
      o->log_text = g.resolved_log_format() == "text";
      o->default_kernel = SKIFF_DEFAULT_KERNEL;
      o->default_initrd = SKIFF_DEFAULT_INITRD;
      status = runtime::run_sandbox_process(*o);
    });
  }
}

}  // namespace skiff::cli
