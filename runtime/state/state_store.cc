#include "runtime/state/state_store.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <charconv>
#include <climits>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <system_error>

#include "base/config_error.h"
#include "base/sys_error.h"

namespace skiff::runtime {
namespace {

using nlohmann::json;

constexpr size_t kMaxStateBytes = 16 << 20;
// Each pass unmounts what mountinfo shows; a pass can uncover mounts that lay
// beneath a detached one, so a few are allowed before giving up.
constexpr int kMaxUnmountPasses = 32;

std::string parent_dir(const std::string& path) {
  const auto slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : path.substr(0, slash);
}

std::string join(const std::string& dir, const std::string& name) {
  return dir.ends_with('/') ? dir + name : dir + "/" + name;
}

// Distinct across the processes and calls that could share a directory; a
// collision with a dead writer's file is caught by O_EXCL and retried.
std::string unique_suffix() {
  static std::atomic<uint64_t> counter{0};
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%d.%llx%09ld%llx", static_cast<int>(::getpid()),
                static_cast<unsigned long long>(ts.tv_sec), ts.tv_nsec,
                static_cast<unsigned long long>(counter.fetch_add(1)));
  return buf;
}

void write_all(int fd, std::string_view data, const std::string& what) {
  while (!data.empty()) {
    const ssize_t n = retry_eintr([&] { return ::write(fd, data.data(), data.size()); });
    if (n < 0) throw_errno(what);
    data.remove_prefix(static_cast<size_t>(n));
  }
}

// nullopt when the file is missing (ENOENT), else the whole file, at most
// `limit` bytes (more is reported as EFBIG).
std::optional<std::string> read_file(const std::string& path, size_t limit) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
  if (!fd) {
    if (errno == ENOENT) return std::nullopt;
    throw_errno("open " + path);
  }
  std::string out;
  char buf[65536];
  for (;;) {
    const ssize_t n = retry_eintr([&] { return ::read(fd.get(), buf, sizeof buf); });
    if (n < 0) throw_errno("read " + path);
    if (n == 0) return out;
    if (out.size() + static_cast<size_t>(n) > limit) throw_errno("read " + path, EFBIG);
    out.append(buf, static_cast<size_t>(n));
  }
}

struct ProcStat {
  char state;
  uint64_t start_time;
};

std::optional<ProcStat> read_proc_stat(int pid) {
  if (pid <= 0) return std::nullopt;
  const std::string path = "/proc/" + std::to_string(pid) + "/stat";
  std::optional<std::string> text;
  try {
    text = read_file(path, 4096);
  } catch (const std::system_error& e) {
    // The process may exit between open and read.
    if (e.code().value() == ESRCH) return std::nullopt;
    throw;
  }
  if (!text) return std::nullopt;
  // "pid (comm) state ppid ...": comm is any 15 bytes, ')' and spaces
  // included, so the fields start after the last ')'.
  const auto rparen = text->rfind(')');
  if (rparen == std::string::npos) throw std::runtime_error(path + ": no ')' after the command name");
  std::string_view rest = std::string_view(*text).substr(rparen + 1);
  std::vector<std::string_view> fields;  // fields[0] is field 3 (state)
  while (fields.size() < 20) {
    const auto begin = rest.find_first_not_of(" \n");
    if (begin == std::string_view::npos) break;
    rest.remove_prefix(begin);
    const auto end = std::min(rest.find_first_of(" \n"), rest.size());
    fields.push_back(rest.substr(0, end));
    rest.remove_prefix(end);
  }
  if (fields.size() < 20 || fields[0].size() != 1)
    throw std::runtime_error(path + ": fewer fields than the kernel writes");
  uint64_t start = 0;
  const auto f = fields[19];
  const auto r = std::from_chars(f.data(), f.data() + f.size(), start);
  if (r.ec != std::errc() || r.ptr != f.data() + f.size())
    throw std::runtime_error(path + ": start time is not a number");
  return ProcStat{fields[0][0], start};
}

// A value as one short line for an error message (JSON-quoted, so control
// characters and odd bytes can't break the line).
std::string show(const json& v) {
  std::string s = v.dump(-1, ' ', true, json::error_handler_t::replace);
  if (s.size() > 80) s = s.substr(0, 76) + "...";
  return s;
}

std::string quote(const std::string& s) { return show(json(s)); }

