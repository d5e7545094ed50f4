#include "runtime/oci/oci_spec.h"

#include <capnp/message.h>
#include <fcntl.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <limits>
#include <type_traits>
#include <utility>

#include "base/config_error.h"
#include "base/printable.h"
#include "base/sys_error.h"
#include "base/unique_fd.h"

namespace skiff::runtime::oci {
namespace {

using json = nlohmann::json;
namespace fs = std::filesystem;

constexpr int kMaxDepth = 64;
constexpr size_t kMaxConfigBytes = 16u << 20;

// A value for an error line: printable, escaped, and short enough for one line.
std::string shown(std::string_view s) { return quoted(s, 120); }

[[noreturn]] void fail(const std::string& where, const std::string& why) { throw ConfigError(where + ": " + why); }

const char* kind(const json& v) {
  switch (v.type()) {
    case json::value_t::null: return "null";
    case json::value_t::object: return "an object";
    case json::value_t::array: return "an array";
    case json::value_t::string: return "a string";
    case json::value_t::boolean: return "a boolean";
    case json::value_t::binary: return "binary data";
    case json::value_t::discarded: return "nothing";
    default: return "a number";
  }
}

std::string at(const std::string& where, size_t i) { return where + "[" + std::to_string(i) + "]"; }
std::string keyed(const std::string& where, const std::string& key) { return where + "[" + shown(key) + "]"; }

capnp::Text::Reader text(const std::string& s) { return {s.c_str(), s.size()}; }

std::string string_of(const json& v, const std::string& where) {
  if (!v.is_string()) fail(where, std::string("must be a string, not ") + kind(v));
  return v.get<std::string>();
}

bool bool_of(const json& v, const std::string& where) {
  if (!v.is_boolean()) fail(where, std::string("must be true or false, not ") + kind(v));
  return v.get<bool>();
}

// An integer that fits T, as Go's encoding/json reads one: no fractions, no
// exponents that make one, nothing out of T's range.
template <typename T>
T integer_of(const json& v, const std::string& where) {
  constexpr T lo = std::numeric_limits<T>::min(), hi = std::numeric_limits<T>::max();
  const auto range = [&] { return "must be " + std::to_string(lo) + " to " + std::to_string(hi) + ", not "; };
  if (v.is_number_unsigned()) {
    const auto u = v.get<uint64_t>();
    if (u > static_cast<uint64_t>(hi)) fail(where, range() + std::to_string(u));
    return static_cast<T>(u);
  }
  if (v.is_number_integer()) {
    const auto s = v.get<int64_t>();
    if constexpr (std::is_unsigned_v<T>) {
      if (s < 0 || static_cast<uint64_t>(s) > static_cast<uint64_t>(hi)) fail(where, range() + std::to_string(s));
    } else {
      if (s < static_cast<int64_t>(lo) || s > static_cast<int64_t>(hi)) fail(where, range() + std::to_string(s));
    }
    return static_cast<T>(s);
  }
  if (v.is_number_float()) fail(where, "must be an integer, not " + v.dump());
  fail(where, std::string("must be an integer, not ") + kind(v));
}

std::vector<std::string> strings_of(const json& v, const std::string& where) {
  if (!v.is_array()) fail(where, std::string("must be an array of strings, not ") + kind(v));
  std::vector<std::string> out;
  out.reserve(v.size());
  for (size_t i = 0; i < v.size(); ++i) out.push_back(string_of(v[i], at(where, i)));
  return out;
}

const json& array_of(const json& v, const std::string& where) {
  if (!v.is_array()) fail(where, std::string("must be an array, not ") + kind(v));
  return v;
}

// {"key": "value", ...} in the object's (sorted) order.
std::vector<std::pair<std::string, std::string>> string_map_of(const json& v, const std::string& where) {
  if (!v.is_object()) fail(where, std::string("must be an object of strings, not ") + kind(v));
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& [k, value] : v.items()) out.emplace_back(k, string_of(value, keyed(where, k)));
  return out;
}

bool absolute(const std::string& p) { return !p.empty() && p[0] == '/'; }

// One JSON object and where it sits in config.json, with typed lookups of its
// members. An absent member and a null one are the same (Go reads null as the
// zero value).
class Obj {
 public:
  Obj(const json& v, std::string where) : v_(v), where_(std::move(where)) {
    if (v_.is_object()) return;
    if (where_.empty()) throw ConfigError(std::string("must be a JSON object, not ") + kind(v_));
    fail(where_, std::string("must be an object, not ") + kind(v_));
  }

  const std::string& where() const { return where_; }
  std::string path(const char* key) const { return where_.empty() ? key : where_ + "." + key; }

