#pragma once
// A sandbox (a pod): one VM, its guest agent, and the containers in it, the
// model of Kata's virtcontainers. It lives on the control thread's KJ loop
// and never blocks it: the VM's end comes from a thread of its own, hooks
// and the container's stdio run on threads (stdio_streams.h), the agent is a
// Cap'n Proto client over an in-process vsock stream (Hypervisor's
// connect_vsock), and every call answers with a promise.
//
// Life: start() boots the VM through the Hypervisor, dials the agent (it may
// still be booting: refused connections are retried until the boot timeout),
// sets the guest up (hostname, the virtio-fs share mounted at
// kGuestShareDir) and subscribes to its events. Containers are created from
// OCI bundles (rootfs and bind-mount sources shared through
// runtime/storage/sandbox_share), started, signalled, paused, deleted.
// shutdown() powers the guest off and ends the VM.
#include <kj/async-io.h>
#include <kj/timer.h>

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "api/agent.capnp.h"
#include "runtime/config/runtime_config.h"
#include "runtime/oci/oci_spec.h"
#include "runtime/sandbox/hypervisor.h"
#include "runtime/storage/sandbox_share.h"

namespace capnp {
class TwoPartyClient;
}

namespace skiff::runtime {

inline constexpr const char* kShareTag = "skiffshared";
inline constexpr const char* kGuestShareDir = "/run/skiff/shared";

struct ExitInfo {
  int code = 0;
  int signal = 0;
};

// Where a container's output goes: streams (a control API client's, or
// FdOutputStream over the caller's fds); null ones discard it. With
// stdin_fd, the fd is copied into the process's stdin until EOF.
struct ContainerIo {
  kj::Maybe<api::ByteStream::Client> out;
  kj::Maybe<api::ByteStream::Client> err;
  bool stdin = false;  // the process gets a stdin pipe (Process.stdin)
  UniqueFd stdin_fd;   // ...fed from this fd
};

struct SandboxEvent {
  std::string type;  // "exit", "oom", "paused", "resumed"
  std::string container_id;
  std::string exec_id;
  uint32_t pid = 0;
  ExitInfo exit;
  std::string time;
};

class Sandbox {
 public:
  struct Settings {
    std::string id;
    std::string state_dir;  // the share lives in <state_dir>/share, the console log beside it
    RuntimeConfig config;
    SandboxSizing sizing;
    std::string hostname;
    // How long a memory resize waits for the guest to make progress
    // (plugging, unplugging, onlining) before it answers with what it has.
    uint32_t memory_settle_ms = 5000;
  };

  struct Container {
    std::string id;
    oci::Bundle bundle;
    std::string status = "created";  // created, running, paused, stopped
    std::string created;             // RFC 3339
    uint32_t guest_pid = 0;
    std::optional<ExitInfo> exit;
    api::Container::Client agent;
    kj::ForkedPromise<void> exited;  // resolves once `exit` is set
    kj::Own<kj::PromiseFulfiller<void>> exit_fulfiller;
    std::vector<std::shared_ptr<void>> keep_alive;  // stdio pumps
  };

  Sandbox(kj::AsyncIoContext& io, Hypervisor& hypervisor, Settings settings);
  ~Sandbox();
  Sandbox(const Sandbox&) = delete;
  Sandbox& operator=(const Sandbox&) = delete;

  const Settings& settings() const { return settings_; }
  kj::Promise<void> start();
  std::string vm_state() const { return vm_state_; }
  std::string agent_version() const { return agent_version_; }
  std::string guest_kernel() const { return guest_kernel_; }
  uint32_t boot_millis() const { return boot_millis_; }

  // Throws ConfigError for a bad id or bundle; kj exceptions from the agent.
  kj::Promise<Container*> create_container(const std::string& id, oci::Bundle bundle, ContainerIo io);
  // Throws std::invalid_argument ("no container \"x\" in sandbox y").
  Container& container(const std::string& id);
  std::vector<const Container*> containers() const;

  kj::Promise<uint32_t> start_container(Container& c);
  kj::Promise<void> kill(Container& c, int signal, bool all);
  kj::Promise<void> pause_container(Container& c);
  kj::Promise<void> resume_container(Container& c);
  kj::Promise<void> delete_container(Container& c, bool force);
  kj::Promise<ExitInfo> wait(Container& c);

