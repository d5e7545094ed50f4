#include "agent/agent_service.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/inotify.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include <kj/debug.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <sstream>

#include "agent/agent_log.h"
#include "agent/cgroup.h"
#include "agent/cpu_online.h"
#include "agent/container_launcher.h"
#include "agent/container_spec.h"
#include "agent/net_stats.h"

namespace skiff::agent {
namespace {

// The description is what the host shows: the one line, nothing added.
[[noreturn]] void refuse(const std::string& why) {
  throw kj::Exception(kj::Exception::Type::FAILED, __FILE__, __LINE__, kj::heapString(why.data(), why.size()));
}

std::string text(capnp::Text::Reader t) { return std::string(t.cStr(), t.size()); }

// ---- streams ----

// Everything `in` yields, into `out`, then end(). A pty's read fails with
// EIO once the last process holding its other side is gone: that is its EOF.
kj::Promise<void> pump(kj::Own<kj::AsyncInputStream> in, api::ByteStream::Client out) {
  auto buf = kj::heapArray<kj::byte>(64 * 1024);
  // evalNow: a read that fails at once throws rather than rejecting.
  auto read = kj::evalNow([&] { return in->tryRead(buf.begin(), 1, buf.size()); });
  return read.catch_([](kj::Exception&&) -> size_t { return 0; })
      .then([in = kj::mv(in), out, buf = kj::mv(buf)](size_t n) mutable -> kj::Promise<void> {
        if (n == 0) return out.endRequest().send().ignoreResult().catch_([](kj::Exception&&) {});
        auto req = out.writeRequest();
        req.setBytes(kj::arrayPtr(buf.begin(), n));
        return req.send().then([in = kj::mv(in), out]() mutable { return pump(kj::mv(in), kj::mv(out)); });
      });
}

// Stdin: the host writes, the process reads.
class FdSink final : public api::ByteStream::Server {
 public:
  explicit FdSink(kj::Own<kj::AsyncOutputStream> out) : out_(kj::mv(out)) {}
  kj::Promise<void> write(WriteContext ctx) override {
    KJ_IF_MAYBE(o, out_) {
      auto bytes = ctx.getParams().getBytes();
      return (*o)->write(bytes.begin(), bytes.size());
    }
    refuse("stdin is closed");
  }
  kj::Promise<void> end(EndContext) override {
    out_ = nullptr;
    return kj::READY_NOW;
  }

 private:
  kj::Maybe<kj::Own<kj::AsyncOutputStream>> out_;
};

struct Exit {
  int32_t code = 0, signal = 0;
};

Exit exit_of(int wait_status) {
  if (WIFSIGNALED(wait_status)) return {128 + WTERMSIG(wait_status), WTERMSIG(wait_status)};
  return {WEXITSTATUS(wait_status), 0};
}

void set_exit(api::ExitStatus::Builder b, const Exit& e) {
  b.setCode(e.code);
  b.setSignal(e.signal);
}

// ---- one process ----

struct ProcessState {
  std::string exec_id;
  Launched launched;
  kj::Maybe<pid_t> live;  // until reaped (KJ nulls it)
  std::optional<Exit> exit;
  kj::Maybe<kj::ForkedPromise<void>> done;  // exited and its output ended
  kj::Maybe<api::ByteStream::Client> stdin_stream;
  int pty = -1;  // kept for resizes; owned by `pty_owner`
  Fd pty_owner;
  kj::Promise<void> pumps = kj::READY_NOW;

  pid_t pid() const { return launched.pid(); }
  bool running() const { return launched.started() && !exit; }
};

// The sinks of Sandbox.watch, each while its Subscription lives.
struct Watchers {
  std::map<uint64_t, api::EventSink::Client> sinks;
  uint64_t next_id = 0;

