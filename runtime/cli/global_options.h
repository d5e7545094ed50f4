#pragma once
// What every container command shares: runc's global flags, and where the
// runtime configuration and the state root come from.
#include <memory>
#include <string>

#include "runtime/config/runtime_config.h"

namespace skiff::cli {

struct GlobalOptions {
  std::string root;        // --root; empty: the config's runtime.root (/run/skiff)
  std::string log;         // --log FILE
  std::string log_format;  // --log-format text|json; empty: the config's runtime.log_format
  bool debug = false;      // --debug
  std::string config;      // --config; empty: /etc/skiff/config.toml if present

  // Loaded once, on first use (commands that need none never read the file).
  const runtime::RuntimeConfig& runtime_config();
  std::string state_root();
  // --debug, else the config's runtime.log_level / log_format.
  std::string log_level();
  std::string resolved_log_format();
  // Points the global logger at --log (or nowhere) for this CLI process.
  void set_up_logging(const std::string& container_id);

 private:
  std::shared_ptr<runtime::RuntimeConfig> config_;
};

}  // namespace skiff::cli
