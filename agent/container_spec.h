#pragma once
// The container spec the agent runs: what an api::Spec (OCI-shaped, from
// the host) says, checked field by field and turned into the numbers the
// kernel takes (capability bits, RLIMIT_* resources, mount flags, CLONE_*
// flags). Everything is checked before anything is set up, so a bad spec
// fails with one SpecError that names the field and leaves nothing behind.
//
// Honoured here: process (args, env, cwd, terminal and its size, user with
// additional groups or a username, umask, the five capability sets,
// rlimits, no_new_privileges, oom_score_adj), root, hostname, mounts (flags,
// propagation, data), namespaces (new or joined by path), devices, cgroup v2
// resources, cgroupsPath, sysctl, seccomp, rootfsPropagation, masked and
// readonly paths. Ignored, and reported in `ignored` for the agent's log:
// apparmorProfile, selinuxLabel and mountLabel (the guest kernel has neither
// LSM), annotations (they are the runtime's). The device cgroup rules are
// enforced by a BPF program (device_filter.h).
#include <sched.h>
#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "api/agent.capnp.h"

namespace skiff::agent {

class SpecError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct CapabilitySets {
  uint64_t bounding = 0, effective = 0, inheritable = 0, permitted = 0, ambient = 0;
};

struct ResourceLimit {
  int resource;  // RLIMIT_*
  uint64_t soft, hard;
};

// mount(2)'s arguments for one spec mount, options already split: flags,
// then a separate propagation change, then the data string (options mount(2)
// has no flag for: mode=, size=, ptmxmode=, ...).
struct MountSpec {
  std::string destination, type, source;
  unsigned long flags = 0;
  unsigned long propagation = 0;  // MS_PRIVATE etc., with MS_REC for the r- forms
  bool bind = false, recursive_bind = false;
  std::string data;
};

struct NamespaceSpec {
  int clone_flag;    // CLONE_NEWNS etc.
  std::string path;  // join this one; empty: a new one
};

struct DeviceNode {
  char type;  // 'c', 'b', 'u' (an unbuffered char device: 'c') or 'p'
  std::string path;
  int64_t major = 0, minor = 0;
  std::optional<mode_t> file_mode;
  uid_t uid = 0;
  gid_t gid = 0;
};

struct DeviceRuleSpec {
  bool allow;
  char type;  // 'a', 'c' or 'b'
  int64_t major, minor;  // -1: any
  std::string access;    // some of "rwm"
};

struct CgroupResources {
  std::vector<DeviceRuleSpec> devices;
  int64_t memory_limit = 0, memory_reservation = 0, memory_swap = 0, memory_high = 0;
  uint64_t cpu_shares = 0;
  int64_t cpu_quota = 0;
  uint64_t cpu_period = 0;
  std::string cpus, mems;
  int64_t pids_limit = 0;
  uint16_t io_weight = 0;
  std::vector<std::pair<std::string, std::string>> unified;
};

struct SeccompRule {
  std::vector<int> syscalls;  // resolved for the native architecture
  uint32_t action;            // SCMP_ACT_*
  struct Arg {
    unsigned index;
    int op;  // enum scmp_compare
    uint64_t value, value_two;
  };
  std::vector<Arg> args;
};

struct SeccompSpec {
  uint32_t default_action;
  std::vector<uint32_t> architectures;  // SCMP_ARCH_*
  std::vector<std::string> flags;
  std::vector<SeccompRule> rules;
};

struct ProcessConfig {
  std::vector<std::string> args, env;
  std::string cwd = "/";
  bool terminal = false;
  uint16_t rows = 0, cols = 0;
  uid_t uid = 0;
  gid_t gid = 0;
  std::vector<gid_t> additional_gids;
  std::string username;  // resolved in the container's /etc/passwd at set-up
  std::optional<mode_t> umask;
  CapabilitySets caps;
  std::vector<ResourceLimit> rlimits;
  bool no_new_privileges = false;
  std::optional<int> oom_score_adj;
};

struct ContainerConfig {
  ProcessConfig process;
  std::string root;
  bool root_readonly = false;
  std::string hostname;
  std::vector<MountSpec> mounts;
  std::vector<NamespaceSpec> namespaces;
  std::vector<DeviceNode> devices;
  CgroupResources resources;
  std::string cgroups_path;  // relative to the sandbox's cgroup
  std::vector<std::pair<std::string, std::string>> sysctl;
  std::optional<SeccompSpec> seccomp;
  unsigned long rootfs_propagation = 0;  // 0: MS_REC|MS_SLAVE, as runc
  std::vector<std::string> masked_paths, readonly_paths;
  std::vector<std::string> ignored;  // "process.apparmorProfile" etc., for a log line

  bool has_namespace(int clone_flag) const;
};

// Throws SpecError ("process.cwd: must be absolute, not \"tmp\"").
ContainerConfig container_config(api::Spec::Reader spec);
ProcessConfig process_config(api::ProcessSpec::Reader process, const std::string& where = "process");
CgroupResources cgroup_resources(api::Resources::Reader resources, const std::string& where = "linux.resources");

// One mount's options (mount(8) names) into flags, propagation and data.
// Throws SpecError naming `where` for an option that contradicts itself.
MountSpec parse_mount_options(const std::vector<std::string>& options, const std::string& where);

}  // namespace skiff::agent
