#include "runtime/cli/global_options.h"

#include <unistd.h>

#include "base/log.h"

namespace skiff::cli {

const runtime::RuntimeConfig& GlobalOptions::runtime_config() {
  if (!config_) {
    auto defaults = runtime::default_config(SKIFF_DEFAULT_KERNEL, SKIFF_DEFAULT_INITRD);
    config_ = std::make_shared<runtime::RuntimeConfig>(
        runtime::load_config(config.empty() ? "/etc/skiff/config.toml" : config, !config.empty(), defaults));
  }
  return *config_;
}

std::string GlobalOptions::state_root() { return root.empty() ? runtime_config().runtime.root : root; }

std::string GlobalOptions::log_level() { return debug ? "debug" : runtime_config().runtime.log_level; }
std::string GlobalOptions::resolved_log_format() { return log_format.empty() ? runtime_config().runtime.log_format : log_format; }

void GlobalOptions::set_up_logging(const std::string& container_id) {
  auto& logger = log::Logger::global();
  logger.set_text(resolved_log_format() == "text");
  logger.set_level(log::parse_level(log_level()));
  logger.set_sandbox(container_id);
  if (!log.empty()) logger.open_file(log);
}

}  // namespace skiff::cli