  const json* find(const char* key) const {
    const auto it = v_.find(key);
    if (it == v_.end() || it->is_null()) return nullptr;
    return &*it;
  }
  const json& required(const char* key) const {
    const json* v = find(key);
    if (!v) fail(path(key), "is missing");
    return *v;
  }

  std::optional<std::string> str(const char* key) const {
    if (const json* v = find(key)) return string_of(*v, path(key));
    return std::nullopt;
  }
  std::optional<bool> boolean(const char* key) const {
    if (const json* v = find(key)) return bool_of(*v, path(key));
    return std::nullopt;
  }
  template <typename T>
  std::optional<T> integer(const char* key) const {
    if (const json* v = find(key)) return integer_of<T>(*v, path(key));
    return std::nullopt;
  }
  std::optional<std::vector<std::string>> strs(const char* key) const {
    if (const json* v = find(key)) return strings_of(*v, path(key));
    return std::nullopt;
  }
  std::optional<Obj> obj(const char* key) const {
    if (const json* v = find(key)) return Obj(*v, path(key));
    return std::nullopt;
  }
  const json* array(const char* key) const {
    if (const json* v = find(key)) return &array_of(*v, path(key));
    return nullptr;
  }
  std::optional<std::vector<std::pair<std::string, std::string>>> string_map(const char* key) const {
    if (const json* v = find(key)) return string_map_of(*v, path(key));
    return std::nullopt;
  }

