#include "agent/container_spec.h"

#include <sched.h>
#include <seccomp.h>
#include <sys/capability.h>
#include <sys/mount.h>
#include <sys/resource.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cerrno>
#include <set>
#include <string_view>
#include <utility>

namespace skiff::agent {
namespace {

std::string quoted(std::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f || c == '"' || c == '\\') {
      static constexpr char kHex[] = "0123456789abcdef";
      out += "\\x";
      out += kHex[u >> 4];
      out += kHex[u & 15];
    } else {
      out += c;
    }
  }
  return out + "\"";
}

[[noreturn]] void fail(const std::string& where, const std::string& what) { throw SpecError(where + ": " + what); }

std::string text(capnp::Text::Reader t) { return std::string(t.cStr(), t.size()); }

std::vector<std::string> texts(capnp::List<capnp::Text>::Reader l) {
  std::vector<std::string> out;
  out.reserve(l.size());
  for (auto t : l) out.push_back(text(t));
  return out;
}

// The value a name table gives `name`, if it has it.
template <typename Table>
auto named(const Table& table, std::string_view name) -> std::optional<typename Table::value_type::second_type> {
  for (const auto& [n, v] : table)
    if (n == name) return v;
  return std::nullopt;
}

std::string at(const std::string& where, size_t i) { return where + "[" + std::to_string(i) + "]"; }

bool absolute(const std::string& p) { return !p.empty() && p[0] == '/'; }

// A path inside the container: absolute, no NUL, no ".." component.
void check_container_path(const std::string& where, const std::string& p) {
  if (!absolute(p)) fail(where, "must be an absolute path, not " + quoted(p));
  if (p.find('\0') != std::string::npos) fail(where, "contains a NUL byte");
  size_t i = 0;
  while (i < p.size()) {
    const size_t j = std::min(p.find('/', i), p.size());
    if (p.compare(i, j - i, "..") == 0) fail(where, "must not contain \"..\": " + quoted(p));
    i = j + 1;
  }
}

// ---- capabilities ----

uint64_t capability_set(const std::string& where, capnp::List<capnp::Text>::Reader names) {
  uint64_t bits = 0;
  for (size_t i = 0; i < names.size(); ++i) {
    const std::string name = text(names[i]);
    cap_value_t v = -1;
    // cap_from_name also takes numbers and lower case: OCI names are CAP_*.
    const bool named = name.size() > 4 && name.compare(0, 4, "CAP_") == 0 &&
                       std::all_of(name.begin() + 4, name.end(), [](char c) { return std::isupper(static_cast<unsigned char>(c)) || c == '_'; });
    std::string lower = name;
    for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (!named || cap_from_name(lower.c_str(), &v) != 0 || v < 0 || v > 63)
      fail(at(where, i), "unknown capability " + quoted(name));
    if (v >= cap_max_bits())
      fail(at(where, i), quoted(name) + " is not known to this guest kernel");
    bits |= uint64_t{1} << v;
  }
  return bits;
}

// ---- rlimits ----

constexpr std::array<std::pair<std::string_view, int>, 16> kRlimits{{
    {"RLIMIT_AS", RLIMIT_AS},
    {"RLIMIT_CORE", RLIMIT_CORE},
    {"RLIMIT_CPU", RLIMIT_CPU},
    {"RLIMIT_DATA", RLIMIT_DATA},
    {"RLIMIT_FSIZE", RLIMIT_FSIZE},
    {"RLIMIT_LOCKS", RLIMIT_LOCKS},
    {"RLIMIT_MEMLOCK", RLIMIT_MEMLOCK},
    {"RLIMIT_MSGQUEUE", RLIMIT_MSGQUEUE},
    {"RLIMIT_NICE", RLIMIT_NICE},
    {"RLIMIT_NOFILE", RLIMIT_NOFILE},
    {"RLIMIT_NPROC", RLIMIT_NPROC},
    {"RLIMIT_RSS", RLIMIT_RSS},
    {"RLIMIT_RTPRIO", RLIMIT_RTPRIO},
    {"RLIMIT_RTTIME", RLIMIT_RTTIME},
    {"RLIMIT_SIGPENDING", RLIMIT_SIGPENDING},
    {"RLIMIT_STACK", RLIMIT_STACK},
}};

