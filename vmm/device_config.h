#pragma once
// The devices of a machine as plain data: what the CLI's --disk/--share/
// --vsock, the TOML config and the control API all produce, and what the
// device manager (vmm/device_manager.h) builds models from. Nothing here
// knows a device model; ids name devices for lookup, removal and hotplug.
#include <cstdint>
#include <optional>
#include <string>
#include <variant>

namespace skiff {

enum class DiskBackend { Auto, IoUring, ThreadPool };

// virtio-blk over an image file or block device; the first disk is /dev/vda.
struct DiskConfig {
  std::string id;
  std::string path;
  bool read_only = false;
  std::string serial;  // GET_ID, at most 20 bytes
  DiskBackend backend = DiskBackend::Auto;
  unsigned queues = 1;
};

enum class ShareCache { None, Auto, Always };

// virtio-fs: a host directory served in process (mount -t virtiofs TAG DIR).
struct ShareConfig {
  std::string id;
  std::string path;
  std::string tag;  // 1 to 36 bytes
  bool read_only = false;
  ShareCache cache = ShareCache::Auto;
  bool writeback = false;
  bool xattr = true;
  unsigned queues = 1;   // request queues
  unsigned workers = 4;  // threads running FUSE requests
  uint64_t dax_mib = 0;  // a DAX cache window of this size; 0: none
};

// virtio-vsock: the agent's channel.
struct VsockConfig {
  std::string id;
  uint64_t guest_cid = 3;   // 0-2 are reserved, 0xffffffff is VMADDR_CID_ANY
  std::string socket_path;  // Unix socket front end (Firecracker's hybrid vsock); empty: none
};

using DeviceConfig = std::variant<DiskConfig, ShareConfig, VsockConfig>;

enum class DeviceKind { Disk, Share, Vsock };
std::string to_string(DeviceKind);

DeviceKind kind_of(const DeviceConfig&);
const std::string& id_of(const DeviceConfig&);

// Throws ConfigError (base/config_error.h) with one line naming the device
// for what no device of its kind can be: an empty path, a tag or serial too
// long, a reserved CID, zero queues, an odd DAX size.
void validate(const DeviceConfig&);

}  // namespace skiff
