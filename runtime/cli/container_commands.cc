// The runc-compatible container commands: create, start, run, state, kill,
// delete, exec, list, pause, resume, ps, events, update. Each later command
// is a control API call to the container's sandbox process; a sandbox
// process that is gone makes the container "stopped", and delete cleans up
// after it.
#include <pthread.h>
#include <unistd.h>

#include <kj/async-unix.h>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "base/config_error.h"
#include "base/log.h"
#include "runtime/cli/table.h"
#include "runtime/cli/commands.h"
#include "runtime/cli/exec_session.h"
#include "runtime/cli/global_options.h"
#include "runtime/cli/sandbox_launch.h"
#include "runtime/cli/signal_names.h"
#include "runtime/cli/terminal_proxy.h"
#include "runtime/control/control_client.h"
#include "runtime/oci/oci_spec.h"
#include "runtime/sandbox/stdio_streams.h"
#include "runtime/state/state_store.h"

namespace skiff::cli {
namespace {

using runtime::ContainerState;
using runtime::ControlClient;
using runtime::StateStore;

std::string absolute(const std::string& path) {
  return std::filesystem::absolute(path.empty() ? "." : path).lexically_normal().string();
}

// The container's state, or one clear line if there is none.
ContainerState load_state(StateStore& store, const std::string& id) {
  StateStore::check_id(id);
  auto st = store.load(id);
  if (!st) throw std::runtime_error("container \"" + id + "\" does not exist");
  return *st;
}

bool sandbox_alive(const ContainerState& st) {
  return st.sandbox_pid > 0 && runtime::process_alive(st.sandbox_pid, st.sandbox_start_time);
}

// A client of the container's sandbox process; "not running" if it is gone.
std::unique_ptr<ControlClient> connect(const ContainerState& st) {
  if (!sandbox_alive(st) || st.control_socket.empty())
    throw std::runtime_error("container \"" + st.id + "\" is not running: its sandbox process is gone");
  return std::make_unique<ControlClient>(st.control_socket);
}

// The sandbox of container `id`, connected: "does not exist" or "not
// running" (one line each) when there is none to talk to.
std::unique_ptr<ControlClient> connect_container(StateStore& store, const std::string& id) {
  return connect(load_state(store, id));
}

// The status a command acts on: the sandbox's word if it answers, else the
// state file's (effective_status says "stopped" when the process is gone).
std::string live_status(const ContainerState& st) {
  if (!sandbox_alive(st)) return runtime::effective_status(st);
  try {
    auto client = connect(st);
    auto info = client->wait(client->container(st.id).infoRequest().send());
    return info.getInfo().getStatus();
  } catch (const std::exception&) {
    return runtime::effective_status(st);
  }
}

nlohmann::json state_json(const ContainerState& st, const std::string& status) {
  nlohmann::json j = {{"ociVersion", "1.0.2"},
                      {"id", st.id},
                      {"pid", status == "stopped" ? 0 : st.pid},
                      {"status", status},
                      {"bundle", st.bundle},
                      {"rootfs", st.rootfs},
                      {"created", st.created},
                      {"owner", st.owner}};
  if (!st.annotations.empty()) j["annotations"] = st.annotations;
  return j;
}

// Waits (up to 10 s, then SIGKILL) for a sandbox process to end.
void await_exit(const ContainerState& st) {
  for (int i = 0; i < 200 && sandbox_alive(st); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  if (sandbox_alive(st)) {
    ::kill(st.sandbox_pid, SIGKILL);
    for (int i = 0; i < 100 && sandbox_alive(st); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

// Deletes a container: its sandbox process is told to shut down (killed if
// it does not answer), then the state directory goes, mounts and all.
void delete_container(StateStore& store, const ContainerState& st, bool force) {
  if (sandbox_alive(st)) {
    const std::string status = live_status(st);
    if ((status == "running" || status == "paused" || status == "creating") && !force)
      throw std::runtime_error("cannot delete container \"" + st.id + "\" that is not stopped: " + status +
                               " (use delete --force)");
    try {
      auto client = connect(st);
      client->wait(client->container(st.id).deleteRequest().send().ignoreResult().catch_([&](kj::Exception&& e) {
        if (!force) return kj::Promise<void>(kj::mv(e));
        return kj::Promise<void>(kj::READY_NOW);
      }));
      client->shutdown_sandbox();
    } catch (const runtime::ControlCallError& e) {
      if (!force) throw;
      log::warn("cli", "the sandbox process did not shut down cleanly: killing it", {{"error", std::string(e.what())}});
      ::kill(st.sandbox_pid, SIGKILL);
    }
    await_exit(st);
  }
  store.remove(st.id);
}

// --- create / start / run ---

struct CreateOptions {
  std::string id, bundle = ".", console_socket, pid_file;
  bool no_pivot = false, no_new_keyring = false, detach = false, keep = false;
  std::vector<std::string> preserve_fds;
};

void add_create_flags(CLI::App* cmd, CreateOptions& o) {
  cmd->add_option("--bundle,-b", o.bundle, "path to the root of the bundle directory")->capture_default_str();
  cmd->add_option("--console-socket", o.console_socket,
                  "path to an AF_UNIX socket that receives the pty master of the container's terminal");
  cmd->add_option("--pid-file", o.pid_file, "file to write the sandbox process's pid to");
  cmd->add_flag("--no-pivot", o.no_pivot,
                "accepted for runc compatibility: the rootfs is on virtio-fs in the guest, where pivot_root works");
  cmd->add_flag("--no-new-keyring", o.no_new_keyring, "accepted for runc compatibility (the guest has its own keyrings)");
  cmd->add_option("id", o.id, "container id")->required();
}

int run_container(GlobalOptions& g, CreateOptions& o, bool start_too) {
  g.set_up_logging(o.id);
  const std::string bundle = absolute(o.bundle);
  const bool foreground = start_too && !o.detach;
  std::unique_ptr<ConsoleReceiver> receiver;
  if (foreground && o.console_socket.empty() && runtime::oci::load_bundle(bundle).terminal) {
    block_terminal_signals();
    receiver = std::make_unique<ConsoleReceiver>();
  }
  LaunchOptions lo{o.id, bundle, receiver ? receiver->path() : o.console_socket, o.pid_file};
  std::unique_ptr<TerminalProxy> proxy;
  if (receiver) {
    // The sandbox process sends the terminal before it answers create.
    std::thread launch;
    std::exception_ptr failed;
    int pid = 0;
    launch = std::thread([&] {
      try {
        pid = launch_sandbox(g, lo);
      } catch (...) {
        failed = std::current_exception();
      }
    });
    UniqueFd master;
    try {
      master = receiver->receive(120000);
    } catch (...) {
      launch.join();
      if (failed) std::rethrow_exception(failed);
      throw;
    }
    launch.join();
    if (failed) std::rethrow_exception(failed);
    (void)pid;
    proxy = std::make_unique<TerminalProxy>(std::move(master));
  } else {
    launch_sandbox(g, lo);
  }
  if (!start_too) return 0;

  StateStore store(g.state_root());
  int code = 255;
  {
    // Every capability goes before its client's event loop does.
    auto client = connect_container(store, o.id);
    auto container = client->container(o.id);
    client->wait(container.startRequest().send().ignoreResult());
    if (o.detach) return 0;
    // Foreground: the container's exit status is ours; then it is deleted, as runc run does.
    kj::Promise<int> waited = container.waitRequest().send().then([](auto r) { return r.getStatus().getCode(); });
    code = client->wait(kj::mv(waited));
  }
  proxy.reset();
  auto now = load_state(store, o.id);
  delete_container(store, now, true);
  return code;
}

// --- exec ---

struct ExecOptions {
  std::string id, process_file, cwd, user, console_socket, pid_file, exec_id;
  std::vector<std::string> env, args, caps, additional_gids;
  bool tty = false, detach = false, no_new_privs = false;
};

nlohmann::json exec_process(const ExecOptions& o, const nlohmann::json& base) {
  if (!o.process_file.empty()) {
    std::ifstream f(o.process_file);
    if (!f) throw ConfigError("--process " + o.process_file + ": cannot be read");
    std::stringstream ss;
    ss << f.rdbuf();
    return runtime::oci::parse_json_text(ss.str(), o.process_file);
  }
  if (o.args.empty()) throw ConfigError("exec needs a command (or --process FILE)");
  // As runc: the container's own process is the template (env, user, capabilities...).
  const ExecOverrides overrides{o.args, o.env, o.cwd, o.tty};
  check_exec_overrides(overrides);
  nlohmann::json p = apply_exec_overrides(base.value("process", nlohmann::json::object()), overrides);
  if (!o.user.empty()) {
    auto colon = o.user.find(':');
    try {
      p["user"]["uid"] = std::stoul(o.user.substr(0, colon));
      p["user"]["gid"] = colon == std::string::npos ? 0 : std::stoul(o.user.substr(colon + 1));
    } catch (const std::exception&) {
      throw ConfigError("--user " + o.user + ": must be UID[:GID]");
    }
  }
  for (const auto& g : o.additional_gids) {
    try {
      p["user"]["additionalGids"].push_back(std::stoul(g));
    } catch (const std::exception&) {
      throw ConfigError("--additional-gids " + g + ": must be a number");
    }
  }
  for (const auto& c : o.caps)
    for (const char* set : {"bounding", "effective", "permitted"}) p["capabilities"][set].push_back(c);
  if (o.no_new_privs) p["noNewPrivileges"] = true;
  return p;
}

int run_exec(GlobalOptions& g, ExecOptions& o) {
  g.set_up_logging(o.id);
  StateStore store(g.state_root());
  auto st = load_state(store, o.id);
  auto bundle = runtime::oci::load_bundle(st.bundle);
  auto process = exec_process(o, bundle.config);
  auto client = connect(st);
  static int counter = 0;
  ExecSession session{o.id, o.exec_id.empty() ? "exec-" + std::to_string(::getpid()) + "-" + std::to_string(counter++) : o.exec_id,
                      process, o.console_socket, o.detach, nullptr};
  if (!o.pid_file.empty())
    session.on_started = [&] { runtime::write_file_atomic(o.pid_file, std::to_string(st.sandbox_pid), 0644); };
  return run_exec_session(*client, session);
}

// --- the rest ---


nlohmann::json stats_json(api::Stats::Reader s) {
  return {{"cpu", {{"usage", {{"total", s.getCpuUsageUsec() * 1000}, {"user", s.getCpuUserUsec() * 1000}, {"kernel", s.getCpuSystemUsec() * 1000}}}}},
          {"memory", {{"usage", {{"usage", s.getMemoryCurrent()}, {"limit", s.getMemoryMax()}}}, {"oomKills", s.getMemoryOomKills()}}},
          {"pids", {{"current", s.getPidsCurrent()}}},
          {"blkio", {{"readBytes", s.getIoReadBytes()}, {"writeBytes", s.getIoWriteBytes()}}},
          {"network", {{"rxBytes", s.getNetRxBytes()}, {"txBytes", s.getNetTxBytes()}, {"rxPackets", s.getNetRxPackets()},
                       {"txPackets", s.getNetTxPackets()}}}};
}

class EventPrinter final : public api::control::EventSink::Server {
 public:
  explicit EventPrinter(std::string id) : id_(std::move(id)) {}
  kj::Promise<void> event(EventContext ctx) override {
    auto e = ctx.getParams().getEvent();
    if (std::string(e.getContainerId().cStr()) != id_ && e.getContainerId().size() > 0) return kj::READY_NOW;
    nlohmann::json j = {{"type", std::string(e.getType().cStr())}, {"id", id_}};
    if (std::string(e.getType().cStr()) == "exit")
      j["data"] = {{"execId", std::string(e.getExecId().cStr())}, {"pid", e.getPid()}, {"status", e.getExit().getCode()}};
    std::printf("%s\n", j.dump().c_str());
    std::fflush(stdout);
    return kj::READY_NOW;
  }

 private:
  std::string id_;
};

int parse_duration_s(const std::string& s) {
  size_t pos = 0;
  int v = -1;
  try {
    v = std::stoi(s, &pos);
  } catch (const std::exception&) {
  }
  std::string unit = s.substr(pos);
  if (v <= 0 || !(unit.empty() || unit == "s" || unit == "m")) throw ConfigError("--interval " + s + ": must be like 5s or 1m");
  return unit == "m" ? v * 60 : v;
}

}  // namespace

std::vector<std::string> exec_separator(std::vector<std::string> args) {
  auto takes_value = [](const std::string& a, std::initializer_list<const char*> names) {
    if (a.find('=') != std::string::npos) return false;
    for (const char* n : names)
      if (a == n) return true;
    return false;
  };
  size_t i = 1;
  for (; i < args.size() && args[i].starts_with("-"); ++i)
    if (takes_value(args[i], {"--root", "--log", "--log-format", "--config"})) ++i;
  if (i >= args.size() || args[i] != "exec") return args;
  for (++i; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "--") return args;
    if (!a.starts_with("-")) break;  // the id
    if (takes_value(a, {"--process", "-p", "--console-socket", "--pid-file", "--cwd", "--env", "-e", "--user", "-u",
                        "--additional-gids", "-g", "--cap", "-c", "--exec-id", "--root", "--log", "--log-format", "--config"}))
      ++i;
  }
  if (i + 1 < args.size() && args[i + 1] != "--") args.insert(args.begin() + static_cast<long>(i) + 1, "--");
  return args;
}

void add_container_commands(CLI::App& app, GlobalOptions& g, int& status) {
  {
    auto o = std::make_shared<CreateOptions>();
    auto* cmd = app.add_subcommand("create", "Create a container: its sandbox VM boots, its process waits for start");
    add_create_flags(cmd, *o);
    cmd->callback([&g, &status, o] { status = run_container(g, *o, false); });
  }
  {
    auto o = std::make_shared<CreateOptions>();
    auto* cmd = app.add_subcommand("run", "Create and start a container; in the foreground, wait for it and delete it");
    add_create_flags(cmd, *o);
    cmd->add_flag("--detach,-d", o->detach, "return once the container has started");
    cmd->callback([&g, &status, o] { status = run_container(g, *o, true); });
  }
  {
    auto id = std::make_shared<std::string>();
    auto* cmd = app.add_subcommand("start", "Start a created container's process");
    cmd->add_option("id", *id, "container id")->required();
    cmd->callback([&g, &status, id] {
      g.set_up_logging(*id);
      StateStore store(g.state_root());
      auto lock = store.lock(*id);
      auto st = load_state(store, *id);
      const std::string s = live_status(st);
      if (s != "created") throw std::runtime_error("cannot start container \"" + *id + "\": it is " + s + ", not created");
      auto client = connect(st);
      client->wait(client->container(*id).startRequest().send().ignoreResult());
      status = 0;
    });
  }
  {
    auto id = std::make_shared<std::string>();
    auto* cmd = app.add_subcommand("state", "Print a container's state as JSON (runc's shape)");
    cmd->add_option("id", *id, "container id")->required();
    cmd->callback([&g, &status, id] {
      StateStore store(g.state_root());
      auto st = load_state(store, *id);
      std::printf("%s\n", state_json(st, live_status(st)).dump(2).c_str());
      status = 0;
    });
  }
  {
    struct KillOptions {
      std::string id, signal = "SIGTERM";
      bool all = false;
    };
    auto o = std::make_shared<KillOptions>();
    auto* cmd = app.add_subcommand("kill", "Send a signal (name or number; SIGTERM by default) to a container's process");
    cmd->add_option("id", o->id, "container id")->required();
    cmd->add_option("signal", o->signal, "signal")->capture_default_str();
    cmd->add_flag("--all,-a", o->all, "send it to every process of the container");
    cmd->callback([&g, &status, o] {
      const int sig = parse_signal(o->signal);
      g.set_up_logging(o->id);
      StateStore store(g.state_root());
      auto client = connect_container(store, o->id);
      auto req = client->container(o->id).killRequest();
      req.setSignal(sig);
      req.setAll(o->all);
      client->wait(req.send().ignoreResult());
      status = 0;
    });
  }
  {
    struct DeleteOptions {
      std::string id;
      bool force = false;
    };
    auto o = std::make_shared<DeleteOptions>();
    auto* cmd = app.add_subcommand("delete", "Delete a container and everything of it (--force: even a running one)");
    cmd->add_option("id", o->id, "container id")->required();
    cmd->add_flag("--force,-f", o->force, "kill it first if it runs; clean up after a sandbox process that is gone");
    cmd->callback([&g, &status, o] {
      g.set_up_logging(o->id);
      StateStore store(g.state_root());
      StateStore::check_id(o->id);
      auto lock = store.lock(o->id);
      auto st = store.load(o->id);
      if (!st) {
        if (o->force) {
          store.remove(o->id);  // a half-made directory, if any
          status = 0;
          return;
        }
        throw std::runtime_error("container \"" + o->id + "\" does not exist");
      }
      delete_container(store, *st, o->force);
      status = 0;
    });
  }
  {
    auto o = std::make_shared<ExecOptions>();
    auto* cmd = app.add_subcommand("exec", "Run a new process in a running container");
    cmd->add_option("--process,-p", o->process_file, "an OCI process object (JSON file) instead of the arguments");
    cmd->add_flag("--tty,-t", o->tty, "give the process a terminal");
    cmd->add_option("--console-socket", o->console_socket, "AF_UNIX socket that receives the pty master (with --tty)");
    cmd->add_option("--pid-file", o->pid_file, "file to write the sandbox process's pid to");
    cmd->add_option("--cwd", o->cwd, "working directory in the container");
    cmd->add_option("--env,-e", o->env, "KEY=value to add to the environment (repeatable)");
    cmd->add_option("--user,-u", o->user, "UID[:GID] to run as");
    cmd->add_option("--additional-gids,-g", o->additional_gids, "more group ids (repeatable)");
    cmd->add_option("--cap,-c", o->caps, "a capability to add (repeatable)");
    cmd->add_flag("--no-new-privs", o->no_new_privs, "set no_new_privs");
    cmd->add_flag("--detach,-d", o->detach, "do not wait for the process (its output is discarded unless it has a terminal)");
    cmd->add_option("--exec-id", o->exec_id, "name of the exec (default: exec-<pid>-<n>)");
    cmd->add_option("id", o->id, "container id")->required();
    // main() puts "--" after the id (exec_separator), so the command's own
    // flags stay its own, as with runc.
    cmd->add_option("command", o->args, "command and arguments");
    cmd->callback([&g, &status, o] { status = run_exec(g, *o); });
  }
  {
    struct ListOptions {
      std::string format = "table";
      bool quiet = false;
    };
    auto o = std::make_shared<ListOptions>();
    auto* cmd = app.add_subcommand("list", "List the containers under --root");
    cmd->add_option("--format,-f", o->format, "table or json")->check(CLI::IsMember({"table", "json"}))->capture_default_str();
    cmd->add_flag("--quiet,-q", o->quiet, "ids only");
    cmd->callback([&g, &status, o] {
      StateStore store(g.state_root());
      std::vector<std::vector<std::string>> rows = {{"ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"}};
      nlohmann::json all = nlohmann::json::array();
      for (const auto& id : store.list()) {
        std::optional<ContainerState> st;
        try {
          st = store.load(id);
        } catch (const std::exception& e) {
          log::warn("cli", "unreadable state", {{"container", id}, {"error", std::string(e.what())}});
        }
        if (!st) continue;
        const std::string s = live_status(*st);
        auto j = state_json(*st, s);
        if (o->quiet) std::printf("%s\n", id.c_str());
        rows.push_back({id, std::to_string(j["pid"].get<int>()), s, st->bundle, st->created, st->owner});
        all.push_back(j);
      }
      if (o->format == "json") std::printf("%s\n", all.dump().c_str());
      else if (!o->quiet) print_table(rows);
      status = 0;
    });
  }
  for (const char* verb : {"pause", "resume"}) {
    auto id = std::make_shared<std::string>();
    const bool pause = std::string(verb) == "pause";
    auto* cmd = app.add_subcommand(verb, pause ? "Freeze every process of a container" : "Thaw a paused container");
    cmd->add_option("id", *id, "container id")->required();
    cmd->callback([&g, &status, id, pause] {
      g.set_up_logging(*id);
      StateStore store(g.state_root());
      auto lock = store.lock(*id);
      auto client = connect_container(store, *id);
      auto c = client->container(*id);
      client->wait(pause ? c.pauseRequest().send().ignoreResult() : c.resumeRequest().send().ignoreResult());
      status = 0;
    });
  }
  {
    struct PsOptions {
      std::string id, format = "table";
    };
    auto o = std::make_shared<PsOptions>();
    auto* cmd = app.add_subcommand("ps", "List a container's processes (their pids in the guest)");
    cmd->add_option("--format,-f", o->format, "table or json")->check(CLI::IsMember({"table", "json"}))->capture_default_str();
    cmd->add_option("id", o->id, "container id")->required();
    cmd->callback([&g, &status, o] {
      StateStore store(g.state_root());
      auto client = connect_container(store, o->id);
      auto reply = client->wait(client->container(o->id).psRequest().send());
      std::vector<uint32_t> pids;
      for (auto p : reply.getPids()) pids.push_back(p);
      if (o->format == "json") {
        std::printf("%s\n", nlohmann::json(pids).dump().c_str());
      } else {
        std::printf("PID\n");
        for (auto p : pids) std::printf("%u\n", p);
      }
      status = 0;
    });
  }
  {
    struct EventsOptions {
      std::string id, interval = "5s";
      bool stats = false;
    };
    auto o = std::make_shared<EventsOptions>();
    auto* cmd = app.add_subcommand("events", "Print a container's events (exit, oom, paused, resumed) and its stats as JSON lines");
    cmd->add_flag("--stats", o->stats, "print the stats once and exit");
    cmd->add_option("--interval", o->interval, "how often to print stats")->capture_default_str();
    cmd->add_option("id", o->id, "container id")->required();
    cmd->callback([&g, &status, o] {
      const int interval = parse_duration_s(o->interval);
      StateStore store(g.state_root());
      auto client = connect_container(store, o->id);
      auto c = client->container(o->id);
      auto print_stats = [&] {
        auto r = client->wait(c.statsRequest().send());
        nlohmann::json j = {{"type", "stats"}, {"id", o->id}, {"data", stats_json(r.getStats())}};
        std::printf("%s\n", j.dump().c_str());
        std::fflush(stdout);
      };
      print_stats();
      if (o->stats) {
        status = 0;
        return;
      }
      auto req = client->sandbox().eventsRequest();
      req.setSink(kj::heap<EventPrinter>(o->id));
      auto sub = client->wait(req.send()).getSubscription();
      auto& timer = client->io().provider->getTimer();
      for (;;) {
        client->wait(timer.afterDelay(interval * kj::SECONDS));
        print_stats();
      }
    });
  }
  {
    struct UpdateOptions {
      std::string id, resources, cpuset_cpus, cpuset_mems;
      std::optional<int64_t> memory, memory_reservation, memory_swap, cpu_quota, pids_limit;
      std::optional<uint64_t> cpu_period, cpu_shares, blkio_weight;
    };
    auto o = std::make_shared<UpdateOptions>();
    auto* cmd = app.add_subcommand("update", "Change a container's resource limits");
    cmd->add_option("--resources,-r", o->resources, "an OCI linux.resources object (JSON file, - for stdin)");
    cmd->add_option("--memory", o->memory, "memory limit in bytes");
    cmd->add_option("--memory-reservation", o->memory_reservation, "memory soft limit in bytes");
    cmd->add_option("--memory-swap", o->memory_swap, "memory plus swap limit in bytes");
    cmd->add_option("--cpu-quota", o->cpu_quota, "CPU time in microseconds per period");
    cmd->add_option("--cpu-period", o->cpu_period, "CPU period in microseconds");
    cmd->add_option("--cpu-share", o->cpu_shares, "CPU shares (relative weight)");
    cmd->add_option("--cpuset-cpus", o->cpuset_cpus, "CPUs to use (0-3, 0,1)");
    cmd->add_option("--cpuset-mems", o->cpuset_mems, "memory nodes to use");
    cmd->add_option("--pids-limit", o->pids_limit, "maximum number of processes");
    cmd->add_option("--blkio-weight", o->blkio_weight, "block I/O weight, 10 to 1000");
    cmd->add_option("id", o->id, "container id")->required();
    cmd->callback([&g, &status, o] {
      nlohmann::json r = nlohmann::json::object();
      if (!o->resources.empty()) {
        std::stringstream ss;
        if (o->resources == "-") {
          ss << std::cin.rdbuf();
        } else {
          std::ifstream f(o->resources);
          if (!f) throw ConfigError("--resources " + o->resources + ": cannot be read");
          ss << f.rdbuf();
        }
        r = runtime::oci::parse_json_text(ss.str(), o->resources);
      }
      if (o->memory) r["memory"]["limit"] = *o->memory;
      if (o->memory_reservation) r["memory"]["reservation"] = *o->memory_reservation;
      if (o->memory_swap) r["memory"]["swap"] = *o->memory_swap;
      if (o->cpu_quota) r["cpu"]["quota"] = *o->cpu_quota;
      if (o->cpu_period) r["cpu"]["period"] = *o->cpu_period;
      if (o->cpu_shares) r["cpu"]["shares"] = *o->cpu_shares;
      if (!o->cpuset_cpus.empty()) r["cpu"]["cpus"] = o->cpuset_cpus;
      if (!o->cpuset_mems.empty()) r["cpu"]["mems"] = o->cpuset_mems;
      if (o->pids_limit) r["pids"]["limit"] = *o->pids_limit;
      if (o->blkio_weight) r["blockIO"]["weight"] = *o->blkio_weight;
      if (r.empty()) throw ConfigError("update: nothing to change (give --resources or a limit flag)");
      g.set_up_logging(o->id);
      StateStore store(g.state_root());
      auto client = connect_container(store, o->id);
      auto req = client->container(o->id).updateRequest();
      runtime::oci::to_agent_resources(r, req.initResources());
      client->wait(req.send().ignoreResult());
      status = 0;
    });
  }
}

}  // namespace skiff::cli
