#include "runtime/oci/hooks.h"

#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <optional>
#include <stdexcept>

#include "base/sys_error.h"
#include "base/unique_fd.h"

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

namespace skiff::runtime::oci {
namespace {

using Clock = std::chrono::steady_clock;

std::atomic<int> hook_mount_ns{-1};

struct Pipe {
  UniqueFd read, write;
};

Pipe make_pipe(const std::string& what) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) throw_errno("pipe for " + what);
  return {UniqueFd(fds[0]), UniqueFd(fds[1])};
}

// In the child between fork and exec: async-signal-safe calls only.
[[noreturn]] void exec_child(const char* path, char* const* argv, char* const* envp, int stdin_fd, int err_fd, int mount_ns) {
  // The caller's blocked and ignored signals would outlive exec; a hook
  // starts as runc's do, with none.
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  sigaction(SIGPIPE, &dfl, nullptr);
  int err = 0;
  if (mount_ns >= 0 && ::setns(mount_ns, CLONE_NEWNS) != 0) {
    err = -errno;  // negative: the parent tells setns's failure from exec's
  } else if (::dup2(stdin_fd, STDIN_FILENO) < 0 || ::dup2(STDERR_FILENO, STDOUT_FILENO) < 0) {
    err = errno;
  } else {
    // Only stdio goes to the hook (Go's os/exec passes nothing else); the
    // error pipe closes at exec with the rest. Older kernels lack the call:
    // then fds without O_CLOEXEC leak, as they would with plain fork+exec.
    ::syscall(SYS_close_range, 3U, ~0U, CLOSE_RANGE_CLOEXEC);
    ::execve(path, argv, envp);
    err = errno;
  }
  [[maybe_unused]] ssize_t n = ::write(err_fd, &err, sizeof err);
  ::_exit(127);
}

// Blocks SIGPIPE for this thread while the state is written to a hook that
// may exit without reading it: EPIPE is then an error code, not the death of
// the runtime. A SIGPIPE raised meanwhile is taken back before unblocking.
class SigpipeGuard {
 public:
  SigpipeGuard() {
    sigset_t pending;
    sigemptyset(&pending);
    sigpending(&pending);
    was_pending_ = sigismember(&pending, SIGPIPE) == 1;
    sigset_t block;
    sigemptyset(&block);
    sigaddset(&block, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &block, &old_);
  }
  ~SigpipeGuard() {
    if (raised_ && !was_pending_) {
      sigset_t pipe;
      sigemptyset(&pipe);
      sigaddset(&pipe, SIGPIPE);
      const timespec zero{0, 0};
      while (sigtimedwait(&pipe, nullptr, &zero) < 0 && errno == EINTR) {
      }
    }
    pthread_sigmask(SIG_SETMASK, &old_, nullptr);
  }
  SigpipeGuard(const SigpipeGuard&) = delete;
  SigpipeGuard& operator=(const SigpipeGuard&) = delete;
  void raised() { raised_ = true; }

 private:
  sigset_t old_{};
  bool was_pending_ = false;
  bool raised_ = false;
};

// The child's exit status once it has one; reaps it.
std::optional<int> reaped(pid_t pid, bool block) {
  int status = 0;
  const pid_t r = retry_eintr([&] { return ::waitpid(pid, &status, block ? 0 : WNOHANG); });
  if (r < 0) throw_errno("waitpid " + std::to_string(pid));
  if (r == 0) return std::nullopt;
  return status;
}

std::string describe(int status) {
  if (WIFEXITED(status)) return "exited with status " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) {
    const char* name = strsignal(WTERMSIG(status));
    return "killed by signal " + std::to_string(WTERMSIG(status)) + (name ? std::string(" (") + name + ")" : "");
  }
  return "ended with wait status " + std::to_string(status);
}

