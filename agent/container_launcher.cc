#include "agent/container_launcher.h"

#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <linux/openat2.h>
#include <poll.h>
#include <pty.h>
#include <sched.h>
#include <seccomp.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string_view>
#include <vector>

namespace skiff::agent {
namespace {

// ---- in the new process: report a failed step and exit ----

int g_status_fd = -1;

[[noreturn]] void die(const std::string& step, int err) {
  const std::string msg = "E" + step + (err ? std::string(": ") + std::strerror(err) : std::string());
  if (::write(g_status_fd, msg.data(), msg.size()) < 0) {
  }
  ::_exit(127);
}

void must(bool ok, const std::string& step) {
  if (!ok) die(step, errno);
}

void write_file(const std::string& path, const std::string& value, const std::string& step) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
  must(fd >= 0, step);
  must(::write(fd, value.data(), value.size()) == static_cast<ssize_t>(value.size()), step);
  ::close(fd);
}

// Opens `path` (absolute in the container) beneath `root`, symlinks resolved
// as if `root` were /, so a hostile rootfs can't point a mount outside it.
// With `create`, missing directories are made (the last one a file when
// `file` is set, for bind-mounting a file).
int open_in_root(int root, const std::string& path, bool create, bool file) {
  open_how how{};
  how.flags = O_PATH | O_CLOEXEC;
  how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
  std::string rel = path.substr(path.find_first_not_of('/') == std::string::npos ? path.size() : path.find_first_not_of('/'));
  if (rel.empty()) rel = ".";
  int fd = static_cast<int>(::syscall(SYS_openat2, root, rel.c_str(), &how, sizeof how));
  if (fd >= 0 || !create || errno != ENOENT) return fd;
  // Walk down, creating what is missing.
  int dir = ::dup(root);
  size_t i = 0;
  while (i < rel.size()) {
    const size_t j = std::min(rel.find('/', i), rel.size());
    const std::string part = rel.substr(i, j - i);
    i = j + 1;
    if (part.empty() || part == ".") continue;
    const bool last = i > rel.size();
    int next = static_cast<int>(::syscall(SYS_openat2, dir, part.c_str(), &how, sizeof how));
    if (next < 0 && errno == ENOENT) {
      if (last && file) {
        const int f = ::openat(dir, part.c_str(), O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC | O_NOFOLLOW, 0644);
        if (f >= 0) ::close(f);
      } else {
        ::mkdirat(dir, part.c_str(), 0755);
      }
      next = static_cast<int>(::syscall(SYS_openat2, dir, part.c_str(), &how, sizeof how));
    }
    ::close(dir);
    if (next < 0) return -1;
    dir = next;
  }
  return dir;
}

std::string proc_fd(int fd) { return "/proc/self/fd/" + std::to_string(fd); }

void do_mount(int root, const MountSpec& m) {
  const std::string step = "mount " + m.destination;
  bool file = false;
  if (m.bind) {
    struct stat st{};
    must(::stat(m.source.c_str(), &st) == 0, step + " (source " + m.source + ")");
    file = !S_ISDIR(st.st_mode);
  }
  const int target = open_in_root(root, m.destination, true, file);
  must(target >= 0, step);
  const std::string t = proc_fd(target);
  if (m.bind)
    must(::mount(m.source.c_str(), t.c_str(), nullptr, MS_BIND | (m.recursive_bind ? MS_REC : 0), nullptr) == 0, step);
  else {
    // The guest has cgroup v2 alone: a "cgroup" mount (runc's default spec
    // has one) is the unified hierarchy, as runc mounts it on such hosts.
    const std::string type = m.type == "cgroup" ? "cgroup2" : m.type;
    must(::mount(m.source.c_str(), t.c_str(), type.c_str(), m.flags, m.data.empty() ? nullptr : m.data.c_str()) == 0, step);
  }
  ::close(target);
  const bool remount = m.bind && (m.flags & ~MS_REC);
  if (!remount && !m.propagation) return;
  // The fd still names the covered directory: reopen to reach the new mount.
  const int mounted = open_in_root(root, m.destination, false, false);
  must(mounted >= 0, step);
  const std::string now = proc_fd(mounted);
  if (remount) must(::mount(nullptr, now.c_str(), nullptr, MS_REMOUNT | MS_BIND | m.flags, nullptr) == 0, step + " (remount)");
  if (m.propagation) must(::mount(nullptr, now.c_str(), nullptr, m.propagation, nullptr) == 0, step + " (propagation)");
  ::close(mounted);
}

// The devices every container has (OCI runtime spec, "Default Devices").
const std::vector<DeviceNode>& default_devices() {
  static const std::vector<DeviceNode> d = [] {
    std::vector<DeviceNode> v;
    auto add = [&](const char* path, int64_t maj, int64_t min) {
      DeviceNode n;
      n.type = 'c';
      n.path = path;
      n.major = maj;
      n.minor = min;
      n.file_mode = 0666;
      v.push_back(n);
    };
    add("/dev/null", 1, 3);
    add("/dev/zero", 1, 5);
    add("/dev/full", 1, 7);
    add("/dev/random", 1, 8);
    add("/dev/urandom", 1, 9);
    add("/dev/tty", 5, 0);
    return v;
  }();
  return d;
}

void make_device(int root, const DeviceNode& d) {
  const std::string step = "device " + d.path;
  const size_t slash = d.path.rfind('/');
  const int dir = open_in_root(root, d.path.substr(0, slash ? slash : 1), true, false);
  must(dir >= 0, step);
  const std::string name = d.path.substr(slash + 1);
  const std::string dir_path = proc_fd(dir) + "/" + name;
  ::unlinkat(dir, name.c_str(), 0);
  const mode_t kind = d.type == 'b' ? S_IFBLK : d.type == 'p' ? S_IFIFO : S_IFCHR;
  const mode_t mode = d.file_mode.value_or(0666) & 07777;
  must(::mknodat(dir, name.c_str(), kind | mode, d.type == 'p' ? 0 : makedev(d.major, d.minor)) == 0, step);
  must(::fchmodat(dir, name.c_str(), mode, 0) == 0, step);
  must(::fchownat(dir, name.c_str(), d.uid, d.gid, AT_SYMLINK_NOFOLLOW) == 0, step);
  ::close(dir);
}

void dev_symlinks(int root) {
  const int dev = open_in_root(root, "/dev", false, false);
  if (dev < 0) return;
  const std::pair<const char*, const char*> links[] = {
      {"/proc/self/fd", "fd"}, {"/proc/self/fd/0", "stdin"}, {"/proc/self/fd/1", "stdout"}, {"/proc/self/fd/2", "stderr"}};
  const std::string base = proc_fd(dev);
  for (auto [to, name] : links) ::symlink(to, (base + "/" + name).c_str());
  // The container's own devpts instance's ptmx, as runc links it
  // (config-linux.md#default-devices): a node here would be the guest's.
  ::unlinkat(dev, "ptmx", 0);
  ::symlink("pts/ptmx", (base + "/ptmx").c_str());
  ::close(dev);
}

void pivot(const std::string& root, bool no_pivot) {
  must(::chdir(root.c_str()) == 0, "chdir to the root " + root);
  if (no_pivot) {
    must(::mount(root.c_str(), "/", nullptr, MS_MOVE, nullptr) == 0, "move the root onto /");
    must(::chroot(".") == 0, "chroot");
  } else {
    // pivot_root(".", "."): the old root stacks under the new one, then goes.
    must(::syscall(SYS_pivot_root, ".", ".") == 0, "pivot_root");
    must(::umount2(".", MNT_DETACH) == 0, "detach the old root");
  }
  must(::chdir("/") == 0, "chdir /");
}

void mask_paths(const ContainerConfig& c) {
  for (const auto& p : c.masked_paths) {
    struct stat st{};
    if (::lstat(p.c_str(), &st) != 0) continue;  // nothing to mask
    if (S_ISDIR(st.st_mode))
      must(::mount("tmpfs", p.c_str(), "tmpfs", MS_RDONLY, nullptr) == 0, "mask " + p);
    else
      must(::mount("/dev/null", p.c_str(), nullptr, MS_BIND, nullptr) == 0, "mask " + p);
  }
  for (const auto& p : c.readonly_paths) {
    if (::access(p.c_str(), F_OK) != 0) continue;
    must(::mount(p.c_str(), p.c_str(), nullptr, MS_BIND | MS_REC, nullptr) == 0, "readonly " + p);
    must(::mount(nullptr, p.c_str(), nullptr, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_REC, nullptr) == 0, "readonly " + p);
  }
}

struct Passwd {
  uid_t uid = 0;
  gid_t gid = 0;
  std::string home = "/";
  bool found = false;
};

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  for (std::string part; std::getline(ss, part, sep);) out.push_back(part);
  return out;
}

