#include "runtime/cli/table.h"
#include "runtime/ctl/ctl_commands.h"

#include <kj/async-io.h>
#include <kj/timer.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <exception>
#include <memory>
#include <string>
#include <vector>

#include "runtime/cli/signal_names.h"
#include "runtime/control/control_client.h"
#include "runtime/ctl/exec_command.h"
#include "runtime/ctl/json_dump.h"
#include "runtime/ctl/latency.h"
#include "runtime/ctl/raw_call.h"
#include "runtime/ctl/sandboxes.h"

namespace skiff::runtime::ctl {
namespace {

using api::control::Container;
using api::control::Sandbox;

// list asks every live sandbox; one whose process hangs must not hang it.
constexpr auto kListTimeout = 5 * kj::SECONDS;
// How often `events` checks that the sandbox is still there (nothing else
// tells a client that holds no call in flight).
constexpr auto kEventsLiveness = 1 * kj::SECONDS;

// false once stdout is gone (a reader that went away: `| head`).
bool print_json(const nlohmann::ordered_json& j, bool pretty) {
  std::printf("%s\n", dump_json(j, pretty).c_str());
  return std::fflush(stdout) == 0 && !std::ferror(stdout);
}


struct Target {
  std::string sandbox, container;
};

void add_target(CLI::App* cmd, Target& t, bool container, bool container_required) {
  cmd->add_option("sandbox", t.sandbox, "sandbox id (the id `skiff create` was given)")->required();
  if (container) cmd->add_option("container", t.container, "container id")->required(container_required);
}

std::string text(capnp::Text::Reader t) { return std::string(t.begin(), t.size()); }

int run_list(const std::string& root, bool json) {
  std::vector<std::vector<std::string>> rows = {{"SANDBOX", "PID", "STATE", "CONTAINERS", "VCPUS", "MEMORY"}};
  nlohmann::ordered_json all = nlohmann::ordered_json::array();
  for (const auto& sb : list_sandboxes(root)) {
    nlohmann::ordered_json j;
    if (!sb.load_error.empty()) {
      j = {{"id", sb.id}, {"state", "unreadable"}, {"error", sb.load_error}};
      rows.push_back({sb.id, "-", "unreadable", "-", "-", "-"});
    } else if (!sb.alive) {
      j = {{"id", sb.id}, {"pid", 0}, {"state", "stopped"}};
      rows.push_back({sb.id, "0", "stopped", "-", "-", "-"});
    } else {
      try {
        auto client = connect(sb);
        auto& timer = client->io().provider->getTimer();
        auto r = client->wait(timer.timeoutAfter(
            kListTimeout, kj::Promise<capnp::Response<Sandbox::InfoResults>>(client->sandbox().infoRequest().send())));
        auto info = r.getInfo();
        j = capnp_to_json(info);
        rows.push_back({sb.id, std::to_string(info.getPid()), text(info.getState()), std::to_string(info.getContainers().size()),
                        std::to_string(info.getVcpus()), std::to_string(info.getMemoryMib()) + "MiB"});
      } catch (const std::exception& e) {
        // Alive by its pid but not answering: say so rather than guess.
        j = {{"id", sb.id}, {"pid", sb.state.sandbox_pid}, {"state", "unreachable"}, {"error", e.what()}};
        rows.push_back({sb.id, std::to_string(sb.state.sandbox_pid), "unreachable", "-", "-", "-"});
      }
    }
    all.push_back(std::move(j));
  }
  if (json) print_json(all, false);
  else cli::print_table(rows);
  return 0;
}

int run_status(const std::string& root, const Target& t) {
  auto client = connect(find_sandbox(root, t.sandbox));
  if (t.container.empty()) {
    print_json(capnp_to_json(client->wait(client->sandbox().infoRequest().send()).getInfo()), true);
  } else {
    print_json(capnp_to_json(client->wait(client->container(t.container).infoRequest().send()).getInfo()), true);
  }
  return 0;
}

int run_pause(const std::string& root, const Target& t, bool pause) {
  auto client = connect(find_sandbox(root, t.sandbox));
  if (t.container.empty()) {
    auto& s = client->sandbox();
    client->wait(pause ? s.pauseRequest().send().ignoreResult() : s.resumeRequest().send().ignoreResult());
  } else {
    auto c = client->container(t.container);
    client->wait(pause ? c.pauseRequest().send().ignoreResult() : c.resumeRequest().send().ignoreResult());
  }
  return 0;
}

class EventPrinter final : public api::control::EventSink::Server {
 public:
  explicit EventPrinter(bool& stdout_gone) : stdout_gone_(stdout_gone) {}
  kj::Promise<void> event(EventContext ctx) override {
    if (!print_json(capnp_to_json(ctx.getParams().getEvent()), false)) stdout_gone_ = true;
    return kj::READY_NOW;
  }

