#pragma once
// Structured logs: one JSON object a line, each with time, level, component,
// sandbox, container, version and commit, then the message and its fields.
#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "api/json_text.h"
#include "base/unique_fd.h"

namespace skiff::log {

enum class Level { Debug = 0, Info = 1, Warn = 2, Error = 3 };
// Throws std::invalid_argument for anything but debug, info, warn, error.
Level parse_level(std::string_view name);
std::string_view to_string(Level);

using Value = std::variant<std::string, int64_t, uint64_t, double, bool>;
using Fields = std::vector<std::pair<std::string, Value>>;

using skiff::json_quote;  // api/json_text.h: shared with the guest agent's log

class Logger {
 public:
  // Disabled (writes nothing) until a destination is set.
  static Logger& global();

  // Appends to `path`, creating it; throws std::system_error.
  void open_file(const std::string& path);
  // Borrows `fd` (e.g. stderr or containerd's log pipe).
  void use_fd(int fd);
  void set_level(Level level) { level_ = level; }
  void set_sandbox(std::string id);
  // Text lines for people (runc's --log-format text) instead of JSON:
  //   <time> <level> <component> sandbox=<id> container=<id>: <msg> key=value...
  void set_text(bool text) { text_ = text; }
  bool enabled(Level level) const { return fd_ >= 0 && level >= level_; }

  void write(Level level, std::string_view component, std::string_view msg, const Fields& fields = {},
             std::string_view container = {});
  // The line write() would emit, without the time: for tests.
  std::string format(Level level, std::string_view component, std::string_view msg, const Fields& fields,
                     std::string_view container, std::string_view time) const;

 private:
  std::mutex mutex_;
  UniqueFd owned_;
  int fd_ = -1;
  Level level_ = Level::Info;
  bool text_ = false;
  std::string sandbox_;
};

inline void info(std::string_view component, std::string_view msg, const Fields& fields = {}) {
  if (Logger::global().enabled(Level::Info)) Logger::global().write(Level::Info, component, msg, fields);
}
// A line about one container (the "container" key of the line).
inline void container_info(std::string_view component, std::string_view container, std::string_view msg,
                           const Fields& fields = {}) {
  if (Logger::global().enabled(Level::Info)) Logger::global().write(Level::Info, component, msg, fields, container);
}
inline void container_warn(std::string_view component, std::string_view container, std::string_view msg,
                           const Fields& fields = {}) {
  if (Logger::global().enabled(Level::Warn)) Logger::global().write(Level::Warn, component, msg, fields, container);
}
inline void warn(std::string_view component, std::string_view msg, const Fields& fields = {}) {
  if (Logger::global().enabled(Level::Warn)) Logger::global().write(Level::Warn, component, msg, fields);
}
inline void error(std::string_view component, std::string_view msg, const Fields& fields = {}) {
  if (Logger::global().enabled(Level::Error)) Logger::global().write(Level::Error, component, msg, fields);
}
inline void debug(std::string_view component, std::string_view msg, const Fields& fields = {}) {
  if (Logger::global().enabled(Level::Debug)) Logger::global().write(Level::Debug, component, msg, fields);
}

}  // namespace skiff::log