// The colon-separated lines of one of the container's /etc files.
std::vector<std::vector<std::string>> etc_entries(const char* path, size_t min_fields) {
  std::vector<std::vector<std::string>> out;
  std::ifstream f(path);
  for (std::string line; std::getline(f, line);) {
    auto fields = split(line, ':');
    if (fields.size() >= min_fields) out.push_back(std::move(fields));
  }
  return out;
}

// /etc/passwd of the container (not NSS: the agent is static and the names
// are the image's).
Passwd look_up_user(const std::string& name, uid_t uid) {
  Passwd out;
  for (const auto& fields : etc_entries("/etc/passwd", 6)) {
    const bool match = name.empty() ? fields[2] == std::to_string(uid) : fields[0] == name;
    if (!match) continue;
    out.uid = static_cast<uid_t>(std::strtoul(fields[2].c_str(), nullptr, 10));
    out.gid = static_cast<gid_t>(std::strtoul(fields[3].c_str(), nullptr, 10));
    out.home = fields[5].empty() ? "/" : fields[5];
    out.found = true;
    break;
  }
  return out;
}

std::vector<gid_t> groups_of(const std::string& name) {
  std::vector<gid_t> out;
  for (const auto& fields : etc_entries("/etc/group", 4)) {
    for (const auto& m : split(fields[3], ','))
      if (m == name) out.push_back(static_cast<gid_t>(std::strtoul(fields[2].c_str(), nullptr, 10)));
  }
  return out;
}