 private:
  const json& v_;
  std::string where_;
};

// Sets a capnp text list from strings; `init` is the builder's initX.
template <typename Init>
void set_texts(const std::vector<std::string>& v, Init&& init) {
  auto list = init(static_cast<unsigned>(v.size()));
  for (unsigned i = 0; i < v.size(); ++i) list.set(i, text(v[i]));
}

template <typename Init>
void set_key_values(const std::vector<std::pair<std::string, std::string>>& kv, Init&& init) {
  auto list = init(static_cast<unsigned>(kv.size()));
  for (unsigned i = 0; i < kv.size(); ++i) {
    list[i].setKey(text(kv[i].first));
    list[i].setValue(text(kv[i].second));
  }
}

// ---- process ----

void convert_capabilities(const Obj& c, api::Capabilities::Builder out) {
  if (auto v = c.strs("bounding")) set_texts(*v, [&](unsigned n) { return out.initBounding(n); });
  if (auto v = c.strs("effective")) set_texts(*v, [&](unsigned n) { return out.initEffective(n); });
  if (auto v = c.strs("inheritable")) set_texts(*v, [&](unsigned n) { return out.initInheritable(n); });
  if (auto v = c.strs("permitted")) set_texts(*v, [&](unsigned n) { return out.initPermitted(n); });
  if (auto v = c.strs("ambient")) set_texts(*v, [&](unsigned n) { return out.initAmbient(n); });
}

void convert_user(const Obj& u, api::User::Builder out) {
  if (auto v = u.integer<uint32_t>("uid")) out.setUid(*v);
  if (auto v = u.integer<uint32_t>("gid")) out.setGid(*v);
  if (auto v = u.integer<uint32_t>("umask")) {
    out.setUmask(*v);
    out.setHasUmask(true);
  }
  if (const json* gids = u.array("additionalGids")) {
    auto list = out.initAdditionalGids(static_cast<unsigned>(gids->size()));
    for (unsigned i = 0; i < gids->size(); ++i) list.set(i, integer_of<uint32_t>((*gids)[i], at(u.path("additionalGids"), i)));
  }
  if (auto v = u.str("username")) out.setUsername(text(*v));
}

void convert_process(const Obj& p, api::ProcessSpec::Builder out) {
  if (auto v = p.boolean("terminal")) out.setTerminal(*v);
  if (auto size = p.obj("consoleSize")) {
    auto ws = out.initConsoleSize();
    if (auto v = size->integer<uint16_t>("height")) ws.setRows(*v);
    if (auto v = size->integer<uint16_t>("width")) ws.setCols(*v);
  }
  if (auto u = p.obj("user")) convert_user(*u, out.initUser());

  // runc needs a program for create and exec alike.
  const auto args = strings_of(p.required("args"), p.path("args"));
  if (args.empty()) fail(p.path("args"), "must name the program to run, not be empty");
  if (args[0].empty()) fail(at(p.path("args"), 0), "must name the program to run, not be empty");
  set_texts(args, [&](unsigned n) { return out.initArgs(n); });
  if (auto v = p.strs("env")) set_texts(*v, [&](unsigned n) { return out.initEnv(n); });
  const std::string cwd = string_of(p.required("cwd"), p.path("cwd"));
  if (!absolute(cwd)) fail(p.path("cwd"), "must be an absolute path, not " + shown(cwd));
  out.setCwd(text(cwd));

  if (auto c = p.obj("capabilities")) convert_capabilities(*c, out.initCapabilities());
  if (const json* rl = p.array("rlimits")) {
    auto list = out.initRlimits(static_cast<unsigned>(rl->size()));
    for (unsigned i = 0; i < rl->size(); ++i) {
      const Obj r((*rl)[i], at(p.path("rlimits"), i));
      list[i].setType(text(string_of(r.required("type"), r.path("type"))));
      list[i].setHard(integer_of<uint64_t>(r.required("hard"), r.path("hard")));
      list[i].setSoft(integer_of<uint64_t>(r.required("soft"), r.path("soft")));
    }
  }
  if (auto v = p.boolean("noNewPrivileges")) out.setNoNewPrivileges(*v);
  if (auto v = p.integer<int32_t>("oomScoreAdj")) {
    out.setOomScoreAdj(*v);
    out.setHasOomScoreAdj(true);
  }
  if (auto v = p.str("apparmorProfile")) out.setApparmorProfile(text(*v));
  if (auto v = p.str("selinuxLabel")) out.setSelinuxLabel(text(*v));
}

// ---- linux.resources ----

void convert_resources(const Obj& r, api::Resources::Builder out) {
  if (const json* devs = r.array("devices")) {
    auto list = out.initDevices(static_cast<unsigned>(devs->size()));
    for (unsigned i = 0; i < devs->size(); ++i) {
      const Obj d((*devs)[i], at(r.path("devices"), i));
      list[i].setAllow(bool_of(d.required("allow"), d.path("allow")));
      if (auto v = d.str("type")) list[i].setType(text(*v));
      if (auto v = d.integer<int64_t>("major")) list[i].setMajor(*v);
      if (auto v = d.integer<int64_t>("minor")) list[i].setMinor(*v);
      if (auto v = d.str("access")) list[i].setAccess(text(*v));
    }
  }
  if (auto mem = r.obj("memory")) {
    auto m = out.getMemory();
    if (auto v = mem->integer<int64_t>("limit")) m.setLimit(*v);
    if (auto v = mem->integer<int64_t>("reservation")) m.setReservation(*v);
    if (auto v = mem->integer<int64_t>("swap")) m.setSwap(*v);
  }
  if (auto cpu = r.obj("cpu")) {
    auto c = out.getCpu();
    if (auto v = cpu->integer<uint64_t>("shares")) c.setShares(*v);
    if (auto v = cpu->integer<int64_t>("quota")) c.setQuota(*v);
    if (auto v = cpu->integer<uint64_t>("period")) c.setPeriod(*v);
    if (auto v = cpu->str("cpus")) c.setCpus(text(*v));
    if (auto v = cpu->str("mems")) c.setMems(text(*v));
  }
  if (auto pids = r.obj("pids"))
    if (auto v = pids->integer<int64_t>("limit")) out.setPidsLimit(*v);
  if (auto io = r.obj("blockIO"))
    if (auto v = io->integer<uint16_t>("weight")) out.setBlockIoWeight(*v);
  if (auto v = r.string_map("unified")) set_key_values(*v, [&](unsigned n) { return out.initUnified(n); });
}

// ---- linux ----

constexpr std::string_view kNamespaceTypes[] = {"pid", "network", "mount", "ipc", "uts", "user", "cgroup", "time"};

void convert_namespaces(const json& list, const std::string& where, api::Linux::Builder lx) {
  auto out = lx.initNamespaces(static_cast<unsigned>(list.size()));
  for (unsigned i = 0; i < list.size(); ++i) {
    const Obj n(list[i], at(where, i));
    const std::string type = string_of(n.required("type"), n.path("type"));
    bool known = false;
    for (auto t : kNamespaceTypes) known = known || t == type;
    if (!known) fail(n.path("type"), "unknown namespace type " + shown(type));
    out[i].setType(text(type));
    // A path names a host namespace (a netns from CNI, another container's):
    // the guest can't join it, so the container gets a new one there.
    (void)n.str("path");
  }
}

void convert_devices(const json& list, const std::string& where, api::Linux::Builder lx) {
  auto out = lx.initDevices(static_cast<unsigned>(list.size()));
  for (unsigned i = 0; i < list.size(); ++i) {
    const Obj d(list[i], at(where, i));
    out[i].setType(text(string_of(d.required("type"), d.path("type"))));
    out[i].setPath(text(string_of(d.required("path"), d.path("path"))));
    if (auto v = d.integer<int64_t>("major")) out[i].setMajor(*v);
    if (auto v = d.integer<int64_t>("minor")) out[i].setMinor(*v);
    if (auto v = d.integer<uint32_t>("fileMode")) {
      out[i].setFileMode(*v);
      out[i].setHasFileMode(true);
    }
    if (auto v = d.integer<uint32_t>("uid")) out[i].setUid(*v);
    if (auto v = d.integer<uint32_t>("gid")) out[i].setGid(*v);
  }
}

void convert_seccomp(const Obj& s, api::Seccomp::Builder out) {
  out.setDefaultAction(text(string_of(s.required("defaultAction"), s.path("defaultAction"))));
  if (auto v = s.integer<uint32_t>("defaultErrnoRet")) {
    out.setDefaultErrnoRet(*v);
    out.setHasDefaultErrnoRet(true);
  }
  if (auto v = s.strs("architectures")) set_texts(*v, [&](unsigned n) { return out.initArchitectures(n); });
  if (auto v = s.strs("flags")) set_texts(*v, [&](unsigned n) { return out.initFlags(n); });
  const json* calls = s.array("syscalls");
  if (!calls) return;
  auto list = out.initSyscalls(static_cast<unsigned>(calls->size()));
  for (unsigned i = 0; i < calls->size(); ++i) {
    const Obj c((*calls)[i], at(s.path("syscalls"), i));
    auto sc = list[i];
    set_texts(strings_of(c.required("names"), c.path("names")), [&](unsigned n) { return sc.initNames(n); });
    sc.setAction(text(string_of(c.required("action"), c.path("action"))));
    if (auto v = c.integer<uint32_t>("errnoRet")) {
      sc.setErrnoRet(*v);
      sc.setHasErrnoRet(true);
    }
    const json* args = c.array("args");
    if (!args) continue;
    auto al = sc.initArgs(static_cast<unsigned>(args->size()));
    for (unsigned j = 0; j < args->size(); ++j) {
      const Obj a((*args)[j], at(c.path("args"), j));
      al[j].setIndex(integer_of<uint32_t>(a.required("index"), a.path("index")));
      al[j].setValue(integer_of<uint64_t>(a.required("value"), a.path("value")));
      if (auto v = a.integer<uint64_t>("valueTwo")) al[j].setValueTwo(*v);
      al[j].setOp(text(string_of(a.required("op"), a.path("op"))));
    }
  }
}

// systemd's expansion of a slice name: "a-b.slice" -> "a.slice/a-b.slice".
std::string expand_slice(const std::string& slice, const std::string& where, const std::string& whole) {
  const std::string suffix = ".slice";
  if (slice.size() <= suffix.size() || !slice.ends_with(suffix))
    fail(where, "the slice of " + shown(whole) + " must end in \".slice\"");
  const std::string name = slice.substr(0, slice.size() - suffix.size());
  if (name == "-") return "";
  std::string path, prefix;
  size_t i = 0;
  while (i <= name.size()) {
    const size_t j = std::min(name.find('-', i), name.size());
    const std::string part = name.substr(i, j - i);
    if (part.empty()) fail(where, "the slice of " + shown(whole) + " is not a slice name");
    path += (path.empty() ? "" : "/") + prefix + part + suffix;
    prefix += part + "-";
    i = j + 1;
  }
  return path;
}

}  // namespace

