// The control API end to end, without a VM: a real Sandbox and ControlServer
// on a KJ loop of their own, the real agent code as the "guest"
// (HostAgentHypervisor), and the test as a client over the Unix socket with
// real Cap'n Proto RPC. Containers run on this host in fresh namespaces on a
// busybox-static rootfs (root needed, as the agent's own tests).
#include <sys/mount.h>
#include <unistd.h>

#include <capnp/rpc-twoparty.h>
#include <gtest/gtest.h>
#include <kj/async-unix.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <future>
#include <nlohmann/json.hpp>
#include <thread>

#include "base/log.h"
#include "runtime/control/control_client.h"
#include "runtime/control/control_server.h"
#include "runtime/sandbox/sandbox.h"
#include "tests/agent/agent_test_support.h"
#include "tests/runtime/sandbox/host_agent_hypervisor.h"

namespace skiff::runtime {
namespace {

using agent::testing::BusyboxRootfs;
using agent::testing::Collector;

class ControlApiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root (containers in namespaces, bind mounts), as runc's tests";
    char tmpl[] = "/tmp/skiff-control-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    socket_ = dir_ + "/control.sock";
    if (std::getenv("SKIFF_TEST_LOG")) log::Logger::global().use_fd(STDERR_FILENO);
    server_ = std::thread([this] { serve(); });
    ASSERT_EQ(ready_.get_future().wait_for(std::chrono::seconds(30)), std::future_status::ready);
    ASSERT_TRUE(started_ok_) << start_error_;
    client_ = std::make_unique<ControlClient>(socket_);
  }

  void TearDown() override {
    if (!server_.joinable()) return;
    if (client_ && !shut_down_) {
      try {
        client_->shutdown_sandbox();
      } catch (const std::exception&) {
      }
    }
    client_.reset();
    server_.join();
    std::system(("umount -R " + dir_ + "/share 2>/dev/null; rm -rf " + dir_).c_str());
  }

  // The sandbox process's part, on its own thread and loop, until shutdown.
  void serve() {
    auto io = kj::setupAsyncIo();
    testing::HostAgentHypervisor hv(dir_ + "/agent.sock");
    hv_ = &hv;
    // A sysfs for the agent's setOnlineCpus: two present, CPU 0 online.
    hv.cpu_sysfs_dir = dir_ + "/cpu";
    std::filesystem::create_directories(hv.cpu_sysfs_dir + "/cpu1");
    std::ofstream(hv.cpu_sysfs_dir + "/present") << "0-1\n";
    std::ofstream(hv.cpu_sysfs_dir + "/online") << "0\n";
    std::ofstream(hv.cpu_sysfs_dir + "/cpu1/online") << "0\n";
    Sandbox::Settings settings;
    settings.id = "sb1";
    settings.state_dir = dir_;
    settings.config = default_config("/nonexistent/kernel", "");
    settings.config.hypervisor.boot_timeout_ms = 10000;
    settings.sizing = {1, 2, 128, ""};
    settings.sizing.max_memory_mib = 256;  // room for a virtio-mem resize
    // The host-run agent reports the host's memory, which never follows a
    // resize: each resize waits this long for it, then answers.
    settings.memory_settle_ms = 200;
    {
      Sandbox sandbox(io, hv, settings);
      try {
        sandbox.start().wait(io.waitScope);
        started_ok_ = true;
      } catch (const kj::Exception& e) {
        start_error_ = std::string(e.getDescription().cStr()) + " (agent process status " + std::to_string(hv.exit_status) + ")";
      }
      auto done = kj::newPromiseAndFulfiller<void>();
      auto* fulfiller = done.fulfiller.get();
      std::unique_ptr<ControlServer> server;
      if (started_ok_)
        server = std::make_unique<ControlServer>(io, socket_, make_control_sandbox(sandbox, [fulfiller] { fulfiller->fulfill(); }));
      ready_.set_value();
      if (started_ok_) done.promise.wait(io.waitScope);
    }
  }

