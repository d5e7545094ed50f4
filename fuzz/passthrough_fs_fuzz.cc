// libFuzzer target for the FUSE passthrough server (virtio/fs/passthrough_fs.h).
//
// A scratch directory is made once per process (on /dev/shm when it is there:
// tmpfs makes fsync/syncfs cheap): base/root/ is shared, base/canary sits
// outside it. Per input the root is rebuilt (a file, a directory, symlinks
// out of the share: "../canary", an absolute one, "..") and a fresh server
// serves it, so nodeids and handles start over.
// Input: 1 control byte, then records until the input ends (at most 64):
//   u16 in_len, u16 out_len, u8 split, then in_len bytes (fewer at the end):
//   the raw request, fuse_in_header included; the reply buffer is out_len
//   bytes. `split` cuts both into up to three spans.
//   control bit 0: send a well-formed INIT first; bit 1: read-only; bit 2:
//   writeback; bit 3: xattrs off; bits 4-5: cache mode.
//
// Checked beyond "no crash / no sanitizer report", after every request: the
// reply fits its buffer, its header says its length and echoes the unique,
// errors come alone and no-reply opcodes get none; no attribute or dirent
// carries the canary's inode number; and after each input the canary
// (content, times, mode) and base/ (nothing but root/ and canary) are as
// they were.
// Files are capped at 1 MiB (RLIMIT_FSIZE, SIGXFSZ ignored: EFBIG instead)
// so that FALLOCATE and COPY_FILE_RANGE can't fill the disk; SETLKW waits at
// most 1 ms.
//
// Seeds in fuzz/corpus/passthrough_fs/ are made by fuzz/passthrough_fs_seeds.py.
#include <dirent.h>
#include <fcntl.h>
#include <linux/fuse.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <span>
#include <string>
#include <vector>

#include "virtio/fs/passthrough_fs.h"

