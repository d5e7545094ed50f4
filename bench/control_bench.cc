// skiff_bench_control: the control API's round trip, and a command's wall time.
//
//   skiff_bench_control SOCKET [N]
// Over one connection to a running sandbox process's control socket
// (<root>/<id>/control.sock), with the runtime's own synchronous client
// (runtime/control/control_client.h, as the CLI uses it): N (2000) calls of
// Sandbox.ping (which does nothing: the round trip itself, target median
// <= 50 us, docs/DESIGN.md section 7), then N of Sandbox.info (a real call:
// it reads the sandbox's state and every container's), each after 200
// warm-up calls; median, p90, p99 (nearest rank) in microseconds.
//
//   skiff_bench_control host [N]
// The same round trips on this host without a VM, so the API's own cost
// shows where the full-system tier (nested, TCG) can't: a child process
// holds a real Sandbox and ControlServer whose "guest" is the real agent
// code run on this host (the runtime tests' HostAgentHypervisor); this
// process is the client over the control socket. Needs root (the agent
// sets up a UTS namespace), as the control API's tests do.
//
//   skiff_bench_control time-run RUNS -- CMD [ARGS...]
// Runs CMD RUNS times after 2 warm-up runs ("{i}" in an argument becomes the
// run's number, so container ids differ) and prints the median and p90 of
// spawn -> exit in milliseconds. bench/cases/cli_guest.sh times `skiff run`
// and `runc run` with it, so both are timed by the same code. CMD's stdout
// goes to /dev/null, its stderr to ours (a failing run says why there); a
// run that does not exit 0 ends the bench with status 1.
//
// Figures only: exit 0 unless the sandbox cannot be reached, a call fails or
// a timed command fails (1), or the arguments are wrong (2).
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "api/control.capnp.h"
#include "base/unique_fd.h"
#include "bench/bench_support.h"
#include "runtime/config/runtime_config.h"
#include "runtime/control/control_client.h"
#include "runtime/control/control_server.h"
#include "runtime/sandbox/sandbox.h"
#include "tests/runtime/sandbox/host_agent_hypervisor.h"

namespace {

using namespace skiff::bench;
using skiff::UniqueFd;
using skiff::runtime::ControlCallError;
using skiff::runtime::ControlClient;

constexpr int kWarmupCalls = 200;
constexpr int kWarmupRuns = 2;

void usage(const char* argv0) {
  std::fprintf(stderr,
               "usage: %s SOCKET [N]                      control API round trips (N = 2000)\n"
               "       %s host [N]                        the same against a VM-less sandbox on this host\n"
               "       %s time-run RUNS -- CMD [ARGS...]  wall time of CMD (\"{i}\": the run's number)\n",
               argv0, argv0, argv0);
}

// Nearest rank, as skiff_bench_agent: the smallest sample with at least p of
// the samples at or below it.
double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t rank = static_cast<size_t>(std::ceil(p * static_cast<double>(v.size())));
  return v[std::clamp<size_t>(rank, 1, v.size()) - 1];
}

double us_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double, std::micro>(b - a).count();
}

long positive(const char* what, const char* text) {
  char* end = nullptr;
  const long n = std::strtol(text, &end, 10);
  if (!*text || *end || n < 1 || n > 100000000) {
    std::fprintf(stderr, "%s: bad value '%s'\n", what, text);
    std::exit(2);
  }
  return n;
}

// Times `n` calls of `call` after the warm-up; each call is one request
// sent and its answer waited for (send().wait()), so a sample is one round
// trip through the sandbox process's event loop.
template <typename Call>
std::vector<double> time_calls(long n, Call&& call) {
  for (int i = 0; i < kWarmupCalls; ++i) call();
  std::vector<double> us;
  us.reserve(static_cast<size_t>(n));
  for (long i = 0; i < n; ++i) {
    const auto t0 = Clock::now();
    call();
    us.push_back(us_between(t0, Clock::now()));
  }
  return us;
}

