// skiff_bench_startup: how fast Skiff gets a guest to its first instruction,
// and how much memory the VMM itself costs, next to QEMU's microvm.
//
// Figures (budgets from docs/DESIGN.md section 7; PASS/MISS is information only,
// the benchmark never fails on a figure):
//   1. in-process set-up: skiff::Machine constructor -> the guest's first port write
//      seen by a bus device (budget <= 3 ms);
//   2. process: spawn -> exit of `skiff boot` with a guest whose first write is
//      an i8042 reset, and of QEMU microvm with a guest whose first write hits
//      isa-debug-exit; also spawn -> the guest's first serial byte on the
//      VMM's stdout (no teardown in it); the ratios QEMU / Skiff;
//   3. VMM memory overhead: Rss of the process minus Rss of its guest RAM
//      mapping, with a guest that halts after its first write (budget <= 3 MiB).
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "bench/bench_support.h"
#include "devices/bus.h"
#include "vmm/machine.h"
#include "vmm/vm_config.h"
#include "vmm/vm_exit.h"

extern char** environ;

namespace {

using namespace skiff::bench;

constexpr uint16_t kProbePort = 0xf4;      // first_out.elf writes here first
constexpr double kSetupBudgetMs = 3.0;      // docs/DESIGN.md 7: create call -> first vCPU entry
constexpr double kMemoryBudgetMib = 3.0;    // docs/DESIGN.md 7: VMM memory overhead per sandbox
constexpr int kQemuDebugExitStatus = 3;     // isa-debug-exit: (value << 1) | 1, value 1
constexpr int kSkiffResetStatus = 3;        // skiff boot: guest reset

double ms_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}

struct Stats {
  double median = 0, min = 0, max = 0;
  size_t n = 0;
};

Stats stats(std::vector<double> v) {
  Stats s;
  if (v.empty()) return s;
  std::sort(v.begin(), v.end());
  s.n = v.size();
  s.min = v.front();
  s.max = v.back();
  s.median = median(v);
  return s;
}

const char* verdict(bool pass) { return pass ? "PASS" : "MISS"; }

// ---------------------------------------------------------------------------
// Options

struct Options {
  int runs = 20;
  uint64_t memory_mib = 128;
  std::string skiff = SKIFF_BINARY;
  std::string first_out = SKIFF_BENCH_FIRST_OUT;
  std::string first_reset = SKIFF_BENCH_FIRST_RESET;
  std::string first_serial = SKIFF_BENCH_FIRST_SERIAL;
  std::string qemu;  // empty: look for qemu-system-x86_64 on PATH
  int settle_ms = 500;
};

void usage(const char* argv0) {
  std::printf(
      "usage: %s [--runs N] [--memory MiB] [--skiff PATH] [--first-out ELF] [--first-reset ELF]\n"
      "          [--first-serial ELF] [--qemu PATH] [--settle-ms MS]\n"
      "  --runs N          measured runs per figure (default 20; one extra warm-up run is discarded)\n"
      "  --memory MiB      guest memory (default 128)\n"
      "  --skiff PATH      the skiff binary (default %s)\n"
      "  --first-out ELF   guest writing port 0xf4 first (default %s)\n"
      "  --first-reset ELF guest writing 0xfe to port 0x64 first (default %s)\n"
      "  --first-serial ELF guest writing a byte to COM1 first (default %s)\n"
      "  --qemu PATH       qemu-system-x86_64 (default: from PATH)\n"
      "  --settle-ms MS    wait before reading /proc/PID/smaps (default 500)\n",
      argv0, SKIFF_BINARY, SKIFF_BENCH_FIRST_OUT, SKIFF_BENCH_FIRST_RESET, SKIFF_BENCH_FIRST_SERIAL);
}

