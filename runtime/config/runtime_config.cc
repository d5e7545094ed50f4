#include "runtime/config/runtime_config.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

// toml++ 3.3 asserts that a table header's key starts with a key character,
// but a header like "[;x]" gets there, and its parser then reports that
// error itself. Unchecked, the assert aborts a build without NDEBUG and is
// a __builtin_assume (undefined behaviour) in a clang build with it. Every
// build here runs toml++ as Debian's libtomlplusplus.so does (GCC, NDEBUG):
// its assertions off, the parse error a ConfigError.
#pragma push_macro("NDEBUG")
#undef NDEBUG
#define TOML_ASSERT(expr) static_cast<void>(0)
#include <toml++/toml.h>
#pragma pop_macro("NDEBUG")

#include <algorithm>
#include <bit>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <functional>
#include <initializer_list>
#include <utility>
#include <vector>

#include "base/printable.h"
#include "base/sys_error.h"
#include "base/unique_fd.h"

namespace skiff::runtime {
namespace {

constexpr uint32_t kMaxVcpus = 255;  // the MP table and the MADT's 8-bit APIC ids
constexpr uint64_t kMinMemoryMib = 64;
constexpr uint64_t kMemoryBlockMib = 2;  // virtio-mem's block size (virtio/mem/mem_device.h)
constexpr uint64_t kMaxDaxMib = 65536;    // the VMM's own limit (vmm/device_config.cc)
constexpr uint64_t kMaxGraceMs = 86400000;  // skiff-agent's --grace-ms limit
constexpr size_t kMaxFileBytes = 1 << 20;   // a config file, not a data set
constexpr uint64_t kMib = 1 << 20;


bool one_line(std::string_view s) {
  return std::none_of(s.begin(), s.end(), [](unsigned char c) { return c < 0x20 || c == 0x7f; });
}

std::string quoted(std::string_view s) { return "\"" + printable(s) + "\""; }

std::string type_name(toml::node_type t) {
  switch (t) {
    case toml::node_type::table: return "a table";
    case toml::node_type::array: return "an array";
    case toml::node_type::string: return "a string";
    case toml::node_type::integer: return "an integer";
    case toml::node_type::floating_point: return "a float";
    case toml::node_type::boolean: return "a boolean";
    case toml::node_type::date: return "a date";
    case toml::node_type::time: return "a time";
    case toml::node_type::date_time: return "a date-time";
    case toml::node_type::none: break;
  }
  return "nothing";
}

// toml++ keeps a table's keys sorted; errors come in the file's order, so
// the first one reported is the first one the operator meets.
std::vector<std::pair<const toml::key*, const toml::node*>> in_file_order(const toml::table& t) {
  std::vector<std::pair<const toml::key*, const toml::node*>> out;
  for (const auto& [key, value] : t) out.emplace_back(&key, &value);
  std::stable_sort(out.begin(), out.end(), [](const auto& a, const auto& b) {
    const auto& x = a.first->source().begin;
    const auto& y = b.first->source().begin;
    return std::pair(x.line, x.column) < std::pair(y.line, y.column);
  });
  return out;
}

// toml++ 3.3 (Debian 12's) classifies these code points as "unreachable"
// when it asks whether one is whitespace (marzer/tomlplusplus#190, #295):
// __builtin_unreachable(), undefined behaviour in every build, its .so too.
// They are refused before it sees them, wherever they are (a comment, a
// string), since where it asks is its business.
constexpr std::pair<char32_t, char32_t> kTomlppBadRanges[] = {
    {0x00A1, 0x0499}, {0x2C5E, 0x2FFF}, {0x3001, 0x3057}, {0xFB26, 0xFEFE}};

// Decodes leniently (overlong forms too): whatever a stricter decoder makes
// of the bytes, this sees the same code point or refuses it anyway.
void refuse_tomlpp_bad_code_points(std::string_view text, const std::string& source) {
  uint32_t line = 1;
  uint32_t column = 1;
  for (size_t i = 0; i < text.size(); ++column) {
    const auto b = static_cast<unsigned char>(text[i]);
    const size_t n = b >= 0xF0 ? 4 : b >= 0xE0 ? 3 : b >= 0xC0 ? 2 : 1;
    char32_t c = n == 4 ? b & 0x07 : n == 3 ? b & 0x0F : n == 2 ? b & 0x1F : b;
    size_t len = 1;
    while (len < n && i + len < text.size() && (static_cast<unsigned char>(text[i + len]) & 0xC0) == 0x80)
      c = (c << 6) | (static_cast<unsigned char>(text[i + len++]) & 0x3F);
    if (len == n && n > 1) {
      for (const auto& [lo, hi] : kTomlppBadRanges) {
        if (c < lo || c > hi) continue;
        char hex[16];
        std::snprintf(hex, sizeof hex, "U+%04X", static_cast<unsigned>(c));
        throw ConfigError(source + ":" + std::to_string(line) + ":" + std::to_string(column) + ": the character " +
                          hex + " is refused: toml++ 3.3 mishandles U+00A1-U+0499, U+2C5E-U+2FFF, U+3001-U+3057 "
                          "and U+FB26-U+FEFE");
      }
    }
    if (b == '\n') {
      ++line;
      column = 0;
    }
    i += len;
  }
}

// Walks one parsed document: every message says where and which field.
class Reader {
 public:
  Reader(const std::string& source, const HostResources& host) : source_(source), host_(host) {}

