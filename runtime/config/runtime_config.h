#pragma once
// The runtime's one TOML file (default /etc/skiff/config.toml, --config
// overrides; docs/config.toml documents every field) and the per-sandbox
// sizing it drives, as Kata's configuration.toml does.
//
// A file only overrides: a field it leaves out keeps the default it was
// parsed over. Anything it says that Skiff does not know (a table, a key, a
// type, a value out of range) is a ConfigError of one line,
//   /etc/skiff/config.toml:3:17: hypervisor.default_vcpus: must be 1 to 255, not 0
// so that a typo never passes silently.
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/config_error.h"

namespace skiff::runtime {

inline constexpr const char* kDefaultConfigPath = "/etc/skiff/config.toml";
inline constexpr const char* kBuiltInDefaults = "built-in defaults";

struct HypervisorConfig {
  std::string kernel;              // path; default: the build's guest kernel (given to default_config)
  std::string initrd;              // path; default: the build's initramfs
  std::string kernel_params;       // appended to the VMM's own command line; default ""
  uint32_t default_vcpus = 1;      // 1..255
  uint32_t default_maxvcpus = 0;   // 0: = the host's CPUs count capped at 255; else >= default_vcpus
  uint64_t default_memory_mib = 256;   // 64..(host RAM in MiB)
  // Most memory a running sandbox can be resized to (virtio-mem); 0: no
  // memory resize, and no virtio-mem device. Else default_memory_mib..host RAM.
  uint64_t default_maxmemory_mib = 0;
  bool hugepages = false;
  std::string shared_fs_cache = "auto";  // none | auto | always
  uint64_t dax_mib = 0;            // 0 or a power of two, 2..65536 (virtio-fs DAX window)
  uint32_t fs_workers = 4;         // 1..64
  uint32_t boot_timeout_ms = 60000;  // 1000..600000: how long to wait for the agent after start
  bool operator==(const HypervisorConfig&) const = default;
};

struct AgentConfig {
  uint32_t port = 1024;            // vsock port the guest agent listens on, 1..0x7fffffff
  uint32_t grace_ms = 10000;       // skiff.agent_grace_ms for the guest, 0..86400000
  bool debug_console = false;      // the guest kernel's boot messages in full in <root>/<id>/console.log (no "quiet")
  bool operator==(const AgentConfig&) const = default;
};

struct RuntimeSection {
  std::string root = "/run/skiff";  // state root (the CLI's --root overrides it); absolute
  std::string log_level = "info";   // debug|info|warn|error
  std::string log_format = "json";  // json|text
  bool static_sandbox_resource_mgmt = false;  // true: no sizing from the containers' limits
  bool operator==(const RuntimeSection&) const = default;
};

struct RuntimeConfig {
  HypervisorConfig hypervisor;
  AgentConfig agent;
  RuntimeSection runtime;
  std::string source;  // the file it came from, or "built-in defaults"
  bool operator==(const RuntimeConfig&) const = default;
};

// What the host has, which bounds memory and vCPUs. Tests pass their own.
struct HostResources {
  uint32_t cpus = 1;
  uint64_t memory_mib = 0;
};
// Online CPUs and physical RAM of this machine.
HostResources host_resources();

RuntimeConfig default_config(const std::string& kernel, const std::string& initrd);

// toml: the file's text; source_name: for messages. Unknown tables or keys
// are errors; so are wrong types, out-of-range values, bad enum strings. A
// TOML syntax error gives the parser's own description with line:col.
// Throws only ConfigError.
RuntimeConfig parse_config(std::string_view toml, const std::string& source_name, const RuntimeConfig& defaults);
RuntimeConfig parse_config(std::string_view toml, const std::string& source_name, const RuntimeConfig& defaults,
                           const HostResources& host);

// Reads `path`; a missing file given explicitly (explicit_path=true) is a
// ConfigError, a missing default file is not: the defaults come back with
// source "built-in defaults". Other read failures are std::system_error.
RuntimeConfig load_config(const std::string& path, bool explicit_path, const RuntimeConfig& defaults);

// Per-sandbox sizing, as Kata does. Annotations may override:
inline constexpr const char* kVcpusAnnotation = "io.skiff.vcpus";                 // 1..max_vcpus (<= 255)
inline constexpr const char* kMemoryAnnotation = "io.skiff.memory_mib";           // 64..host RAM
inline constexpr const char* kKernelParamsAnnotation = "io.skiff.kernel_params";  // appended, one line
// Bad annotation values are ConfigError naming the annotation.
// Unless static_sandbox_resource_mgmt: vcpus = default_vcpus + sum over
// containers of ceil(cpu_limit), memory = default_memory_mib + sum of memory
// limits in MiB (rounded up); capped at max_vcpus / host RAM, with a
// ConfigError if a container alone asks for more than the host has. Limits
// of zero or less are no limit. Annotations win over sizing.
struct ContainerLimits {
  std::optional<double> cpus;
  std::optional<int64_t> memory_bytes;
};
struct SandboxSizing {
  uint32_t vcpus;
  uint32_t max_vcpus;  // default_maxvcpus, or the host's CPUs capped at 255; never below default_vcpus
  uint64_t memory_mib;
  std::string extra_kernel_params;  // kernel_params, then the annotation's, space-separated
  // default_maxmemory_mib, never below memory_mib, less 1 MiB when needed so
  // that the room above memory_mib is whole 2 MiB blocks (virtio-mem's);
  // 0 when there is no room (default_maxmemory_mib 0, or memory_mib at or
  // above it): the VM gets no virtio-mem device.
  uint64_t max_memory_mib = 0;
  bool operator==(const SandboxSizing&) const = default;
};
SandboxSizing size_sandbox(const RuntimeConfig& config, const std::map<std::string, std::string>& annotations,
                           const std::vector<ContainerLimits>& containers);
SandboxSizing size_sandbox(const RuntimeConfig& config, const std::map<std::string, std::string>& annotations,
                           const std::vector<ContainerLimits>& containers, const HostResources& host);

}  // namespace skiff::runtime
