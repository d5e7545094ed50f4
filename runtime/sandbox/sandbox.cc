#include "runtime/sandbox/sandbox.h"

#include <unistd.h>

#include <capnp/rpc-twoparty.h>
#include <nlohmann/json.hpp>

#include <chrono>

#include "base/config_error.h"
#include "base/log.h"
#include "runtime/oci/hooks.h"
#include "runtime/sandbox/control_errors.h"
#include "runtime/sandbox/stdio_streams.h"
#include "runtime/state/state_store.h"

namespace skiff::runtime {
namespace {

// Task failures are logged: a background task never ends the sandbox.
class LogTaskErrors final : public kj::TaskSet::ErrorHandler {
 public:
  void taskFailed(kj::Exception&& e) override {
    log::warn("sandbox", "background task failed", {{"error", std::string(e.getDescription().cStr())}});
  }
};
LogTaskErrors task_error_logger;

bool is_bind_mount(const nlohmann::json& m) {
  if (m.value("type", std::string()) == "bind") return true;
  if (auto o = m.find("options"); o != m.end() && o->is_array())
    for (const auto& opt : *o)
      if (opt.is_string() && (opt == "bind" || opt == "rbind")) return true;
  return false;
}

bool has_option(const nlohmann::json& m, const char* name) {
  if (auto o = m.find("options"); o != m.end() && o->is_array())
    for (const auto& opt : *o)
      if (opt.is_string() && opt == name) return true;
  return false;
}

ExitInfo exit_of(api::ExitStatus::Reader s) { return {s.getCode(), s.getSignal()}; }

void set_stream(api::Stdio::Builder stdio, bool err, kj::Maybe<api::ByteStream::Client>& stream) {
  KJ_IF_MAYBE (s, stream) {
    if (err) stdio.setStderr(*s);
    else stdio.setStdout(*s);
  }
}

}  // namespace

class Sandbox::EventSinkImpl final : public api::EventSink::Server {
 public:
  explicit EventSinkImpl(Sandbox& sandbox) : sandbox_(sandbox) {}
  kj::Promise<void> containerExited(ContainerExitedContext ctx) override {
    auto p = ctx.getParams();
    // A container's own process is reported by its wait(); exec'd ones here.
    if (p.getExecId().size() > 0)
      sandbox_.emit({"exit", p.getContainerId(), p.getExecId(), p.getPid(), exit_of(p.getStatus()), rfc3339_now()});
    return kj::READY_NOW;
  }
  kj::Promise<void> oom(OomContext ctx) override {
    sandbox_.emit({"oom", ctx.getParams().getContainerId(), "", 0, {}, rfc3339_now()});
    return kj::READY_NOW;
  }

