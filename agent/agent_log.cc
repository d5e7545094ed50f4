#include "agent/agent_log.h"

#include <time.h>
#include <unistd.h>

#include <cstdio>

#include "skiff_version.h"

namespace skiff::agent {
namespace {
std::string& sandbox_name() {
  static std::string name;
  return name;
}
}  // namespace

void set_log_sandbox(std::string sandbox) { sandbox_name() = std::move(sandbox); }

void log_line(std::string_view level, std::string_view message, std::initializer_list<LogField> fields) {
  timespec ts{};
  ::clock_gettime(CLOCK_REALTIME, &ts);
  char time_buf[32];
  std::snprintf(time_buf, sizeof time_buf, "%lld.%06ld", static_cast<long long>(ts.tv_sec), ts.tv_nsec / 1000);
  std::string line = "{\"time\":" + std::string(time_buf) + ",\"level\":" + json_quote(level) +
                     ",\"component\":\"agent\",\"msg\":" + json_quote(message);
  if (!sandbox_name().empty()) line += ",\"sandbox\":" + json_quote(sandbox_name());
  for (const auto& [key, value] : fields) line += "," + json_quote(key) + ":" + json_quote(value);
  line += ",\"version\":\"" SKIFF_VERSION "\",\"commit\":\"" SKIFF_COMMIT "\"}\n";
  // One write per line: lines from the agent and its children don't interleave.
  const char* p = line.data();
  size_t left = line.size();
  while (left > 0) {
    ssize_t n = ::write(STDERR_FILENO, p, left);
    if (n <= 0) break;
    p += n;
    left -= static_cast<size_t>(n);
  }
}

}  // namespace skiff::agent
