#include "virtio/fs/passthrough_fs.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/fuse.h>
#include <linux/openat2.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/uio.h>
#include <sys/vfs.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <climits>
#include <cstdio>
#include <cstring>
#include <map>
#include <mutex>
#include <exception>
#include <stdexcept>
#include <string_view>
#include <system_error>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include "base/unique_fd.h"

namespace skiff::virtio {

namespace {

constexpr uint32_t kMinMinor = 31;  // the oldest kernel that does virtio-fs (5.4) speaks 7.31
constexpr uint32_t kMaxMinor = FUSE_KERNEL_MINOR_VERSION;
constexpr size_t kOutHdr = sizeof(fuse_out_header);
constexpr size_t kNameMax = NAME_MAX;
constexpr size_t kPathMax = PATH_MAX;
constexpr size_t kXattrNameMax = 255;     // XATTR_NAME_MAX
constexpr size_t kXattrSizeMax = 65536;   // XATTR_SIZE_MAX
constexpr uint64_t kOffsetMax = INT64_MAX;  // the kernel's OFFSET_MAX: "to end of file" in fuse_file_lock
constexpr uint64_t kCopyMax = 64u << 20;  // one COPY_FILE_RANGE's work; short copies are legal, the guest loops
constexpr size_t kDirBuf = 32 * 1024;
// Arguments are copied out of guest memory once (the guest may change them
// under us); this bounds the copy for requests that carry names, not data.
constexpr size_t kSmallArgs = 512;

std::array<char, 16> fd_name(int fd) {
  std::array<char, 16> s{};
  std::snprintf(s.data(), s.size(), "%d", fd);
  return s;
}

std::array<char, 32> proc_path(int fd) {
  std::array<char, 32> s{};
  std::snprintf(s.data(), s.size(), "/proc/self/fd/%d", fd);
  return s;
}

// openat2 confined beneath dirfd with no symlinks at all (a final one is
// returned as itself under O_PATH|O_NOFOLLOW). Our names are single
// components, so on kernels without openat2 plain openat with O_NOFOLLOW is
// equivalent.
int open_beneath(int dirfd, const char* name, int flags, mode_t mode = 0) {
  static std::atomic<bool> no_openat2{false};
  flags |= O_NOFOLLOW | O_CLOEXEC;
  if (!no_openat2.load(std::memory_order_relaxed)) {
    open_how how{};
    how.flags = static_cast<uint64_t>(flags);
    how.mode = (flags & O_CREAT) ? mode : 0;
    how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
    const long fd = ::syscall(SYS_openat2, dirfd, name, &how, sizeof how);
    if (fd >= 0 || errno != ENOSYS) return static_cast<int>(fd);
    no_openat2.store(true, std::memory_order_relaxed);
  }
  return ::openat(dirfd, name, flags, mode);
}

// Linux new_encode_dev / new_decode_dev: the 32-bit dev_t the guest uses.
uint32_t encode_dev(dev_t d) {
  const uint32_t ma = major(d), mi = minor(d);
  return (mi & 0xff) | (ma << 8) | ((mi & ~0xffu) << 12);
}
dev_t decode_dev(uint32_t d) { return makedev((d & 0xfff00) >> 8, (d & 0xff) | ((d >> 12) & 0xfff00)); }

using IdMap = PassthroughOptions::IdMap;
uint32_t to_host(const IdMap& m, uint32_t id) {
  return (m.count && id - m.guest_base < m.count) ? id - m.guest_base + m.host_base : id;
}
uint32_t to_guest(const IdMap& m, uint32_t id) {
  return (m.count && id - m.host_base < m.count) ? id - m.host_base + m.guest_base : id;
}

bool is_dot(std::string_view s) { return s == "." || s == ".."; }

// A guest name must be one path component.
int check_name(std::string_view s) {
  if (s.empty()) return ENOENT;
  if (is_dot(s) || s.find('/') != std::string_view::npos) return EINVAL;
  return 0;
}

void scatter(const std::vector<iovec>& iov, const void* src, size_t len) {
  const auto* p = static_cast<const uint8_t*>(src);
  for (const auto& v : iov) {
    const size_t n = std::min(len, v.iov_len);
    std::memcpy(v.iov_base, p, n);
    p += n;
    len -= n;
  }
}

// preadv/pwritev over any number of iovecs (IOV_MAX at a time), until done,
// end of file or an error. Returns bytes moved, or -errno if none were.
ssize_t rw_iov(bool write, int fd, std::vector<iovec> iov, off_t off) {
  size_t idx = 0;
  ssize_t total = 0;
  while (idx < iov.size()) {
    const int cnt = static_cast<int>(std::min<size_t>(iov.size() - idx, IOV_MAX));
    const ssize_t n = write ? ::pwritev(fd, &iov[idx], cnt, off) : ::preadv(fd, &iov[idx], cnt, off);
    if (n < 0) {
      if (errno == EINTR) continue;
      return total > 0 ? total : -errno;
    }
    if (n == 0) break;
    total += n;
    off += n;
    size_t k = static_cast<size_t>(n);
    while (k > 0 && idx < iov.size()) {
      if (k >= iov[idx].iov_len) {
        k -= iov[idx].iov_len;
        ++idx;
      } else {
        iov[idx].iov_base = static_cast<uint8_t*>(iov[idx].iov_base) + k;
        iov[idx].iov_len -= k;
        k = 0;
      }
    }
  }
  return total;
}

struct Inode {
  skiff::UniqueFd fd;  // O_PATH|O_NOFOLLOW
  dev_t dev = 0;
  ino_t ino = 0;
  mode_t type = 0;  // S_IFMT bits: an inode's type never changes
  uint64_t nodeid = 0;
  uint64_t nlookup = 0;  // guarded by Impl::inode_mu_
};
using InodeP = std::shared_ptr<Inode>;

struct Handle {
  skiff::UniqueFd fd;
  InodeP inode;
  bool dir = false;
  std::mutex dir_mu;  // a directory's position: lseek + getdents as one step
  std::atomic<bool> locked{false};  // a POSIX lock was ever taken: FLUSH unlocks
};
using HandleP = std::shared_ptr<Handle>;

// One request: its header and a bounded copy of its arguments.
struct Req {
  fuse_in_header h{};
  ChainReader& in;
  ChainWriter& out;
  std::vector<uint8_t> args;
  size_t pos = 0;

  size_t left() const { return args.size() - pos; }
  template <typename T>
  bool take(T& v) {
    if (left() < sizeof(T)) return false;
    std::memcpy(&v, args.data() + pos, sizeof(T));
    pos += sizeof(T);
    return true;
  }
  // A NUL-terminated string of at most max_len bytes; its data() stays
  // NUL-terminated (inside args). 0 or an errno.
  int take_str(std::string_view& s, size_t max_len) {
    const size_t avail = left();
    if (avail == 0) return EINVAL;
    const auto* b = args.data() + pos;
    const void* nul = std::memchr(b, 0, std::min(avail, max_len + 1));
    if (!nul) return avail > max_len ? ENAMETOOLONG : EINVAL;
    const size_t n = static_cast<size_t>(static_cast<const uint8_t*>(nul) - b);
    s = std::string_view(reinterpret_cast<const char*>(b), n);
    pos += n + 1;
    return 0;
  }
  int take_name(std::string_view& s) {
    if (int e = take_str(s, kNameMax)) return e;
    return check_name(s);
  }
  bool fits(size_t payload) const { return out.remaining() >= kOutHdr + payload; }