 private:
  Sandbox& sandbox_;
};

Sandbox::Sandbox(kj::AsyncIoContext& io, Hypervisor& hypervisor, Settings settings)
    : io_(io), hv_(hypervisor), settings_(std::move(settings)), vm_ended_(nullptr), tasks_(task_error_logger) {
  auto paf = kj::newPromiseAndCrossThreadFulfiller<void>();
  vm_ended_ = paf.promise.fork();
  vm_end_fulfiller_ = kj::mv(paf.fulfiller);
}

Sandbox::~Sandbox() {
  if (vm_waiter_.joinable()) {
    hv_.stop();
    vm_waiter_.join();
  }
  // Containers hold agent capabilities: drop them before the connection.
  containers_.clear();
  subscription_ = nullptr;
  agent_ = nullptr;
  agent_rpc_ = nullptr;
  agent_stream_ = nullptr;
}

std::string Sandbox::guest_share_root() const { return hv_.capabilities().shared_fs ? kGuestShareDir : share_->dir(); }

VmConfig Sandbox::vm_config() const {
  const auto& h = settings_.config.hypervisor;
  VmConfig vm;
  vm.kernel_path = h.kernel;
  if (!h.initrd.empty()) vm.initrd_path = h.initrd;
  // The console always goes to console.log; without debug_console the
  // kernel says only what goes wrong there.
  vm.cmdline = std::string("console=ttyS0 reboot=k panic=1 pci=off ") + (settings_.config.agent.debug_console ? "" : "quiet ") +
               "skiff.action=agent skiff.agent_port=" +
               std::to_string(settings_.config.agent.port) + " skiff.agent_grace_ms=" + std::to_string(settings_.config.agent.grace_ms);
  if (!h.kernel_params.empty()) vm.cmdline += " " + h.kernel_params;
  if (!settings_.sizing.extra_kernel_params.empty()) vm.cmdline += " " + settings_.sizing.extra_kernel_params;
  vm.vcpus = settings_.sizing.vcpus;  // vcpus_ follows it once booted
  vm.max_vcpus = settings_.sizing.max_vcpus;
  vm.memory_mib = settings_.sizing.memory_mib;
  vm.max_memory_mib = settings_.sizing.max_memory_mib;  // 0: no virtio-mem device
  // Memory plugged in later goes to ZONE_MOVABLE as far as the kernel can
  // spare it (auto-movable keeps it at most 3x the boot memory), so a shrink
  // gets it back: in ZONE_NORMAL kernel allocations pin blocks for good.
  if (vm.max_memory_mib > vm.memory_mib) vm.cmdline += " memhp_default_state=online memory_hotplug.online_policy=auto-movable";
  vm.hugepages = h.hugepages;
  vm.console = {ConsoleMode::File, settings_.state_dir + "/console.log"};
  ShareConfig share;
  share.id = "share0";
  share.path = share_->dir();
  share.tag = kShareTag;
  share.cache = h.shared_fs_cache == "none" ? ShareCache::None : h.shared_fs_cache == "always" ? ShareCache::Always : ShareCache::Auto;
  share.workers = h.fs_workers;
  share.dax_mib = h.dax_mib;
  vm.devices.push_back(share);
  VsockConfig vsock;
  vsock.id = "vsock0";
  vm.devices.push_back(vsock);
  return vm;
}

kj::Promise<void> Sandbox::start() {
  const auto t0 = std::chrono::steady_clock::now();
  share_ = std::make_unique<SandboxShare>(settings_.state_dir + "/share");
  vm_state_ = "booting";
  try {
    hv_.boot(vm_config());
  } catch (...) {
    vm_state_ = "stopped";  // no machine: info says so, not "booting" for ever
    throw;
  }
  vm_state_ = "running";
  vcpus_ = settings_.sizing.vcpus;
  booted_ = true;
  vm_waiter_ = std::thread([this] {
    vm_exit_ = hv_.wait();
    vm_end_fulfiller_->fulfill();
  });
  tasks_.add(vm_ended_.addBranch().then([this] {
    vm_state_ = "stopped";
    log::info("sandbox", "VM ended", {{"reason", to_string(vm_exit_.kind)}, {"detail", vm_exit_.detail}});
    for (auto& [id, c] : containers_)
      if (!c->exit) record_exit(*c, {255, 0});
  }));
  const auto deadline = timer().now() + settings_.config.hypervisor.boot_timeout_ms * kj::MILLISECONDS;
  return dial_agent(deadline).then([this] { return setup_guest(); }).then([this, t0] {
    boot_millis_ = static_cast<uint32_t>(
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0).count());
    log::info("sandbox", "sandbox ready",
              {{"boot_ms", static_cast<int64_t>(boot_millis_)}, {"agent", agent_version_}, {"kernel", guest_kernel_}});
  });
}

