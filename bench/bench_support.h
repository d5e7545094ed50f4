#pragma once
// What Skiff's benchmarks have in common: command-line reading, the clocks,
// the offset generator, the host's facts, and the simulated guest driver's
// side of a split virtqueue with EVENT_IDX. Header-only, each bench is one
// translation unit.
#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <poll.h>
#include <sched.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/statfs.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <climits>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "virtio/device.h"
#include "virtio/testing/driver_queue.h"
#include "virtio/virtqueue.h"
#include "memory/guest_memory.h"
#include "base/unique_fd.h"

namespace skiff::bench {

using Clock = std::chrono::steady_clock;

// The message names the binary the way it was run, as each bench did with
// its own name before.
// posix_spawn of args[0] (a path) with stdin from /dev/null and stdout and
// stderr onto `out_fd` and `err_fd`; -1 with `error` set when it could not be
// spawned.
inline pid_t spawn_process(const std::vector<std::string>& args, int out_fd, int err_fd, std::string& error) {
  std::vector<char*> argv;
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&fa, out_fd, 1);
  posix_spawn_file_actions_adddup2(&fa, err_fd, 2);
  pid_t pid = -1;
  const int rc = posix_spawn(&pid, argv[0], &fa, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0) {
    error = "spawn " + args[0] + ": " + std::strerror(rc);
    return -1;
  }
  return pid;
}

[[noreturn]] inline void die(const std::string& what) {
  std::fprintf(stderr, "%s: %s\n", program_invocation_short_name, what.c_str());
  std::exit(1);
}

[[noreturn]] inline void die_errno(const std::string& what) { die(what + ": " + std::strerror(errno)); }

// ---------------------------------------------------------------------------
// Command line

// parse_options()'s cursor: a flag's value is the next argument, and a
// missing or bad one ends the program with status 2 naming the flag.
class Args {
 public:
  Args(int argc, char** argv) : argc_(argc), argv_(argv) {}

  // Moves to the next argument; false past the last.
  bool next() {
    if (++i_ >= argc_) return false;
    flag_ = argv_[i_];
    return true;
  }
  const std::string& flag() const { return flag_; }

  std::string value() {
    if (i_ + 1 >= argc_) {
      std::fprintf(stderr, "%s needs a value\n", flag_.c_str());
      std::exit(2);
    }
    return argv_[++i_];
  }
  // An integer in [lo, hi]; the message shows the range only when there is
  // an upper bound to show.
  long number(long lo, long hi = LONG_MAX) {
    const std::string v = value();
    char* end = nullptr;
    const long n = std::strtol(v.c_str(), &end, 10);
    if (v.empty() || *end || n < lo || n > hi) {
      if (hi == LONG_MAX) std::fprintf(stderr, "%s: bad value '%s'\n", flag_.c_str(), v.c_str());
      else std::fprintf(stderr, "%s: bad value '%s' (%ld..%ld)\n", flag_.c_str(), v.c_str(), lo, hi);
      std::exit(2);
    }
    return n;
  }
  double real(double lo) {
    const std::string v = value();
    char* end = nullptr;
    const double d = std::strtod(v.c_str(), &end);
    if (v.empty() || *end || d < lo) {
      std::fprintf(stderr, "%s: bad value '%s'\n", flag_.c_str(), v.c_str());
      std::exit(2);
    }
    return d;
  }
  // The flag matched none of the bench's own: -h/--help prints `usage` and
  // exits 0; anything else is refused (false) after the usage.
  bool help_or_unknown(void (*usage)(const char* argv0)) const {
    if (flag_ == "-h" || flag_ == "--help") {
      usage(argv_[0]);
      std::exit(0);
    }
    std::fprintf(stderr, "unknown argument '%s'\n", flag_.c_str());
    usage(argv_[0]);
    return false;
  }

 private:
  int argc_;
  char** argv_;
  int i_ = 0;
  std::string flag_;
};

// ---------------------------------------------------------------------------
// Time and numbers

