#pragma once
// One container's cgroup v2 directory: created under the sandbox's, the
// spec's resources written into it in the kernel's terms, frozen and thawed
// (Container.pause/resume), its processes listed and killed, its usage read
// (Container.stats), removed with the container.
//
// Resources translate as runc does for cgroup v2: cpu.shares to cpu.weight
// (1 + (shares - 2) * 9999 / 262142), OCI's memory+swap to memory.swap.max
// (swap - limit), -1 to "max". A file of a controller the cgroup lacks is a
// clear error naming the resource, not silence.
#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "agent/container_spec.h"

namespace skiff::agent {

class CgroupError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct CgroupStats {
  uint64_t cpu_usage_usec = 0, cpu_user_usec = 0, cpu_system_usec = 0;
  uint64_t memory_current = 0, memory_max = 0, memory_oom_kills = 0;
  uint64_t pids_current = 0;
  uint64_t io_read_bytes = 0, io_write_bytes = 0;
};

class Cgroup {
 public:
  // Makes `parent`/`path` (path relative, no ".."), enabling in `parent`'s
  // cgroup.subtree_control the controllers that `resources` needs.
  static Cgroup create(const std::string& parent, const std::string& path, const CgroupResources& resources);
  // An existing directory, for tests and for a restarted agent.
  explicit Cgroup(std::string dir) : dir_(std::move(dir)) {}

  const std::string& dir() const { return dir_; }
  void apply(const CgroupResources& resources) const;
  void freeze(bool frozen, std::chrono::milliseconds timeout = std::chrono::seconds(5)) const;
  bool frozen() const;
  std::vector<pid_t> procs() const;
  // SIGKILL to every process in it (cgroup.kill where the kernel has it).
  void kill_all() const;
  CgroupStats stats() const;
  // memory.events' oom_kill alone (what the OOM watch reads on each change).
  uint64_t oom_kills() const;
  // rmdir, once its processes are gone (waits up to `timeout` for them).
  void remove(std::chrono::milliseconds timeout = std::chrono::seconds(5)) const;

 private:
  void write(const std::string& file, const std::string& value, const std::string& what) const;
  std::string dir_;
};

// cpu.shares (cgroup v1, what OCI has) as cpu.weight.
uint64_t cpu_weight_from_shares(uint64_t shares);

}  // namespace skiff::agent