kj::Promise<void> Sandbox::dial_agent(kj::TimePoint deadline) {
  auto fd = hv_.connect_vsock(settings_.config.agent.port);
  auto stream = io_.lowLevelProvider->wrapSocketFd(fd.release(), kj::LowLevelAsyncIoProvider::TAKE_OWNERSHIP);
  // "OK <port>\n" says the guest accepted; EOF that nothing listens yet.
  struct LineReader {
    kj::AsyncIoStream& s;
    std::string line;
    char c = 0;
    kj::Promise<bool> next() {
      return s.tryRead(&c, 1, 1).then([this](size_t n) -> kj::Promise<bool> {
        if (n == 0) return false;
        if (c == '\n') return line.starts_with("OK ");
        if (line.size() > 64) return false;
        line += c;
        return next();
      });
    }
  };
  auto reader = kj::heap<LineReader>(LineReader{*stream, {}, 0});
  auto accepted = reader->next();
  return accepted.attach(kj::mv(reader))
      .then([this, deadline, stream = kj::mv(stream)](bool ok) mutable -> kj::Promise<void> {
        if (ok) {
          agent_stream_ = kj::mv(stream);
          agent_rpc_ = kj::heap<capnp::TwoPartyClient>(*agent_stream_);
          agent_ = agent_rpc_->bootstrap().castAs<api::Sandbox>();
          return kj::READY_NOW;
        }
        if (vm_state_ == "stopped") throw_control_error("the VM ended before its agent answered: " + vm_exit_.detail);
        if (timer().now() > deadline)
          throw_control_error("the guest agent did not answer on vsock port " + std::to_string(settings_.config.agent.port) +
                              " within " + std::to_string(settings_.config.hypervisor.boot_timeout_ms) + " ms (console: " +
                              settings_.state_dir + "/console.log)");
        return timer().afterDelay(20 * kj::MILLISECONDS).then([this, deadline] { return dial_agent(deadline); });
      });
}

kj::Promise<void> Sandbox::setup_guest() {
  auto& agent = KJ_ASSERT_NONNULL(agent_);
  auto req = agent.setupRequest();
  auto cfg = req.initConfig();
  cfg.setHostname(settings_.hostname.empty() ? settings_.id.substr(0, 63) : settings_.hostname);
  cfg.setSandboxId(settings_.id);
  if (hv_.capabilities().shared_fs) {
    auto st = cfg.initStorages(1)[0];
    st.setDriver("virtiofs");
    st.setSource(kShareTag);
    st.setMountPoint(kGuestShareDir);
  }
  return req.send()
      .then([this, &agent](auto) { return agent.versionRequest().send(); })
      .then([this, &agent](auto v) {
        agent_version_ = v.getAgentVersion();
        return agent.guestDetailsRequest().send();
      })
      .then([this, &agent](auto d) {
        guest_kernel_ = d.getDetails().getKernelRelease();
        guest_boot_memory_ = d.getDetails().getMemoryBytes();  // what resize_memory measures from
        auto w = agent.watchRequest();
        w.setSink(kj::heap<EventSinkImpl>(*this));
        return w.send();
      })
      .then([this](auto w) { subscription_ = w.getSubscription(); });
}

std::string Sandbox::hook_state(const Container& c) const {
  nlohmann::json s = {{"ociVersion", "1.0.2"}, {"id", c.id}, {"status", c.status}, {"pid", static_cast<int>(::getpid())},
                      {"bundle", c.bundle.dir}, {"annotations", c.bundle.annotations}};
  return s.dump();
}

kj::Promise<void> Sandbox::off_loop(std::function<void()> fn) {
  auto paf = kj::newPromiseAndCrossThreadFulfiller<void>();
  auto f = std::make_shared<kj::Own<kj::CrossThreadPromiseFulfiller<void>>>(kj::mv(paf.fulfiller));
  std::thread([fn = std::move(fn), f] {
    try {
      fn();
      (*f)->fulfill();
    } catch (const std::exception& e) {
      (*f)->reject(control_error(e.what()));
    }
  }).detach();
  return kj::mv(paf.promise);
}

void Sandbox::emit(SandboxEvent e) {
  log::container_info("sandbox", e.container_id, "event", {{"type", e.type}, {"exec", e.exec_id}});
  if (on_event) on_event(e);
}

void Sandbox::set_status(Container& c, const std::string& status) {
  c.status = status;
  if (on_change) on_change(c);
}

void Sandbox::record_exit(Container& c, ExitInfo exit) {
  if (c.exit) return;
  c.exit = exit;
  c.exit_fulfiller->fulfill();
  set_status(c, "stopped");
  emit({"exit", c.id, "", c.guest_pid, exit, rfc3339_now()});
}

Sandbox::Container& Sandbox::container(const std::string& id) {
  auto it = containers_.find(id);
  if (it == containers_.end()) throw_control_error("container \"" + id + "\" does not exist in sandbox " + settings_.id);
  return *it->second;
}

