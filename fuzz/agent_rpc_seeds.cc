// Writes the seeds of the agent_rpc fuzz target: what a real Cap'n Proto
// client sends on the agent's connection for a few sessions, recorded off
// an in-memory pipe (the calls are pipelined, so no agent needs to answer).
//   agent_rpc_seeds DIR
#include <capnp/rpc-twoparty.h>
#include <kj/async-io.h>

#include <cstdio>
#include <fstream>
#include <functional>
#include <string>

#include "api/agent.capnp.h"
#include "tests/agent/agent_test_support.h"

namespace {

namespace api = skiff::api;
using skiff::agent::testing::Collector;

std::string sink_text;

void fill_create(api::Sandbox::CreateContainerParams::Builder req, const char* id, bool terminal) {
  req.setId(id);
  skiff::agent::testing::shell_spec(req.initSpec(), "/run/share/rootfs", "echo hi; sleep 1", {"mount", "pid", "uts"});
  auto p = req.getSpec().getProcess();
  p.setTerminal(terminal);
  p.initEnv(1).set(0, "PATH=/bin");
  auto res = req.getSpec().getLinux().initResources();
  res.getMemory().setLimit(16 << 20);
  auto rule = res.initDevices(1)[0];
  rule.setAllow(false);
  rule.setAccess("rwm");
  auto stdio = req.initStdio();
  stdio.setStdout(kj::heap<Collector>(sink_text));
  stdio.setStderr(kj::heap<Collector>(sink_text));
  stdio.setStdin(true);
}

void setup_session(api::Sandbox::Client sb, kj::Vector<kj::Promise<void>>& calls) {
  auto setup = sb.setupRequest();
  auto c = setup.initConfig();
  c.setHostname("fuzz");
  c.initDnsServers(1).set(0, "10.0.0.1");
  auto kv = c.initSysctls(1)[0];
  kv.setKey("net.ipv4.ip_forward");
  kv.setValue("1");
  auto st = c.initStorages(1)[0];
  st.setDriver("virtiofs");
  st.setSource("share");
  st.setMountPoint("/run/share");
  calls.add(setup.send().ignoreResult());
  calls.add(sb.versionRequest().send().ignoreResult());
  calls.add(sb.guestDetailsRequest().send().ignoreResult());
  calls.add(sb.healthRequest().send().ignoreResult());
  calls.add(sb.listContainersRequest().send().ignoreResult());
}

void container_session(api::Sandbox::Client sb, kj::Vector<kj::Promise<void>>& calls) {
  auto req = sb.createContainerRequest();
  fill_create(req, "c1", false);
  auto c = req.send().getContainer();
  calls.add(c.startRequest().send().ignoreResult());
  calls.add(c.psRequest().send().ignoreResult());
  calls.add(c.statsRequest().send().ignoreResult());
  auto exec = c.execRequest();
  exec.setExecId("e1");
  auto p = exec.initProcess();
  p.initArgs(2).set(0, "sh");
  p.getArgs().set(1, "-c");
  p.setCwd("/");
  exec.initStdio().setStdout(kj::heap<Collector>(sink_text));
  calls.add(exec.send().getProcess().waitRequest().send().ignoreResult());
  auto sig = c.signalRequest();
  sig.setSignal(15);
  sig.setAll(true);
  calls.add(sig.send().ignoreResult());
  calls.add(c.pauseRequest().send().ignoreResult());
  calls.add(c.resumeRequest().send().ignoreResult());
  auto upd = c.updateRequest();
  upd.initResources().setPidsLimit(10);
  calls.add(upd.send().ignoreResult());
  calls.add(c.waitRequest().send().ignoreResult());
  calls.add(c.stateRequest().send().ignoreResult());
  calls.add(c.removeRequest().send().ignoreResult());
}

void process_session(api::Sandbox::Client sb, kj::Vector<kj::Promise<void>>& calls) {
  auto req = sb.createContainerRequest();
  fill_create(req, "tty", true);
  auto c = req.send().getContainer();
  auto init = c.initRequest().send().getProcess();
  calls.add(c.startRequest().send().ignoreResult());
  auto resize = init.resizeTerminalRequest();
  resize.getSize().setRows(50);
  resize.getSize().setCols(132);
  calls.add(resize.send().ignoreResult());
  auto w = init.stdinRequest().send().getStream().writeRequest();
  const char line[] = "go\n";
  w.setBytes(kj::arrayPtr(reinterpret_cast<const kj::byte*>(line), sizeof line - 1));
  calls.add(w.send());
  calls.add(init.pidRequest().send().ignoreResult());
  auto sig = init.signalRequest();
  sig.setSignal(9);
  calls.add(sig.send().ignoreResult());
  calls.add(init.waitRequest().send().ignoreResult());
}

class Events final : public api::EventSink::Server {};

void watch_session(api::Sandbox::Client sb, kj::Vector<kj::Promise<void>>& calls) {
  auto watch = sb.watchRequest();
  watch.setSink(kj::heap<Events>());
  calls.add(watch.send().ignoreResult());
  auto t = sb.setTimeRequest();
  t.setUnixNanos(-5);
  calls.add(t.send().ignoreResult());
  auto bad = sb.createContainerRequest();
  bad.setId("../bad");
  bad.initSpec();
  calls.add(bad.send().ignoreResult());
  calls.add(sb.containerRequest().send().ignoreResult());
  auto off = sb.powerOffRequest();
  off.setReboot(true);
  calls.add(off.send().ignoreResult());
}

std::string record(const std::function<void(api::Sandbox::Client, kj::Vector<kj::Promise<void>>&)>& session) {
  auto io = kj::setupAsyncIo();
  auto pipe = io.provider->newTwoWayPipe();
  std::string bytes;
  {
    capnp::TwoPartyClient client(*pipe.ends[0]);
    kj::Vector<kj::Promise<void>> calls;
    session(client.bootstrap().castAs<api::Sandbox>(), calls);
    auto buf = kj::heapArray<kj::byte>(65536);
    for (;;) {
      auto n = pipe.ends[1]
                   ->tryRead(buf.begin(), 1, buf.size())
                   .exclusiveJoin(io.provider->getTimer().afterDelay(200 * kj::MILLISECONDS).then([] { return size_t{0}; }))
                   .wait(io.waitScope);
      if (n == 0) break;
      bytes.append(reinterpret_cast<const char*>(buf.begin()), n);
    }
    for (auto& c : calls) c = c.catch_([](kj::Exception&&) {});
  }
  return bytes;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: agent_rpc_seeds DIR\n");
    return 2;
  }
  const std::string dir = argv[1];
  const std::pair<const char*, void (*)(api::Sandbox::Client, kj::Vector<kj::Promise<void>>&)> sessions[] = {
      {"setup", setup_session}, {"container", container_session}, {"process", process_session}, {"watch", watch_session}};
  for (const auto& [name, session] : sessions) {
    const std::string bytes = record(session);
    std::ofstream(dir + "/" + name, std::ios::binary) << bytes;
    std::printf("agent_rpc_seeds: %s: %zu bytes\n", name, bytes.size());
  }
  return 0;
}