  // Sends `request` made by `make` to every sink; drops a sink whose call fails.
  template <typename Make>
  static void tell(const std::shared_ptr<Watchers>& w, Make make) {
    for (auto& [id, sink] : w->sinks) {
      std::weak_ptr<Watchers> weak = w;
      make(sink).send().detach([weak, id = id](kj::Exception&&) {
        if (auto live = weak.lock()) live->sinks.erase(id);
      });
    }
  }
};

class SubscriptionImpl final : public api::Subscription::Server {
 public:
  SubscriptionImpl(std::weak_ptr<Watchers> w, uint64_t id) : watchers_(std::move(w)), id_(id) {}
  ~SubscriptionImpl() {
    if (auto w = watchers_.lock()) w->sinks.erase(id_);
  }

 private:
  std::weak_ptr<Watchers> watchers_;
  uint64_t id_;
};

// After start(): reap it, let its output finish, tell the watchers.
void arm(kj::UnixEventPort& events, std::shared_ptr<ProcessState> p, std::string container_id, std::shared_ptr<Watchers> w) {
  p->live = p->pid();
  auto exited = events.onChildExit(p->live).then([p, container_id, w](int status) {
    p->exit = exit_of(status);
    log_info(p->exec_id.empty() ? "container exited" : "exec exited",
             {{"container", container_id}, {"exec", p->exec_id}, {"pid", std::to_string(p->pid())},
              {"code", std::to_string(p->exit->code)}, {"signal", std::to_string(p->exit->signal)}});
    Watchers::tell(w, [&](api::EventSink::Client& sink) {
      auto req = sink.containerExitedRequest();
      req.setContainerId(container_id);
      req.setExecId(p->exec_id);
      req.setPid(static_cast<uint32_t>(p->pid()));
      set_exit(req.initStatus(), *p->exit);
      return req;
    });
  });
  p->done = kj::joinPromises(kj::arr(kj::mv(exited), kj::mv(p->pumps))).fork();
}

class ProcessImpl final : public api::Process::Server {
 public:
  explicit ProcessImpl(std::shared_ptr<ProcessState> p) : p_(kj::mv(p)) {}

  kj::Promise<void> pid(PidContext ctx) override {
    ctx.getResults().setPid(static_cast<uint32_t>(p_->pid()));
    return kj::READY_NOW;
  }
  kj::Promise<void> stdin(StdinContext ctx) override {
    KJ_IF_MAYBE(s, p_->stdin_stream) {
      ctx.getResults().setStream(*s);
      return kj::READY_NOW;
    }
    refuse("the process has no stdin (Stdio.stdin was not set)");
  }
  kj::Promise<void> resizeTerminal(ResizeTerminalContext ctx) override {
    if (p_->pty < 0) refuse("the process has no terminal");
    winsize ws{ctx.getParams().getSize().getRows(), ctx.getParams().getSize().getCols(), 0, 0};
    if (::ioctl(p_->pty, TIOCSWINSZ, &ws) != 0) refuse(std::string("resize: ") + std::strerror(errno));
    return kj::READY_NOW;
  }
  kj::Promise<void> signal(SignalContext ctx) override {
    signal_process(*p_, ctx.getParams().getSignal());
    return kj::READY_NOW;
  }
  kj::Promise<void> wait(WaitContext ctx) override {
    KJ_IF_MAYBE(d, p_->done) {
      return d->addBranch().then([p = p_, ctx]() mutable { set_exit(ctx.getResults().initStatus(), *p->exit); });
    }
    refuse("the process has not started");
  }

  static void signal_process(ProcessState& p, int sig) {
    if (sig <= 0 || sig >= NSIG) refuse("signal " + std::to_string(sig) + " is not a signal");
    KJ_IF_MAYBE(pid, p.live) {
      if (::kill(*pid, sig) != 0) refuse(std::string("kill: ") + std::strerror(errno));
      return;
    }
    refuse("the process is not running");
  }

