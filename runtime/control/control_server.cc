#include "runtime/control/control_server.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <capnp/rpc-twoparty.h>

#include <list>

#include "base/log.h"
#include "base/sys_error.h"
#include "runtime/control/peer_credentials.h"
#include "runtime/sandbox/console.h"
#include "runtime/sandbox/control_errors.h"
#include "runtime/sandbox/stdio_streams.h"
#include "runtime/state/state_store.h"
#include "skiff_version.h"

namespace skiff::runtime {
namespace ctl = api::control;
namespace {

// Runs `fn` (which may throw synchronously) so that every failure reaches the
// caller as one clean line.
template <typename F>
kj::Promise<void> answer(F&& fn) {
  return kj::evalNow([&]() -> kj::Promise<void> {
           if constexpr (std::is_void_v<decltype(fn())>) {
             fn();
             return kj::READY_NOW;
           } else {
             return fn();
           }
         })
      .catch_([](kj::Exception&& e) -> kj::Promise<void> {
    return control_error(error_line(e));
  });
}

void fill_info(const Sandbox::Container& c, ctl::ContainerInfo::Builder info) {
  info.setId(c.id);
  info.setBundle(c.bundle.dir);
  info.setRootfs(c.bundle.rootfs);
  info.setStatus(c.status);
  info.setPid(static_cast<uint32_t>(::getpid()));
  info.setGuestPid(c.guest_pid);
  info.setCreated(c.created);
  auto ann = info.initAnnotations(static_cast<unsigned>(c.bundle.annotations.size()));
  unsigned i = 0;
  for (const auto& [k, v] : c.bundle.annotations) {
    ann[i].setKey(k);
    ann[i++].setValue(v);
  }
  if (c.exit) {
    info.setHasExit(true);
    info.getExit().setCode(c.exit->code);
    info.getExit().setSignal(c.exit->signal);
  }
}

kj::Maybe<api::ByteStream::Client> stream_of(api::Stdio::Reader stdio, bool err) {
  if (err ? stdio.hasStderr() : stdio.hasStdout()) return err ? stdio.getStderr() : stdio.getStdout();
  return nullptr;
}

class ContainerServer final : public ctl::Container::Server {
 public:
  ContainerServer(Sandbox& sandbox, std::string id) : sandbox_(sandbox), id_(std::move(id)) {}

  kj::Promise<void> info(InfoContext ctx) override {
    return answer([&] { fill_info(sandbox_.container(id_), ctx.getResults().initInfo()); });
  }
  kj::Promise<void> start(StartContext ctx) override {
    return answer([&] {
      return sandbox_.start_container(c()).then([ctx](uint32_t pid) mutable { ctx.getResults().setGuestPid(pid); });
    });
  }
  kj::Promise<void> init(InitContext ctx) override {
    return answer([&] { ctx.getResults().setProcess(c().agent.initRequest().send().getProcess()); });
  }
  kj::Promise<void> exec(ExecContext ctx) override {
    return answer([&] {
      auto& con = c();
      if (con.status != "running" && con.status != "paused")
        throw_control_error("container \"" + id_ + "\" is " + con.status + ", not running: nothing to exec into");
      auto p = ctx.getParams();
      auto req = con.agent.execRequest();
      req.setExecId(p.getExecId());
      req.setProcess(p.getProcess());
      if (p.getConsoleSocket().size() == 0) {
        req.setStdio(p.getStdio());
        return req.send().then([ctx](auto r) mutable { ctx.getResults().setProcess(r.getProcess()); });
      }
      if (!p.getProcess().getTerminal()) throw_control_error("a console socket needs a process with a terminal");
      auto slave = std::make_shared<UniqueFd>(hand_over_terminal(p.getConsoleSocket()));
      auto stdio = req.initStdio();
      stdio.setStdout(kj::heap<FdOutputStream>(UniqueFd(::fcntl(slave->get(), F_DUPFD_CLOEXEC, 3))));
      stdio.setStdin(true);
      return req.send().then([this, ctx, slave](auto r) mutable {
        auto process = r.getProcess();
        ctx.getResults().setProcess(process);
        return process.stdinRequest().send().then([this, process, slave](auto s) mutable {
          auto pump = std::make_shared<FdInputPump>(sandbox_.io(), UniqueFd(::fcntl(slave->get(), F_DUPFD_CLOEXEC, 3)), s.getStream());
          sandbox_.keep_until_exit(id_, forward_window_size(sandbox_.timer(), slave->get(), process).attach(kj::mv(pump)),
                                   slave);
        });
      });
    });
  }
  kj::Promise<void> kill(KillContext ctx) override {
    return answer([&] { return sandbox_.kill(c(), ctx.getParams().getSignal(), ctx.getParams().getAll()); });
  }
  kj::Promise<void> ps(PsContext ctx) override {
    return answer([&] {
      return c().agent.psRequest().send().then([ctx](auto r) mutable { ctx.getResults().setPids(r.getPids()); });
    });
  }
  kj::Promise<void> stats(StatsContext ctx) override {
    return answer([&] {
      return c().agent.statsRequest().send().then([ctx](auto r) mutable { ctx.getResults().setStats(r.getStats()); });
    });
  }
  kj::Promise<void> update(UpdateContext ctx) override {
    return answer([&] {
      auto req = c().agent.updateRequest();
      req.setResources(ctx.getParams().getResources());
      return req.send().ignoreResult();
    });
  }
  kj::Promise<void> pause(PauseContext) override {
    return answer([&] { return sandbox_.pause_container(c()); });
  }
  kj::Promise<void> resume(ResumeContext) override {
    return answer([&] { return sandbox_.resume_container(c()); });
  }
  kj::Promise<void> wait(WaitContext ctx) override {
    return answer([&] {
      return sandbox_.wait(c()).then([ctx](ExitInfo e) mutable {
        auto s = ctx.getResults().initStatus();
        s.setCode(e.code);
        s.setSignal(e.signal);
      });
    });
  }
  kj::Promise<void> delete_(DeleteContext ctx) override {
    return answer([&] { return sandbox_.delete_container(c(), ctx.getParams().getForce()); });
  }