// Before the uid change: dropping needs CAP_SETPCAP, which a non-root user
// loses at setuid.
void drop_bounding(uint64_t bounding) {
  for (int c = 0; c <= CAP_LAST_CAP; ++c)
    if (!(bounding >> c & 1) && ::prctl(PR_CAPBSET_READ, c) == 1)
      must(::prctl(PR_CAPBSET_DROP, c) == 0, "drop capability " + std::to_string(c) + " from the bounding set");
}

void set_capabilities(const CapabilitySets& caps) {
  __user_cap_header_struct hdr{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[2]{};
  for (int i = 0; i < 2; ++i) {
    data[i].effective = static_cast<uint32_t>(caps.effective >> (32 * i));
    data[i].permitted = static_cast<uint32_t>(caps.permitted >> (32 * i));
    data[i].inheritable = static_cast<uint32_t>(caps.inheritable >> (32 * i));
  }
  must(::syscall(SYS_capset, &hdr, data) == 0, "set capabilities");
  must(::prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) == 0, "clear ambient capabilities");
  // The kernel raises an ambient capability only if it is permitted and
  // inheritable; runc's own default spec lists ambient ones it does not make
  // inheritable, and runc goes on without them (it warns): so do we.
  const uint64_t raisable = caps.ambient & caps.permitted & caps.inheritable;
  for (int c = 0; c <= CAP_LAST_CAP; ++c)
    if (raisable >> c & 1)
      must(::prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, c, 0, 0) == 0, "raise ambient capability " + std::to_string(c));
}