 private:
  std::shared_ptr<ProcessState> p_;
};

// ---- one container ----

struct ContainerState {
  std::string id;
  ContainerConfig config;
  std::optional<Cgroup> cgroup;
  std::shared_ptr<ProcessState> init;
  std::vector<std::shared_ptr<ProcessState>> execs;
  bool paused = false;
  // memory.events, watched for oom_kill rising (EventSink.oom); destroyed
  // watch first, then the observer, then the inotify fd.
  Fd oom_inotify;
  kj::Own<kj::UnixEventPort::FdObserver> oom_observer;
  uint64_t oom_kills = 0;
  kj::Promise<void> oom_watch = nullptr;
};

kj::Promise<void> watch_oom(ContainerState& c, std::shared_ptr<Watchers> w) {
  return c.oom_observer->whenBecomesReadable().then([&c, w] {
    char events[4096];
    while (::read(c.oom_inotify.get(), events, sizeof events) > 0) {
    }
    const uint64_t kills = c.cgroup->oom_kills();
    if (kills > c.oom_kills) {
      log_info("container OOM kill", {{"container", c.id}, {"oom_kills", std::to_string(kills)}});
      c.oom_kills = kills;
      Watchers::tell(w, [&](api::EventSink::Client& sink) {
        auto req = sink.oomRequest();
        req.setContainerId(c.id);
        return req;
      });
    }
    return watch_oom(c, w);
  });
}

// Where the cgroup has the memory controller (the guest's do).
void start_oom_watch(kj::UnixEventPort& events, ContainerState& c, std::shared_ptr<Watchers> w) {
  const std::string file = c.cgroup->dir() + "/memory.events";
  if (::access(file.c_str(), R_OK) != 0) return;
  Fd fd(::inotify_init1(IN_NONBLOCK | IN_CLOEXEC));
  if (!fd || ::inotify_add_watch(fd.get(), file.c_str(), IN_MODIFY) < 0) {
    log_error("no OOM events for the container", {{"container", c.id}, {"error", std::strerror(errno)}});
    return;
  }
  c.oom_inotify = std::move(fd);
  c.oom_observer = kj::heap<kj::UnixEventPort::FdObserver>(events, c.oom_inotify.get(), kj::UnixEventPort::FdObserver::OBSERVE_READ);
  c.oom_kills = c.cgroup->oom_kills();
  c.oom_watch = watch_oom(c, kj::mv(w)).eagerlyEvaluate([](kj::Exception&&) {});
}

class SandboxImpl;

// A process's stdio as the spec and the host's Stdio ask: a pty, or pipes
// whose other ends are pumped into the host's streams.
struct PreparedStdio {
  LaunchOptions options;
  Fd child_in, child_out, child_err;  // closed in the agent once the child has them
  kj::Maybe<kj::Own<kj::AsyncOutputStream>> stdin_writer;
  kj::Vector<kj::Promise<void>> pumps;
};

PreparedStdio prepare_stdio(kj::LowLevelAsyncIoProvider& io, bool terminal, api::Stdio::Reader stdio, LaunchOptions base) {
  PreparedStdio s;
  s.options = kj::mv(base);
  if (terminal) return s;  // the launcher makes the pty; see attach_terminal
  auto make_pipe = [](Fd& read_end, Fd& write_end) {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) refuse(std::string("pipe: ") + std::strerror(errno));
    read_end.reset(fds[0]);
    write_end.reset(fds[1]);
  };
  if (stdio.getStdin()) {
    Fd r, w;
    make_pipe(r, w);
    s.options.stdin_fd = r.get();
    s.child_in = kj::mv(r);
    s.stdin_writer = io.wrapOutputFd(w.release(), kj::LowLevelAsyncIoProvider::TAKE_OWNERSHIP);
  }
  // Output: the child writes one end, the other is pumped to the host.
  auto output = [&](api::ByteStream::Client to, int& child_fd, Fd& child_end) {
    Fd r, w;
    make_pipe(r, w);
    child_fd = w.get();
    child_end = kj::mv(w);
    s.pumps.add(pump(io.wrapInputFd(r.release(), kj::LowLevelAsyncIoProvider::TAKE_OWNERSHIP), kj::mv(to)));
  };
  if (stdio.hasStdout()) output(stdio.getStdout(), s.options.stdout_fd, s.child_out);
  if (stdio.hasStderr()) output(stdio.getStderr(), s.options.stderr_fd, s.child_err);
  return s;
}

std::shared_ptr<ProcessState> launch(kj::LowLevelAsyncIoProvider& io, const ContainerConfig& config, LaunchOptions base,
                                     api::Stdio::Reader stdio, std::string exec_id) {
  PreparedStdio s = prepare_stdio(io, config.process.terminal, stdio, kj::mv(base));
  auto p = std::make_shared<ProcessState>();
  p->exec_id = kj::mv(exec_id);
  try {
    p->launched = create_container(config, s.options);
  } catch (const LaunchError& e) {
    refuse(e.what());
  }
  s.child_in.reset();
  s.child_out.reset();
  s.child_err.reset();
  if (config.process.terminal) {
    p->pty_owner = p->launched.release_pty();
    p->pty = p->pty_owner.get();
    const int out = ::fcntl(p->pty, F_DUPFD_CLOEXEC, 3), in = ::fcntl(p->pty, F_DUPFD_CLOEXEC, 3);
    if (out < 0 || in < 0) refuse(std::string("dup the terminal: ") + std::strerror(errno));
    if (stdio.hasStdout()) s.pumps.add(pump(io.wrapInputFd(out, kj::LowLevelAsyncIoProvider::TAKE_OWNERSHIP), stdio.getStdout()));
    else ::close(out);
    if (stdio.getStdin()) s.stdin_writer = io.wrapOutputFd(in, kj::LowLevelAsyncIoProvider::TAKE_OWNERSHIP);
    else ::close(in);
  }
  KJ_IF_MAYBE(w, s.stdin_writer) { p->stdin_stream = api::ByteStream::Client(kj::heap<FdSink>(kj::mv(*w))); }
  p->pumps = kj::joinPromises(s.pumps.releaseAsArray());
  return p;
}

class ContainerImpl final : public api::Container::Server {
 public:
  ContainerImpl(SandboxImpl& sandbox, std::shared_ptr<ContainerState> c) : sandbox_(sandbox), c_(kj::mv(c)) {}

