#pragma once
// Starts a container's process as runc does: in new namespaces (or joined
// ones), on its own root with the spec's mounts, devices, masked and
// readonly paths, as its user with its capabilities, rlimits,
// no_new_privileges and seccomp filter. Two steps, like `runc create` and
// `runc start`: create_container() sets everything up and leaves the
// process waiting just before exec; start() lets it exec the program.
//
// Every set-up step runs in the new process, which reports the step that
// failed ("mount /proc: No such device") and exits, so a failure leaves no
// process and, the mount namespace being its own, no mount behind. The agent
// is single-threaded, so the child may allocate after fork.
#include <sys/types.h>

#include <new>
#include <stdexcept>
#include <string>
#include <utility>

#include "agent/container_spec.h"
#include "agent/fd.h"

namespace skiff::agent {

class LaunchError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct LaunchOptions {
  // Without a terminal: the process's stdin, stdout and stderr (-1:
  // /dev/null). With one, a pty replaces all three (Launched::pty()).
  int stdin_fd = -1, stdout_fd = -1, stderr_fd = -1;
  // A cgroup v2 directory (absolute) the process joins before anything
  // else; empty: it stays in the agent's.
  std::string cgroup_dir;
  // The agent's own root is an initramfs, which pivot_root refuses: move the
  // container's root onto / and chroot instead (runc --no-pivot).
  bool no_pivot = false;
  // Container.exec: a process of a running container (its init's pid),
  // whose namespaces (those the config lists) the new process joins instead
  // of getting a root set up; the config's process part is what runs.
  pid_t exec_in = 0;
};

class Launched {
 public:
  Launched() = default;
  Launched(pid_t pid, Fd status, Fd start, Fd pty) : pid_(pid), status_(std::move(status)), start_(std::move(start)), pty_(std::move(pty)) {}
  Launched(Launched&& o) noexcept
      : pid_(std::exchange(o.pid_, -1)), status_(std::move(o.status_)), start_(std::move(o.start_)), pty_(std::move(o.pty_)),
        started_(o.started_) {}
  Launched& operator=(Launched&& o) noexcept {
    if (this != &o) {
      this->~Launched();
      new (this) Launched(std::move(o));
    }
    return *this;
  }
  // A process never started is killed and reaped.
  ~Launched() { abandon(); }
  // The same, now: the process is gone when it returns.
  void abandon();

  pid_t pid() const { return pid_; }
  // The terminal's controlling side, or -1; the caller takes it over with release_pty().
  int pty() const { return pty_.get(); }
  Fd release_pty() { return std::move(pty_); }
  // Lets the process exec its program. Throws LaunchError with what failed
  // ("exec nosuch: No such file or directory"); the process has exited then.
  void start();
  bool started() const { return started_; }

 private:
  pid_t pid_ = -1;
  Fd status_, start_, pty_;
  bool started_ = false;
};

// `config.root` must be absolute. Throws LaunchError naming the step that failed.
Launched create_container(const ContainerConfig& config, const LaunchOptions& options);

}  // namespace skiff::agent
