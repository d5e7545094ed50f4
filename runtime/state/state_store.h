#pragma once
// The runtime's state directory, as runc's: one directory per container under
// a root (default /run/skiff), <root>/<id>/state.json, written by the sandbox
// process (which outlives the CLI) and read by every later CLI command.
//
//   <root>/<id>/state.json   the container's state, replaced atomically
//   <root>/<id>.lock         the per-container command lock (flock), beside
//                            the directory so it exists before and after it
//
// A crashed sandbox leaves its state behind; readers tell by the sandbox
// process's pid and kernel start time (a reused pid is not the same process)
// and report such a container as stopped.
#include <sys/types.h>

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/unique_fd.h"

namespace skiff::runtime {

// Writes `content` to `path` so a reader sees the old file or the new one,
// never a mix, even if the process dies at any point: a temp file in the same
// directory (O_CREAT|O_EXCL, `mode` exactly, whatever the umask), write all,
// fsync, rename over `path`, fsync the directory. Throws std::system_error
// naming the path.
//
// The temp file is ".<name>.<pid>.<unique>.tmp"; a name already taken (a
// writer killed mid-write left it, and its pid came round again) is skipped
// for a fresh one. Temp files of writers that died stay until their directory
// is removed (StateStore::remove); nothing reads them.
void write_file_atomic(const std::string& path, std::string_view content, mode_t mode = 0600);

// The kernel's start time of a process (field 22 of /proc/<pid>/stat, clock
// ticks since boot), nullopt if no such process (pid <= 0 included). Throws
// std::system_error where /proc can't be read for another reason.
std::optional<uint64_t> process_start_time(int pid);
// pid exists and has the same start time (a reused pid is not alive). A
// zombie counts as dead.
bool process_alive(int pid, uint64_t start_time);

struct ContainerState {
  std::string id;
  std::string bundle;            // absolute
  std::string rootfs;            // absolute host path
  std::string status;            // "creating" | "created" | "running" | "paused" | "stopped"
  int sandbox_pid = 0;           // the sandbox process (host pid)
  uint64_t sandbox_start_time = 0;
  int pid = 0;                   // the container's init process as `state` reports it (the sandbox process's pid, as Kata does)
  std::string created;           // RFC 3339 UTC with nanoseconds, e.g. "2026-12-07T12:00:00.123456789Z"
  std::string owner;             // user name of the creator ("root")
  std::map<std::string, std::string> annotations;
  std::string control_socket;    // absolute path of the sandbox's control API socket (empty until known)
  std::optional<int> exit_code;  // once stopped

  bool operator==(const ContainerState&) const = default;
};

// Keys are the field names; exit_code is left out until there is one.
nlohmann::json to_json(const ContainerState&);
// Checks every field; throws ConfigError with one line naming `source` and the
// field, e.g. `/run/skiff/c1/state.json: bundle: must be an absolute path, not "b"`.
// Unknown keys are ignored (a newer writer may add some).
ContainerState state_from_json(const nlohmann::json&, const std::string& source);
std::string rfc3339_now();

// Serialises commands on one container (runc's per-container lock):
// flock(LOCK_EX) on <root>/<id>.lock, held for the object's life, released on
// destruction (or when the holder dies). The lock file is removed by
// StateStore::remove; a waiter that then wakes up on the removed file takes
// the lock afresh on the path, so two holders never coexist.
//
// The lock belongs to the open file, which fork shares: a process forked
// while the lock is held (a sandbox process that is not exec'd) holds it too,
// until it closes its copy (destroying its ContainerLock; exec closes it, the
// fd being O_CLOEXEC) or exits.
class ContainerLock {
 public:
  ContainerLock(ContainerLock&&) noexcept = default;
  ContainerLock& operator=(ContainerLock&&) noexcept = default;
  ContainerLock(const ContainerLock&) = delete;
  ContainerLock& operator=(const ContainerLock&) = delete;
  ~ContainerLock() = default;

  const std::string& path() const { return path_; }

 private:
  friend class StateStore;
  ContainerLock(std::string path, UniqueFd fd) : path_(std::move(path)), fd_(std::move(fd)) {}
  // nullopt only when `block` is false and the lock is held elsewhere.
  static std::optional<ContainerLock> acquire(const std::string& path, bool block);

  std::string path_;
  UniqueFd fd_;
};

class StateStore {
 public:
  // Creates root (mode 0711, parents too) if missing; root() is its canonical
  // absolute path (mountinfo names mount points so). Throws std::system_error.
  explicit StateStore(std::string root);
  const std::string& root() const { return root_; }
  // <root>/<id>; ConfigError for an id check_id refuses.
  std::string dir_of(const std::string& id) const;

  // Longest id: a path component is at most 255 bytes (NAME_MAX) and the lock
  // file adds ".lock".
  static constexpr size_t kMaxIdLength = 250;
  // A container id as runc accepts it: letters, digits, '_', '+', '-', '.',
  // not "." or "..", 1 to kMaxIdLength bytes. ConfigError otherwise
  // ("container id \"a/b\": only letters, digits, '_', '+', '-', '.' are allowed").
  static void check_id(const std::string& id);

  ContainerLock lock(const std::string& id);  // blocks
  std::optional<ContainerLock> try_lock(const std::string& id);

  // mkdir <root>/<id> (0711) exclusively and writes the state; ConfigError
  // "container \"x\" already exists" if the directory exists.
  void create(const ContainerState& state);
  // Atomic replace of <root>/<id>/state.json; std::system_error if the
  // container's directory is gone.
  void save(const ContainerState& state);
  // nullopt: no such container (no directory, or one without state.json yet);
  // ConfigError naming the file: corrupt.
  std::optional<ContainerState> load(const std::string& id) const;
  // Ids with a state.json, sorted.
  std::vector<std::string> list() const;
  // Call with lock(id) held. Unmounts every mount point at or below
  // <root>/<id> (deepest first, MNT_DETACH), then removes the directory tree
  // and the lock file. Safe on a half-created directory and on one already
  // gone. If a mount can't be removed, throws std::system_error and deletes
  // nothing, so a still-mounted rootfs is never emptied.
  void remove(const std::string& id);

 private:
  std::string lock_path(const std::string& id) const;
  std::string root_;
};

// Mount points at or below `dir` (an absolute canonical path) in this mount
// namespace, from /proc/self/mountinfo with its octal escapes (\040 ...)
// decoded, in mountinfo order (a point mounted over twice appears twice).
std::vector<std::string> mount_points_under(const std::string& dir);

// The status a reader should report: a state whose sandbox process is gone
// (process_alive false) is "stopped", whatever the file says.
std::string effective_status(const ContainerState&);

}  // namespace skiff::runtime