  // A bundle whose process runs `script` under sh on the busybox rootfs.
  std::string bundle(const std::string& name, const std::string& script, const nlohmann::json& hooks = nullptr) {
    const std::string b = dir_ + "/" + name;
    std::filesystem::create_directories(b);
    nlohmann::json spec = {
        {"ociVersion", "1.0.2"},
        {"process", {{"args", {"sh", "-c", script}}, {"cwd", "/"}, {"env", {"PATH=/bin"}}}},
        {"root", {{"path", rootfs_.root()}}},
        {"hostname", "ctl"},
        {"mounts", {{{"destination", "/proc"}, {"type", "proc"}, {"source", "proc"}}}},
        {"linux", {{"namespaces", {{{"type", "pid"}}, {{"type", "mount"}}, {{"type", "ipc"}}, {{"type", "uts"}}}}}}};
    if (!hooks.is_null()) spec["hooks"] = hooks;
    std::ofstream(b + "/config.json") << spec.dump();
    return b;
  }

  api::control::Container::Client create(const std::string& id, const std::string& bundle_dir, std::string& out) {
    auto req = client_->sandbox().createContainerRequest();
    req.setId(id);
    req.setBundle(bundle_dir);
    req.initStdio().setStdout(kj::heap<Collector>(out));
    req.getStdio().setStderr(kj::heap<Collector>(out));
    return req.send().getContainer();
  }

  std::string error_of(kj::Promise<void>&& p) {
    try {
      client_->wait(kj::mv(p));
    } catch (const ControlCallError& e) {
      return e.what();
    }
    return "(no error)";
  }

  std::string dir_, socket_;
  BusyboxRootfs rootfs_;
  std::thread server_;
  std::promise<void> ready_;
  bool started_ok_ = false, shut_down_ = false;
  std::string start_error_;
  std::unique_ptr<ControlClient> client_;
  testing::HostAgentHypervisor* hv_ = nullptr;  // the server thread's, while it serves
};

TEST_F(ControlApiTest, CreateStartWaitPipelinedInOneRoundTrip) {
  std::string out;
  auto c = create("echo", bundle("b1", "echo hello from $(hostname); exit 3"), out);
  auto started = c.startRequest().send();
  auto waited = c.waitRequest().send();
  auto status = client_->wait(kj::mv(waited));
  EXPECT_EQ(status.getStatus().getCode(), 3);
  client_->wait(kj::mv(started));
  EXPECT_NE(out.find("hello from ctl"), std::string::npos) << out;
  auto info = client_->wait(c.infoRequest().send());
  EXPECT_EQ(std::string(info.getInfo().getStatus().cStr()), "stopped");
  EXPECT_TRUE(info.getInfo().getHasExit());
  EXPECT_EQ(info.getInfo().getExit().getCode(), 3);
  EXPECT_EQ(info.getInfo().getPid(), static_cast<uint32_t>(::getpid()));
}

TEST_F(ControlApiTest, BadCallsAnswerOneClearLine) {
  auto missing = client_->sandbox().containerRequest();
  missing.setId("nope");
  EXPECT_NE(error_of(missing.send().getContainer().infoRequest().send().ignoreResult()).find("container \"nope\" does not exist"),
            std::string::npos);

  std::string out;
  auto bad = client_->sandbox().createContainerRequest();
  bad.setId("bad");
  bad.setBundle(dir_ + "/no-such-bundle");
  EXPECT_NE(error_of(bad.send().ignoreResult()).find("config.json"), std::string::npos);

  auto bad_id = client_->sandbox().createContainerRequest();
  bad_id.setId("../escape");
  bad_id.setBundle(bundle("b2", "true"));
  EXPECT_NE(error_of(bad_id.send().ignoreResult()).find("not a valid name"), std::string::npos);

  auto c = create("twice", bundle("b3", "true"), out);
  client_->wait(c.startRequest().send().ignoreResult());
  client_->wait(c.waitRequest().send().ignoreResult());
  EXPECT_NE(error_of(c.startRequest().send().ignoreResult()).find("is stopped, not created"), std::string::npos);
  auto kill = c.killRequest();
  kill.setSignal(15);
  EXPECT_NE(error_of(kill.send().ignoreResult()).find("is not running"), std::string::npos);
  auto dup = client_->sandbox().createContainerRequest();
  dup.setId("twice");
  dup.setBundle(bundle("b4", "true"));
  EXPECT_NE(error_of(dup.send().ignoreResult()).find("already exists"), std::string::npos);
}