std::vector<ResourceLimit> resource_limits(const std::string& where, capnp::List<api::Rlimit>::Reader list) {
  std::vector<ResourceLimit> out;
  std::set<int> seen;
  for (size_t i = 0; i < list.size(); ++i) {
    const std::string name = text(list[i].getType());
    const auto resource = named(kRlimits, name);
    if (!resource) fail(at(where, i) + ".type", "unknown rlimit " + quoted(name));
    if (!seen.insert(*resource).second) fail(at(where, i) + ".type", quoted(name) + " is given twice");
    const uint64_t soft = list[i].getSoft(), hard = list[i].getHard();
    if (soft > hard) fail(at(where, i), "soft limit " + std::to_string(soft) + " is above the hard limit " + std::to_string(hard));
    out.push_back({*resource, soft, hard});
  }
  return out;
}

// ---- mounts ----

struct MountOption {
  std::string_view name;
  bool clear;  // the option clears `flag` (rw, suid, ...)
  unsigned long flag;
};

constexpr std::array<MountOption, 26> kMountFlags{{
    {"ro", false, MS_RDONLY},         {"rw", true, MS_RDONLY},
    {"nosuid", false, MS_NOSUID},     {"suid", true, MS_NOSUID},
    {"nodev", false, MS_NODEV},       {"dev", true, MS_NODEV},
    {"noexec", false, MS_NOEXEC},     {"exec", true, MS_NOEXEC},
    {"sync", false, MS_SYNCHRONOUS},  {"async", true, MS_SYNCHRONOUS},
    {"dirsync", false, MS_DIRSYNC},   {"remount", false, MS_REMOUNT},
    {"mand", false, MS_MANDLOCK},     {"nomand", true, MS_MANDLOCK},
    {"noatime", false, MS_NOATIME},   {"atime", true, MS_NOATIME},
    {"nodiratime", false, MS_NODIRATIME}, {"diratime", true, MS_NODIRATIME},
    {"relatime", false, MS_RELATIME}, {"norelatime", true, MS_RELATIME},
    {"strictatime", false, MS_STRICTATIME}, {"nostrictatime", true, MS_STRICTATIME},
    {"lazytime", false, MS_LAZYTIME}, {"nolazytime", true, MS_LAZYTIME},
    {"silent", false, MS_SILENT},     {"loud", true, MS_SILENT},
}};

constexpr std::array<std::pair<std::string_view, unsigned long>, 8> kPropagation{{
    {"private", MS_PRIVATE},
    {"rprivate", MS_PRIVATE | MS_REC},
    {"shared", MS_SHARED},
    {"rshared", MS_SHARED | MS_REC},
    {"slave", MS_SLAVE},
    {"rslave", MS_SLAVE | MS_REC},
    {"unbindable", MS_UNBINDABLE},
    {"runbindable", MS_UNBINDABLE | MS_REC},
}};

std::optional<unsigned long> propagation(std::string_view name) { return named(kPropagation, name); }

// ---- namespaces ----

constexpr std::array<std::pair<std::string_view, int>, 6> kNamespaces{{
    {"mount", CLONE_NEWNS},
    {"pid", CLONE_NEWPID},
    {"ipc", CLONE_NEWIPC},
    {"uts", CLONE_NEWUTS},
    {"cgroup", CLONE_NEWCGROUP},
    {"network", CLONE_NEWNET},
}};

std::vector<NamespaceSpec> namespaces(const std::string& where, capnp::List<api::Namespace>::Reader list) {
  std::vector<NamespaceSpec> out;
  for (size_t i = 0; i < list.size(); ++i) {
    const std::string type = text(list[i].getType()), path = text(list[i].getPath());
    if (type == "user" || type == "time")
      fail(at(where, i) + ".type", quoted(type) + " namespaces are not supported: the sandbox VM is the isolation boundary");
    const auto flag = named(kNamespaces, type);
    if (!flag) fail(at(where, i) + ".type", "unknown namespace type " + quoted(type));
    if (std::any_of(out.begin(), out.end(), [&](const NamespaceSpec& n) { return n.clone_flag == *flag; }))
      fail(at(where, i) + ".type", quoted(type) + " is given twice");
    if (!path.empty() && !absolute(path)) fail(at(where, i) + ".path", "must be absolute, not " + quoted(path));
    out.push_back({*flag, path});
  }
  return out;
}

