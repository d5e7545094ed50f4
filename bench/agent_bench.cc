// skiff_bench_agent: the guest agent run on the host (the real skiff-agent
// binary serving its API on a Unix socket), beside runc, in the same run.
//
// Figures (information only, the bench never fails on a figure):
//   1. agent API round trip: Sandbox.version() over a Unix socket with Cap'n
//      Proto RPC, median and p90, beside a bare Unix socket ping-pong of 8
//      bytes with a process of our own (the floor any RPC over that socket has);
//   2. create -> first output: from issuing Sandbox.createContainer and
//      Container.start (pipelined) to the container's first stdout byte (the
//      first ByteStream.write reaching the bench's ByteStream server), for a
//      busybox `sh -c 'echo x'`; beside `runc run` of the same rootfs, from its
//      spawn to the first byte on its stdout pipe;
//   3. create -> exit: to Container.wait's answer, and to `runc run`'s exit
//      (runc run also deletes the container before it exits, so the agent's
//      create -> exit + Container.remove is printed too).
//
// Needs root (namespaces, mounts, cgroups); skipped with a line otherwise.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <capnp/rpc-twoparty.h>
#include <kj/async-io.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "api/agent.capnp.h"
#include "bench/bench_support.h"
#include "tests/agent/agent_test_support.h"

extern char** environ;

namespace {

using namespace skiff::bench;
namespace api = skiff::api;
namespace fs = std::filesystem;

// The namespaces both peers' containers get: runc's default spec less its
// network namespace (the agent's containers share the sandbox's network).
const std::vector<std::string> kNamespaces{"pid", "mount", "ipc", "uts"};
const char* kScript = "echo x";
const char* kExpected = "x\n";

double ms_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}
double us_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double, std::micro>(b - a).count();
}

// Nearest rank: the smallest sample with at least p of the samples at or below it.
double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  size_t rank = static_cast<size_t>(std::ceil(p * static_cast<double>(v.size())));
  return v[std::clamp<size_t>(rank, 1, v.size()) - 1];
}

struct Summary {
  double median = 0, p90 = 0;
  size_t n = 0;
};
Summary summarize(const std::vector<double>& v) { return {median(v), percentile(v, 0.9), v.size()}; }

// ---------------------------------------------------------------------------
// Options

struct Options {
  int calls = 2000;
  int call_warmup = 100;
  int runs = 20;
  int run_warmup = 2;
  std::string agent = SKIFF_AGENT_BINARY;
  std::string runc;  // empty: `runc` from PATH, installed with apt-get when missing
  bool no_cgroup = false;
};

void usage(const char* argv0) {
  std::printf(
      "usage: %s [--calls N] [--call-warmup N] [--runs N] [--run-warmup N] [--agent PATH] [--runc PATH]\n"
      "          [--no-cgroup]\n"
      "  --calls N        Sandbox.version() calls measured (default 2000), and as many bare ping-pongs\n"
      "  --call-warmup N  calls discarded before them (default 100)\n"
      "  --runs N         containers measured per peer (default 20)\n"
      "  --run-warmup N   containers discarded before them (default 2)\n"
      "  --agent PATH     the skiff-agent binary (default %s)\n"
      "  --runc PATH      runc (default: from PATH; `apt-get install -y runc` when missing)\n"
      "  --no-cgroup      run the agent without --cgroup-parent\n",
      argv0, SKIFF_AGENT_BINARY);
}

bool parse_options(int argc, char** argv, Options& o) {
  Args args(argc, argv);
  while (args.next()) {
    const std::string& a = args.flag();
    if (a == "--calls") o.calls = static_cast<int>(args.number(1, 10000000));
    else if (a == "--call-warmup") o.call_warmup = static_cast<int>(args.number(0, 10000000));
    else if (a == "--runs") o.runs = static_cast<int>(args.number(1, 100000));
    else if (a == "--run-warmup") o.run_warmup = static_cast<int>(args.number(0, 100000));
    else if (a == "--agent") o.agent = args.value();
    else if (a == "--runc") o.runc = args.value();
    else if (a == "--no-cgroup") o.no_cgroup = true;
    else return args.help_or_unknown(usage);
  }
  return true;
}