// The agent puts a container's cgroup under the sandbox's own, so any form
// becomes a path relative to it: runc's cgroupfs "/a/b" (or "a/b") keeps its
// components, systemd's "slice:prefix:name" becomes the unit's path as
// systemd would lay it out.
std::string guest_cgroups_path(const std::string& p, const std::string& where) {
  if (p.find('\0') != std::string::npos) fail(where, "contains a NUL byte");
  std::string out;
  if (p.find(':') != std::string::npos) {
    const size_t a = p.find(':'), b = p.find(':', a + 1);
    if (b == std::string::npos || p.find(':', b + 1) != std::string::npos)
      fail(where, "must be \"/path\" or systemd's \"slice:prefix:name\", not " + shown(p));
    std::string slice = p.substr(0, a), prefix = p.substr(a + 1, b - a - 1), name = p.substr(b + 1);
    if (p.find('/') != std::string::npos) fail(where, "a systemd \"slice:prefix:name\" has no \"/\": " + shown(p));
    if (name.empty()) fail(where, "the name of " + shown(p) + " is empty");
    if (slice.empty()) slice = "system.slice";
    const std::string unit = name.ends_with(".slice") ? name : (prefix.empty() ? name : prefix + "-" + name) + ".scope";
    out = expand_slice(slice, where, p);
    return out.empty() ? unit : out + "/" + unit;
  }
  size_t i = 0;
  while (i < p.size()) {
    const size_t j = std::min(p.find('/', i), p.size());
    const std::string part = p.substr(i, j - i);
    if (part == "..") fail(where, "must not contain \"..\": " + shown(p));
    if (!part.empty() && part != ".") out += (out.empty() ? "" : "/") + part;
    i = j + 1;
  }
  return out;
}