// ---- devices ----

std::vector<DeviceNode> device_nodes(const std::string& where, capnp::List<api::Device>::Reader list) {
  std::vector<DeviceNode> out;
  for (size_t i = 0; i < list.size(); ++i) {
    const auto d = list[i];
    const std::string type = text(d.getType()), path = text(d.getPath());
    if (type.size() != 1 || std::string_view("cbup").find(type[0]) == std::string_view::npos)
      fail(at(where, i) + ".type", "must be one of c, b, u, p, not " + quoted(type));
    check_container_path(at(where, i) + ".path", path);
    if (!path.starts_with("/dev/")) fail(at(where, i) + ".path", "must be under /dev, not " + quoted(path));
    DeviceNode n;
    n.type = type[0];
    n.path = path;
    if (n.type != 'p') {
      if (d.getMajor() < 0 || d.getMajor() > 4095 || d.getMinor() < 0 || d.getMinor() > 1048575)
        fail(at(where, i), "major " + std::to_string(d.getMajor()) + " / minor " + std::to_string(d.getMinor()) + " is out of range");
      n.major = d.getMajor();
      n.minor = d.getMinor();
    }
    if (d.getHasFileMode()) {
      if (d.getFileMode() & ~07777u) fail(at(where, i) + ".fileMode", "has bits beyond 07777");
      n.file_mode = d.getFileMode();
    }
    n.uid = d.getUid();
    n.gid = d.getGid();
    out.push_back(std::move(n));
  }
  return out;
}

// ---- seccomp ----

std::optional<uint32_t> seccomp_action(const std::string& name, bool has_errno, uint32_t errno_ret) {
  const uint32_t eperm = has_errno ? errno_ret : EPERM;
  if (name == "SCMP_ACT_KILL" || name == "SCMP_ACT_KILL_THREAD") return SCMP_ACT_KILL_THREAD;
  if (name == "SCMP_ACT_KILL_PROCESS") return SCMP_ACT_KILL_PROCESS;
  if (name == "SCMP_ACT_TRAP") return SCMP_ACT_TRAP;
  if (name == "SCMP_ACT_ERRNO") return SCMP_ACT_ERRNO(eperm & 0xffff);
  if (name == "SCMP_ACT_TRACE") return SCMP_ACT_TRACE(eperm & 0xffff);
  if (name == "SCMP_ACT_ALLOW") return SCMP_ACT_ALLOW;
  if (name == "SCMP_ACT_LOG") return SCMP_ACT_LOG;
  return std::nullopt;
}

constexpr std::array<std::pair<std::string_view, int>, 7> kSeccompOps{{
    {"SCMP_CMP_NE", SCMP_CMP_NE},
    {"SCMP_CMP_LT", SCMP_CMP_LT},
    {"SCMP_CMP_LE", SCMP_CMP_LE},
    {"SCMP_CMP_EQ", SCMP_CMP_EQ},
    {"SCMP_CMP_GE", SCMP_CMP_GE},
    {"SCMP_CMP_GT", SCMP_CMP_GT},
    {"SCMP_CMP_MASKED_EQ", SCMP_CMP_MASKED_EQ},
}};