void print_calls(const char* name, const std::vector<double>& us) {
  std::printf("control %-13s round trip: median %.1f us, p90 %.1f us, p99 %.1f us (%zu calls after %d warm-ups)\n", name,
              median(us), percentile(us, 0.9), percentile(us, 0.99), us.size(), kWarmupCalls);
}

int round_trips(const std::string& socket, long n) {
  try {
    ControlClient client(socket);
    // One answer checked before timing: the socket is a sandbox process
    // speaking this API version, not something else that accepts.
    auto first = client.wait(client.sandbox().pingRequest().send());
    if (first.getApiVersion() != skiff::api::control::CONTROL_API_VERSION)
      die("the sandbox speaks control API version " + std::to_string(first.getApiVersion()) + ", this bench " +
          std::to_string(skiff::api::control::CONTROL_API_VERSION));
    auto info = client.wait(client.sandbox().infoRequest().send());
    std::printf("sandbox %s: pid %u, %s, %u vCPU(s), %lu MiB, %u container(s); %s, %d usable CPU(s)\n",
                info.getInfo().getId().cStr(), info.getInfo().getPid(), info.getInfo().getState().cStr(),
                info.getInfo().getVcpus(), static_cast<unsigned long>(info.getInfo().getMemoryMib()),
                info.getInfo().getContainers().size(), host_summary().c_str(), usable_cpus());

    const auto ping = time_calls(n, [&] { client.wait(client.sandbox().pingRequest().send()); });
    print_calls("Sandbox.ping", ping);
    // The reply is read (its container list walked) as a caller would, so
    // the figure includes decoding it.
    size_t containers = 0;
    const auto info_us = time_calls(n, [&] {
      auto r = client.wait(client.sandbox().infoRequest().send());
      containers += r.getInfo().getContainers().size();
    });
    print_calls("Sandbox.info", info_us);
    if (containers == 0) std::printf("      (the sandbox listed no container: Sandbox.info had less to report)\n");
    print_load_average("figures");
  } catch (const ControlCallError& e) {
    die(e.what());
  }
  return 0;
}

// The child of `host`: a sandbox on its own KJ loop, served until Shutdown.
// Writes one byte to ready_fd once the control socket listens (nothing
// when the sandbox does not start: the parent then sees EOF).
[[noreturn]] void serve_host_sandbox(const std::string& dir, int ready_fd) {
  int code = 1;
  try {
    auto io = kj::setupAsyncIo();
    skiff::runtime::testing::HostAgentHypervisor hv(dir + "/agent.sock");
    skiff::runtime::Sandbox::Settings settings;
    settings.id = "bench";
    settings.state_dir = dir;
    settings.config = skiff::runtime::default_config("/nonexistent/kernel", "");
    settings.sizing.vcpus = settings.sizing.max_vcpus = 1;
    settings.sizing.memory_mib = 128;
    skiff::runtime::Sandbox sandbox(io, hv, settings);
    sandbox.start().wait(io.waitScope);
    auto done = kj::newPromiseAndFulfiller<void>();
    skiff::runtime::ControlServer server(
        io, dir + "/control.sock", skiff::runtime::make_control_sandbox(sandbox, [f = done.fulfiller.get()] { f->fulfill(); }));
    (void)!::write(ready_fd, "1", 1);
    ::close(ready_fd);
    done.promise.wait(io.waitScope);
    code = 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s: host sandbox: %s\n", program_invocation_short_name, e.what());
  } catch (const kj::Exception& e) {
    std::fprintf(stderr, "%s: host sandbox: %s\n", program_invocation_short_name, e.getDescription().cStr());
  }
  std::fflush(nullptr);
  ::_exit(code);
}

