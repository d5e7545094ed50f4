#pragma once
// The agent's log: one JSON object per line on stderr, which is the guest's
// console when the agent is PID 1, so the host reads the agent's log with the
// console. Every line names the component, the agent's version and commit,
// and the sandbox once Sandbox.setup has named it.
#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>

#include "api/json_text.h"

namespace skiff::agent {

using LogField = std::pair<std::string_view, std::string>;

void log_line(std::string_view level, std::string_view message, std::initializer_list<LogField> fields = {});
inline void log_info(std::string_view message, std::initializer_list<LogField> fields = {}) {
  log_line("info", message, fields);
}
inline void log_error(std::string_view message, std::initializer_list<LogField> fields = {}) {
  log_line("error", message, fields);
}
void set_log_sandbox(std::string sandbox);


}  // namespace skiff::agent