bool parse_options(int argc, char** argv, Options& o) {
  Args args(argc, argv);
  while (args.next()) {
    const std::string& a = args.flag();
    if (a == "--runs") o.runs = static_cast<int>(args.number(1));
    else if (a == "--memory") o.memory_mib = static_cast<uint64_t>(args.number(4));
    else if (a == "--skiff") o.skiff = args.value();
    else if (a == "--first-out") o.first_out = args.value();
    else if (a == "--first-reset") o.first_reset = args.value();
    else if (a == "--first-serial") o.first_serial = args.value();
    else if (a == "--qemu") o.qemu = args.value();
    else if (a == "--settle-ms") o.settle_ms = static_cast<int>(args.number(0));
    else return args.help_or_unknown(usage);
  }
  return true;
}

std::optional<std::string> find_on_path(const std::string& name) {
  const char* path = std::getenv("PATH");
  std::stringstream ss(path ? path : "/usr/local/bin:/usr/bin:/bin");
  std::string dir;
  while (std::getline(ss, dir, ':')) {
    if (dir.empty()) continue;
    std::string p = dir + "/" + name;
    if (::access(p.c_str(), X_OK) == 0) return p;
  }
  return std::nullopt;
}

bool is_file(const std::string& p) {
  struct stat st {};
  return ::stat(p.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

// ---------------------------------------------------------------------------
// Child processes

struct Child {
  pid_t pid = -1;
  int pidfd = -1;
  int out_fd = -1;  // memfd holding the child's stdout and stderr
};

// Spawns argv with stdin from /dev/null and stdout+stderr into a memfd, or
// stdout into `stdout_fd` when that is given.
std::optional<Child> spawn(const std::vector<std::string>& args, std::string& error, int stdout_fd = -1) {
  Child c;
  c.out_fd = ::memfd_create("skiff-bench-child-output", MFD_CLOEXEC);
  if (c.out_fd < 0) {
    error = std::string("memfd_create: ") + std::strerror(errno);
    return std::nullopt;
  }
  c.pid = spawn_process(args, stdout_fd >= 0 ? stdout_fd : c.out_fd, c.out_fd, error);
  if (c.pid < 0) {
    ::close(c.out_fd);
    return std::nullopt;
  }
  c.pidfd = static_cast<int>(::syscall(SYS_pidfd_open, c.pid, 0));
  return c;
}

std::string child_output(const Child& c) {
  std::string s;
  char buf[4096];
  off_t off = 0;
  for (;;) {
    ssize_t n = ::pread(c.out_fd, buf, sizeof buf, off);
    if (n <= 0) break;
    s.append(buf, static_cast<size_t>(n));
    off += n;
  }
  return s;
}

// Waits for the child to exit; kills it after `timeout`. Returns the wait
// status, or nullopt if it had to be killed.
std::optional<int> wait_child(Child& c, std::chrono::milliseconds timeout) {
  bool exited = true;
  if (c.pidfd >= 0) {
    pollfd p{c.pidfd, POLLIN, 0};
    int r;
    do r = ::poll(&p, 1, static_cast<int>(timeout.count()));
    while (r < 0 && errno == EINTR);
    exited = r > 0;
  }
  if (!exited) ::kill(c.pid, SIGKILL);
  int status = 0;
  while (::waitpid(c.pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (c.pidfd >= 0) ::close(c.pidfd);
  c.pidfd = -1;
  if (!exited) return std::nullopt;
  return status;
}

void close_child(Child& c) {
  if (c.out_fd >= 0) ::close(c.out_fd);
  c.out_fd = -1;
}

std::string describe_status(std::optional<int> status) {
  if (!status) return "timed out (killed)";
  if (WIFEXITED(*status)) return "exit status " + std::to_string(WEXITSTATUS(*status));
  if (WIFSIGNALED(*status)) return std::string("killed by ") + strsignal(WTERMSIG(*status));
  return "wait status " + std::to_string(*status);
}

std::string first_lines(const std::string& s, size_t max_lines = 3) {
  std::string out;
  std::stringstream ss(s);
  std::string line;
  size_t n = 0;
  while (n < max_lines && std::getline(ss, line)) {
    if (line.empty()) continue;
    out += (n ? " | " : "") + line;
    ++n;
  }
  return out.empty() ? "(no output)" : out;
}

struct ProcessRun {
  std::optional<int> status;
  double ms = 0;
  std::string output;
  std::string error;  // could not spawn
};

// Spawn -> exit wall time.
ProcessRun time_process(const std::vector<std::string>& args, std::chrono::milliseconds timeout) {
  ProcessRun r;
  auto t0 = Clock::now();
  auto c = spawn(args, r.error);
  if (!c) return r;
  r.status = wait_child(*c, timeout);
  r.ms = ms_between(t0, Clock::now());
  r.output = child_output(*c);
  close_child(*c);
  return r;
}

// Spawn -> first byte on the child's stdout (the guest's first serial
// output), and spawn -> exit.
ProcessRun time_first_byte(const std::vector<std::string>& args, std::chrono::milliseconds timeout,
                           double& first_byte_ms) {
  ProcessRun r;
  first_byte_ms = -1;
  int pipefd[2];
  if (::pipe2(pipefd, O_CLOEXEC) < 0) {
    r.error = std::string("pipe: ") + std::strerror(errno);
    return r;
  }
  auto t0 = Clock::now();
  auto c = spawn(args, r.error, pipefd[1]);
  ::close(pipefd[1]);
  if (!c) {
    ::close(pipefd[0]);
    return r;
  }
  pollfd p{pipefd[0], POLLIN, 0};
  int n;
  do n = ::poll(&p, 1, static_cast<int>(timeout.count()));
  while (n < 0 && errno == EINTR);
  char byte;
  if (n > 0 && ::read(pipefd[0], &byte, 1) == 1) first_byte_ms = ms_between(t0, Clock::now());
  r.status = wait_child(*c, timeout);
  r.ms = ms_between(t0, Clock::now());
  ::close(pipefd[0]);
  r.output = child_output(*c);
  close_child(*c);
  return r;
}

bool exited_with(const ProcessRun& r, int code) {
  return r.error.empty() && r.status && WIFEXITED(*r.status) && WEXITSTATUS(*r.status) == code;
}

std::string describe_run(const ProcessRun& r) {
  if (!r.error.empty()) return r.error;
  return describe_status(r.status) + ": " + first_lines(r.output);
}

// ---------------------------------------------------------------------------
// 1. In-process set-up

// Timestamps the first write to its port and then ends the VM.
class FirstWriteProbe : public skiff::devices::BusDevice {
 public:
  explicit FirstWriteProbe(std::function<void()> on_first) : on_first_(std::move(on_first)) {}
  void read(uint64_t, std::span<uint8_t> data) override { std::fill(data.begin(), data.end(), 0xff); }
  void write(uint64_t, std::span<const uint8_t>) override {
    const auto now = Clock::now().time_since_epoch().count();
    bool expected = false;
    if (!fired_.compare_exchange_strong(expected, true)) return;
    when_.store(now);
    on_first_();
  }
  std::optional<Clock::time_point> when() const {
    if (!fired_.load()) return std::nullopt;
    return Clock::time_point(Clock::duration(when_.load()));
  }

 private:
  std::function<void()> on_first_;
  std::atomic<bool> fired_{false};
  std::atomic<Clock::rep> when_{0};
};

struct InProcessSample {
  double construct_ms = 0, start_to_first_ms = 0, total_ms = 0, teardown_ms = 0;
};

std::optional<InProcessSample> in_process_once(const Options& o, std::string& error) {
  skiff::VmConfig cfg;
  cfg.kernel_path = o.first_out;
  cfg.memory_mib = o.memory_mib;
  cfg.vcpus = 1;
  cfg.console.mode = skiff::ConsoleMode::None;

  InProcessSample s;
  std::optional<Clock::time_point> first;
  Clock::time_point t_exit;
  auto t0 = Clock::now();
  try {
    skiff::Machine vm(cfg);
    auto t1 = Clock::now();
    auto probe = std::make_shared<FirstWriteProbe>(
        [&vm] { vm.stop({skiff::VmExitKind::Stopped, "bench: first port write"}); });
    vm.pio_bus().insert(probe, kProbePort, 1);
    auto t2 = Clock::now();
    vm.start();
    auto exit = vm.wait_for(std::chrono::seconds(10));
    if (!exit) {
      vm.stop();
      vm.wait();
      error = "the guest did not write port 0xf4 within 10 s";
      return std::nullopt;
    }
    first = probe->when();
    if (!first) {
      error = "VM ended before the first port write: " + skiff::to_string(exit->kind) + ": " + exit->detail;
      return std::nullopt;
    }
    t_exit = Clock::now();
    s.construct_ms = ms_between(t0, t1);
    s.start_to_first_ms = ms_between(t2, *first);
    s.total_ms = ms_between(t0, *first);
  } catch (const std::exception& e) {
    error = e.what();
    return std::nullopt;
  }
  s.teardown_ms = ms_between(t_exit, Clock::now());
  return s;
}

bool bench_in_process(const Options& o) {
  std::printf("\n1. Skiff in-process set-up: skiff::Machine constructor -> guest's first port write (0xf4)\n");
  std::printf("   %s, %llu MiB, 1 vCPU; %d runs after 1 discarded warm-up\n", o.first_out.c_str(),
              static_cast<unsigned long long>(o.memory_mib), o.runs);
  std::vector<double> construct, start, total, teardown;
  for (int i = 0; i <= o.runs; ++i) {
    std::string error;
    auto s = in_process_once(o, error);
    if (!s) {
      std::printf("   could not run: %s\n", error.c_str());
      return false;
    }
    if (i == 0) continue;  // warm-up: page cache, first-touch of the allocator
    construct.push_back(s->construct_ms);
    start.push_back(s->start_to_first_ms);
    total.push_back(s->total_ms);
    teardown.push_back(s->teardown_ms);
  }
  auto row = [](const char* name, const Stats& s, const std::string& note) {
    std::printf("   %-34s %9.3f ms %9.3f ms %9.3f ms  %s\n", name, s.median, s.min, s.max, note.c_str());
  };
  std::printf("   %-34s %12s %12s %12s\n", "", "median", "min", "max");
  auto t = stats(total);
  row("construct (Machine ctor: all set-up)", stats(construct), "");
  row("start() -> first port write", stats(start), "");
  row("total set-up", t,
      std::string("budget <= ") + std::to_string(static_cast<int>(kSetupBudgetMs)) + " ms: " +
          verdict(t.median <= kSetupBudgetMs) + " (median)");
  row("teardown (stop, join, ~Machine)", stats(teardown), "(information)");
  return true;
}

// ---------------------------------------------------------------------------
// 2. Process spawn -> exit

struct QemuConfig {
  std::string label;
  std::vector<std::string> args;  // without the isa-debug-exit device and -kernel
};

// `serial`: give the guest a COM1 on QEMU's stdout and boot first_serial.elf.
std::vector<std::string> qemu_args(const Options& o, const std::string& qemu, const QemuConfig& qc, bool debug_exit,
                                   bool serial = false) {
  std::vector<std::string> a{qemu};
  for (auto arg : qc.args) {
    if (serial) {
      auto at = arg.find("isa-serial=off");
      if (at != std::string::npos) arg.replace(at, std::strlen("isa-serial=off"), "isa-serial=on");
    }
    a.push_back(arg);
  }
  a.insert(a.end(), {"-m", std::to_string(o.memory_mib), "-nodefaults", "-no-user-config", "-nographic", "-display",
                     "none"});
  if (serial) a.insert(a.end(), {"-serial", "stdio"});
  if (debug_exit) a.insert(a.end(), {"-device", "isa-debug-exit,iobase=0xf4,iosize=1"});
  a.insert(a.end(), {"-kernel", serial ? o.first_serial : o.first_out});
  return a;
}

std::vector<QemuConfig> qemu_candidates() {
  const std::string microvm = "microvm,x-option-roms=off,rtc=off,pit=off,pic=off,isa-serial=off";
  return {
      {"microvm, KVM, -cpu host", {"-M", microvm, "-accel", "kvm", "-cpu", "host"}},
      // PVM rejects QEMU's write of IA32_ARCH_CAPABILITIES (MSR 0x10a).
      {"microvm, KVM, -cpu host,-arch-capabilities",
       {"-M", microvm, "-accel", "kvm", "-cpu", "host,-arch-capabilities"}},
      {"FALLBACK -M pc (not microvm), KVM, -cpu host,-arch-capabilities",
       {"-M", "pc", "-accel", "kvm", "-cpu", "host,-arch-capabilities"}},
      {"microvm, TCG (software emulation, NOT KVM)", {"-M", microvm, "-accel", "tcg", "-cpu", "max"}},
      {"FALLBACK -M pc, TCG (software emulation, NOT KVM)", {"-M", "pc", "-accel", "tcg", "-cpu", "max"}},
  };
}

struct QemuChoice {
  std::string path;
  QemuConfig config;
};

// The first QEMU configuration that boots first_out.elf to isa-debug-exit.
std::optional<QemuChoice> choose_qemu(const Options& o) {
  std::string path = o.qemu;
  if (path.empty()) {
    auto p = find_on_path("qemu-system-x86_64");
    if (!p) {
      std::printf("   qemu-system-x86_64 not found: peer skipped\n");
      return std::nullopt;
    }
    path = *p;
  } else if (::access(path.c_str(), X_OK) != 0) {
    std::printf("   %s not found: peer skipped\n", path.c_str());
    return std::nullopt;
  }
  auto version = time_process({path, "-version"}, std::chrono::seconds(10));
  std::printf("   qemu: %s (%s)\n", path.c_str(), first_lines(version.output, 1).c_str());
  for (const auto& qc : qemu_candidates()) {
    auto r = time_process(qemu_args(o, path, qc, true), std::chrono::seconds(20));
    if (exited_with(r, kQemuDebugExitStatus)) {
      std::printf("   qemu configuration: %s\n", qc.label.c_str());
      return QemuChoice{path, qc};
    }
    std::printf("   qemu configuration failed: %s: %s\n", qc.label.c_str(), describe_run(r).c_str());
  }
  std::printf("   no QEMU configuration reached isa-debug-exit: peer skipped\n");
  return std::nullopt;
}

std::optional<Stats> time_runs(const char* what, const std::vector<std::string>& args, int expected_status,
                               int runs) {
  std::vector<double> ms;
  for (int i = 0; i <= runs; ++i) {
    auto r = time_process(args, std::chrono::seconds(20));
    if (!exited_with(r, expected_status)) {
      std::printf("   %s: expected exit status %d, got %s\n", what, expected_status, describe_run(r).c_str());
      return std::nullopt;
    }
    if (i > 0) ms.push_back(r.ms);
  }
  return stats(ms);
}

// Spawn -> first console byte and spawn -> exit over `runs` runs.
std::optional<std::pair<Stats, Stats>> time_first_byte_runs(const char* what, const std::vector<std::string>& args,
                                                            int expected_status, int runs) {
  std::vector<double> first, exit;
  for (int i = 0; i <= runs; ++i) {
    double first_ms = -1;
    auto r = time_first_byte(args, std::chrono::seconds(20), first_ms);
    if (!exited_with(r, expected_status) || first_ms < 0) {
      std::printf("   %s: expected a console byte and exit status %d, got %s%s\n", what, expected_status,
                  first_ms < 0 ? "no byte, " : "", describe_run(r).c_str());
      return std::nullopt;
    }
    if (i > 0) {
      first.push_back(first_ms);
      exit.push_back(r.ms);
    }
  }
  return std::make_pair(stats(first), stats(exit));
}

std::string join(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& a : v) s += (s.empty() ? "" : " ") + a;
  return s;
}

struct ProcessFigures {
  std::optional<Stats> skiff, qemu;
  std::optional<std::pair<Stats, Stats>> skiff_serial, qemu_serial;
};

ProcessFigures bench_processes(const Options& o, const std::optional<QemuChoice>& qemu) {
  std::printf("\n2. Process: spawn -> exit, the guest's first instruction ends the VMM (%d runs after 1 warm-up)\n",
              o.runs);
  ProcessFigures f;
  const std::vector<std::string> skiff_args{o.skiff,  "boot",   "--kernel", o.first_reset, "--memory",
                                            std::to_string(o.memory_mib), "--console", "none",        "-q"};
  std::printf("   skiff: %s   (guest: i8042 reset, exit status 3)\n", join(skiff_args).c_str());
  f.skiff = time_runs("skiff boot", skiff_args, kSkiffResetStatus, o.runs);
  // What spawning any process costs on this host, for scale.
  std::optional<Stats> floor;
  if (auto t = find_on_path("true")) floor = time_runs("true", {*t}, 0, o.runs);
  std::vector<std::string> qargs;
  if (qemu) {
    qargs = qemu_args(o, qemu->path, qemu->config, true);
    std::printf("   qemu:  %s   (guest: isa-debug-exit, exit status 3)\n", join(qargs).c_str());
    f.qemu = time_runs("qemu", qargs, kQemuDebugExitStatus, o.runs);
  }
  std::printf("   %-34s %12s %12s %12s\n", "", "median", "min", "max");
  auto row = [](const std::string& name, const Stats& s) {
    std::printf("   %-34s %9.3f ms %9.3f ms %9.3f ms\n", name.c_str(), s.median, s.min, s.max);
  };
  if (floor) row("(floor: spawn -> exit of true)", *floor);
  if (f.skiff) row("skiff boot (process)", *f.skiff);
  if (f.qemu) {
    const bool tcg = qemu->config.label.find("TCG") != std::string::npos;
    row(std::string("qemu-system-x86_64 (") + (tcg ? "TCG, not KVM" : "KVM") + ")", *f.qemu);
  }
  const char* tcg_note =
      qemu && qemu->config.label.find("TCG") != std::string::npos ? " (QEMU under TCG: not comparable)" : "";
  if (f.skiff && f.qemu)
    std::printf("   ratio QEMU / Skiff (median spawn -> exit): %.1fx%s\n", f.qemu->median / f.skiff->median, tcg_note);

  std::printf("\n   Spawn -> the guest's first serial byte read from the VMM's stdout (a pipe), then -> exit\n");
  const std::vector<std::string> skiff_serial_args{o.skiff,    "boot",  "--kernel", o.first_serial,
                                                   "--memory", std::to_string(o.memory_mib), "-q"};
  std::printf("   skiff: %s\n", join(skiff_serial_args).c_str());
  f.skiff_serial = time_first_byte_runs("skiff boot (serial)", skiff_serial_args, kSkiffResetStatus, o.runs);
  if (qemu) {
    auto a = qemu_args(o, qemu->path, qemu->config, true, true);
    std::printf("   qemu:  %s\n", join(a).c_str());
    f.qemu_serial = time_first_byte_runs("qemu (serial)", a, kQemuDebugExitStatus, o.runs);
  }
  std::printf("   %-34s %12s %12s %12s\n", "", "median", "min", "max");
  if (f.skiff_serial) {
    row("skiff: spawn -> first byte", f.skiff_serial->first);
    row("skiff: spawn -> exit", f.skiff_serial->second);
  }
  if (f.qemu_serial) {
    row("qemu:  spawn -> first byte", f.qemu_serial->first);
    row("qemu:  spawn -> exit", f.qemu_serial->second);
  }
  if (f.skiff_serial && f.qemu_serial)
    std::printf("   ratio QEMU / Skiff (median spawn -> first guest byte): %.1fx%s\n",
                f.qemu_serial->first.median / f.skiff_serial->first.median, tcg_note);
  return f;
}

// ---------------------------------------------------------------------------
// 3. Memory overhead

struct SmapsSummary {
  uint64_t total_rss_kib = 0, total_private_kib = 0;
  uint64_t guest_rss_kib = 0, guest_private_kib = 0, guest_size_kib = 0;
  int guest_mappings = 0;
  std::vector<std::string> guest_names;
};

struct MappingInfo {
  uint64_t size_kib = 0;
  std::string path;
};

std::optional<SmapsSummary> read_smaps(pid_t pid, const std::function<bool(const MappingInfo&)>& is_guest_ram) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/smaps");
  if (!in) return std::nullopt;
  SmapsSummary s;
  bool guest = false;
  std::string line;
  while (std::getline(in, line)) {
    unsigned long lo = 0, hi = 0;
    int path_at = 0;
    char perms[8] = {};
    if (std::sscanf(line.c_str(), "%lx-%lx %7s %*x %*s %*u %n", &lo, &hi, perms, &path_at) == 3 && path_at > 0) {
      MappingInfo m{(hi - lo) / 1024, line.substr(static_cast<size_t>(path_at))};
      while (!m.path.empty() && m.path.back() == ' ') m.path.pop_back();
      guest = is_guest_ram(m);
      if (guest) {
        ++s.guest_mappings;
        s.guest_size_kib += m.size_kib;
        s.guest_names.push_back(m.path.empty() ? "[anonymous]" : m.path);
      }
      continue;
    }
    unsigned long kib = 0;
    if (std::sscanf(line.c_str(), "Rss: %lu kB", &kib) == 1) {
      s.total_rss_kib += kib;
      if (guest) s.guest_rss_kib += kib;
    } else if (std::sscanf(line.c_str(), "Private_Dirty: %lu kB", &kib) == 1) {
      // Clean pages (program text, libraries) are page cache every sandbox
      // shares; dirty private pages are what each VMM process costs alone.
      s.total_private_kib += kib;
      if (guest) s.guest_private_kib += kib;
    }
  }
  return s;
}

struct MemoryFigure {
  SmapsSummary smaps;
  double overhead_rss_mib() const { return static_cast<double>(smaps.total_rss_kib - smaps.guest_rss_kib) / 1024; }
  double overhead_private_mib() const {
    return static_cast<double>(smaps.total_private_kib - smaps.guest_private_kib) / 1024;
  }
};

// Starts the VMM, waits until its guest RAM is mapped and populated, lets the
// guest reach its halt, reads smaps, then ends the process.
std::optional<MemoryFigure> measure_memory(const char* what, const std::vector<std::string>& args,
                                           const std::function<bool(const MappingInfo&)>& is_guest_ram,
                                           int settle_ms) {
  // A binary built moments ago still has dirty page-cache pages, which smaps
  // would count as the process's own: write them back first.
  ::sync();
  std::string error;
  auto c = spawn(args, error);
  if (!c) {
    std::printf("   %s: %s\n", what, error.c_str());
    return std::nullopt;
  }
  auto alive = [&] {
    pollfd p{c->pidfd, POLLIN, 0};
    return c->pidfd < 0 || ::poll(&p, 1, 0) == 0;
  };
  std::optional<MemoryFigure> fig;
  auto deadline = Clock::now() + std::chrono::seconds(10);
  bool ready = false;
  while (Clock::now() < deadline && alive()) {
    auto s = read_smaps(c->pid, is_guest_ram);
    if (s && s->guest_mappings > 0 && s->guest_rss_kib > 0) {
      ready = true;
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  if (ready) {
    std::this_thread::sleep_for(std::chrono::milliseconds(settle_ms));
    if (alive()) {
      auto s = read_smaps(c->pid, is_guest_ram);
      if (s) fig = MemoryFigure{*s};
    }
  }
  const bool was_alive = alive();
  ::kill(c->pid, SIGTERM);
  auto status = wait_child(*c, std::chrono::seconds(5));
  if (!fig) {
    std::printf("   %s: %s before its guest RAM was populated: %s\n", what,
                was_alive ? "gave up (10 s)" : "exited", (describe_status(status) + ": " + first_lines(child_output(*c))).c_str());
  }
  close_child(*c);
  return fig;
}

void bench_memory(const Options& o, const std::optional<QemuChoice>& qemu) {
  std::printf("\n3. VMM memory overhead: process Rss minus guest RAM Rss, from /proc/PID/smaps,\n");
  std::printf("   guest first_out.elf halted after its first write, read %d ms after guest RAM is populated\n",
              o.settle_ms);
  const uint64_t mem_kib = o.memory_mib * 1024;
  const std::vector<std::string> skiff_args{o.skiff,  "boot",   "--kernel", o.first_out, "--memory",
                                            std::to_string(o.memory_mib), "--console", "none",      "-q"};
  auto skiff = measure_memory(
      "skiff boot", skiff_args, [](const MappingInfo& m) { return m.path.rfind("/memfd:skiff-guest-ram", 0) == 0; },
      o.settle_ms);
  std::optional<MemoryFigure> q;
  if (qemu) {
    // QEMU's RAM: one anonymous (or memfd) mapping of the guest's size.
    q = measure_memory(
        "qemu", qemu_args(o, qemu->path, qemu->config, false),
        [mem_kib](const MappingInfo& m) {
          return (m.path.empty() || m.path.rfind("/memfd:", 0) == 0) && m.size_kib >= mem_kib &&
                 m.size_kib <= mem_kib + 4096;
        },
        o.settle_ms);
  }
  std::printf("   %-12s %12s %14s %14s %16s  %s\n", "", "process Rss", "guest RAM Rss", "overhead Rss",
              "overhead dirty", "guest RAM mapping(s)");
  auto row = [](const char* name, const MemoryFigure& f, const std::string& note) {
    std::string names;
    for (const auto& n : f.smaps.guest_names) names += (names.empty() ? "" : ", ") + n;
    std::printf("   %-12s %8.2f MiB %10.2f MiB %10.2f MiB %12.2f MiB  %d x %llu MiB %s  %s\n", name,
                static_cast<double>(f.smaps.total_rss_kib) / 1024, static_cast<double>(f.smaps.guest_rss_kib) / 1024,
                f.overhead_rss_mib(), f.overhead_private_mib(), f.smaps.guest_mappings,
                static_cast<unsigned long long>(f.smaps.guest_size_kib / 1024), names.c_str(), note.c_str());
  };
  if (skiff) {
    char note[96];
    std::snprintf(note, sizeof note, "budget <= %.0f MiB: %s", kMemoryBudgetMib,
                  verdict(skiff->overhead_rss_mib() <= kMemoryBudgetMib));
    row("skiff", *skiff, note);
  }
  if (q) row("qemu", *q, "");
  if (skiff && q && skiff->overhead_rss_mib() > 0)
    std::printf("   ratio QEMU / Skiff overhead Rss: %.1fx\n", q->overhead_rss_mib() / skiff->overhead_rss_mib());
}

void print_host() {
  std::string kvm;
  for (const char* m : {"kvm", "kvm_intel", "kvm_amd", "kvm_pvm"})
    if (::access((std::string("/sys/module/") + m).c_str(), F_OK) == 0) kvm += std::string(kvm.empty() ? "" : " ") + m;
  std::printf("host: %s, KVM modules: %s\n", host_summary().c_str(), kvm.empty() ? "none" : kvm.c_str());
  print_load_average("timings");
  if (pvm_host())
    std::printf("      kvm_pvm: PVM is software-assisted KVM; each VM exit costs ~10 us, far more than hardware KVM\n");
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  if (!parse_options(argc, argv, o)) return 2;
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  std::printf("skiff_bench_startup: %d runs per figure, guest memory %llu MiB, 1 vCPU\n", o.runs,
              static_cast<unsigned long long>(o.memory_mib));
  print_host();
  std::printf("skiff:  %s\nguests: %s\n        %s\n        %s\n", o.skiff.c_str(), o.first_out.c_str(),
              o.first_reset.c_str(), o.first_serial.c_str());
  for (const auto& f : {o.skiff, o.first_out, o.first_reset, o.first_serial}) {
    if (!is_file(f)) {
      std::printf("missing %s: build it first (cmake --build BUILD --target skiff_bench_startup)\n", f.c_str());
      return 1;
    }
  }

  std::printf("\n0. Peer\n");
  auto qemu = choose_qemu(o);

  const bool in_process = bench_in_process(o);
  auto processes = bench_processes(o, qemu);
  bench_memory(o, qemu);

  std::printf("\nBudgets are from docs/DESIGN.md section 7; PASS/MISS is information, not a test result.\n");
  return in_process || processes.skiff ? 0 : 1;
}