// CPU time of every thread of this process (io_uring's io-wq workers and the
// device's workers included): what an operation costs, whatever else the
// host is running.
inline double process_cpu_seconds() {
  timespec ts{};
  ::clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

inline double thread_cpu_seconds() {
  timespec ts{};
  ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

inline double seconds_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

// xorshift64*: cheap enough that choosing an offset costs nothing beside the
// I/O, and the same sequence family on both sides of a comparison.
class Rng {
 public:
  explicit Rng(uint64_t seed) : s_(seed ? seed : 0x9e3779b97f4a7c15ull) {}
  uint64_t next() {
    s_ ^= s_ >> 12;
    s_ ^= s_ << 25;
    s_ ^= s_ >> 27;
    return s_ * 0x2545f4914f6cdd1dull;
  }
  uint64_t below(uint64_t n) { return next() % n; }

 private:
  uint64_t s_;
};

inline double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v.size() % 2 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
}

// ---------------------------------------------------------------------------
// The data files

// Reads all of `bytes` of `fd` so the page cache holds it; returns the share
// that is resident afterwards (mincore), -1 when that cannot be told. A
// share below 1 means the figures include reads from the disk.
inline double warm_page_cache(int fd, uint64_t bytes) {
  std::vector<uint8_t> chunk(1 << 20);
  for (uint64_t off = 0; off < bytes; off += chunk.size())
    if (::pread(fd, chunk.data(), chunk.size(), static_cast<off_t>(off)) < 0) die_errno("pre-read");
  void* map = ::mmap(nullptr, bytes, PROT_READ, MAP_SHARED, fd, 0);
  if (map == MAP_FAILED) return -1;
  std::vector<unsigned char> vec((bytes + 4095) / 4096);
  double share = -1;
  if (::mincore(map, bytes, vec.data()) == 0) {
    uint64_t in = 0;
    for (unsigned char b : vec) in += b & 1;
    share = static_cast<double>(in) / static_cast<double>(vec.size());
  }
  ::munmap(map, bytes);
  return share;
}

// ---------------------------------------------------------------------------
// The host's facts, printed beside the figures so a reader can judge them

// "Linux 6.1.0, 16 CPUs": the start of each bench's host line.
inline std::string host_summary() {
  utsname u{};
  ::uname(&u);
  char b[sizeof u.sysname + sizeof u.release + 32];
  std::snprintf(b, sizeof b, "%s %s, %u CPUs", u.sysname, u.release, std::thread::hardware_concurrency());
  return b;
}

// The CPUs this process may run on (a container or taskset may allow fewer
// than the host has); -1 when unknown.
inline int usable_cpus() {
  cpu_set_t allowed;
  CPU_ZERO(&allowed);
  return ::sched_getaffinity(0, sizeof allowed, &allowed) == 0 ? CPU_COUNT(&allowed) : -1;
}

// `what` names the bench's measurements ("figures", "timings").
inline void print_load_average(const char* what) {
  std::ifstream loadavg("/proc/loadavg");
  std::string l1, l5, l15;
  if (loadavg >> l1 >> l5 >> l15)
    std::printf("      load average %s %s %s (%s are noisy when the host is busy)\n", l1.c_str(), l5.c_str(),
                l15.c_str(), what);
}

// Whether this host is itself a PVM guest, where exits and wake-ups cost far
// more than on bare metal; each bench says what that means for its figures.
inline bool pvm_host() { return ::access("/sys/module/kvm_pvm", F_OK) == 0; }

inline std::string fs_type(const std::string& dir) {
  struct statfs s {};
  if (::statfs(dir.c_str(), &s) != 0) return "?";
  switch (static_cast<unsigned long>(s.f_type)) {
    case 0xEF53: return "ext4";
    case 0x58465342: return "xfs";
    case 0x9123683E: return "btrfs";
    case 0x01021994: return "tmpfs";
    case 0x794c7630: return "overlayfs";
    default: {
      char b[32];
      std::snprintf(b, sizeof b, "fs 0x%lx", static_cast<unsigned long>(s.f_type));
      return b;
    }
  }
}

// ---------------------------------------------------------------------------
// The simulated guest driver's side of a device

// The device's interrupt as the guest sees it: an eventfd (as the irqfd the
// VMM uses) that the driver blocks on, so the device's threads get the CPU
// while the guest waits.
class EventInterrupt : public virtio::DeviceInterrupt {
 public:
  EventInterrupt() : fd_(::eventfd(0, EFD_CLOEXEC)) {
    if (!fd_) die_errno("eventfd");
  }
  void used_buffers() override {
    const uint64_t one = 1;
    [[maybe_unused]] const ssize_t n = ::write(fd_.get(), &one, sizeof one);
    count_.fetch_add(1, std::memory_order_relaxed);
  }
  void config_changed() override {}
  // Blocks until at least one interrupt came since the last wait.
  void wait() {
    uint64_t v;
    while (::read(fd_.get(), &v, sizeof v) < 0 && errno == EINTR) {
    }
  }
  // Like wait(), but gives up after `timeout_ms`; false if nothing came.
  bool wait_for(int timeout_ms) {
    pollfd p{fd_.get(), POLLIN, 0};
    int r;
    do r = ::poll(&p, 1, timeout_ms);
    while (r < 0 && errno == EINTR);
    if (r <= 0) return false;
    wait();
    return true;
  }
  // Wakes a wait() without counting as an interrupt (a watchdog's).
  void poke() {
    const uint64_t one = 1;
    [[maybe_unused]] const ssize_t n = ::write(fd_.get(), &one, sizeof one);
  }
  uint64_t count() const { return count_.load(std::memory_order_relaxed); }

 private:
  UniqueFd fd_;
  std::atomic<uint64_t> count_{0};
};

// vring_need_event (virtio 1.2, 2.7.7.2): whether moving an index from
// `old_idx` to `new_idx` crosses the other side's `event`.
inline bool need_event(uint16_t event, uint16_t new_idx, uint16_t old_idx) {
  return static_cast<uint16_t>(new_idx - event - 1) < static_cast<uint16_t>(new_idx - old_idx);
}

// One split virtqueue from the driver's side, with EVENT_IDX, over
// DriverQueue's raw ring access: descriptors are laid out once and reused
// (as a guest driver's fixed request slots), so the driver's own cost per
// request is a header write and an avail entry, as in a real guest.
class DriverRing {
 public:
  DriverRing(const GuestMemory& mem, virtio::QueueConfig config)
      : mem_(mem), q_(mem, config, GuestAddress(0), 0), config_(config) {}

  const virtio::QueueConfig& config() const { return config_; }
  void desc(uint16_t index, uint64_t addr, uint32_t len, uint16_t flags, uint16_t next = 0) {
    q_.raw_desc(index, virtio::RawDescriptor{addr, len, flags, next});
  }
  // Adds `head` to the avail ring (published by the release fence inside).
  void push(uint16_t head) { q_.push_avail(head); }
  std::optional<virtio::UsedElem> next_used() {
    auto u = q_.next_used();
    if (u) ++last_used_;
    return u;
  }
  // Re-enables the used-buffer interrupt (used_event = what we have seen);
  // true when more used entries arrived meanwhile, which the device may not
  // have signalled: the caller reaps again.
  bool enable_interrupt_and_check() {
    q_.set_used_event(last_used_);
    std::atomic_thread_fence(std::memory_order_seq_cst);
    return mem_.read_obj<uint16_t>(config_.used.unchecked_add(2)) != last_used_;
  }
  // Moves used_event far ahead: no interrupt for this queue (the driver
  // reclaims its buffers itself).
  void suppress_interrupt() { q_.set_used_event(static_cast<uint16_t>(last_used_ + 0x8000)); }
  // Whether the device asked to be kicked for what was pushed since the last
  // kick (EVENT_IDX avail_event); resets the mark.
  bool kick_needed() {
    const uint16_t now = q_.avail_idx();
    if (now == kicked_idx_) return false;
    std::atomic_thread_fence(std::memory_order_seq_cst);
    const bool need = need_event(q_.avail_event(), now, kicked_idx_);
    kicked_idx_ = now;
    return need;
  }

 private:
  const GuestMemory& mem_;
  virtio::testing::DriverQueue q_;
  virtio::QueueConfig config_;
  uint16_t last_used_ = 0;
  uint16_t kicked_idx_ = 0;
};

}  // namespace skiff::bench