scmp_filter_ctx build_seccomp(const SeccompSpec& s) {
  scmp_filter_ctx ctx = seccomp_init(s.default_action);
  if (!ctx) die("seccomp: init", 0);
  for (uint32_t arch : s.architectures) {
    const int rc = seccomp_arch_add(ctx, arch);
    if (rc != 0 && rc != -EEXIST) die("seccomp: add architecture", -rc);
  }
  for (const auto& f : s.flags) {
    if (f == "SECCOMP_FILTER_FLAG_TSYNC") seccomp_attr_set(ctx, SCMP_FLTATR_CTL_TSYNC, 1);
    if (f == "SECCOMP_FILTER_FLAG_LOG") seccomp_attr_set(ctx, SCMP_FLTATR_CTL_LOG, 1);
    if (f == "SECCOMP_FILTER_FLAG_SPEC_ALLOW") seccomp_attr_set(ctx, SCMP_FLTATR_CTL_SSB, 1);
  }
  for (const auto& r : s.rules) {
    if (r.action == s.default_action) continue;  // libseccomp refuses a rule that changes nothing
    std::vector<scmp_arg_cmp> args;
    for (const auto& a : r.args) args.push_back({a.index, static_cast<scmp_compare>(a.op), a.value, a.value_two});
    for (int nr : r.syscalls) {
      const int rc = seccomp_rule_add_array(ctx, r.action, nr, static_cast<unsigned>(args.size()), args.data());
      if (rc != 0) die("seccomp: rule for syscall " + std::to_string(nr), -rc);
    }
  }
  return ctx;
}

bool has_env(const std::vector<std::string>& env, std::string_view key) {
  for (const auto& e : env)
    if (e.size() > key.size() && e.compare(0, key.size(), key) == 0 && e[key.size()] == '=') return true;
  return false;
}

struct ChildArgs {
  const ContainerConfig* config;
  const LaunchOptions* options;
  int status_fd, start_fd, pty_slave;
};

const char* namespace_file(int clone_flag) {
  switch (clone_flag) {
    case CLONE_NEWNS: return "mnt";
    case CLONE_NEWPID: return "pid";
    case CLONE_NEWIPC: return "ipc";
    case CLONE_NEWUTS: return "uts";
    case CLONE_NEWCGROUP: return "cgroup";
    case CLONE_NEWNET: return "net";
  }
  return "";
}

[[noreturn]] void exec_process(const ChildArgs& a);