std::optional<std::string> id_problem(const std::string& id) {
  if (id.empty()) return "must not be empty";
  if (id.size() > StateStore::kMaxIdLength)
    return "longer than " + std::to_string(StateStore::kMaxIdLength) + " bytes";
  for (const char c : id) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
                    c == '+' || c == '-' || c == '.';
    if (!ok) return "only letters, digits, '_', '+', '-', '.' are allowed";
  }
  if (id == "." || id == "..") return "\".\" and \"..\" are not allowed";
  return std::nullopt;
}

class FieldReader {
 public:
  FieldReader(const json& j, const std::string& source) : j_(j), source_(source) {}

  [[noreturn]] void fail(const std::string& field, const std::string& problem) const {
    throw ConfigError(source_ + ": " + field + ": " + problem);
  }
  const json* find(const char* key) const {
    const auto it = j_.find(key);
    return it == j_.end() ? nullptr : &*it;
  }
  const json& need(const char* key) const {
    const json* v = find(key);
    if (!v) fail(key, "missing");
    return *v;
  }
  std::string string(const char* key) const {
    const json& v = need(key);
    if (!v.is_string()) fail(key, "must be a string, not " + show(v));
    return v.get<std::string>();
  }
  std::string absolute_path(const char* key, bool may_be_empty = false) const {
    std::string s = string(key);
    if (!s.starts_with('/') && !(may_be_empty && s.empty()))
      fail(key, std::string("must be an absolute path") + (may_be_empty ? " or empty" : "") + ", not " + quote(s));
    return s;
  }
  int64_t integer(const std::string& field, const json& v, int64_t min, int64_t max) const {
    if (v.is_number_unsigned()) {
      const auto u = v.get<uint64_t>();
      if (u <= static_cast<uint64_t>(max) && static_cast<int64_t>(u) >= min) return static_cast<int64_t>(u);
    } else if (v.is_number_integer()) {
      const auto i = v.get<int64_t>();
      if (i >= min && i <= max) return i;
    }
    fail(field, "must be an integer from " + std::to_string(min) + " to " + std::to_string(max) + ", not " + show(v));
  }
  int pid(const char* key) const { return static_cast<int>(integer(key, need(key), 0, INT_MAX)); }
  uint64_t u64(const char* key) const {
    const json& v = need(key);
    if (v.is_number_unsigned()) return v.get<uint64_t>();
    if (v.is_number_integer() && v.get<int64_t>() >= 0) return static_cast<uint64_t>(v.get<int64_t>());
    fail(key, "must be a non-negative integer, not " + show(v));
  }

 private:
  const json& j_;
  const std::string& source_;
};

bool valid_status(const std::string& s) {
  return s == "creating" || s == "created" || s == "running" || s == "paused" || s == "stopped";
}

// The shape only ("dddd-dd-ddTdd:dd:dd[.d{1,9}](Z|+dd:dd|-dd:dd)"): the
// writer is rfc3339_now; this catches a damaged file, not a bad calendar.
bool valid_rfc3339(std::string_view s) {
  auto matches = [&](std::string_view shape) {
    if (s.size() < shape.size()) return false;
    for (size_t i = 0; i < shape.size(); ++i)
      if (shape[i] == 'd' ? !(s[i] >= '0' && s[i] <= '9') : s[i] != shape[i]) return false;
    s.remove_prefix(shape.size());
    return true;
  };
  if (!matches("dddd-dd-ddTdd:dd:dd")) return false;
  if (!s.empty() && s[0] == '.') {
    s.remove_prefix(1);
    size_t digits = 0;
    while (digits < s.size() && s[digits] >= '0' && s[digits] <= '9') ++digits;
    if (digits < 1 || digits > 9) return false;
    s.remove_prefix(digits);
  }
  if (s == "Z") return true;
  if (s.empty() || (s[0] != '+' && s[0] != '-')) return false;
  s.remove_prefix(1);
  return matches("dd:dd") && s.empty();
}

// Checked on the way out as well as in, so a state that load would refuse
// never reaches the disk.
std::string serialize(const ContainerState& s) {
  const std::string what = "state of container " + quote(s.id);
  const json j = to_json(s);
  state_from_json(j, what);
  try {
    return j.dump(2) + "\n";
  } catch (const json::type_error&) {
    throw ConfigError(what + ": a string is not valid UTF-8");
  }
}