int host_round_trips(long n) {
  if (::geteuid() != 0) die("host mode needs root: the agent it runs sets up namespaces");
  char tmpl[] = "/tmp/skiff-bench-control-XXXXXX";
  if (!::mkdtemp(tmpl)) die_errno("mkdtemp");
  const std::string dir = tmpl;
  int ready[2];
  if (::pipe2(ready, O_CLOEXEC) != 0) die_errno("pipe");
  std::fflush(nullptr);
  const pid_t child = ::fork();
  if (child < 0) die_errno("fork");
  if (child == 0) {
    ::close(ready[0]);
    serve_host_sandbox(dir, ready[1]);
  }
  ::close(ready[1]);
  char byte = 0;
  const bool up = ::read(ready[0], &byte, 1) == 1;
  ::close(ready[0]);
  int rc = 1;
  if (up) {
    rc = round_trips(dir + "/control.sock", n);
    ControlClient(dir + "/control.sock").shutdown_sandbox();
  }
  int status = 0;
  while (::waitpid(child, &status, 0) < 0 && errno == EINTR) {
  }
  std::error_code ignored;
  std::filesystem::remove_all(dir, ignored);
  if (!up) die("the host sandbox did not start (its error is above)");
  return rc;
}

// The program to spawn: posix_spawn takes a path, so a bare name is looked
// up in PATH as a shell would.
std::string resolve(const std::string& cmd) {
  if (cmd.find('/') != std::string::npos) return cmd;
  const char* path = std::getenv("PATH");
  std::string dirs = path ? path : "/usr/bin:/bin";
  for (size_t at = 0; at <= dirs.size();) {
    size_t end = dirs.find(':', at);
    if (end == std::string::npos) end = dirs.size();
    const std::string candidate = dirs.substr(at, end - at) + "/" + cmd;
    if (::access(candidate.c_str(), X_OK) == 0) return candidate;
    at = end + 1;
  }
  return cmd;
}

int time_run(long runs, const std::vector<std::string>& cmd) {
  UniqueFd null(::open("/dev/null", O_WRONLY | O_CLOEXEC));
  if (!null) die_errno("/dev/null");
  std::vector<double> ms;
  for (long i = 0; i < runs + kWarmupRuns; ++i) {
    std::vector<std::string> args;
    for (std::string arg : cmd) {
      for (size_t at; (at = arg.find("{i}")) != std::string::npos;) arg.replace(at, 3, std::to_string(i));
      args.push_back(std::move(arg));
    }
    args[0] = resolve(args[0]);
    std::string error;
    const auto t0 = Clock::now();
    const pid_t pid = spawn_process(args, null.get(), STDERR_FILENO, error);
    if (pid < 0) die(error);
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0)
      if (errno != EINTR) die_errno("waitpid");
    const auto t1 = Clock::now();
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      std::fprintf(stderr, "%s: time-run: run %ld of %s %s (status 0x%x)\n", program_invocation_short_name, i,
                   args[0].c_str(), WIFEXITED(status) ? "failed" : "was killed", static_cast<unsigned>(status));
      return 1;
    }
    if (i >= kWarmupRuns) ms.push_back(us_between(t0, t1) / 1000);
  }
  std::string shown;
  for (const auto& a : cmd) shown += (shown.empty() ? "" : " ") + a;
  std::printf("time-run: median %.1f ms, p90 %.1f ms (%zu runs after %d warm-ups): %s\n", median(ms),
              percentile(ms, 0.9), ms.size(), kWarmupRuns, shown.c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc >= 2 && (std::strcmp(argv[1], "-h") == 0 || std::strcmp(argv[1], "--help") == 0)) {
    usage(argv[0]);
    return 0;
  }
  if (argc >= 2 && std::strcmp(argv[1], "time-run") == 0) {
    if (argc < 5 || std::strcmp(argv[3], "--") != 0) {
      usage(argv[0]);
      return 2;
    }
    return time_run(positive("RUNS", argv[2]), std::vector<std::string>(argv + 4, argv + argc));
  }
  if (argc >= 2 && std::strcmp(argv[1], "host") == 0) {
    if (argc > 3) {
      usage(argv[0]);
      return 2;
    }
    return host_round_trips(argc == 3 ? positive("N", argv[2]) : 2000);
  }
  if (argc < 2 || argc > 3) {
    usage(argv[0]);
    return 2;
  }
  return round_trips(argv[1], argc == 3 ? positive("N", argv[2]) : 2000);
}