  [[noreturn]] void fail(const toml::source_region& at, const std::string& field, const std::string& why) const {
    throw ConfigError(source_ + ":" + std::to_string(at.begin.line) + ":" + std::to_string(at.begin.column) + ": " +
                      field + ": " + why);
  }

  uint64_t integer(const toml::node& n, const std::string& field, uint64_t lo, uint64_t hi,
                   const std::string& range = "") const {
    const auto* v = n.as_integer();
    if (!v) fail(n.source(), field, "must be an integer, not " + type_name(n.type()));
    const int64_t x = v->get();
    if (x < 0 || static_cast<uint64_t>(x) < lo || static_cast<uint64_t>(x) > hi)
      fail(n.source(), field,
           "must be " + (range.empty() ? std::to_string(lo) + " to " + std::to_string(hi) : range) + ", not " +
               std::to_string(x));
    return static_cast<uint64_t>(x);
  }

  bool boolean(const toml::node& n, const std::string& field) const {
    const auto* v = n.as_boolean();
    if (!v) fail(n.source(), field, "must be true or false, not " + type_name(n.type()));
    return v->get();
  }

  std::string string(const toml::node& n, const std::string& field) const {
    const auto* v = n.as_string();
    if (!v) fail(n.source(), field, "must be a string, not " + type_name(n.type()));
    if (!one_line(v->get())) fail(n.source(), field, "must be one line, not " + quoted(v->get()));
    return v->get();
  }

  std::string path(const toml::node& n, const std::string& field) const {
    std::string p = string(n, field);
    if (p.empty() || p[0] != '/') fail(n.source(), field, "must be an absolute path, not " + quoted(p));
    return p;
  }

  std::string one_of(const toml::node& n, const std::string& field, std::initializer_list<const char*> names) const {
    std::string s = string(n, field);
    std::string list;
    for (const char* name : names) {
      if (s == name) return s;
      list += (list.empty() ? "" : ", ") + std::string(name);
    }
    fail(n.source(), field, "must be one of " + list + ", not " + quoted(s));
  }

  using Fields = std::map<std::string_view, std::function<void(const toml::node&, const std::string&)>>;

  // Applies each key of `section` through `fields`; a key not there is a typo.
  void section(const toml::table& t, const std::string& name, const Fields& fields) const {
    for (const auto& [key, value] : in_file_order(t)) {
      const std::string field = name + "." + printable(key->str());
      const auto it = fields.find(key->str());
      if (it == fields.end()) fail(key->source(), field, value->is_table() ? "unknown table" : "unknown key");
      it->second(*value, field);
    }
  }

  const HostResources& host() const { return host_; }