 private:
  // The container, once the guest has it (every call but info needs that).
  Sandbox::Container& c() {
    auto& con = sandbox_.container(id_);
    if (con.status == "creating") throw_control_error("container \"" + id_ + "\" is still being created");
    return con;
  }
  Sandbox& sandbox_;
  std::string id_;
};

// Sinks of Sandbox.events, each kept while its subscriber holds the
// Subscription.
class EventHub {
 public:
  struct Entry {
    ctl::EventSink::Client sink;
    bool live = true;
  };
  class Errors final : public kj::TaskSet::ErrorHandler {
   public:
    void taskFailed(kj::Exception&&) override {}  // a subscriber that went away
  } errors;
  std::list<Entry> sinks;
  kj::TaskSet tasks;
  EventHub() : tasks(errors) {}

  void publish(const SandboxEvent& e) {
    for (auto& s : sinks) {
      if (!s.live) continue;
      auto req = s.sink.eventRequest();
      auto ev = req.initEvent();
      ev.setType(e.type);
      ev.setContainerId(e.container_id);
      ev.setExecId(e.exec_id);
      ev.setPid(e.pid);
      ev.getExit().setCode(e.exit.code);
      ev.getExit().setSignal(e.exit.signal);
      ev.setTime(e.time);
      tasks.add(req.send().ignoreResult());
    }
  }
};

class SubscriptionImpl final : public api::Subscription::Server {
 public:
  SubscriptionImpl(std::shared_ptr<EventHub> hub, std::list<EventHub::Entry>::iterator it) : hub_(std::move(hub)), it_(it) {}
  ~SubscriptionImpl() { hub_->sinks.erase(it_); }

 private:
  std::shared_ptr<EventHub> hub_;
  std::list<EventHub::Entry>::iterator it_;
};

class SandboxServer final : public ctl::Sandbox::Server {
 public:
  SandboxServer(Sandbox& sandbox, std::function<void()> on_shutdown)
      : sandbox_(sandbox), on_shutdown_(std::move(on_shutdown)), hub_(std::make_shared<EventHub>()) {
    auto previous = std::move(sandbox_.on_event);
    sandbox_.on_event = [previous, hub = hub_](const SandboxEvent& e) {
      if (previous) previous(e);
      hub->publish(e);
    };
  }