std::vector<const Sandbox::Container*> Sandbox::containers() const {
  std::vector<const Container*> out;
  for (const auto& [id, c] : containers_) out.push_back(c.get());
  return out;
}

kj::Promise<Sandbox::Container*> Sandbox::create_container(const std::string& id, oci::Bundle bundle, ContainerIo io) {
  if (!SandboxShare::valid_container_id(id)) throw_control_error("container id \"" + id + "\" is not a valid name");
  if (containers_.count(id)) throw_control_error("container \"" + id + "\" already exists");
  if (vm_state_ != "running" && vm_state_ != "paused") throw_control_error("the sandbox's VM is " + vm_state_);
  auto& agent = KJ_ASSERT_NONNULL(agent_);

  // Bind-mount sources reach the guest through the share, in mount order.
  std::vector<VolumeShare> volumes;
  if (auto m = bundle.config.find("mounts"); m != bundle.config.end() && m->is_array())
    for (const auto& mount : *m)
      if (is_bind_mount(mount)) {
        std::string source = mount.value("source", std::string());
        if (!source.starts_with("/")) source = bundle.dir + "/" + source;  // as runc resolves them
        volumes.push_back({source, has_option(mount, "ro")});
      }
  auto shared = share_->add_container(id, bundle.rootfs, bundle.rootfs_readonly, volumes);

  auto exited = kj::newPromiseAndFulfiller<void>();
  auto c = std::make_unique<Container>(Container{id, std::move(bundle), "creating", rfc3339_now(), 0, std::nullopt,
                                                 api::Container::Client(nullptr), exited.promise.fork(),
                                                 kj::mv(exited.fulfiller), {}});
  auto* rec = c.get();
  containers_[id] = std::move(c);
  auto undo = [this, id] {
    containers_.erase(id);
    share_->remove_container(id);
  };

  for (const auto* phase : {"createContainer", "startContainer"})
    if (!(std::string(phase) == "createContainer" ? rec->bundle.hooks.create_container : rec->bundle.hooks.start_container).empty())
      log::container_warn("sandbox", id, "hooks that run in the container's namespaces are not run on the host: the container is in a VM",
                          {{"phase", phase}});

  // runc's order: prestart (deprecated, but still what most hooks are),
  // then createRuntime; both before the container exists in the guest.
  std::string state = hook_state(*rec);
  return off_loop([prestart = rec->bundle.hooks.prestart, create_runtime = rec->bundle.hooks.create_runtime, state] {
           oci::run_hooks(prestart, "prestart", state);
           oci::run_hooks(create_runtime, "createRuntime", state);
         })
      .then([this, rec, shared, &agent, io = kj::mv(io)]() mutable {
        auto req = agent.createContainerRequest();
        req.setId(rec->id);
        size_t next_volume = 0;
        oci::to_agent_spec(
            rec->bundle, guest_share_root() + "/" + shared.rootfs,
            [&](const std::string&, bool) { return guest_share_root() + "/" + shared.volumes.at(next_volume++); },
            req.initSpec());
        auto stdio = req.initStdio();
        set_stream(stdio, false, io.out);
        set_stream(stdio, true, io.err);
        stdio.setStdin(io.stdin);
        auto stdin_fd = std::make_shared<UniqueFd>(std::move(io.stdin_fd));
        return req.send().then([this, rec, stdin_fd](auto reply) mutable -> kj::Promise<Container*> {
          rec->agent = reply.getContainer();
          if (stdin_fd->valid()) {
            return rec->agent.initRequest().send().getProcess().stdinRequest().send().then([this, rec, stdin_fd](auto s) {
              rec->keep_alive.push_back(std::make_shared<FdInputPump>(io_, std::move(*stdin_fd), s.getStream()));
              return rec;
            });
          }
          return rec;
        });
      })
      .then([this, rec](Container* c) {
        set_status(*c, "created");
        log::container_info("sandbox", c->id, "container created", {{"bundle", c->bundle.dir}});
        return c;
      })
      .catch_([undo](kj::Exception&& e) -> kj::Promise<Container*> {
        undo();
        return kj::mv(e);
      });
}

