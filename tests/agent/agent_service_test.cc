// The agent API over a real Unix socket with real Cap'n Proto RPC: a host
// side client drives the agent's Sandbox, Containers and Processes, running
// busybox containers on this host (as root).
#include "agent/agent_service.h"

#include <capnp/rpc-twoparty.h>
#include <gtest/gtest.h>
#include <kj/async-io.h>
#include <signal.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "tests/agent/agent_test_support.h"

namespace skiff::agent {
namespace {

namespace fs = std::filesystem;

using testing::cgroup2_mount;
using testing::Collector;

class AgentServiceTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { kj::UnixEventPort::captureChildExit(); }

  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "container set-up needs root (as runc's tests do)";
    rootfs = std::make_unique<testing::BusyboxRootfs>();
    root = rootfs->root();
    dir = rootfs->host("");
    dir.pop_back();  // the temp dir itself
  }
  void TearDown() override {
    rig.reset();
    rootfs.reset();
  }

  // Serves the agent on a Unix socket and connects to it.
  void serve(AgentOptions options = {}) {
    rig = std::make_unique<Rig>();
    rig->io = kj::heap<kj::AsyncIoContext>(kj::setupAsyncIo());
    io = rig->io.get();
    const std::string sock = dir + "/agent.sock";
    auto addr = io->provider->getNetwork().parseAddress("unix:" + sock).wait(io->waitScope);
    rig->listener = addr->listen();
    rig->server = kj::heap<capnp::TwoPartyServer>(make_sandbox(io->unixEventPort, *io->lowLevelProvider, options));
    rig->serving = rig->server->listen(*rig->listener).eagerlyEvaluate(nullptr);
    rig->stream = io->provider->getNetwork().parseAddress("unix:" + sock).wait(io->waitScope)->connect().wait(io->waitScope);
    rig->client = kj::heap<capnp::TwoPartyClient>(*rig->stream);
    rig->sandbox = rig->client->bootstrap().castAs<api::Sandbox>();
  }
  api::Sandbox::Client& sb() { return rig->sandbox; }

  void fill(api::Spec::Builder s, const std::string& script, bool terminal = false) {
    testing::shell_spec(s, root, script, {"mount", "pid"});
    auto p = s.getProcess();
    p.setTerminal(terminal);
    p.getConsoleSize().setRows(10);
    p.getConsoleSize().setCols(20);
  }

  api::Container::Client create(const std::string& id, const std::string& script, std::string& out, bool stdin = false,
                                bool terminal = false) {
    auto req = sb().createContainerRequest();
    req.setId(id);
    fill(req.initSpec(), script, terminal);
    auto stdio = req.initStdio();
    stdio.setStdout(kj::heap<Collector>(out));
    stdio.setStderr(kj::heap<Collector>(out));
    stdio.setStdin(stdin);
    return req.send().getContainer();
  }

  std::string error_of(kj::Promise<void> p) {
    try {
      p.wait(io->waitScope);
    } catch (const kj::Exception& e) {
      // Cap'n Proto marks an error that came over the wire; the agent's line follows.
      std::string d = e.getDescription().cStr();
      const std::string remote = "remote exception: ";
      return d.starts_with(remote) ? d.substr(remote.size()) : "(local) " + d;
    }
    return "(no error)";
  }

  // KJ objects have throwing destructors: kept out of the fixture's own.
  struct Rig {
    kj::Own<kj::AsyncIoContext> io;
    kj::Own<kj::ConnectionReceiver> listener;
    kj::Own<capnp::TwoPartyServer> server;
    kj::Promise<void> serving = nullptr;
    kj::Own<kj::AsyncIoStream> stream;
    kj::Own<capnp::TwoPartyClient> client;
    api::Sandbox::Client sandbox = nullptr;
  };
  std::unique_ptr<testing::BusyboxRootfs> rootfs;
  std::string dir, root;
  std::unique_ptr<Rig> rig;
  kj::AsyncIoContext* io = nullptr;
};