SeccompSpec seccomp_spec(const std::string& where, api::Seccomp::Reader s, std::vector<std::string>& ignored) {
  SeccompSpec out;
  const std::string def = text(s.getDefaultAction());
  const auto def_action = seccomp_action(def, s.getHasDefaultErrnoRet(), s.getDefaultErrnoRet());
  if (!def_action) fail(where + ".defaultAction", "unknown action " + quoted(def));
  out.default_action = *def_action;
  const auto archs = s.getArchitectures();
  for (size_t i = 0; i < archs.size(); ++i) {
    const std::string a = text(archs[i]);
    std::string lower = a.starts_with("SCMP_ARCH_") ? a.substr(10) : "";
    for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    const uint32_t token = lower.empty() ? 0 : seccomp_arch_resolve_name(lower.c_str());
    if (token == 0) fail(at(where + ".architectures", i), "unknown architecture " + quoted(a));
    out.architectures.push_back(token);
  }
  const auto flags = s.getFlags();
  for (size_t i = 0; i < flags.size(); ++i) {
    const std::string f = text(flags[i]);
    if (f != "SECCOMP_FILTER_FLAG_TSYNC" && f != "SECCOMP_FILTER_FLAG_LOG" && f != "SECCOMP_FILTER_FLAG_SPEC_ALLOW")
      fail(at(where + ".flags", i), "unknown flag " + quoted(f));
    out.flags.push_back(f);
  }
  const auto calls = s.getSyscalls();
  for (size_t i = 0; i < calls.size(); ++i) {
    const auto c = calls[i];
    const std::string w = at(where + ".syscalls", i);
    const std::string act = text(c.getAction());
    const auto action = seccomp_action(act, c.getHasErrnoRet(), c.getErrnoRet());
    if (!action) fail(w + ".action", "unknown action " + quoted(act));
    SeccompRule rule{{}, *action, {}};
    for (auto n : c.getNames()) {
      const std::string name = text(n);
      const int nr = seccomp_syscall_resolve_name(name.c_str());
      // As runc: a profile names syscalls of every kernel; one this kernel
      // lacks can't be made anyway.
      if (nr == __NR_SCMP_ERROR) {
        ignored.push_back(w + ".names: unknown syscall " + quoted(name));
        continue;
      }
      rule.syscalls.push_back(nr);
    }
    const auto args = c.getArgs();
    if (args.size() > 6) fail(w + ".args", "a syscall has at most 6 arguments");
    for (size_t j = 0; j < args.size(); ++j) {
      const std::string op = text(args[j].getOp());
      const auto cmp = named(kSeccompOps, op);
      if (!cmp) fail(at(w + ".args", j) + ".op", "unknown operator " + quoted(op));
      if (args[j].getIndex() > 5) fail(at(w + ".args", j) + ".index", "must be 0 to 5");
      rule.args.push_back({args[j].getIndex(), *cmp, args[j].getValue(), args[j].getValueTwo()});
    }
    out.rules.push_back(std::move(rule));
  }
  return out;
}

std::vector<std::pair<std::string, std::string>> key_values(capnp::List<api::KeyValue>::Reader l) {
  std::vector<std::pair<std::string, std::string>> out;
  for (auto kv : l) out.emplace_back(text(kv.getKey()), text(kv.getValue()));
  return out;
}

}  // namespace

bool ContainerConfig::has_namespace(int clone_flag) const {
  return std::any_of(namespaces.begin(), namespaces.end(), [&](const NamespaceSpec& n) { return n.clone_flag == clone_flag; });
}

MountSpec parse_mount_options(const std::vector<std::string>& options, const std::string& where) {
  MountSpec m;
  for (const auto& o : options) {
    if (o == "bind" || o == "rbind") {
      m.bind = true;
      m.recursive_bind = m.recursive_bind || o == "rbind";
      continue;
    }
    if (const auto p = propagation(o)) {
      if (m.propagation && m.propagation != *p) fail(where, "two propagation options, the second " + quoted(o));
      m.propagation = *p;
      continue;
    }
    const auto it = std::find_if(kMountFlags.begin(), kMountFlags.end(), [&](const MountOption& f) { return f.name == o; });
    if (it != kMountFlags.end()) {
      if (it->clear)
        m.flags &= ~it->flag;
      else
        m.flags |= it->flag;
      continue;
    }
    if (o.empty()) continue;
    if (o.find('\0') != std::string::npos) fail(where, "an option contains a NUL byte");
    if (!m.data.empty()) m.data += ',';
    m.data += o;
  }
  return m;
}