std::optional<std::string> find_on_path(const std::string& name) {
  const char* path = std::getenv("PATH");
  std::stringstream ss(path && *path ? path : "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
  std::string dir;
  while (std::getline(ss, dir, ':')) {
    if (dir.empty()) continue;
    std::string p = dir + "/" + name;
    if (::access(p.c_str(), X_OK) == 0) return p;
  }
  // root's PATH may lack the sbin directories where Debian puts runc.
  for (const char* d : {"/usr/sbin", "/sbin", "/usr/local/sbin"}) {
    std::string p = std::string(d) + "/" + name;
    if (::access(p.c_str(), X_OK) == 0) return p;
  }
  return std::nullopt;
}

std::string read_all(const std::string& path) {
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

std::string last_lines(const std::string& s, int n) {
  size_t pos = s.size();
  while (pos > 0 && s[pos - 1] == '\n') --pos;
  size_t end = pos;
  for (int i = 0; i < n && pos > 0; ++i) {
    pos = s.rfind('\n', pos - 1);
    if (pos == std::string::npos) {
      pos = 0;
      break;
    }
  }
  std::string out = s.substr(pos, end - pos);
  if (!out.empty() && out[0] == '\n') out.erase(0, 1);
  return out;
}

std::string one_line(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  std::replace(s.begin(), s.end(), '\n', ' ');
  return s;
}

// ---------------------------------------------------------------------------
// What the bench leaves on the host, undone at the end and on a set-up error

struct Host {
  std::string dir;     // the temp dir: rootfs, bundle, sockets, logs
  std::string cgroup;  // the agent's --cgroup-parent, or ""
  pid_t agent = -1;
};
Host g_host;

// rmdir of a cgroup and the ones under it, deepest first (their files are
// the kernel's and go with the directory).
void remove_cgroup_tree(const std::string& dir) {
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec))
    if (e.is_directory(ec) && !e.is_symlink(ec)) remove_cgroup_tree(e.path());
  ::rmdir(dir.c_str());
}

