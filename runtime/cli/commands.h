#pragma once
#include <CLI/CLI.hpp>

#include <string>
#include <vector>

namespace skiff::cli {

// Each adds its subcommand to `app`; the callback runs the command and
// returns the process exit status through `status`.
void add_boot_command(CLI::App& app, int& status);
void add_check_command(CLI::App& app, int& status);
struct GlobalOptions;
// runc's commands (container_commands.cc) and spec, features, version,
// sandbox-run (spec_commands.cc).
void add_container_commands(CLI::App& app, GlobalOptions& globals, int& status);
void add_spec_commands(CLI::App& app, GlobalOptions& globals, int& status);
// argv with "--" put after `exec`'s container id: the command that follows
// keeps its own flags (`skiff exec ID sh -c ...`), as runc parses it.
std::vector<std::string> exec_separator(std::vector<std::string> args);

}  // namespace skiff::cli