 private:
  const std::string& source_;
  const HostResources& host_;
};

void read_hypervisor(const Reader& r, const toml::table& t, HypervisorConfig& h) {
  const uint64_t ram = std::max(r.host().memory_mib, kMinMemoryMib);
  r.section(t, "hypervisor",
            {
                {"kernel", [&](const toml::node& n, const std::string& f) { h.kernel = r.path(n, f); }},
                {"initrd", [&](const toml::node& n, const std::string& f) { h.initrd = r.path(n, f); }},
                {"kernel_params",
                 [&](const toml::node& n, const std::string& f) { h.kernel_params = r.string(n, f); }},
                {"default_vcpus",
                 [&](const toml::node& n, const std::string& f) {
                   h.default_vcpus = static_cast<uint32_t>(r.integer(n, f, 1, kMaxVcpus));
                 }},
                {"default_maxvcpus",
                 [&](const toml::node& n, const std::string& f) {
                   h.default_maxvcpus = static_cast<uint32_t>(r.integer(n, f, 0, kMaxVcpus));
                 }},
                {"default_memory_mib",
                 [&](const toml::node& n, const std::string& f) {
                   h.default_memory_mib = r.integer(n, f, kMinMemoryMib, ram,
                                                    "64 to " + std::to_string(ram) + " (the host's RAM in MiB)");
                 }},
                {"default_maxmemory_mib",
                 [&](const toml::node& n, const std::string& f) {
                   h.default_maxmemory_mib = r.integer(n, f, 0, ram,
                                                       "0 to " + std::to_string(ram) + " (the host's RAM in MiB)");
                 }},
                {"hugepages", [&](const toml::node& n, const std::string& f) { h.hugepages = r.boolean(n, f); }},
                {"shared_fs_cache",
                 [&](const toml::node& n, const std::string& f) {
                   h.shared_fs_cache = r.one_of(n, f, {"none", "auto", "always"});
                 }},
                {"dax_mib",
                 [&](const toml::node& n, const std::string& f) {
                   const std::string range = "0 or a power of two from 2 to " + std::to_string(kMaxDaxMib);
                   const uint64_t v = r.integer(n, f, 0, kMaxDaxMib, range);
                   if (v != 0 && (v < 2 || !std::has_single_bit(v)))
                     r.fail(n.source(), f, "must be " + range + ", not " + std::to_string(v));
                   h.dax_mib = v;
                 }},
                {"fs_workers",
                 [&](const toml::node& n, const std::string& f) {
                   h.fs_workers = static_cast<uint32_t>(r.integer(n, f, 1, 64));
                 }},
                {"boot_timeout_ms",
                 [&](const toml::node& n, const std::string& f) {
                   h.boot_timeout_ms = static_cast<uint32_t>(r.integer(n, f, 1000, 600000));
                 }},
            });
  // Checked once both are known, at whichever of the two the file set.
  if (h.default_maxvcpus != 0 && h.default_maxvcpus < h.default_vcpus) {
    const toml::node* at = t.get("default_maxvcpus");
    if (!at) at = t.get("default_vcpus");
    if (at)
      r.fail(at->source(), "hypervisor.default_maxvcpus",
             "must be 0 or at least default_vcpus (" + std::to_string(h.default_vcpus) + "), not " +
                 std::to_string(h.default_maxvcpus));
  }
  if (h.default_maxmemory_mib != 0 && h.default_maxmemory_mib < h.default_memory_mib) {
    const toml::node* at = t.get("default_maxmemory_mib");
    if (!at) at = t.get("default_memory_mib");
    if (at)
      r.fail(at->source(), "hypervisor.default_maxmemory_mib",
             "must be 0 or at least default_memory_mib (" + std::to_string(h.default_memory_mib) + "), not " +
                 std::to_string(h.default_maxmemory_mib));
  }
}

void read_agent(const Reader& r, const toml::table& t, AgentConfig& a) {
  r.section(t, "agent",
            {
                {"port",
                 [&](const toml::node& n, const std::string& f) {
                   a.port = static_cast<uint32_t>(r.integer(n, f, 1, 0x7fffffff));
                 }},
                {"grace_ms",
                 [&](const toml::node& n, const std::string& f) {
                   a.grace_ms = static_cast<uint32_t>(r.integer(n, f, 0, kMaxGraceMs));
                 }},
                {"debug_console",
                 [&](const toml::node& n, const std::string& f) { a.debug_console = r.boolean(n, f); }},
            });
}

void read_runtime(const Reader& r, const toml::table& t, RuntimeSection& s) {
  r.section(t, "runtime",
            {
                {"root", [&](const toml::node& n, const std::string& f) { s.root = r.path(n, f); }},
                {"log_level",
                 [&](const toml::node& n, const std::string& f) {
                   s.log_level = r.one_of(n, f, {"debug", "info", "warn", "error"});
                 }},
                {"log_format",
                 [&](const toml::node& n, const std::string& f) { s.log_format = r.one_of(n, f, {"json", "text"}); }},
                {"static_sandbox_resource_mgmt",
                 [&](const toml::node& n, const std::string& f) {
                   s.static_sandbox_resource_mgmt = r.boolean(n, f);
                 }},
            });
}

// --- annotations -----------------------------------------------------------

[[noreturn]] void bad_annotation(const char* name, const std::string& value, const std::string& why) {
  throw ConfigError(std::string("annotation ") + name + ": " + why + ", not " + quoted(value));
}

// Digits only: no sign, exponent, fraction or spaces, as Kubernetes writes them.
uint64_t annotation_number(const char* name, const std::string& value, uint64_t lo, uint64_t hi,
                           const std::string& range) {
  uint64_t v = 0;
  const auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), v);
  if (value.empty() || ec != std::errc() || end != value.data() + value.size() || v < lo || v > hi)
    bad_annotation(name, value, "must be an integer " + range);
  return v;
}