TEST_F(ControlApiTest, ExecKillAndDeleteARunningContainer) {
  std::string out;
  auto c = create("sleeper", bundle("b5", "trap 'exit 9' TERM; echo up; while :; do sleep 0.05; done"), out);
  client_->wait(c.startRequest().send().ignoreResult());
  for (int i = 0; i < 200 && out.find("up") == std::string::npos; ++i)
    client_->wait(client_->io().provider->getTimer().afterDelay(20 * kj::MILLISECONDS));

  std::string exec_out;
  auto ex = c.execRequest();
  ex.setExecId("e1");
  auto args = ex.initProcess().initArgs(3);
  args.set(0, "sh");
  args.set(1, "-c");
  args.set(2, "echo exec sees $(cat /proc/1/comm)");
  ex.getProcess().setCwd("/");
  ex.getProcess().initEnv(1).set(0, "PATH=/bin");
  ex.initStdio().setStdout(kj::heap<Collector>(exec_out));
  auto proc = client_->wait(ex.send()).getProcess();
  EXPECT_EQ(client_->wait(proc.waitRequest().send()).getStatus().getCode(), 0);
  EXPECT_NE(exec_out.find("exec sees sh"), std::string::npos) << exec_out;

  auto ps = client_->wait(c.psRequest().send());
  EXPECT_GE(ps.getPids().size(), 1u);

  auto del = c.deleteRequest();
  EXPECT_NE(error_of(del.send().ignoreResult()).find("that is not stopped: running"), std::string::npos);

  auto kill = c.killRequest();
  kill.setSignal(15);
  client_->wait(kill.send().ignoreResult());
  EXPECT_EQ(client_->wait(c.waitRequest().send()).getStatus().getCode(), 9);
  client_->wait(c.deleteRequest().send().ignoreResult());
  auto list = client_->wait(client_->sandbox().listContainersRequest().send());
  EXPECT_EQ(list.getContainers().size(), 0u);
  EXPECT_FALSE(std::filesystem::exists(dir_ + "/share/sleeper")) << "the container's share is gone with it";
}

TEST_F(ControlApiTest, PauseAndResumeRefuseWhatTheyCannotDo) {
  std::string out;
  auto c = create("pz", bundle("b7", "echo up; while :; do sleep 0.05; done"), out);
  client_->wait(c.startRequest().send().ignoreResult());
  EXPECT_NE(error_of(c.resumeRequest().send().ignoreResult()).find("is running, not paused: it can't be resumed"),
            std::string::npos);
  // (A container's own freeze needs its cgroup, which this host-run agent
  // has not: the e2e tier pauses containers; the VM is paused here.)
  EXPECT_NE(error_of(client_->sandbox().resumeRequest().send().ignoreResult()).find("VM is running, not paused"),
            std::string::npos);
  client_->wait(client_->sandbox().pauseRequest().send().ignoreResult());
  EXPECT_NE(error_of(client_->sandbox().pauseRequest().send().ignoreResult()).find("VM is paused, not running"),
            std::string::npos);
  auto info = client_->wait(client_->sandbox().infoRequest().send());
  EXPECT_EQ(std::string(info.getInfo().getState().cStr()), "paused") << "info answers while the VM is paused";
  client_->wait(client_->sandbox().resumeRequest().send().ignoreResult());
  EXPECT_EQ(hv_->pauses.load(), 1) << "a refused pause does not reach the hypervisor";

  auto kill = c.killRequest();
  kill.setSignal(9);
  client_->wait(kill.send().ignoreResult());
  client_->wait(c.waitRequest().send().ignoreResult());
  EXPECT_NE(error_of(c.pauseRequest().send().ignoreResult()).find("is stopped, not running"), std::string::npos);
  auto ex = c.execRequest();
  ex.setExecId("late");
  ex.initProcess().initArgs(1).set(0, "true");
  EXPECT_NE(error_of(ex.send().ignoreResult()).find("is stopped, not running: nothing to exec into"), std::string::npos);
}