  kj::Promise<void> start(StartContext ctx) override;
  kj::Promise<void> init(InitContext ctx) override {
    ctx.getResults().setProcess(kj::heap<ProcessImpl>(c_->init));
    return kj::READY_NOW;
  }
  kj::Promise<void> exec(ExecContext ctx) override;
  kj::Promise<void> signal(SignalContext ctx) override {
    const int sig = ctx.getParams().getSignal();
    if (!ctx.getParams().getAll() || !c_->cgroup) {
      ProcessImpl::signal_process(*c_->init, sig);
      return kj::READY_NOW;
    }
    if (sig <= 0 || sig >= NSIG) refuse("signal " + std::to_string(sig) + " is not a signal");
    for (pid_t p : c_->cgroup->procs()) ::kill(p, sig);
    return kj::READY_NOW;
  }
  kj::Promise<void> wait(WaitContext ctx) override {
    KJ_IF_MAYBE(d, c_->init->done) {
      return d->addBranch().then([c = c_, ctx]() mutable { set_exit(ctx.getResults().initStatus(), *c->init->exit); });
    }
    refuse("container " + c_->id + " has not started");
  }
  kj::Promise<void> ps(PsContext ctx) override {
    std::vector<pid_t> pids;
    if (c_->cgroup) {
      pids = c_->cgroup->procs();
    } else {
      if (c_->init->running()) pids.push_back(c_->init->pid());
      for (auto& e : c_->execs)
        if (e->running()) pids.push_back(e->pid());
    }
    auto list = ctx.getResults().initPids(static_cast<unsigned>(pids.size()));
    for (size_t i = 0; i < pids.size(); ++i) list.set(static_cast<unsigned>(i), static_cast<uint32_t>(pids[i]));
    return kj::READY_NOW;
  }
  kj::Promise<void> stats(StatsContext ctx) override {
    const CgroupStats s = cgroup().stats();
    auto r = ctx.getResults().initStats();
    r.setCpuUsageUsec(s.cpu_usage_usec);
    r.setCpuUserUsec(s.cpu_user_usec);
    r.setCpuSystemUsec(s.cpu_system_usec);
    r.setMemoryCurrent(s.memory_current);
    r.setMemoryMax(s.memory_max);
    r.setMemoryOomKills(s.memory_oom_kills);
    r.setPidsCurrent(s.pids_current);
    r.setIoReadBytes(s.io_read_bytes);
    r.setIoWriteBytes(s.io_write_bytes);
    if (c_->init && c_->init->running()) {
      const NetCounters n = net_counters(c_->init->pid());
      r.setNetRxBytes(n.rx_bytes);
      r.setNetRxPackets(n.rx_packets);
      r.setNetTxBytes(n.tx_bytes);
      r.setNetTxPackets(n.tx_packets);
    }
    return kj::READY_NOW;
  }
  kj::Promise<void> pause(PauseContext) override {
    if (!c_->init->running()) refuse("container " + c_->id + " is not running");
    guarded([&] { cgroup().freeze(true); });
    c_->paused = true;
    return kj::READY_NOW;
  }
  kj::Promise<void> resume(ResumeContext) override {
    if (!c_->paused) refuse("container " + c_->id + " is not paused");
    guarded([&] { cgroup().freeze(false); });
    c_->paused = false;
    return kj::READY_NOW;
  }
  kj::Promise<void> update(UpdateContext ctx) override {
    CgroupResources r;
    try {
      r = cgroup_resources(ctx.getParams().getResources(), "resources");
    } catch (const SpecError& e) {
      refuse(e.what());
    }
    guarded([&] { cgroup().apply(r); });
    return kj::READY_NOW;
  }
  kj::Promise<void> state(StateContext ctx) override {
    auto r = ctx.getResults();
    const auto& init = *c_->init;
    r.setPid(static_cast<uint32_t>(init.pid()));
    if (init.exit) {
      r.setStatus(api::ContainerStatus::STOPPED);
      set_exit(r.initExit(), *init.exit);
    } else if (!init.launched.started()) {
      r.setStatus(api::ContainerStatus::CREATED);
    } else {
      r.setStatus(c_->paused ? api::ContainerStatus::PAUSED : api::ContainerStatus::RUNNING);
    }
    return kj::READY_NOW;
  }
  kj::Promise<void> remove(RemoveContext) override;