 private:
  bool& stdout_gone_;
};

int run_events(const std::string& root, const std::string& id) {
  auto client = connect(find_sandbox(root, id));
  bool stdout_gone = false;
  auto req = client->sandbox().eventsRequest();
  req.setSink(kj::heap<EventPrinter>(stdout_gone));
  auto subscription = client->wait(req.send()).getSubscription();
  auto& timer = client->io().provider->getTimer();
  while (!stdout_gone) {
    client->wait(timer.afterDelay(kEventsLiveness));
    try {
      client->sandbox().pingRequest().send().wait(client->ws());
    } catch (const kj::Exception& e) {
      if (e.getType() == kj::Exception::Type::DISCONNECTED) return 0;  // the sandbox ended: so do its events
      throw ControlCallError(ControlClient::describe(e));
    }
  }
  return 0;
}

int run_ping(const std::string& root, const std::string& id, int count) {
  auto client = connect(find_sandbox(root, id));
  // Not counted: the first call also resolves the bootstrap capability.
  const uint32_t version = client->wait(client->sandbox().pingRequest().send()).getApiVersion();
  std::vector<double> samples;
  for (int i = 0; i < count; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    client->wait(client->sandbox().pingRequest().send());
    samples.push_back(std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count());
  }
  const auto s = summarize_latency(samples);
  std::printf("%s: %d round trips (control API %u): median %.1f us, p99 %.1f us\n", id.c_str(), count, version, s.median_us,
              s.p99_us);
  return 0;
}

int run_raw(const std::string& root, const Target& t, const std::string& method_name) {
  // The method is checked before the sandbox is looked for: a typo says so wherever it is run.
  const auto method = parameterless_method(
      t.container.empty() ? capnp::Schema::from<Sandbox>() : capnp::Schema::from<Container>(), method_name);
  auto client = connect(find_sandbox(root, t.sandbox));
  capnp::Capability::Client target = t.container.empty() ? capnp::Capability::Client(client->sandbox())
                                                         : capnp::Capability::Client(client->container(t.container));
  print_json(call_parameterless(*client, kj::mv(target), method), true);
  return 0;
}

void add_commands(CLI::App& app, const std::string& root, int& status) {
  {
    auto json = std::make_shared<bool>(false);
    auto* cmd = app.add_subcommand("list", "Every sandbox under --root, each live one asked for its info");
    cmd->add_flag("--json", *json, "a JSON array: each live sandbox's Sandbox.info, the others' id, pid and state");
    cmd->callback([&root, &status, json] { status = run_list(root, *json); });
  }
  {
    auto t = std::make_shared<Target>();
    auto* cmd = app.add_subcommand("status", "A sandbox's Sandbox.info, or a container's Container.info, as JSON");
    add_target(cmd, *t, true, false);
    cmd->callback([&root, &status, t] { status = run_status(root, *t); });
  }
  {
    auto o = std::make_shared<ExecOptions>();
    auto* cmd = app.add_subcommand("exec", "Run a process in a container, stdio through; exits with its status");
    cmd->add_flag("--tty,-t", o->tty, "give it a terminal: this one, in raw mode while it runs");
    cmd->add_option("--env,-e", o->env, "KEY=value for its environment (repeat the flag for more)")->allow_extra_args(false);
    cmd->add_option("--cwd", o->cwd, "its working directory in the container (absolute)");
    cmd->add_option("sandbox", o->sandbox, "sandbox id")->required();
    cmd->add_option("container", o->container, "container id")->required();
    cmd->add_option("command", o->args, "the command and its arguments (after --, if any starts with -)")->required();
    cmd->callback([&root, &status, o] { status = run_exec(root, *o); });
  }
  {
    struct KillOptions {
      Target t;
      std::string signal = "SIGTERM";
      bool all = false;
    };
    auto o = std::make_shared<KillOptions>();
    auto* cmd = app.add_subcommand("kill", "Send a signal (name or number) to a container's process");
    add_target(cmd, o->t, true, true);
    cmd->add_option("signal", o->signal, "signal")->capture_default_str();
    cmd->add_flag("--all,-a", o->all, "to every process of the container");
    cmd->callback([&root, &status, o] {
      const int sig = cli::parse_signal(o->signal);
      auto client = connect(find_sandbox(root, o->t.sandbox));
      auto req = client->container(o->t.container).killRequest();
      req.setSignal(sig);
      req.setAll(o->all);
      client->wait(req.send().ignoreResult());
      status = 0;
    });
  }
  for (const bool pause : {true, false}) {
    auto t = std::make_shared<Target>();
    auto* cmd = app.add_subcommand(pause ? "pause" : "resume",
                                   pause ? "Freeze a container, or with none given the whole VM (every vCPU)"
                                         : "Thaw a paused container, or with none given the whole VM");
    add_target(cmd, *t, true, false);
    cmd->callback([&root, &status, t, pause] { status = run_pause(root, *t, pause); });
  }
  {
    auto t = std::make_shared<Target>();
    auto* cmd = app.add_subcommand("stats", "A container's Container.stats as JSON");
    add_target(cmd, *t, true, true);
    cmd->callback([&root, &status, t] {
      auto client = connect(find_sandbox(root, t->sandbox));
      print_json(capnp_to_json(client->wait(client->container(t->container).statsRequest().send()).getStats()), true);
      status = 0;
    });
  }
  {
    auto t = std::make_shared<Target>();
    auto* cmd = app.add_subcommand("events", "A sandbox's events, one JSON line each, until interrupted or it ends");
    add_target(cmd, *t, false, false);
    cmd->callback([&root, &status, t] { status = run_events(root, t->sandbox); });
  }
  {
    struct PingOptions {
      Target t;
      int count = 10;
    };
    auto o = std::make_shared<PingOptions>();
    auto* cmd = app.add_subcommand("ping", "Sandbox.ping round trips: their median and p99 in microseconds");
    add_target(cmd, o->t, false, false);
    cmd->add_option("--count,-c", o->count, "how many")->check(CLI::Range(1, 10000000))->capture_default_str();
    cmd->callback([&root, &status, o] { status = run_ping(root, o->t.sandbox, o->count); });
  }
  {
    struct ResizeOptions {
      Target t;
      uint32_t vcpus = 0;
      uint64_t memory = 0;
    };
    auto o = std::make_shared<ResizeOptions>();
    auto* cmd = app.add_subcommand(
        "resize", "Run a sandbox's guest on more or fewer vCPUs, or MiB of memory (up to the maximum it booted for)");
    add_target(cmd, o->t, false, false);
    cmd->add_option("--vcpus", o->vcpus, "how many vCPUs the guest has online")->check(CLI::Range(1, 255));
    cmd->add_option("--memory", o->memory, "how many MiB of memory the guest has in all (virtio-mem)")
        ->check(CLI::Range(uint64_t{1}, uint64_t{1} << 24));
    cmd->callback([&root, &status, o] {
      if (!o->vcpus && !o->memory) throw CLI::RequiredError("--vcpus or --memory");
      auto client = connect(find_sandbox(root, o->t.sandbox));
      status = 0;
      if (o->vcpus) {
        auto req = client->sandbox().resizeVcpusRequest();
        req.setVcpus(o->vcpus);
        const uint32_t online = client->wait(req.send()).getVcpus();
        std::printf("%s: %u vCPUs online\n", o->t.sandbox.c_str(), online);
        if (online != o->vcpus) {
          status = 1;
          std::fprintf(stderr, "skiffctl: error: the guest has %u vCPUs online, not %u\n", online, o->vcpus);
        }
      }
      if (o->memory) {
        // Answered once the guest has the memory online, or has stopped
        // getting closer (memory in use that it can't unplug yet).
        auto req = client->sandbox().resizeMemoryRequest();
        req.setMemoryMib(o->memory);
        const auto mib = static_cast<unsigned long long>(client->wait(req.send()).getMemoryMib());
        std::printf("%s: %llu MiB of memory\n", o->t.sandbox.c_str(), mib);
        if (mib != o->memory) {
          status = 1;
          std::fprintf(stderr, "skiffctl: error: the guest has %llu MiB of memory, not %llu: it got no closer (memory in use it can't give back, or a paused VM)\n",
                       mib, static_cast<unsigned long long>(o->memory));
        }
      }
    });
  }
  {
    struct RawOptions {
      Target t;
      std::string method;
    };
    auto o = std::make_shared<RawOptions>();
    auto* cmd = app.add_subcommand(
        "raw", "Call a parameterless method of the Sandbox, or with a container of that Container; print its results as JSON");
    cmd->add_option("sandbox", o->t.sandbox, "sandbox id")->required();
    cmd->add_option("method", o->method, "the method's name in api/control.capnp (info, ping, ps, ...)")->required();
    cmd->add_option("container", o->t.container, "container id: call the Container's method");
    cmd->callback([&root, &status, o] { status = run_raw(root, o->t, o->method); });
  }
}

}  // namespace

int run_skiffctl(int argc, const char* const* argv) {
  CLI::App app{"skiffctl: Skiff's sandboxes through their control API (api/control.capnp)", "skiffctl"};
  app.require_subcommand(1);
  app.failure_message([](const CLI::App*, const CLI::Error& e) {
    return std::string("skiffctl: error: ") + e.what() + " (see --help)\n";
  });
  std::string root = kDefaultRoot;
  app.add_option("--root", root, "state directory of the sandboxes")->capture_default_str();
  app.fallthrough();  // --root after the command too
  int status = 0;
  add_commands(app, root, status);
  try {
    app.parse(argc, argv);
    std::fflush(stdout);
  } catch (const CLI::ParseError& e) {
    // --help is an "error" with status 0; real usage errors get 2.
    return app.exit(e) == 0 ? 0 : 2;
  } catch (const std::exception& e) {
    std::fflush(stdout);
    std::fprintf(stderr, "skiffctl: error: %s\n", e.what());
    return 1;
  } catch (const kj::Exception& e) {
    std::fflush(stdout);
    std::fprintf(stderr, "skiffctl: error: %s\n", ControlClient::describe(e).c_str());
    return 1;
  }
  return status;
}

}  // namespace skiff::runtime::ctl