TEST_F(AgentServiceTest, EchoWithCreateStartWaitPipelined) {
  serve();
  auto v = sb().versionRequest().send().wait(io->waitScope);
  EXPECT_EQ(v.getApiVersion(), api::API_VERSION);
  EXPECT_TRUE(sb().healthRequest().send().wait(io->waitScope).getServing());
  auto details_response = sb().guestDetailsRequest().send().wait(io->waitScope);  // the reader below points into it
  auto details = details_response.getDetails();
  EXPECT_GE(details.getCpus(), 1u);
  EXPECT_GT(details.getMemoryBytes(), 0u);
  EXPECT_FALSE(details.getKernelRelease().size() == 0);
  std::string out;
  auto c = create("echo", "echo hello from $$", out);
  // start and wait go out before create's answer is back: one round trip.
  auto started = c.startRequest().send();
  auto waited = c.waitRequest().send();
  EXPECT_GT(started.wait(io->waitScope).getPid(), 0u);
  auto st_response = waited.wait(io->waitScope);  // the reader below points into it
  auto st = st_response.getStatus();
  EXPECT_EQ(st.getCode(), 0);
  EXPECT_EQ(out, "hello from 1\n");
  auto state = c.stateRequest().send().wait(io->waitScope);
  EXPECT_EQ(state.getStatus(), api::ContainerStatus::STOPPED);
  c.removeRequest().send().wait(io->waitScope);
  EXPECT_EQ(sb().listContainersRequest().send().wait(io->waitScope).getIds().size(), 0u);
}

// Records Sandbox.watch's events, one line each.
class EventLog final : public api::EventSink::Server {
 public:
  explicit EventLog(std::string& log) : log_(log) {}
  kj::Promise<void> containerExited(ContainerExitedContext ctx) override {
    log_ += "exited " + std::string(ctx.getParams().getContainerId().cStr()) + " " +
            std::to_string(ctx.getParams().getStatus().getCode()) + "\n";
    return kj::READY_NOW;
  }

 private:
  std::string& log_;
};

TEST_F(AgentServiceTest, WatchersHearOfExitsWhileTheyHoldTheirSubscription) {
  serve();
  std::string events;
  auto watch = sb().watchRequest();
  watch.setSink(kj::heap<EventLog>(events));
  auto subscription = watch.send().wait(io->waitScope).getSubscription();
  auto run = [&](const std::string& id, const std::string& script) {
    std::string out;
    auto c = create(id, script, out);
    c.startRequest().send().wait(io->waitScope);
    c.waitRequest().send().wait(io->waitScope);
    // The event is a call of its own: let it arrive.
    io->provider->getTimer().afterDelay(50 * kj::MILLISECONDS).wait(io->waitScope);
    c.removeRequest().send().wait(io->waitScope);
  };
  run("first", "exit 4");
  EXPECT_EQ(events, "exited first 4\n");
  subscription = nullptr;  // dropped: no more events
  io->provider->getTimer().afterDelay(50 * kj::MILLISECONDS).wait(io->waitScope);
  run("second", "exit 5");
  EXPECT_EQ(events, "exited first 4\n");
}

TEST_F(AgentServiceTest, ANonZeroExitStatus) {
  serve();
  std::string out;
  auto c = create("fail", "echo bad >&2; exit 3", out);
  c.startRequest().send().wait(io->waitScope);
  EXPECT_EQ(c.waitRequest().send().wait(io->waitScope).getStatus().getCode(), 3);
  EXPECT_EQ(out, "bad\n");
}