 private:
  Cgroup& cgroup() {
    if (!c_->cgroup) refuse("container " + c_->id + " has no cgroup (the agent runs without a cgroup parent)");
    return *c_->cgroup;
  }
  template <typename F>
  static void guarded(F&& f) {
    try {
      f();
    } catch (const CgroupError& e) {
      refuse(e.what());
    }
  }

  SandboxImpl& sandbox_;
  std::shared_ptr<ContainerState> c_;
};

bool valid_id(const std::string& id) {
  if (id.empty() || id.size() > 128) return false;
  for (char ch : id)
    if (!std::isalnum(static_cast<unsigned char>(ch)) && ch != '-' && ch != '_' && ch != '.') return false;
  return id != "." && id != "..";
}

class SandboxImpl final : public api::Sandbox::Server {
 public:
  SandboxImpl(kj::UnixEventPort& events, kj::LowLevelAsyncIoProvider& io, AgentOptions options)
      : events_(events), io_(io), options_(kj::mv(options)), watchers_(std::make_shared<Watchers>()) {}

  kj::Promise<void> setup(SetupContext ctx) override {
    auto cfg = ctx.getParams().getConfig();
    // All checked before anything changes.
    for (auto st : cfg.getStorages()) {
      const std::string driver = text(st.getDriver()), mp = text(st.getMountPoint());
      if (driver != "virtiofs" && driver != "blk") refuse("storage " + mp + ": unknown driver \"" + driver + "\" (virtiofs or blk)");
      if (mp.empty() || mp[0] != '/') refuse("storage: mountPoint must be absolute, not \"" + mp + "\"");
      if (driver == "blk" && text(st.getFsType()).empty()) refuse("storage " + mp + ": a blk storage needs its fsType");
    }
    for (auto kv : cfg.getSysctls()) {
      const std::string k = text(kv.getKey());
      if (k.empty() || k.find('/') != std::string::npos || k.find("..") != std::string::npos) refuse("sysctl: not a name: \"" + k + "\"");
    }
    const std::string host = text(cfg.getHostname());
    if (!host.empty() && ::sethostname(host.data(), host.size()) != 0) refuse(std::string("sethostname: ") + std::strerror(errno));
    if (cfg.getDnsServers().size() || cfg.getDnsSearches().size()) {
      std::ostringstream resolv;
      for (auto s : cfg.getDnsServers()) resolv << "nameserver " << text(s) << "\n";
      if (cfg.getDnsSearches().size()) {
        resolv << "search";
        for (auto s : cfg.getDnsSearches()) resolv << " " << text(s);
        resolv << "\n";
      }
      if (cfg.getDnsOptions().size()) {
        resolv << "options";
        for (auto s : cfg.getDnsOptions()) resolv << " " << text(s);
        resolv << "\n";
      }
      std::ofstream("/etc/resolv.conf") << resolv.str();
    }
    for (auto kv : cfg.getSysctls()) {
      std::string path = "/proc/sys/" + text(kv.getKey());
      for (size_t i = 10; i < path.size(); ++i)
        if (path[i] == '.') path[i] = '/';
      std::ofstream f(path);
      f << text(kv.getValue());
      if (!f.flush()) refuse("sysctl " + text(kv.getKey()) + ": cannot write " + path);
    }
    for (auto st : cfg.getStorages()) {
      const std::string driver = text(st.getDriver()), mp = text(st.getMountPoint()), src = text(st.getSource());
      std::string data;
      for (auto o : st.getOptions()) data += (data.empty() ? "" : ",") + text(o);
      // Its parents too (/run/skiff/shared: the runtime's place, not a fixed one).
      for (size_t slash = mp.find('/', 1); slash != std::string::npos; slash = mp.find('/', slash + 1))
        ::mkdir(mp.substr(0, slash).c_str(), 0755);
      ::mkdir(mp.c_str(), 0755);
      const std::string type = driver == "virtiofs" ? "virtiofs" : text(st.getFsType());
      if (::mount(src.c_str(), mp.c_str(), type.c_str(), 0, data.empty() ? nullptr : data.c_str()) != 0)
        refuse("storage " + mp + ": mount " + src + " (" + type + "): " + std::strerror(errno));
    }
    if (cfg.hasSandboxId()) set_log_sandbox(text(cfg.getSandboxId()));
    log_info("sandbox set up", {{"hostname", host}, {"storages", std::to_string(cfg.getStorages().size())}});
    return kj::READY_NOW;
  }