ProcessConfig process_config(api::ProcessSpec::Reader p, const std::string& where) {
  ProcessConfig out;
  out.args = texts(p.getArgs());
  if (out.args.empty() || out.args[0].empty()) fail(where + ".args", "must name the program to run");
  for (size_t i = 0; i < out.args.size(); ++i)
    if (out.args[i].find('\0') != std::string::npos) fail(at(where + ".args", i), "contains a NUL byte");
  out.env = texts(p.getEnv());
  for (size_t i = 0; i < out.env.size(); ++i) {
    const auto& e = out.env[i];
    const size_t eq = e.find('=');
    if (eq == 0 || eq == std::string::npos || e.find('\0') != std::string::npos)
      fail(at(where + ".env", i), "must be KEY=value, not " + quoted(e));
  }
  if (p.hasCwd()) out.cwd = text(p.getCwd());
  if (!absolute(out.cwd)) fail(where + ".cwd", "must be absolute, not " + quoted(out.cwd));
  if (out.cwd.find('\0') != std::string::npos) fail(where + ".cwd", "contains a NUL byte");
  out.terminal = p.getTerminal();
  out.rows = p.getConsoleSize().getRows();
  out.cols = p.getConsoleSize().getCols();
  const auto u = p.getUser();
  out.uid = u.getUid();
  out.gid = u.getGid();
  if (out.uid == static_cast<uid_t>(-1) || out.gid == static_cast<gid_t>(-1)) fail(where + ".user", "uid and gid 4294967295 are reserved");
  for (auto g : u.getAdditionalGids()) out.additional_gids.push_back(g);
  if (out.additional_gids.size() > 65536) fail(where + ".user.additionalGids", "more than 65536 groups");
  out.username = text(u.getUsername());
  if (out.username.find_first_of(std::string_view(":/\0\n", 4)) != std::string::npos)
    fail(where + ".user.username", "is not a user name: " + quoted(out.username));
  if (u.getHasUmask()) {
    if (u.getUmask() & ~0777u) fail(where + ".user.umask", "has bits beyond 0777");
    out.umask = u.getUmask();
  }
  const auto c = p.getCapabilities();
  const std::string cw = where + ".capabilities";
  out.caps = {capability_set(cw + ".bounding", c.getBounding()), capability_set(cw + ".effective", c.getEffective()),
              capability_set(cw + ".inheritable", c.getInheritable()), capability_set(cw + ".permitted", c.getPermitted()),
              capability_set(cw + ".ambient", c.getAmbient())};
  out.rlimits = resource_limits(where + ".rlimits", p.getRlimits());
  out.no_new_privileges = p.getNoNewPrivileges();
  if (p.getHasOomScoreAdj()) {
    if (p.getOomScoreAdj() < -1000 || p.getOomScoreAdj() > 1000)
      fail(where + ".oomScoreAdj", "must be -1000 to 1000, not " + std::to_string(p.getOomScoreAdj()));
    out.oom_score_adj = p.getOomScoreAdj();
  }
  return out;
}