kj::Promise<uint32_t> Sandbox::start_container(Container& c) {
  if (c.status != "created") throw_control_error("container \"" + c.id + "\" is " + c.status + ", not created: it can't be started");
  return c.agent.startRequest().send().then([this, &c](auto r) {
    c.guest_pid = r.getPid();
    if (!c.exit) set_status(c, "running");
    // The agent's wait answers once the process has exited and its output is out.
    tasks_.add(c.agent.waitRequest().send().then(
        [this, &c](auto w) -> kj::Promise<void> {
          record_exit(c, exit_of(w.getStatus()));
          return kj::READY_NOW;
        },
        [this, id = c.id](kj::Exception&& e) -> kj::Promise<void> {
          // The agent connection went away: the VM is ending, and nothing will
          // tell us more. The exit is recorded once the VM's end is too, so
          // whoever the exit wakes finds the sandbox stopped, not "running".
          log::container_warn("sandbox", id, "lost the container's process", {{"error", std::string(e.getDescription().cStr())}});
          auto lost = [this, id] {
            if (auto it = containers_.find(id); it != containers_.end()) record_exit(*it->second, {255, 0});
          };
          // Fresh lambdas: then() would keep a named one by reference.
          return timer().timeoutAfter(5 * kj::SECONDS, vm_ended()).then([lost] { lost(); }, [lost](kj::Exception&&) { lost(); });
        }));
    log::container_info("sandbox", c.id, "container started", {{"guest_pid", static_cast<int64_t>(c.guest_pid)}});
    auto hooks = c.bundle.hooks.poststart;
    const uint32_t pid = c.guest_pid;
    if (hooks.empty()) return kj::Promise<uint32_t>(pid);
    // Start answers once the poststart hooks have run, as runc's does; one
    // that fails is logged and the container goes on (runtime.md's lifecycle).
    return off_loop([hooks, state = hook_state(c)] { oci::run_hooks(hooks, "poststart", state); })
        .then([pid] { return pid; },
              [pid, id = c.id](kj::Exception&& e) {
                log::container_warn("sandbox", id, "poststart hook failed", {{"error", std::string(e.getDescription().cStr())}});
                return pid;
              });
  });
}

kj::Promise<void> Sandbox::kill(Container& c, int signal, bool all) {
  if (c.status == "stopped" && !all) throw_control_error("container \"" + c.id + "\" is not running");
  if (c.status == "created" && !all) {
    // runc kills a created container's init (it waits in its exec): the agent does the same.
  }
  auto req = c.agent.signalRequest();
  req.setSignal(signal);
  req.setAll(all);
  return req.send().ignoreResult();
}

kj::Promise<void> Sandbox::pause_container(Container& c) {
  if (c.status != "running") throw_control_error("container \"" + c.id + "\" is " + c.status + ", not running: it can't be paused");
  return c.agent.pauseRequest().send().then([this, &c](auto) {
    set_status(c, "paused");
    emit({"paused", c.id, "", c.guest_pid, {}, rfc3339_now()});
  });
}

kj::Promise<void> Sandbox::resume_container(Container& c) {
  if (c.status != "paused") throw_control_error("container \"" + c.id + "\" is " + c.status + ", not paused: it can't be resumed");
  return c.agent.resumeRequest().send().then([this, &c](auto) {
    if (!c.exit) set_status(c, "running");
    emit({"resumed", c.id, "", c.guest_pid, {}, rfc3339_now()});
  });
}

kj::Promise<ExitInfo> Sandbox::wait(Container& c) {
  if (c.status == "creating") throw_control_error("container \"" + c.id + "\" is still being created");
  return c.exited.addBranch().then([&c] { return *c.exit; });
}