TEST_F(AgentServiceTest, ALongRunningContainerWithExecAndSignals) {
  serve();
  std::string out;
  auto c = create("long", "trap 'echo got-term; exit 0' TERM; echo ready; while true; do sleep 0.1; done", out);
  c.startRequest().send().wait(io->waitScope);
  while (out.find("ready") == std::string::npos) io->waitScope.poll(), ::usleep(10000);
  EXPECT_EQ(c.stateRequest().send().wait(io->waitScope).getStatus(), api::ContainerStatus::RUNNING);

  std::string exec_out;
  auto ex = c.execRequest();
  ex.setExecId("e1");
  testing::shell_process(ex.initProcess(), "echo exec-pid=$$; cat /proc/1/cmdline | head -c 2", "/tmp");
  ex.initStdio().setStdout(kj::heap<Collector>(exec_out));
  auto proc = ex.send().getProcess();
  EXPECT_EQ(proc.waitRequest().send().wait(io->waitScope).getStatus().getCode(), 0);
  EXPECT_EQ(exec_out.find("exec-pid=1\n"), std::string::npos) << exec_out;
  EXPECT_NE(exec_out.find("sh"), std::string::npos) << exec_out;

  auto ps_response = c.psRequest().send().wait(io->waitScope);  // the reader below points into it
  auto ps = ps_response.getPids();
  EXPECT_GE(ps.size(), 1u);
  auto sig = c.signalRequest();
  sig.setSignal(SIGTERM);
  sig.send().wait(io->waitScope);
  auto st_response = c.waitRequest().send().wait(io->waitScope);  // the reader below points into it
  auto st = st_response.getStatus();
  EXPECT_EQ(st.getCode(), 0) << out;
  EXPECT_NE(out.find("got-term"), std::string::npos) << out;

  std::string out2;
  auto killed = create("killed", "sleep 30", out2);
  killed.startRequest().send().wait(io->waitScope);
  auto k = killed.signalRequest();
  k.setSignal(SIGKILL);
  k.send().wait(io->waitScope);
  auto ks_response = killed.waitRequest().send().wait(io->waitScope);  // the reader below points into it
  auto ks = ks_response.getStatus();
  EXPECT_EQ(ks.getCode(), 137);
  EXPECT_EQ(ks.getSignal(), SIGKILL);
}

TEST_F(AgentServiceTest, ATerminalWithResizeAndStdin) {
  serve();
  std::string out;
  auto c = create("tty", "stty size; read line; stty size; echo got=$line", out, true, true);
  c.startRequest().send().wait(io->waitScope);
  auto init = c.initRequest().send().getProcess();
  while (out.find("10 20") == std::string::npos) io->waitScope.poll(), ::usleep(10000);
  auto rs = init.resizeTerminalRequest();
  rs.initSize().setRows(30);
  rs.getSize().setCols(40);
  rs.send().wait(io->waitScope);
  auto in = init.stdinRequest().send().getStream();
  auto w = in.writeRequest();
  w.setBytes(kj::StringPtr("typed\n").asBytes());
  w.send().wait(io->waitScope);
  EXPECT_EQ(init.waitRequest().send().wait(io->waitScope).getStatus().getCode(), 0);
  EXPECT_NE(out.find("30 40"), std::string::npos) << out;
  EXPECT_NE(out.find("got=typed"), std::string::npos) << out;
}

TEST_F(AgentServiceTest, StdinThroughAPipeEndsWithEnd) {
  serve();
  std::string out;
  auto c = create("cat", "cat", out, true);
  c.startRequest().send().wait(io->waitScope);
  auto in = c.initRequest().send().getProcess().stdinRequest().send().getStream();
  auto w = in.writeRequest();
  w.setBytes(kj::StringPtr("abc").asBytes());
  w.send().wait(io->waitScope);
  in.endRequest().send().wait(io->waitScope);
  EXPECT_EQ(c.waitRequest().send().wait(io->waitScope).getStatus().getCode(), 0);
  EXPECT_EQ(out, "abc");
}

