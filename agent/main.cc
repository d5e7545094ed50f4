// skiff-agent: the guest's /init. As PID 1 it takes the boot's first steps
// (boot_modes.c), then in mode skiff.action=agent it mounts what containers
// need, runs the agent in a child process and stays the reaper of every
// orphan; when the agent ends (told to power off, or its runtime gone for
// good) it powers the VM off or reboots it.
//
// Not PID 1 (tests, debugging on a host): serves the agent API on a Unix
// socket or a vsock port in the foreground.
//   skiff-agent --unix PATH | --vsock PORT [--cgroup-parent DIR] [--grace-ms N] [--no-pivot]
//   skiff-agent --version
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <kj/async-unix.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>

#include "agent/agent_log.h"
#include "agent/agent_server.h"
#include "agent/boot_modes.h"
#include "skiff_version.h"

namespace skiff::agent {
namespace {

constexpr uint32_t kDefaultPort = 1024;
constexpr const char* kCgroupRoot = "/sys/fs/cgroup";
constexpr const char* kSandboxCgroup = "/sys/fs/cgroup/sandbox";

enum ExitCode : int { kPowerOff = 0, kFailed = 1, kReboot = 3, kRuntimeGone = 4 };

int exit_code(ServeEnd end) {
  switch (end) {
    case ServeEnd::PowerOff: return kPowerOff;
    case ServeEnd::Reboot: return kReboot;
    case ServeEnd::RuntimeGone: return kRuntimeGone;
  }
  return kFailed;
}

int serve_until_end(Fd listener, ServeOptions options) {
  try {
    return exit_code(serve(kj::mv(listener), kj::mv(options)));
  } catch (const std::exception& e) {
    log_error("agent failed", {{"error", e.what()}});
    return kFailed;
  }
}

void mount_or_log(const char* source, const char* target, const char* type, unsigned long flags, const char* data) {
  ::mkdir(target, 0755);
  if (::mount(source, target, type, flags, data) != 0 && errno != EBUSY)
    log_error("mount failed", {{"target", target}, {"type", type}, {"error", std::strerror(errno)}});
}

// Every controller the kernel has, enabled for the sandbox's cgroup and so
// for the containers' under it (cgroup.cc enables what each one needs).
void prepare_cgroups() {
  mount_or_log("cgroup2", kCgroupRoot, "cgroup2", MS_NOSUID | MS_NODEV | MS_NOEXEC, "nsdelegate");
  std::ifstream in(std::string(kCgroupRoot) + "/cgroup.controllers");
  std::string controller;
  std::ostringstream enable;
  while (in >> controller) enable << " +" << controller;
  std::ofstream(std::string(kCgroupRoot) + "/cgroup.subtree_control") << enable.str();
  ::mkdir(kSandboxCgroup, 0755);
  std::ofstream(std::string(kSandboxCgroup) + "/cgroup.subtree_control") << enable.str();
}

uint64_t cmdline_number(const char* key, uint64_t fallback) {
  char value[32];
  if (!skiff_cmdline_value(key, value, sizeof value)) return fallback;
  char* end = nullptr;
  errno = 0;
  unsigned long long n = std::strtoull(value, &end, 10);
  if (errno != 0 || end == value || *end != 0) {
    log_error("bad number on the kernel command line, using the default",
              {{"key", key}, {"value", value}, {"default", std::to_string(fallback)}});
    return fallback;
  }
  return n;
}

int pid1_agent() {
  mount_or_log("devpts", "/dev/pts", "devpts", MS_NOSUID | MS_NOEXEC, "gid=5,mode=620,ptmxmode=666");
  mount_or_log("tmpfs", "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777");
  prepare_cgroups();
  const uint64_t port = cmdline_number("skiff.agent_port", kDefaultPort);
  ServeOptions options;
  options.agent.cgroup_parent = kSandboxCgroup;
  options.agent.no_pivot = true;  // the root is an initramfs: pivot_root can't leave it
  options.agent.version = SKIFF_VERSION;
  options.reconnect_grace = std::chrono::milliseconds(cmdline_number("skiff.agent_grace_ms", 10000));

  Fd listener;
  try {
    listener = listen_vsock(static_cast<uint32_t>(port));
  } catch (const std::exception& e) {
    log_error("agent can't listen", {{"error", e.what()}});
    skiff_power_off(0);
  }
  log_info("agent listening", {{"vsock_port", std::to_string(port)}});
  const pid_t agent = ::fork();
  if (agent == 0) {
    kj::UnixEventPort::captureChildExit();
    ::_exit(serve_until_end(kj::mv(listener), kj::mv(options)));
  }
  if (agent < 0) {
    log_error("fork for the agent failed", {{"error", std::strerror(errno)}});
    skiff_power_off(0);
  }
  listener.reset();
  // PID 1's one job now: reap whatever the kernel hands it, until the agent goes.
  int status = 0;
  for (;;) {
    pid_t pid = ::wait(&status);
    if (pid == agent) break;
    if (pid < 0 && errno == ECHILD) break;
  }
  const bool exited = WIFEXITED(status);
  const int code = exited ? WEXITSTATUS(status) : -1;
  if (!exited)
    log_error("agent killed, powering off", {{"signal", std::to_string(WTERMSIG(status))}});
  else if (code == kRuntimeGone)
    log_info("runtime gone, powering off");
  else if (code == kFailed)
    log_error("agent failed, powering off");
  else
    log_info(code == kReboot ? "rebooting, as told" : "powering off, as told");
  skiff_power_off(exited && code == kReboot);
}

int pid1_main() {
  char action[32];
  skiff_boot_begin(action, sizeof action);
  if (std::strcmp(action, "agent") != 0) return skiff_boot_run_mode(action);
  return pid1_agent();
}

[[noreturn]] void usage(const std::string& why) {
  std::cerr << "skiff-agent: " << why << "\n"
            << "usage: skiff-agent --unix PATH | --vsock PORT [--cgroup-parent DIR] [--grace-ms N] [--no-pivot]\n"
            << "       skiff-agent --version\n";
  std::exit(2);
}

int tool_main(int argc, char** argv) {
  ServeOptions options;
  options.agent.version = SKIFF_VERSION;
  std::string unix_path;
  long vsock_port = -1;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) usage(arg + " needs a value");
      return argv[++i];
    };
    auto number = [&](long max) -> long {
      std::string v = value();
      char* end = nullptr;
      long n = std::strtol(v.c_str(), &end, 10);
      if (v.empty() || *end != 0 || n < 0 || n > max) usage(arg + ": '" + v + "' is not a number from 0 to " + std::to_string(max));
      return n;
    };
    if (arg == "--version") {
      std::cout << "skiff-agent " SKIFF_VERSION " (commit " SKIFF_COMMIT ")\n";
      return 0;
    } else if (arg == "--unix") {
      unix_path = value();
    } else if (arg == "--vsock") {
      vsock_port = number(0xffffffffL);
    } else if (arg == "--cgroup-parent") {
      options.agent.cgroup_parent = value();
    } else if (arg == "--grace-ms") {
      options.reconnect_grace = std::chrono::milliseconds(number(86400000L));
    } else if (arg == "--no-pivot") {
      options.agent.no_pivot = true;
    } else {
      usage("unknown argument '" + arg + "'");
    }
  }
  if (unix_path.empty() == (vsock_port < 0)) usage("give one of --unix PATH and --vsock PORT");
  kj::UnixEventPort::captureChildExit();
  try {
    Fd listener = unix_path.empty() ? listen_vsock(static_cast<uint32_t>(vsock_port)) : listen_unix(unix_path);
    log_info("agent listening", {{"address", unix_path.empty() ? "vsock:" + std::to_string(vsock_port) : "unix:" + unix_path}});
    return serve_until_end(kj::mv(listener), kj::mv(options));
  } catch (const std::exception& e) {
    std::cerr << "skiff-agent: " << e.what() << "\n";
    return kFailed;
  }
}

}  // namespace
}  // namespace skiff::agent

int main(int argc, char** argv) {
  if (::getpid() == 1) return skiff::agent::pid1_main();
  return skiff::agent::tool_main(argc, argv);
}