// runc's order and timing: prestart then createRuntime before create
// answers, poststart before start answers, poststop when it is deleted;
// each with the container's state on stdin.
TEST_F(ControlApiTest, HooksRunInRuncsOrderBeforeTheCallsAnswer) {
  const std::string log = dir_ + "/hooks.log";
  auto hook = [&](const std::string& name) {
    return nlohmann::json{{"path", "/bin/sh"},
                          {"args", {"sh", "-c", "echo " + name + " $(grep -o '\"status\":\"[a-z]*\"') >> " + log}}};
  };
  nlohmann::json hooks = {{"prestart", {hook("prestart")}},
                          {"createRuntime", {hook("createRuntime")}},
                          {"poststart", {hook("poststart")}},
                          {"poststop", {hook("poststop")}}};
  auto slurp = [&] {
    std::ifstream f(log);
    return std::string(std::istreambuf_iterator<char>(f), {});
  };
  std::string out;
  auto c = create("hooked", bundle("bh", "echo up; while :; do sleep 0.05; done", hooks), out);
  client_->wait(c.infoRequest().send());  // create is pipelined: this waits for its answer
  EXPECT_EQ(slurp(), "prestart \"status\":\"creating\"\ncreateRuntime \"status\":\"creating\"\n");
  client_->wait(c.startRequest().send().ignoreResult());
  EXPECT_EQ(slurp(), "prestart \"status\":\"creating\"\ncreateRuntime \"status\":\"creating\"\n"
                     "poststart \"status\":\"running\"\n");
  auto kill = c.killRequest();
  kill.setSignal(9);
  client_->wait(kill.send().ignoreResult());
  client_->wait(c.waitRequest().send().ignoreResult());
  client_->wait(c.deleteRequest().send().ignoreResult());
  EXPECT_EQ(slurp(), "prestart \"status\":\"creating\"\ncreateRuntime \"status\":\"creating\"\n"
                     "poststart \"status\":\"running\"\npoststop \"status\":\"stopped\"\n");
}

// A failing poststart hook is logged; the container runs on (runtime.md).
TEST_F(ControlApiTest, AFailingPoststartHookLeavesTheContainerRunning) {
  nlohmann::json hooks = {{"poststart", {{{"path", "/bin/sh"}, {"args", {"sh", "-c", "exit 4"}}}}}};
  std::string out;
  auto c = create("ps-fails", bundle("bpf", "echo up; while :; do sleep 0.05; done", hooks), out);
  auto started = client_->wait(c.startRequest().send());
  EXPECT_GT(started.getGuestPid(), 0u);
  auto info = client_->wait(c.infoRequest().send());
  EXPECT_EQ(std::string(info.getInfo().getStatus().cStr()), "running");
  auto kill = c.killRequest();
  kill.setSignal(9);
  client_->wait(kill.send().ignoreResult());
  client_->wait(c.waitRequest().send().ignoreResult());
}