uint32_t resolved_max_vcpus(const HypervisorConfig& h, const HostResources& host) {
  const uint32_t max = h.default_maxvcpus != 0 ? h.default_maxvcpus : std::clamp(host.cpus, 1u, kMaxVcpus);
  return std::max(max, h.default_vcpus);
}

std::string joined(const std::string& a, const std::string& b) {
  if (a.empty()) return b;
  if (b.empty()) return a;
  return a + " " + b;
}

}  // namespace

HostResources host_resources() {
  HostResources host;
  const long cpus = ::sysconf(_SC_NPROCESSORS_ONLN);
  const long pages = ::sysconf(_SC_PHYS_PAGES);
  const long page_size = ::sysconf(_SC_PAGESIZE);
  host.cpus = cpus > 0 ? static_cast<uint32_t>(std::min<long>(cpus, UINT32_MAX)) : 1;
  if (pages > 0 && page_size > 0)
    host.memory_mib = static_cast<uint64_t>(pages) * static_cast<uint64_t>(page_size) / kMib;
  return host;
}

RuntimeConfig default_config(const std::string& kernel, const std::string& initrd) {
  RuntimeConfig c;
  c.hypervisor.kernel = kernel;
  c.hypervisor.initrd = initrd;
  c.source = kBuiltInDefaults;
  return c;
}

RuntimeConfig parse_config(std::string_view toml, const std::string& source_name, const RuntimeConfig& defaults) {
  return parse_config(toml, source_name, defaults, host_resources());
}

RuntimeConfig parse_config(std::string_view toml, const std::string& source_name, const RuntimeConfig& defaults,
                           const HostResources& host) {
  const std::string where = printable(source_name);
  refuse_tomlpp_bad_code_points(toml, where);
  toml::table doc;
  try {
    doc = toml::parse(toml, source_name);
  } catch (const toml::parse_error& e) {
    const auto& at = e.source().begin;
    throw ConfigError(where + ":" + std::to_string(at.line) + ":" + std::to_string(at.column) + ": " +
                      printable(e.description()));
  }
  const Reader r(where, host);
  RuntimeConfig c = defaults;
  c.source = source_name;
  const std::map<std::string_view, std::function<void(const toml::table&)>> sections = {
      {"hypervisor", [&](const toml::table& t) { read_hypervisor(r, t, c.hypervisor); }},
      {"agent", [&](const toml::table& t) { read_agent(r, t, c.agent); }},
      {"runtime", [&](const toml::table& t) { read_runtime(r, t, c.runtime); }},
  };
  for (const auto& [key, value] : in_file_order(doc)) {
    const std::string name = printable(key->str());
    const auto it = sections.find(key->str());
    if (it == sections.end()) r.fail(key->source(), name, value->is_table() ? "unknown table" : "unknown key");
    if (!value->is_table()) r.fail(value->source(), name, "must be a table, not " + type_name(value->type()));
    it->second(*value->as_table());
  }
  return c;
}