namespace {

using skiff::virtio::ChainReader;
using skiff::virtio::ChainWriter;
using skiff::virtio::PassthroughFs;
using skiff::virtio::PassthroughOptions;

constexpr int kMaxRequests = 64;

void check(bool ok) {
  if (!ok) std::abort();
}

struct Scratch {
  std::string base, root, canary;
  struct stat canary_st {};
  Scratch() {
    signal(SIGXFSZ, SIG_IGN);
    const rlimit fsize{1 << 20, 1 << 20};
    check(setrlimit(RLIMIT_FSIZE, &fsize) == 0);
    struct stat shm {};
    const char* tmp = std::getenv("TMPDIR");
    std::string dir = stat("/dev/shm", &shm) == 0 && S_ISDIR(shm.st_mode) && access("/dev/shm", W_OK) == 0
                          ? "/dev/shm"
                          : (tmp && *tmp ? tmp : "/tmp");
    std::string tmpl = dir + "/skiff-fuse-fuzz-XXXXXX";
    check(mkdtemp(tmpl.data()) != nullptr);
    base = tmpl;
    root = base + "/root";
    canary = base + "/canary";
    const int fd = open(canary.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    check(fd >= 0 && write(fd, "canary", 6) == 6);
    close(fd);
    // An atime older than the mtime: any read would move it (relatime).
    const timespec ts[2] = {{1000000000, 0}, {1500000000, 0}};
    check(utimensat(AT_FDCWD, canary.c_str(), ts, 0) == 0);
    check(lstat(canary.c_str(), &canary_st) == 0);
  }
  ~Scratch() {
    std::error_code ec;
    std::filesystem::remove_all(base, ec);
  }

  void rebuild() {
    std::error_code ec;
    std::filesystem::remove_all(root, ec);
    check(mkdir(root.c_str(), 0755) == 0);
    const int fd = open((root + "/a").c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    check(fd >= 0 && write(fd, "hello world\n", 12) == 12);
    close(fd);
    check(mkdir((root + "/d").c_str(), 0755) == 0);
    const int b = open((root + "/d/b").c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
    check(b >= 0);
    close(b);
    check(symlink("../canary", (root + "/l").c_str()) == 0);
    check(symlink(canary.c_str(), (root + "/abs").c_str()) == 0);
    check(symlink("..", (root + "/up").c_str()) == 0);
  }

  void verify() const {
    struct stat st {};
    check(lstat(canary.c_str(), &st) == 0);
    check(st.st_ino == canary_st.st_ino && st.st_size == 6 && st.st_mode == canary_st.st_mode);
    check(st.st_atim.tv_sec == canary_st.st_atim.tv_sec && st.st_mtim.tv_sec == canary_st.st_mtim.tv_sec);
    check(st.st_ctim.tv_sec == canary_st.st_ctim.tv_sec && st.st_ctim.tv_nsec == canary_st.st_ctim.tv_nsec);
    char buf[8] = {};
    const int fd = open(canary.c_str(), O_RDONLY | O_NOATIME | O_CLOEXEC);
    check(fd >= 0 && pread(fd, buf, sizeof buf, 0) == 6 && std::memcmp(buf, "canary", 6) == 0);
    close(fd);
    int entries = 0;
    for (const auto& e : std::filesystem::directory_iterator(base)) {
      const auto name = e.path().filename();
      check(name == "root" || name == "canary");
      ++entries;
    }
    check(entries == 2);
  }
};

Scratch& scratch() {
  static Scratch s;
  return s;
}

template <typename B>
std::vector<std::span<B>> split(std::span<B> buf, uint8_t how) {
  const size_t n = buf.size();
  if (n < 3 || (how & 3) == 0) return {buf};
  const size_t a = (how * 7u) % n, b = a + ((how >> 2) * 13u) % (n - a);
  return {buf.subspan(0, a), buf.subspan(a, b - a), buf.subspan(b)};
}

template <typename T>
T at(const std::vector<uint8_t>& v, size_t off) {
  T x{};
  std::memcpy(&x, v.data() + off, sizeof x);
  return x;
}

// No attribute or dirent in a reply may name the canary.
void check_inodes(uint32_t opcode, const std::vector<uint8_t>& out, uint32_t len, ino_t canary) {
  const size_t body = sizeof(fuse_out_header);
  switch (opcode) {
    case FUSE_LOOKUP:
    case FUSE_MKNOD:
    case FUSE_MKDIR:
    case FUSE_SYMLINK:
    case FUSE_LINK:
    case FUSE_CREATE:
      if (len >= body + sizeof(fuse_entry_out))
        check(at<fuse_entry_out>(out, body).attr.ino != canary);
      break;
    case FUSE_GETATTR:
    case FUSE_SETATTR:
      if (len >= body + sizeof(fuse_attr_out)) check(at<fuse_attr_out>(out, body).attr.ino != canary);
      break;
    case FUSE_READDIR:
    case FUSE_READDIRPLUS: {
      const bool plus = opcode == FUSE_READDIRPLUS;
      for (size_t pos = body; pos < len;) {
        if (plus) check(at<fuse_entry_out>(out, pos).attr.ino != canary);
        const size_t hdr = pos + (plus ? sizeof(fuse_entry_out) : 0);
        check(hdr + FUSE_NAME_OFFSET <= len);
        const auto de = at<fuse_dirent>(out, hdr);
        check(de.ino != canary && de.namelen > 0 && de.namelen <= 255);
        pos += plus ? FUSE_DIRENT_ALIGN(FUSE_NAME_OFFSET_DIRENTPLUS + de.namelen)
                    : FUSE_DIRENT_ALIGN(FUSE_NAME_OFFSET + de.namelen);
        check(pos <= len);
      }
      break;
    }
    default: break;
  }
}

uint64_t g_unique = 0;

uint32_t serve(PassthroughFs& fs, std::vector<uint8_t>& in, size_t out_len, uint8_t how) {
  std::vector<uint8_t> out(out_len, 0xA5);
  ChainReader r(split(std::span<const uint8_t>(in), how));
  ChainWriter w(split(std::span<uint8_t>(out), static_cast<uint8_t>(how * 31)));
  const uint32_t n = fs.handle(r, w);
  if (in.size() < sizeof(fuse_in_header)) {
    check(n == 0);
    return n;
  }
  const auto h = at<fuse_in_header>(in, 0);
  if (h.opcode == FUSE_FORGET || h.opcode == FUSE_BATCH_FORGET || h.opcode == FUSE_INTERRUPT) check(n == 0);
  if (n == 0) return n;
  check(n <= out_len && n >= sizeof(fuse_out_header));
  const auto oh = at<fuse_out_header>(out, 0);
  check(oh.len == n && oh.unique == h.unique);
  check(oh.error <= 0 && oh.error > -4096);
  if (oh.error != 0) check(n == sizeof(fuse_out_header));
  else check_inodes(h.opcode, out, n, scratch().canary_st.st_ino);
  return n;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  Scratch& s = scratch();
  s.rebuild();
  const uint8_t ctl = data[0];
  PassthroughOptions o;
  o.root = s.root;
  o.read_only = ctl & 2;
  o.writeback = ctl & 4;
  o.xattr = !(ctl & 8);
  o.cache = static_cast<skiff::virtio::FsCacheMode>(((ctl >> 4) & 3) % 3);
  o.max_inodes = 256;
  o.max_handles = 256;
  o.setlkw_timeout_ms = 1;
  {
    PassthroughFs fs(o);
    if (ctl & 1) {
      std::vector<uint8_t> init(sizeof(fuse_in_header) + sizeof(fuse_init_in));
      fuse_in_header h{};
      h.len = static_cast<uint32_t>(init.size());
      h.opcode = FUSE_INIT;
      h.unique = ++g_unique;
      fuse_init_in ii{};
      ii.major = 7;
      ii.minor = 38;
      ii.max_readahead = 1 << 17;
      ii.flags = 0xffffffffu;
      std::memcpy(init.data(), &h, sizeof h);
      std::memcpy(init.data() + sizeof h, &ii, sizeof ii);
      check(serve(fs, init, 4096, 0) == sizeof(fuse_out_header) + sizeof(fuse_init_out));
    }
    size_t pos = 1;
    for (int i = 0; i < kMaxRequests && pos + 5 <= size; ++i) {
      uint16_t in_len, out_len;
      std::memcpy(&in_len, data + pos, 2);
      std::memcpy(&out_len, data + pos + 2, 2);
      const uint8_t how = data[pos + 4];
      pos += 5;
      const size_t n = std::min<size_t>(in_len, size - pos);
      std::vector<uint8_t> in(data + pos, data + pos + n);
      pos += n;
      serve(fs, in, out_len, how);
    }
  }
  s.verify();
  return 0;
}