void make_dirs(const std::string& path, mode_t mode) {
  for (size_t pos = 1; pos <= path.size(); ++pos) {
    if (pos != path.size() && path[pos] != '/') continue;
    const std::string prefix = path.substr(0, pos);
    if (::mkdir(prefix.c_str(), mode) == 0) {
      // Exactly `mode`, whatever the umask: others must be able to reach
      // their sockets through 0711.
      if (::chmod(prefix.c_str(), mode) != 0) throw_errno("chmod " + prefix);
    } else if (errno != EEXIST) {
      throw_errno("mkdir " + prefix);
    }
  }
}

size_t depth(const std::string& path) { return static_cast<size_t>(std::count(path.begin(), path.end(), '/')); }

// mountinfo escapes space, tab, newline and backslash as \ooo.
std::string decode_mountinfo(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  auto octal = [](char c) { return c >= '0' && c <= '7'; };
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 3 < s.size() && octal(s[i + 1]) && octal(s[i + 2]) && octal(s[i + 3])) {
      out += static_cast<char>(((s[i + 1] - '0') << 6) | ((s[i + 2] - '0') << 3) | (s[i + 3] - '0'));
      i += 3;
    } else {
      out += s[i];
    }
  }
  return out;
}

}  // namespace

void write_file_atomic(const std::string& path, std::string_view content, mode_t mode) {
  const std::string dir = parent_dir(path);
  const std::string name = path.substr(path.rfind('/') + 1);  // npos + 1 == 0
  if (name.empty()) throw_errno("write " + path, EISDIR);
  UniqueFd fd;
  std::string tmp;
  for (int attempt = 0; !fd; ++attempt) {
    tmp = join(dir, "." + name + "." + unique_suffix() + ".tmp");
    fd.reset(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode));
    if (!fd && (errno != EEXIST || attempt == 16)) throw_errno("create " + tmp + " to write " + path);
  }
  try {
    if (::fchmod(fd.get(), mode) != 0) throw_errno("chmod " + tmp);
    write_all(fd.get(), content, "write " + tmp);
    if (::fsync(fd.get()) != 0) throw_errno("fsync " + tmp);
    // close can report a failed write-back (NFS), so it is checked too.
    if (::close(fd.release()) != 0) throw_errno("close " + tmp);
    if (::rename(tmp.c_str(), path.c_str()) != 0) throw_errno("rename " + tmp + " to " + path);
  } catch (...) {
    ::unlink(tmp.c_str());
    throw;
  }
  // The rename is durable only once the directory is.
  UniqueFd d(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!d) throw_errno("open " + dir + " to sync " + path);
  if (::fsync(d.get()) != 0) throw_errno("fsync " + dir + " after writing " + path);
}

std::optional<uint64_t> process_start_time(int pid) {
  const auto st = read_proc_stat(pid);
  if (!st) return std::nullopt;
  return st->start_time;
}

bool process_alive(int pid, uint64_t start_time) {
  const auto st = read_proc_stat(pid);
  // 'Z' zombie, 'X' dead (seen briefly while it is reaped).
  return st && st->state != 'Z' && st->state != 'X' && st->start_time == start_time;
}

nlohmann::json to_json(const ContainerState& s) {
  json j = {
      {"id", s.id},
      {"bundle", s.bundle},
      {"rootfs", s.rootfs},
      {"status", s.status},
      {"sandbox_pid", s.sandbox_pid},
      {"sandbox_start_time", s.sandbox_start_time},
      {"pid", s.pid},
      {"created", s.created},
      {"owner", s.owner},
      {"annotations", s.annotations},
      {"control_socket", s.control_socket},
  };
  if (s.exit_code) j["exit_code"] = *s.exit_code;
  return j;
}

