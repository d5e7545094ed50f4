#pragma once
// A Hypervisor for the runtime's tests whose "guest" is the real skiff-agent
// code running on this host in a child process (as agent_server_test runs
// it), served on a Unix socket: the sandbox, its control API and the agent
// client are the real ones, only the VM is left out. Its guest sees the
// host's file system (no shared_fs), so the sandbox hands the agent host
// paths. connect_vsock speaks the VMM's handshake ("OK <port>\n" first)
// through a relay thread.
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <kj/async-unix.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "agent/agent_server.h"
#include "base/config_error.h"
#include "runtime/sandbox/hypervisor.h"

namespace skiff::runtime::testing {

class HostAgentHypervisor final : public Hypervisor {
 public:
  explicit HostAgentHypervisor(std::string socket_path, std::string cgroup_parent = {})
      : path_(std::move(socket_path)), cgroup_parent_(std::move(cgroup_parent)) {}
  ~HostAgentHypervisor() override {
    stop();
    for (auto& t : relays_) t.join();
  }

  std::string name() const override { return "host-agent (test)"; }
  HypervisorCapabilities capabilities() const override {
    HypervisorCapabilities c;
    c.pause = true;
    c.vcpu_resize = true;
    c.memory_resize = memory_resize;
    return c;
  }
  void boot(const VmConfig& config) override {
    booted_cmdline = config.cmdline;
    booted_vcpus_ = 1;
    max_vcpus_ = config.max_vcpus ? config.max_vcpus : config.vcpus;
    boot_memory_mib_ = requested_mib_ = config.memory_mib;
    max_memory_mib_ = std::max(config.max_memory_mib, config.memory_mib);
    agent::Fd listener = agent::listen_unix(path_);
    child_ = ::fork();
    if (child_ < 0) throw std::runtime_error("fork");
    if (child_ == 0) {
      // The "guest" has a host name of its own (Sandbox.setup sets one); its
      // mounts are the host's, so the share's bind mounts reach it.
      if (::unshare(CLONE_NEWUTS) != 0) ::_exit(90);
      kj::UnixEventPort::captureChildExit();
      // The forking thread still has the parent's KJ loop as its own: serve
      // on a fresh thread, and never unwind into the parent's frames.
      int code = 91;
      std::thread agent_thread([&] {
        try {
          agent::ServeOptions options;
          options.agent.cgroup_parent = cgroup_parent_;
          // Never the host's own CPUs: a fake sysfs, or a path that fails.
          options.agent.cpu_sysfs_dir = cpu_sysfs_dir.empty() ? "/nonexistent/cpu" : cpu_sysfs_dir;
          options.reconnect_grace = std::chrono::seconds(30);
          code = 10 + static_cast<int>(agent::serve(kj::mv(listener), kj::mv(options)));
        } catch (...) {
        }
      });
      agent_thread.join();
      ::_exit(code);
    }
  }
  void pause() override { ::kill(child_, SIGSTOP); ++pauses; }
  void resume() override { ::kill(child_, SIGCONT); }
  void stop() override {
    if (child_ > 0 && !ended_) ::kill(child_, SIGKILL);
  }
  VmExit wait() override {
    int status = 0;
    while (::waitpid(child_, &status, 0) < 0 && errno == EINTR) {
    }
    ended_ = true;
    exit_status = status;
    const bool powered_off = WIFEXITED(status) && WEXITSTATUS(status) == 10 + static_cast<int>(agent::ServeEnd::PowerOff);
    return powered_off ? VmExit{VmExitKind::PowerOff, "the agent powered off"} : VmExit{VmExitKind::Stopped, "the agent process ended"};
  }
  void resize_vcpus(uint32_t vcpus) override {
    if (vcpus == 0 || vcpus > max_vcpus_) throw ConfigError("vcpus " + std::to_string(vcpus) + " out of 1.." + std::to_string(max_vcpus_));
  }
  // A guest with a virtio-mem driver that follows at once, down to
  // unplug_floor_mib (memory it can't give back).
  void resize_memory(uint64_t mib) override {
    if (max_memory_mib_ == boot_memory_mib_) throw ConfigError("no room to grow");
    if (mib < boot_memory_mib_ || mib > max_memory_mib_ || (mib - boot_memory_mib_) % 2)
      throw ConfigError("memory " + std::to_string(mib) + " out of " + std::to_string(boot_memory_mib_) + ".." +
                        std::to_string(max_memory_mib_) + " in 2 MiB steps");
    requested_mib_ = mib;
    ++memory_resizes;
  }
  uint64_t memory_mib() const override { return std::max<uint64_t>(requested_mib_, unplug_floor_mib); }
  void add_device(const DeviceConfig&) override {}
  bool remove_device(const std::string&) override { return false; }
  UniqueFd connect_vsock(uint32_t) override {
    int pair[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) != 0) throw std::runtime_error("socketpair");
    UniqueFd ours(pair[0]), relay_end(pair[1]);
    UniqueFd agent(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, path_.c_str(), sizeof addr.sun_path - 1);
    if (::connect(agent.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) return ours;  // "refused": EOF
    (void)!::write(relay_end.get(), "OK 1024\n", 8);
    relays_.emplace_back([a = std::move(relay_end), b = std::move(agent)] {
      char buf[65536];
      for (;;) {
        pollfd p[2] = {{a.get(), POLLIN, 0}, {b.get(), POLLIN, 0}};
        if (::poll(p, 2, -1) < 0) return;
        for (int i = 0; i < 2; ++i) {
          if (!(p[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
          ssize_t n = ::read(p[i].fd, buf, sizeof buf);
          if (n <= 0) return;
          int to = i == 0 ? b.get() : a.get();
          for (ssize_t off = 0; off < n;) {
            ssize_t w = ::write(to, buf + off, static_cast<size_t>(n - off));
            if (w <= 0) return;
            off += w;
          }
        }
      }
    });
    return ours;
  }

  std::atomic<int> pauses{0};
  int exit_status = -1;  // waitpid's status of the agent process
  int booted_vcpus_ = 0;
  std::string cpu_sysfs_dir;  // the agent's /sys/devices/system/cpu; set before boot
  std::atomic<bool> memory_resize{true};  // the capability
  std::atomic<uint64_t> unplug_floor_mib{0};
  std::atomic<int> memory_resizes{0};
  std::string booted_cmdline;  // the VmConfig the sandbox booted with

 private:
  std::string path_, cgroup_parent_;
  pid_t child_ = -1;
  uint32_t max_vcpus_ = 0;
  uint64_t boot_memory_mib_ = 0, max_memory_mib_ = 0;
  std::atomic<uint64_t> requested_mib_{0};
  std::atomic<bool> ended_{false};
  std::vector<std::thread> relays_;
};

}  // namespace skiff::runtime::testing
