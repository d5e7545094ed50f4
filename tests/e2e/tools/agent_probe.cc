// agent_probe: drives the guest agent over virtio-vsock, through the Unix
// socket front end of Skiff's in-process vsock device ("CONNECT <port>"),
// with real Cap'n Proto RPC, and checks what it answers. The e2e case
// e2e.agent runs it against a booted guest whose /init is the agent.
//
//   agent_probe SOCKET PORT STEP...
// Steps, in the order given, over one connection:
//   setup         Sandbox.setup: hostname, the virtio-fs tag "share" on /run/share
//   echo          a container echoes a line, exits 0
//   exec_signal   a long-running container: exec into it, ps, SIGTERM ends it with its trap's status
//   terminal      a terminal process: its window size, then again after resizeTerminal
//   exit_status   a container's non-zero exit status
//   bad_spec      a relative cwd and a missing rootfs are refused with their reasons, nothing left behind
//   oom_stats     a container under a 16 MiB memory limit: its stats, a device rule that denies
//                 reading /dev/kmsg, an update that allows it, then it outgrows the limit: killed,
//                 and EventSink.oom names it
//   blk_volume    Sandbox.setup mounts the block device /dev/vda (ext4) on /run/vol; a container
//                 gets it bind-mounted at /vol and writes a file there (the host finds it in the image)
//   orphans       a container in the guest's own pid namespace leaves an orphan behind; once it
//                 exits, PID 1 has reaped it (no zombie left in /proc)
//   bench         figures, no checks: Sandbox.version round trips (median, p90 of 500) and
//                 createContainer+start pipelined to the first output byte, and to exit (of 10)
//   poweroff      Sandbox.powerOff
// Prints one line per check; exits 1 at the first failed check.
//
//   agent_probe time-command RUNS CMD [ARGS...]
// The peer's figures for `bench`: runs CMD RUNS times (after 2 more to warm
// up; "{i}" in an argument becomes the run's number, for runc's container
// ids) and prints spawn -> first output byte and spawn -> exit, as `bench`
// prints create+start -> first output and -> exit.
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <fcntl.h>
#include <unistd.h>

#include <capnp/rpc-twoparty.h>
#include <kj/async-io.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <optional>
#include <vector>
#include <cstring>
#include <iostream>
#include <string>
#include <thread>

#include "api/agent.capnp.h"
#include "tests/agent/agent_test_support.h"

namespace {

using skiff::agent::testing::Collector;
using skiff::agent::testing::shell_process;
using skiff::agent::testing::shell_spec;
namespace api = skiff::api;

const char* kRootfs = "/run/share/rootfs";

[[noreturn]] void fail(const std::string& why) {
  std::cout << "agent_probe: FAIL: " << why << std::endl;
  std::exit(1);
}

void check(bool ok, const std::string& what, const std::string& detail = "") {
  if (!ok) fail(what + (detail.empty() ? "" : " (" + detail + ")"));
  std::cout << "agent_probe: ok: " << what << std::endl;
}

// The host end of a guest port: "CONNECT <port>" on the VMM's socket, "OK" back.
// The agent may still be booting: refused connections are retried for 60 s.
int connect_guest(const std::string& path, unsigned port) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  for (;;) {
    int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) {
      std::string line = "CONNECT " + std::to_string(port) + "\n";
      if (::write(fd, line.data(), line.size()) == static_cast<ssize_t>(line.size())) {
        std::string reply;
        char c;
        while (reply.size() < 64 && ::read(fd, &c, 1) == 1 && c != '\n') reply += c;
        if (reply.starts_with("OK ")) return fd;
      }
    }
    ::close(fd);
    if (std::chrono::steady_clock::now() > deadline) fail("no agent on guest port " + std::to_string(port) + " within 60 s");
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
}

// Each reply is kept in a variable of its own while its readers are used
// (a reader into a temporary reply dangles).
class Probe {
 public:
  Probe(kj::AsyncIoContext& io, int fd)
      : io_(io),
        stream_(io.lowLevelProvider->wrapSocketFd(fd, kj::LowLevelAsyncIoProvider::TAKE_OWNERSHIP)),
        client_(*stream_),
        sandbox_(client_.bootstrap().castAs<api::Sandbox>()) {}