namespace {

void convert_linux(const Obj& l, api::Linux::Builder out) {
  if (const json* ns = l.array("namespaces")) convert_namespaces(*ns, l.path("namespaces"), out);
  if (const json* devs = l.array("devices")) convert_devices(*devs, l.path("devices"), out);
  if (auto r = l.obj("resources")) convert_resources(*r, out.initResources());
  if (auto v = l.str("cgroupsPath")) out.setCgroupsPath(text(guest_cgroups_path(*v, l.path("cgroupsPath"))));
  if (auto v = l.string_map("sysctl")) set_key_values(*v, [&](unsigned n) { return out.initSysctl(n); });
  if (auto s = l.obj("seccomp")) {
    convert_seccomp(*s, out.initSeccomp());
    out.setHasSeccomp(true);
  }
  if (auto v = l.str("rootfsPropagation")) out.setRootfsPropagation(text(*v));
  if (auto v = l.strs("maskedPaths")) set_texts(*v, [&](unsigned n) { return out.initMaskedPaths(n); });
  if (auto v = l.strs("readonlyPaths")) set_texts(*v, [&](unsigned n) { return out.initReadonlyPaths(n); });
  if (auto v = l.str("mountLabel")) out.setMountLabel(text(*v));
}

// ---- mounts ----

void convert_mounts(const json& list, const BindSourceMapper& map_bind_source, api::Spec::Builder spec) {
  auto out = spec.initMounts(static_cast<unsigned>(list.size()));
  for (unsigned i = 0; i < list.size(); ++i) {
    const Obj m(list[i], at("mounts", i));
    const std::string dest = string_of(m.required("destination"), m.path("destination"));
    if (!absolute(dest)) fail(m.path("destination"), "must be an absolute path, not " + shown(dest));
    const std::string type = m.str("type").value_or("");
    std::string source = m.str("source").value_or("");
    auto options = m.strs("options").value_or(std::vector<std::string>{});
    bool bind = false, ro = false;
    for (const auto& o : options) {
      bind = bind || o == "bind" || o == "rbind";
      ro = ro || o == "ro";
    }
    if (type == "bind" && !bind) options.push_back("bind");
    if (type == "bind" || bind) {
      if (source.empty()) fail(m.path("source"), "a bind mount needs a source");
      source = map_bind_source(source, ro);
    }
    out[i].setDestination(text(dest));
    if (!type.empty()) out[i].setType(text(type));
    if (m.find("source") || !source.empty()) out[i].setSource(text(source));
    if (m.find("options") || !options.empty()) set_texts(options, [&](unsigned n) { return out[i].initOptions(n); });
  }
}

void convert_spec(const json& config, const std::string& guest_rootfs, const BindSourceMapper& map_bind_source,
                  api::Spec::Builder out) {
  const Obj c(config, "");
  if (auto p = c.obj("process")) convert_process(*p, out.initProcess());
  auto root = out.initRoot();
  root.setPath(text(guest_rootfs));
  if (auto r = c.obj("root"))
    if (auto v = r->boolean("readonly")) root.setReadonly(*v);
  if (auto v = c.str("hostname")) out.setHostname(text(*v));
  if (const json* mounts = c.array("mounts")) convert_mounts(*mounts, map_bind_source, out);
  if (auto l = c.obj("linux")) convert_linux(*l, out.initLinux());
  if (auto v = c.string_map("annotations")) set_key_values(*v, [&](unsigned n) { return out.initAnnotations(n); });
}

// Runs `f`, putting `prefix` before the one line of any ConfigError it throws.
template <typename F>
void with_prefix(const std::string& prefix, F&& f) {
  try {
    f();
  } catch (const ConfigError& e) {
    throw ConfigError(prefix + e.what());
  }
}

// ---- the bundle ----

void check_version(const Obj& c) {
  const std::string v = string_of(c.required("ociVersion"), "ociVersion");
  if (v.empty()) fail("ociVersion", "is empty");
  if (!(v.size() >= 3 && v.compare(0, 2, "1.") == 0 && v[2] >= '0' && v[2] <= '9'))
    fail("ociVersion", "must be a runtime-spec version 1.x, not " + shown(v));
}

std::vector<Hook> hooks_of(const Obj& h, const char* phase) {
  std::vector<Hook> out;
  const json* list = h.array(phase);
  if (!list) return out;
  for (size_t i = 0; i < list->size(); ++i) {
    const Obj o((*list)[i], at(h.path(phase), i));
    Hook hook;
    hook.path = string_of(o.required("path"), o.path("path"));
    if (!absolute(hook.path)) fail(o.path("path"), "must be an absolute path, not " + shown(hook.path));
    if (hook.path.find('\0') != std::string::npos) fail(o.path("path"), "contains a NUL byte");
    hook.args = o.strs("args").value_or(std::vector<std::string>{});
    hook.env = o.strs("env").value_or(std::vector<std::string>{});
    for (const auto* l : {&hook.args, &hook.env})
      for (const auto& s : *l)
        if (s.find('\0') != std::string::npos) fail(o.path(l == &hook.args ? "args" : "env"), "contains a NUL byte");
    hook.timeout_s = o.integer<int>("timeout");
    if (hook.timeout_s && *hook.timeout_s <= 0)
      fail(o.path("timeout"), "must be greater than zero, not " + std::to_string(*hook.timeout_s));
    out.push_back(std::move(hook));
  }
  return out;
}

Hooks hooks_of(const Obj& c) {
  Hooks out;
  const auto h = c.obj("hooks");
  if (!h) return out;
  out.prestart = hooks_of(*h, "prestart");
  out.create_runtime = hooks_of(*h, "createRuntime");
  out.create_container = hooks_of(*h, "createContainer");
  out.start_container = hooks_of(*h, "startContainer");
  out.poststart = hooks_of(*h, "poststart");
  out.poststop = hooks_of(*h, "poststop");
  return out;
}

// The fields of Bundle, from a config the conversion has checked already.
void fill_bundle(const Obj& c, Bundle& b) {
  const Obj process(c.required("process"), "process");
  b.terminal = process.boolean("terminal").value_or(false);
  const Obj root(c.required("root"), "root");
  const std::string path = string_of(root.required("path"), "root.path");
  if (path.empty()) fail("root.path", "is empty");
  if (path.find('\0') != std::string::npos) fail("root.path", "contains a NUL byte");
  b.rootfs = (fs::path(b.dir) / path).lexically_normal().string();
  if (b.rootfs.size() > 1 && b.rootfs.back() == '/') b.rootfs.pop_back();
  b.rootfs_readonly = root.boolean("readonly").value_or(false);
  b.hooks = hooks_of(c);
  if (auto a = c.string_map("annotations"))
    for (auto& [k, v] : *a) b.annotations[k] = v;
  const auto linux = c.obj("linux");
  const auto res = linux ? linux->obj("resources") : std::nullopt;
  if (!res) return;
  if (auto mem = res->obj("memory"))
    if (auto limit = mem->integer<int64_t>("limit"); limit && *limit > 0) b.memory_limit = *limit;
  if (auto cpu = res->obj("cpu")) {
    const auto quota = cpu->integer<int64_t>("quota");
    const auto period = cpu->integer<uint64_t>("period");
    if (quota && period && *quota > 0 && *period > 0) b.cpu_limit = static_cast<double>(*quota) / static_cast<double>(*period);
  }
}

std::string config_file(const std::string& abs_dir) { return (abs_dir == "/" ? "" : abs_dir) + "/config.json"; }

std::string absolute_dir(const std::string& dir) {
  std::error_code ec;
  fs::path p = fs::absolute(dir.empty() ? "." : dir, ec);
  if (ec) p = dir;
  std::string s = p.lexically_normal().string();
  while (s.size() > 1 && s.back() == '/') s.pop_back();
  return s;
}

}  // namespace

