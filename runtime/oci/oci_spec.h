#pragma once
// An OCI runtime-spec bundle (config.json, runtime-spec 1.0/1.1) on the host,
// and its conversion into the agent's api::Spec.
//
// Everything the conversion reads is checked here, on the host, so a bad
// bundle fails `skiff create` with one line naming config.json and the field
// instead of a half-made sandbox; the agent checks names and kernel limits
// again (agent/container_spec), since it trusts nothing the host sends.
// As with runc (Go's encoding/json), a JSON null reads as an absent field and
// unknown fields are ignored.
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "api/agent.capnp.h"

namespace skiff::runtime::oci {

struct Hook {
  std::string path;
  std::vector<std::string> args;
  std::vector<std::string> env;
  std::optional<int> timeout_s;
};

struct Hooks {
  std::vector<Hook> prestart, create_runtime, create_container, start_container, poststart, poststop;
};

struct Bundle {
  std::string dir;              // absolute bundle directory
  nlohmann::json config;        // config.json as parsed
  std::string rootfs;           // absolute host path of root.path (relative ones resolved against dir)
  bool rootfs_readonly = false;
  bool terminal = false;        // process.terminal
  Hooks hooks;
  std::map<std::string, std::string> annotations;
  std::optional<int64_t> memory_limit;   // linux.resources.memory.limit (bytes) if set and > 0
  std::optional<double> cpu_limit;       // linux.resources.cpu.quota/period in CPUs if both set and quota > 0
};

// Reads <dir>/config.json. Throws ConfigError with one line
// ("<dir>/config.json: <field>: <why>", <dir> made absolute) for: an
// unreadable file, invalid JSON (with the parser's byte position), a
// missing/empty ociVersion or one not 1.x, a missing process or empty
// process.args, a missing or relative process.cwd, a missing root.path, a
// rootfs directory that does not exist, a wrong JSON type in any converted
// field, an unknown namespace type, a mount without destination or with a
// relative one, a number that does not fit its capnp field, a hook path that
// is not absolute.
Bundle load_bundle(const std::string& dir);
// The same, from config.json's text (tests, fuzzing); still checks that the
// rootfs exists.
Bundle parse_bundle(const std::string& dir, std::string_view config_json);

// The guest's view of a host bind-mount source: given the host path and the
// read-only flag, the path inside the guest where the runtime shared it (bind
// sources go to the guest over virtio-fs). Called once per bind mount.
using BindSourceMapper = std::function<std::string(const std::string& host_source, bool read_only)>;

// Fills `out` from config.json: process, root (path = guest_rootfs, readonly),
// hostname, mounts (a bind mount, by type "bind" or a bind/rbind option, gets
// map_bind_source(source, it has "ro") as its source; type "bind" without a
// bind option gets "bind" added, as crun does; other mounts pass as they
// are), linux (namespaces with their `path` dropped: it names a host
// namespace the guest can't join; devices, resources, cgroupsPath as a
// relative path: "/a/b" -> "a/b", systemd's "system.slice:docker:abc" ->
// "system.slice/docker-abc.scope"; sysctl, seccomp, rootfsPropagation,
// maskedPaths, readonlyPaths, mountLabel) and annotations. Absent fields stay
// at the capnp defaults. The mapper sees bind sources as written; relative
// ones are relative to the bundle (the overload below resolves them).
// Throws ConfigError ("config.json: <field>: <why>") as parse_bundle does for
// the fields converted; a config parse_bundle accepted converts without one.
void to_agent_spec(const nlohmann::json& config, const std::string& guest_rootfs, const BindSourceMapper& map_bind_source,
                   api::Spec::Builder out);
// The same for a loaded bundle: relative bind sources are made absolute
// against bundle.dir before the mapper sees them (runc resolves them so).
void to_agent_spec(const Bundle& bundle, const std::string& guest_rootfs, const BindSourceMapper& map_bind_source,
                   api::Spec::Builder out);

// linux.cgroupsPath as the agent takes it: relative to the sandbox's cgroup,
// no leading "/", no ":" ("/a/b" -> "a/b"; "slice:prefix:name" -> the systemd
// unit's path, "system.slice:docker:abc" -> "system.slice/docker-abc.scope").
// Throws ConfigError ("<where>: <why>") for ".." or a malformed systemd form.
std::string guest_cgroups_path(const std::string& cgroups_path, const std::string& where = "linux.cgroupsPath");

// `skiff exec --process FILE` and the exec flags: an OCI "process" object
// alone (args and an absolute cwd required). Throws ConfigError
// ("process.<field>: <why>").
void to_agent_process(const nlohmann::json& process, api::ProcessSpec::Builder out);
// `skiff update --resources FILE`: an OCI linux.resources object alone.
// Throws ConfigError ("resources.<field>: <why>").
void to_agent_resources(const nlohmann::json& resources, api::Resources::Builder out);
// JSON given on the command line or in such a file: throws ConfigError
// ("<label>: invalid JSON at byte N: <why>") instead of nlohmann's exceptions;
// nesting deeper than 64 levels is refused too (nothing in the spec is that
// deep, and copying the tree recurses).
nlohmann::json parse_json_text(std::string_view text, const std::string& label);

// What `runc spec` (runc 1.1) writes: sh on a terminal, the default mounts,
// capabilities, masked and read-only paths, namespaces pid, network, ipc,
// uts and mount; root.path "rootfs".
nlohmann::json default_spec();
// What `skiff features` prints (the runtime-spec "features" document): what
// Skiff supports, so no "user" or "time" namespaces (the agent refuses them),
// seccomp, no AppArmor or SELinux, cgroup v2 only.
nlohmann::json features();

}  // namespace skiff::runtime::oci
