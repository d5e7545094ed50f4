#pragma once
// The FUSE server behind virtio-fs: serves a host directory to the guest from
// inside the VMM process (no virtiofsd). Protocol: <linux/fuse.h> 7.31..7.38.
//
// Containment, as in virtiofsd: every inode the guest knows is an
// O_PATH|O_NOFOLLOW fd in a nodeid table (same host (dev, ino) -> same
// nodeid, nodeid 1 = the root); every guest name is checked to be a single
// component and resolved relative to its parent's fd with openat2
// (RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS) or a *at()
// call that does not follow a final symlink. Symlinks are never followed on
// the host. Operations on an inode itself use its O_PATH fd (fstat,
// fchownat/utimensat with AT_EMPTY_PATH, readlinkat) or, where the kernel has
// no fd-based form that accepts O_PATH, the fd's /proc/self/fd/N magic link,
// which names exactly the held inode (never a path that could be swapped).
//
// OPEN reopens the held inode through /proc/self/fd/N rather than its parent
// and a name: a name may point elsewhere by now (a rename in the guest or on
// the host), the magic link can only be the inode the guest looked up. Only
// regular files are opened that way (a symlink gets ELOOP, FIFOs and device
// nodes ENXIO: the guest kernel serves those itself, and a host open would
// block a worker or reach a host device); directories are opened as "."
// beneath their own O_PATH fd. CREATE always uses O_EXCL and opens an
// existing name only after seeing it is a regular file, through its inode.
//
// We run as root and never change thread credentials: the guest kernel checks
// permissions itself (virtio-fs mounts with default_permissions); files the
// guest creates are chowned to the caller's (mapped) uid/gid afterwards.
//
// POSIX locks are OFD locks on the handle's fd, so their owner is the guest's
// open file, not its lock_owner: two fds of one guest process conflict, and
// FLUSH (a close in the guest) drops every lock taken through that handle.
// SETLKW polls a non-blocking lock with backoff for setlkw_timeout_ms, then
// answers EAGAIN. FUSE_LK_FLOCK requests are flock() on the handle's fd.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "virtio/fs/fuse_handler.h"
#include "memory/dax_window.h"

namespace skiff::virtio {

// As virtiofsd's --cache: entry/attr timeouts 0 / 1 s / 86400 s; kNone opens
// files with FOPEN_DIRECT_IO, kAlways with FOPEN_KEEP_CACHE (and directories
// with FOPEN_CACHE_DIR).
enum class FsCacheMode { kNone, kAuto, kAlways };

struct PassthroughOptions {
  std::string root;  // host directory shared
  FsCacheMode cache = FsCacheMode::kAuto;
  bool writeback = false;  // offer FUSE_WRITEBACK_CACHE in INIT
  bool xattr = true;       // false: xattr ops get ENOSYS (the kernel stops asking)
  bool read_only = false;  // every modifying op gets EROFS
  // guest -> host id mapping for one range: host = guest - guest_base + host_base
  // for guest ids in [guest_base, guest_base + count); other ids unchanged.
  // Attributes sent to the guest map back the same way.
  struct IdMap {
    uint32_t guest_base = 0, host_base = 0, count = 0;
  } uid_map, gid_map;
  unsigned max_write = 1 << 20;  // clamped to [4 KiB, 16 MiB]
  // Table bounds: a nodeid or file handle beyond them gets ENFILE. Each
  // nodeid and handle holds a host fd: RLIMIT_NOFILE must allow for them.
  size_t max_inodes = 1 << 20;
  size_t max_handles = 1 << 20;
  // SETLKW is served by retrying a non-blocking lock for at most this long,
  // then EAGAIN: a guest can't park a worker thread on a lock forever.
  unsigned setlkw_timeout_ms = 1000;
  // DAX: the window SETUPMAPPING maps file ranges into and REMOVEMAPPING
  // clears (the device's shared memory region 0). Null: those get ENOSYS.
  std::shared_ptr<DaxWindow> dax;
};

class PassthroughFs : public FuseHandler {
 public:
  // Throws std::system_error naming the path if root can't be opened as a
  // directory (or /proc/self/fd is missing), std::invalid_argument for a bad
  // id map.
  explicit PassthroughFs(PassthroughOptions options);
  ~PassthroughFs() override;
  PassthroughFs(const PassthroughFs&) = delete;
  PassthroughFs& operator=(const PassthroughFs&) = delete;

  uint32_t handle(ChainReader& in, ChainWriter& out) override;

  // Forgets every nodeid and handle the guest holds and waits for a new INIT,
  // as DESTROY does: for a device reset, when no DESTROY will come.
  void reset() override;

  // Live nodeids (the root included) and open handles, for tests and stats.
  size_t inode_count() const;
  size_t handle_count() const;

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace skiff::virtio
