#include "virtio/fs/passthrough_fs.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/fuse.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include "base/unique_fd.h"

namespace skiff::virtio {
namespace {

namespace fs = std::filesystem;
using namespace std::string_literals;

constexpr size_t kOut = (1 << 20) + 4096;
constexpr uint64_t kMaxLock = INT64_MAX;

std::vector<uint8_t> pattern(size_t n, uint8_t seed) {
  std::vector<uint8_t> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = static_cast<uint8_t>(seed + i * 7 + (i >> 9));
  return v;
}

std::string temp_dir(const char* tag) {
  const char* dir = std::getenv("TMPDIR");
  std::string tmpl = std::string(dir && *dir ? dir : "/tmp") + "/skiff-" + tag + "-XXXXXX";
  if (!::mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp");
  return tmpl;
}

// Request arguments, built as the kernel lays them out.
struct Args {
  std::vector<uint8_t> b;
  template <typename T>
  Args& obj(const T& v) {
    const auto* p = reinterpret_cast<const uint8_t*>(&v);
    b.insert(b.end(), p, p + sizeof v);
    return *this;
  }
  Args& str(std::string_view s) {
    b.insert(b.end(), s.begin(), s.end());
    b.push_back(0);
    return *this;
  }
  Args& raw(const std::vector<uint8_t>& v) {
    b.insert(b.end(), v.begin(), v.end());
    return *this;
  }
};

struct Reply {
  uint32_t len = 0;  // what handle() returned
  fuse_out_header h{};
  std::vector<uint8_t> body;
  int err() const { return -h.error; }
  template <typename T>
  T as(size_t off = 0) const {
    T v{};
    EXPECT_GE(body.size(), off + sizeof(T));
    if (body.size() >= off + sizeof(T)) std::memcpy(&v, body.data() + off, sizeof(T));
    return v;
  }
};

// Cuts a buffer into three spans at points that move with `seed`, so
// headers and structs straddle span boundaries.
template <typename B>
std::vector<std::span<B>> split3(std::span<B> buf, size_t seed) {
  const size_t n = buf.size();
  if (n < 8) return {buf};
  const size_t third = n / 3;
  const size_t a = 1 + seed % third, b = a + 1 + (seed * 7) % third;
  return {buf.subspan(0, a), buf.subspan(a, b - a), buf.subspan(b)};
}

// Drives a PassthroughFs the way the virtio-fs device does: a request in
// guest-readable spans, the reply in guest-writable spans.
class Client {
 public:
  explicit Client(PassthroughFs& fs) : fs_(fs) {}
  uint32_t uid = 0, gid = 0;
  std::optional<uint64_t> forbidden_ino;  // an inode outside the share: no reply may carry it
  std::atomic<int> forbidden_hits{0};

  Reply call(uint32_t op, uint64_t nodeid, const Args& a = {}, size_t out_size = kOut) {
    const uint64_t unique = ++unique_;
    std::vector<uint8_t> in(sizeof(fuse_in_header) + a.b.size());
    fuse_in_header h{};
    h.len = static_cast<uint32_t>(in.size());
    h.opcode = op;
    h.unique = unique;
    h.nodeid = nodeid;
    h.uid = uid;
    h.gid = gid;
    h.pid = 42;
    std::memcpy(in.data(), &h, sizeof h);
    if (!a.b.empty()) std::memcpy(in.data() + sizeof h, a.b.data(), a.b.size());
    std::vector<uint8_t> out(out_size, 0xAA);
    ChainReader r(split3(std::span<const uint8_t>(in), unique));
    ChainWriter w(split3(std::span<uint8_t>(out), unique * 3));
    Reply rep;
    rep.len = fs_.handle(r, w);
    if (rep.len == 0) return rep;
    EXPECT_LE(rep.len, out_size);
    EXPECT_GE(rep.len, sizeof(fuse_out_header));
    std::memcpy(&rep.h, out.data(), sizeof rep.h);
    EXPECT_EQ(rep.h.len, rep.len);
    EXPECT_EQ(rep.h.unique, unique);
    if (rep.h.error != 0) {
      EXPECT_EQ(rep.len, sizeof(fuse_out_header));
    }
    rep.body.assign(out.begin() + sizeof(fuse_out_header), out.begin() + rep.len);
    if (forbidden_ino) {
      for (size_t i = 0; i + 8 <= rep.body.size(); ++i) {
        uint64_t v;
        std::memcpy(&v, rep.body.data() + i, 8);
        if (v == *forbidden_ino) ++forbidden_hits;
      }
    }
    return rep;
  }

  Reply init(uint32_t minor = 38, uint32_t flags = 0xffffffffu & ~FUSE_INIT_EXT) {
    fuse_init_in ii{};
    ii.major = 7;
    ii.minor = minor;
    ii.max_readahead = 128 * 1024;
    ii.flags = flags;
    return call(FUSE_INIT, 0, Args().obj(ii));
  }

  struct Entry {
    int err = 0;
    uint64_t nodeid = 0;
    fuse_attr attr{};
  };
  Entry entry_of(const Reply& r) {
    Entry e;
    e.err = r.err();
    if (e.err == 0) {
      const auto eo = r.as<fuse_entry_out>();
      e.nodeid = eo.nodeid;
      e.attr = eo.attr;
    }
    return e;
  }
  Entry lookup(uint64_t parent, std::string_view name) { return entry_of(call(FUSE_LOOKUP, parent, Args().str(name))); }
  void forget(uint64_t nodeid, uint64_t n = 1) {
    fuse_forget_in fi{n};
    EXPECT_EQ(call(FUSE_FORGET, nodeid, Args().obj(fi)).len, 0u);
  }
  Entry mkdir(uint64_t parent, std::string_view name, uint32_t mode = 0755) {
    fuse_mkdir_in mi{mode, 022};
    return entry_of(call(FUSE_MKDIR, parent, Args().obj(mi).str(name)));
  }
  Entry symlink(uint64_t parent, std::string_view name, std::string_view target) {
    return entry_of(call(FUSE_SYMLINK, parent, Args().str(name).str(target)));
  }
  struct Created {
    int err = 0;
    uint64_t nodeid = 0, fh = 0;
    fuse_attr attr{};
  };
  Created create(uint64_t parent, std::string_view name, uint32_t mode = 0644, uint32_t flags = O_RDWR | O_CREAT) {
    fuse_create_in ci{flags, S_IFREG | mode, 022, 0};
    const Reply r = call(FUSE_CREATE, parent, Args().obj(ci).str(name));
    Created c;
    c.err = r.err();
    if (c.err == 0) {
      const auto eo = r.as<fuse_entry_out>();
      c.nodeid = eo.nodeid;
      c.attr = eo.attr;
      c.fh = r.as<fuse_open_out>(sizeof(fuse_entry_out)).fh;
    }
    return c;
  }
  std::pair<int, uint64_t> open(uint64_t nodeid, uint32_t flags, bool dir = false) {
    fuse_open_in oi{flags, 0};
    const Reply r = call(dir ? FUSE_OPENDIR : FUSE_OPEN, nodeid, Args().obj(oi));
    return {r.err(), r.err() ? 0 : r.as<fuse_open_out>().fh};
  }
  int release(uint64_t nodeid, uint64_t fh, bool dir = false) {
    fuse_release_in ri{};
    ri.fh = fh;
    return call(dir ? FUSE_RELEASEDIR : FUSE_RELEASE, nodeid, Args().obj(ri)).err();
  }
  std::pair<int, uint32_t> write(uint64_t nodeid, uint64_t fh, uint64_t off, const std::vector<uint8_t>& data) {
    fuse_write_in wi{};
    wi.fh = fh;
    wi.offset = off;
    wi.size = static_cast<uint32_t>(data.size());
    const Reply r = call(FUSE_WRITE, nodeid, Args().obj(wi).raw(data));
    return {r.err(), r.err() ? 0 : r.as<fuse_write_out>().size};
  }
  Reply read(uint64_t nodeid, uint64_t fh, uint64_t off, uint32_t size, size_t out_size = kOut) {
    fuse_read_in ri{};
    ri.fh = fh;
    ri.offset = off;
    ri.size = size;
    return call(FUSE_READ, nodeid, Args().obj(ri), out_size);
  }
  Reply getattr(uint64_t nodeid) { return call(FUSE_GETATTR, nodeid, Args().obj(fuse_getattr_in{})); }
  int rename(uint64_t from, std::string_view a, uint64_t to, std::string_view b, uint32_t flags = 0) {
    fuse_rename2_in ri{to, flags, 0};
    return call(FUSE_RENAME2, from, Args().obj(ri).str(a).str(b)).err();
  }
  int unlink(uint64_t parent, std::string_view name) { return call(FUSE_UNLINK, parent, Args().str(name)).err(); }
  int rmdir(uint64_t parent, std::string_view name) { return call(FUSE_RMDIR, parent, Args().str(name)).err(); }
  Reply setattr(uint64_t nodeid, const fuse_setattr_in& s) { return call(FUSE_SETATTR, nodeid, Args().obj(s)); }
  int lock(uint32_t op, uint64_t nodeid, uint64_t fh, uint32_t type, uint64_t start, uint64_t end, uint32_t flags = 0,
           fuse_lk_out* out = nullptr) {
    fuse_lk_in li{};
    li.fh = fh;
    li.owner = fh;
    li.lk = {start, end, type, 42};
    li.lk_flags = flags;
    const Reply r = call(op, nodeid, Args().obj(li));
    if (out && r.err() == 0) *out = r.as<fuse_lk_out>();
    return r.err();
  }

  // READDIR/READDIRPLUS from `off` with a buffer of `size`: (name, off, nodeid).
  struct Dirent {
    std::string name;
    uint64_t ino, off, nodeid;
    uint32_t type;
  };
  int readdir(uint64_t nodeid, uint64_t fh, uint64_t off, uint32_t size, bool plus, std::vector<Dirent>& out) {
    fuse_read_in ri{};
    ri.fh = fh;
    ri.offset = off;
    ri.size = size;
    const Reply r = call(plus ? FUSE_READDIRPLUS : FUSE_READDIR, nodeid, Args().obj(ri));
    if (r.err()) return r.err();
    EXPECT_LE(r.body.size(), size);
    size_t pos = 0;
    while (pos < r.body.size()) {
      Dirent d{};
      size_t hdr = pos;
      if (plus) {
        d.nodeid = r.as<fuse_entry_out>(pos).nodeid;
        hdr += sizeof(fuse_entry_out);
      }
      const auto de = r.as<fuse_dirent>(hdr);
      d.ino = de.ino;
      d.off = de.off;
      d.type = de.type;
      EXPECT_LE(hdr + FUSE_NAME_OFFSET + de.namelen, r.body.size());
      d.name.assign(reinterpret_cast<const char*>(r.body.data() + hdr + FUSE_NAME_OFFSET), de.namelen);
      const size_t sz = plus ? FUSE_DIRENT_ALIGN(FUSE_NAME_OFFSET_DIRENTPLUS + de.namelen)
                             : FUSE_DIRENT_ALIGN(FUSE_NAME_OFFSET + de.namelen);
      pos += sz;
      out.push_back(d);
    }
    EXPECT_EQ(pos, r.body.size());
    return 0;
  }

 private:
  PassthroughFs& fs_;
  std::atomic<uint64_t> unique_{0};
};

struct stat host_stat(const std::string& p) {
  struct stat st {};
  EXPECT_EQ(::lstat(p.c_str(), &st), 0) << p;
  return st;
}

std::string host_read(const std::string& p) {
  UniqueFd fd(::open(p.c_str(), O_RDONLY | O_NOATIME | O_CLOEXEC));
  std::string s;
  char buf[4096];
  ssize_t n;
  while (fd && (n = ::read(fd.get(), buf, sizeof buf)) > 0) s.append(buf, static_cast<size_t>(n));
  return s;
}

void host_write(const std::string& p, std::string_view data) {
  UniqueFd fd(::open(p.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  ASSERT_TRUE(fd.valid()) << p;
  ASSERT_EQ(::write(fd.get(), data.data(), data.size()), static_cast<ssize_t>(data.size()));
}

// Each test gets base/ with the shared root base/root/ and a canary file
// base/canary outside it: at the end the canary must be untouched (content,
// mtime, ctime and an atime old enough that any read would move it), base/
// must hold nothing new, and no reply may have carried the canary's inode.
class PassthroughFsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    base_ = temp_dir("pfs");
    root_ = base_ + "/root";
    canary_ = base_ + "/canary";
    ASSERT_EQ(::mkdir(root_.c_str(), 0755), 0);
    host_write(canary_, "secret canary");
    const timespec ts[2] = {{1000000000, 0}, {1500000000, 0}};
    ASSERT_EQ(::utimensat(AT_FDCWD, canary_.c_str(), ts, 0), 0);
    canary_st_ = host_stat(canary_);
    fs_ = std::make_unique<PassthroughFs>(options());
    c_ = std::make_unique<Client>(*fs_);
    c_->forbidden_ino = canary_st_.st_ino;
    ASSERT_EQ(c_->init().err(), 0);
  }
  void TearDown() override {
    const struct stat st = host_stat(canary_);
    EXPECT_EQ(st.st_atim.tv_sec, canary_st_.st_atim.tv_sec) << "canary read";
    EXPECT_EQ(st.st_mtim.tv_sec, canary_st_.st_mtim.tv_sec) << "canary written";
    EXPECT_EQ(st.st_ctim.tv_sec, canary_st_.st_ctim.tv_sec);
    EXPECT_EQ(st.st_ctim.tv_nsec, canary_st_.st_ctim.tv_nsec) << "canary changed";
    EXPECT_EQ(st.st_mode, canary_st_.st_mode);
    EXPECT_EQ(host_read(canary_), "secret canary");
    std::set<std::string> names;
    for (const auto& e : fs::directory_iterator(base_)) names.insert(e.path().filename());
    EXPECT_EQ(names, (std::set<std::string>{"root", "canary"}));
    EXPECT_EQ(c_->forbidden_hits.load(), 0) << "a reply carried the canary's inode number";
    c_.reset();
    fs_.reset();
    std::error_code ec;
    fs::remove_all(base_, ec);
  }
  virtual PassthroughOptions options() {
    PassthroughOptions o;
    o.root = root_;
    return o;
  }
  std::string path(const std::string& rel) const { return root_ + "/" + rel; }

  std::string base_, root_, canary_;
  struct stat canary_st_ {};
  std::unique_ptr<PassthroughFs> fs_;
  std::unique_ptr<Client> c_;
};

// ---------------------------------------------------------------------------
// Protocol basics

TEST(PassthroughFsSetup, BadRootThrowsWithThePath) {
  PassthroughOptions o;
  o.root = "/nonexistent/skiff-share";
  try {
    PassthroughFs fs(o);
    FAIL() << "no throw";
  } catch (const std::system_error& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/skiff-share"), std::string::npos);
    EXPECT_EQ(e.code().value(), ENOENT);
  }
  o.root = "/proc/self/exe";
  EXPECT_THROW(PassthroughFs{o}, std::system_error);
  o.root = "/tmp";
  o.uid_map = {0, 0xffffff00u, 0x1000};
  EXPECT_THROW(PassthroughFs{o}, std::invalid_argument);
}

TEST(PassthroughFsSetup, InitNegotiatesAndGatesEverythingElse) {
  const std::string dir = temp_dir("pfs-init");
  PassthroughOptions o;
  o.root = dir;
  o.max_write = 1 << 20;
  PassthroughFs fs(o);
  Client c(fs);
  EXPECT_EQ(c.getattr(FUSE_ROOT_ID).err(), EIO) << "before INIT";
  EXPECT_EQ(c.lookup(FUSE_ROOT_ID, "x").err, EIO);
  EXPECT_EQ(c.init(30).err(), EPROTO);
  fuse_init_in old{};
  old.major = 6;
  EXPECT_EQ(c.call(FUSE_INIT, 0, Args().obj(old)).err(), EPROTO);
  old.major = 8;
  const Reply newer = c.call(FUSE_INIT, 0, Args().obj(old));
  EXPECT_EQ(newer.err(), 0);
  EXPECT_EQ(newer.as<fuse_init_out>().major, 7u) << "a newer major is answered with ours";
  EXPECT_EQ(c.call(FUSE_INIT, 0, Args().raw({7, 0, 0})).err(), EINVAL) << "truncated init";

  const Reply r = c.init(40);
  ASSERT_EQ(r.err(), 0);
  const auto io = r.as<fuse_init_out>();
  EXPECT_EQ(io.major, 7u);
  EXPECT_EQ(io.minor, 38u);
  EXPECT_EQ(io.max_write, 1u << 20);
  EXPECT_EQ(io.max_pages, 256);
  EXPECT_EQ(io.max_readahead, 128u * 1024);
  for (uint32_t f : {FUSE_ASYNC_READ, FUSE_PARALLEL_DIROPS, FUSE_ATOMIC_O_TRUNC, FUSE_BIG_WRITES, FUSE_DO_READDIRPLUS,
                     FUSE_READDIRPLUS_AUTO, FUSE_POSIX_LOCKS, FUSE_FLOCK_LOCKS, FUSE_MAX_PAGES, FUSE_CACHE_SYMLINKS})
    EXPECT_TRUE(io.flags & f) << f;
  EXPECT_FALSE(io.flags & FUSE_WRITEBACK_CACHE) << "not opted in";
  EXPECT_FALSE(io.flags & FUSE_SPLICE_READ);
  // Only what the kernel offered.
  const auto limited = c.init(31, FUSE_ASYNC_READ | FUSE_WRITEBACK_CACHE).as<fuse_init_out>();
  EXPECT_EQ(limited.minor, 31u);
  EXPECT_EQ(limited.flags, uint32_t{FUSE_ASYNC_READ});
  EXPECT_EQ(c.getattr(FUSE_ROOT_ID).err(), 0);

  EXPECT_EQ(c.call(FUSE_DESTROY, 0).err(), 0);
  EXPECT_EQ(c.getattr(FUSE_ROOT_ID).err(), EIO) << "after DESTROY";
  fs::remove_all(dir);

  PassthroughOptions wb;
  wb.root = "/tmp";
  wb.writeback = true;
  PassthroughFs fs2(wb);
  Client c2(fs2);
  EXPECT_TRUE(c2.init().as<fuse_init_out>().flags & FUSE_WRITEBACK_CACHE);
}

TEST_F(PassthroughFsTest, MalformedRequestsGetErrorsNotCrashes) {
  // Shorter than a fuse_in_header: no reply at all.
  std::vector<uint8_t> tiny(20, 0);
  std::vector<uint8_t> out(256);
  {
    ChainReader r({std::span<const uint8_t>(tiny)});
    ChainWriter w({std::span<uint8_t>(out)});
    EXPECT_EQ(fs_->handle(r, w), 0u);
  }
  // No room for even a reply header: nothing written, nothing done.
  host_write(path("f"), "x");
  {
    fuse_in_header h{};
    h.opcode = FUSE_LOOKUP;
    h.nodeid = FUSE_ROOT_ID;
    std::vector<uint8_t> in(sizeof h + 2);
    std::memcpy(in.data(), &h, sizeof h);
    in[sizeof h] = 'f';
    std::vector<uint8_t> small(15);
    ChainReader r({std::span<const uint8_t>(in)});
    ChainWriter w({std::span<uint8_t>(small)});
    EXPECT_EQ(fs_->handle(r, w), 0u);
    EXPECT_EQ(fs_->inode_count(), 1u);
  }
  // A reply that doesn't fit: ERANGE and no lookup reference taken.
  EXPECT_EQ(c_->call(FUSE_LOOKUP, FUSE_ROOT_ID, Args().str("f"), 40).err(), ERANGE);
  EXPECT_EQ(fs_->inode_count(), 1u);
  EXPECT_EQ(c_->call(FUSE_GETATTR, FUSE_ROOT_ID, {}, 20).err(), ERANGE);
  // Truncated arguments and names without their NUL.
  EXPECT_EQ(c_->call(FUSE_LOOKUP, FUSE_ROOT_ID, Args().raw({'f'})).err(), EINVAL);
  EXPECT_EQ(c_->call(FUSE_LOOKUP, FUSE_ROOT_ID).err(), EINVAL);
  EXPECT_EQ(c_->call(FUSE_LOOKUP, FUSE_ROOT_ID, Args().str(std::string(300, 'n'))).err(), ENAMETOOLONG);
  EXPECT_EQ(c_->call(FUSE_OPEN, FUSE_ROOT_ID, Args().raw({1, 2})).err(), EINVAL);
  EXPECT_EQ(c_->call(FUSE_SETATTR, FUSE_ROOT_ID, Args().raw({1, 2, 3})).err(), EINVAL);
  EXPECT_EQ(c_->call(FUSE_READ, FUSE_ROOT_ID).err(), EINVAL);
  EXPECT_EQ(c_->call(FUSE_WRITE, FUSE_ROOT_ID).err(), EINVAL);
  EXPECT_EQ(c_->call(FUSE_RENAME, FUSE_ROOT_ID, Args().obj(uint64_t{1}).str("f")).err(), EINVAL);
  // A WRITE claiming more data than the request carries.
  auto [e, fh] = c_->open(c_->lookup(FUSE_ROOT_ID, "f").nodeid, O_RDWR);
  ASSERT_EQ(e, 0);
  fuse_write_in wi{};
  wi.fh = fh;
  wi.size = 100;
  EXPECT_EQ(c_->call(FUSE_WRITE, 2, Args().obj(wi).raw({1, 2, 3})).err(), EINVAL);
  wi.size = (1 << 20) + 1;
  EXPECT_EQ(c_->call(FUSE_WRITE, 2, Args().obj(wi).raw(std::vector<uint8_t>((1 << 20) + 1))).err(), EINVAL);
  // Unknown and unsupported opcodes.
  for (uint32_t op : std::initializer_list<uint32_t>{0u, 7u, 19u, FUSE_BMAP, FUSE_IOCTL, FUSE_POLL, FUSE_NOTIFY_REPLY, FUSE_SETUPMAPPING,
                      FUSE_REMOVEMAPPING, FUSE_TMPFILE, 52u, 4096u, 0xffffffffu})
    EXPECT_EQ(c_->call(op, FUSE_ROOT_ID, Args().raw(std::vector<uint8_t>(64))).err(), ENOSYS) << op;
  // No-reply requests.
  fuse_interrupt_in ii{1};
  EXPECT_EQ(c_->call(FUSE_INTERRUPT, 0, Args().obj(ii)).len, 0u);
  EXPECT_EQ(c_->call(FUSE_FORGET, 12345, Args().obj(fuse_forget_in{1})).len, 0u);
  EXPECT_EQ(c_->call(FUSE_FORGET, 12345).len, 0u);
  fuse_batch_forget_in bi{1000000, 0};  // claims far more than it carries
  EXPECT_EQ(c_->call(FUSE_BATCH_FORGET, 0, Args().obj(bi).obj(fuse_forget_one{999, 1})).len, 0u);
  EXPECT_EQ(fs_->inode_count(), 2u);
  EXPECT_EQ(host_read(path("f")), "x");
}

TEST_F(PassthroughFsTest, LookupGetattrForgetAndTheNodeidTable) {
  host_write(path("f"), "hello");
  ASSERT_EQ(::link(path("f").c_str(), path("g").c_str()), 0);
  const auto f = c_->lookup(FUSE_ROOT_ID, "f");
  ASSERT_EQ(f.err, 0);
  EXPECT_GT(f.nodeid, FUSE_ROOT_ID);
  EXPECT_EQ(f.attr.size, 5u);
  EXPECT_EQ(f.attr.ino, host_stat(path("f")).st_ino);
  EXPECT_EQ(f.attr.nlink, 2u);
  EXPECT_TRUE(S_ISREG(f.attr.mode));
  EXPECT_EQ(c_->lookup(FUSE_ROOT_ID, "g").nodeid, f.nodeid) << "same host inode, same nodeid";
  EXPECT_EQ(c_->lookup(FUSE_ROOT_ID, "missing").err, ENOENT);
  const auto attr = c_->getattr(f.nodeid).as<fuse_attr_out>();
  EXPECT_EQ(attr.attr.ino, f.attr.ino);
  EXPECT_EQ(attr.attr_valid, 1u) << "cache=auto";
  EXPECT_TRUE(S_ISDIR(c_->getattr(FUSE_ROOT_ID).as<fuse_attr_out>().attr.mode));
  // Two references: the first forget leaves it, the second drops it.
  c_->forget(f.nodeid);
  EXPECT_EQ(c_->getattr(f.nodeid).err(), 0);
  c_->forget(f.nodeid);
  EXPECT_EQ(c_->getattr(f.nodeid).err(), EBADF) << "forgotten";
  EXPECT_EQ(fs_->inode_count(), 1u);
  // A new lookup gets a new nodeid: old ones are never reused.
  const auto again = c_->lookup(FUSE_ROOT_ID, "f");
  EXPECT_NE(again.nodeid, f.nodeid);
  // Batch forget, with the root in it (ignored).
  fuse_batch_forget_in bi{2, 0};
  EXPECT_EQ(c_->call(FUSE_BATCH_FORGET, 0,
                     Args().obj(bi).obj(fuse_forget_one{again.nodeid, 5}).obj(fuse_forget_one{FUSE_ROOT_ID, 9}))
                .len,
            0u);
  EXPECT_EQ(c_->getattr(again.nodeid).err(), EBADF);
  EXPECT_EQ(c_->getattr(FUSE_ROOT_ID).err(), 0);
  // Never issued.
  for (uint64_t id : {uint64_t{0}, uint64_t{777}, ~uint64_t{0}}) {
    EXPECT_EQ(c_->getattr(id).err(), EBADF);
    EXPECT_EQ(c_->lookup(id, "f").err, EBADF);
    EXPECT_EQ(c_->open(id, O_RDONLY).first, EBADF);
    EXPECT_EQ(c_->mkdir(id, "d").err, EBADF);
    EXPECT_EQ(c_->create(id, "n").err, EBADF);
    EXPECT_EQ(c_->rename(FUSE_ROOT_ID, "f", id, "x"), EBADF);
  }
  // A file handle never issued.
  EXPECT_EQ(c_->read(FUSE_ROOT_ID, 4242, 0, 10).err(), EBADF);
  EXPECT_EQ(c_->write(FUSE_ROOT_ID, 4242, 0, {1}).first, EBADF);
  EXPECT_EQ(c_->release(FUSE_ROOT_ID, 4242), EBADF);
  EXPECT_EQ(c_->release(FUSE_ROOT_ID, 4242, true), EBADF);
}

TEST_F(PassthroughFsTest, NamesMustBeOneComponent) {
  host_write(path("f"), "x");
  ASSERT_EQ(::mkdir(path("d").c_str(), 0755), 0);
  const uint64_t d = c_->lookup(FUSE_ROOT_ID, "d").nodeid;
  const std::vector<std::pair<std::string, int>> bad = {
      {"", ENOENT}, {".", EINVAL}, {"..", EINVAL}, {"d/../f", EINVAL}, {"../canary", EINVAL},
      {"/etc/passwd", EINVAL}, {"a/", EINVAL}, {std::string(256, 'x'), ENAMETOOLONG}};
  for (const auto& [name, err] : bad) {
    SCOPED_TRACE(name);
    EXPECT_EQ(c_->lookup(d, name).err, err);
    EXPECT_EQ(c_->lookup(FUSE_ROOT_ID, name).err, err);
    EXPECT_EQ(c_->create(d, name).err, err);
    EXPECT_EQ(c_->mkdir(d, name).err, err);
    EXPECT_EQ(c_->symlink(d, name, "t").err, err);
    EXPECT_EQ(c_->unlink(FUSE_ROOT_ID, name), err);
    EXPECT_EQ(c_->rmdir(FUSE_ROOT_ID, name), err);
    EXPECT_EQ(c_->rename(FUSE_ROOT_ID, "f", d, name), err);
    EXPECT_EQ(c_->rename(d, name, FUSE_ROOT_ID, "g"), err);
    fuse_link_in li{c_->lookup(FUSE_ROOT_ID, "f").nodeid};
    EXPECT_EQ(c_->call(FUSE_LINK, d, Args().obj(li).str(name)).err(), err);
    fuse_mknod_in mi{S_IFIFO | 0644, 0, 0, 0};
    EXPECT_EQ(c_->call(FUSE_MKNOD, d, Args().obj(mi).str(name)).err(), err);
  }
  // A NUL inside the name ends it: "f\0junk" is "f".
  EXPECT_EQ(c_->call(FUSE_LOOKUP, FUSE_ROOT_ID, Args().raw({'f', 0, 'j', 'u', 'n', 'k'})).err(), 0);
  EXPECT_EQ(host_read(path("f")), "x");
  EXPECT_EQ(fs::directory_iterator(path("d")), fs::directory_iterator{}) << "nothing created";
}

// ---------------------------------------------------------------------------
// Namespace operations

TEST_F(PassthroughFsTest, CreateMkdirMknodSymlinkUnlinkRmdir) {
  const auto f = c_->create(FUSE_ROOT_ID, "f", 0640);
  ASSERT_EQ(f.err, 0);
  EXPECT_TRUE(S_ISREG(f.attr.mode));
  EXPECT_EQ(f.attr.mode & 07777, 0640u);
  EXPECT_EQ(c_->create(FUSE_ROOT_ID, "f", 0600, O_RDWR | O_CREAT | O_EXCL).err, EEXIST);
  const auto again = c_->create(FUSE_ROOT_ID, "f", 0600, O_RDWR | O_CREAT);
  EXPECT_EQ(again.err, 0) << "O_CREAT without O_EXCL opens the existing file";
  EXPECT_EQ(again.nodeid, f.nodeid);
  EXPECT_EQ(host_stat(path("f")).st_mode & 07777, 0640u) << "existing file's mode kept";

  const auto d = c_->mkdir(FUSE_ROOT_ID, "d", 0750);
  ASSERT_EQ(d.err, 0);
  EXPECT_TRUE(S_ISDIR(d.attr.mode));
  EXPECT_EQ(host_stat(path("d")).st_mode & 07777, 0750u);
  EXPECT_EQ(c_->mkdir(FUSE_ROOT_ID, "d").err, EEXIST);
  EXPECT_EQ(c_->create(FUSE_ROOT_ID, "d").err, EISDIR);

  fuse_mknod_in fifo{S_IFIFO | 0600, 0, 0, 0};
  const auto p = c_->entry_of(c_->call(FUSE_MKNOD, d.nodeid, Args().obj(fifo).str("p")));
  ASSERT_EQ(p.err, 0);
  EXPECT_TRUE(S_ISFIFO(host_stat(path("d/p")).st_mode));
  // Opening a host FIFO would block a worker: refused, and quickly.
  EXPECT_EQ(c_->open(p.nodeid, O_RDONLY).first, ENXIO);
  EXPECT_EQ(c_->create(d.nodeid, "p").err, EEXIST);
  fuse_mknod_in reg{S_IFREG | 0604, 0, 0, 0};
  EXPECT_EQ(c_->call(FUSE_MKNOD, d.nodeid, Args().obj(reg).str("r")).err(), 0);
  EXPECT_EQ(host_stat(path("d/r")).st_mode, S_IFREG | 0604u);
  fuse_mknod_in dev{S_IFCHR | 0600, (1u << 8) | 3, 0, 0};  // 1:3, /dev/null
  const auto n = c_->entry_of(c_->call(FUSE_MKNOD, d.nodeid, Args().obj(dev).str("null")));
  ASSERT_EQ(n.err, 0);
  EXPECT_EQ(host_stat(path("d/null")).st_rdev, makedev(1, 3));
  EXPECT_EQ(n.attr.rdev, (1u << 8) | 3);
  EXPECT_EQ(c_->open(n.nodeid, O_RDWR).first, ENXIO) << "device nodes are never opened on the host";
  fuse_mknod_in dir{S_IFDIR | 0755, 0, 0, 0};
  EXPECT_EQ(c_->call(FUSE_MKNOD, d.nodeid, Args().obj(dir).str("x")).err(), EPERM);

  const auto l = c_->symlink(FUSE_ROOT_ID, "l", "d/r");
  ASSERT_EQ(l.err, 0);
  EXPECT_TRUE(S_ISLNK(l.attr.mode));
  const Reply rl = c_->call(FUSE_READLINK, l.nodeid);
  EXPECT_EQ(std::string(rl.body.begin(), rl.body.end()), "d/r");
  EXPECT_EQ(c_->call(FUSE_READLINK, f.nodeid).err(), EINVAL);
  EXPECT_EQ(c_->call(FUSE_SYMLINK, FUSE_ROOT_ID, Args().str("e").str("")).err(), ENOENT);
  EXPECT_EQ(c_->call(FUSE_SYMLINK, FUSE_ROOT_ID, Args().str("e").raw({'t'})).err(), EINVAL);

  EXPECT_EQ(c_->rmdir(FUSE_ROOT_ID, "d"), ENOTEMPTY);
  EXPECT_EQ(c_->unlink(FUSE_ROOT_ID, "d"), EISDIR);
  EXPECT_EQ(c_->rmdir(FUSE_ROOT_ID, "f"), ENOTDIR);
  for (const char* name : {"p", "r", "null"}) EXPECT_EQ(c_->unlink(d.nodeid, name), 0);
  EXPECT_EQ(c_->rmdir(FUSE_ROOT_ID, "d"), 0);
  EXPECT_EQ(c_->unlink(FUSE_ROOT_ID, "l"), 0);
  EXPECT_EQ(c_->unlink(FUSE_ROOT_ID, "f"), 0);
  EXPECT_EQ(c_->unlink(FUSE_ROOT_ID, "f"), ENOENT);
  EXPECT_EQ(fs::directory_iterator(root_), fs::directory_iterator{});
}

TEST_F(PassthroughFsTest, OwnershipModesAndAccess) {
  const mode_t old = ::umask(077);  // our umask must not cut the guest's mode
  c_->uid = 1000;
  c_->gid = 1001;
  const auto f = c_->create(FUSE_ROOT_ID, "f", 0664);
  const auto d = c_->mkdir(FUSE_ROOT_ID, "d", 0775);
  const auto l = c_->symlink(FUSE_ROOT_ID, "l", "f");
  fuse_mknod_in mi{S_IFIFO | 0660, 0, 0, 0};
  const auto p = c_->entry_of(c_->call(FUSE_MKNOD, FUSE_ROOT_ID, Args().obj(mi).str("p")));
  ::umask(old);
  for (const auto& [name, mode] : std::vector<std::pair<std::string, mode_t>>{
           {"f", S_IFREG | 0664}, {"d", S_IFDIR | 0775}, {"p", S_IFIFO | 0660}}) {
    const struct stat st = host_stat(path(name));
    EXPECT_EQ(st.st_uid, 1000u) << name;
    EXPECT_EQ(st.st_gid, 1001u) << name;
    EXPECT_EQ(st.st_mode, mode) << name;
  }
  EXPECT_EQ(host_stat(path("l")).st_uid, 1000u);
  EXPECT_EQ(f.attr.uid, 1000u);
  EXPECT_EQ(d.attr.gid, 1001u);
  EXPECT_EQ(p.attr.mode, S_IFIFO | 0660u);
  EXPECT_EQ(l.attr.uid, 1000u);

  // A set-group-ID directory passes its group (and the bit, for directories) down.
  ASSERT_EQ(::chown(path("d").c_str(), 1000, 2000), 0);
  ASSERT_EQ(::chmod(path("d").c_str(), 02775), 0);
  const auto sub = c_->mkdir(d.nodeid, "sub", 0755);
  const auto in = c_->create(d.nodeid, "in", 0644);
  EXPECT_EQ(host_stat(path("d/sub")).st_gid, 2000u);
  EXPECT_EQ(host_stat(path("d/sub")).st_mode, S_IFDIR | 02755u);
  EXPECT_EQ(host_stat(path("d/in")).st_gid, 2000u);
  EXPECT_EQ(sub.attr.uid, 1000u);
  EXPECT_EQ(in.attr.uid, 1000u);

  // SETATTR: owner and mode (set-id bits survive a chown in the same request).
  fuse_setattr_in s{};
  s.valid = FATTR_UID | FATTR_GID | FATTR_MODE;
  s.uid = 3000;
  s.gid = 3001;
  s.mode = 04751;
  const Reply sr = c_->setattr(f.nodeid, s);
  ASSERT_EQ(sr.err(), 0);
  EXPECT_EQ(sr.as<fuse_attr_out>().attr.mode, S_IFREG | 04751u);
  EXPECT_EQ(sr.as<fuse_attr_out>().attr.uid, 3000u);
  EXPECT_EQ(host_stat(path("f")).st_uid, 3000u);
  EXPECT_EQ(host_stat(path("f")).st_gid, 3001u);
  EXPECT_EQ(host_stat(path("f")).st_mode, S_IFREG | 04751u);
  s.valid = FATTR_GID;
  s.gid = 5;
  EXPECT_EQ(c_->setattr(l.nodeid, s).err(), 0);
  EXPECT_EQ(host_stat(path("l")).st_gid, 5u) << "the symlink itself";
  EXPECT_EQ(host_stat(path("f")).st_gid, 3001u);
  s.valid = FATTR_MODE;
  EXPECT_EQ(c_->setattr(l.nodeid, s).err(), EOPNOTSUPP);

  // ACCESS, judged for the caller's ids.
  auto access = [&](uint64_t node, uint32_t mask) {
    fuse_access_in ai{mask, 0};
    return c_->call(FUSE_ACCESS, node, Args().obj(ai)).err();
  };
  c_->uid = 3000;
  c_->gid = 1;
  EXPECT_EQ(access(f.nodeid, R_OK | W_OK | X_OK), 0) << "owner rwx";
  c_->uid = 4000;
  c_->gid = 3001;
  EXPECT_EQ(access(f.nodeid, R_OK | X_OK), 0) << "group r-x";
  EXPECT_EQ(access(f.nodeid, W_OK), EACCES);
  c_->gid = 4000;
  EXPECT_EQ(access(f.nodeid, X_OK), 0) << "other --x";
  EXPECT_EQ(access(f.nodeid, R_OK), EACCES);
  EXPECT_EQ(access(f.nodeid, F_OK), 0);
  c_->uid = 0;
  EXPECT_EQ(access(f.nodeid, R_OK | W_OK | X_OK), 0) << "root";
  ASSERT_EQ(::chmod(path("f").c_str(), 0644), 0);
  EXPECT_EQ(access(f.nodeid, X_OK), EACCES) << "root needs an x bit";
  EXPECT_EQ(access(d.nodeid, X_OK), 0);
}

class PassthroughFsIdMapTest : public PassthroughFsTest {
  PassthroughOptions options() override {
    PassthroughOptions o = PassthroughFsTest::options();
    o.uid_map = {0, 100000, 65536};
    o.gid_map = {0, 200000, 65536};
    return o;
  }
};

TEST_F(PassthroughFsIdMapTest, GuestIdsMapToTheHostRangeAndBack) {
  c_->uid = 1000;
  c_->gid = 100;
  const auto f = c_->create(FUSE_ROOT_ID, "f");
  ASSERT_EQ(f.err, 0);
  EXPECT_EQ(host_stat(path("f")).st_uid, 101000u);
  EXPECT_EQ(host_stat(path("f")).st_gid, 200100u);
  EXPECT_EQ(f.attr.uid, 1000u) << "mapped back";
  EXPECT_EQ(f.attr.gid, 100u);
  fuse_setattr_in s{};
  s.valid = FATTR_UID | FATTR_GID;
  s.uid = 0;
  s.gid = 70000;  // outside the range: unchanged
  const Reply r = c_->setattr(f.nodeid, s);
  EXPECT_EQ(host_stat(path("f")).st_uid, 100000u);
  EXPECT_EQ(host_stat(path("f")).st_gid, 70000u);
  EXPECT_EQ(r.as<fuse_attr_out>().attr.uid, 0u);
  EXPECT_EQ(r.as<fuse_attr_out>().attr.gid, 70000u);
  host_write(path("h"), "");
  ASSERT_EQ(::chown(path("h").c_str(), 165535, 5), 0);
  const auto h = c_->lookup(FUSE_ROOT_ID, "h");
  EXPECT_EQ(h.attr.uid, 65535u);
  EXPECT_EQ(h.attr.gid, 5u);
}

TEST_F(PassthroughFsTest, SetattrSizeAndTimes) {
  host_write(path("f"), "0123456789");
  const auto f = c_->lookup(FUSE_ROOT_ID, "f");
  fuse_setattr_in s{};
  s.valid = FATTR_SIZE;
  s.size = 4;
  EXPECT_EQ(c_->setattr(f.nodeid, s).as<fuse_attr_out>().attr.size, 4u);
  EXPECT_EQ(host_read(path("f")), "0123");
  auto [e, fh] = c_->open(f.nodeid, O_RDWR);
  ASSERT_EQ(e, 0);
  s.valid = FATTR_SIZE | FATTR_FH;
  s.fh = fh;
  s.size = 2;
  EXPECT_EQ(c_->setattr(f.nodeid, s).err(), 0);
  EXPECT_EQ(host_read(path("f")), "01");
  s.fh = 999;
  EXPECT_EQ(c_->setattr(f.nodeid, s).err(), EBADF);
  s.valid = FATTR_SIZE;
  s.size = ~uint64_t{0};
  EXPECT_EQ(c_->setattr(f.nodeid, s).err(), EINVAL);
  s.size = 1;
  EXPECT_EQ(c_->setattr(FUSE_ROOT_ID, s).err(), EISDIR);

  s = {};
  s.valid = FATTR_ATIME | FATTR_MTIME;
  s.atime = 1234567890;
  s.atimensec = 5;
  s.mtime = 1111111111;
  s.mtimensec = 7;
  const auto a = c_->setattr(f.nodeid, s).as<fuse_attr_out>().attr;
  EXPECT_EQ(a.atime, 1234567890u);
  EXPECT_EQ(a.atimensec, 5u);
  EXPECT_EQ(a.mtime, 1111111111u);
  EXPECT_EQ(host_stat(path("f")).st_mtim.tv_sec, 1111111111);
  s.valid = FATTR_MTIME | FATTR_MTIME_NOW;
  const auto now = static_cast<uint64_t>(::time(nullptr));
  const auto b = c_->setattr(f.nodeid, s).as<fuse_attr_out>().attr;
  EXPECT_GE(b.mtime, now - 1);
  EXPECT_EQ(b.atime, 1234567890u) << "atime left alone";
  s.valid = FATTR_ATIME;
  s.atimensec = 1000000000;
  EXPECT_EQ(c_->setattr(f.nodeid, s).err(), EINVAL);
  EXPECT_EQ(c_->release(f.nodeid, fh), 0);
}

TEST_F(PassthroughFsTest, RenameAcrossDirectoriesNoreplaceAndExchange) {
  ASSERT_EQ(::mkdir(path("a").c_str(), 0755), 0);
  ASSERT_EQ(::mkdir(path("b").c_str(), 0755), 0);
  host_write(path("a/x"), "X");
  host_write(path("b/y"), "Y");
  const uint64_t a = c_->lookup(FUSE_ROOT_ID, "a").nodeid, b = c_->lookup(FUSE_ROOT_ID, "b").nodeid;
  const uint64_t x = c_->lookup(a, "x").nodeid;
  EXPECT_EQ(c_->rename(a, "x", b, "x2"), 0);
  EXPECT_EQ(host_read(path("b/x2")), "X");
  EXPECT_FALSE(fs::exists(path("a/x")));
  EXPECT_EQ(c_->lookup(b, "x2").nodeid, x) << "the inode keeps its nodeid";
  EXPECT_EQ(c_->rename(b, "x2", b, "y", RENAME_NOREPLACE), EEXIST);
  EXPECT_EQ(host_read(path("b/y")), "Y");
  EXPECT_EQ(c_->rename(b, "x2", a, "y", RENAME_EXCHANGE), ENOENT);
  EXPECT_EQ(c_->rename(b, "x2", b, "y", RENAME_EXCHANGE), 0);
  EXPECT_EQ(host_read(path("b/y")), "X");
  EXPECT_EQ(host_read(path("b/x2")), "Y");
  EXPECT_EQ(c_->rename(b, "x2", b, "y", RENAME_NOREPLACE | RENAME_EXCHANGE), EINVAL);
  EXPECT_EQ(c_->rename(b, "x2", b, "y", RENAME_WHITEOUT), EINVAL);
  // Plain RENAME (the old opcode) replaces.
  fuse_rename_in ri{a};
  EXPECT_EQ(c_->call(FUSE_RENAME, b, Args().obj(ri).str("y").str("z")).err(), 0);
  EXPECT_EQ(host_read(path("a/z")), "X");
  // Directories move too, but not into themselves.
  EXPECT_EQ(c_->rename(FUSE_ROOT_ID, "a", b, "a"), 0);
  EXPECT_EQ(host_read(path("b/a/z")), "X");
  EXPECT_EQ(c_->rename(FUSE_ROOT_ID, "b", a, "b"), EINVAL);
}

TEST_F(PassthroughFsTest, HardLinks) {
  host_write(path("f"), "data");
  ASSERT_EQ(::mkdir(path("d").c_str(), 0755), 0);
  const auto f = c_->lookup(FUSE_ROOT_ID, "f");
  const uint64_t d = c_->lookup(FUSE_ROOT_ID, "d").nodeid;
  fuse_link_in li{f.nodeid};
  const auto l = c_->entry_of(c_->call(FUSE_LINK, d, Args().obj(li).str("g")));
  ASSERT_EQ(l.err, 0);
  EXPECT_EQ(l.nodeid, f.nodeid);
  EXPECT_EQ(l.attr.nlink, 2u);
  EXPECT_EQ(host_stat(path("d/g")).st_ino, host_stat(path("f")).st_ino);
  EXPECT_EQ(c_->call(FUSE_LINK, d, Args().obj(li).str("g")).err(), EEXIST);
  fuse_link_in dir{d};
  EXPECT_EQ(c_->call(FUSE_LINK, FUSE_ROOT_ID, Args().obj(dir).str("dd")).err(), EPERM);
  // Lookup and link: two references, both on one nodeid.
  c_->forget(f.nodeid, 1);
  EXPECT_EQ(c_->getattr(f.nodeid).err(), 0);
  c_->forget(f.nodeid, 1);
  EXPECT_EQ(c_->getattr(f.nodeid).err(), EBADF);
}

// ---------------------------------------------------------------------------
// Data

TEST_F(PassthroughFsTest, LargeReadsAndWritesAcrossSpans) {
  const auto f = c_->create(FUSE_ROOT_ID, "big");
  ASSERT_EQ(f.err, 0);
  const auto data = pattern(1 << 20, 3);
  const auto [e, n] = c_->write(f.nodeid, f.fh, 4096, data);
  ASSERT_EQ(e, 0);
  EXPECT_EQ(n, 1u << 20);
  EXPECT_EQ(host_stat(path("big")).st_size, 4096 + (1 << 20));
  const Reply r = c_->read(f.nodeid, f.fh, 4096, 1 << 20);
  ASSERT_EQ(r.err(), 0);
  EXPECT_EQ(r.body, data);
  // A READ bigger than the guest's buffer is cut to fit it.
  const Reply cut = c_->read(f.nodeid, f.fh, 4096, 1 << 20, 16 + 1000);
  ASSERT_EQ(cut.err(), 0);
  EXPECT_EQ(cut.body, std::vector<uint8_t>(data.begin(), data.begin() + 1000));
  // Short at end of file, empty past it.
  EXPECT_EQ(c_->read(f.nodeid, f.fh, 4096 + (1 << 20) - 10, 100).body.size(), 10u);
  EXPECT_EQ(c_->read(f.nodeid, f.fh, 1ull << 40, 100).body.size(), 0u);
  EXPECT_EQ(c_->read(f.nodeid, f.fh, ~0ull, 100).err(), EINVAL);
  EXPECT_EQ(c_->write(f.nodeid, f.fh, ~0ull, {1}).first, EINVAL);
  // The hole before 4096 reads as zeros.
  EXPECT_EQ(c_->read(f.nodeid, f.fh, 0, 4096).body, std::vector<uint8_t>(4096, 0));
  // A read-only handle can't write.
  auto [oe, ro] = c_->open(f.nodeid, O_RDONLY);
  ASSERT_EQ(oe, 0);
  EXPECT_EQ(c_->write(f.nodeid, ro, 0, {1, 2}).first, EBADF);
  EXPECT_EQ(c_->release(f.nodeid, ro), 0);
  EXPECT_EQ(c_->release(f.nodeid, f.fh), 0);
  EXPECT_EQ(c_->read(f.nodeid, f.fh, 0, 10).err(), EBADF) << "released";
  EXPECT_EQ(fs_->handle_count(), 0u);
}

TEST_F(PassthroughFsTest, OpenFlagsAndCacheModes) {
  host_write(path("f"), "abcdef");
  const auto f = c_->lookup(FUSE_ROOT_ID, "f");
  fuse_open_in oi{O_WRONLY | O_TRUNC, 0};
  const Reply r = c_->call(FUSE_OPEN, f.nodeid, Args().obj(oi));
  ASSERT_EQ(r.err(), 0);
  EXPECT_EQ(r.as<fuse_open_out>().open_flags, 0u) << "cache=auto";
  EXPECT_EQ(host_read(path("f")), "");
  const uint64_t fh = r.as<fuse_open_out>().fh;
  EXPECT_EQ(c_->read(f.nodeid, fh, 0, 10).err(), EBADF) << "write-only";
  auto [ae, app] = c_->open(f.nodeid, O_WRONLY | O_APPEND);
  ASSERT_EQ(ae, 0);
  EXPECT_EQ(c_->write(f.nodeid, app, 0, {'x'}).first, 0);
  EXPECT_EQ(c_->write(f.nodeid, app, 0, {'y'}).first, 0);
  EXPECT_EQ(host_read(path("f")), "xy") << "O_APPEND kept";
  EXPECT_EQ(c_->open(FUSE_ROOT_ID, O_RDONLY).first, EISDIR);
  EXPECT_EQ(c_->open(f.nodeid, O_RDONLY, true).first, ENOTDIR);
  // Garbage flags are reduced to what matters.
  EXPECT_EQ(c_->open(f.nodeid, O_RDONLY | O_CREAT | O_EXCL | O_DIRECTORY | O_NOFOLLOW | O_PATH | O_DIRECT).first, 0);

  using Case = std::tuple<FsCacheMode, uint32_t, uint32_t, uint64_t>;
  for (auto [mode, file_flags, dir_flags, timeout] :
       {Case{FsCacheMode::kNone, FOPEN_DIRECT_IO, 0, 0},
        Case{FsCacheMode::kAlways, FOPEN_KEEP_CACHE, FOPEN_CACHE_DIR | FOPEN_KEEP_CACHE, 86400}}) {
    PassthroughOptions o;
    o.root = root_;
    o.cache = mode;
    PassthroughFs fs2(o);
    Client c2(fs2);
    c2.forbidden_ino = canary_st_.st_ino;
    c2.init();
    const Reply lr = c2.call(FUSE_LOOKUP, FUSE_ROOT_ID, Args().str("f"));
    EXPECT_EQ(lr.as<fuse_entry_out>().entry_valid, timeout);
    EXPECT_EQ(lr.as<fuse_entry_out>().attr_valid, timeout);
    fuse_open_in ro{O_RDONLY, 0};
    EXPECT_EQ(c2.call(FUSE_OPEN, lr.as<fuse_entry_out>().nodeid, Args().obj(ro)).as<fuse_open_out>().open_flags,
              file_flags);
    EXPECT_EQ(c2.call(FUSE_OPENDIR, FUSE_ROOT_ID, Args().obj(ro)).as<fuse_open_out>().open_flags, dir_flags);
  }
}

TEST_F(PassthroughFsTest, WritebackOpensWriteOnlyFilesReadWriteWithoutAppend) {
  PassthroughOptions o;
  o.root = root_;
  o.writeback = true;
  PassthroughFs fs2(o);
  Client c2(fs2);
  c2.init();
  host_write(path("f"), "abc");
  const uint64_t f = c2.lookup(FUSE_ROOT_ID, "f").nodeid;
  auto [e, fh] = c2.open(f, O_WRONLY | O_APPEND);
  ASSERT_EQ(e, 0);
  EXPECT_EQ(c2.read(f, fh, 0, 3).body.size(), 3u) << "the guest page cache may read";
  EXPECT_EQ(c2.write(f, fh, 1, {'X'}).first, 0);
  EXPECT_EQ(host_read(path("f")), "aXc") << "the guest positions appends itself";
}

TEST_F(PassthroughFsTest, StatfsFsyncFlushFallocateLseekCopySyncfs) {
  const auto f = c_->create(FUSE_ROOT_ID, "f");
  const auto g = c_->create(FUSE_ROOT_ID, "g");
  ASSERT_EQ(f.err, 0);
  const Reply sf = c_->call(FUSE_STATFS, FUSE_ROOT_ID);
  ASSERT_EQ(sf.err(), 0);
  EXPECT_GT(sf.as<fuse_statfs_out>().st.blocks, 0u);
  EXPECT_EQ(sf.as<fuse_statfs_out>().st.namelen, 255u);
  fuse_fsync_in fi{f.fh, 0, 0};
  EXPECT_EQ(c_->call(FUSE_FSYNC, f.nodeid, Args().obj(fi)).err(), 0);
  fi.fsync_flags = FUSE_FSYNC_FDATASYNC;
  EXPECT_EQ(c_->call(FUSE_FSYNC, f.nodeid, Args().obj(fi)).err(), 0);
  fi.fh = 777;
  EXPECT_EQ(c_->call(FUSE_FSYNC, f.nodeid, Args().obj(fi)).err(), EBADF);
  fuse_flush_in fl{};
  fl.fh = f.fh;
  EXPECT_EQ(c_->call(FUSE_FLUSH, f.nodeid, Args().obj(fl)).err(), 0);
  auto [de, dfh] = c_->open(FUSE_ROOT_ID, O_RDONLY, true);
  ASSERT_EQ(de, 0);
  fuse_fsync_in fd{dfh, 0, 0};
  EXPECT_EQ(c_->call(FUSE_FSYNCDIR, FUSE_ROOT_ID, Args().obj(fd)).err(), 0);
  EXPECT_EQ(c_->call(FUSE_FSYNC, FUSE_ROOT_ID, Args().obj(fd)).err(), EBADF) << "a directory handle";
  EXPECT_EQ(c_->release(FUSE_ROOT_ID, dfh, true), 0);
  EXPECT_EQ(c_->call(FUSE_SYNCFS, FUSE_ROOT_ID, Args().obj(fuse_syncfs_in{})).err(), 0);

  // A file with data at 1 MiB and a hole before it.
  fuse_fallocate_in fa{f.fh, 1 << 20, 8192, 0, 0};
  EXPECT_EQ(c_->call(FUSE_FALLOCATE, f.nodeid, Args().obj(fa)).err(), 0);
  EXPECT_EQ(host_stat(path("f")).st_size, (1 << 20) + 8192);
  ASSERT_EQ(c_->write(f.nodeid, f.fh, 1 << 20, pattern(8192, 1)).first, 0);
  fa.mode = 0xdead;
  EXPECT_EQ(c_->call(FUSE_FALLOCATE, f.nodeid, Args().obj(fa)).err(), EOPNOTSUPP);
  fuse_lseek_in ls{f.fh, 0, SEEK_DATA, 0};
  const Reply data = c_->call(FUSE_LSEEK, f.nodeid, Args().obj(ls));
  ASSERT_EQ(data.err(), 0);
  EXPECT_EQ(data.as<fuse_lseek_out>().offset, 1u << 20);
  ls.whence = SEEK_HOLE;
  EXPECT_EQ(c_->call(FUSE_LSEEK, f.nodeid, Args().obj(ls)).as<fuse_lseek_out>().offset, 0u);
  ls.offset = 1 << 20;
  EXPECT_EQ(c_->call(FUSE_LSEEK, f.nodeid, Args().obj(ls)).as<fuse_lseek_out>().offset, (1u << 20) + 8192);
  ls.whence = SEEK_CUR;
  EXPECT_EQ(c_->call(FUSE_LSEEK, f.nodeid, Args().obj(ls)).err(), EINVAL);
  ls.whence = SEEK_DATA;
  ls.offset = 1 << 30;
  EXPECT_EQ(c_->call(FUSE_LSEEK, f.nodeid, Args().obj(ls)).err(), ENXIO);

  fuse_copy_file_range_in cr{f.fh, (1 << 20) + 100, g.nodeid, g.fh, 10, 1000, 0};
  const Reply cp = c_->call(FUSE_COPY_FILE_RANGE, f.nodeid, Args().obj(cr));
  ASSERT_EQ(cp.err(), 0);
  EXPECT_EQ(cp.as<fuse_write_out>().size, 1000u);
  const auto want = pattern(8192, 1);
  EXPECT_EQ(c_->read(g.nodeid, g.fh, 10, 1000).body, std::vector<uint8_t>(want.begin() + 100, want.begin() + 1100));
  cr.flags = 1;
  EXPECT_EQ(c_->call(FUSE_COPY_FILE_RANGE, f.nodeid, Args().obj(cr)).err(), EINVAL);
  cr.flags = 0;
  cr.fh_out = 555;
  EXPECT_EQ(c_->call(FUSE_COPY_FILE_RANGE, f.nodeid, Args().obj(cr)).err(), EBADF);
}

TEST_F(PassthroughFsTest, Xattrs) {
  host_write(path("f"), "");
  if (::setxattr(path("f").c_str(), "user.probe", "1", 1, 0) != 0)
    GTEST_SKIP() << "the filesystem under " << root_ << " has no user xattrs: " << std::strerror(errno);
  ::removexattr(path("f").c_str(), "user.probe");
  const uint64_t f = c_->lookup(FUSE_ROOT_ID, "f").nodeid;
  auto set = [&](uint64_t node, std::string_view name, std::string_view value, uint32_t flags = 0) {
    std::vector<uint8_t> v(value.begin(), value.end());
    return c_->call(FUSE_SETXATTR, node,
                    Args().obj(uint32_t(value.size())).obj(flags).str(name).raw(v))
        .err();
  };
  auto get = [&](uint64_t node, std::string_view name, uint32_t size) {
    fuse_getxattr_in gi{size, 0};
    return c_->call(FUSE_GETXATTR, node, Args().obj(gi).str(name));
  };
  auto list = [&](uint64_t node, uint32_t size) {
    fuse_getxattr_in gi{size, 0};
    return c_->call(FUSE_LISTXATTR, node, Args().obj(gi));
  };
  EXPECT_EQ(set(f, "user.color", "blue"), 0);
  EXPECT_EQ(set(f, "user.size", std::string(1000, 's')), 0);
  char buf[16] = {};
  ASSERT_EQ(::getxattr(path("f").c_str(), "user.color", buf, sizeof buf), 4);
  EXPECT_STREQ(buf, "blue");
  EXPECT_EQ(get(f, "user.color", 0).as<fuse_getxattr_out>().size, 4u) << "size query";
  const Reply v = get(f, "user.color", 100);
  EXPECT_EQ(std::string(v.body.begin(), v.body.end()), "blue");
  EXPECT_EQ(get(f, "user.size", 10).err(), ERANGE);
  EXPECT_EQ(get(f, "user.none", 10).err(), ENODATA);
  EXPECT_EQ(get(f, "", 10).err(), ERANGE);
  const std::string names = "user.color\0user.size\0"s;
  EXPECT_EQ(list(f, 0).as<fuse_getxattr_out>().size, names.size());
  const Reply l = list(f, 1000);
  std::string got(l.body.begin(), l.body.end());
  EXPECT_TRUE(got == names || got == "user.size\0user.color\0"s) << got;
  EXPECT_EQ(list(f, 5).err(), ERANGE);
  EXPECT_EQ(set(f, "user.color", "red", XATTR_CREATE), EEXIST);
  EXPECT_EQ(set(f, "user.new", "x", XATTR_REPLACE), ENODATA);
  EXPECT_EQ(c_->call(FUSE_REMOVEXATTR, f, Args().str("user.color")).err(), 0);
  EXPECT_EQ(c_->call(FUSE_REMOVEXATTR, f, Args().str("user.color")).err(), ENODATA);
  EXPECT_EQ(get(f, "user.color", 100).err(), ENODATA);
  // Value longer than the request carries; oversized value.
  EXPECT_EQ(c_->call(FUSE_SETXATTR, f, Args().obj(uint32_t{100}).obj(uint32_t{0}).str("user.x").raw({1, 2})).err(),
            EINVAL);
  EXPECT_EQ(c_->call(FUSE_SETXATTR, f, Args().obj(uint32_t{70000}).obj(uint32_t{0}).str("user.x")).err(), E2BIG);
  // A FIFO's xattrs are reached without opening it.
  ASSERT_EQ(::mkfifo(path("p").c_str(), 0644), 0);
  const uint64_t p = c_->lookup(FUSE_ROOT_ID, "p").nodeid;
  EXPECT_EQ(get(p, "user.x", 10).err(), ENODATA);
  EXPECT_EQ(list(p, 0).err(), 0);

  PassthroughOptions o;
  o.root = root_;
  o.xattr = false;
  PassthroughFs fs2(o);
  Client c2(fs2);
  c2.init();
  const uint64_t f2 = c2.lookup(FUSE_ROOT_ID, "f").nodeid;
  fuse_getxattr_in gi{0, 0};
  EXPECT_EQ(c2.call(FUSE_GETXATTR, f2, Args().obj(gi).str("user.size")).err(), ENOSYS);
  EXPECT_EQ(c2.call(FUSE_LISTXATTR, f2, Args().obj(gi)).err(), ENOSYS);
  EXPECT_EQ(c2.call(FUSE_SETXATTR, f2, Args().obj(uint64_t{0}).str("user.a")).err(), ENOSYS);
  EXPECT_EQ(c2.call(FUSE_REMOVEXATTR, f2, Args().str("user.size")).err(), ENOSYS);
}

TEST_F(PassthroughFsTest, PosixLocksAndFlock) {
  host_write(path("f"), "0123456789");
  const uint64_t f = c_->lookup(FUSE_ROOT_ID, "f").nodeid;
  const auto [e1, h1] = c_->open(f, O_RDWR);
  const auto [e2, h2] = c_->open(f, O_RDWR);
  ASSERT_EQ(e1 | e2, 0);
  EXPECT_EQ(c_->lock(FUSE_SETLK, f, h1, F_WRLCK, 0, 99), 0);
  fuse_lk_out lo{};
  EXPECT_EQ(c_->lock(FUSE_GETLK, f, h2, F_RDLCK, 50, kMaxLock, 0, &lo), 0);
  EXPECT_EQ(lo.lk.type, uint32_t{F_WRLCK});
  EXPECT_EQ(lo.lk.start, 0u);
  EXPECT_EQ(lo.lk.end, 99u);
  EXPECT_EQ(c_->lock(FUSE_GETLK, f, h2, F_WRLCK, 100, kMaxLock, 0, &lo), 0);
  EXPECT_EQ(lo.lk.type, uint32_t{F_UNLCK});
  EXPECT_EQ(c_->lock(FUSE_SETLK, f, h2, F_RDLCK, 10, 10), EAGAIN);
  EXPECT_EQ(c_->lock(FUSE_SETLK, f, h2, F_WRLCK, 100, kMaxLock), 0) << "beyond the range";
  EXPECT_EQ(c_->lock(FUSE_GETLK, f, h1, F_WRLCK, 200, 300, 0, &lo), 0);
  EXPECT_EQ(lo.lk.end, kMaxLock) << "to end of file";
  EXPECT_EQ(c_->lock(FUSE_SETLK, f, h2, 99, 0, 1), EINVAL);
  EXPECT_EQ(c_->lock(FUSE_SETLK, f, h2, F_RDLCK, 10, 5), EINVAL);
  EXPECT_EQ(c_->lock(FUSE_SETLK, f, 999, F_RDLCK, 0, 5), EBADF);

  // SETLKW: bounded wait then EAGAIN; succeeds once the holder lets go.
  auto t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(c_->lock(FUSE_SETLKW, f, h2, F_WRLCK, 0, 0), EAGAIN);
  auto waited = std::chrono::steady_clock::now() - t0;
  EXPECT_GE(waited, std::chrono::milliseconds(900));
  EXPECT_LT(waited, std::chrono::seconds(3));
  std::thread unlock([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    fuse_flush_in fl{};
    fl.fh = h1;
    EXPECT_EQ(c_->call(FUSE_FLUSH, f, Args().obj(fl)).err(), 0);  // drops h1's locks
  });
  t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(c_->lock(FUSE_SETLKW, f, h2, F_WRLCK, 0, 0), 0);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::milliseconds(900));
  unlock.join();
  EXPECT_EQ(c_->lock(FUSE_SETLK, f, h1, F_RDLCK, 0, 0), EAGAIN);
  EXPECT_EQ(c_->lock(FUSE_SETLK, f, h2, F_UNLCK, 0, kMaxLock), 0);
  EXPECT_EQ(c_->lock(FUSE_SETLK, f, h1, F_RDLCK, 0, 0), 0);

  // flock()
  EXPECT_EQ(c_->lock(FUSE_SETLK, f, h1, F_WRLCK, 0, kMaxLock, FUSE_LK_FLOCK), 0);
  EXPECT_EQ(c_->lock(FUSE_SETLK, f, h2, F_RDLCK, 0, kMaxLock, FUSE_LK_FLOCK), EAGAIN);
  EXPECT_EQ(c_->lock(FUSE_SETLK, f, h1, F_UNLCK, 0, kMaxLock, FUSE_LK_FLOCK), 0);
  EXPECT_EQ(c_->lock(FUSE_SETLKW, f, h2, F_RDLCK, 0, kMaxLock, FUSE_LK_FLOCK), 0);
  EXPECT_EQ(c_->lock(FUSE_SETLK, f, h1, F_RDLCK, 0, kMaxLock, FUSE_LK_FLOCK), 0) << "shared";
  EXPECT_EQ(c_->lock(FUSE_GETLK, f, h1, F_RDLCK, 0, kMaxLock, FUSE_LK_FLOCK), EINVAL);
  fuse_release_in ri{h2, 0, FUSE_RELEASE_FLOCK_UNLOCK, 0};
  EXPECT_EQ(c_->call(FUSE_RELEASE, f, Args().obj(ri)).err(), 0);
  EXPECT_EQ(c_->release(f, h1), 0);
}

TEST_F(PassthroughFsTest, ReaddirAndReaddirplusPageThroughThreeHundredEntries) {
  ASSERT_EQ(::mkdir(path("d").c_str(), 0755), 0);
  std::set<std::string> want = {".", ".."};
  for (int i = 0; i < 300; ++i) {
    const std::string name = "entry-" + std::to_string(i) + std::string(i % 13, 'x');
    host_write(path("d/" + name), std::to_string(i));
    want.insert(name);
  }
  const uint64_t d = c_->lookup(FUSE_ROOT_ID, "d").nodeid;
  for (const bool plus : {false, true}) {
    SCOPED_TRACE(plus ? "readdirplus" : "readdir");
    auto [e, fh] = c_->open(d, O_RDONLY, true);
    ASSERT_EQ(e, 0);
    std::multiset<std::string> seen;
    std::vector<uint64_t> nodeids;
    uint64_t off = 0;
    int calls = 0;
    for (;; ++calls) {
      ASSERT_LT(calls, 1000);
      std::vector<Client::Dirent> page;
      ASSERT_EQ(c_->readdir(d, fh, off, 4096, plus, page), 0);
      if (page.empty()) break;
      for (const auto& de : page) {
        seen.insert(de.name);
        const bool dot = de.name == "." || de.name == "..";
        if (plus && !dot) {
          ASSERT_NE(de.nodeid, 0u);
          nodeids.push_back(de.nodeid);
          EXPECT_EQ(c_->getattr(de.nodeid).as<fuse_attr_out>().attr.ino, de.ino);
          EXPECT_EQ(de.type, uint32_t{DT_REG});
        } else {
          EXPECT_EQ(de.nodeid, 0u) << de.name;
        }
      }
      off = page.back().off;
    }
    EXPECT_GE(calls, 3) << "paged";
    EXPECT_EQ(seen, std::multiset<std::string>(want.begin(), want.end()));
    if (plus) {
      // Exactly one reference per entry returned: one forget each empties the table.
      EXPECT_EQ(nodeids.size(), 300u);
      EXPECT_EQ(fs_->inode_count(), 302u);
      for (uint64_t n : nodeids) c_->forget(n);
      EXPECT_EQ(fs_->inode_count(), 2u);
    }
    // A buffer too small for one entry gives an empty page, and a rewind starts over.
    std::vector<Client::Dirent> none;
    EXPECT_EQ(c_->readdir(d, fh, 0, 20, plus, none), 0);
    EXPECT_TRUE(none.empty());
    EXPECT_EQ(fs_->inode_count(), 2u);
    EXPECT_EQ(c_->readdir(d, fh, 0, 4096, plus, none), 0);
    EXPECT_FALSE(none.empty());
    for (const auto& de : none)
      if (de.nodeid) c_->forget(de.nodeid);
    EXPECT_EQ(c_->readdir(d, 999, 0, 4096, plus, none), EBADF);
    EXPECT_EQ(c_->release(d, fh, true), 0);
  }
  // The root's ".." is shown as the root itself, not the directory above.
  auto [e, fh] = c_->open(FUSE_ROOT_ID, O_RDONLY, true);
  std::vector<Client::Dirent> page;
  ASSERT_EQ(c_->readdir(FUSE_ROOT_ID, fh, 0, 4096, false, page), 0);
  for (const auto& de : page) {
    if (de.name == "..") {
      EXPECT_EQ(de.ino, host_stat(root_).st_ino);
    }
  }
  // A file handle is not a directory handle and back.
  EXPECT_EQ(c_->readdir(FUSE_ROOT_ID, 4242, 0, 4096, false, page), EBADF);
  EXPECT_EQ(c_->release(FUSE_ROOT_ID, fh, false), EBADF);
  EXPECT_EQ(c_->release(FUSE_ROOT_ID, fh, true), 0);
}

TEST_F(PassthroughFsTest, TablesAreBounded) {
  PassthroughOptions o;
  o.root = root_;
  o.max_inodes = 3;
  o.max_handles = 2;
  PassthroughFs fs2(o);
  Client c2(fs2);
  c2.init();
  for (const char* n : {"a", "b", "c"}) host_write(path(n), n);
  const auto a = c2.lookup(FUSE_ROOT_ID, "a");
  EXPECT_EQ(c2.lookup(FUSE_ROOT_ID, "b").err, 0);
  EXPECT_EQ(c2.lookup(FUSE_ROOT_ID, "c").err, ENFILE);
  EXPECT_EQ(c2.lookup(FUSE_ROOT_ID, "a").err, 0) << "known inodes still resolve";
  EXPECT_EQ(c2.create(FUSE_ROOT_ID, "new").err, ENFILE);
  EXPECT_EQ(c2.open(a.nodeid, O_RDONLY).first, 0);
  EXPECT_EQ(c2.open(FUSE_ROOT_ID, O_RDONLY, true).first, 0);
  EXPECT_EQ(c2.open(a.nodeid, O_RDONLY).first, ENFILE);
  EXPECT_EQ(c2.open(FUSE_ROOT_ID, O_RDONLY, true).first, ENFILE);
  EXPECT_EQ(fs2.inode_count(), 3u);
  EXPECT_EQ(fs2.handle_count(), 2u);
  fs2.reset();
  EXPECT_EQ(fs2.inode_count(), 1u);
  EXPECT_EQ(fs2.handle_count(), 0u);
  EXPECT_EQ(c2.getattr(FUSE_ROOT_ID).err(), EIO) << "reset waits for INIT";
}

class PassthroughFsReadOnlyTest : public PassthroughFsTest {
  PassthroughOptions options() override {
    PassthroughOptions o = PassthroughFsTest::options();
    o.read_only = true;
    return o;
  }
};

TEST_F(PassthroughFsReadOnlyTest, EveryModifyingOpGetsErofs) {
  host_write(path("f"), "keep");
  ASSERT_EQ(::mkdir(path("d").c_str(), 0755), 0);
  const auto before = host_stat(path("f"));
  const auto f = c_->lookup(FUSE_ROOT_ID, "f");
  const uint64_t d = c_->lookup(FUSE_ROOT_ID, "d").nodeid;
  auto [re, rfh] = c_->open(f.nodeid, O_RDONLY);
  ASSERT_EQ(re, 0);
  const Reply rd = c_->read(f.nodeid, rfh, 0, 10);
  EXPECT_EQ(std::string(rd.body.begin(), rd.body.end()), "keep");
  EXPECT_EQ(c_->open(f.nodeid, O_RDWR).first, EROFS);
  EXPECT_EQ(c_->open(f.nodeid, O_WRONLY).first, EROFS);
  EXPECT_EQ(c_->open(f.nodeid, O_RDONLY | O_TRUNC).first, EROFS);
  EXPECT_EQ(c_->create(FUSE_ROOT_ID, "n").err, EROFS);
  EXPECT_EQ(c_->mkdir(FUSE_ROOT_ID, "n").err, EROFS);
  EXPECT_EQ(c_->symlink(FUSE_ROOT_ID, "n", "f").err, EROFS);
  fuse_mknod_in mi{S_IFREG | 0644, 0, 0, 0};
  EXPECT_EQ(c_->call(FUSE_MKNOD, FUSE_ROOT_ID, Args().obj(mi).str("n")).err(), EROFS);
  EXPECT_EQ(c_->unlink(FUSE_ROOT_ID, "f"), EROFS);
  EXPECT_EQ(c_->rmdir(FUSE_ROOT_ID, "d"), EROFS);
  EXPECT_EQ(c_->rename(FUSE_ROOT_ID, "f", d, "f"), EROFS);
  fuse_rename_in rn{d};
  EXPECT_EQ(c_->call(FUSE_RENAME, FUSE_ROOT_ID, Args().obj(rn).str("f").str("g")).err(), EROFS);
  fuse_link_in li{f.nodeid};
  EXPECT_EQ(c_->call(FUSE_LINK, d, Args().obj(li).str("g")).err(), EROFS);
  fuse_setattr_in s{};
  s.valid = FATTR_MTIME_NOW | FATTR_MTIME;
  EXPECT_EQ(c_->setattr(f.nodeid, s).err(), EROFS);
  s.valid = FATTR_SIZE;
  EXPECT_EQ(c_->setattr(f.nodeid, s).err(), EROFS);
  EXPECT_EQ(c_->write(f.nodeid, rfh, 0, {'x'}).first, EROFS);
  EXPECT_EQ(c_->call(FUSE_SETXATTR, f.nodeid, Args().obj(uint32_t{1}).obj(uint32_t{0}).str("user.a").raw({'v'})).err(),
            EROFS);
  EXPECT_EQ(c_->call(FUSE_REMOVEXATTR, f.nodeid, Args().str("user.a")).err(), EROFS);
  fuse_fallocate_in fa{rfh, 0, 100, 0, 0};
  EXPECT_EQ(c_->call(FUSE_FALLOCATE, f.nodeid, Args().obj(fa)).err(), EROFS);
  fuse_copy_file_range_in cr{rfh, 0, f.nodeid, rfh, 0, 4, 0};
  EXPECT_EQ(c_->call(FUSE_COPY_FILE_RANGE, f.nodeid, Args().obj(cr)).err(), EROFS);
  fuse_access_in ai{W_OK, 0};
  EXPECT_EQ(c_->call(FUSE_ACCESS, f.nodeid, Args().obj(ai)).err(), EROFS);
  ai.mask = R_OK;
  EXPECT_EQ(c_->call(FUSE_ACCESS, f.nodeid, Args().obj(ai)).err(), 0);
  const auto after = host_stat(path("f"));
  EXPECT_EQ(after.st_mtim.tv_nsec, before.st_mtim.tv_nsec);
  EXPECT_EQ(after.st_ctim.tv_nsec, before.st_ctim.tv_nsec);
  EXPECT_EQ(host_read(path("f")), "keep");
  std::set<std::string> names;
  for (const auto& e : fs::directory_iterator(root_)) names.insert(e.path().filename());
  EXPECT_EQ(names, (std::set<std::string>{"f", "d"}));
  EXPECT_EQ(fs::directory_iterator(path("d")), fs::directory_iterator{});
}

// ---------------------------------------------------------------------------
// Escapes: nothing outside the share is read, written or stat-ed (the
// fixture checks the canary and every reply).

TEST_F(PassthroughFsTest, SymlinksOutOfTheShareAreNeverFollowed) {
  ASSERT_EQ(::symlink(canary_.c_str(), path("abs").c_str()), 0);
  ASSERT_EQ(::symlink("../canary", path("rel").c_str()), 0);
  ASSERT_EQ(::symlink(base_.c_str(), path("dirlink").c_str()), 0);
  const auto guest = c_->symlink(FUSE_ROOT_ID, "guest", "../../canary");
  ASSERT_EQ(guest.err, 0);
  for (const char* name : {"abs", "rel", "guest"}) {
    SCOPED_TRACE(name);
    const auto l = c_->lookup(FUSE_ROOT_ID, name);
    ASSERT_EQ(l.err, 0);
    EXPECT_TRUE(S_ISLNK(l.attr.mode)) << "the link, not its target";
    EXPECT_TRUE(S_ISLNK(c_->getattr(l.nodeid).as<fuse_attr_out>().attr.mode));
    const Reply rl = c_->call(FUSE_READLINK, l.nodeid);
    EXPECT_NE(std::string(rl.body.begin(), rl.body.end()).find("canary"), std::string::npos);
    EXPECT_EQ(c_->open(l.nodeid, O_RDONLY).first, ELOOP);
    EXPECT_EQ(c_->open(l.nodeid, O_RDWR | O_TRUNC).first, ELOOP);
    EXPECT_EQ(c_->open(l.nodeid, O_RDONLY, true).first, ENOTDIR);
    EXPECT_EQ(c_->create(FUSE_ROOT_ID, name, 0644, O_RDWR | O_CREAT | O_TRUNC).err, ELOOP);
    EXPECT_EQ(c_->lookup(l.nodeid, "canary").err, ENOTDIR);
    fuse_setattr_in s{};
    s.valid = FATTR_SIZE;
    EXPECT_EQ(c_->setattr(l.nodeid, s).err(), EINVAL);
    s.valid = FATTR_MODE;
    s.mode = 0777;
    EXPECT_EQ(c_->setattr(l.nodeid, s).err(), EOPNOTSUPP);
    s.valid = FATTR_ATIME | FATTR_MTIME;  // on the link itself
    s.atime = s.mtime = 42;
    EXPECT_EQ(c_->setattr(l.nodeid, s).err(), 0);
    EXPECT_EQ(host_stat(path(name)).st_mtim.tv_sec, 42);
    fuse_getxattr_in gi{100, 0};
    EXPECT_NE(c_->call(FUSE_GETXATTR, l.nodeid, Args().obj(gi).str("user.x")).err(), 0);
    EXPECT_NE(c_->call(FUSE_SETXATTR, l.nodeid, Args().obj(uint32_t{1}).obj(uint32_t{0}).str("user.x").raw({'v'})).err(),
              0);
    // A hard link to the link is a link to the link.
    fuse_link_in li{l.nodeid};
    const std::string hl = std::string(name) + ".hl";
    EXPECT_EQ(c_->call(FUSE_LINK, FUSE_ROOT_ID, Args().obj(li).str(hl)).err(), 0);
    EXPECT_TRUE(S_ISLNK(host_stat(path(hl)).st_mode));
  }
  const auto dl = c_->lookup(FUSE_ROOT_ID, "dirlink");
  ASSERT_EQ(dl.err, 0);
  EXPECT_EQ(c_->lookup(dl.nodeid, "canary").err, ENOTDIR);
  EXPECT_EQ(c_->mkdir(dl.nodeid, "x").err, ENOTDIR);
  EXPECT_EQ(c_->create(dl.nodeid, "x").err, ENOTDIR);
  EXPECT_EQ(c_->unlink(dl.nodeid, "canary"), ENOTDIR);
  EXPECT_EQ(c_->rename(dl.nodeid, "canary", FUSE_ROOT_ID, "stolen"), ENOTDIR);
  fuse_link_in li{dl.nodeid};
  EXPECT_EQ(c_->call(FUSE_LINK, dl.nodeid, Args().obj(li).str("x")).err(), ENOTDIR);
  fuse_open_in oi{O_RDONLY, 0};
  EXPECT_EQ(c_->call(FUSE_OPENDIR, dl.nodeid, Args().obj(oi)).err(), ENOTDIR);
  EXPECT_EQ(c_->call(FUSE_STATFS, dl.nodeid).err(), 0);
  // Renaming a link around moves the link.
  EXPECT_EQ(c_->rename(FUSE_ROOT_ID, "abs", FUSE_ROOT_ID, "moved"), 0);
  EXPECT_TRUE(S_ISLNK(host_stat(path("moved")).st_mode));
}

TEST_F(PassthroughFsTest, HandlesAndNodeidsOfARemovedDirectory) {
  const auto d = c_->mkdir(FUSE_ROOT_ID, "d");
  const auto f = c_->create(d.nodeid, "f");
  ASSERT_EQ(f.err, 0);
  ASSERT_EQ(c_->write(f.nodeid, f.fh, 0, {'h', 'i'}).first, 0);
  auto [de, dfh] = c_->open(d.nodeid, O_RDONLY, true);
  ASSERT_EQ(de, 0);
  ASSERT_EQ(c_->unlink(d.nodeid, "f"), 0);
  ASSERT_EQ(c_->rmdir(FUSE_ROOT_ID, "d"), 0);
  std::vector<Client::Dirent> page;
  EXPECT_EQ(c_->readdir(d.nodeid, dfh, 0, 4096, true, page), ENOENT);
  EXPECT_EQ(c_->lookup(d.nodeid, "f").err, ENOENT);
  EXPECT_EQ(c_->create(d.nodeid, "g").err, ENOENT);
  EXPECT_EQ(c_->mkdir(d.nodeid, "g").err, ENOENT);
  EXPECT_EQ(c_->symlink(d.nodeid, "g", "x").err, ENOENT);
  fuse_link_in li{f.nodeid};
  EXPECT_EQ(c_->call(FUSE_LINK, FUSE_ROOT_ID, Args().obj(li).str("back")).err(), ENOENT) << "nlink 0 stays gone";
  EXPECT_EQ(c_->getattr(d.nodeid).as<fuse_attr_out>().attr.nlink, 0u);
  // The open, unlinked file is still the guest's, as on Linux.
  EXPECT_EQ(c_->read(f.nodeid, f.fh, 0, 10).body.size(), 2u);
  EXPECT_EQ(c_->release(f.nodeid, f.fh), 0);
  EXPECT_EQ(c_->release(d.nodeid, dfh, true), 0);
  EXPECT_EQ(fs::directory_iterator(root_), fs::directory_iterator{});
}

// A guest renaming a directory and a symlink to outside back and forth while
// another thread looks up through the name: whatever it gets is the link
// (which it can't walk into) or the real directory, never the outside.
TEST_F(PassthroughFsTest, RenameRacingLookupNeverLeavesTheShare) {
  ASSERT_EQ(::mkdir(path("sub").c_str(), 0755), 0);
  host_write(path("sub/canary"), "inside");
  ASSERT_EQ(::symlink(base_.c_str(), path("swap").c_str()), 0);
  ASSERT_EQ(::mkdir(path("other").c_str(), 0755), 0);
  ASSERT_EQ(::symlink("../..", path("other/up").c_str()), 0);
  const uint64_t other = c_->lookup(FUSE_ROOT_ID, "other").nodeid;
  std::atomic<bool> stop{false};
  std::atomic<int> renames{0};
  std::thread renamer([&] {
    // Guest-driven (through the server) and host-driven (a hostile process
    // in the share) swaps of the same names.
    Client c(*fs_);
    c.forbidden_ino = canary_st_.st_ino;
    for (int i = 0; i < 4000 && !stop; ++i) {
      if (i % 2)
        c.rename(FUSE_ROOT_ID, "sub", FUSE_ROOT_ID, "swap", RENAME_EXCHANGE);
      else
        ::renameat2(AT_FDCWD, path("sub").c_str(), AT_FDCWD, path("swap").c_str(), RENAME_EXCHANGE);
      c.rename(FUSE_ROOT_ID, "other", FUSE_ROOT_ID, "other2");
      c.rename(FUSE_ROOT_ID, "other2", FUSE_ROOT_ID, "other");
      ++renames;
    }
    EXPECT_EQ(c.forbidden_hits.load(), 0);
  });
  int inside = 0, links = 0;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(3);
  while (std::chrono::steady_clock::now() < deadline && renames < 4000) {
    for (const char* name : {"sub", "swap"}) {
      const auto n = c_->lookup(FUSE_ROOT_ID, name);
      if (n.err) continue;
      const auto cn = c_->lookup(n.nodeid, "canary");
      if (cn.err == 0) {
        ++inside;
        auto [e, fh] = c_->open(cn.nodeid, O_RDONLY);
        if (e == 0) {
          const Reply r = c_->read(cn.nodeid, fh, 0, 100);
          EXPECT_EQ(std::string(r.body.begin(), r.body.end()), "inside");
          c_->release(cn.nodeid, fh);
        }
        c_->forget(cn.nodeid);
      } else {
        EXPECT_EQ(cn.err, ENOTDIR);
        ++links;
      }
      c_->forget(n.nodeid);
    }
    EXPECT_NE(c_->lookup(other, "up").err, EBADF);
  }
  stop = true;
  renamer.join();
  EXPECT_GT(inside, 0);
  EXPECT_GT(links, 0);
}

TEST_F(PassthroughFsTest, ConcurrentRequestsKeepTheTablesConsistent) {
  for (int i = 0; i < 16; ++i) host_write(path("f" + std::to_string(i)), "x");
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      Client c(*fs_);
      c.forbidden_ino = canary_st_.st_ino;
      for (int i = 0; i < 300; ++i) {
        const std::string name = "f" + std::to_string((i + t) % 16);
        const auto e = c.lookup(FUSE_ROOT_ID, name);
        ASSERT_EQ(e.err, 0);
        auto [oe, fh] = c.open(e.nodeid, O_RDONLY);
        ASSERT_EQ(oe, 0);
        EXPECT_EQ(c.read(e.nodeid, fh, 0, 10).body.size(), 1u);
        EXPECT_EQ(c.release(e.nodeid, fh), 0);
        c.forget(e.nodeid);
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(fs_->inode_count(), 1u) << "every reference given back";
  EXPECT_EQ(fs_->handle_count(), 0u);
}

// ---------------------------------------------------------------------------
// Property: through the server or with plain syscalls, the same sequence of
// create/write/rename/unlink/mkdir/rmdir/read gives the same results and
// leaves the same tree.

struct FsOp {
  int kind = 0;  // 0 create, 1 write, 2 rename, 3 unlink, 4 read, 5 mkdir, 6 rmdir
  int dir1 = 0, name1 = 0, dir2 = 0, name2 = 0;
  uint32_t flags = 0;
  uint16_t off = 0;
  std::vector<uint8_t> data;
};

const char* const kDirs[] = {"", "s"};
const char* const kNames[] = {"a", "b", "c"};

std::map<std::string, std::string> snapshot(const std::string& root) {
  std::map<std::string, std::string> m;
  for (const auto& e : fs::recursive_directory_iterator(root)) {
    const std::string rel = fs::relative(e.path(), root);
    m[rel] = e.is_directory() ? "<dir>" : host_read(e.path());
  }
  return m;
}

RC_GTEST_PROP(PassthroughFsProperty, MatchesPlainSyscalls, ()) {
  const auto op_gen = rc::gen::build<FsOp>(
      rc::gen::set(&FsOp::kind, rc::gen::inRange(0, 7)), rc::gen::set(&FsOp::dir1, rc::gen::inRange(0, 2)),
      rc::gen::set(&FsOp::name1, rc::gen::inRange(0, 3)), rc::gen::set(&FsOp::dir2, rc::gen::inRange(0, 2)),
      rc::gen::set(&FsOp::name2, rc::gen::inRange(0, 3)),
      rc::gen::set(&FsOp::flags, rc::gen::element(0u, 0u, unsigned{RENAME_NOREPLACE}, unsigned{RENAME_EXCHANGE})),
      rc::gen::set(&FsOp::off, rc::gen::inRange<uint16_t>(0, 6000)),
      rc::gen::set(&FsOp::data, rc::gen::resize(3000, rc::gen::arbitrary<std::vector<uint8_t>>())));
  const auto ops = *rc::gen::resize(40, rc::gen::container<std::vector<FsOp>>(op_gen));

  const std::string base = temp_dir("pfs-prop");
  const std::string a = base + "/server", b = base + "/plain";
  struct Cleanup {
    std::string p;
    ~Cleanup() {
      std::error_code ec;
      fs::remove_all(p, ec);
    }
  } cleanup{base};
  for (const auto& r : {a, b}) {
    RC_ASSERT(::mkdir(r.c_str(), 0755) == 0);
    RC_ASSERT(::mkdir((r + "/s").c_str(), 0755) == 0);
  }
  PassthroughOptions o;
  o.root = a;
  PassthroughFs server(o);
  Client c(server);
  RC_ASSERT(c.init().err() == 0);

  // The server side: resolve the directory, act, give every reference back.
  auto dir_node = [&](int d) -> uint64_t {
    if (d == 0) return FUSE_ROOT_ID;
    return c.lookup(FUSE_ROOT_ID, kDirs[d]).nodeid;
  };
  auto put_dir = [&](int d, uint64_t n) {
    if (d != 0) c.forget(n);
  };
  auto plain = [&](int d, int n) { return b + "/" + (d ? std::string(kDirs[d]) + "/" : "") + kNames[n]; };

  for (const auto& op : ops) {
    const uint64_t d1 = dir_node(op.dir1);
    const char* n1 = kNames[op.name1];
    int server_err = 0, plain_err = 0;
    std::string server_data, plain_data;
    switch (op.kind) {
      case 0: {
        const auto cr = c.create(d1, n1, 0644, O_RDWR | O_CREAT);
        server_err = cr.err;
        if (!cr.err) {
          c.release(cr.nodeid, cr.fh);
          c.forget(cr.nodeid);
        }
        const int fd = ::open(plain(op.dir1, op.name1).c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
        plain_err = fd < 0 ? errno : 0;
        if (fd >= 0) ::close(fd);
        break;
      }
      case 1:
      case 4: {
        const bool wr = op.kind == 1;
        const auto e = c.lookup(d1, n1);
        server_err = e.err;
        if (!e.err) {
          auto [oe, fh] = c.open(e.nodeid, wr ? O_RDWR : O_RDONLY);
          server_err = oe;
          if (!oe) {
            if (wr) {
              server_err = c.write(e.nodeid, fh, op.off, op.data).first;
            } else {
              const Reply r = c.read(e.nodeid, fh, op.off, 4000);
              server_err = r.err();
              server_data.assign(r.body.begin(), r.body.end());
            }
            c.release(e.nodeid, fh);
          }
          c.forget(e.nodeid);
        }
        const int fd = ::open(plain(op.dir1, op.name1).c_str(), (wr ? O_RDWR : O_RDONLY) | O_CLOEXEC);
        plain_err = fd < 0 ? errno : 0;
        if (fd >= 0) {
          std::vector<char> buf(4000);
          const ssize_t n = wr ? ::pwrite(fd, op.data.data(), op.data.size(), op.off)
                               : ::pread(fd, buf.data(), buf.size(), op.off);
          if (n < 0) plain_err = errno;
          else if (!wr) plain_data.assign(buf.data(), static_cast<size_t>(n));
          ::close(fd);
        }
        break;
      }
      case 2: {
        const uint64_t d2 = dir_node(op.dir2);
        server_err = c.rename(d1, n1, d2, kNames[op.name2], op.flags);
        put_dir(op.dir2, d2);
        plain_err = ::renameat2(AT_FDCWD, plain(op.dir1, op.name1).c_str(), AT_FDCWD,
                                plain(op.dir2, op.name2).c_str(), op.flags) != 0
                        ? errno
                        : 0;
        break;
      }
      case 3:
        server_err = c.unlink(d1, n1);
        plain_err = ::unlink(plain(op.dir1, op.name1).c_str()) != 0 ? errno : 0;
        break;
      case 5: {
        const auto e = c.mkdir(d1, n1, 0755);
        server_err = e.err;
        if (!e.err) c.forget(e.nodeid);
        plain_err = ::mkdir(plain(op.dir1, op.name1).c_str(), 0755) != 0 ? errno : 0;
        break;
      }
      case 6:
        server_err = c.rmdir(d1, n1);
        plain_err = ::rmdir(plain(op.dir1, op.name1).c_str()) != 0 ? errno : 0;
        break;
    }
    put_dir(op.dir1, d1);
    RC_ASSERT(server_err == plain_err);
    RC_ASSERT(server_data == plain_data);
  }
  RC_ASSERT(snapshot(a) == snapshot(b));
  RC_ASSERT(server.inode_count() == 1u);
  RC_ASSERT(server.handle_count() == 0u);
}

}  // namespace
}  // namespace skiff::virtio