void run_hook(const Hook& hook, std::string_view phase, const std::string& state) {
  const std::string who = std::string(phase) + " hook " + hook.path;
  // Everything exec needs is built before fork: the child may only make
  // async-signal-safe calls.
  std::vector<std::string> args = hook.args.empty() ? std::vector<std::string>{hook.path} : hook.args;
  std::vector<char*> argv, envp;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::vector<std::string> env = hook.env;
  for (auto& e : env) envp.push_back(e.data());
  envp.push_back(nullptr);

  Pipe in = make_pipe(who);
  Pipe err = make_pipe(who);
  const int mount_ns = hook_mount_ns.load();
  const pid_t pid = ::fork();
  if (pid < 0) throw_errno("fork for " + who);
  if (pid == 0) exec_child(hook.path.c_str(), argv.data(), envp.data(), in.read.get(), err.write.get(), mount_ns);
  in.read.reset();
  err.write.reset();

  // The error pipe closes at exec (O_CLOEXEC) or carries exec's errno.
  int exec_errno = 0;
  const ssize_t n = retry_eintr([&] { return ::read(err.read.get(), &exec_errno, sizeof exec_errno); });
  if (n == static_cast<ssize_t>(sizeof exec_errno)) {
    reaped(pid, true);
    if (exec_errno < 0)
      throw std::runtime_error(who + ": joining the runtime's mount namespace failed: " + std::strerror(-exec_errno));
    throw std::runtime_error(who + ": exec failed: " + std::strerror(exec_errno));
  }

  // A plain time point, not an optional: GCC -O2 warns a
  // std::optional<time_point> may be read uninitialised here (it is not).
  // config.json refuses a timeout <= 0; one made in code means none.
  const bool has_deadline = hook.timeout_s.has_value() && *hook.timeout_s > 0;
  const Clock::time_point deadline =
      has_deadline ? Clock::now() + std::chrono::seconds(*hook.timeout_s) : Clock::time_point::max();
  // A pidfd makes the child's exit pollable beside stdin; without one (Linux
  // before 5.3) the loop polls waitpid every 10 ms.
  UniqueFd pidfd(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));
  if (::fcntl(in.write.get(), F_SETFL, O_NONBLOCK) != 0) {
    ::kill(pid, SIGKILL);
    reaped(pid, true);
    throw_errno("fcntl O_NONBLOCK for " + who);
  }

  std::optional<int> status;
  size_t written = 0;
  {
    SigpipeGuard guard;
    while (!status) {
      if (in.write && written == state.size()) in.write.reset();  // EOF for the hook
      int wait_ms = -1;
      if (has_deadline) {
        const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now()).count();
        wait_ms = static_cast<int>(std::clamp<decltype(left)>(left, 0, 1 << 30));
      }
      if (!pidfd && (wait_ms < 0 || wait_ms > 10)) wait_ms = 10;
      pollfd fds[2];
      nfds_t nfds = 0;
      if (pidfd) fds[nfds++] = {pidfd.get(), POLLIN, 0};
      if (in.write) fds[nfds++] = {in.write.get(), POLLOUT, 0};
      if (::poll(fds, nfds, wait_ms) < 0 && errno != EINTR) {
        ::kill(pid, SIGKILL);
        reaped(pid, true);
        throw_errno("poll for " + who);
      }
      if (in.write) {
        const ssize_t w = ::write(in.write.get(), state.data() + written, state.size() - written);
        if (w > 0) {
          written += static_cast<size_t>(w);
        } else if (w < 0 && errno != EAGAIN && errno != EINTR) {
          // EPIPE: the hook closed its stdin unread, which runc allows too.
          if (errno == EPIPE) guard.raised();
          in.write.reset();
        }
      }
      status = reaped(pid, false);
      if (!status && has_deadline && Clock::now() >= deadline) {
        ::kill(pid, SIGKILL);
        reaped(pid, true);
        throw std::runtime_error(who + ": timed out after " + std::to_string(*hook.timeout_s) + " s");
      }
    }
  }
  if (!WIFEXITED(*status) || WEXITSTATUS(*status) != 0) throw std::runtime_error(who + ": " + describe(*status));
}

}  // namespace

void set_hook_mount_namespace(int fd) { hook_mount_ns.store(fd); }

void run_hooks(const std::vector<Hook>& hooks, std::string_view phase, const std::string& state_json) {
  for (const auto& h : hooks) run_hook(h, phase, state_json);
}

std::string state_json(const std::string& oci_version, const std::string& id, std::string_view status, int pid,
                       const std::string& bundle, const std::map<std::string, std::string>& annotations) {
  nlohmann::json s;
  s["ociVersion"] = oci_version;
  s["id"] = id;
  s["status"] = std::string(status);
  if (pid > 0) s["pid"] = pid;
  s["bundle"] = bundle;
  if (!annotations.empty()) s["annotations"] = annotations;
  // Names and annotations need not be UTF-8; nlohmann would throw on them.
  return s.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace skiff::runtime::oci
