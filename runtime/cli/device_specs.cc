#include "runtime/cli/device_specs.h"

#include <charconv>
#include <optional>
#include <utility>
#include <vector>

#include "base/printable.h"

namespace skiff::cli {
namespace {

struct Spec {
  std::string value;                                                // before the first comma
  std::vector<std::pair<std::string, std::optional<std::string>>> options;  // key or key=value
};

Spec split(const std::string& spec) {
  Spec out;
  size_t start = 0;
  bool first = true;
  for (;;) {
    const size_t comma = spec.find(',', start);
    std::string part = spec.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    if (first) {
      out.value = std::move(part);
      first = false;
    } else {
      const size_t eq = part.find('=');
      if (eq == std::string::npos) out.options.emplace_back(std::move(part), std::nullopt);
      else out.options.emplace_back(part.substr(0, eq), part.substr(eq + 1));
    }
    if (comma == std::string::npos) return out;
    start = comma + 1;
  }
}

constexpr uint64_t kDefaultDaxMib = 256;
constexpr size_t kSerialBytes = 20;  // virtio-blk GET_ID
constexpr size_t kTagBytes = 36;     // virtio-fs tag


[[noreturn]] void bad(const std::string& option, const std::string& spec, const std::string& why,
                      const std::string& form) {
  throw ConfigError(option + " " + printable(spec) + ": " + printable(why) + " (" + form + ")");
}

std::optional<uint64_t> parse_number(const std::string& s) {
  uint64_t v = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
  return v;
}

}  // namespace

DiskConfig parse_disk(const std::string& spec) {
  const std::string form = "PATH[,ro][,serial=ID][,id=ID]";
  const Spec s = split(spec);
  DiskConfig cfg;
  cfg.path = s.value;
  if (cfg.path.empty()) bad("--disk", spec, "no path", form);
  for (const auto& [key, value] : s.options) {
    if (key == "ro" && !value) cfg.read_only = true;
    else if (key == "serial" && value) cfg.serial = *value;
    else if (key == "id" && value && !value->empty()) cfg.id = *value;
    else bad("--disk", spec, "unknown option \"" + key + "\"", form);
  }
  if (cfg.serial.size() > kSerialBytes)
    bad("--disk", spec, "serial is longer than " + std::to_string(kSerialBytes) + " bytes", form);
  return cfg;
}

VsockConfig parse_vsock(const std::string& spec) {
  const std::string form = "CID[,socket=PATH][,id=ID]";
  const Spec s = split(spec);
  VsockConfig cfg;
  const auto cid = parse_number(s.value);
  if (!cid) bad("--vsock", spec, "\"" + s.value + "\" is not a CID", form);
  cfg.guest_cid = *cid;
  for (const auto& [key, value] : s.options) {
    if (key == "socket" && value && !value->empty()) cfg.socket_path = *value;
    else if (key == "id" && value && !value->empty()) cfg.id = *value;
    else bad("--vsock", spec, "unknown option \"" + key + "\"", form);
  }
  if (cfg.guest_cid < 3 || cfg.guest_cid >= 0xffffffffull)
    bad("--vsock", spec, "CID " + s.value + " is reserved: use 3 to 4294967294", form);
  return cfg;
}

ShareConfig parse_share(const std::string& spec) {
  const std::string form =
      "PATH,tag=TAG[,ro][,cache=none|auto|always][,writeback][,no-xattr][,queues=N][,workers=N][,dax[=MiB]][,id=ID]";
  const Spec s = split(spec);
  ShareConfig cfg;
  cfg.path = s.value;
  if (cfg.path.empty()) bad("--share", spec, "no directory", form);
  for (const auto& [key, value] : s.options) {
    if (key == "tag" && value) {
      cfg.tag = *value;
    } else if (key == "id" && value && !value->empty()) {
      cfg.id = *value;
    } else if (key == "ro" && !value) {
      cfg.read_only = true;
    } else if (key == "cache" && value) {
      if (*value == "none") cfg.cache = ShareCache::None;
      else if (*value == "auto") cfg.cache = ShareCache::Auto;
      else if (*value == "always") cfg.cache = ShareCache::Always;
      else bad("--share", spec, "cache must be none, auto or always", form);
    } else if (key == "writeback" && !value) {
      cfg.writeback = true;
    } else if (key == "no-xattr" && !value) {
      cfg.xattr = false;
    } else if (key == "dax") {
      // The window's struct pages cost the guest 1/64 of its size in RAM.
      const auto n = value ? parse_number(*value) : std::optional<uint64_t>(kDefaultDaxMib);
      if (!n || *n == 0 || *n % 2 || *n > (64u << 10)) bad("--share", spec, "dax= must be an even MiB count up to 65536", form);
      cfg.dax_mib = *n;
    } else if ((key == "queues" || key == "workers") && value) {
      const auto n = parse_number(*value);
      if (!n || *n == 0 || *n > 64) bad("--share", spec, key + " must be 1 to 64", form);
      (key == "queues" ? cfg.queues : cfg.workers) = static_cast<unsigned>(*n);
    } else {
      bad("--share", spec, "unknown option \"" + key + "\"", form);
    }
  }
  if (cfg.tag.empty() || cfg.tag.size() > kTagBytes) bad("--share", spec, "tag= must be 1 to 36 bytes", form);
  return cfg;
}

}  // namespace skiff::cli