TEST_F(AgentServiceTest, BadRequestsComeBackAsOneLine) {
  serve();
  auto req = sb().createContainerRequest();
  req.setId("bad");
  fill(req.initSpec(), "true");
  req.getSpec().getProcess().setCwd("tmp");
  EXPECT_EQ(error_of(req.send().ignoreResult()), "process.cwd: must be absolute, not \"tmp\"");

  auto bad_root = sb().createContainerRequest();
  bad_root.setId("bad2");
  fill(bad_root.initSpec(), "true");
  bad_root.getSpec().getRoot().setPath(dir + "/missing");
  EXPECT_EQ(error_of(bad_root.send().ignoreResult()), "bind the root " + dir + "/missing: No such file or directory");

  auto bad_id = sb().createContainerRequest();
  bad_id.setId("../x");
  fill(bad_id.initSpec(), "true");
  EXPECT_EQ(error_of(bad_id.send().ignoreResult()), "container id \"../x\": use 1 to 128 of [A-Za-z0-9._-]");

  std::string out;
  auto c = create("nosuch", "true", out);
  auto nosuch = c.execRequest();  // not running yet
  nosuch.setExecId("x");
  nosuch.initProcess().initArgs(1).set(0, "true");
  EXPECT_EQ(error_of(nosuch.send().ignoreResult()), "container nosuch is not running");
  auto dup = sb().createContainerRequest();
  dup.setId("nosuch");
  fill(dup.initSpec(), "true");
  EXPECT_EQ(error_of(dup.send().ignoreResult()), "container nosuch exists");
  EXPECT_EQ(error_of(c.pauseRequest().send().ignoreResult()), "container nosuch is not running");
  EXPECT_EQ(error_of(sb().powerOffRequest().send().ignoreResult()), "powerOff: this agent does not own its machine");
  auto st = sb().setupRequest();
  st.initConfig().initStorages(1)[0].setDriver("nfs");
  st.getConfig().getStorages()[0].setMountPoint("/mnt");
  EXPECT_EQ(error_of(st.send().ignoreResult()), "storage /mnt: unknown driver \"nfs\" (virtiofs or blk)");
  c.removeRequest().send().wait(io->waitScope);
  EXPECT_EQ(error_of(sb().containerRequest().send().ignoreResult()), "no container ");
}

TEST_F(AgentServiceTest, PauseResumeStatsAndPsThroughTheCgroup) {
  const std::string mount = cgroup2_mount();
  if (mount.empty() || ::access((mount + "/cgroup.procs").c_str(), W_OK) != 0) GTEST_SKIP() << "no writable cgroup2 mount here";
  const std::string parent = mount + "/skiff-agent-test-" + std::to_string(::getpid());
  fs::create_directory(parent);
  AgentOptions o;
  o.cgroup_parent = parent;
  serve(o);
  std::string out;
  auto c = create("cg", "echo ready; while true; do sleep 0.05; done", out);
  const uint32_t pid = c.startRequest().send().wait(io->waitScope).getPid();
  while (out.find("ready") == std::string::npos) io->waitScope.poll(), ::usleep(10000);
  auto ps_response = c.psRequest().send().wait(io->waitScope);  // the reader below points into it
  auto ps = ps_response.getPids();
  bool has_init = false;
  for (auto p : ps) has_init = has_init || p == pid;
  EXPECT_TRUE(has_init);
  c.pauseRequest().send().wait(io->waitScope);
  EXPECT_EQ(c.stateRequest().send().wait(io->waitScope).getStatus(), api::ContainerStatus::PAUSED);
  c.resumeRequest().send().wait(io->waitScope);
  EXPECT_EQ(c.stateRequest().send().wait(io->waitScope).getStatus(), api::ContainerStatus::RUNNING);
  EXPECT_GT(c.statsRequest().send().wait(io->waitScope).getStats().getCpuUsageUsec(), 0u);
  c.removeRequest().send().wait(io->waitScope);
  EXPECT_FALSE(fs::exists(parent + "/cg"));
  fs::remove(parent);
}

}  // namespace
}  // namespace skiff::agent
