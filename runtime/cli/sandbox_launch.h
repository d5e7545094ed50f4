#pragma once
// `skiff create`'s part: start the sandbox process for one container,
// detached (its own session, reparented away from the CLI by a double fork,
// so it outlives the command and the CLI never leaves a zombie), and wait
// until it says the container is created or why it is not.
#include <string>

#include "runtime/cli/global_options.h"

namespace skiff::cli {

struct LaunchOptions {
  std::string id;
  std::string bundle;  // absolute
  std::string console_socket;
  std::string pid_file;
};

// Writes the state (status "creating"), starts the sandbox process, returns
// its pid once the container exists. Throws std::runtime_error with the
// sandbox's one line if it could not be created; nothing is left behind then.
int launch_sandbox(GlobalOptions& globals, const LaunchOptions& options);

}  // namespace skiff::cli
