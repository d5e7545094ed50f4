#pragma once
// The host directory one sandbox's virtio-fs share serves (one tag per
// sandbox, as Kata's "kataShared"), with a subdirectory per container:
//
//   <dir>/<container id>/rootfs      the bundle's rootfs (containerd's
//                                    snapshotter mount), bind-mounted
//   <dir>/<container id>/volumes/<i> each bind-mount volume, in order
//
// Bind mounts are made MS_SLAVE, so what the host mounts inside a source
// later shows up in the guest, but nothing mounted here leaks back to the
// host. Read-only rootfs or volumes are remounted read-only here, so the host
// kernel refuses writes whatever the guest sends (the FUSE server need not be
// trusted for it). Only the top mount is remounted: submounts of a recursive
// bind keep their own flags, as with runc.
//
// Needs CAP_SYS_ADMIN in the mount namespace (the runtime runs as root).
#include <mutex>
#include <string>
#include <vector>

namespace skiff::runtime {

struct VolumeShare {
  std::string source;  // host path (a directory or a file)
  bool read_only = false;
};

struct ContainerShare {
  std::string rootfs;                // relative to the share's root, e.g. "c1/rootfs"
  std::vector<std::string> volumes;  // relative to the share's root, in the order given
};

class SandboxShare {
 public:
  // Creates `dir` (mode 0700; its parent must exist). Throws
  // std::system_error naming the path.
  explicit SandboxShare(std::string dir);
  // Unmounts and removes every container still there, then `dir`.
  ~SandboxShare();
  SandboxShare(const SandboxShare&) = delete;
  SandboxShare& operator=(const SandboxShare&) = delete;

  const std::string& dir() const { return dir_; }

  // Bind-mounts a container's rootfs and volumes. All or nothing: on failure
  // what was mounted is undone and std::system_error (with the path) or
  // std::invalid_argument (a container id that is not a plain name, or one
  // already shared) is thrown.
  ContainerShare add_container(const std::string& container_id, const std::string& rootfs, bool rootfs_read_only,
                               const std::vector<VolumeShare>& volumes);
  // Unmounts (lazily, so a guest still holding files open can't make it
  // fail) and removes the container's subdirectory. Unknown ids are a no-op.
  void remove_container(const std::string& container_id);
  std::vector<std::string> containers() const;

  // A container id usable as one path component: [A-Za-z0-9][A-Za-z0-9_.-]*,
  // at most 128 bytes (containerd and CRI ids are 64 hex digits).
  static bool valid_container_id(const std::string& id);

 private:
  struct Entry {
    std::string id;
    std::vector<std::string> mounts;  // absolute mount points, in mount order
  };
  void undo(Entry& e);

  std::string dir_;
  mutable std::mutex mu_;
  std::vector<Entry> entries_;
};

}  // namespace skiff::runtime
