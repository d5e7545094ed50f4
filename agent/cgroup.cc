#include "agent/cgroup.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <set>
#include <sstream>
#include <thread>

#include "agent/device_filter.h"

namespace skiff::agent {
namespace {

std::string read_file(const std::string& path) {
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// "key value" lines (cpu.stat, memory.events, cgroup.events).
uint64_t keyed(const std::string& text, const std::string& key) {
  std::istringstream in(text);
  std::string k;
  uint64_t v = 0;
  while (in >> k >> v)
    if (k == key) return v;
  return 0;
}

std::string limit(int64_t v) { return v == -1 ? "max" : std::to_string(v); }

}  // namespace

uint64_t cpu_weight_from_shares(uint64_t shares) {
  if (shares == 0) return 0;
  return 1 + ((shares - 2) * 9999) / 262142;
}

Cgroup Cgroup::create(const std::string& parent, const std::string& path, const CgroupResources& r) {
  std::set<std::string> wanted;
  if (r.memory_limit || r.memory_reservation || r.memory_swap || r.memory_high) wanted.insert("memory");
  if (r.cpu_shares || r.cpu_quota || r.cpu_period) wanted.insert("cpu");
  if (!r.cpus.empty() || !r.mems.empty()) wanted.insert("cpuset");
  if (r.pids_limit) wanted.insert("pids");
  if (r.io_weight) wanted.insert("io");
  for (const auto& [file, value] : r.unified) wanted.insert(file.substr(0, file.find('.')));
  wanted.erase("cgroup");  // core files, no controller

  // Each level down to the new directory passes the controllers on.
  std::string dir = parent;
  std::istringstream parts(path);
  std::string part;
  while (std::getline(parts, part, '/')) {
    if (part.empty() || part == ".") continue;
    if (part == "..") throw CgroupError("cgroup path " + path + ": \"..\" is not allowed");
    const std::string available = read_file(dir + "/cgroup.controllers");
    std::set<std::string> have;
    std::istringstream words(available);
    for (std::string w; words >> w;) have.insert(w);
    for (const auto& c : wanted) {
      if (!have.count(c))
        throw CgroupError("cgroup " + dir + ": the " + c + " controller is not available (cgroup.controllers: " +
                          (have.empty() ? std::string("none") : available.substr(0, available.find('\n'))) + ")");
      Cgroup(dir).write("cgroup.subtree_control", "+" + c, "enable the " + c + " controller");
    }
    dir += "/" + part;
    if (::mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST) throw CgroupError("mkdir " + dir + ": " + std::strerror(errno));
  }
  Cgroup g(dir);
  g.apply(r);
  return g;
}

void Cgroup::write(const std::string& file, const std::string& value, const std::string& what) const {
  const std::string path = dir_ + "/" + file;
  const int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) throw CgroupError(what + ": " + path + ": " + std::strerror(errno));
  const ssize_t n = ::write(fd, value.data(), value.size());
  const int err = errno;
  ::close(fd);
  if (n != static_cast<ssize_t>(value.size()))
    throw CgroupError(what + ": writing \"" + value + "\" to " + path + ": " + std::strerror(n < 0 ? err : EIO));
}

void Cgroup::apply(const CgroupResources& r) const {
  if (r.memory_limit) write("memory.max", limit(r.memory_limit), "linux.resources.memory.limit");
  if (r.memory_reservation) write("memory.low", limit(r.memory_reservation), "linux.resources.memory.reservation");
  if (r.memory_high) write("memory.high", limit(r.memory_high), "linux.resources.memory.high");
  if (r.memory_swap) {
    // OCI's swap is memory + swap; cgroup v2 counts swap alone.
    std::string swap = "max";
    if (r.memory_swap != -1) {
      if (r.memory_limit <= 0) throw CgroupError("linux.resources.memory.swap: needs a memory limit to subtract");
      swap = std::to_string(r.memory_swap - r.memory_limit);
    }
    write("memory.swap.max", swap, "linux.resources.memory.swap");
  }
  if (r.cpu_shares) write("cpu.weight", std::to_string(cpu_weight_from_shares(r.cpu_shares)), "linux.resources.cpu.shares");
  if (r.cpu_quota || r.cpu_period) {
    const std::string quota = r.cpu_quota > 0 ? std::to_string(r.cpu_quota) : "max";
    write("cpu.max", quota + " " + std::to_string(r.cpu_period ? r.cpu_period : 100000), "linux.resources.cpu.quota");
  }
  if (!r.cpus.empty()) write("cpuset.cpus", r.cpus, "linux.resources.cpu.cpus");
  if (!r.mems.empty()) write("cpuset.mems", r.mems, "linux.resources.cpu.mems");
  if (r.pids_limit) write("pids.max", limit(r.pids_limit), "linux.resources.pids.limit");
  if (r.io_weight) write("io.weight", "default " + std::to_string(r.io_weight), "linux.resources.blockIO.weight");
  for (const auto& [file, value] : r.unified) write(file, value, "linux.resources.unified " + file);
  if (!r.devices.empty()) attach_device_filter(dir_, r.devices);
}

void Cgroup::freeze(bool frozen_now, std::chrono::milliseconds timeout) const {
  write("cgroup.freeze", frozen_now ? "1" : "0", frozen_now ? "pause" : "resume");
  // The kernel freezes asynchronously: cgroup.events says when it is done.
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (frozen() != frozen_now) {
    if (std::chrono::steady_clock::now() > deadline)
      throw CgroupError(std::string(frozen_now ? "pause" : "resume") + ": " + dir_ + " did not settle in time");
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

bool Cgroup::frozen() const { return keyed(read_file(dir_ + "/cgroup.events"), "frozen") == 1; }

std::vector<pid_t> Cgroup::procs() const {
  std::vector<pid_t> out;
  std::istringstream in(read_file(dir_ + "/cgroup.procs"));
  pid_t p;
  while (in >> p) out.push_back(p);
  return out;
}

void Cgroup::kill_all() const {
  if (::access((dir_ + "/cgroup.kill").c_str(), W_OK) == 0) {
    write("cgroup.kill", "1", "kill every process");
    return;
  }
  // Older kernels: freeze so nothing forks meanwhile, signal each, thaw.
  freeze(true);
  for (pid_t p : procs()) ::kill(p, SIGKILL);
  freeze(false);
}

CgroupStats Cgroup::stats() const {
  CgroupStats s;
  const std::string cpu = read_file(dir_ + "/cpu.stat");
  s.cpu_usage_usec = keyed(cpu, "usage_usec");
  s.cpu_user_usec = keyed(cpu, "user_usec");
  s.cpu_system_usec = keyed(cpu, "system_usec");
  s.memory_current = std::strtoull(read_file(dir_ + "/memory.current").c_str(), nullptr, 10);
  const std::string max = read_file(dir_ + "/memory.max");
  s.memory_max = max.starts_with("max") ? 0 : std::strtoull(max.c_str(), nullptr, 10);
  s.memory_oom_kills = oom_kills();
  s.pids_current = std::strtoull(read_file(dir_ + "/pids.current").c_str(), nullptr, 10);
  // io.stat: "MAJ:MIN rbytes=N wbytes=N rios=N ..." per device.
  std::istringstream io(read_file(dir_ + "/io.stat"));
  std::string word;
  while (io >> word) {
    if (word.starts_with("rbytes=")) s.io_read_bytes += std::strtoull(word.c_str() + 7, nullptr, 10);
    if (word.starts_with("wbytes=")) s.io_write_bytes += std::strtoull(word.c_str() + 7, nullptr, 10);
  }
  return s;
}

uint64_t Cgroup::oom_kills() const { return keyed(read_file(dir_ + "/memory.events"), "oom_kill"); }

void Cgroup::remove(std::chrono::milliseconds timeout) const {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (::rmdir(dir_.c_str()) != 0) {
    if (errno == ENOENT) return;
    if (errno != EBUSY || std::chrono::steady_clock::now() > deadline)
      throw CgroupError("remove " + dir_ + ": " + std::strerror(errno));
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
}

}  // namespace skiff::agent
