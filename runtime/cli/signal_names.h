#pragma once
// Signals as `kill` takes them, as runc does: a number, or a name with or
// without "SIG" in any case ("TERM", "sigkill", "SIGRTMIN+3").
#include <string>

namespace skiff::cli {

// Throws ConfigError ("unknown signal \"FOO\"") for anything else.
int parse_signal(const std::string& text);

}  // namespace skiff::cli
