#pragma once
#include <CLI/CLI.hpp>

namespace skiff::cli {

// Each adds its subcommand to `app`; the callback runs the command and
// returns the process exit status through `status`.
void add_boot_command(CLI::App& app, int& status);
void add_check_command(CLI::App& app, int& status);
void add_version_command(CLI::App& app, int& status);

}  // namespace skiff::cli
