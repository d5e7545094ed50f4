#include "runtime/cli/signal_names.h"

#include <algorithm>
#include <cctype>
#include <csignal>
#include <utility>

#include "base/config_error.h"

namespace skiff::cli {
namespace {

constexpr std::pair<const char*, int> kSignals[] = {
    {"HUP", SIGHUP},   {"INT", SIGINT},     {"QUIT", SIGQUIT},     {"ILL", SIGILL},   {"TRAP", SIGTRAP},   {"ABRT", SIGABRT},
    {"IOT", SIGIOT},   {"BUS", SIGBUS},     {"FPE", SIGFPE},       {"KILL", SIGKILL}, {"USR1", SIGUSR1},   {"SEGV", SIGSEGV},
    {"USR2", SIGUSR2}, {"PIPE", SIGPIPE},   {"ALRM", SIGALRM},     {"TERM", SIGTERM}, {"STKFLT", SIGSTKFLT}, {"CHLD", SIGCHLD},
    {"CONT", SIGCONT}, {"STOP", SIGSTOP},   {"TSTP", SIGTSTP},     {"TTIN", SIGTTIN}, {"TTOU", SIGTTOU},   {"URG", SIGURG},
    {"XCPU", SIGXCPU}, {"XFSZ", SIGXFSZ},   {"VTALRM", SIGVTALRM}, {"PROF", SIGPROF}, {"WINCH", SIGWINCH}, {"IO", SIGIO},
    {"POLL", SIGPOLL}, {"PWR", SIGPWR},     {"SYS", SIGSYS},
};

// Digits only, within [lo, hi]; -1 otherwise.
int number(const std::string& s, int lo, int hi) {
  if (s.empty() || s.size() > 3 || !std::all_of(s.begin(), s.end(), [](unsigned char c) { return std::isdigit(c); })) return -1;
  int v = std::stoi(s);
  return v >= lo && v <= hi ? v : -1;
}

}  // namespace

int parse_signal(const std::string& text) {
  if (int n = number(text, 1, SIGRTMAX); n > 0) return n;
  std::string name = text;
  std::transform(name.begin(), name.end(), name.begin(), [](unsigned char c) { return std::toupper(c); });
  if (name.starts_with("SIG")) name = name.substr(3);
  for (const auto& [n, v] : kSignals)
    if (name == n) return v;
  const int span = SIGRTMAX - SIGRTMIN;
  if (name == "RTMIN") return SIGRTMIN;
  if (name == "RTMAX") return SIGRTMAX;
  if (name.starts_with("RTMIN+"))
    if (int k = number(name.substr(6), 1, span); k > 0) return SIGRTMIN + k;
  if (name.starts_with("RTMAX-"))
    if (int k = number(name.substr(6), 1, span); k > 0) return SIGRTMAX - k;
  throw ConfigError("unknown signal \"" + text + "\"");
}

}  // namespace skiff::cli