  kj::Promise<void> createContainer(CreateContainerContext ctx) override {
    auto params = ctx.getParams();
    const std::string id = text(params.getId());
    if (!valid_id(id)) refuse("container id \"" + id + "\": use 1 to 128 of [A-Za-z0-9._-]");
    if (containers_.count(id)) refuse("container " + id + " exists");
    auto c = std::make_shared<ContainerState>();
    c->id = id;
    try {
      c->config = container_config(params.getSpec());
    } catch (const SpecError& e) {
      refuse(e.what());
    }
    if (c->config.root.empty() || c->config.root[0] != '/') refuse("root.path: must be absolute in the guest, not \"" + c->config.root + "\"");
    LaunchOptions base;
    base.no_pivot = options_.no_pivot;
    if (!options_.cgroup_parent.empty()) {
      try {
        c->cgroup = Cgroup::create(options_.cgroup_parent, c->config.cgroups_path.empty() ? id : c->config.cgroups_path, c->config.resources);
      } catch (const CgroupError& e) {
        refuse(e.what());
      }
      base.cgroup_dir = c->cgroup->dir();
    }
    try {
      c->init = launch(io_, c->config, base, params.getStdio(), "");
    } catch (...) {
      if (c->cgroup) c->cgroup->remove(std::chrono::milliseconds(100));
      throw;
    }
    if (c->cgroup) start_oom_watch(events_, *c, watchers_);
    containers_[id] = c;
    log_info("container created", {{"container", id}, {"root", c->config.root}});
    // What the spec asks that the guest does not do: said once, not dropped silently.
    for (const auto& field : c->config.ignored) log_info("OCI field ignored", {{"container", id}, {"field", field}});
    ctx.getResults().setContainer(kj::heap<ContainerImpl>(*this, c));
    return kj::READY_NOW;
  }