ContainerState state_from_json(const nlohmann::json& j, const std::string& source) {
  if (!j.is_object()) throw ConfigError(source + ": must be a JSON object, not " + std::string(j.type_name()));
  const FieldReader r(j, source);
  ContainerState s;
  s.id = r.string("id");
  if (auto problem = id_problem(s.id)) r.fail("id", quote(s.id) + ": " + *problem);
  s.bundle = r.absolute_path("bundle");
  s.rootfs = r.absolute_path("rootfs");
  s.status = r.string("status");
  if (!valid_status(s.status))
    r.fail("status", "must be one of \"creating\", \"created\", \"running\", \"paused\", \"stopped\", not " +
                         quote(s.status));
  s.sandbox_pid = r.pid("sandbox_pid");
  s.sandbox_start_time = r.u64("sandbox_start_time");
  s.pid = r.pid("pid");
  s.created = r.string("created");
  if (!valid_rfc3339(s.created))
    r.fail("created", "must be an RFC 3339 time like \"2026-12-07T12:00:00.123456789Z\", not " + quote(s.created));
  s.owner = r.string("owner");
  if (const json* a = r.find("annotations"); a && !a->is_null()) {
    if (!a->is_object()) r.fail("annotations", "must be an object of strings, not " + show(*a));
    for (const auto& [key, value] : a->items()) {
      if (!value.is_string()) r.fail("annotations." + key, "must be a string, not " + show(value));
      s.annotations[key] = value.get<std::string>();
    }
  }
  s.control_socket = r.absolute_path("control_socket", /*may_be_empty=*/true);
  if (const json* e = r.find("exit_code"); e && !e->is_null())
    s.exit_code = static_cast<int>(r.integer("exit_code", *e, INT_MIN, INT_MAX));
  return s;
}

std::string rfc3339_now() {
  timespec ts{};
  ::clock_gettime(CLOCK_REALTIME, &ts);
  tm t{};
  ::gmtime_r(&ts.tv_sec, &t);
  char date[32];
  std::strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%S", &t);
  char out[48];
  std::snprintf(out, sizeof out, "%s.%09ldZ", date, ts.tv_nsec);
  return out;
}

std::optional<ContainerLock> ContainerLock::acquire(const std::string& path, bool block) {
  for (;;) {
    UniqueFd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600));
    if (!fd) throw_errno("open " + path);
    if (retry_eintr([&] { return ::flock(fd.get(), block ? LOCK_EX : LOCK_EX | LOCK_NB); }) != 0) {
      if (!block && errno == EWOULDBLOCK) return std::nullopt;
      throw_errno("flock " + path);
    }
    // remove() unlinks the file under its holder; whoever was waiting on that
    // inode must not count as holding the lock, or it and the next opener of
    // the path would both hold "the" lock. So: only the file the path names now.
    struct stat held {}, now {};
    if (::fstat(fd.get(), &held) != 0) throw_errno("fstat " + path);
    if (::stat(path.c_str(), &now) == 0) {
      if (now.st_dev == held.st_dev && now.st_ino == held.st_ino) return ContainerLock(path, std::move(fd));
    } else if (errno != ENOENT) {
      throw_errno("stat " + path);
    }
  }
}

StateStore::StateStore(std::string root) {
  if (root.empty()) throw_errno("state root \"\"", ENOENT);
  make_dirs(root, 0711);
  std::error_code ec;
  const auto canonical = std::filesystem::canonical(root, ec);
  if (ec) throw std::system_error(ec, "resolve state root " + root);
  if (!std::filesystem::is_directory(canonical, ec)) throw_errno("state root " + root, ENOTDIR);
  root_ = canonical.string();
}

void StateStore::check_id(const std::string& id) {
  if (auto problem = id_problem(id)) throw ConfigError("container id " + quote(id) + ": " + *problem);
}

std::string StateStore::dir_of(const std::string& id) const {
  check_id(id);
  return join(root_, id);
}

std::string StateStore::lock_path(const std::string& id) const { return dir_of(id) + ".lock"; }

ContainerLock StateStore::lock(const std::string& id) { return std::move(*ContainerLock::acquire(lock_path(id), true)); }

std::optional<ContainerLock> StateStore::try_lock(const std::string& id) {
  return ContainerLock::acquire(lock_path(id), false);
}

void StateStore::create(const ContainerState& state) {
  const std::string dir = dir_of(state.id);
  const std::string text = serialize(state);
  if (::mkdir(dir.c_str(), 0711) != 0) {
    if (errno == EEXIST) throw ConfigError("container " + quote(state.id) + " already exists");
    throw_errno("mkdir " + dir);
  }
  try {
    if (::chmod(dir.c_str(), 0711) != 0) throw_errno("chmod " + dir);
    write_file_atomic(join(dir, "state.json"), text);
  } catch (...) {
    // Nothing can be mounted in it yet: it is ours and empty but for temp files.
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
    throw;
  }
}

