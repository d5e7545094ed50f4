#pragma once
// skiffctl's command line: list, status, exec, kill, pause, resume, stats,
// events, ping and raw, each one or more control API calls to a sandbox
// process found under --root (default /run/skiff).
namespace skiff::runtime::ctl {

// Parses and runs one command line (argv[0] is the program). Returns the
// exit status: the command's (exec: the process's), 1 after an error, 2 after
// a usage error, each printed as one line "skiffctl: error: ..." on stderr.
int run_skiffctl(int argc, const char* const* argv);

}  // namespace skiff::runtime::ctl