  kj::Promise<void> container(ContainerContext ctx) override {
    const auto it = containers_.find(text(ctx.getParams().getId()));
    if (it == containers_.end()) refuse("no container " + text(ctx.getParams().getId()));
    ctx.getResults().setContainer(kj::heap<ContainerImpl>(*this, it->second));
    return kj::READY_NOW;
  }
  kj::Promise<void> listContainers(ListContainersContext ctx) override {
    auto ids = ctx.getResults().initIds(static_cast<unsigned>(containers_.size()));
    unsigned i = 0;
    for (const auto& [id, c] : containers_) ids.set(i++, id);
    return kj::READY_NOW;
  }
  kj::Promise<void> health(HealthContext ctx) override {
    ctx.getResults().setServing(true);
    return kj::READY_NOW;
  }
  kj::Promise<void> version(VersionContext ctx) override {
    ctx.getResults().setAgentVersion(options_.version);
    ctx.getResults().setApiVersion(api::API_VERSION);
    return kj::READY_NOW;
  }
  kj::Promise<void> guestDetails(GuestDetailsContext ctx) override {
    auto d = ctx.getResults().initDetails();
    utsname u{};
    ::uname(&u);
    d.setKernelRelease(u.release);
    d.setCpus(static_cast<uint32_t>(::sysconf(_SC_NPROCESSORS_ONLN)));
    d.setMemoryBytes(static_cast<uint64_t>(::sysconf(_SC_PHYS_PAGES)) * static_cast<uint64_t>(::sysconf(_SC_PAGESIZE)));
    std::ifstream block("/sys/devices/system/memory/block_size_bytes");
    std::string hex;
    if (block >> hex) d.setMemoryBlockSizeBytes(std::strtoull(hex.c_str(), nullptr, 16));
    d.setAgentVersion(options_.version);
    return kj::READY_NOW;
  }
  kj::Promise<void> setTime(SetTimeContext ctx) override {
    const int64_t ns = ctx.getParams().getUnixNanos();
    if (ns <= 0) refuse("setTime: " + std::to_string(ns) + " is not a time after 1970");
    const timespec ts{static_cast<time_t>(ns / 1000000000), static_cast<long>(ns % 1000000000)};
    if (::clock_settime(CLOCK_REALTIME, &ts) != 0) refuse(std::string("clock_settime: ") + std::strerror(errno));
    return kj::READY_NOW;
  }
  kj::Promise<void> watch(WatchContext ctx) override {
    const uint64_t id = watchers_->next_id++;
    watchers_->sinks.emplace(id, ctx.getParams().getSink());
    ctx.getResults().setSubscription(kj::heap<SubscriptionImpl>(watchers_, id));
    return kj::READY_NOW;
  }
  kj::Promise<void> powerOff(PowerOffContext ctx) override {
    if (!options_.power_off) refuse("powerOff: this agent does not own its machine");
    for (auto& [id, c] : containers_)
      if (c->cgroup) c->cgroup->kill_all();
    options_.power_off(ctx.getParams().getReboot());
    return kj::READY_NOW;
  }

  kj::Promise<void> setOnlineCpus(SetOnlineCpusContext ctx) override {
    try {
      ctx.getResults().setOnline(set_online_cpus(options_.cpu_sysfs_dir, ctx.getParams().getCount()));
    } catch (const std::runtime_error& e) {
      refuse(e.what());
    }
    return kj::READY_NOW;
  }