TEST_F(ControlApiTest, AVmThatDiesTakesItsContainersWithItAndSaysSo) {
  std::string out;
  auto c = create("orphan", bundle("b8", "echo up; while :; do sleep 0.05; done"), out);
  client_->wait(c.startRequest().send().ignoreResult());
  auto waited = c.waitRequest().send();
  hv_->stop();  // the "VM" (the agent's process) is killed under the running container
  auto status = client_->wait(kj::mv(waited));
  EXPECT_EQ(status.getStatus().getCode(), 255) << "a container whose VM ended has no exit status of its own";
  auto info = client_->wait(c.infoRequest().send());
  EXPECT_EQ(std::string(info.getInfo().getStatus().cStr()), "stopped");
  auto sb = client_->wait(client_->sandbox().infoRequest().send());
  EXPECT_EQ(std::string(sb.getInfo().getState().cStr()), "stopped");

  auto late = client_->sandbox().createContainerRequest();
  late.setId("late");
  late.setBundle(bundle("b9", "true"));
  EXPECT_NE(error_of(late.send().ignoreResult()).find("the sandbox's VM is stopped"), std::string::npos);
  EXPECT_NE(error_of(client_->sandbox().pauseRequest().send().ignoreResult()).find("VM is stopped, not running"),
            std::string::npos);
  client_->wait(c.deleteRequest().send().ignoreResult());  // what is left of it can still be cleaned up
  EXPECT_EQ(client_->wait(client_->sandbox().listContainersRequest().send()).getContainers().size(), 0u);
}

TEST_F(ControlApiTest, ResizeVcpusAsksTheAgentWithinTheBootedMaximum) {
  auto resize = [&](uint32_t n) {
    auto req = client_->sandbox().resizeVcpusRequest();
    req.setVcpus(n);
    return req.send();
  };
  std::string cpu1;
  const uint32_t online = client_->wait(resize(2)).getVcpus();
  std::ifstream(dir_ + "/cpu/cpu1/online") >> cpu1;
  EXPECT_EQ(cpu1, "1") << "the agent set CPU 1 online";
  // What the guest's kernel says is online comes back (this fake one never changes).
  EXPECT_EQ(online, 1u);
  EXPECT_EQ(client_->wait(client_->sandbox().infoRequest().send()).getInfo().getVcpus(), 1u);

  EXPECT_NE(error_of(resize(3).ignoreResult()).find("vcpus 3 out of 1..2"), std::string::npos);
  EXPECT_NE(error_of(resize(0).ignoreResult()).find("vcpus 0 out of 1..2"), std::string::npos);
  client_->wait(client_->sandbox().pauseRequest().send().ignoreResult());
  EXPECT_NE(error_of(resize(1).ignoreResult()).find("paused, not running: its vCPUs can't be resized"), std::string::npos);
  client_->wait(client_->sandbox().resumeRequest().send().ignoreResult());
  std::ofstream(dir_ + "/cpu/online") << "0-1\n";  // as if the kernel had brought CPU 1 up
  client_->wait(resize(1).ignoreResult());
  std::ifstream(dir_ + "/cpu/cpu1/online") >> cpu1;
  EXPECT_EQ(cpu1, "0") << "and offline again";
}