kj::Promise<void> Sandbox::delete_container(Container& c, bool force) {
  if ((c.status == "running" || c.status == "paused") && !force)
    throw_control_error("cannot delete container \"" + c.id + "\" that is not stopped: " + c.status);
  kj::Promise<void> stopped = kj::READY_NOW;
  if (c.status != "stopped" && vm_state_ != "stopped") {
    // A paused container's processes can't die of SIGKILL while frozen.
    kj::Promise<void> thawed = c.status == "paused" ? c.agent.resumeRequest().send().ignoreResult() : kj::READY_NOW;
    stopped = thawed.then([&c] {
      auto req = c.agent.signalRequest();
      req.setSignal(9);
      req.setAll(true);
      return req.send().ignoreResult();
    });
  }
  kj::Promise<void> removed = vm_state_ == "stopped"
                                  ? kj::Promise<void>(kj::READY_NOW)
                                  : stopped.then([&c] { return c.agent.removeRequest().send().ignoreResult(); });
  return removed.then([this, &c] {
    const std::string id = c.id;
    auto hooks = c.bundle.hooks.poststop;
    std::string state = hook_state(c);
    share_->remove_container(id);
    containers_.erase(id);
    log::container_info("sandbox", id, "container deleted");
    if (hooks.empty()) return kj::Promise<void>(kj::READY_NOW);
    // runc logs a failed poststop hook and deletes anyway.
    return off_loop([hooks, state] { oci::run_hooks(hooks, "poststop", state); }).catch_([id](kj::Exception&& e) {
      log::container_warn("sandbox", id, "poststop hook failed", {{"error", std::string(e.getDescription().cStr())}});
    });
  });
}

void Sandbox::keep_until_exit(const std::string& container_id, kj::Promise<void> task, std::shared_ptr<void> resource) {
  auto& c = container(container_id);
  c.keep_alive.push_back(std::move(resource));
  tasks_.add(kj::mv(task));
}

kj::Promise<uint32_t> Sandbox::resize_vcpus(uint32_t vcpus) {
  if (vm_state_ != "running") throw_control_error("the sandbox's VM is " + vm_state_ + ", not running: its vCPUs can't be resized");
  if (!hv_.capabilities().vcpu_resize) throw_control_error(hv_.name() + " can't resize a running VM's vCPUs");
  try {
    hv_.resize_vcpus(vcpus);
  } catch (const ConfigError& e) {
    throw_control_error(e.what());
  }
  auto req = KJ_ASSERT_NONNULL(agent_).setOnlineCpusRequest();
  req.setCount(vcpus);
  return req.send().then([this, asked = vcpus](capnp::Response<api::Sandbox::SetOnlineCpusResults>&& r) {
    const uint32_t before = vcpus_;
    vcpus_ = r.getOnline();
    log::info("sandbox", "vCPUs resized",
              {{"asked", int64_t{asked}}, {"before", int64_t{before}}, {"online", int64_t{vcpus_}}});
    return vcpus_;
  });
}

uint64_t Sandbox::memory_mib() const { return booted_ ? hv_.memory_mib() : settings_.sizing.memory_mib; }

uint64_t Sandbox::max_memory_mib() const {
  return settings_.sizing.max_memory_mib ? settings_.sizing.max_memory_mib : settings_.sizing.memory_mib;
}

kj::Promise<uint64_t> Sandbox::resize_memory(uint64_t mib) {
  if (vm_state_ != "running") throw_control_error("the sandbox's VM is " + vm_state_ + ", not running: its memory can't be resized");
  if (!hv_.capabilities().memory_resize) throw_control_error(hv_.name() + " can't resize a running VM's memory");
  const uint64_t before = memory_mib();
  try {
    hv_.resize_memory(mib);
  } catch (const ConfigError& e) {
    throw_control_error(e.what());
  }
  // Answered once the guest has the memory, as Kata's hotplug answers once
  // the guest has onlined it: a caller that goes on to use it finds it there.
  const auto settle = settings_.memory_settle_ms * kj::MILLISECONDS;
  return await_plugged(mib, before, timer().now() + settle)
      .then([this, settle] { return await_online(0, timer().now() + settle); })
      .then([this, mib, before] {
        const uint64_t now = memory_mib();
        log::info("sandbox", "memory resized", {{"asked_mib", mib}, {"before_mib", before}, {"memory_mib", now}});
        return now;
      });
}