[[noreturn]] void container_init(const ChildArgs& a) {
  const ContainerConfig& c = *a.config;
  const LaunchOptions& o = *a.options;
  g_status_fd = a.status_fd;
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);

  // stdio first, so that nothing later inherits the agent's.
  if (a.pty_slave >= 0) {
    must(::setsid() >= 0, "setsid");
    must(::ioctl(a.pty_slave, TIOCSCTTY, 0) == 0, "take the terminal");
    for (int fd = 0; fd < 3; ++fd) must(::dup2(a.pty_slave, fd) == fd, "terminal as stdio");
  } else {
    const int null = ::open("/dev/null", O_RDWR | O_CLOEXEC);
    const int fds[3] = {o.stdin_fd, o.stdout_fd, o.stderr_fd};
    // Above 2 first: a source fd may be 0..2 itself.
    int moved[3];
    for (int i = 0; i < 3; ++i) {
      moved[i] = ::fcntl(fds[i] >= 0 ? fds[i] : null, F_DUPFD_CLOEXEC, 3);
      must(moved[i] >= 0, "stdio");
    }
    for (int i = 0; i < 3; ++i) must(::dup2(moved[i], i) == i, "stdio");
  }

  // The joined namespaces (a pod's) were entered before the clone, except
  // the mount namespace, which only this process may enter now.
  for (const auto& ns : c.namespaces) {
    if (ns.path.empty() || ns.clone_flag != CLONE_NEWNS) continue;
    const int fd = ::open(ns.path.c_str(), O_RDONLY | O_CLOEXEC);
    must(fd >= 0 && ::setns(fd, CLONE_NEWNS) == 0, "join the mount namespace " + ns.path);
    ::close(fd);
  }

  if (o.exec_in) {
    // Joining the container's mount namespace put us at its root already.
    exec_process(a);
  }
  // (container_config() makes sure there is a mount namespace of its own.)
  must(::mount(nullptr, "/", nullptr, MS_REC | (c.rootfs_propagation ? c.rootfs_propagation : static_cast<unsigned long>(MS_SLAVE)), nullptr) == 0,
       std::string("make / ") + (c.rootfs_propagation ? "as rootfsPropagation says" : "a slave"));
  // The root must be a mount point for pivot_root and MS_MOVE.
  must(::mount(c.root.c_str(), c.root.c_str(), nullptr, MS_BIND | MS_REC, nullptr) == 0, "bind the root " + c.root);
  const int root = ::open(c.root.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
  must(root >= 0, "open the root " + c.root);
  for (const auto& m : c.mounts) do_mount(root, m);
  for (const auto& d : default_devices()) make_device(root, d);
  for (const auto& d : c.devices) make_device(root, d);
  dev_symlinks(root);
  ::close(root);
  pivot(c.root, o.no_pivot);
  mask_paths(c);
  if (c.root_readonly) must(::mount(nullptr, "/", nullptr, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_REC, nullptr) == 0, "remount / readonly");
  if (!c.hostname.empty()) must(::sethostname(c.hostname.data(), c.hostname.size()) == 0, "sethostname");
  for (const auto& [key, value] : c.sysctl) {
    std::string path = "/proc/sys/" + key;
    for (size_t i = 10; i < path.size(); ++i)
      if (path[i] == '.') path[i] = '/';
    write_file(path, value, "sysctl " + key);
  }

  exec_process(a);
}

// The process part of the spec, in place: rlimits, user, capabilities,
// seccomp, cwd; then wait for start() and exec.
[[noreturn]] void exec_process(const ChildArgs& a) {
  const ContainerConfig& c = *a.config;
  const ProcessConfig& p = c.process;
  for (const auto& r : p.rlimits) {
    const rlimit lim{static_cast<rlim_t>(r.soft), static_cast<rlim_t>(r.hard)};
    must(::setrlimit(static_cast<__rlimit_resource>(r.resource), &lim) == 0, "setrlimit " + std::to_string(r.resource));
  }
  if (p.oom_score_adj) write_file("/proc/self/oom_score_adj", std::to_string(*p.oom_score_adj), "oom_score_adj");

  const Passwd pw = look_up_user(p.username, p.uid);
  if (!p.username.empty() && !pw.found) die("user " + p.username + ": not in the container's /etc/passwd", 0);
  const uid_t uid = p.username.empty() ? p.uid : pw.uid;
  const gid_t gid = p.username.empty() ? p.gid : pw.gid;
  std::vector<gid_t> groups = p.additional_gids;
  if (!p.username.empty())
    for (gid_t g : groups_of(p.username)) groups.push_back(g);
  std::vector<std::string> env = p.env;
  if (!has_env(env, "PATH")) env.push_back("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
  if (!has_env(env, "HOME")) env.push_back("HOME=" + pw.home);
  if (p.terminal && !has_env(env, "TERM")) env.push_back("TERM=xterm");

  scmp_filter_ctx filter = c.seccomp ? build_seccomp(*c.seccomp) : nullptr;
  if (p.no_new_privileges) must(::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0, "no_new_privileges");

  // Keep the capabilities across the uid change, then set exactly the spec's.
  drop_bounding(p.caps.bounding);
  must(::prctl(PR_SET_KEEPCAPS, 1) == 0, "keep capabilities");
  must(::setgroups(groups.size(), groups.data()) == 0, "setgroups");
  must(::setresgid(gid, gid, gid) == 0, "setgid " + std::to_string(gid));
  must(::setresuid(uid, uid, uid) == 0, "setuid " + std::to_string(uid));
  must(::prctl(PR_SET_KEEPCAPS, 0) == 0, "keep capabilities");
  set_capabilities(p.caps);
  must(::chdir(p.cwd.c_str()) == 0, "cwd " + p.cwd);
  if (p.umask) ::umask(*p.umask);

  // Ready: wait for start() (EOF without a byte: the agent gave up).
  must(::write(a.status_fd, "R", 1) == 1, "report ready");
  char go = 0;
  if (::read(a.start_fd, &go, 1) != 1) ::_exit(127);

  std::vector<char*> argv, envp;
  for (const auto& s : p.args) argv.push_back(const_cast<char*>(s.c_str()));
  argv.push_back(nullptr);
  for (const auto& s : env) envp.push_back(const_cast<char*>(s.c_str()));
  envp.push_back(nullptr);
  // The filter last: what it forbids (even execve's helpers) can't stop set-up.
  if (filter) {
    const int rc = seccomp_load(filter);
    if (rc != 0) die("seccomp: load", -rc);
  }
  environ = envp.data();
  ::execvp(argv[0], argv.data());
  die("exec " + p.args[0], errno);
}

// Everything the status pipe says until it closes.
std::string read_status(int fd, bool until_ready) {
  std::string got;
  char buf[512];
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    got.append(buf, static_cast<size_t>(n));
    if (until_ready && got == "R") break;
  }
  return got;
}

}  // namespace