json parse_json_text(std::string_view text, const std::string& label) {
  const json::parser_callback_t limit_depth = [&](int depth, json::parse_event_t event, json&) {
    if ((event == json::parse_event_t::object_start || event == json::parse_event_t::array_start) && depth >= kMaxDepth)
      throw ConfigError(label + ": invalid JSON: nested deeper than " + std::to_string(kMaxDepth) + " levels");
    return true;
  };
  try {
    return json::parse(text.begin(), text.end(), limit_depth);
  } catch (const json::parse_error& e) {
    // nlohmann's what(): "[json.exception.parse_error.101] parse error at line 1, column 2: why".
    std::string why = e.what();
    const size_t bracket = why.find("] ");
    if (bracket != std::string::npos) why.erase(0, bracket + 2);
    if (const size_t colon = why.find(": "); why.starts_with("parse error") && colon != std::string::npos) why.erase(0, colon + 2);
    for (char& ch : why)
      if (static_cast<unsigned char>(ch) < 0x20 || ch == 0x7f) ch = '?';
    throw ConfigError(label + ": invalid JSON at byte " + std::to_string(e.byte) + ": " + why);
  } catch (const json::exception& e) {
    throw ConfigError(label + ": invalid JSON: " + e.what());
  }
}

Bundle parse_bundle(const std::string& dir, std::string_view config_json) {
  Bundle b;
  b.dir = absolute_dir(dir);
  const std::string file = config_file(b.dir);
  json config = parse_json_text(config_json, file);
  with_prefix(file + ": ", [&] {
    const Obj c(config, "");
    check_version(c);
    (void)Obj(c.required("process"), "process");
    (void)Obj(c.required("root"), "root");
    // Converting checks every field the agent gets; the message is thrown away.
    capnp::MallocMessageBuilder scratch;
    convert_spec(config, "/", [](const std::string& s, bool) { return s; }, scratch.initRoot<api::Spec>());
    fill_bundle(c, b);
    struct stat st {};
    if (::stat(b.rootfs.c_str(), &st) != 0) fail("root.path", shown(b.rootfs) + ": " + std::strerror(errno));
    if (!S_ISDIR(st.st_mode)) fail("root.path", shown(b.rootfs) + " is not a directory");
  });
  b.config = std::move(config);  // moved: copying a JSON tree recurses
  return b;
}