  void run(const std::string& step) {
    if (step == "setup") return setup();
    if (step == "echo") return echo();
    if (step == "exec_signal") return exec_signal();
    if (step == "terminal") return terminal();
    if (step == "exit_status") return exit_status();
    if (step == "bad_spec") return bad_spec();
    if (step == "oom_stats") return oom_stats();
    if (step == "bench") return bench();
    if (step == "blk_volume") return blk_volume();
    if (step == "orphans") return orphans();
    if (step == "poweroff") return poweroff();
    fail("unknown step '" + step + "'");
  }

 private:
  kj::WaitScope& ws() { return io_.waitScope; }

  std::string error_of(kj::Promise<void> p) {
    try {
      p.wait(ws());
    } catch (const kj::Exception& e) {
      std::string d = e.getDescription().cStr();
      const std::string remote = "remote exception: ";
      return d.starts_with(remote) ? d.substr(remote.size()) : d;
    }
    return "(no error)";
  }

  // Writes `line` to the process's stdin (Stdio.stdin was set).
  void send_line(api::Process::Client& process, const std::string& line) {
    auto w = process.stdinRequest().send().wait(ws()).getStream().writeRequest();
    w.setBytes(kj::arrayPtr(reinterpret_cast<const kj::byte*>(line.data()), line.size()));
    w.send().wait(ws());
  }

