// skiff: the Skiff command line. runc's commands and flags (create, start,
// run, state, kill, delete, exec, list, pause, resume, ps, events, update,
// spec, features, version; --root, --log, --log-format, --debug), each later
// one a control API call to the container's sandbox process; plus `skiff
// boot` (a VM without an API, like `firecracker --no-api`) and `skiff check`.
#include <algorithm>
#include <csignal>
#include <cstdio>
#include <exception>

#include "runtime/cli/commands.h"
#include "runtime/cli/global_options.h"

int main(int argc, char** argv) {
  // A console reader that went away must not kill the VMM mid-write.
  std::signal(SIGPIPE, SIG_IGN);
  CLI::App app{"Skiff: containers in KVM microVMs, with the VMM in the runtime process", "skiff"};
  app.require_subcommand(1);
  // Bad input gets one line, like every other error of ours.
  app.failure_message([](const CLI::App*, const CLI::Error& e) {
    return std::string("skiff: error: ") + e.what() + " (see --help)\n";
  });
  skiff::cli::GlobalOptions globals;
  app.add_option("--root", globals.root, "state directory (default: the config's runtime.root, /run/skiff)");
  app.add_option("--log", globals.log, "write logs to this file (default: none for the CLI; <root>/<id>/sandbox.log for a sandbox)");
  app.add_option("--log-format", globals.log_format, "text or json (default: the config's runtime.log_format, json)")
      ->check(CLI::IsMember({"text", "json"}));
  app.add_flag("--debug", globals.debug, "debug-level logs");
  app.add_option("--config", globals.config, "runtime configuration (TOML; default /etc/skiff/config.toml if present)");
  // Global flags after the command too (`skiff state --root R id`).
  app.fallthrough();
  int status = 0;
  skiff::cli::add_boot_command(app, status);
  skiff::cli::add_check_command(app, status);
  skiff::cli::add_container_commands(app, globals, status);
  skiff::cli::add_spec_commands(app, globals, status);
  try {
    auto args = skiff::cli::exec_separator(std::vector<std::string>(argv, argv + argc));
    args.erase(args.begin());  // CLI11 takes the arguments without the program name, last first
    std::reverse(args.begin(), args.end());
    app.parse(args);
  } catch (const CLI::ParseError& e) {
    // --help and --version are "errors" with status 0; real usage errors get 2.
    return app.exit(e) == 0 ? 0 : 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "skiff: error: %s\n", e.what());
    return 1;
  }
  return status;
}
