// skiff: the Skiff command line. For now it boots a VM without an API
// (`skiff boot`, like `firecracker --no-api` or `lkvm run`) and checks a host
// (`skiff check`).
#include <csignal>
#include <cstdio>
#include <exception>

#include "runtime/cli/commands.h"

int main(int argc, char** argv) {
  // A console reader that went away must not kill the VMM mid-write.
  std::signal(SIGPIPE, SIG_IGN);
  CLI::App app{"Skiff: containers in KVM microVMs, with the VMM in the runtime process", "skiff"};
  app.require_subcommand(1);
  // Bad input gets one line, like every other error of ours.
  app.failure_message([](const CLI::App*, const CLI::Error& e) {
    return std::string("skiff: error: ") + e.what() + " (see --help)\n";
  });
  int status = 0;
  skiff::cli::add_boot_command(app, status);
  skiff::cli::add_check_command(app, status);
  skiff::cli::add_version_command(app, status);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // --help and --version are "errors" with status 0; real usage errors get 2.
    return app.exit(e) == 0 ? 0 : 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "skiff: error: %s\n", e.what());
    return 1;
  }
  return status;
}