Bundle load_bundle(const std::string& dir) {
  const std::string abs = absolute_dir(dir);
  const std::string file = config_file(abs);
  UniqueFd fd(::open(file.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) throw ConfigError(file + ": cannot read: " + std::strerror(errno));
  std::string text;
  char buf[65536];
  for (;;) {
    const ssize_t n = retry_eintr([&] { return ::read(fd.get(), buf, sizeof buf); });
    if (n < 0) throw ConfigError(file + ": cannot read: " + std::strerror(errno));
    if (n == 0) break;
    text.append(buf, static_cast<size_t>(n));
    if (text.size() > kMaxConfigBytes) throw ConfigError(file + ": is larger than " + std::to_string(kMaxConfigBytes >> 20) + " MiB");
  }
  return parse_bundle(abs, text);
}

void to_agent_spec(const json& config, const std::string& guest_rootfs, const BindSourceMapper& map_bind_source,
                   api::Spec::Builder out) {
  with_prefix("config.json: ", [&] { convert_spec(config, guest_rootfs, map_bind_source, out); });
}

void to_agent_spec(const Bundle& bundle, const std::string& guest_rootfs, const BindSourceMapper& map_bind_source,
                   api::Spec::Builder out) {
  const BindSourceMapper resolved = [&](const std::string& source, bool ro) {
    return map_bind_source(absolute(source) ? source : (fs::path(bundle.dir) / source).lexically_normal().string(), ro);
  };
  with_prefix(config_file(bundle.dir) + ": ", [&] { convert_spec(bundle.config, guest_rootfs, resolved, out); });
}

void to_agent_process(const json& process, api::ProcessSpec::Builder out) { convert_process(Obj(process, "process"), out); }

void to_agent_resources(const json& resources, api::Resources::Builder out) {
  convert_resources(Obj(resources, "resources"), out);
}

json default_spec() {
  // runc 1.1's `runc spec` without its ambient capabilities: they are not
  // inheritable there, so the kernel can't raise them and runtime-tools'
  // validator refuses the file (runc 1.2 dropped them too).
  return json::parse(R"({
  "ociVersion": "1.0.2-dev",
  "process": {
    "terminal": true,
    "user": {"uid": 0, "gid": 0},
    "args": ["sh"],
    "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"],
    "cwd": "/",
    "capabilities": {
      "bounding": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
      "effective": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
      "permitted": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]
    },
    "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
    "noNewPrivileges": true
  },
  "root": {"path": "rootfs", "readonly": true},
  "hostname": "runc",
  "mounts": [
    {"destination": "/proc", "type": "proc", "source": "proc"},
    {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
    {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
     "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
    {"destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
    {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]},
    {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]},
    {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup", "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]}
  ],
  "linux": {
    "resources": {"devices": [{"allow": false, "access": "rwm"}]},
    "namespaces": [{"type": "pid"}, {"type": "network"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}],
    "maskedPaths": ["/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats", "/proc/timer_list",
                    "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware", "/proc/scsi"],
    "readonlyPaths": ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]
  }
})");
}

