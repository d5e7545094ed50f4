// Our end of the ttrpc interop test (ttrpc-interop.sh runs it against Go's
// ttrpc, main.go beside this):
//
//   ttrpc_interop_peer serve ADDRESS   a Task service subset for Go's client;
//                                      exits 0 once a Shutdown is answered
//   ttrpc_interop_peer call ADDRESS    our client against Go's server
//
// ADDRESS is containerd's form (unix:///path or an abstract name). Every
// check of `call` prints "ok   NAME" or "FAIL NAME: why"; exit 1 if any failed.
#include <kj/async-io.h>
#include <kj/vector.h>
#include <unistd.h>

#include <cstdio>
#include <exception>
#include <map>
#include <string>
#include <vector>

#include "github.com/containerd/containerd/api/events/task.pb.h"
#include "github.com/containerd/containerd/api/services/ttrpc/events/v1/events.pb.h"
#include "github.com/containerd/containerd/runtime/v2/task/shim.pb.h"
#include "runtime/shim/ttrpc/client.h"
#include "runtime/shim/ttrpc/server.h"

namespace {

using namespace skiff::ttrpc;
namespace task = containerd::task::v2;
using google::protobuf::Empty;

constexpr const char* kTask = "containerd.task.v2.Task";
constexpr int kWaiters = 16;

int serve(const UnixAddress& address) {
  auto io = kj::setupAsyncIo();
  auto& timer = io.provider->getTimer();
  ServiceSet services;
  Server* server = nullptr;
  bool shut_down = false;

  services.add<task::StateRequest, task::StateResponse>(kTask, "State", [](const CallContext& ctx, task::StateRequest r) {
    task::StateResponse out;
    out.set_id(r.id());
    out.set_exec_id(r.exec_id());
    out.set_bundle(std::string(ctx.get(kNamespaceKey).value_or("(no namespace)")));
    out.set_pid(42);
    out.set_status(containerd::v1::types::RUNNING);
    return out;
  });
  services.add<task::CreateTaskRequest, task::CreateTaskResponse>(
      kTask, "Create", [](const CallContext&, task::CreateTaskRequest r) {
        const bool as_sent = r.id() == "c1" && r.bundle() == "/b" && r.terminal() && r.stdout() == "/fifo/out" &&
                             r.rootfs_size() == 2 && r.rootfs(0).type() == "overlay" &&
                             r.rootfs(0).options_size() == 2 && r.rootfs(0).options(0) == "lowerdir=/l" &&
                             r.rootfs(1).target() == "/y" && r.options().type_url() == "types.containerd.io/skiff/test" &&
                             r.options().value() == "opts";
        if (!as_sent) throw Error(Code::InvalidArgument, "Create arrived as: " + r.ShortDebugString());
        task::CreateTaskResponse out;
        out.set_pid(7);
        return out;
      });
  services.add<task::KillRequest, Empty>(kTask, "Kill", [](const CallContext&, task::KillRequest r) {
    if (r.id() == "missing") throw Error(Code::NotFound, "container missing");
    return Empty();
  });
  services.add<task::UpdateTaskRequest, Empty>(kTask, "Update", [](const CallContext&, task::UpdateTaskRequest r) {
    if (r.resources().value().size() != (1u << 20))
      throw Error(Code::InvalidArgument, "resources of " + std::to_string(r.resources().value().size()) + " bytes");
    return Empty();
  });
  // Held until all kWaiters are in, then answered last first, 10 ms apart.
  std::map<int, kj::Own<kj::PromiseFulfiller<task::WaitResponse>>> held;
  kj::Promise<void> releasing = nullptr;
  services.add<task::WaitRequest, task::WaitResponse>(
      kTask, "Wait", [&](const CallContext&, task::WaitRequest r) -> kj::Promise<task::WaitResponse> {
        if (r.id() == "forever") return kj::NEVER_DONE;
        const int i = std::stoi(r.id().substr(1));
        auto paf = kj::newPromiseAndFulfiller<task::WaitResponse>();
        held[i] = kj::mv(paf.fulfiller);
        if (static_cast<int>(held.size()) == kWaiters) {
          kj::Promise<void> chain = kj::READY_NOW;
          for (int k = kWaiters - 1; k >= 0; --k) {
            chain = chain.then([&, k] {
              task::WaitResponse w;
              w.set_exit_status(static_cast<uint32_t>(k));
              held[k]->fulfill(kj::mv(w));
              return timer.afterDelay(10 * kj::MILLISECONDS);
            });
          }
          releasing = chain.then([&] { held.clear(); }).eagerlyEvaluate(nullptr);
        }
        return kj::mv(paf.promise);
      });
  kj::Promise<void> stopping = nullptr;
  auto stopped = kj::newPromiseAndFulfiller<void>();
  services.add<task::ShutdownRequest, Empty>(kTask, "Shutdown", [&](const CallContext&, task::ShutdownRequest) {
    // Answer first; the server closes each connection once its answers are out.
    stopping = kj::evalLater([&] { return server->shutdown(); })
                   .then([&] {
                     shut_down = true;
                     stopped.fulfiller->fulfill();
                   })
                   .eagerlyEvaluate(nullptr);
    return Empty();
  });

  Server s(*io.lowLevelProvider, timer, std::move(services));
  server = &s;
  s.listen(address);
  std::printf("listening on %s\n", address.describe().c_str());
  std::fflush(stdout);
  stopped.promise.exclusiveJoin(timer.afterDelay(120 * kj::SECONDS)).wait(io.waitScope);
  if (!shut_down) {
    std::fprintf(stderr, "ttrpc_interop_peer: no Shutdown within 120 s\n");
    return 1;
  }
  return 0;
}

struct Checks {
  bool failed = false;
  void operator()(const std::string& name, const std::string& problem) {
    if (problem.empty()) {
      std::printf("ok   %s\n", name.c_str());
    } else {
      std::printf("FAIL %s: %s\n", name.c_str(), problem.c_str());
      failed = true;
    }
    std::fflush(stdout);
  }
};

std::string status_problem(const Status& got, Code code, const std::string& message = {}) {
  if (got.code == code && (message.empty() || got.message == message)) return {};
  return "want " + code_name(code) + (message.empty() ? "" : " \"" + message + "\"") + ", got " + got.to_string();
}

int call(const UnixAddress& address) {
  auto io = kj::setupAsyncIo();
  auto& ws = io.waitScope;
  auto& timer = io.provider->getTimer();
  Checks check;
  auto failure = [&](auto promise) -> Status {
    try {
      promise.wait(ws);
    } catch (const kj::Exception& e) {
      return status_of(e);
    }
    return Status{};
  };
  kj::Own<Client> c;
  try {
    c = Client::connect(*io.lowLevelProvider, timer, address).wait(ws);
  } catch (const kj::Exception& e) {
    check("connect", status_of(e).to_string());
    return 1;
  }
  CallOptions ns;
  ns.metadata = {{std::string(kNamespaceKey), "skiff-interop"}};

  try {
    task::StateRequest req;
    req.set_id("c1");
    req.set_exec_id("e1");
    auto r = c->call<task::StateResponse>(kTask, "State", req, ns).wait(ws);
    const bool good = r.id() == "c1" && r.exec_id() == "e1" && r.bundle() == "ns:skiff-interop" && r.pid() == 4242 &&
                      r.status() == containerd::v1::types::STOPPED && r.exit_status() == 3;
    check("State: typed messages both ways, the namespace as ttrpc metadata",
          good ? "" : "unexpected answer " + r.ShortDebugString());
  } catch (const kj::Exception& e) {
    check("State", status_of(e).to_string());
  }

  task::KillRequest kill;
  kill.set_id("missing");
  check("Kill: errdefs.ErrNotFound arrives as NotFound",
        status_problem(failure(c->call<Empty>(kTask, "Kill", kill, ns)), Code::NotFound, "container missing: not found"));
  check("an unknown method is Unimplemented",
        status_problem(failure(c->call(kTask, "NoSuchMethod", "")), Code::Unimplemented, "method NoSuchMethod"));
  check("an unknown service is Unimplemented",
        status_problem(failure(c->call("skiff.NoSuchService", "State", "")), Code::Unimplemented,
                       "service skiff.NoSuchService"));

  {
    kj::Vector<kj::Promise<void>> waits;
    std::vector<int> order;
    std::string problem;
    for (int i = 0; i < kWaiters; ++i) {
      task::WaitRequest w;
      w.set_id("w" + std::to_string(i));
      waits.add(c->call<task::WaitResponse>(kTask, "Wait", w, ns).then([&, i](task::WaitResponse r) {
        if (r.exit_status() != static_cast<uint32_t>(i) && problem.empty())
          problem = "w" + std::to_string(i) + " got exit status " + std::to_string(r.exit_status());
        order.push_back(i);
      }).eagerlyEvaluate(nullptr));  // recorded as each answer arrives, not as joined
    }
    try {
      kj::joinPromises(waits.releaseAsArray()).wait(ws);
    } catch (const kj::Exception& e) {
      problem = status_of(e).to_string();
    }
    if (problem.empty() && !order.empty() && order.front() == 0) problem = "answered in the order asked";
    std::string seen;
    for (int i : order) seen += (seen.empty() ? "" : " ") + std::to_string(i);
    check(std::to_string(kWaiters) + " concurrent Waits answered out of order (" + seen + ")", problem);
  }

  {
    task::WaitRequest w;
    w.set_id("forever");
    CallOptions o = ns;
    o.timeout = std::chrono::milliseconds(100);
    check("a deadline ends a call that never answers",
          status_problem(failure(c->call<task::WaitResponse>(kTask, "Wait", w, o)), Code::DeadlineExceeded));
  }

  {
    containerd::events::TaskCreate ev;
    ev.set_container_id("c1");
    ev.set_bundle("/b");
    ev.set_pid(7);
    ev.add_rootfs()->set_type("overlay");
    containerd::services::events::ttrpc::v1::ForwardRequest fwd;
    auto* env = fwd.mutable_envelope();
    env->mutable_timestamp()->set_seconds(1700000000);
    env->set_namespace_("skiff-interop");
    env->set_topic("/tasks/create");
    env->mutable_event()->set_type_url("containerd.events.TaskCreate");
    env->mutable_event()->set_value(ev.SerializeAsString());
    std::string problem;
    try {
      c->call<Empty>("containerd.services.events.ttrpc.v1.Events", "Forward", fwd, ns).wait(ws);
    } catch (const kj::Exception& e) {
      problem = status_of(e).to_string();
    }
    check("Events.Forward: a TaskCreate envelope as containerd's shims send it", problem);
  }

  try {
    task::ShutdownRequest s;
    s.set_id("c1");
    c->call<Empty>(kTask, "Shutdown", s, ns).wait(ws);
    check("Shutdown", "");
  } catch (const kj::Exception& e) {
    check("Shutdown", status_of(e).to_string());
  }
  return check.failed ? 1 : 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3 || (std::string(argv[1]) != "serve" && std::string(argv[1]) != "call")) {
    std::fprintf(stderr, "usage: ttrpc_interop_peer serve|call ADDRESS\n");
    return 2;
  }
  try {
    const auto address = UnixAddress::parse(argv[2]);
    return std::string(argv[1]) == "serve" ? serve(address) : call(address);
  } catch (const kj::Exception& e) {
    std::fprintf(stderr, "ttrpc_interop_peer: %s\n", e.getDescription().cStr());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "ttrpc_interop_peer: %s\n", e.what());
  }
  return 1;
}