  uint32_t status(int err) {
    const fuse_out_header oh{static_cast<uint32_t>(kOutHdr), -err, h.unique};
    out.write_obj(oh);  // handle() made sure the header fits
    return kOutHdr;
  }
  uint32_t reply(const void* a, size_t an, const void* b = nullptr, size_t bn = 0) {
    const size_t total = kOutHdr + an + bn;
    if (out.remaining() < total) return status(ERANGE);
    const fuse_out_header oh{static_cast<uint32_t>(total), 0, h.unique};
    out.write_obj(oh);
    out.write(a, an);
    if (bn) out.write(b, bn);
    return static_cast<uint32_t>(total);
  }
  template <typename T>
  uint32_t reply_obj(const T& v) {
    return reply(&v, sizeof v);
  }
};

size_t arg_cap(uint32_t opcode) {
  switch (opcode) {
    case FUSE_SYMLINK: return kNameMax + 1 + kPathMax;
    case FUSE_RENAME:
    case FUSE_RENAME2: return sizeof(fuse_rename2_in) + 2 * (kNameMax + 1);
    case FUSE_SETXATTR: return sizeof(fuse_setxattr_in) + kXattrNameMax + 1 + kXattrSizeMax;
    // Linux sends at most a page of entries (FUSE_REMOVEMAPPING_MAX_ENTRY).
    case FUSE_REMOVEMAPPING: return sizeof(fuse_removemapping_in) + 4096;
    default: return kSmallArgs;
  }
}

}  // namespace

class PassthroughFs::Impl {
 public:
  explicit Impl(PassthroughOptions o) : opt_(std::move(o)) {
    for (const IdMap* m : {&opt_.uid_map, &opt_.gid_map})
      if (uint64_t{m->guest_base} + m->count > (uint64_t{1} << 32) || uint64_t{m->host_base} + m->count > (uint64_t{1} << 32))
        throw std::invalid_argument("virtio-fs: id map range beyond 32 bits");
    opt_.max_write = std::clamp(opt_.max_write, 4096u, 16u << 20);
    timeout_ = opt_.cache == FsCacheMode::kNone ? 0 : opt_.cache == FsCacheMode::kAuto ? 1 : 86400;

    proc_fd_.reset(::open("/proc/self/fd", O_PATH | O_DIRECTORY | O_CLOEXEC));
    if (!proc_fd_) throw std::system_error(errno, std::generic_category(), "virtio-fs: open /proc/self/fd");
    auto root = std::make_shared<Inode>();
    root->fd.reset(::open(opt_.root.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
    if (!root->fd) throw std::system_error(errno, std::generic_category(), "virtio-fs: shared directory " + opt_.root);
    // syncfs() needs a real (not O_PATH) fd.
    root_dir_.reset(::openat(root->fd.get(), ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    struct stat st {};
    if (!root_dir_ || ::fstat(root->fd.get(), &st) != 0)
      throw std::system_error(errno, std::generic_category(), "virtio-fs: shared directory " + opt_.root);
    root->dev = st.st_dev;
    root->ino = st.st_ino;
    root->type = S_IFDIR;
    root->nodeid = FUSE_ROOT_ID;
    root->nlookup = 1;
    root_ = std::move(root);
    reset_tables();
  }

  uint32_t handle(ChainReader& in, ChainWriter& out);

  void reset() {
    initialized_.store(false);
    reset_tables();
  }
  size_t inode_count() const {
    std::lock_guard lk(inode_mu_);
    return inodes_.size();
  }
  size_t handle_count() const {
    std::lock_guard lk(handle_mu_);
    return handles_.size();
  }

 private:
  uint32_t dispatch(Req& r);

  // --- tables ---
  void reset_tables() {
    {
      std::lock_guard lk(handle_mu_);
      handles_.clear();
    }
    std::lock_guard lk(inode_mu_);
    inodes_.clear();
    by_key_.clear();
    inodes_.emplace(FUSE_ROOT_ID, root_);
    by_key_.emplace(std::make_pair(root_->dev, root_->ino), FUSE_ROOT_ID);
  }

  InodeP inode(uint64_t nodeid) {
    if (nodeid == FUSE_ROOT_ID) return root_;
    std::lock_guard lk(inode_mu_);
    auto it = inodes_.find(nodeid);
    return it == inodes_.end() ? nullptr : it->second;
  }

  // Takes one lookup reference on the inode `fd` refers to (st is its fstat),
  // adding it to the table if new; fd is dropped if the inode is known.
  int ref_inode(skiff::UniqueFd fd, const struct stat& st, InodeP& out) {
    std::lock_guard lk(inode_mu_);
    auto k = by_key_.find({st.st_dev, st.st_ino});
    if (k != by_key_.end()) {
      out = inodes_.at(k->second);
      ++out->nlookup;
      return 0;
    }
    if (inodes_.size() >= opt_.max_inodes) return ENFILE;
    auto n = std::make_shared<Inode>();
    n->fd = std::move(fd);
    n->dev = st.st_dev;
    n->ino = st.st_ino;
    n->type = st.st_mode & S_IFMT;
    n->nodeid = next_nodeid_++;
    n->nlookup = 1;
    inodes_.emplace(n->nodeid, n);
    by_key_.emplace(std::make_pair(n->dev, n->ino), n->nodeid);
    out = std::move(n);
    return 0;
  }

  void forget(uint64_t nodeid, uint64_t n) {
    if (nodeid == FUSE_ROOT_ID) return;
    std::lock_guard lk(inode_mu_);
    auto it = inodes_.find(nodeid);
    if (it == inodes_.end()) return;
    Inode& i = *it->second;
    i.nlookup = n >= i.nlookup ? 0 : i.nlookup - n;
    if (i.nlookup > 0) return;
    auto k = by_key_.find({i.dev, i.ino});
    if (k != by_key_.end() && k->second == nodeid) by_key_.erase(k);
    inodes_.erase(it);  // the fd closes when the last in-flight user lets go
  }

  bool handles_full() {
    std::lock_guard lk(handle_mu_);
    return handles_.size() >= opt_.max_handles;
  }
  int add_handle(skiff::UniqueFd fd, InodeP ino, bool dir, uint64_t& fh) {
    auto hp = std::make_shared<Handle>();
    hp->fd = std::move(fd);
    hp->inode = std::move(ino);
    hp->dir = dir;
    std::lock_guard lk(handle_mu_);
    if (handles_.size() >= opt_.max_handles) return ENFILE;
    fh = next_fh_++;
    handles_.emplace(fh, std::move(hp));
    return 0;
  }
  HandleP get_handle(uint64_t fh, bool dir) {
    std::lock_guard lk(handle_mu_);
    auto it = handles_.find(fh);
    if (it == handles_.end() || it->second->dir != dir) return nullptr;
    return it->second;
  }
  HandleP take_handle(uint64_t fh, bool dir) {
    std::lock_guard lk(handle_mu_);
    auto it = handles_.find(fh);
    if (it == handles_.end() || it->second->dir != dir) return nullptr;
    HandleP h = std::move(it->second);
    handles_.erase(it);
    return h;
  }

  // --- helpers ---
  void fill_attr(fuse_attr& a, const struct stat& st) const {
    a.ino = st.st_ino;
    a.size = static_cast<uint64_t>(st.st_size);
    a.blocks = static_cast<uint64_t>(st.st_blocks);
    a.atime = static_cast<uint64_t>(st.st_atim.tv_sec);
    a.mtime = static_cast<uint64_t>(st.st_mtim.tv_sec);
    a.ctime = static_cast<uint64_t>(st.st_ctim.tv_sec);
    a.atimensec = static_cast<uint32_t>(st.st_atim.tv_nsec);
    a.mtimensec = static_cast<uint32_t>(st.st_mtim.tv_nsec);
    a.ctimensec = static_cast<uint32_t>(st.st_ctim.tv_nsec);
    a.mode = st.st_mode;
    a.nlink = static_cast<uint32_t>(st.st_nlink);
    a.uid = to_guest(opt_.uid_map, st.st_uid);
    a.gid = to_guest(opt_.gid_map, st.st_gid);
    a.rdev = encode_dev(st.st_rdev);
    a.blksize = static_cast<uint32_t>(st.st_blksize);
    a.flags = 0;
  }
  void fill_entry(fuse_entry_out& e, uint64_t nodeid, const struct stat& st) const {
    e = fuse_entry_out{};
    e.nodeid = nodeid;
    e.generation = 0;  // nodeids are never reused
    e.entry_valid = e.attr_valid = timeout_;
    fill_attr(e.attr, st);
  }
  uint32_t reply_attr(Req& r, const struct stat& st) {
    fuse_attr_out ao{};
    ao.attr_valid = timeout_;
    fill_attr(ao.attr, st);
    return r.reply_obj(ao);
  }

  int lookup_name(const InodeP& parent, const char* name, fuse_entry_out& e) {
    const int fdn = open_beneath(parent->fd.get(), name, O_PATH);
    if (fdn < 0) return errno;
    skiff::UniqueFd fd(fdn);
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0) return errno;
    InodeP ino;
    if (int err = ref_inode(std::move(fd), st, ino)) return err;
    fill_entry(e, ino->nodeid, st);
    return 0;
  }

  // After MKDIR/MKNOD/SYMLINK made `name`: give it the caller's (mapped)
  // owner and the exact mode asked for (our umask may have cut it), then take
  // the lookup reference the reply hands out.
  int finish_new(Req& r, const InodeP& parent, const char* name, mode_t perm, fuse_entry_out& e) {
    const int fdn = open_beneath(parent->fd.get(), name, O_PATH);
    if (fdn < 0) return errno;
    skiff::UniqueFd fd(fdn);
    struct stat pst {}, st {};
    if (::fstat(parent->fd.get(), &pst) != 0 || ::fstat(fd.get(), &st) != 0) return errno;
    // A set-group-ID directory hands its group down, as the kernel did.
    const bool sgid_dir = pst.st_mode & S_ISGID;
    const uid_t uid = to_host(opt_.uid_map, r.h.uid);
    const gid_t gid = sgid_dir ? static_cast<gid_t>(-1) : to_host(opt_.gid_map, r.h.gid);
    if (::fchownat(fd.get(), "", uid, gid, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) != 0) return errno;
    if (!S_ISLNK(st.st_mode)) {
      const mode_t want = (perm & 07777) | (S_ISDIR(st.st_mode) && sgid_dir ? S_ISGID : 0);
      if (::fstat(fd.get(), &st) != 0) return errno;
      if ((st.st_mode & 07777) != want && ::fchmodat(proc_fd_.get(), fd_name(fd.get()).data(), want, 0) != 0)
        return errno;
    }
    if (::fstat(fd.get(), &st) != 0) return errno;
    InodeP ino;
    if (int err = ref_inode(std::move(fd), st, ino)) return err;
    fill_entry(e, ino->nodeid, st);
    return 0;
  }

  // How every op on a name in a directory goes on after its fixed arguments:
  // the name, the parent inode, room for a `reply_size`-byte reply.
  int take_name_in_parent(Req& r, std::string_view& name, InodeP& parent, size_t reply_size) {
    if (int e = r.take_name(name)) return e;
    parent = inode(r.h.nodeid);
    if (!parent) return EBADF;
    return r.fits(reply_size) ? 0 : ERANGE;
  }

  // Opens exactly the inode held (its /proc/self/fd magic link): a name could
  // have been swapped since the lookup, the held inode can't.
  int reopen(const Inode& ino, int flags, skiff::UniqueFd& out) {
    const int fd = ::openat(proc_fd_.get(), fd_name(ino.fd.get()).data(), flags | O_CLOEXEC);
    if (fd < 0) return errno;
    out.reset(fd);
    return 0;
  }

  int open_flags(uint32_t guest) const {
    // Only what makes sense for a host fd behind the guest's open file:
    // creation, O_NOFOLLOW/O_DIRECTORY/O_PATH are ours to decide; O_DIRECT
    // would fail on unaligned guest buffers.
    int f = static_cast<int>(guest) & (O_ACCMODE | O_APPEND | O_TRUNC | O_SYNC | O_DSYNC | O_NOATIME);
    if (opt_.writeback) {
      // The guest's page cache may read to fill a partial page of a
      // write-only file, and does O_APPEND positioning itself.
      if ((f & O_ACCMODE) == O_WRONLY) f = (f & ~O_ACCMODE) | O_RDWR;
      f &= ~O_APPEND;
    }
    return f;
  }
  uint32_t fopen_flags(bool dir) const {
    if (dir) return opt_.cache == FsCacheMode::kAlways ? FOPEN_CACHE_DIR | FOPEN_KEEP_CACHE : 0;
    switch (opt_.cache) {
      case FsCacheMode::kNone: return FOPEN_DIRECT_IO;
      case FsCacheMode::kAlways: return FOPEN_KEEP_CACHE;
      default: return 0;
    }
  }

  // --- operations ---
  uint32_t op_init(Req& r);
  uint32_t op_lookup(Req& r);
  uint32_t op_getattr(Req& r);
  uint32_t op_setattr(Req& r);
  uint32_t op_readlink(Req& r);
  uint32_t op_mknod(Req& r);
  uint32_t op_mkdir(Req& r);
  uint32_t op_symlink(Req& r);
  uint32_t op_remove(Req& r, int flags);
  uint32_t op_rename(Req& r, bool two);
  uint32_t op_link(Req& r);
  uint32_t op_open(Req& r);
  uint32_t op_create(Req& r);
  uint32_t op_read(Req& r);
  uint32_t op_write(Req& r);
  uint32_t op_statfs(Req& r);
  uint32_t op_release(Req& r, bool dir);
  uint32_t op_fsync(Req& r, bool dir);
  uint32_t op_flush(Req& r);
  uint32_t op_setxattr(Req& r);
  uint32_t op_getxattr(Req& r, bool list);
  uint32_t op_removexattr(Req& r);
  uint32_t op_opendir(Req& r);
  uint32_t op_readdir(Req& r, bool plus);
  uint32_t op_lock(Req& r);
  uint32_t op_access(Req& r);
  uint32_t op_fallocate(Req& r);
  uint32_t op_lseek(Req& r);
  uint32_t op_copy_file_range(Req& r);
  uint32_t op_syncfs(Req& r);
  uint32_t op_setupmapping(Req& r);
  uint32_t op_removemapping(Req& r);
  void op_forget(Req& r);
  void op_batch_forget(Req& r);

  PassthroughOptions opt_;
  uint64_t timeout_ = 1;
  skiff::UniqueFd proc_fd_;
  skiff::UniqueFd root_dir_;
  InodeP root_;
  std::atomic<bool> initialized_{false};

  mutable std::mutex inode_mu_;
  std::unordered_map<uint64_t, InodeP> inodes_;
  std::map<std::pair<dev_t, ino_t>, uint64_t> by_key_;
  uint64_t next_nodeid_ = FUSE_ROOT_ID + 1;

  mutable std::mutex handle_mu_;
  std::unordered_map<uint64_t, HandleP> handles_;
  uint64_t next_fh_ = 1;
};

uint32_t PassthroughFs::Impl::handle(ChainReader& in, ChainWriter& out) {
  Req r{{}, in, out, {}, 0};
  if (!in.read_obj(r.h)) return 0;
  const uint32_t op = r.h.opcode;
  try {
    switch (op) {
      case FUSE_FORGET:
        if (initialized_.load()) op_forget(r);
        return 0;
      case FUSE_BATCH_FORGET:
        if (initialized_.load()) op_batch_forget(r);
        return 0;
      case FUSE_INTERRUPT:  // requests finish quickly (SETLKW is bounded): nothing to interrupt
        return 0;
      default: break;
    }
    if (out.remaining() < kOutHdr) return 0;
    if (op != FUSE_WRITE) {
      r.args.resize(std::min(in.remaining(), arg_cap(op)));
      in.read(r.args.data(), r.args.size());
    }
    return dispatch(r);
  } catch (const std::exception&) {
    // Only allocation can fail here; a partly written reply can't be taken back.
    return out.consumed() == 0 && out.remaining() >= kOutHdr ? r.status(ENOMEM) : 0;
  }
}

uint32_t PassthroughFs::Impl::dispatch(Req& r) {
  const uint32_t op = r.h.opcode;
  if (op == FUSE_INIT) return op_init(r);
  if (!initialized_.load()) return r.status(EIO);
  if (opt_.read_only) {
    switch (op) {
      case FUSE_SETATTR: case FUSE_SYMLINK: case FUSE_MKNOD: case FUSE_MKDIR: case FUSE_UNLINK:
      case FUSE_RMDIR: case FUSE_RENAME: case FUSE_RENAME2: case FUSE_LINK: case FUSE_CREATE:
      case FUSE_WRITE: case FUSE_SETXATTR: case FUSE_REMOVEXATTR: case FUSE_FALLOCATE:
      case FUSE_COPY_FILE_RANGE:
        return r.status(EROFS);
      default: break;
    }
  }
  if (!opt_.xattr) {
    switch (op) {
      case FUSE_SETXATTR: case FUSE_GETXATTR: case FUSE_LISTXATTR: case FUSE_REMOVEXATTR:
        return r.status(ENOSYS);
      default: break;
    }
  }
  switch (op) {
    case FUSE_DESTROY:
      reset();
      return r.status(0);
    case FUSE_LOOKUP: return op_lookup(r);
    case FUSE_GETATTR: return op_getattr(r);
    case FUSE_SETATTR: return op_setattr(r);
    case FUSE_READLINK: return op_readlink(r);
    case FUSE_SYMLINK: return op_symlink(r);
    case FUSE_MKNOD: return op_mknod(r);
    case FUSE_MKDIR: return op_mkdir(r);
    case FUSE_UNLINK: return op_remove(r, 0);
    case FUSE_RMDIR: return op_remove(r, AT_REMOVEDIR);
    case FUSE_RENAME: return op_rename(r, false);
    case FUSE_RENAME2: return op_rename(r, true);
    case FUSE_LINK: return op_link(r);
    case FUSE_OPEN: return op_open(r);
    case FUSE_READ: return op_read(r);
    case FUSE_WRITE: return op_write(r);
    case FUSE_STATFS: return op_statfs(r);
    case FUSE_RELEASE: return op_release(r, false);
    case FUSE_FSYNC: return op_fsync(r, false);
    case FUSE_SETXATTR: return op_setxattr(r);
    case FUSE_GETXATTR: return op_getxattr(r, false);
    case FUSE_LISTXATTR: return op_getxattr(r, true);
    case FUSE_REMOVEXATTR: return op_removexattr(r);
    case FUSE_FLUSH: return op_flush(r);
    case FUSE_OPENDIR: return op_opendir(r);
    case FUSE_READDIR: return op_readdir(r, false);
    case FUSE_READDIRPLUS: return op_readdir(r, true);
    case FUSE_RELEASEDIR: return op_release(r, true);
    case FUSE_FSYNCDIR: return op_fsync(r, true);
    case FUSE_GETLK:
    case FUSE_SETLK:
    case FUSE_SETLKW: return op_lock(r);
    case FUSE_ACCESS: return op_access(r);
    case FUSE_CREATE: return op_create(r);
    case FUSE_FALLOCATE: return op_fallocate(r);
    case FUSE_LSEEK: return op_lseek(r);
    case FUSE_COPY_FILE_RANGE: return op_copy_file_range(r);
    case FUSE_SYNCFS: return op_syncfs(r);
    case FUSE_SETUPMAPPING: return op_setupmapping(r);
    case FUSE_REMOVEMAPPING: return op_removemapping(r);
    default: return r.status(ENOSYS);
  }
}

uint32_t PassthroughFs::Impl::op_init(Req& r) {
  fuse_init_in ii{};
  const size_t n = std::min(r.left(), sizeof ii);
  if (n < offsetof(fuse_init_in, flags2)) return r.status(EINVAL);
  std::memcpy(&ii, r.args.data() + r.pos, n);
  fuse_init_out io{};
  io.major = FUSE_KERNEL_VERSION;
  io.minor = kMaxMinor;
  if (ii.major > FUSE_KERNEL_VERSION) return r.reply_obj(io);  // the kernel retries with 7
  if (ii.major < FUSE_KERNEL_VERSION || ii.minor < kMinMinor) return r.status(EPROTO);
  if (!r.fits(sizeof io)) return r.status(ERANGE);
  // A new session: whatever an earlier one held is gone (a guest reboot
  // sends INIT without DESTROY).
  reset_tables();
  const uint64_t theirs = ii.flags | ((ii.flags & FUSE_INIT_EXT) ? uint64_t{ii.flags2} << 32 : 0);
  uint64_t ours = FUSE_ASYNC_READ | FUSE_PARALLEL_DIROPS | FUSE_ATOMIC_O_TRUNC | FUSE_BIG_WRITES |
                  FUSE_DO_READDIRPLUS | FUSE_READDIRPLUS_AUTO | FUSE_POSIX_LOCKS | FUSE_FLOCK_LOCKS |
                  FUSE_MAX_PAGES | FUSE_CACHE_SYMLINKS;
  if (opt_.writeback) ours |= FUSE_WRITEBACK_CACHE;
  // DAX mappings need only page alignment (the guest maps 2 MiB ranges).
  if (opt_.dax) ours |= FUSE_MAP_ALIGNMENT;
  io.minor = std::min(ii.minor, kMaxMinor);
  io.max_readahead = ii.max_readahead;
  io.flags = static_cast<uint32_t>(theirs & ours);
  io.max_write = opt_.max_write;
  io.time_gran = 1;
  io.max_pages = static_cast<uint16_t>(std::max(1u, opt_.max_write / 4096));
  if (io.flags & FUSE_MAP_ALIGNMENT) io.map_alignment = 12;
  initialized_.store(true);
  return r.reply_obj(io);
}

void PassthroughFs::Impl::op_forget(Req& r) {
  fuse_forget_in fi{};
  if (r.in.read_obj(fi)) forget(r.h.nodeid, fi.nlookup);
}

void PassthroughFs::Impl::op_batch_forget(Req& r) {
  fuse_batch_forget_in bi{};
  if (!r.in.read_obj(bi)) return;
  fuse_forget_one one{};
  for (uint32_t i = 0; i < bi.count && r.in.read_obj(one); ++i) forget(one.nodeid, one.nlookup);
}

uint32_t PassthroughFs::Impl::op_lookup(Req& r) {
  std::string_view name;
  InodeP parent;
  if (int err = take_name_in_parent(r, name, parent, sizeof(fuse_entry_out))) return r.status(err);
  fuse_entry_out e{};
  if (int err = lookup_name(parent, name.data(), e)) return r.status(err);
  return r.reply_obj(e);
}

uint32_t PassthroughFs::Impl::op_getattr(Req& r) {
  InodeP ino = inode(r.h.nodeid);
  if (!ino) return r.status(EBADF);
  struct stat st {};
  if (::fstat(ino->fd.get(), &st) != 0) return r.status(errno);
  return reply_attr(r, st);
}

uint32_t PassthroughFs::Impl::op_setattr(Req& r) {
  fuse_setattr_in s{};
  if (!r.take(s)) return r.status(EINVAL);
  InodeP ino = inode(r.h.nodeid);
  if (!ino) return r.status(EBADF);
  HandleP fh;
  if (s.valid & FATTR_FH) {
    fh = get_handle(s.fh, false);
    if (!fh) return r.status(EBADF);
  }
  const int fd = ino->fd.get();
  // Owner first: a chown clears set-id bits that a mode in the same request sets.
  if (s.valid & (FATTR_UID | FATTR_GID)) {
    const uid_t uid = (s.valid & FATTR_UID) ? to_host(opt_.uid_map, s.uid) : static_cast<uid_t>(-1);
    const gid_t gid = (s.valid & FATTR_GID) ? to_host(opt_.gid_map, s.gid) : static_cast<gid_t>(-1);
    if (::fchownat(fd, "", uid, gid, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) != 0) return r.status(errno);
  }
  if (s.valid & FATTR_MODE) {
    if (ino->type == S_IFLNK) return r.status(EOPNOTSUPP);  // as lchmod
    if (::fchmodat(proc_fd_.get(), fd_name(fd).data(), s.mode & 07777, 0) != 0) return r.status(errno);
  }
  if (s.valid & FATTR_SIZE) {
    if (s.size > kOffsetMax) return r.status(EINVAL);
    int rc;
    if (fh) {
      rc = ::ftruncate(fh->fd.get(), static_cast<off_t>(s.size));
    } else {
      if (ino->type == S_IFDIR) return r.status(EISDIR);
      if (ino->type != S_IFREG) return r.status(EINVAL);
      skiff::UniqueFd w;
      if (int e = reopen(*ino, O_WRONLY, w)) return r.status(e);
      rc = ::ftruncate(w.get(), static_cast<off_t>(s.size));
    }
    if (rc != 0) return r.status(errno);
  }
  if (s.valid & (FATTR_ATIME | FATTR_MTIME | FATTR_ATIME_NOW | FATTR_MTIME_NOW)) {
    timespec ts[2] = {{0, UTIME_OMIT}, {0, UTIME_OMIT}};
    if (s.valid & FATTR_ATIME_NOW) {
      ts[0].tv_nsec = UTIME_NOW;
    } else if (s.valid & FATTR_ATIME) {
      if (s.atimensec >= 1000000000) return r.status(EINVAL);
      ts[0] = {static_cast<time_t>(s.atime), static_cast<long>(s.atimensec)};
    }
    if (s.valid & FATTR_MTIME_NOW) {
      ts[1].tv_nsec = UTIME_NOW;
    } else if (s.valid & FATTR_MTIME) {
      if (s.mtimensec >= 1000000000) return r.status(EINVAL);
      ts[1] = {static_cast<time_t>(s.mtime), static_cast<long>(s.mtimensec)};
    }
    if (::utimensat(fd, "", ts, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) != 0) return r.status(errno);
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0) return r.status(errno);
  return reply_attr(r, st);
}

uint32_t PassthroughFs::Impl::op_readlink(Req& r) {
  InodeP ino = inode(r.h.nodeid);
  if (!ino) return r.status(EBADF);
  if (ino->type != S_IFLNK) return r.status(EINVAL);
  std::array<char, kPathMax> buf;
  const ssize_t n = ::readlinkat(ino->fd.get(), "", buf.data(), buf.size());
  if (n < 0) return r.status(errno);
  return r.reply(buf.data(), static_cast<size_t>(n));
}

uint32_t PassthroughFs::Impl::op_mknod(Req& r) {
  fuse_mknod_in mi{};
  std::string_view name;
  InodeP parent;
  if (!r.take(mi)) return r.status(EINVAL);
  if (int e = take_name_in_parent(r, name, parent, sizeof(fuse_entry_out))) return r.status(e);
  mode_t type = mi.mode & S_IFMT;
  if (type == 0) type = S_IFREG;
  if (type != S_IFREG && type != S_IFCHR && type != S_IFBLK && type != S_IFIFO && type != S_IFSOCK)
    return r.status(type == S_IFDIR ? EPERM : EINVAL);
  // Device nodes are made as asked but never opened here: OPEN serves regular
  // files only (the guest kernel handles special files itself).
  if (::mknodat(parent->fd.get(), name.data(), type | (mi.mode & 07777), decode_dev(mi.rdev)) != 0)
    return r.status(errno);
  fuse_entry_out e{};
  if (int err = finish_new(r, parent, name.data(), mi.mode, e)) return r.status(err);
  return r.reply_obj(e);
}

uint32_t PassthroughFs::Impl::op_mkdir(Req& r) {
  fuse_mkdir_in mi{};
  std::string_view name;
  InodeP parent;
  if (!r.take(mi)) return r.status(EINVAL);
  if (int e = take_name_in_parent(r, name, parent, sizeof(fuse_entry_out))) return r.status(e);
  if (::mkdirat(parent->fd.get(), name.data(), mi.mode & 07777) != 0) return r.status(errno);
  fuse_entry_out e{};
  if (int err = finish_new(r, parent, name.data(), mi.mode, e)) return r.status(err);
  return r.reply_obj(e);
}

uint32_t PassthroughFs::Impl::op_symlink(Req& r) {
  std::string_view name, target;
  if (int e = r.take_name(name)) return r.status(e);
  if (int e = r.take_str(target, kPathMax - 1)) return r.status(e);
  if (target.empty()) return r.status(ENOENT);
  InodeP parent = inode(r.h.nodeid);
  if (!parent) return r.status(EBADF);
  if (!r.fits(sizeof(fuse_entry_out))) return r.status(ERANGE);
  // The target is text for the guest to resolve in its own view; nothing
  // here ever follows it.
  if (::symlinkat(target.data(), parent->fd.get(), name.data()) != 0) return r.status(errno);
  fuse_entry_out e{};
  if (int err = finish_new(r, parent, name.data(), 0, e)) return r.status(err);
  return r.reply_obj(e);
}

uint32_t PassthroughFs::Impl::op_remove(Req& r, int flags) {
  std::string_view name;
  InodeP parent;
  if (int e = take_name_in_parent(r, name, parent, 0)) return r.status(e);
  return r.status(::unlinkat(parent->fd.get(), name.data(), flags) != 0 ? errno : 0);
}

uint32_t PassthroughFs::Impl::op_rename(Req& r, bool two) {
  uint64_t newdir = 0;
  uint32_t flags = 0;
  if (two) {
    fuse_rename2_in ri{};
    if (!r.take(ri)) return r.status(EINVAL);
    newdir = ri.newdir;
    flags = ri.flags;
  } else {
    fuse_rename_in ri{};
    if (!r.take(ri)) return r.status(EINVAL);
    newdir = ri.newdir;
  }
  std::string_view oldname, newname;
  if (int e = r.take_name(oldname)) return r.status(e);
  if (int e = r.take_name(newname)) return r.status(e);
  // RENAME_WHITEOUT would make a device node; nothing else exists.
  if (flags & ~static_cast<uint32_t>(RENAME_NOREPLACE | RENAME_EXCHANGE)) return r.status(EINVAL);
  InodeP from = inode(r.h.nodeid), to = inode(newdir);
  if (!from || !to) return r.status(EBADF);
  const int rc = ::renameat2(from->fd.get(), oldname.data(), to->fd.get(), newname.data(), flags);
  return r.status(rc != 0 ? errno : 0);
}

uint32_t PassthroughFs::Impl::op_link(Req& r) {
  fuse_link_in li{};
  std::string_view name;
  if (!r.take(li)) return r.status(EINVAL);
  if (int e = r.take_name(name)) return r.status(e);
  InodeP old = inode(li.oldnodeid), parent = inode(r.h.nodeid);
  if (!old || !parent) return r.status(EBADF);
  if (old->type == S_IFDIR) return r.status(EPERM);
  if (!r.fits(sizeof(fuse_entry_out))) return r.status(ERANGE);
  int rc = ::linkat(old->fd.get(), "", parent->fd.get(), name.data(), AT_EMPTY_PATH);
  // AT_EMPTY_PATH wants CAP_DAC_READ_SEARCH; the magic link names the same inode.
  if (rc != 0 && errno == ENOENT)
    rc = ::linkat(proc_fd_.get(), fd_name(old->fd.get()).data(), parent->fd.get(), name.data(), AT_SYMLINK_FOLLOW);
  if (rc != 0) return r.status(errno);
  // The reply is a reference to the very inode linked, not whatever the new
  // name may point at by now.
  const int dup = ::fcntl(old->fd.get(), F_DUPFD_CLOEXEC, 0);
  if (dup < 0) return r.status(errno);
  skiff::UniqueFd fd(dup);
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return r.status(errno);
  InodeP ino;
  if (int err = ref_inode(std::move(fd), st, ino)) return r.status(err);
  fuse_entry_out e{};
  fill_entry(e, ino->nodeid, st);
  return r.reply_obj(e);
}

uint32_t PassthroughFs::Impl::op_open(Req& r) {
  fuse_open_in oi{};
  if (!r.take(oi)) return r.status(EINVAL);
  InodeP ino = inode(r.h.nodeid);
  if (!ino) return r.status(EBADF);
  if (ino->type == S_IFDIR) return r.status(EISDIR);
  if (ino->type == S_IFLNK) return r.status(ELOOP);
  // Opening a host FIFO would park the worker, a device node would reach the
  // host's device: the guest kernel serves those itself and never asks.
  if (ino->type != S_IFREG) return r.status(ENXIO);
  if (opt_.read_only && ((oi.flags & O_ACCMODE) != O_RDONLY || (oi.flags & O_TRUNC))) return r.status(EROFS);
  if (!r.fits(sizeof(fuse_open_out))) return r.status(ERANGE);
  if (handles_full()) return r.status(ENFILE);
  skiff::UniqueFd fd;
  if (int e = reopen(*ino, open_flags(oi.flags), fd)) return r.status(e);
  fuse_open_out oo{};
  if (int e = add_handle(std::move(fd), ino, false, oo.fh)) return r.status(e);
  oo.open_flags = fopen_flags(false);
  return r.reply_obj(oo);
}

uint32_t PassthroughFs::Impl::op_create(Req& r) {
  fuse_create_in ci{};
  std::string_view name;
  InodeP parent;
  if (!r.take(ci)) return r.status(EINVAL);
  if (int e = take_name_in_parent(r, name, parent, sizeof(fuse_entry_out) + sizeof(fuse_open_out)))
    return r.status(e);
  if ((ci.mode & S_IFMT) != 0 && (ci.mode & S_IFMT) != S_IFREG) return r.status(EINVAL);
  if (handles_full()) return r.status(ENFILE);
  const int flags = open_flags(ci.flags);
  skiff::UniqueFd fd;
  bool created = false;
  // Always O_EXCL: without it an existing FIFO, device or symlink would be
  // opened. An existing name is opened only once seen to be a regular file,
  // through the inode itself. Bounded: a name that keeps vanishing and
  // reappearing under us is reported as it stood last.
  int err = EEXIST;
  for (int attempt = 0; attempt < 4 && !fd; ++attempt) {
    const int n = open_beneath(parent->fd.get(), name.data(), flags | O_CREAT | O_EXCL, ci.mode & 07777);
    if (n >= 0) {
      fd.reset(n);
      created = true;
      break;
    }
    err = errno;
    if (err != EEXIST || (ci.flags & O_EXCL)) return r.status(err);
    const int p = open_beneath(parent->fd.get(), name.data(), O_PATH);
    if (p < 0) {
      err = errno;
      if (err == ENOENT) continue;
      return r.status(err);
    }
    skiff::UniqueFd path(p);
    struct stat st {};
    if (::fstat(path.get(), &st) != 0) return r.status(errno);
    if (S_ISLNK(st.st_mode)) return r.status(ELOOP);
    if (S_ISDIR(st.st_mode)) return r.status(EISDIR);
    if (!S_ISREG(st.st_mode)) return r.status(EEXIST);
    Inode tmp;
    tmp.fd = std::move(path);
    if (int e = reopen(tmp, flags, fd)) return r.status(e);
  }
  if (!fd) return r.status(err);
  struct stat st {};
  if (created) {
    struct stat pst {};
    if (::fstat(parent->fd.get(), &pst) != 0) return r.status(errno);
    const gid_t gid = (pst.st_mode & S_ISGID) ? static_cast<gid_t>(-1) : to_host(opt_.gid_map, r.h.gid);
    if (::fchown(fd.get(), to_host(opt_.uid_map, r.h.uid), gid) != 0) return r.status(errno);
    if (::fstat(fd.get(), &st) != 0) return r.status(errno);
    if ((st.st_mode & 07777) != (ci.mode & 07777) && ::fchmod(fd.get(), ci.mode & 07777) != 0) return r.status(errno);
  }
  // The table's O_PATH fd, for exactly the inode opened.
  const int p = ::openat(proc_fd_.get(), fd_name(fd.get()).data(), O_PATH | O_CLOEXEC);
  if (p < 0) return r.status(errno);
  skiff::UniqueFd path(p);
  if (::fstat(path.get(), &st) != 0) return r.status(errno);
  InodeP ino;
  if (int e = ref_inode(std::move(path), st, ino)) return r.status(e);
  struct {
    fuse_entry_out e;
    fuse_open_out o;
  } reply{};
  fill_entry(reply.e, ino->nodeid, st);
  if (int e = add_handle(std::move(fd), ino, false, reply.o.fh)) {
    forget(ino->nodeid, 1);
    return r.status(e);
  }
  reply.o.open_flags = fopen_flags(false);
  return r.reply(&reply.e, sizeof reply.e, &reply.o, sizeof reply.o);
}

uint32_t PassthroughFs::Impl::op_read(Req& r) {
  fuse_read_in ri{};
  if (!r.take(ri)) return r.status(EINVAL);
  HandleP h = get_handle(ri.fh, false);
  if (!h) return r.status(EBADF);
  if (ri.offset > kOffsetMax) return r.status(EINVAL);
  const size_t size = std::min<size_t>(ri.size, r.out.remaining() - kOutHdr);
  // The header goes in front of data we haven't read yet: keep where it
  // lives, read straight into guest memory behind it, then fill it in.
  const std::vector<iovec> hdr = r.out.iovecs(kOutHdr);
  const ssize_t n = rw_iov(false, h->fd.get(), r.out.iovecs(size), static_cast<off_t>(ri.offset));
  fuse_out_header oh{static_cast<uint32_t>(kOutHdr), 0, r.h.unique};
  if (n < 0)
    oh.error = static_cast<int32_t>(n);
  else
    oh.len += static_cast<uint32_t>(n);
  scatter(hdr, &oh, sizeof oh);
  return oh.len;
}

uint32_t PassthroughFs::Impl::op_write(Req& r) {
  fuse_write_in wi{};
  if (!r.in.read_obj(wi)) return r.status(EINVAL);
  if (wi.size > r.in.remaining() || wi.size > opt_.max_write) return r.status(EINVAL);
  if (wi.offset > kOffsetMax) return r.status(EINVAL);
  HandleP h = get_handle(wi.fh, false);
  if (!h) return r.status(EBADF);
  if (!r.fits(sizeof(fuse_write_out))) return r.status(ERANGE);
  const ssize_t n = rw_iov(true, h->fd.get(), r.in.iovecs(wi.size), static_cast<off_t>(wi.offset));
  if (n < 0) return r.status(static_cast<int>(-n));
  fuse_write_out wo{};
  wo.size = static_cast<uint32_t>(n);
  return r.reply_obj(wo);
}

uint32_t PassthroughFs::Impl::op_statfs(Req& r) {
  InodeP ino = inode(r.h.nodeid);
  if (!ino) return r.status(EBADF);
  struct statfs sf {};
  if (::fstatfs(ino->fd.get(), &sf) != 0) return r.status(errno);
  fuse_statfs_out so{};
  so.st.blocks = sf.f_blocks;
  so.st.bfree = sf.f_bfree;
  so.st.bavail = sf.f_bavail;
  so.st.files = sf.f_files;
  so.st.ffree = sf.f_ffree;
  so.st.bsize = static_cast<uint32_t>(sf.f_bsize);
  so.st.namelen = static_cast<uint32_t>(sf.f_namelen);
  so.st.frsize = static_cast<uint32_t>(sf.f_frsize);
  return r.reply_obj(so);
}

uint32_t PassthroughFs::Impl::op_release(Req& r, bool dir) {
  fuse_release_in ri{};
  if (!r.take(ri)) return r.status(EINVAL);
  HandleP h = take_handle(ri.fh, dir);
  if (!h) return r.status(EBADF);
  if (!dir && (ri.release_flags & FUSE_RELEASE_FLOCK_UNLOCK)) ::flock(h->fd.get(), LOCK_UN);
  return r.status(0);  // the fd closes with the last in-flight user of the handle
}

uint32_t PassthroughFs::Impl::op_fsync(Req& r, bool dir) {
  fuse_fsync_in fi{};
  if (!r.take(fi)) return r.status(EINVAL);
  HandleP h = get_handle(fi.fh, dir);
  if (!h) return r.status(EBADF);
  const int rc = (fi.fsync_flags & FUSE_FSYNC_FDATASYNC) ? ::fdatasync(h->fd.get()) : ::fsync(h->fd.get());
  return r.status(rc != 0 ? errno : 0);
}

uint32_t PassthroughFs::Impl::op_flush(Req& r) {
  fuse_flush_in fi{};
  if (!r.take(fi)) return r.status(EINVAL);
  HandleP h = get_handle(fi.fh, false);
  if (!h) return r.status(EBADF);
  // POSIX drops a process's locks when it closes any fd of the file; the
  // guest says so with FLUSH. Our locks belong to the handle (OFD locks).
  if (h->locked.load()) {
    struct flock fl {};
    fl.l_type = F_UNLCK;
    fl.l_whence = SEEK_SET;
    ::fcntl(h->fd.get(), F_OFD_SETLK, &fl);
  }
  return r.status(0);
}

uint32_t PassthroughFs::Impl::op_setxattr(Req& r) {
  // Without FUSE_SETXATTR_EXT (never offered) the kernel sends the 8-byte form.
  struct {
    uint32_t size, flags;
  } si{};
  std::string_view name;
  if (!r.take(si)) return r.status(EINVAL);
  if (int e = r.take_str(name, kXattrNameMax)) return r.status(e == ENAMETOOLONG ? ERANGE : e);
  if (name.empty()) return r.status(ERANGE);
  if (si.size > kXattrSizeMax) return r.status(E2BIG);
  if (si.size > r.left()) return r.status(EINVAL);
  InodeP ino = inode(r.h.nodeid);
  if (!ino) return r.status(EBADF);
  // No f*xattr on O_PATH fds, and opening a FIFO or device is out: the magic
  // link path names the inode itself, and does not follow a symlink inode.
  const int rc = ::setxattr(proc_path(ino->fd.get()).data(), name.data(), r.args.data() + r.pos, si.size,
                            static_cast<int>(si.flags));
  return r.status(rc != 0 ? errno : 0);
}

uint32_t PassthroughFs::Impl::op_getxattr(Req& r, bool list) {
  fuse_getxattr_in gi{};
  std::string_view name;
  if (!r.take(gi)) return r.status(EINVAL);
  if (!list) {
    if (int e = r.take_str(name, kXattrNameMax)) return r.status(e == ENAMETOOLONG ? ERANGE : e);
    if (name.empty()) return r.status(ERANGE);
  }
  InodeP ino = inode(r.h.nodeid);
  if (!ino) return r.status(EBADF);
  const auto path = proc_path(ino->fd.get());
  if (gi.size == 0) {
    const ssize_t n = list ? ::listxattr(path.data(), nullptr, 0) : ::getxattr(path.data(), name.data(), nullptr, 0);
    if (n < 0) return r.status(errno);
    fuse_getxattr_out go{};
    go.size = static_cast<uint32_t>(n);
    return r.reply_obj(go);
  }
  const size_t room = r.out.remaining() - kOutHdr;
  if (room == 0) return r.status(ERANGE);
  std::vector<char> buf(std::min({static_cast<size_t>(gi.size), kXattrSizeMax, room}));
  const ssize_t n = list ? ::listxattr(path.data(), buf.data(), buf.size())
                         : ::getxattr(path.data(), name.data(), buf.data(), buf.size());
  if (n < 0) return r.status(errno);
  return r.reply(buf.data(), static_cast<size_t>(n));
}

uint32_t PassthroughFs::Impl::op_removexattr(Req& r) {
  std::string_view name;
  if (int e = r.take_str(name, kXattrNameMax)) return r.status(e == ENAMETOOLONG ? ERANGE : e);
  if (name.empty()) return r.status(ERANGE);
  InodeP ino = inode(r.h.nodeid);
  if (!ino) return r.status(EBADF);
  return r.status(::removexattr(proc_path(ino->fd.get()).data(), name.data()) != 0 ? errno : 0);
}

uint32_t PassthroughFs::Impl::op_opendir(Req& r) {
  fuse_open_in oi{};
  if (!r.take(oi)) return r.status(EINVAL);
  InodeP ino = inode(r.h.nodeid);
  if (!ino) return r.status(EBADF);
  if (ino->type != S_IFDIR) return r.status(ENOTDIR);
  if (!r.fits(sizeof(fuse_open_out))) return r.status(ERANGE);
  if (handles_full()) return r.status(ENFILE);
  // "." of the held directory: its own inode, no name involved.
  const int fd = ::openat(ino->fd.get(), ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return r.status(errno);
  fuse_open_out oo{};
  if (int e = add_handle(skiff::UniqueFd(fd), ino, true, oo.fh)) return r.status(e);
  oo.open_flags = fopen_flags(true);
  return r.reply_obj(oo);
}

uint32_t PassthroughFs::Impl::op_readdir(Req& r, bool plus) {
  fuse_read_in ri{};
  if (!r.take(ri)) return r.status(EINVAL);
  HandleP h = get_handle(ri.fh, true);
  if (!h) return r.status(EBADF);
  const size_t cap = std::min<size_t>(ri.size, r.out.remaining() - kOutHdr);
  std::lock_guard lk(h->dir_mu);
  const int fd = h->fd.get();
  if (::lseek(fd, static_cast<off_t>(ri.offset), SEEK_SET) < 0) return r.status(errno);
  std::vector<char> buf(kDirBuf);
  const std::vector<iovec> hdr = r.out.iovecs(kOutHdr);
  size_t used = 0;
  int err = 0;
  bool full = false;
  while (!full) {
    const long nread = ::syscall(SYS_getdents64, fd, buf.data(), buf.size());
    if (nread < 0) {
      err = errno;
      break;
    }
    if (nread == 0) break;
    for (long pos = 0; pos < nread;) {
      const auto* d = reinterpret_cast<const dirent64*>(buf.data() + pos);
      pos += d->d_reclen;
      const size_t namelen = ::strnlen(d->d_name, d->d_reclen - offsetof(dirent64, d_name));
      const std::string_view name(d->d_name, namelen);
      const size_t entsize = FUSE_DIRENT_ALIGN((plus ? FUSE_NAME_OFFSET_DIRENTPLUS : FUSE_NAME_OFFSET) + namelen);
      if (used + entsize > cap) {
        full = true;
        break;
      }
      uint64_t ino = d->d_ino;
      // The root's ".." lies outside the share: show the root itself.
      if (name == ".." && h->inode == root_) ino = root_->ino;
      fuse_entry_out e{};
      // "." and ".." go out with nodeid 0 (no reference): the kernel skips them.
      if (plus && !is_dot(name)) {
        const int le = lookup_name(h->inode, d->d_name, e);
        if (le == ENOENT) continue;  // gone since getdents
        if (le != 0) {
          if (used == 0) err = le;
          full = true;
          break;
        }
      }
      if (plus) r.out.write_obj(e);
      struct {
        uint64_t ino, off;
        uint32_t namelen, type;
      } de{ino, static_cast<uint64_t>(d->d_off), static_cast<uint32_t>(namelen), d->d_type};
      static_assert(sizeof de == FUSE_NAME_OFFSET);
      r.out.write_obj(de);
      r.out.write(name.data(), namelen);
      static constexpr uint8_t kPad[8] = {};
      r.out.write(kPad, entsize - (plus ? FUSE_NAME_OFFSET_DIRENTPLUS : FUSE_NAME_OFFSET) - namelen);
      used += entsize;
    }
  }
  fuse_out_header oh{static_cast<uint32_t>(kOutHdr + used), 0, r.h.unique};
  if (used == 0 && err) oh.error = -err;
  scatter(hdr, &oh, sizeof oh);
  return oh.len;
}

uint32_t PassthroughFs::Impl::op_lock(Req& r) {
  fuse_lk_in li{};
  if (!r.take(li)) return r.status(EINVAL);
  HandleP h = get_handle(li.fh, false);
  if (!h) return r.status(EBADF);
  const uint32_t op = r.h.opcode;
  const int fd = h->fd.get();
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(opt_.setlkw_timeout_ms);
  // SETLKW: poll the non-blocking form with backoff up to the deadline, then
  // EAGAIN. A worker is never parked on a lock the guest may never release.
  auto retry = [&, delay = std::chrono::milliseconds(1)]() mutable {
    if (op != FUSE_SETLKW || std::chrono::steady_clock::now() + delay > deadline) return false;
    std::this_thread::sleep_for(delay);
    delay = std::min(delay * 2, std::chrono::milliseconds(50));
    return true;
  };
  if (li.lk_flags & FUSE_LK_FLOCK) {
    if (op == FUSE_GETLK) return r.status(EINVAL);
    int how;
    switch (li.lk.type) {
      case F_RDLCK: how = LOCK_SH; break;
      case F_WRLCK: how = LOCK_EX; break;
      case F_UNLCK: how = LOCK_UN; break;
      default: return r.status(EINVAL);
    }
    while (::flock(fd, how | LOCK_NB) != 0) {
      const int e = errno;
      if (e != EWOULDBLOCK || !retry()) return r.status(e);
    }
    return r.status(0);
  }
  if (li.lk.type != F_RDLCK && li.lk.type != F_WRLCK && li.lk.type != F_UNLCK) return r.status(EINVAL);
  if (li.lk.start > kOffsetMax || li.lk.end < li.lk.start) return r.status(EINVAL);
  struct flock fl {};
  fl.l_type = static_cast<short>(li.lk.type);
  fl.l_whence = SEEK_SET;
  fl.l_start = static_cast<off_t>(li.lk.start);
  fl.l_len = li.lk.end >= kOffsetMax ? 0 : static_cast<off_t>(li.lk.end - li.lk.start + 1);
  if (op == FUSE_GETLK) {
    if (!r.fits(sizeof(fuse_lk_out))) return r.status(ERANGE);
    if (::fcntl(fd, F_OFD_GETLK, &fl) != 0) return r.status(errno);
    fuse_lk_out lo{};
    lo.lk.type = static_cast<uint32_t>(fl.l_type);
    if (fl.l_type != F_UNLCK) {
      lo.lk.start = static_cast<uint64_t>(fl.l_start);
      lo.lk.end = fl.l_len == 0 ? kOffsetMax : static_cast<uint64_t>(fl.l_start + fl.l_len - 1);
      lo.lk.pid = 0;  // a host pid means nothing in the guest
    }
    return r.reply_obj(lo);
  }
  if (fl.l_type != F_UNLCK) h->locked.store(true);
  while (::fcntl(fd, F_OFD_SETLK, &fl) != 0) {
    const int e = errno == EACCES ? EAGAIN : errno;
    if (e != EAGAIN || !retry()) return r.status(e);
  }
  return r.status(0);
}

uint32_t PassthroughFs::Impl::op_access(Req& r) {
  fuse_access_in ai{};
  if (!r.take(ai)) return r.status(EINVAL);
  InodeP ino = inode(r.h.nodeid);
  if (!ino) return r.status(EBADF);
  struct stat st {};
  if (::fstat(ino->fd.get(), &st) != 0) return r.status(errno);
  const uint32_t mask = ai.mask & (R_OK | W_OK | X_OK);
  if (opt_.read_only && (mask & W_OK) && (S_ISREG(st.st_mode) || S_ISDIR(st.st_mode) || S_ISLNK(st.st_mode)))
    return r.status(EROFS);
  // Judged in the guest's id space, as the guest kernel would (no
  // supplementary groups: the request doesn't carry them).
  if (r.h.uid == 0) {
    const bool x_ok = S_ISDIR(st.st_mode) || (st.st_mode & 0111);
    return r.status((mask & X_OK) && !x_ok ? EACCES : 0);
  }
  mode_t bits;
  if (r.h.uid == to_guest(opt_.uid_map, st.st_uid))
    bits = (st.st_mode >> 6) & 7;
  else if (r.h.gid == to_guest(opt_.gid_map, st.st_gid))
    bits = (st.st_mode >> 3) & 7;
  else
    bits = st.st_mode & 7;
  return r.status((mask & bits) == mask ? 0 : EACCES);
}

uint32_t PassthroughFs::Impl::op_fallocate(Req& r) {
  fuse_fallocate_in fi{};
  if (!r.take(fi)) return r.status(EINVAL);
  HandleP h = get_handle(fi.fh, false);
  if (!h) return r.status(EBADF);
  if (fi.offset > kOffsetMax || fi.length > kOffsetMax) return r.status(EINVAL);
  const int rc = ::fallocate(h->fd.get(), static_cast<int>(fi.mode), static_cast<off_t>(fi.offset),
                             static_cast<off_t>(fi.length));
  return r.status(rc != 0 ? errno : 0);
}

uint32_t PassthroughFs::Impl::op_lseek(Req& r) {
  fuse_lseek_in li{};
  if (!r.take(li)) return r.status(EINVAL);
  HandleP h = get_handle(li.fh, false);
  if (!h) return r.status(EBADF);
  // The kernel only asks for SEEK_DATA/SEEK_HOLE; SET and END are harmless.
  if (li.whence != SEEK_SET && li.whence != SEEK_END && li.whence != SEEK_DATA && li.whence != SEEK_HOLE)
    return r.status(EINVAL);
  const off_t off = ::lseek(h->fd.get(), static_cast<off_t>(li.offset), static_cast<int>(li.whence));
  if (off < 0) return r.status(errno);
  fuse_lseek_out lo{};
  lo.offset = static_cast<uint64_t>(off);
  return r.reply_obj(lo);
}

uint32_t PassthroughFs::Impl::op_copy_file_range(Req& r) {
  fuse_copy_file_range_in ci{};
  if (!r.take(ci)) return r.status(EINVAL);
  if (ci.flags != 0) return r.status(EINVAL);
  HandleP in = get_handle(ci.fh_in, false), out = get_handle(ci.fh_out, false);
  if (!in || !out) return r.status(EBADF);
  if (ci.off_in > kOffsetMax || ci.off_out > kOffsetMax) return r.status(EINVAL);
  if (!r.fits(sizeof(fuse_write_out))) return r.status(ERANGE);
  loff_t oi = static_cast<loff_t>(ci.off_in), oo = static_cast<loff_t>(ci.off_out);
  const ssize_t n = ::copy_file_range(in->fd.get(), &oi, out->fd.get(), &oo, std::min(ci.len, kCopyMax), 0);
  if (n < 0) return r.status(errno);
  fuse_write_out wo{};
  wo.size = static_cast<uint32_t>(n);
  return r.reply_obj(wo);
}

uint32_t PassthroughFs::Impl::op_syncfs(Req& r) {
  return r.status(::syncfs(root_dir_.get()) != 0 ? errno : 0);
}

PassthroughFs::PassthroughFs(PassthroughOptions options) : impl_(std::make_unique<Impl>(std::move(options))) {}
PassthroughFs::~PassthroughFs() = default;
uint32_t PassthroughFs::handle(ChainReader& in, ChainWriter& out) { return impl_->handle(in, out); }
void PassthroughFs::reset() { impl_->reset(); }
size_t PassthroughFs::inode_count() const { return impl_->inode_count(); }
size_t PassthroughFs::handle_count() const { return impl_->handle_count(); }

uint32_t PassthroughFs::Impl::op_setupmapping(Req& r) {
  if (!opt_.dax) return r.status(ENOSYS);
  fuse_setupmapping_in si{};
  if (!r.take(si)) return r.status(EINVAL);
  const bool writable = si.flags & FUSE_SETUPMAPPING_FLAG_WRITE;
  if (writable && opt_.read_only) return r.status(EROFS);
  if (si.foffset > kOffsetMax || si.len > opt_.dax->size()) return r.status(EINVAL);
  // Linux sends fh = -1 and names the inode: map the file it looked up, opened
  // for this mapping alone (the mapping keeps the file, not the fd).
  skiff::UniqueFd fd;
  if (HandleP h = si.fh == UINT64_MAX ? nullptr : get_handle(si.fh, false)) {
    fd.reset(::fcntl(h->fd.get(), F_DUPFD_CLOEXEC, 0));
    if (!fd) return r.status(errno);
  } else {
    if (si.fh != UINT64_MAX) return r.status(EBADF);
    InodeP ino = inode(r.h.nodeid);
    if (!ino) return r.status(EBADF);
    if (ino->type != S_IFREG) return r.status(EINVAL);
    if (int e = reopen(*ino, writable ? O_RDWR : O_RDONLY, fd)) return r.status(e);
  }
  return r.status(-opt_.dax->map(si.moffset, si.len, fd.get(), si.foffset, writable));
}

uint32_t PassthroughFs::Impl::op_removemapping(Req& r) {
  if (!opt_.dax) return r.status(ENOSYS);
  fuse_removemapping_in ri{};
  if (!r.take(ri)) return r.status(EINVAL);
  // The count is the guest's; the entries actually sent bound the work.
  fuse_removemapping_one one{};
  for (uint32_t i = 0; i < ri.count; ++i) {
    if (!r.take(one)) return r.status(EINVAL);
    if (int e = -opt_.dax->unmap(one.moffset, one.len)) return r.status(e);
  }
  return r.status(0);
}

}  // namespace skiff::virtio