void StateStore::save(const ContainerState& state) {
  write_file_atomic(join(dir_of(state.id), "state.json"), serialize(state));
}

std::optional<ContainerState> StateStore::load(const std::string& id) const {
  const std::string path = join(dir_of(id), "state.json");
  std::optional<std::string> text;
  try {
    text = read_file(path, kMaxStateBytes);
  } catch (const std::system_error& e) {
    if (e.code().value() == EFBIG)
      throw ConfigError(path + ": larger than " + std::to_string(kMaxStateBytes >> 20) + " MiB");
    throw;
  }
  if (!text) return std::nullopt;
  json j;
  try {
    j = json::parse(*text);
  } catch (const json::parse_error& e) {
    // Drop nlohmann's "[json.exception.parse_error.101] " tag.
    std::string msg = e.what();
    if (const auto tag = msg.find("] "); msg.starts_with("[json.exception") && tag != std::string::npos)
      msg = msg.substr(tag + 2);
    throw ConfigError(path + ": not valid JSON: " + msg);
  }
  ContainerState s = state_from_json(j, path);
  if (s.id != id) throw ConfigError(path + ": id: " + quote(s.id) + " is not its directory's " + quote(id));
  return s;
}

std::vector<std::string> StateStore::list() const {
  namespace fs = std::filesystem;
  std::vector<std::string> ids;
  std::error_code ec;
  fs::directory_iterator it(root_, ec);
  if (ec) throw std::system_error(ec, "list " + root_);
  for (const fs::directory_iterator end; it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (id_problem(name)) continue;  // lock files, foreign entries
    std::error_code e2;
    if (!it->is_directory(e2) || it->is_symlink(e2)) continue;
    if (fs::is_regular_file(fs::symlink_status(it->path() / "state.json", e2))) ids.push_back(name);
  }
  if (ec) throw std::system_error(ec, "list " + root_);
  std::sort(ids.begin(), ids.end());
  return ids;
}

std::vector<std::string> mount_points_under(const std::string& dir) {
  std::ifstream in("/proc/self/mountinfo");
  if (!in) throw_errno("open /proc/self/mountinfo");
  const std::string prefix = dir.ends_with('/') ? dir : dir + "/";
  std::vector<std::string> out;
  std::string line;
  while (std::getline(in, line)) {
    // "id parent major:minor root mount-point options ...": field 5.
    std::string_view rest = line;
    for (int i = 0; i < 4; ++i) {
      const auto sp = rest.find(' ');
      rest = sp == std::string_view::npos ? std::string_view() : rest.substr(sp + 1);
    }
    const std::string mp = decode_mountinfo(rest.substr(0, rest.find(' ')));
    if (!mp.empty() && (mp == dir || mp.starts_with(prefix))) out.push_back(mp);
  }
  return out;
}

void StateStore::remove(const std::string& id) {
  const std::string dir = dir_of(id);
  for (int pass = 0;; ++pass) {
    auto points = mount_points_under(dir);
    if (points.empty()) break;
    if (pass == kMaxUnmountPasses)
      throw std::system_error(EBUSY, std::generic_category(), "unmount " + points.front() + " (removing " + dir + ")");
    // Deepest first; a detach of a parent takes its children along, so a child
    // found gone (EINVAL, ENOENT) is fine.
    std::stable_sort(points.begin(), points.end(),
                     [](const std::string& a, const std::string& b) { return depth(a) > depth(b); });
    for (const auto& mp : points)
      if (::umount2(mp.c_str(), MNT_DETACH | UMOUNT_NOFOLLOW) != 0 && errno != EINVAL && errno != ENOENT)
        throw_errno("unmount " + mp + " (removing " + dir + ")");
  }
  // Only now: remove_all would descend into anything still mounted.
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
  if (ec) throw std::system_error(ec, "remove " + dir);
  const std::string lock = lock_path(id);
  if (::unlink(lock.c_str()) != 0 && errno != ENOENT) throw_errno("remove " + lock);
}

std::string effective_status(const ContainerState& s) {
  return process_alive(s.sandbox_pid, s.sandbox_start_time) ? s.status : "stopped";
}

}  // namespace skiff::runtime
