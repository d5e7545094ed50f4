#include "vmm/device_config.h"

#include "base/config_error.h"

namespace skiff {
namespace {

constexpr size_t kSerialBytes = 20;  // virtio-blk GET_ID
constexpr size_t kTagBytes = 36;     // virtio-fs tag
constexpr unsigned kMaxQueues = 64;
constexpr uint64_t kMaxDaxMib = 64u << 10;

[[noreturn]] void bad(const std::string& what, const std::string& id, const std::string& why) {
  throw ConfigError(what + " " + (id.empty() ? std::string("(no id)") : "\"" + id + "\"") + ": " + why);
}

void check(const DiskConfig& d) {
  if (d.path.empty()) bad("disk", d.id, "no path");
  if (d.serial.size() > kSerialBytes) bad("disk", d.id, "serial is longer than 20 bytes");
  if (d.queues == 0 || d.queues > kMaxQueues) bad("disk", d.id, "queues must be 1 to 64");
}

void check(const ShareConfig& s) {
  if (s.path.empty()) bad("share", s.id, "no directory");
  if (s.tag.empty() || s.tag.size() > kTagBytes) bad("share", s.id, "tag must be 1 to 36 bytes");
  if (s.queues == 0 || s.queues > kMaxQueues) bad("share", s.id, "queues must be 1 to 64");
  if (s.workers == 0 || s.workers > kMaxQueues) bad("share", s.id, "workers must be 1 to 64");
  // The window's struct pages cost the guest 1/64 of its size in RAM.
  if (s.dax_mib % 2 || s.dax_mib > kMaxDaxMib) bad("share", s.id, "the DAX window must be an even MiB count up to 65536");
}

void check(const VsockConfig& v) {
  if (v.guest_cid < 3 || v.guest_cid >= 0xffffffffull)
    bad("vsock", v.id, "guest CID " + std::to_string(v.guest_cid) + " is reserved: use 3 to 4294967294");
}

}  // namespace

std::string to_string(DeviceKind k) {
  switch (k) {
    case DeviceKind::Disk: return "disk";
    case DeviceKind::Share: return "share";
    case DeviceKind::Vsock: return "vsock";
  }
  return "unknown";
}

DeviceKind kind_of(const DeviceConfig& c) {
  return std::visit(
      [](const auto& d) {
        using T = std::decay_t<decltype(d)>;
        if constexpr (std::is_same_v<T, DiskConfig>) return DeviceKind::Disk;
        else if constexpr (std::is_same_v<T, ShareConfig>) return DeviceKind::Share;
        else return DeviceKind::Vsock;
      },
      c);
}

const std::string& id_of(const DeviceConfig& c) {
  return std::visit([](const auto& d) -> const std::string& { return d.id; }, c);
}

void validate(const DeviceConfig& c) {
  std::visit([](const auto& d) { check(d); }, c);
}

}  // namespace skiff
