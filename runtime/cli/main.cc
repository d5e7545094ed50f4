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
  int status = 0;
  skiff::cli::add_boot_command(app, status);
  skiff::cli::add_check_command(app, status);
  skiff::cli::add_version_command(app, status);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "skiff: error: %s\n", e.what());
    return 1;
  }
  return status;
}