  // The guest's vCPUs online now (the sizing's count until a resize).
  uint32_t vcpus() const { return vcpus_; }
  // Control-API errors for a VM not running, a hypervisor that can't, a
  // count out of range; resolves to the guest's online count after.
  kj::Promise<uint32_t> resize_vcpus(uint32_t vcpus);

  // The guest's memory now in MiB (the sizing's until the VM boots): the
  // boot memory and what it has plugged of the virtio-mem region.
  uint64_t memory_mib() const;
  // The most resize_memory allows: the sizing's maximum, or the boot
  // memory when there is none.
  uint64_t max_memory_mib() const;
  // Control-API errors for a VM not running, a hypervisor that can't, a
  // size out of range. Resolves once the guest has got there: plugged (or
  // unplugged) up to `mib` and taken it online, as its agent's
  // guestDetails report; or, when it stops moving for memory_settle_ms
  // (memory it can't give back, a paused VM), to where it got. Resolves to
  // memory_mib() then.
  kj::Promise<uint64_t> resize_memory(uint64_t mib);

  void pause_vm();
  void resume_vm();
  // Idempotent; resolves once the VM has ended.
  kj::Promise<void> shutdown();
  // Resolves when the VM has ended, whoever ended it.
  kj::Promise<void> vm_ended();

  // Keeps `task` (an exec's terminal forwarding) and `resource` until the
  // container is deleted or the sandbox ends.
  void keep_until_exit(const std::string& container_id, kj::Promise<void> task, std::shared_ptr<void> resource);
  kj::Timer& timer() { return io_.provider->getTimer(); }
  kj::AsyncIoContext& io() { return io_; }

  // Called after every change of a container's status (the CLI's state file).
  std::function<void(const Container&)> on_change;
  // Every event, in order.
  std::function<void(const SandboxEvent&)> on_event;

  // The OCI state document (runtime-spec "state") hooks get on stdin.
  std::string hook_state(const Container& c) const;

 private:
  class EventSinkImpl;
  // Where the guest sees the share: the virtio-fs mount, or with a
  // hypervisor that shares no file system (its guest sees the host's, as a
  // test's host-run agent does) the share directory itself.
  std::string guest_share_root() const;
  kj::Promise<void> dial_agent(kj::TimePoint deadline);
  kj::Promise<void> setup_guest();
  void emit(SandboxEvent e);
  void set_status(Container& c, const std::string& status);
  void record_exit(Container& c, ExitInfo exit);
  VmConfig vm_config() const;
  // Runs `fn` on a thread of its own (hooks: they may take seconds).
  kj::Promise<void> off_loop(std::function<void()> fn);
  // resize_memory's two waits: until the hypervisor's plugged memory is
  // `asked`, then until the guest's own count of its memory has followed;
  // each gives up once nothing has changed for memory_settle_ms.
  kj::Promise<void> await_plugged(uint64_t asked, uint64_t last, kj::TimePoint settle_by);
  kj::Promise<void> await_online(uint64_t last_bytes, kj::TimePoint settle_by);

  kj::AsyncIoContext& io_;
  Hypervisor& hv_;
  Settings settings_;
  std::unique_ptr<SandboxShare> share_;
  std::string vm_state_ = "created";
  std::string agent_version_, guest_kernel_;
  uint32_t boot_millis_ = 0;
  uint32_t vcpus_ = 0;
  bool booted_ = false;              // hv_ has a machine: memory_mib() asks it
  uint64_t guest_boot_memory_ = 0;   // bytes, the agent's guestDetails at set-up (nothing plugged yet)

  kj::Own<kj::AsyncIoStream> agent_stream_;
  kj::Own<capnp::TwoPartyClient> agent_rpc_;
  kj::Maybe<api::Sandbox::Client> agent_;
  kj::Maybe<api::Subscription::Client> subscription_;

  std::map<std::string, std::unique_ptr<Container>> containers_;
  kj::ForkedPromise<void> vm_ended_;
  kj::Own<kj::CrossThreadPromiseFulfiller<void>> vm_end_fulfiller_;
  kj::Maybe<kj::ForkedPromise<void>> shutting_down_;
  std::thread vm_waiter_;
  VmExit vm_exit_;
  kj::TaskSet tasks_;
};

}  // namespace skiff::runtime