json features() {
  // What agent/container_spec accepts: its mount flags, propagation and bind
  // options, namespaces, seccomp actions and operators.
  json f;
  f["ociVersionMin"] = "1.0.0";
  f["ociVersionMax"] = "1.1.0";
  f["hooks"] = {"prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"};
  std::vector<std::string> options = {
      "ro",       "rw",         "nosuid",      "suid",          "nodev",    "dev",          "noexec",    "exec",
      "sync",     "async",      "dirsync",     "remount",       "mand",     "nomand",       "noatime",   "atime",
      "nodiratime", "diratime", "relatime",    "norelatime",    "strictatime", "nostrictatime", "lazytime", "nolazytime",
      "silent",   "loud",       "bind",        "rbind",         "private",  "rprivate",     "shared",    "rshared",
      "slave",    "rslave",     "unbindable",  "runbindable"};
  std::sort(options.begin(), options.end());
  f["mountOptions"] = options;
  f["linux"]["namespaces"] = {"cgroup", "ipc", "mount", "network", "pid", "uts"};
  f["linux"]["capabilities"] = {
      "CAP_CHOWN",          "CAP_DAC_OVERRIDE",   "CAP_DAC_READ_SEARCH", "CAP_FOWNER",          "CAP_FSETID",
      "CAP_KILL",           "CAP_SETGID",         "CAP_SETUID",          "CAP_SETPCAP",         "CAP_LINUX_IMMUTABLE",
      "CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST", "CAP_NET_ADMIN",      "CAP_NET_RAW",         "CAP_IPC_LOCK",
      "CAP_IPC_OWNER",      "CAP_SYS_MODULE",     "CAP_SYS_RAWIO",       "CAP_SYS_CHROOT",      "CAP_SYS_PTRACE",
      "CAP_SYS_PACCT",      "CAP_SYS_ADMIN",      "CAP_SYS_BOOT",        "CAP_SYS_NICE",        "CAP_SYS_RESOURCE",
      "CAP_SYS_TIME",       "CAP_SYS_TTY_CONFIG", "CAP_MKNOD",           "CAP_LEASE",           "CAP_AUDIT_WRITE",
      "CAP_AUDIT_CONTROL",  "CAP_SETFCAP",        "CAP_MAC_OVERRIDE",    "CAP_MAC_ADMIN",       "CAP_SYSLOG",
      "CAP_WAKE_ALARM",     "CAP_BLOCK_SUSPEND",  "CAP_AUDIT_READ",      "CAP_PERFMON",         "CAP_BPF",
      "CAP_CHECKPOINT_RESTORE"};
  // The agent writes cgroup v2 files under the sandbox's cgroup itself; no
  // systemd is asked for units.
  f["linux"]["cgroup"] = {{"v1", false}, {"v2", true}, {"systemd", false}, {"systemdUser", false}};
  f["linux"]["seccomp"]["enabled"] = true;
  f["linux"]["seccomp"]["actions"] = {"SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO", "SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS",
                                      "SCMP_ACT_KILL_THREAD", "SCMP_ACT_LOG", "SCMP_ACT_TRACE", "SCMP_ACT_TRAP"};
  f["linux"]["seccomp"]["operators"] = {"SCMP_CMP_EQ", "SCMP_CMP_GE", "SCMP_CMP_GT", "SCMP_CMP_LE",
                                        "SCMP_CMP_LT", "SCMP_CMP_MASKED_EQ", "SCMP_CMP_NE"};
  f["linux"]["seccomp"]["archs"] = {"SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM",       "SCMP_ARCH_MIPS",        "SCMP_ARCH_MIPS64",
                                    "SCMP_ARCH_MIPS64N32", "SCMP_ARCH_MIPSEL",  "SCMP_ARCH_MIPSEL64",    "SCMP_ARCH_MIPSEL64N32",
                                    "SCMP_ARCH_PPC",     "SCMP_ARCH_PPC64",     "SCMP_ARCH_PPC64LE",     "SCMP_ARCH_S390",
                                    "SCMP_ARCH_S390X",   "SCMP_ARCH_X32",       "SCMP_ARCH_X86",         "SCMP_ARCH_X86_64"};
  f["linux"]["apparmor"]["enabled"] = false;
  f["linux"]["selinux"]["enabled"] = false;
  f["annotations"] = {{"io.skiff.runtime", "skiff"}};
  return f;
}

}  // namespace skiff::runtime::oci