  // Waits for `out` to contain `text` (output streams in as the process runs).
  bool await_output(const std::string& out, const std::string& text, int seconds = 20) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
    while (out.find(text) == std::string::npos) {
      if (std::chrono::steady_clock::now() > deadline) return false;
      io_.provider->getTimer().afterDelay(20 * kj::MILLISECONDS).wait(ws());
    }
    return true;
  }

  api::Container::Client create(const std::string& id, const std::string& script, std::string& out,
                                bool terminal = false, bool stdin = false,
                                std::initializer_list<const char*> namespaces = {"mount", "pid", "ipc", "uts"}) {
    auto req = sandbox_.createContainerRequest();
    req.setId(id);
    shell_spec(req.initSpec(), kRootfs, script, namespaces);
    auto p = req.getSpec().getProcess();
    p.setTerminal(terminal);
    p.getConsoleSize().setRows(24);
    p.getConsoleSize().setCols(80);
    auto env = p.initEnv(1);
    env.set(0, "PATH=/bin");
    auto stdio = req.initStdio();
    stdio.setStdout(kj::heap<Collector>(out));
    stdio.setStderr(kj::heap<Collector>(out));
    stdio.setStdin(stdin);
    return req.send().getContainer();
  }

  void setup() {
    auto req = sandbox_.setupRequest();
    auto c = req.initConfig();
    c.setHostname("skiff-e2e");
    c.setSandboxId("e2e-sandbox");
    auto st = c.initStorages(1)[0];
    st.setDriver("virtiofs");
    st.setSource("share");
    st.setMountPoint("/run/share");
    req.send().wait(ws());
    auto v = sandbox_.versionRequest().send().wait(ws());
    check(v.getApiVersion() > 0, std::string("setup, agent version ") + v.getAgentVersion().cStr());
    auto d = sandbox_.guestDetailsRequest().send().wait(ws());
    auto details = d.getDetails();
    check(details.getCpus() >= 1 && details.getMemoryBytes() > 0,
          "guest details: kernel " + std::string(details.getKernelRelease().cStr()) + ", " +
              std::to_string(details.getCpus()) + " cpu(s), " + std::to_string(details.getMemoryBytes() >> 20) + " MiB");
  }

  void echo() {
    std::string out;
    const auto t0 = std::chrono::steady_clock::now();
    auto c = create("echo", "echo hello from a container; hostname", out);
    c.startRequest().send().wait(ws());
    auto status_reply = c.waitRequest().send().wait(ws());
    auto status = status_reply.getStatus();
    const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    await_output(out, "\n", 5);
    check(status.getCode() == 0 && out.find("hello from a container") != std::string::npos,
          "echo: exit 0, its output came back", "exit " + std::to_string(status.getCode()) + ", output '" + out + "'");
    std::cout << "agent_probe: echo: create, start, exit in " << ms << " ms" << std::endl;
    c.removeRequest().send().wait(ws());
  }

  void exec_signal() {
    std::string out;
    auto c = create("sleeper", "trap 'echo got TERM; exit 7' TERM; echo ready; while :; do sleep 0.1; done", out);
    auto started = c.startRequest().send().wait(ws());
    check(await_output(out, "ready"), "long-running container started, pid " + std::to_string(started.getPid()));

    std::string exec_out;
    auto req = c.execRequest();
    req.setExecId("look");
    auto p = req.initProcess();
    shell_process(p, "echo exec in $(cat /proc/1/comm); ls /proc | grep -c '^[0-9]'");
    p.initEnv(1).set(0, "PATH=/bin");
    req.initStdio().setStdout(kj::heap<Collector>(exec_out));
    auto proc = req.send().getProcess();
    auto exec_status_reply = proc.waitRequest().send().wait(ws());
    auto exec_status = exec_status_reply.getStatus();
    await_output(exec_out, "\n", 5);
    check(exec_status.getCode() == 0 && exec_out.find("exec in sh") != std::string::npos,
          "exec joined the container's pid namespace", "exit " + std::to_string(exec_status.getCode()) + ", output '" + exec_out + "'");

    auto ps_reply = c.psRequest().send().wait(ws());
    auto ps = ps_reply.getPids();
    check(ps.size() >= 1, "ps lists " + std::to_string(ps.size()) + " process(es)");

    auto sig = c.signalRequest();
    sig.setSignal(15);
    sig.send().wait(ws());
    auto status_reply = c.waitRequest().send().wait(ws());
    auto status = status_reply.getStatus();
    await_output(out, "got TERM", 5);
    check(status.getCode() == 7 && out.find("got TERM") != std::string::npos, "SIGTERM ran the trap, exit 7",
          "exit " + std::to_string(status.getCode()) + ", output '" + out + "'");
    c.removeRequest().send().wait(ws());
  }

  void terminal() {
    std::string out;
    auto c = create("tty", "stty size; read line; stty size", out, true, true);
    auto init = c.initRequest().send().getProcess();
    c.startRequest().send().wait(ws());
    check(await_output(out, "24 80"), "terminal process sees 24x80", "output '" + out + "'");
    auto resize = init.resizeTerminalRequest();
    resize.getSize().setRows(50);
    resize.getSize().setCols(132);
    resize.send().wait(ws());
    send_line(init, "go\n");
    auto status_reply = init.waitRequest().send().wait(ws());
    auto status = status_reply.getStatus();
    await_output(out, "50 132", 5);
    check(status.getCode() == 0 && out.find("50 132") != std::string::npos, "after resizeTerminal it sees 50x132",
          "exit " + std::to_string(status.getCode()) + ", output '" + out + "'");
    c.removeRequest().send().wait(ws());
  }

  void exit_status() {
    std::string out;
    auto c = create("fails", "exit 3", out);
    c.startRequest().send().wait(ws());
    auto status_reply = c.waitRequest().send().wait(ws());
    auto status = status_reply.getStatus();
    check(status.getCode() == 3 && status.getSignal() == 0, "non-zero exit status 3 came back");
    c.removeRequest().send().wait(ws());
  }

  void bad_spec() {
    {
      std::string out;
      auto req = sandbox_.createContainerRequest();
      req.setId("bad-cwd");
      shell_spec(req.initSpec(), kRootfs, "true", {"mount"});
      req.getSpec().getProcess().setCwd("relative/dir");
      req.initStdio().setStdout(kj::heap<Collector>(out));
      const std::string e = error_of(req.send().ignoreResult());
      check(e.find("cwd") != std::string::npos, "relative cwd refused: " + e);
    }
    {
      std::string out;
      auto req = sandbox_.createContainerRequest();
      req.setId("bad-root");
      shell_spec(req.initSpec(), "/run/share/no-such-rootfs", "true", {"mount"});
      req.initStdio().setStdout(kj::heap<Collector>(out));
      const std::string e = error_of(req.send().ignoreResult());
      check(e.find("no-such-rootfs") != std::string::npos, "missing rootfs refused: " + e);
    }
    auto ids_reply = sandbox_.listContainersRequest().send().wait(ws());
    auto ids = ids_reply.getIds();
    check(ids.size() == 0, "no container left behind by the refused specs", std::to_string(ids.size()) + " listed");
  }

  // Runs `script` to its end in a container without a pid namespace of its
  // own (it sees the guest's processes); its output.
  std::string run_in_guest_pid_namespace(const std::string& id, const std::string& script) {
    std::string out;
    auto c = create(id, script, out, false, false, {"mount"});
    c.startRequest().send().wait(ws());
    c.waitRequest().send().wait(ws());
    io_.provider->getTimer().afterDelay(100 * kj::MILLISECONDS).wait(ws());  // the output's last write
    c.removeRequest().send().wait(ws());
    return out;
  }

  void orphans() {
    // The subshell's child outlives it: orphaned, the kernel hands it to PID 1.
    const std::string out = run_in_guest_pid_namespace("parent", "(sleep 1 & echo orphan=$!) ; exit 0");
    const size_t at = out.find("orphan=");
    check(at != std::string::npos, "a container left an orphan behind", "output '" + out + "'");
    const std::string pid = out.substr(at + 7, out.find('\n', at) - at - 7);
    io_.provider->getTimer().afterDelay(2500 * kj::MILLISECONDS).wait(ws());
    const std::string look = run_in_guest_pid_namespace(
        "look", "if [ -e /proc/" + pid + " ]; then echo state=$(grep State /proc/" + pid + "/status); else echo reaped; fi");
    check(look.find("reaped") != std::string::npos, "PID 1 reaped orphan " + pid + " once it exited", "output '" + look + "'");
  }

  void blk_volume() {
    auto setup = sandbox_.setupRequest();
    auto st = setup.initConfig().initStorages(1)[0];
    st.setDriver("blk");
    st.setSource("/dev/vda");
    st.setFsType("ext4");
    st.setMountPoint("/run/vol");
    setup.send().wait(ws());
    check(true, "setup mounted /dev/vda on /run/vol");

    std::string out;
    auto req = sandbox_.createContainerRequest();
    req.setId("vol");
    shell_spec(req.initSpec(), kRootfs,
               "echo written by a container > /vol/hello && cat /vol/hello && grep -c ' /vol ' /proc/mounts", {"mount", "pid"});
    req.getSpec().getProcess().initEnv(1).set(0, "PATH=/bin");
    auto mounts = req.getSpec().initMounts(2);
    mounts[0].setDestination("/proc");
    mounts[0].setType("proc");
    mounts[0].setSource("proc");
    mounts[1].setDestination("/vol");
    mounts[1].setType("bind");
    mounts[1].setSource("/run/vol");
    mounts[1].initOptions(1).set(0, "rbind");
    auto stdio = req.initStdio();
    stdio.setStdout(kj::heap<Collector>(out));
    stdio.setStderr(kj::heap<Collector>(out));
    auto c = req.send().getContainer();
    c.startRequest().send().wait(ws());
    auto status_reply = c.waitRequest().send().wait(ws());
    auto status = status_reply.getStatus();
    await_output(out, "\n1", 5);
    check(status.getCode() == 0 && out.find("written by a container\n1") != std::string::npos,
          "a container wrote to the block volume through its bind mount",
          "exit " + std::to_string(status.getCode()) + ", output '" + out + "'");
    c.removeRequest().send().wait(ws());
  }

  // Records what the agent reports unasked.
  class Events final : public api::EventSink::Server {
   public:
    explicit Events(std::string& log) : log_(log) {}
    kj::Promise<void> containerExited(ContainerExitedContext ctx) override {
      log_ += "exited " + std::string(ctx.getParams().getContainerId().cStr()) + "\n";
      return kj::READY_NOW;
    }
    kj::Promise<void> oom(OomContext ctx) override {
      log_ += "oom " + std::string(ctx.getParams().getContainerId().cStr()) + "\n";
      return kj::READY_NOW;
    }

   private:
    std::string& log_;
  };

  void oom_stats() {
    auto watch = sandbox_.watchRequest();
    watch.setSink(kj::heap<Events>(events_));
    auto watched = watch.send().wait(ws());
    subscription_ = watched.getSubscription();  // the events come while it is held

    std::string out;
    auto req = sandbox_.createContainerRequest();
    req.setId("hog");
    shell_spec(req.initSpec(), kRootfs,
               "echo ready; head -c 1 /dev/kmsg >/dev/null 2>&1 || echo kmsg denied; read go; "
               "head -c 1 /dev/kmsg >/dev/null 2>&1 && echo kmsg allowed; "
               "x=$(head -c 100000000 /dev/zero | tr '\\0' a); echo survived ${#x}",
               {"mount", "pid"});
    req.getSpec().getProcess().initEnv(1).set(0, "PATH=/bin");
    auto res = req.getSpec().getLinux().initResources();
    res.getMemory().setLimit(16 << 20);
    auto rules = res.initDevices(3);
    rules[0].setAllow(true);  // everything...
    rules[0].setAccess("rwm");
    rules[1].setAllow(false);  // ...but reading /dev/kmsg, for now (the default devices,
    rules[1].setType("c");     // /dev/zero among them, stay allowed whatever the rules say, as with runc)
    rules[1].setMajor(1);
    rules[1].setMinor(11);
    rules[1].setAccess("r");
    rules[2].setAllow(true);  // and /dev/null
    rules[2].setType("c");
    rules[2].setMajor(1);
    rules[2].setMinor(3);
    rules[2].setAccess("rw");
    auto kmsg = req.getSpec().getLinux().initDevices(1)[0];
    kmsg.setType("c");
    kmsg.setPath("/dev/kmsg");
    kmsg.setMajor(1);
    kmsg.setMinor(11);
    auto stdio = req.initStdio();
    stdio.setStdout(kj::heap<Collector>(out));
    stdio.setStderr(kj::heap<Collector>(out));
    stdio.setStdin(true);
    auto c = req.send().getContainer();
    auto init = c.initRequest().send().getProcess();
    c.startRequest().send().wait(ws());
    check(await_output(out, "ready"), "container under a 16 MiB limit started");
    check(await_output(out, "kmsg denied", 5), "the device rule denied reading /dev/kmsg", "output '" + out + "'");

    auto st_reply = c.statsRequest().send().wait(ws());
    auto st = st_reply.getStats();
    check(st.getMemoryMax() == (16u << 20) && st.getMemoryCurrent() > 0 && st.getPidsCurrent() >= 1 && st.getCpuUsageUsec() > 0,
          "stats: memory " + std::to_string(st.getMemoryCurrent() >> 10) + " KiB of " + std::to_string(st.getMemoryMax() >> 20) +
              " MiB, " + std::to_string(st.getPidsCurrent()) + " pid(s), cpu " + std::to_string(st.getCpuUsageUsec()) +
              " us, net rx " + std::to_string(st.getNetRxBytes()) + " B");

    auto update = c.updateRequest();
    update.initResources().getMemory().setLimit(16 << 20);
    auto allow_all = update.getResources().initDevices(1)[0];
    allow_all.setAllow(true);
    allow_all.setAccess("rwm");
    update.send().wait(ws());

    send_line(init, "go\n");
    auto status_reply = c.waitRequest().send().wait(ws());
    auto status = status_reply.getStatus();
    check(out.find("kmsg allowed") != std::string::npos, "Container.update's rules let it read /dev/kmsg", "output '" + out + "'");
    check(status.getSignal() == 9 && out.find("survived") == std::string::npos,
          "outgrowing the limit killed it (SIGKILL)",
          "exit " + std::to_string(status.getCode()) + " signal " + std::to_string(status.getSignal()) + ", output '" + out + "'");
    auto after_reply = c.statsRequest().send().wait(ws());
    auto after = after_reply.getStats();
    check(after.getMemoryOomKills() >= 1, "stats count " + std::to_string(after.getMemoryOomKills()) + " OOM kill(s)");
    await_output(events_, "oom hog", 5);
    check(events_.find("oom hog") != std::string::npos, "EventSink.oom named the container", "events '" + events_ + "'");
    c.removeRequest().send().wait(ws());
  }

 public:
  static std::string percentiles(std::vector<double> v, const char* unit) {
    std::sort(v.begin(), v.end());
    auto at = [&](double q) { return v[std::min(v.size() - 1, static_cast<size_t>(q * static_cast<double>(v.size())))]; };
    char buf[96];
    std::snprintf(buf, sizeof buf, "median %.1f %s, p90 %.1f %s (n=%zu)", at(0.5), unit, at(0.9), unit, v.size());
    return buf;
  }

 private:
  // The time of the first byte a process writes.
  class FirstByte final : public api::ByteStream::Server {
   public:
    explicit FirstByte(std::optional<std::chrono::steady_clock::time_point>& at) : at_(at) {}
    kj::Promise<void> write(WriteContext) override {
      if (!at_) at_ = std::chrono::steady_clock::now();
      return kj::READY_NOW;
    }
    kj::Promise<void> end(EndContext) override { return kj::READY_NOW; }

   private:
    std::optional<std::chrono::steady_clock::time_point>& at_;
  };

  void bench() {
    using clock = std::chrono::steady_clock;
    std::vector<double> rtt;
    for (int i = 0; i < 550; ++i) {
      const auto t0 = clock::now();
      sandbox_.versionRequest().send().wait(ws());
      if (i >= 50) rtt.push_back(std::chrono::duration<double, std::micro>(clock::now() - t0).count());
    }
    std::cout << "agent_probe: bench: version round trip " << percentiles(rtt, "us") << std::endl;
    std::vector<double> first, exited;
    for (int i = 0; i < 12; ++i) {
      std::optional<clock::time_point> first_at;
      auto req = sandbox_.createContainerRequest();
      req.setId("bench" + std::to_string(i));
      shell_spec(req.initSpec(), kRootfs, "echo x", {"mount", "pid", "ipc", "uts"});
      req.getSpec().getProcess().initEnv(1).set(0, "PATH=/bin");
      req.initStdio().setStdout(kj::heap<FirstByte>(first_at));
      const auto t0 = clock::now();
      auto c = req.send().getContainer();
      auto started = c.startRequest().send();
      auto waited = c.waitRequest().send();
      started.wait(ws());
      waited.wait(ws());
      const auto t_exit = clock::now();
      await_until([&] { return first_at.has_value(); });
      if (i >= 2) {
        first.push_back(std::chrono::duration<double, std::milli>(*first_at - t0).count());
        exited.push_back(std::chrono::duration<double, std::milli>(t_exit - t0).count());
      }
      c.removeRequest().send().wait(ws());
    }
    std::cout << "agent_probe: bench: create+start -> first output " << percentiles(first, "ms") << std::endl;
    std::cout << "agent_probe: bench: create+start -> exit " << percentiles(exited, "ms") << std::endl;
  }

  template <typename Done>
  void await_until(Done done, int seconds = 10) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
    while (!done() && std::chrono::steady_clock::now() < deadline)
      io_.provider->getTimer().afterDelay(1 * kj::MILLISECONDS).wait(ws());
  }

  void poweroff() {
    sandbox_.powerOffRequest().send().wait(ws());
    check(true, "powerOff answered");
  }

  kj::AsyncIoContext& io_;
  kj::Own<kj::AsyncIoStream> stream_;
  capnp::TwoPartyClient client_;
  api::Sandbox::Client sandbox_;
  std::string events_;
  api::Subscription::Client subscription_ = nullptr;
};

}  // namespace