  kj::UnixEventPort& events() { return events_; }
  kj::LowLevelAsyncIoProvider& io() { return io_; }
  const std::shared_ptr<Watchers>& watchers() const { return watchers_; }
  void forget(const std::string& id) { containers_.erase(id); }

 private:
  kj::UnixEventPort& events_;
  kj::LowLevelAsyncIoProvider& io_;
  AgentOptions options_;
  std::shared_ptr<Watchers> watchers_;
  std::map<std::string, std::shared_ptr<ContainerState>> containers_;
};

kj::Promise<void> ContainerImpl::start(StartContext ctx) {
  auto& init = *c_->init;
  if (init.launched.started()) refuse("container " + c_->id + " has already started");
  try {
    init.launched.start();
  } catch (const LaunchError& e) {
    // It exited; reap it through the loop like any other.
    arm(sandbox_.events(), c_->init, c_->id, sandbox_.watchers());
    refuse(e.what());
  }
  arm(sandbox_.events(), c_->init, c_->id, sandbox_.watchers());
  log_info("container started", {{"container", c_->id}, {"pid", std::to_string(init.pid())}});
  ctx.getResults().setPid(static_cast<uint32_t>(init.pid()));
  return kj::READY_NOW;
}

kj::Promise<void> ContainerImpl::exec(ExecContext ctx) {
  if (!c_->init->running()) refuse("container " + c_->id + " is not running");
  auto params = ctx.getParams();
  const std::string exec_id = text(params.getExecId());
  if (!valid_id(exec_id)) refuse("exec id \"" + exec_id + "\": use 1 to 128 of [A-Za-z0-9._-]");
  for (auto& e : c_->execs)
    if (e->exec_id == exec_id && e->running()) refuse("exec " + exec_id + " is running in container " + c_->id);
  ContainerConfig config = c_->config;
  try {
    config.process = process_config(params.getProcess(), "process");
  } catch (const SpecError& e) {
    refuse(e.what());
  }
  LaunchOptions base;
  base.exec_in = c_->init->pid();
  if (c_->cgroup) base.cgroup_dir = c_->cgroup->dir();
  auto p = launch(sandbox_.io(), config, base, params.getStdio(), exec_id);
  try {
    p->launched.start();
  } catch (const LaunchError& e) {
    arm(sandbox_.events(), p, c_->id, sandbox_.watchers());
    refuse(e.what());
  }
  arm(sandbox_.events(), p, c_->id, sandbox_.watchers());
  c_->execs.push_back(p);
  ctx.getResults().setProcess(kj::heap<ProcessImpl>(p));
  return kj::READY_NOW;
}

kj::Promise<void> ContainerImpl::remove(RemoveContext) {
  auto c = c_;
  auto& sandbox = sandbox_;
  if (c->cgroup) {
    if (c->paused) c->cgroup->freeze(false);
    c->cgroup->kill_all();
  } else {
    KJ_IF_MAYBE(pid, c->init->live) { ::kill(*pid, SIGKILL); }
    for (auto& e : c->execs) KJ_IF_MAYBE(pid, e->live) { ::kill(*pid, SIGKILL); }
  }
  // A created, never started init goes now; a started one when it is reaped.
  c->init->launched.abandon();
  kj::Promise<void> gone = kj::READY_NOW;
  KJ_IF_MAYBE(d, c->init->done) { gone = d->addBranch(); }
  return gone.then([c, &sandbox]() {
    if (c->cgroup) {
      try {
        c->cgroup->remove();
      } catch (const CgroupError& e) {
        refuse(e.what());
      }
    }
    sandbox.forget(c->id);
  });
}

}  // namespace

kj::Own<api::Sandbox::Server> make_sandbox(kj::UnixEventPort& events, kj::LowLevelAsyncIoProvider& io, AgentOptions options) {
  return kj::heap<SandboxImpl>(events, io, kj::mv(options));
}

}  // namespace skiff::agent