kj::Promise<void> Sandbox::await_plugged(uint64_t asked, uint64_t last, kj::TimePoint settle_by) {
  const uint64_t now_mib = memory_mib();
  const kj::TimePoint now = timer().now();
  if (now_mib == asked || vm_state_ == "stopped") return kj::READY_NOW;
  if (now_mib != last) settle_by = now + settings_.memory_settle_ms * kj::MILLISECONDS;  // it moves: wait on
  else if (now >= settle_by) return kj::READY_NOW;
  return timer().afterDelay(50 * kj::MILLISECONDS).then([this, asked, now_mib, settle_by] {
    return await_plugged(asked, now_mib, settle_by);
  });
}

kj::Promise<void> Sandbox::await_online(uint64_t last_bytes, kj::TimePoint settle_by) {
  // Linux adds and onlines a memory block after the device has said yes to
  // its plug, and takes memory offline before it asks to unplug it: its own
  // count (MemTotal, the agent's guestDetails) is the boot count plus what is
  // plugged once it has caught up.
  api::Sandbox::Client* agent = nullptr;
  KJ_IF_MAYBE (a, agent_) agent = a;
  if (!agent || guest_boot_memory_ == 0 || vm_state_ == "stopped") return kj::READY_NOW;
  const auto settle = settings_.memory_settle_ms * kj::MILLISECONDS;
  // A paused guest can't answer: that is no progress either.
  return timer()
      .timeoutAfter(settle, agent->guestDetailsRequest().send())
      .then(
          [this, last_bytes, settle_by, settle](capnp::Response<api::Sandbox::GuestDetailsResults>&& d) mutable
          -> kj::Promise<void> {
            const uint64_t bytes = d.getDetails().getMemoryBytes();
            const uint64_t want = guest_boot_memory_ + ((memory_mib() - settings_.sizing.memory_mib) << 20);
            const kj::TimePoint now = timer().now();
            if (bytes == want) return kj::READY_NOW;
            if (bytes != last_bytes) {
              settle_by = now + settle;
            } else if (now >= settle_by) {
              log::warn("sandbox", "the guest has not taken all of its memory online (or offline)",
                        {{"guest_bytes", bytes}, {"expected_bytes", want}});
              return kj::READY_NOW;
            }
            return timer().afterDelay(100 * kj::MILLISECONDS).then([this, bytes, settle_by] {
              return await_online(bytes, settle_by);
            });
          },
          [](kj::Exception&&) -> kj::Promise<void> { return kj::READY_NOW; });
}

void Sandbox::pause_vm() {
  if (vm_state_ != "running") throw_control_error("the sandbox's VM is " + vm_state_ + ", not running");
  hv_.pause();
  vm_state_ = "paused";
  emit({"paused", "", "", 0, {}, rfc3339_now()});
}

void Sandbox::resume_vm() {
  if (vm_state_ != "paused") throw_control_error("the sandbox's VM is " + vm_state_ + ", not paused");
  hv_.resume();
  vm_state_ = "running";
  emit({"resumed", "", "", 0, {}, rfc3339_now()});
}

kj::Promise<void> Sandbox::vm_ended() { return vm_ended_.addBranch(); }

kj::Promise<void> Sandbox::shutdown() {
  KJ_IF_MAYBE (s, shutting_down_) return s->addBranch();
  auto& timer = io_.provider->getTimer();
  kj::Promise<void> powered_off = kj::READY_NOW;
  if (vm_state_ == "paused") resume_vm();
  KJ_IF_MAYBE (agent, agent_) {
    if (vm_state_ == "running") {
      auto req = agent->powerOffRequest();
      powered_off = timer.timeoutAfter(5 * kj::SECONDS, req.send().ignoreResult()).catch_([](kj::Exception&&) {});
    }
  }
  auto done = powered_off
                  .then([this, &timer] {
                    return timer.timeoutAfter(10 * kj::SECONDS, vm_ended()).catch_([this](kj::Exception&&) {
                      log::warn("sandbox", "the guest did not power off in 10 s: stopping the VM");
                      hv_.stop();
                      return vm_ended();
                    });
                  })
                  .fork();
  shutting_down_ = done.addBranch().fork();
  return done.addBranch();
}

}  // namespace skiff::runtime
