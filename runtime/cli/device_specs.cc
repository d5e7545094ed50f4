#include "runtime/cli/device_specs.h"

#include <charconv>
#include <optional>
#include <utility>
#include <vector>

#include "virtio/blk/blk_device.h"
#include "virtio/fs/fs_device.h"
#include "virtio/fs/passthrough_fs.h"

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

[[noreturn]] void bad(const std::string& option, const std::string& spec, const std::string& why,
                      const std::string& form) {
  throw ConfigError(option + " " + spec + ": " + why + " (" + form + ")");
}

std::optional<uint64_t> parse_number(const std::string& s) {
  uint64_t v = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
  return v;
}

}  // namespace

VmConfig::VirtioDeviceFactory parse_disk(const std::string& spec) {
  const std::string form = "PATH[,ro][,serial=ID]";
  const Spec s = split(spec);
  virtio::BlockConfig cfg;
  cfg.path = s.value;
  if (cfg.path.empty()) bad("--disk", spec, "no path", form);
  for (const auto& [key, value] : s.options) {
    if (key == "ro" && !value) cfg.read_only = true;
    else if (key == "serial" && value) cfg.serial = *value;
    else bad("--disk", spec, "unknown option \"" + key + "\"", form);
  }
  if (cfg.serial.size() > virtio::kBlkIdBytes)
    bad("--disk", spec, "serial is longer than " + std::to_string(virtio::kBlkIdBytes) + " bytes", form);
  return [cfg](const VmConfig::VirtioDeviceContext& ctx) {
    return std::make_shared<virtio::BlockDevice>(ctx.memory, cfg);
  };
}

VsockConfig parse_vsock(const std::string& spec) {
  const std::string form = "CID[,socket=PATH]";
  const Spec s = split(spec);
  VsockConfig cfg;
  const auto cid = parse_number(s.value);
  if (!cid) bad("--vsock", spec, "\"" + s.value + "\" is not a CID", form);
  cfg.guest_cid = *cid;
  for (const auto& [key, value] : s.options) {
    if (key == "socket" && value && !value->empty()) cfg.socket_path = *value;
    else bad("--vsock", spec, "unknown option \"" + key + "\"", form);
  }
  return cfg;
}

VmConfig::VirtioDeviceFactory parse_share(const std::string& spec) {
  const std::string form =
      "PATH,tag=TAG[,ro][,cache=none|auto|always][,writeback][,no-xattr][,queues=N][,workers=N][,dax[=MiB]]";
  uint64_t dax_mib = 0;
  const Spec s = split(spec);
  virtio::PassthroughOptions fs;
  virtio::FsConfig dev;
  fs.root = s.value;
  if (fs.root.empty()) bad("--share", spec, "no directory", form);
  for (const auto& [key, value] : s.options) {
    if (key == "tag" && value) {
      dev.tag = *value;
    } else if (key == "ro" && !value) {
      fs.read_only = true;
    } else if (key == "cache" && value) {
      if (*value == "none") fs.cache = virtio::FsCacheMode::kNone;
      else if (*value == "auto") fs.cache = virtio::FsCacheMode::kAuto;
      else if (*value == "always") fs.cache = virtio::FsCacheMode::kAlways;
      else bad("--share", spec, "cache must be none, auto or always", form);
    } else if (key == "writeback" && !value) {
      fs.writeback = true;
    } else if (key == "no-xattr" && !value) {
      fs.xattr = false;
    } else if (key == "dax") {
      // The window's struct pages cost the guest 1/64 of its size in RAM.
      const auto n = value ? parse_number(*value) : std::optional<uint64_t>(kDefaultDaxMib);
      if (!n || *n == 0 || *n % 2 || *n > (64u << 10)) bad("--share", spec, "dax= must be an even MiB count up to 65536", form);
      dax_mib = *n;
    } else if ((key == "queues" || key == "workers") && value) {
      const auto n = parse_number(*value);
      if (!n || *n == 0 || *n > 64) bad("--share", spec, key + " must be 1 to 64", form);
      (key == "queues" ? dev.request_queues : dev.workers) = static_cast<unsigned>(*n);
    } else {
      bad("--share", spec, "unknown option \"" + key + "\"", form);
    }
  }
  if (dev.tag.empty() || dev.tag.size() > virtio::kFsTagBytes)
    bad("--share", spec, "tag= must be 1 to 36 bytes", form);
  return [fs, dev, dax_mib](const VmConfig::VirtioDeviceContext& ctx) mutable {
    if (dax_mib) fs.dax = dev.dax = ctx.dax_window(dax_mib << 20);
    return std::make_shared<virtio::FsDevice>(ctx.memory, dev, std::make_shared<virtio::PassthroughFs>(fs));
  };
}

}  // namespace skiff::cli