TEST_F(ControlApiTest, ResizeMemoryWithinTheBootedMaximum) {
  auto resize = [&](uint64_t mib) {
    auto req = client_->sandbox().resizeMemoryRequest();
    req.setMemoryMib(mib);
    return req.send();
  };
  auto memory_now = [&] { return client_->wait(client_->sandbox().infoRequest().send()).getInfo().getMemoryMib(); };
  EXPECT_EQ(memory_now(), 128u);
  EXPECT_EQ(client_->wait(client_->sandbox().infoRequest().send()).getInfo().getMaxMemoryMib(), 256u);
  EXPECT_NE(hv_->booted_cmdline.find(" memhp_default_state=online memory_hotplug.online_policy=auto-movable"),
            std::string::npos)
      << "plugged memory goes where a shrink can take it back: " << hv_->booted_cmdline;

  EXPECT_EQ(client_->wait(resize(256)).getMemoryMib(), 256u);
  EXPECT_EQ(memory_now(), 256u) << "info follows the guest";
  EXPECT_EQ(client_->wait(resize(130)).getMemoryMib(), 130u);
  EXPECT_EQ(hv_->memory_resizes.load(), 2);

  // Out of range, off the 2 MiB blocks: the hypervisor's one line, unchanged.
  EXPECT_NE(error_of(resize(258).ignoreResult()).find("memory 258 out of 128..256 in 2 MiB steps"), std::string::npos);
  EXPECT_NE(error_of(resize(64).ignoreResult()).find("memory 64 out of 128..256"), std::string::npos);
  EXPECT_NE(error_of(resize(131).ignoreResult()).find("memory 131 out of"), std::string::npos);
  EXPECT_EQ(hv_->memory_resizes.load(), 2);
  EXPECT_EQ(memory_now(), 130u);

  // A guest that can't give everything back: the answer is where it got.
  EXPECT_EQ(client_->wait(resize(256)).getMemoryMib(), 256u);
  hv_->unplug_floor_mib = 200;
  EXPECT_EQ(client_->wait(resize(128)).getMemoryMib(), 200u);
  EXPECT_EQ(memory_now(), 200u);
  hv_->unplug_floor_mib = 0;

  client_->wait(client_->sandbox().pauseRequest().send().ignoreResult());
  EXPECT_NE(error_of(resize(128).ignoreResult()).find("paused, not running: its memory can't be resized"),
            std::string::npos);
  client_->wait(client_->sandbox().resumeRequest().send().ignoreResult());
  hv_->memory_resize = false;
  EXPECT_NE(error_of(resize(128).ignoreResult()).find("host-agent (test) can't resize a running VM's memory"),
            std::string::npos);
  hv_->memory_resize = true;
  EXPECT_EQ(hv_->memory_resizes.load(), 4);
}

class EventRecorder final : public api::control::EventSink::Server {
 public:
  explicit EventRecorder(std::vector<std::string>& into) : into_(into) {}
  kj::Promise<void> event(EventContext ctx) override {
    auto e = ctx.getParams().getEvent();
    into_.push_back(std::string(e.getType().cStr()) + ":" + e.getContainerId().cStr() + ":" + std::to_string(e.getExit().getCode()));
    return kj::READY_NOW;
  }

 private:
  std::vector<std::string>& into_;
};

TEST_F(ControlApiTest, EventsReportExitsWhileSubscribed) {
  std::vector<std::string> events;
  auto sub_req = client_->sandbox().eventsRequest();
  sub_req.setSink(kj::heap<EventRecorder>(events));
  auto sub = client_->wait(sub_req.send()).getSubscription();
  std::string out;
  auto c = create("short", bundle("b6", "exit 4"), out);
  client_->wait(c.startRequest().send().ignoreResult());
  client_->wait(c.waitRequest().send().ignoreResult());
  for (int i = 0; i < 100 && events.empty(); ++i)
    client_->wait(client_->io().provider->getTimer().afterDelay(10 * kj::MILLISECONDS));
  ASSERT_FALSE(events.empty());
  EXPECT_EQ(events.back(), "exit:short:4");
}

TEST_F(ControlApiTest, PingAndInfoAndShutdown) {
  auto ping = client_->wait(client_->sandbox().pingRequest().send());
  EXPECT_EQ(ping.getApiVersion(), api::control::CONTROL_API_VERSION);
  auto info = client_->wait(client_->sandbox().infoRequest().send());
  EXPECT_EQ(std::string(info.getInfo().getId().cStr()), "sb1");
  EXPECT_EQ(std::string(info.getInfo().getState().cStr()), "running");
  EXPECT_FALSE(std::string(info.getInfo().getAgentVersion().cStr()).empty());
  client_->shutdown_sandbox();
  shut_down_ = true;
  client_.reset();
  server_.join();
  EXPECT_FALSE(std::filesystem::exists(socket_)) << "the control socket goes with the server";
}

}  // namespace
}  // namespace skiff::runtime