void Launched::abandon() {
  if (pid_ <= 0 || started_) return;
  ::kill(pid_, SIGKILL);
  while (::waitpid(pid_, nullptr, 0) < 0 && errno == EINTR) {
  }
  pid_ = -1;
}

void Launched::start() {
  if (started_) throw LaunchError("start: the process has already started");
  if (pid_ <= 0) throw LaunchError("start: no process");
  if (::write(start_.get(), "G", 1) != 1) throw LaunchError(std::string("start: ") + std::strerror(errno));
  start_.reset();
  // EOF: exec succeeded and closed the pipe (CLOEXEC); a message: it failed.
  const std::string got = read_status(status_.get(), false);
  status_.reset();
  started_ = true;
  if (!got.empty()) throw LaunchError(got[0] == 'E' ? got.substr(1) : "start: unexpected " + got);
}

Launched create_container(const ContainerConfig& config, const LaunchOptions& options) {
  if (config.root.empty() || config.root[0] != '/') throw LaunchError("root.path: must be absolute here, not \"" + config.root + "\"");
  int status[2], start[2];
  if (::pipe2(status, O_CLOEXEC) != 0) throw LaunchError(std::string("pipe: ") + std::strerror(errno));
  Fd status_read(status[0]), status_write(status[1]);
  if (::pipe2(start, O_CLOEXEC) != 0) throw LaunchError(std::string("pipe: ") + std::strerror(errno));
  Fd start_read(start[0]), start_write(start[1]);
  Fd master, slave;
  if (config.process.terminal) {
    int m = -1, s = -1;
    winsize ws{config.process.rows, config.process.cols, 0, 0};
    if (::openpty(&m, &s, nullptr, nullptr, (ws.ws_row || ws.ws_col) ? &ws : nullptr) != 0)
      throw LaunchError(std::string("openpty: ") + std::strerror(errno));
    master.reset(m);
    slave.reset(s);
    ::fcntl(m, F_SETFD, FD_CLOEXEC);
    ::fcntl(s, F_SETFD, FD_CLOEXEC);
  }

  ContainerConfig exec_config;
  if (options.exec_in) {
    exec_config = config;
    for (auto& ns : exec_config.namespaces)
      ns.path = "/proc/" + std::to_string(options.exec_in) + "/ns/" + namespace_file(ns.clone_flag);
  }
  const ContainerConfig& cfg = options.exec_in ? exec_config : config;
  // Namespaces joined by path, except mount: entered by a helper process
  // that then clones the container with CLONE_PARENT, so the agent's own
  // namespaces never change and the container is still the agent's child.
  bool joins = false;
  for (const auto& ns : cfg.namespaces) joins = joins || (!ns.path.empty() && ns.clone_flag != CLONE_NEWNS);
  unsigned long flags = 0;
  for (const auto& ns : cfg.namespaces)
    if (ns.path.empty()) flags |= static_cast<unsigned long>(ns.clone_flag);

  const ChildArgs args{&cfg, &options, status_write.get(), start_read.get(), slave.get()};
  auto clone_init = [&](unsigned long extra) -> pid_t {
    const long pid = ::syscall(SYS_clone, flags | extra | SIGCHLD, nullptr, nullptr, nullptr, 0);
    if (pid == 0) {
      if (!options.cgroup_dir.empty()) {
        g_status_fd = args.status_fd;
        write_file(options.cgroup_dir + "/cgroup.procs", "0", "join the cgroup " + options.cgroup_dir);
      }
      container_init(args);
    }
    return static_cast<pid_t>(pid);
  };

  pid_t pid = -1;
  if (!joins) {
    if (!options.cgroup_dir.empty() && (flags & CLONE_NEWCGROUP)) {
      // The cgroup namespace is rooted where the process is at clone time:
      // join the cgroup first, from a helper, so that root is its own.
      joins = true;
    } else {
      pid = clone_init(0);
      if (pid < 0) throw LaunchError(std::string("clone: ") + std::strerror(errno));
    }
  }
  if (joins) {
    int pidpipe[2];
    if (::pipe2(pidpipe, O_CLOEXEC) != 0) throw LaunchError(std::string("pipe: ") + std::strerror(errno));
    Fd pid_read(pidpipe[0]), pid_write(pidpipe[1]);
    const pid_t helper = ::fork();
    if (helper < 0) throw LaunchError(std::string("fork: ") + std::strerror(errno));
    if (helper == 0) {
      g_status_fd = args.status_fd;
      if (!options.cgroup_dir.empty()) write_file(options.cgroup_dir + "/cgroup.procs", "0", "join the cgroup " + options.cgroup_dir);
      for (const auto& ns : cfg.namespaces) {
        if (ns.path.empty() || ns.clone_flag == CLONE_NEWNS) continue;
        const int fd = ::open(ns.path.c_str(), O_RDONLY | O_CLOEXEC);
        must(fd >= 0 && ::setns(fd, ns.clone_flag) == 0, "join the namespace " + ns.path);
        ::close(fd);
      }
      const long child = ::syscall(SYS_clone, flags | CLONE_PARENT | SIGCHLD, nullptr, nullptr, nullptr, 0);
      if (child == 0) container_init(args);
      const pid_t c = static_cast<pid_t>(child);
      if (::write(pid_write.get(), &c, sizeof c) != sizeof c) ::_exit(1);
      ::_exit(child < 0 ? 1 : 0);
    }
    pid_write.reset();
    pid_t c = -1;
    const ssize_t n = ::read(pid_read.get(), &c, sizeof c);
    int st = 0;
    ::waitpid(helper, &st, 0);
    if (n != sizeof c || c <= 0) {
      // The helper said why on the status pipe, if it could.
      status_write.reset();
      const std::string why = read_status(status_read.get(), false);
      throw LaunchError(!why.empty() && why[0] == 'E' ? why.substr(1) : "clone: the namespace helper failed");
    }
    pid = c;
  }

  status_write.reset();
  start_read.reset();
  slave.reset();
  const std::string got = read_status(status_read.get(), true);
  if (got != "R") {
    ::kill(pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
    throw LaunchError(!got.empty() && got[0] == 'E' ? got.substr(1) : "the container's set-up ended without a word");
  }
  return Launched(pid, std::move(status_read), std::move(start_write), std::move(master));
}

}  // namespace skiff::agent
