#include "base/log.h"

#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <ctime>
#include <stdexcept>

#include "skiff_version.h"
#include "base/sys_error.h"

namespace skiff::log {

Level parse_level(std::string_view name) {
  if (name == "debug") return Level::Debug;
  if (name == "info") return Level::Info;
  if (name == "warn") return Level::Warn;
  if (name == "error") return Level::Error;
  throw std::invalid_argument("unknown log level \"" + std::string(name) + "\" (debug, info, warn, error)");
}

std::string_view to_string(Level l) {
  switch (l) {
    case Level::Debug: return "debug";
    case Level::Info: return "info";
    case Level::Warn: return "warn";
    case Level::Error: return "error";
  }
  return "info";
}

namespace {
std::string json_value(const Value& v) {
  struct Visitor {
    std::string operator()(const std::string& s) const { return json_quote(s); }
    std::string operator()(int64_t i) const { return std::to_string(i); }
    std::string operator()(uint64_t u) const { return std::to_string(u); }
    std::string operator()(double d) const {
      char buf[32];
      std::snprintf(buf, sizeof buf, "%.6g", d);
      return buf;
    }
    std::string operator()(bool b) const { return b ? "true" : "false"; }
  };
  return std::visit(Visitor{}, v);
}

std::string now_rfc3339() {
  auto now = std::chrono::system_clock::now();
  auto secs = std::chrono::system_clock::to_time_t(now);
  auto micros = std::chrono::duration_cast<std::chrono::microseconds>(now.time_since_epoch()).count() % 1000000;
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[96];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%06lldZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<long long>(micros));
  return buf;
}
}  // namespace

Logger& Logger::global() {
  static Logger logger;
  return logger;
}

void Logger::open_file(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644));
  if (!fd) throw_errno("open log " + path);
  std::lock_guard lock(mutex_);
  fd_ = fd.get();
  owned_ = std::move(fd);
}

void Logger::use_fd(int fd) {
  std::lock_guard lock(mutex_);
  owned_.reset();
  fd_ = fd;
}

void Logger::set_sandbox(std::string id) {
  std::lock_guard lock(mutex_);
  sandbox_ = std::move(id);
}

std::string Logger::format(Level level, std::string_view component, std::string_view msg, const Fields& fields,
                           std::string_view container, std::string_view time) const {
  if (text_) {
    std::string line = std::string(time) + " " + std::string(to_string(level)) + " " + std::string(component);
    if (!sandbox_.empty()) line += " sandbox=" + sandbox_;
    if (!container.empty()) line += " container=" + std::string(container);
    line += ": " + std::string(msg);
    for (const auto& [key, value] : fields) {
      const auto* text = std::get_if<std::string>(&value);
      line += " " + key + "=" + (text ? *text : json_value(value));
    }
    return line + "\n";
  }
  std::string line = "{\"time\":" + json_quote(time) + ",\"level\":" + json_quote(to_string(level)) +
                     ",\"component\":" + json_quote(component) + ",\"sandbox\":" + json_quote(sandbox_) +
                     ",\"container\":" + json_quote(container) + ",\"version\":" + json_quote(SKIFF_VERSION) +
                     ",\"commit\":" + json_quote(SKIFF_COMMIT) + ",\"msg\":" + json_quote(msg);
  for (const auto& [key, value] : fields) line += "," + json_quote(key) + ":" + json_value(value);
  return line + "}\n";
}

void Logger::write(Level level, std::string_view component, std::string_view msg, const Fields& fields,
                   std::string_view container) {
  std::lock_guard lock(mutex_);
  if (fd_ < 0 || level < level_) return;
  std::string line = format(level, component, msg, fields, container, now_rfc3339());
  // One write per line so concurrent writers (and O_APPEND files) never interleave.
  size_t done = 0;
  while (done < line.size()) {
    ssize_t n = ::write(fd_, line.data() + done, line.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;  // a log that can't be written must not take the VMM down
    done += static_cast<size_t>(n);
  }
}

}  // namespace skiff::log