CgroupResources cgroup_resources(api::Resources::Reader r, const std::string& where) {
  CgroupResources out;
  const auto rules = r.getDevices();
  for (size_t i = 0; i < rules.size(); ++i) {
    const auto d = rules[i];
    const std::string type = d.hasType() ? text(d.getType()) : "a", access = d.hasAccess() ? text(d.getAccess()) : "rwm";
    if (type.size() != 1 || std::string_view("acb").find(type[0]) == std::string_view::npos)
      fail(at(where + ".devices", i) + ".type", "must be a, c or b, not " + quoted(type));
    if (access.empty() || access.find_first_not_of("rwm") != std::string::npos)
      fail(at(where + ".devices", i) + ".access", "must be some of rwm, not " + quoted(access));
    if (d.getMajor() < -1 || d.getMinor() < -1) fail(at(where + ".devices", i), "major and minor are -1 (any) or a number");
    out.devices.push_back({d.getAllow(), type[0], d.getMajor(), d.getMinor(), access});
  }
  // As runc (libcontainer/specconv's AllowedDevices, after the spec's rules):
  // a container keeps mknod and its default devices whatever the rules say,
  // so a spec that denies all (runc's default one does) still has /dev/null.
  static const DeviceRuleSpec kAllowed[] = {
      {true, 'c', -1, -1, "m"},  {true, 'b', -1, -1, "m"},   {true, 'c', 1, 3, "rwm"},   {true, 'c', 1, 8, "rwm"},
      {true, 'c', 1, 7, "rwm"},  {true, 'c', 5, 0, "rwm"},   {true, 'c', 1, 5, "rwm"},   {true, 'c', 1, 9, "rwm"},
      {true, 'c', 136, -1, "rwm"}, {true, 'c', 5, 2, "rwm"}, {true, 'c', 10, 200, "rwm"},
  };
  if (!out.devices.empty()) out.devices.insert(out.devices.end(), std::begin(kAllowed), std::end(kAllowed));
  const auto mem = r.getMemory();
  out.memory_limit = mem.getLimit();
  out.memory_reservation = mem.getReservation();
  out.memory_swap = mem.getSwap();
  out.memory_high = mem.getHigh();
  for (auto [name, v] : {std::pair{"limit", out.memory_limit}, {"reservation", out.memory_reservation},
                         {"swap", out.memory_swap}, {"high", out.memory_high}})
    if (v < -1) fail(where + ".memory." + name, "must be -1 (unlimited), 0 (unset) or bytes, not " + std::to_string(v));
  if (out.memory_swap > 0 && out.memory_limit > 0 && out.memory_swap < out.memory_limit)
    fail(where + ".memory.swap", "memory+swap " + std::to_string(out.memory_swap) + " is below the memory limit " + std::to_string(out.memory_limit));
  const auto cpu = r.getCpu();
  out.cpu_shares = cpu.getShares();
  if (out.cpu_shares && (out.cpu_shares < 2 || out.cpu_shares > 262144))
    fail(where + ".cpu.shares", "must be 2 to 262144, not " + std::to_string(out.cpu_shares));
  out.cpu_quota = cpu.getQuota();
  out.cpu_period = cpu.getPeriod();
  if (out.cpu_quota < -1) fail(where + ".cpu.quota", "must be -1, 0 or microseconds");
  if (out.cpu_period && (out.cpu_period < 1000 || out.cpu_period > 1000000))
    fail(where + ".cpu.period", "must be 1000 to 1000000 microseconds, not " + std::to_string(out.cpu_period));
  out.cpus = text(cpu.getCpus());
  out.mems = text(cpu.getMems());
  for (auto [name, v] : {std::pair{"cpus", &out.cpus}, {"mems", &out.mems}})
    if (v->find_first_not_of("0123456789,-") != std::string::npos) fail(where + ".cpu." + name, "is not a CPU list: " + quoted(*v));
  out.pids_limit = r.getPidsLimit();
  if (out.pids_limit < -1) fail(where + ".pids.limit", "must be -1, 0 or a count");
  out.io_weight = r.getBlockIoWeight();
  if (out.io_weight && (out.io_weight < 10 || out.io_weight > 1000))
    fail(where + ".blockIO.weight", "must be 10 to 1000, not " + std::to_string(out.io_weight));
  out.unified = key_values(r.getUnified());
  for (size_t i = 0; i < out.unified.size(); ++i) {
    const auto& k = out.unified[i].first;
    if (k.empty() || k.find('/') != std::string::npos || k.find('\0') != std::string::npos || k == "." || k == ".." ||
        k.find('.') == std::string::npos)
      fail(at(where + ".unified", i), "is not a cgroup file name: " + quoted(k));
  }
  return out;
}