  kj::Promise<void> info(InfoContext ctx) override {
    return answer([&] {
      auto i = ctx.getResults().initInfo();
      const auto& s = sandbox_.settings();
      i.setId(s.id);
      i.setPid(static_cast<uint32_t>(::getpid()));
      i.setState(sandbox_.vm_state());
      i.setVcpus(sandbox_.vcpus());
      i.setMemoryMib(sandbox_.memory_mib());
      i.setMaxMemoryMib(sandbox_.max_memory_mib());
      i.setVersion(SKIFF_VERSION);
      i.setCommit(SKIFF_COMMIT);
      i.setAgentVersion(sandbox_.agent_version());
      i.setGuestKernel(sandbox_.guest_kernel());
      i.setBootMillis(sandbox_.boot_millis());
      auto list = sandbox_.containers();
      auto out = i.initContainers(static_cast<unsigned>(list.size()));
      for (unsigned k = 0; k < list.size(); ++k) fill_info(*list[k], out[k]);
    });
  }
  kj::Promise<void> createContainer(CreateContainerContext ctx) override {
    return answer([&] {
      auto p = ctx.getParams();
      std::string id = p.getId();
      ContainerIo io;
      io.out = stream_of(p.getStdio(), false);
      io.err = stream_of(p.getStdio(), true);
      io.stdin = p.getStdio().getStdin();
      auto bundle = oci::load_bundle(p.getBundle());
      return sandbox_.create_container(id, std::move(bundle), std::move(io)).then([this, ctx, id](Sandbox::Container*) mutable {
        ctx.getResults().setContainer(kj::heap<ContainerServer>(sandbox_, id));
      });
    });
  }
  kj::Promise<void> container(ContainerContext ctx) override {
    return answer([&] {
      std::string id = ctx.getParams().getId();
      sandbox_.container(id);  // throws for an unknown one
      ctx.getResults().setContainer(kj::heap<ContainerServer>(sandbox_, id));
    });
  }
  kj::Promise<void> listContainers(ListContainersContext ctx) override {
    return answer([&] {
      auto list = sandbox_.containers();
      auto out = ctx.getResults().initContainers(static_cast<unsigned>(list.size()));
      for (unsigned k = 0; k < list.size(); ++k) fill_info(*list[k], out[k]);
    });
  }
  kj::Promise<void> pause(PauseContext) override {
    return answer([&] { sandbox_.pause_vm(); });
  }
  kj::Promise<void> resume(ResumeContext) override {
    return answer([&] { sandbox_.resume_vm(); });
  }
  kj::Promise<void> events(EventsContext ctx) override {
    return answer([&] {
      hub_->sinks.push_back({ctx.getParams().getSink(), true});
      ctx.getResults().setSubscription(kj::heap<SubscriptionImpl>(hub_, std::prev(hub_->sinks.end())));
    });
  }
  kj::Promise<void> shutdown(ShutdownContext) override {
    return answer([&] {
      return sandbox_.shutdown().then([this] {
        // After this turn, once the answer has gone out.
        if (on_shutdown_) later_.add(kj::evalLater([this] { on_shutdown_(); }));
      });
    });
  }
  kj::Promise<void> resizeVcpus(ResizeVcpusContext ctx) override {
    return answer([&] {
      return sandbox_.resize_vcpus(ctx.getParams().getVcpus()).then([ctx](uint32_t online) mutable {
        ctx.getResults().setVcpus(online);
      });
    });
  }
  kj::Promise<void> resizeMemory(ResizeMemoryContext ctx) override {
    return answer([&] {
      return sandbox_.resize_memory(ctx.getParams().getMemoryMib()).then([ctx](uint64_t mib) mutable {
        ctx.getResults().setMemoryMib(mib);
      });
    });
  }
  kj::Promise<void> ping(PingContext ctx) override {
    ctx.getResults().setApiVersion(ctl::CONTROL_API_VERSION);
    return kj::READY_NOW;
  }

 private:
  Sandbox& sandbox_;
  std::function<void()> on_shutdown_;
  std::shared_ptr<EventHub> hub_;
  kj::TaskSet later_{hub_->errors};
};

}  // namespace

ctl::Sandbox::Client make_control_sandbox(Sandbox& sandbox, std::function<void()> on_shutdown) {
  return kj::heap<SandboxServer>(sandbox, std::move(on_shutdown));
}

class ControlServer::Impl final : private kj::TaskSet::ErrorHandler {
 public:
  Impl(kj::AsyncIoContext& io, const std::string& path, ctl::Sandbox::Client bootstrap)
      : server_(kj::mv(bootstrap)), tasks_(*this) {
    UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    if (!fd) throw_errno("socket for the control API");
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    if (path.size() >= sizeof addr.sun_path) throw std::invalid_argument("control socket path too long: " + path);
    std::copy(path.begin(), path.end(), addr.sun_path);
    ::unlink(path.c_str());
    // Created 0600 from the start: no moment where another user could connect.
    const mode_t old = ::umask(0177);
    int rc = ::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr);
    ::umask(old);
    if (rc != 0) throw_errno("bind " + path);
    if (::listen(fd.get(), 64) != 0) throw_errno("listen on " + path);
    listener_ = io.lowLevelProvider->wrapListenSocketFd(fd.release(), kj::LowLevelAsyncIoProvider::TAKE_OWNERSHIP);
    tasks_.add(accept_loop());
  }

 private:
  kj::Promise<void> accept_loop() {
    return listener_->accept().then([this](kj::Own<kj::AsyncIoStream> conn) {
      if (peer_allowed(*conn, "control")) server_.accept(kj::mv(conn));
      return accept_loop();
    });
  }
  void taskFailed(kj::Exception&& e) override {
    log::error("control", "the control socket stopped accepting", {{"error", std::string(e.getDescription().cStr())}});
  }

  capnp::TwoPartyServer server_;
  kj::Own<kj::ConnectionReceiver> listener_;
  kj::TaskSet tasks_;
};

ControlServer::ControlServer(kj::AsyncIoContext& io, std::string socket_path, ctl::Sandbox::Client bootstrap)
    : impl_(kj::heap<Impl>(io, socket_path, kj::mv(bootstrap))), path_(std::move(socket_path)) {}

ControlServer::~ControlServer() {
  impl_ = nullptr;
  ::unlink(path_.c_str());
}

}  // namespace skiff::runtime