namespace {

int time_command(int runs, char** cmd) {
  using clock = std::chrono::steady_clock;
  std::vector<double> first, exited;
  for (int i = 0; i < runs + 2; ++i) {
    std::vector<std::string> args;
    for (char** a = cmd; *a; ++a) {
      std::string arg = *a;
      if (auto at = arg.find("{i}"); at != std::string::npos) arg.replace(at, 3, std::to_string(i));
      args.push_back(arg);
    }
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    int out[2];
    if (::pipe2(out, O_CLOEXEC) != 0) fail("pipe");
    const auto t0 = clock::now();
    const pid_t pid = ::fork();
    if (pid == 0) {
      ::dup2(out[1], 1);
      ::execvp(argv[0], argv.data());
      ::_exit(127);
    }
    ::close(out[1]);
    std::optional<clock::time_point> first_at;
    char buf[256];
    while (::read(out[0], buf, sizeof buf) > 0)
      if (!first_at) first_at = clock::now();
    ::close(out[0]);
    int status = 0;
    ::waitpid(pid, &status, 0);
    const auto t_exit = clock::now();
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 || !first_at) {
      std::cout << "agent_probe: time-command: " << args[0] << " failed (status " << status << ")" << std::endl;
      return 1;
    }
    if (i >= 2) {
      first.push_back(std::chrono::duration<double, std::milli>(*first_at - t0).count());
      exited.push_back(std::chrono::duration<double, std::milli>(t_exit - t0).count());
    }
  }
  std::cout << "agent_probe: time-command: spawn -> first output " << Probe::percentiles(first, "ms") << std::endl;
  std::cout << "agent_probe: time-command: spawn -> exit " << Probe::percentiles(exited, "ms") << std::endl;
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc >= 4 && std::string(argv[1]) == "time-command") return time_command(std::atoi(argv[2]), argv + 3);
  if (argc < 4) {
    std::cerr << "usage: agent_probe SOCKET PORT STEP...\n";
    return 2;
  }
  auto io = kj::setupAsyncIo();
  int fd = connect_guest(argv[1], static_cast<unsigned>(std::stoul(argv[2])));
  Probe probe(io, fd);
  try {
    for (int i = 3; i < argc; ++i) probe.run(argv[i]);
  } catch (const kj::Exception& e) {
    fail(std::string("RPC failed: ") + e.getDescription().cStr());
  }
  return 0;
}