ContainerConfig container_config(api::Spec::Reader spec) {
  ContainerConfig out;
  if (!spec.hasProcess()) fail("process", "is missing");
  out.process = process_config(spec.getProcess());
  if (!text(spec.getProcess().getApparmorProfile()).empty()) out.ignored.push_back("process.apparmorProfile");
  if (!text(spec.getProcess().getSelinuxLabel()).empty()) out.ignored.push_back("process.selinuxLabel");
  out.root = text(spec.getRoot().getPath());
  if (out.root.empty()) fail("root.path", "is missing");
  if (out.root.find('\0') != std::string::npos) fail("root.path", "contains a NUL byte");
  out.root_readonly = spec.getRoot().getReadonly();

  const auto lx = spec.getLinux();
  out.namespaces = namespaces("linux.namespaces", lx.getNamespaces());
  out.hostname = text(spec.getHostname());
  if (out.hostname.size() > 64 || out.hostname.find_first_of(std::string_view("/\0", 2)) != std::string::npos)
    fail("hostname", "is not a host name: " + quoted(out.hostname));
  if (!out.hostname.empty() && !out.has_namespace(CLONE_NEWUTS))
    fail("hostname", "needs a new \"uts\" namespace in linux.namespaces");
  if (!out.has_namespace(CLONE_NEWNS)) fail("linux.namespaces", "needs a \"mount\" namespace: the container gets its own root");

  const auto mounts = spec.getMounts();
  for (size_t i = 0; i < mounts.size(); ++i) {
    const std::string w = at("mounts", i);
    const std::string dest = text(mounts[i].getDestination());
    check_container_path(w + ".destination", dest);
    MountSpec m = parse_mount_options(texts(mounts[i].getOptions()), w + ".options");
    m.destination = dest;
    m.type = text(mounts[i].getType());
    m.source = text(mounts[i].getSource());
    if (m.type.empty() && !m.bind) fail(w + ".type", "is missing (and the mount is no bind mount)");
    if (m.type.find('\0') != std::string::npos || m.source.find('\0') != std::string::npos) fail(w, "contains a NUL byte");
    if (m.bind && m.source.empty()) fail(w + ".source", "a bind mount needs a source");
    out.mounts.push_back(std::move(m));
  }

  out.devices = device_nodes("linux.devices", lx.getDevices());
  out.resources = cgroup_resources(lx.getResources());
  // cgroup v2 enforces device rules only through a BPF program, which the
  // agent does not load yet: said, not silently dropped.
  out.cgroups_path = text(lx.getCgroupsPath());
  if (!out.cgroups_path.empty()) {
    std::string p = out.cgroups_path[0] == '/' ? out.cgroups_path : "/" + out.cgroups_path;
    check_container_path("linux.cgroupsPath", p);
  }
  out.sysctl = key_values(lx.getSysctl());
  for (size_t i = 0; i < out.sysctl.size(); ++i) {
    const auto& k = out.sysctl[i].first;
    if (k.empty() || k.find_first_of(std::string_view("/\0", 2)) != std::string::npos || k.find("..") != std::string::npos ||
        k.front() == '.' || k.back() == '.')
      fail(at("linux.sysctl", i), "is not a sysctl name: " + quoted(k));
    if (!k.starts_with("net.") && !k.starts_with("kernel.") && !k.starts_with("fs.mqueue."))
      fail(at("linux.sysctl", i), quoted(k) + " is not namespaced (only kernel.*, net.* and fs.mqueue.* are)");
  }
  if (lx.getHasSeccomp()) out.seccomp = seccomp_spec("linux.seccomp", lx.getSeccomp(), out.ignored);
  const std::string prop = text(lx.getRootfsPropagation());
  if (!prop.empty()) {
    const auto p = propagation(prop);
    if (!p) fail("linux.rootfsPropagation", "unknown propagation " + quoted(prop));
    out.rootfs_propagation = *p;
  }
  out.masked_paths = texts(lx.getMaskedPaths());
  for (size_t i = 0; i < out.masked_paths.size(); ++i) check_container_path(at("linux.maskedPaths", i), out.masked_paths[i]);
  out.readonly_paths = texts(lx.getReadonlyPaths());
  for (size_t i = 0; i < out.readonly_paths.size(); ++i) check_container_path(at("linux.readonlyPaths", i), out.readonly_paths[i]);
  if (!text(lx.getMountLabel()).empty()) out.ignored.push_back("linux.mountLabel");
  if (spec.getAnnotations().size()) out.ignored.push_back("annotations");
  return out;
}

}  // namespace skiff::agent