RuntimeConfig load_config(const std::string& path, bool explicit_path, const RuntimeConfig& defaults) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) {
    if (errno == ENOENT && !explicit_path) {
      RuntimeConfig c = defaults;
      c.source = kBuiltInDefaults;
      return c;
    }
    if (errno == ENOENT) throw ConfigError(printable(path) + ": no such config file");
    throw_errno("open config file " + printable(path));
  }
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) throw_errno("stat config file " + printable(path));
  if (!S_ISREG(st.st_mode)) throw ConfigError(printable(path) + ": the config file is not a regular file");
  std::string text;
  char buf[8192];
  for (;;) {
    const ssize_t n = retry_eintr([&] { return ::read(fd.get(), buf, sizeof buf); });
    if (n < 0) throw_errno("read config file " + printable(path));
    if (n == 0) break;
    text.append(buf, static_cast<size_t>(n));
    if (text.size() > kMaxFileBytes)
      throw ConfigError(printable(path) + ": the config file is over " + std::to_string(kMaxFileBytes) + " bytes");
  }
  return parse_config(text, path, defaults);
}

SandboxSizing size_sandbox(const RuntimeConfig& config, const std::map<std::string, std::string>& annotations,
                           const std::vector<ContainerLimits>& containers) {
  return size_sandbox(config, annotations, containers, host_resources());
}

SandboxSizing size_sandbox(const RuntimeConfig& config, const std::map<std::string, std::string>& annotations,
                           const std::vector<ContainerLimits>& containers, const HostResources& host) {
  const HypervisorConfig& h = config.hypervisor;
  const uint64_t ram = std::max(host.memory_mib, kMinMemoryMib);
  SandboxSizing s{};
  s.max_vcpus = resolved_max_vcpus(h, host);
  s.vcpus = std::min(h.default_vcpus, s.max_vcpus);
  s.memory_mib = h.default_memory_mib;
  s.extra_kernel_params = h.kernel_params;

  if (!config.runtime.static_sandbox_resource_mgmt) {
    uint64_t vcpus = h.default_vcpus;
    uint64_t memory = h.default_memory_mib;
    for (size_t i = 0; i < containers.size(); ++i) {
      const ContainerLimits& c = containers[i];
      const std::string which = "container " + std::to_string(i);
      // Negative, zero or NaN: no limit (OCI's -1 quota), so nothing to add.
      if (c.cpus && *c.cpus > 0) {
        const double want = std::ceil(*c.cpus);
        if (!(want <= static_cast<double>(host.cpus))) {
          char cpus[32];
          std::snprintf(cpus, sizeof cpus, "%g", *c.cpus);
          throw ConfigError(which + ": a CPU limit of " + cpus + " is more than the host's " +
                            std::to_string(host.cpus) + " CPUs");
        }
        vcpus = std::min<uint64_t>(vcpus + static_cast<uint64_t>(want), s.max_vcpus);
      }
      if (c.memory_bytes && *c.memory_bytes > 0) {
        const auto bytes = static_cast<uint64_t>(*c.memory_bytes);
        const uint64_t mib = bytes / kMib + (bytes % kMib != 0);
        if (mib > ram)
          throw ConfigError(which + ": a memory limit of " + std::to_string(mib) + " MiB is more than the host's " +
                            std::to_string(ram) + " MiB");
        memory = std::min(memory + mib, ram);
      }
    }
    s.vcpus = static_cast<uint32_t>(std::min<uint64_t>(vcpus, s.max_vcpus));
    s.memory_mib = std::max(h.default_memory_mib, memory);
  }

  if (const auto it = annotations.find(kVcpusAnnotation); it != annotations.end())
    s.vcpus = static_cast<uint32_t>(annotation_number(
        kVcpusAnnotation, it->second, 1, s.max_vcpus, "from 1 to " + std::to_string(s.max_vcpus) + " (max_vcpus)"));
  if (const auto it = annotations.find(kMemoryAnnotation); it != annotations.end())
    s.memory_mib = annotation_number(kMemoryAnnotation, it->second, kMinMemoryMib, ram,
                                     "from 64 to " + std::to_string(ram) + " (the host's RAM in MiB)");
  if (const auto it = annotations.find(kKernelParamsAnnotation); it != annotations.end()) {
    if (!one_line(it->second)) bad_annotation(kKernelParamsAnnotation, it->second, "must be one line");
    s.extra_kernel_params = joined(s.extra_kernel_params, it->second);
  }
  // The room to grow: whole virtio-mem blocks (2 MiB) above the boot memory.
  if (h.default_maxmemory_mib > s.memory_mib) {
    s.max_memory_mib = h.default_maxmemory_mib - (h.default_maxmemory_mib - s.memory_mib) % kMemoryBlockMib;
    if (s.max_memory_mib == s.memory_mib) s.max_memory_mib = 0;
  }
  return s;
}

}  // namespace skiff::runtime