void stop_agent() {
  if (g_host.agent <= 0) return;
  ::kill(g_host.agent, SIGTERM);
  const auto deadline = Clock::now() + std::chrono::seconds(3);
  int status = 0;
  for (;;) {
    pid_t r = ::waitpid(g_host.agent, &status, WNOHANG);
    if (r == g_host.agent || (r < 0 && errno != EINTR)) break;
    if (Clock::now() > deadline) {
      ::kill(g_host.agent, SIGKILL);
      ::waitpid(g_host.agent, &status, 0);
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  g_host.agent = -1;
}

void clean_host() {
  stop_agent();
  if (!g_host.cgroup.empty()) {
    remove_cgroup_tree(g_host.cgroup);
    if (::access(g_host.cgroup.c_str(), F_OK) == 0)
      std::printf("note: could not remove cgroup %s: %s\n", g_host.cgroup.c_str(), std::strerror(errno));
    g_host.cgroup.clear();
  }
  if (!g_host.dir.empty()) {
    std::error_code ec;
    fs::remove_all(g_host.dir, ec);
    g_host.dir.clear();
  }
}

[[noreturn]] void setup_error(const std::string& what) {
  std::fflush(stdout);
  std::fprintf(stderr, "skiff_bench_agent: %s\n", what.c_str());
  clean_host();
  std::exit(1);
}

// The rootfs both peers run: busybox-static and the directories a container's
// mounts need.
void make_rootfs(const std::string& root) {
  std::error_code ec;
  for (const char* d : {"bin", "proc", "dev", "tmp", "sys"}) {
    fs::create_directories(root + "/" + d, ec);
    if (ec) setup_error("mkdir " + root + "/" + d + ": " + ec.message());
  }
  fs::copy_file("/bin/busybox", root + "/bin/busybox", ec);
  if (ec) setup_error("copy /bin/busybox (Debian's busybox-static) into the rootfs: " + ec.message());
  for (const char* tool : {"sh", "echo", "true"}) {
    fs::create_symlink("busybox", root + "/bin/" + tool, ec);
    if (ec) setup_error(std::string("symlink bin/") + tool + ": " + ec.message());
  }
}

// ---------------------------------------------------------------------------
// Child processes

pid_t spawn(const std::vector<std::string>& args, int out_fd, int err_fd, std::string& error) {
  return spawn_process(args, out_fd, err_fd, error);
}

// Runs a command to its end, stdout and stderr into `output`; its wait status.
int run_to_end(const std::vector<std::string>& args, std::string& output) {
  const std::string log = g_host.dir + "/cmd.log";
  int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) {
    output = "open " + log + ": " + std::strerror(errno);
    return -1;
  }
  pid_t pid = spawn(args, fd, fd, output);
  ::close(fd);
  if (pid < 0) return -1;
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  output = read_all(log);
  return status;
}

std::string describe_status(int status) {
  if (status < 0) return "not run";
  if (WIFEXITED(status)) return "exit status " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return std::string("killed by ") + strsignal(WTERMSIG(status));
  return "status " + std::to_string(status);
}

// ---------------------------------------------------------------------------
// The floor: a bare Unix socket ping-pong of 8 bytes with a child process

bool write_all(int fd, const void* p, size_t n) {
  const char* c = static_cast<const char*>(p);
  while (n > 0) {
    ssize_t w = ::write(fd, c, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return false;
    c += w;
    n -= static_cast<size_t>(w);
  }
  return true;
}

bool read_all_n(int fd, void* p, size_t n) {
  char* c = static_cast<char*>(p);
  while (n > 0) {
    ssize_t r = ::read(fd, c, n);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return false;
    c += r;
    n -= static_cast<size_t>(r);
  }
  return true;
}

// The echoing peer: a forked child on the other end of a Unix socket bound in
// the temp dir; fd -1 with `error` set when it could not be set up.
struct BarePeer {
  pid_t child = -1;
  int fd = -1;
  uint64_t word = 0;
};

BarePeer open_bare_peer(std::string& error) {
  BarePeer peer;
  const std::string path = g_host.dir + "/ping.sock";
  int lfd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
  if (lfd < 0 || ::bind(lfd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || ::listen(lfd, 1) != 0) {
    error = "listen on " + path + ": " + std::strerror(errno);
    if (lfd >= 0) ::close(lfd);
    return peer;
  }
  std::fflush(stdout);
  peer.child = ::fork();
  if (peer.child < 0) {
    error = std::string("fork: ") + std::strerror(errno);
    ::close(lfd);
    return peer;
  }
  if (peer.child == 0) {
    // Nothing but system calls, then _exit.
    int c = ::accept(lfd, nullptr, nullptr);
    char buf[8];
    while (c >= 0 && read_all_n(c, buf, sizeof buf) && write_all(c, buf, sizeof buf)) {
    }
    ::_exit(0);
  }
  ::close(lfd);
  peer.fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (peer.fd < 0 || ::connect(peer.fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    error = "connect " + path + ": " + std::strerror(errno);
    if (peer.fd >= 0) ::close(peer.fd);
    peer.fd = -1;
  }
  ::unlink(path.c_str());
  return peer;
}

void close_bare_peer(BarePeer& peer) {
  if (peer.fd >= 0) ::close(peer.fd);  // EOF ends the child's loop
  peer.fd = -1;
  if (peer.child > 0) ::waitpid(peer.child, nullptr, 0);
  peer.child = -1;
}

// `n` ping-pongs; their round trips in microseconds appended to `rtts` when
// given. False (and the peer closed) when the peer stopped answering.
bool ping_pongs(BarePeer& peer, int n, std::vector<double>* rtts) {
  for (int i = 0; i < n; ++i) {
    const auto t0 = Clock::now();
    ++peer.word;
    uint64_t back = 0;
    if (!write_all(peer.fd, &peer.word, sizeof peer.word) || !read_all_n(peer.fd, &back, sizeof back) ||
        back != peer.word) {
      ::kill(peer.child, SIGKILL);
      close_bare_peer(peer);
      return false;
    }
    const auto t1 = Clock::now();
    if (rtts) rtts->push_back(us_between(t0, t1));
  }
  return true;
}

// ---------------------------------------------------------------------------
// The agent and a client of its API

// A ByteStream server that notes when the first write arrived.
struct Arrivals {
  std::optional<Clock::time_point> first;
  std::string bytes;
};

class FirstWrite final : public api::ByteStream::Server {
 public:
  explicit FirstWrite(Arrivals& into) : into_(into) {}
  kj::Promise<void> write(WriteContext ctx) override {
    if (!into_.first) into_.first = Clock::now();
    auto b = ctx.getParams().getBytes();
    into_.bytes.append(reinterpret_cast<const char*>(b.begin()), b.size());
    return kj::READY_NOW;
  }
  kj::Promise<void> end(EndContext) override { return kj::READY_NOW; }

 private:
  Arrivals& into_;
};

// KJ objects have throwing destructors: one place that owns them, dropped
// in order (the client before the event loop).
struct Rig {
  kj::Own<kj::AsyncIoContext> io;
  kj::Own<kj::AsyncIoStream> stream;
  kj::Own<capnp::TwoPartyClient> client;
  api::Sandbox::Client sandbox = nullptr;
};

void drop(std::unique_ptr<Rig>& rig) {
  if (!rig) return;
  try {
    rig->sandbox = nullptr;
    rig->client = nullptr;
    rig->stream = nullptr;
    rig.reset();
  } catch (const kj::Exception& e) {
    std::printf("note: closing the agent connection: %s\n", e.getDescription().cStr());
    (void)rig.release();  // leaked: the process ends soon
  }
}

void spawn_agent(const Options& o, const std::string& sock) {
  std::vector<std::string> args{o.agent, "--unix", sock};
  if (!g_host.cgroup.empty()) args.insert(args.end(), {"--cgroup-parent", g_host.cgroup});
  const std::string log = g_host.dir + "/agent.log";
  int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) setup_error("open " + log + ": " + std::strerror(errno));
  std::string error;
  g_host.agent = spawn(args, fd, fd, error);
  ::close(fd);
  if (g_host.agent < 0) setup_error(error);
  std::string shown;
  for (const auto& a : args) shown += (shown.empty() ? "" : " ") + a;
  std::printf("agent: %s\n", shown.c_str());
}

// Connects to the agent once its socket is there (up to 5 s).
std::unique_ptr<Rig> connect_agent(const std::string& sock) {
  auto rig = std::make_unique<Rig>();
  rig->io = kj::heap<kj::AsyncIoContext>(kj::setupAsyncIo());
  auto& ws = rig->io->waitScope;
  const auto deadline = Clock::now() + std::chrono::seconds(5);
  std::string last_error = "the socket did not appear";
  for (;;) {
    int status = 0;
    if (::waitpid(g_host.agent, &status, WNOHANG) == g_host.agent) {
      g_host.agent = -1;
      setup_error("skiff-agent ended before serving (" + describe_status(status) +
                  "): " + one_line(last_lines(read_all(g_host.dir + "/agent.log"), 3)));
    }
    if (::access(sock.c_str(), F_OK) == 0) {
      try {
        rig->stream = rig->io->provider->getNetwork().parseAddress("unix:" + sock).wait(ws)->connect().wait(ws);
        break;
      } catch (const kj::Exception& e) {
        last_error = e.getDescription().cStr();
      }
    }
    if (Clock::now() > deadline) setup_error("no skiff-agent on " + sock + " within 5 s: " + last_error);
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  rig->client = kj::heap<capnp::TwoPartyClient>(*rig->stream);
  rig->sandbox = rig->client->bootstrap().castAs<api::Sandbox>();
  return rig;
}

// ---------------------------------------------------------------------------
// 1. Sandbox.version() round trips, in blocks alternating with blocks of bare
// ping-pongs so that both see the host in the same state

constexpr int kBlock = 100;

struct RoundTrips {
  std::vector<double> version, bare;
  std::string version_text, error, bare_error;
};

void version_calls(Rig& rig, int n, std::vector<double>* rtts, RoundTrips& r) {
  auto& ws = rig.io->waitScope;
  for (int i = 0; i < n; ++i) {
    const auto t0 = Clock::now();
    auto reply = rig.sandbox.versionRequest().send().wait(ws);
    const auto t1 = Clock::now();
    if (rtts) rtts->push_back(us_between(t0, t1));
    if (r.version_text.empty())
      r.version_text = std::string(reply.getAgentVersion().cStr()) + ", API " + std::to_string(reply.getApiVersion());
  }
}

RoundTrips round_trips(Rig& rig, BarePeer& peer, const Options& o) {
  RoundTrips r;
  r.version.reserve(static_cast<size_t>(o.calls));
  r.bare.reserve(static_cast<size_t>(o.calls));
  bool bare_ok = peer.fd >= 0;
  try {
    version_calls(rig, o.call_warmup, nullptr, r);
    if (bare_ok && !ping_pongs(peer, o.call_warmup, nullptr)) bare_ok = false;
    for (int done = 0; done < o.calls; done += kBlock) {
      const int n = std::min(kBlock, o.calls - done);
      version_calls(rig, n, &r.version, r);
      if (bare_ok && !ping_pongs(peer, n, &r.bare)) bare_ok = false;
    }
  } catch (const kj::Exception& e) {
    r.error = e.getDescription().cStr();
    r.version.clear();
  }
  if (!bare_ok) {
    if (r.bare_error.empty()) r.bare_error = "the ping-pong peer stopped answering";
    r.bare.clear();
  }
  return r;
}

// ---------------------------------------------------------------------------
// 2. One container: create -> first output -> exit

struct Sample {
  double first_ms = 0, exit_ms = 0, removed_ms = 0;
};

std::optional<Sample> agent_container(Rig& rig, const std::string& root, const std::string& id, std::string& error) {
  auto& ws = rig.io->waitScope;
  Arrivals out;
  std::string err;
  auto req = rig.sandbox.createContainerRequest();
  req.setId(id);
  auto spec = req.initSpec();
  skiff::agent::testing::shell_spec(spec, root, kScript, {"pid", "mount", "ipc", "uts"});  // kNamespaces
  auto stdio = req.initStdio();
  stdio.setStdout(kj::heap<FirstWrite>(out));
  stdio.setStderr(kj::heap<skiff::agent::testing::Collector>(err));
  stdio.setStdin(false);

  Sample s;
  bool created = false;
  api::Container::Client c = nullptr;
  try {
    const auto t0 = Clock::now();
    c = req.send().getContainer();
    // start and wait go out before create's answer is back.
    auto started = c.startRequest().send();
    auto waited = c.waitRequest().send();
    started.wait(ws);
    created = true;
    auto st_response = waited.wait(ws);
    const auto t_exit = Clock::now();
    const auto status = st_response.getStatus();
    const int code = status.getCode();
    c.removeRequest().send().wait(ws);
    created = false;
    const auto t_removed = Clock::now();
    if (code != 0) {
      error = "the container ended with status " + std::to_string(code) + " (stderr: " + one_line(err) + ")";
      return std::nullopt;
    }
    if (!out.first || out.bytes != kExpected) {
      error = "the container wrote '" + one_line(out.bytes) + "', not '" + one_line(kExpected) + "' (stderr: " + one_line(err) + ")";
      return std::nullopt;
    }
    s.first_ms = ms_between(t0, *out.first);
    s.exit_ms = ms_between(t0, t_exit);
    s.removed_ms = ms_between(t0, t_removed);
    return s;
  } catch (const kj::Exception& e) {
    error = e.getDescription().cStr();
    const std::string remote = "remote exception: ";
    if (error.starts_with(remote)) error = error.substr(remote.size());
  }
  if (created) {
    try {
      c.removeRequest().send().wait(ws);
    } catch (const kj::Exception&) {
    }
  }
  return std::nullopt;
}

// runc: `runc spec`, then the edits that make it the agent's container.
struct Runc {
  std::string path, version, state, bundle;
  std::vector<std::string> dropped;  // namespaces of runc's default spec left out
};

std::optional<Runc> prepare_runc(const Options& o, const std::string& root, std::string& skip) {
  Runc r;
  if (!o.runc.empty()) {
    r.path = o.runc;
  } else if (auto p = find_on_path("runc")) {
    r.path = *p;
  } else {
    std::printf("runc not found: apt-get install -y runc\n");
    std::fflush(stdout);
    int rc = std::system("DEBIAN_FRONTEND=noninteractive apt-get install -y runc >/dev/null 2>&1");
    auto installed = find_on_path("runc");
    if (!installed) {
      skip = "runc is not installed and `apt-get install -y runc` failed (" + describe_status(rc) + ")";
      return std::nullopt;
    }
    r.path = *installed;
  }
  std::string out;
  int st = run_to_end({r.path, "--version"}, out);
  if (st != 0) {
    skip = r.path + " --version: " + describe_status(st) + ": " + one_line(out);
    return std::nullopt;
  }
  r.version = one_line(out.substr(0, out.find('\n')));
  r.state = g_host.dir + "/runc-state";
  r.bundle = g_host.dir + "/bundle";
  std::error_code ec;
  fs::create_directories(r.state, ec);
  fs::create_directories(r.bundle, ec);
  st = run_to_end({r.path, "spec", "--bundle", r.bundle}, out);
  if (st != 0) {
    skip = "runc spec: " + describe_status(st) + ": " + one_line(out);
    return std::nullopt;
  }
  const std::string config = r.bundle + "/config.json";
  try {
    nlohmann::json j = nlohmann::json::parse(read_all(config));
    j["process"]["args"] = {"sh", "-c", kScript};
    j["process"]["terminal"] = false;
    j["root"]["path"] = root;
    j["root"]["readonly"] = false;
    nlohmann::json ns = nlohmann::json::array();
    for (const auto& n : j["linux"]["namespaces"]) {
      const std::string type = n.value("type", "");
      if (std::find(kNamespaces.begin(), kNamespaces.end(), type) == kNamespaces.end()) r.dropped.push_back(type);
    }
    for (const auto& type : kNamespaces) ns.push_back({{"type", type}});
    j["linux"]["namespaces"] = ns;
    std::ofstream(config) << j.dump(2) << "\n";
  } catch (const std::exception& e) {
    skip = "editing " + config + ": " + e.what();
    return std::nullopt;
  }
  return r;
}

std::optional<Sample> runc_container(const Runc& r, const std::string& id, std::string& error) {
  int p[2];
  if (::pipe2(p, O_CLOEXEC) != 0) {
    error = std::string("pipe: ") + std::strerror(errno);
    return std::nullopt;
  }
  const std::string err_path = g_host.dir + "/runc.err";
  int err_fd = ::open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (err_fd < 0) {
    error = "open " + err_path + ": " + std::strerror(errno);
    ::close(p[0]);
    ::close(p[1]);
    return std::nullopt;
  }
  const std::vector<std::string> args{r.path, "--root", r.state, "run", "--bundle", r.bundle, id};
  const auto t0 = Clock::now();
  pid_t pid = spawn(args, p[1], err_fd, error);
  ::close(p[1]);
  ::close(err_fd);
  if (pid < 0) {
    ::close(p[0]);
    return std::nullopt;
  }
  std::optional<Clock::time_point> first;
  std::string bytes;
  bool timed_out = false;
  const auto deadline = t0 + std::chrono::seconds(20);
  for (;;) {
    const int left = static_cast<int>(std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count());
    pollfd pfd{p[0], POLLIN, 0};
    int n = left > 0 ? ::poll(&pfd, 1, left) : 0;
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      timed_out = true;
      break;
    }
    char buf[256];
    ssize_t got = ::read(p[0], buf, sizeof buf);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) break;  // EOF: runc and the container have closed their stdout
    if (!first) first = Clock::now();
    bytes.append(buf, static_cast<size_t>(got));
  }
  ::close(p[0]);
  if (timed_out) ::kill(pid, SIGKILL);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  const auto t_exit = Clock::now();
  if (timed_out || status != 0 || !first || bytes != kExpected) {
    std::string out;
    run_to_end({r.path, "--root", r.state, "delete", "--force", id}, out);
    error = std::string(timed_out ? "no end within 20 s, " : "") + "runc run " + describe_status(status) + ", stdout '" +
            one_line(bytes) + "', stderr: " + one_line(last_lines(read_all(err_path), 2));
    return std::nullopt;
  }
  Sample s;
  s.first_ms = ms_between(t0, *first);
  s.exit_ms = ms_between(t0, t_exit);
  s.removed_ms = s.exit_ms;
  return s;
}

// ---------------------------------------------------------------------------

std::string fmt(const char* f, double a, double b) {
  char buf[128];
  std::snprintf(buf, sizeof buf, f, a, b);
  return buf;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  if (!parse_options(argc, argv, o)) return 2;
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  if (::geteuid() != 0) {
    std::printf("skiff_bench_agent: skipped: needs root (containers need namespaces, mounts and cgroups)\n");
    return 0;
  }
  ::signal(SIGPIPE, SIG_IGN);
  if (::access(o.agent.c_str(), X_OK) != 0)
    setup_error("no skiff-agent at " + o.agent + " (build it: ninja skiff-agent)");
  if (::access("/bin/busybox", R_OK) != 0) setup_error("no /bin/busybox (apt-get install busybox-static)");

  std::printf("skiff_bench_agent: the guest agent run on this host beside runc\n");
  std::printf("host: %s", host_summary().c_str());
  if (int cpus = usable_cpus(); cpus > 0) std::printf(", %d usable", cpus);
  std::printf("\n");
  print_load_average("figures");

  char tmpl[] = "/tmp/skiff-bench-agent-XXXXXX";
  if (!::mkdtemp(tmpl)) setup_error(std::string("mkdtemp: ") + std::strerror(errno));
  g_host.dir = tmpl;
  const std::string root = g_host.dir + "/rootfs";
  make_rootfs(root);

  // The agent's cgroup parent: a fresh directory under the host's cgroup2 mount.
  std::string cgroup_note;
  const std::string mount = o.no_cgroup ? "" : skiff::agent::testing::cgroup2_mount();
  if (o.no_cgroup) {
    cgroup_note = "none (--no-cgroup)";
  } else if (mount.empty()) {
    cgroup_note = "none: no cgroup2 mount in /proc/self/mounts, the agent runs without --cgroup-parent";
  } else {
    const std::string dir = mount + "/skiff-bench-" + std::to_string(::getpid());
    if (::mkdir(dir.c_str(), 0755) == 0) {
      g_host.cgroup = dir;
      cgroup_note = dir + " (controllers there: " + one_line(read_all(dir + "/cgroup.controllers")) + ")";
      if (cgroup_note.ends_with("there: )")) cgroup_note.replace(cgroup_note.size() - 8, 8, "there: none)");
    } else {
      cgroup_note = "none: mkdir " + dir + ": " + std::strerror(errno) + ", the agent runs without --cgroup-parent";
    }
  }
  std::printf("agent cgroup parent: %s\n", cgroup_note.c_str());

  // 1. round trips. The bare ping-pong's peer is forked first, before any KJ state.
  std::string bare_error;
  BarePeer peer = open_bare_peer(bare_error);

  const std::string sock = g_host.dir + "/agent.sock";
  spawn_agent(o, sock);
  std::unique_ptr<Rig> rig = connect_agent(sock);

  RoundTrips trips = round_trips(*rig, peer, o);
  close_bare_peer(peer);
  if (trips.version.empty()) {
    drop(rig);
    setup_error("Sandbox.version() failed: " + trips.error);
  }
  if (bare_error.empty()) bare_error = trips.bare_error;
  const std::vector<double>& rtts = trips.version;
  const std::vector<double>& bare = trips.bare;
  std::printf("agent version: %s\n", trips.version_text.c_str());

  // 2. containers, the peers interleaved run by run so that drift on the host
  // falls on both alike.
  std::string runc_skip;
  std::optional<Runc> runc = prepare_runc(o, root, runc_skip);
  if (runc) {
    std::string dropped;
    for (const auto& d : runc->dropped) dropped += (dropped.empty() ? "" : ", ") + d;
    std::printf("runc: %s (%s); `runc spec` edited: args sh -c '%s', terminal false, root %s read-write,\n"
                "      namespaces pid, mount, ipc, uts (dropped from runc's default: %s, to match the agent's spec)\n",
                runc->path.c_str(), runc->version.c_str(), kScript, root.c_str(), dropped.empty() ? "none" : dropped.c_str());
  }
  std::printf("containers: busybox-static sh -c '%s' on %s, namespaces pid, mount, ipc, uts; %d runs after %d warm-ups\n",
              kScript, root.c_str(), o.runs, o.run_warmup);

  std::vector<double> a_first, a_exit, a_removed, r_first, r_exit;
  std::string agent_error, runc_error;
  const std::string tag = std::to_string(::getpid());
  for (int i = 0; i < o.run_warmup + o.runs; ++i) {
    const bool measured = i >= o.run_warmup;
    if (agent_error.empty()) {
      std::string e;
      if (auto s = agent_container(*rig, root, "bench-" + tag + "-" + std::to_string(i), e)) {
        if (measured) {
          a_first.push_back(s->first_ms);
          a_exit.push_back(s->exit_ms);
          a_removed.push_back(s->removed_ms);
        }
      } else {
        agent_error = "run " + std::to_string(i) + ": " + e;
      }
    }
    if (runc && runc_error.empty()) {
      std::string e;
      if (auto s = runc_container(*runc, "skiff-bench-" + tag + "-" + std::to_string(i), e)) {
        if (measured) {
          r_first.push_back(s->first_ms);
          r_exit.push_back(s->exit_ms);
        }
      } else {
        runc_error = "run " + std::to_string(i) + ": " + e;
      }
    }
  }
  drop(rig);
  const std::string agent_log_tail = one_line(last_lines(read_all(g_host.dir + "/agent.log"), 2));
  clean_host();

  // The table.
  std::printf("\n");
  const Summary v = summarize(rtts);
  std::string bare_text = "bare unix ping-pong: could not run: " + bare_error;
  if (!bare.empty()) {
    const Summary b = summarize(bare);
    char buf[160];
    std::snprintf(buf, sizeof buf, "bare unix ping-pong: median %.1f us, p90 %.1f us  (ratio %.1fx)", b.median, b.p90,
                  v.median / b.median);
    bare_text = buf;
  }
  std::printf("agent round trip (version): median %.1f us, p90 %.1f us  | %s\n", v.median, v.p90, bare_text.c_str());

  const bool agent_ok = agent_error.empty() && !a_first.empty();
  const bool runc_ok = runc && runc_error.empty() && !r_first.empty();
  const std::string runc_column = !runc ? "runc skipped: " + runc_skip : "runc could not run: " + runc_error;
  auto row = [&](const char* name, const std::vector<double>& a, const std::vector<double>& r) {
    std::string left = agent_ok ? fmt("skiff-agent median %.2f ms p90 %.2f ms", summarize(a).median, summarize(a).p90)
                                : "skiff-agent could not run: " + agent_error;
    std::string right = runc_ok ? fmt("runc median %.2f ms p90 %.2f ms", summarize(r).median, summarize(r).p90) : runc_column;
    std::string ratio;
    if (agent_ok && runc_ok) {
      char buf[64];
      std::snprintf(buf, sizeof buf, " | ratio %.2fx", summarize(a).median / summarize(r).median);
      ratio = buf;
    }
    std::printf("%s: %s | %s%s\n", name, left.c_str(), right.c_str(), ratio.c_str());
  };
  row("create->first output", a_first, r_first);
  row("create->exit", a_exit, r_exit);
  if (agent_ok) {
    const Summary s = summarize(a_removed);
    std::printf("create->exit+remove: skiff-agent median %.2f ms p90 %.2f ms (Container.wait then Container.remove;"
                " runc run deletes its container before it exits)\n",
                s.median, s.p90);
  }
  std::printf("\nnotes: N = %zu version calls after %d warm-up calls, the bare ping-pong the same, with a forked child,\n"
              "       in alternating blocks of %d; %zu containers per peer after %d warm-ups, agent and runc runs\n"
              "       interleaved; p90 is nearest-rank.\n"
              "       ratios are skiff-agent / peer. runc hands its stdout pipe to the container; the agent's output\n"
              "       comes back as ByteStream.write calls over the same Unix socket as the API.\n"
              "       the agent's spec mounts /proc only; runc's default spec also mounts /dev, /dev/pts, /dev/shm,\n"
              "       /dev/mqueue, /sys and /sys/fs/cgroup, masks paths, and sets capabilities, rlimits and a device cgroup.\n",
              rtts.size(), o.call_warmup, kBlock, a_first.size(), o.run_warmup);
  if (!agent_ok && !agent_log_tail.empty()) std::printf("agent log: %s\n", agent_log_tail.c_str());
  return 0;
}
