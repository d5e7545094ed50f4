// libFuzzer target for the runtime's TOML config (runtime/config/runtime_config):
// the text of /etc/skiff/config.toml or a --config file, as an operator wrote it.
//
// Input: the file's bytes, whole. Seeds in fuzz/corpus/runtime_config/ are
// config files: docs/config.toml, small valid ones, and malformed ones
// (syntax, unknown keys, wrong types, out of range).
//
// Checked beyond "no crash / no sanitizer report": a file is either refused
// with a ConfigError of one line that starts with "<file>:<line>:<col>: ",
// or accepted with every field within its documented range, and then sizes
// a sandbox without error. Any other exception escapes and aborts.
#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "runtime/config/runtime_config.h"

namespace {

using skiff::runtime::RuntimeConfig;

const skiff::runtime::HostResources kHost{.cpus = 8, .memory_mib = 16384};

[[noreturn]] void fail(const char* why, const std::string& detail = {}) {
  std::fprintf(stderr, "runtime_config_fuzz: %s %s\n", why, detail.c_str());
  std::abort();
}

void check_refusal(const std::string& what) {
  constexpr std::string_view kFile = "fuzz.toml:";
  if (what.rfind(kFile, 0) != 0) fail("the refusal does not name the file:", what);
  size_t i = kFile.size();
  for (int part = 0; part < 2; ++part) {  // line, then column
    const size_t start = i;
    while (i < what.size() && what[i] >= '0' && what[i] <= '9') ++i;
    if (i == start || i >= what.size() || what[i] != ':') fail("the refusal has no line:col:", what);
    ++i;
  }
  if (i + 1 >= what.size() || what[i] != ' ') fail("the refusal has no reason:", what);
  for (char c : what)
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) fail("the refusal has a control byte:", what);
}

void check_accepted(const RuntimeConfig& c) {
  const auto& h = c.hypervisor;
  if (h.kernel.empty() || h.kernel[0] != '/' || h.initrd.empty() || h.initrd[0] != '/')
    fail("accepted a relative kernel or initrd");
  if (h.default_vcpus < 1 || h.default_vcpus > 255) fail("accepted default_vcpus out of range");
  if (h.default_maxvcpus > 255 || (h.default_maxvcpus != 0 && h.default_maxvcpus < h.default_vcpus))
    fail("accepted default_maxvcpus out of range");
  if (h.default_memory_mib < 64 || h.default_memory_mib > kHost.memory_mib) fail("accepted memory out of range");
  if (h.shared_fs_cache != "none" && h.shared_fs_cache != "auto" && h.shared_fs_cache != "always")
    fail("accepted a cache mode:", h.shared_fs_cache);
  if (h.dax_mib != 0 && (h.dax_mib < 2 || h.dax_mib > 65536 || !std::has_single_bit(h.dax_mib)))
    fail("accepted a DAX size");
  if (h.fs_workers < 1 || h.fs_workers > 64) fail("accepted fs_workers out of range");
  if (h.boot_timeout_ms < 1000 || h.boot_timeout_ms > 600000) fail("accepted boot_timeout_ms out of range");
  if (c.agent.port < 1 || c.agent.port > 0x7fffffff) fail("accepted an agent port out of range");
  if (c.agent.grace_ms > 86400000) fail("accepted grace_ms out of range");
  if (c.runtime.root.empty() || c.runtime.root[0] != '/') fail("accepted a relative root");
  const auto& level = c.runtime.log_level;
  if (level != "debug" && level != "info" && level != "warn" && level != "error") fail("accepted a log level:", level);
  if (c.runtime.log_format != "json" && c.runtime.log_format != "text") fail("accepted a log format");
  for (char ch : h.kernel_params + h.kernel + h.initrd + c.runtime.root)
    if (static_cast<unsigned char>(ch) < 0x20 || ch == 0x7f) fail("accepted a control byte in a string");

  try {
    const auto s = skiff::runtime::size_sandbox(c, {}, {{.cpus = 1.5, .memory_bytes = 1 << 20}}, kHost);
    if (s.vcpus < 1 || s.vcpus > s.max_vcpus || s.max_vcpus > 255) fail("sized vCPUs out of range");
    if (s.memory_mib < h.default_memory_mib) fail("sized memory below the default");
  } catch (const skiff::ConfigError& e) {
    fail("an accepted config does not size a sandbox:", e.what());
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > (1u << 20)) return 0;  // load_config refuses bigger files before parsing
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  static const RuntimeConfig defaults =
      skiff::runtime::default_config("/usr/share/skiff/vmlinux", "/usr/share/skiff/initramfs.cpio.gz");
  try {
    check_accepted(skiff::runtime::parse_config(text, "fuzz.toml", defaults, kHost));
  } catch (const skiff::ConfigError& e) {
    check_refusal(e.what());
  }
  return 0;
}
