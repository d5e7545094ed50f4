// skiff_bench_fs: the virtio-fs FUSE server (PassthroughFs) under three
// workloads, beside the same work done with plain system calls on the host in
// the same run (issue 6):
//   (a) 4 KiB reads at random offsets of a page-cached file,
//   (b) sequential 1 MiB reads of the same file,
//   (c) file creation in one directory: CREATE + RELEASE per file.
//
// Each workload is measured at two levels:
//   device  virtio::FsDevice + PassthroughFs, the guest side a simulated
//           virtio-fs driver (virtio/testing/driver_queue.h's raw ring
//           access) that builds requests as Linux 6.1's fs/fuse/virtio_fs.c
//           does: fuse_in_header and the arguments in readable descriptors,
//           fuse_out_header, the reply's arguments and READ data (one
//           descriptor per 4 KiB page) in writable ones, all through an
//           indirect table (the device offers VIRTIO_RING_F_INDIRECT_DESC,
//           and Linux then uses one for every request of more than one
//           descriptor). Several requests in flight, EVENT_IDX, kicks by
//           queue_notify() when avail_event asks, completion by the device's
//           interrupt: an eventfd the driver blocks on.
//   server  PassthroughFs::handle() on host buffers from N threads, no
//           queues: what the FUSE server costs without the device around it.
// and the host baseline is pread()/openat()+close() from N threads.
//
// What is left out, on purpose: the guest kernel (its page cache, its FUSE
// layer), the vCPU exit of a kick and the ioeventfd/irqfd hops. These figures
// are the device model and the server.
#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <linux/fs.h>
#include <linux/fuse.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <climits>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "bench/bench_support.h"
#include "virtio/fs/fs_device.h"
#include "virtio/fs/fuse_handler.h"
#include "virtio/fs/passthrough_fs.h"
#include "virtio/virtqueue.h"
#include "memory/guest_memory.h"
#include "base/unique_fd.h"

namespace {

using skiff::GuestAddress;
using skiff::GuestMemory;
using skiff::UniqueFd;
using namespace skiff::virtio;
using namespace skiff::bench;

constexpr uint64_t kPage = 4096;
constexpr uint64_t kMiB = 1 << 20;
constexpr const char* kDataName = "data";
constexpr uint32_t kGuestPid = 1000;

std::atomic<bool> g_interrupted{false};

Clock::duration to_duration(double s) {
  return std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(s));
}

// The file's content is a function of the offset, so any read can be checked
// (a reply from the wrong offset shows) without keeping a copy.
uint64_t pattern_word(uint64_t offset) {
  uint64_t z = (offset / 8) + 0x9e3779b97f4a7c15ull;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

// ---------------------------------------------------------------------------
// Options

struct Options {
  uint64_t size_mib = 256;
  unsigned depth = 32;   // requests in flight per request queue
  unsigned queues = 1;   // request queues (Linux 6.1 uses one)
  unsigned queue_size = 1024;
  unsigned workers = 4;  // FsDevice worker threads (FsConfig's default)
  unsigned threads = 0;  // host and server-alone threads; 0: = workers
  double seconds = 3.0;
  unsigned rounds = 3;
  double warmup = 0.2;
  unsigned files = 10000;
  unsigned seq_kib = 1024;
  std::string dir;
  bool randread = true, seqread = true, create = true;
  bool device = true, server = true, host = true;
  bool verbose = false;
};

void usage(const char* argv0) {
  std::printf(
      "usage: %s [--size-mib N] [--depth N] [--queues N] [--queue-size N] [--workers N] [--threads N]\n"
      "          [--seconds S] [--rounds N] [--warmup S] [--files N] [--seq-kib N] [--dir DIR]\n"
      "          [--only randread|seqread|create] [--level device|server|host]\n"
      "  --size-mib N     size of the page-cached data file (default 256)\n"
      "  --depth N        device: requests in flight per request queue (default 32)\n"
      "  --queues N       device: request queues (default 1, as Linux 6.1 uses)\n"
      "  --queue-size N   device: entries per virtqueue (default 1024, FsConfig's)\n"
      "  --workers N      device: FsDevice worker threads (default 4, FsConfig's)\n"
      "  --threads N      host baseline and server alone: threads (default: --workers)\n"
      "  --seconds S      measured time per read figure and level (default 3), split into --rounds\n"
      "  --rounds N       the levels take turns N times (default 3); medians are shown\n"
      "  --warmup S       run before each timed measurement, not counted (default 0.2)\n"
      "  --files N        files created per level and round (default 10000)\n"
      "  --seq-kib N      sequential read size, a multiple of 4 up to 1024 (default 1024)\n"
      "  --dir DIR        where the scratch directory is made (default $TMPDIR, else /var/tmp)\n"
      "  --only W         run one workload\n"
      "  --level L        run one level (ratios need host)\n"
      "  -v, --verbose    print every run\n",
      argv0);
}

bool parse_options(int argc, char** argv, Options& o) {
  Args args(argc, argv);
  while (args.next()) {
    const std::string& a = args.flag();
    if (a == "--size-mib") o.size_mib = static_cast<uint64_t>(args.number(2, 1 << 20));
    else if (a == "--depth") o.depth = static_cast<unsigned>(args.number(1, 512));
    // Rings sit 64 KiB apart below 1 MiB: 16 queues, the hiprio one included.
    else if (a == "--queues") o.queues = static_cast<unsigned>(args.number(1, 15));
    else if (a == "--queue-size") o.queue_size = static_cast<unsigned>(args.number(2, 1024));
    else if (a == "--workers") o.workers = static_cast<unsigned>(args.number(1, 256));
    else if (a == "--threads") o.threads = static_cast<unsigned>(args.number(1, 256));
    else if (a == "--seconds") o.seconds = args.real(0.01);
    else if (a == "--rounds") o.rounds = static_cast<unsigned>(args.number(1, 1000));
    else if (a == "--warmup") o.warmup = args.real(0);
    else if (a == "--files") o.files = static_cast<unsigned>(args.number(1, 1000000));
    else if (a == "--seq-kib") o.seq_kib = static_cast<unsigned>(args.number(4, 1024));
    else if (a == "--dir") o.dir = args.value();
    else if (a == "--only") {
      const std::string v = args.value();
      if (v != "randread" && v != "seqread" && v != "create") {
        std::fprintf(stderr, "--only: randread, seqread or create\n");
        return false;
      }
      o.randread = v == "randread";
      o.seqread = v == "seqread";
      o.create = v == "create";
    } else if (a == "--level") {
      const std::string v = args.value();
      if (v != "device" && v != "server" && v != "host") {
        std::fprintf(stderr, "--level: device, server or host\n");
        return false;
      }
      o.device = v == "device";
      o.server = v == "server";
      o.host = v == "host";
    } else if (a == "-v" || a == "--verbose") {
      o.verbose = true;
    } else return args.help_or_unknown(usage);
  }
  if (o.seq_kib % 4) {
    std::fprintf(stderr, "--seq-kib: a multiple of 4\n");
    return false;
  }
  if ((o.queue_size & (o.queue_size - 1)) != 0) {
    std::fprintf(stderr, "--queue-size: a power of two\n");
    return false;
  }
  // One ring entry per slot (each request is one indirect descriptor) and
  // one for the set-up requests.
  if (o.depth >= o.queue_size) {
    std::fprintf(stderr, "--depth must be below --queue-size\n");
    return false;
  }
  if (!o.threads) o.threads = o.workers;
  return true;
}

// ---------------------------------------------------------------------------
// The scratch directory and the data file

// ext4 without a journal keeps a just-deleted inode from being reused for a
// minute or more (fs/ext4/ialloc.c, recently_deleted()), and every creation
// in that block group first walks past all of them: creating files there
// after many deletions (an earlier run of this bench, anyone's) costs
// hundreds of microseconds each. Says so when `dir` is on such a file system.
std::string ext4_journal_note(const std::string& dir) {
  struct stat st {};
  if (fs_type(dir) != "ext4" || ::stat(dir.c_str(), &st) != 0) return "";
  char link[PATH_MAX];
  const std::string sys = "/sys/dev/block/" + std::to_string(major(st.st_dev)) + ":" + std::to_string(minor(st.st_dev));
  const ssize_t n = ::readlink(sys.c_str(), link, sizeof link - 1);
  if (n <= 0) return "";
  link[n] = 0;
  const std::string name = std::strrchr(link, '/') ? std::strrchr(link, '/') + 1 : link;
  std::unique_ptr<DIR, int (*)(DIR*)> jbd2(::opendir("/proc/fs/jbd2"), &::closedir);
  if (jbd2)
    for (dirent* e; (e = ::readdir(jbd2.get()));)
      if (std::string(e->d_name).rfind(name + "-", 0) == 0) return "";
  return "ext4 on " + name + " has no journal: file creation is slow for minutes after many deletions in the same\n" +
         "      block group (ext4's recently_deleted() scan), this bench's earlier runs included";
}

void remove_tree(const std::string& path) {
  ::nftw(
      path.c_str(),
      [](const char* p, const struct stat*, int flag, FTW*) {
        if (flag == FTW_DP) ::rmdir(p);
        else ::unlink(p);
        return 0;
      },
      64, FTW_DEPTH | FTW_PHYS);
}

// The directory the server shares: the data file (filled with
// pattern_word(), synced so no writeback runs under the reads, then read
// back so every page is cached) and one empty directory per creation run.
// Removed when the bench ends, also after SIGINT/SIGTERM.
class Scratch {
 public:
  Scratch(const std::string& parent, uint64_t bytes) : parent_(parent), bytes_(bytes) {
    std::string tmpl = parent + "/skiff-bench-fs-XXXXXX";
    if (!::mkdtemp(tmpl.data())) die_errno("mkdtemp in " + parent);
    path_ = tmpl;
    suffix_ = path_.substr(path_.size() - 6);
    // ext4 places the subdirectories of a "top directory" in the emptiest
    // block group from a start that hashes their name (Orlov), not next to
    // their parent: with names no earlier run used, the creation runs land in
    // groups no one has just deleted files in (see ext4_journal_note()),
    // rather than in /var/tmp's busy neighbourhood. Elsewhere: ignored.
    if (UniqueFd d(::open(path_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC)); d) {
      int flags = 0;
      if (::ioctl(d.get(), FS_IOC_GETFLAGS, &flags) == 0) {
        flags |= FS_TOPDIR_FL;
        ::ioctl(d.get(), FS_IOC_SETFLAGS, &flags);
      }
    }
    fd_.reset(::open((path_ + "/" + kDataName).c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644));
    if (!fd_) die_errno("create " + path_ + "/" + kDataName);
    std::vector<uint64_t> chunk(kMiB / 8);
    for (uint64_t off = 0; off < bytes; off += kMiB) {
      for (size_t i = 0; i < chunk.size(); ++i) chunk[i] = pattern_word(off + 8 * i);
      const size_t n = static_cast<size_t>(std::min<uint64_t>(kMiB, bytes - off));
      if (::pwrite(fd_.get(), chunk.data(), n, static_cast<off_t>(off)) != static_cast<ssize_t>(n))
        die_errno("fill " + path_);
    }
    if (::fsync(fd_.get()) != 0) die_errno("fsync " + path_);
  }
  ~Scratch() {
    fd_.reset();
    remove_tree(path_);
    // Written back now, the deleted inodes stand in ext4's way for a minute
    // rather than five (see ext4_journal_note()).
    if (UniqueFd d(::open(parent_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC)); d) ::syncfs(d.get());
  }
  Scratch(const Scratch&) = delete;
  Scratch& operator=(const Scratch&) = delete;

  // The share of the file resident in the page cache after reading it all.
  double warm() const { return warm_page_cache(fd_.get(), bytes_); }

  const std::string& path() const { return path_; }
  int data_fd() const { return fd_.get(); }
  uint64_t bytes() const { return bytes_; }

  // A fresh empty directory for one creation run; its name is `base` and
  // this run's random suffix. Returns the name.
  std::string make_dir(const std::string& base) const {
    const std::string name = base + "-" + suffix_;
    if (::mkdir((path_ + "/" + name).c_str(), 0755) != 0) die_errno("mkdir " + path_ + "/" + name);
    return name;
  }

 private:
  std::string parent_, path_, suffix_;
  UniqueFd fd_;
  uint64_t bytes_;
};

// --files is at most 10^6: every name has the same length.
std::string file_name(uint64_t i) {
  char b[32];
  std::snprintf(b, sizeof b, "f%07llu", static_cast<unsigned long long>(i % 10000000));
  return b;
}
constexpr size_t kFileNameBytes = 9;  // "f%07llu" and its NUL

// ---------------------------------------------------------------------------
// Results

struct Result {
  uint64_t ops = 0;      // reads, or files created and released
  double seconds = 0;    // the measured window
  double cpu = 0;        // this process's CPU time (all threads) in the window
  double guest_cpu = 0;  // device: of which the simulated guest driver's
  uint64_t errors = 0;   // failed or wrong replies
  uint64_t irqs = 0, kicks = 0;  // device only
  std::string error;     // could not run at all
  double ops_s() const { return seconds > 0 ? static_cast<double>(ops) / seconds : 0; }
  double cpu_us() const { return ops ? cpu * 1e6 / static_cast<double>(ops) : 0; }
  double guest_us() const { return ops ? guest_cpu * 1e6 / static_cast<double>(ops) : 0; }
};

// Per-thread counter on its own cache line.
struct alignas(64) Counter {
  std::atomic<uint64_t> ops{0}, errors{0};
};

// Runs make(t)() in a loop on `n` threads; counts what completes between
// warmup and warmup + seconds. make(t) runs on thread t and returns the
// operation (true: it succeeded).
template <typename Make>
Result timed_threads(unsigned n, double warmup, double seconds, Make make) {
  std::vector<Counter> count(n);
  std::atomic<bool> stop{false};
  std::atomic<unsigned> ready{0};
  std::vector<std::thread> ts;
  for (unsigned t = 0; t < n; ++t)
    ts.emplace_back([&, t] {
      auto op = make(t);
      ready.fetch_add(1);
      while (!stop.load(std::memory_order_relaxed)) {
        if (!op()) count[t].errors.fetch_add(1, std::memory_order_relaxed);
        count[t].ops.fetch_add(1, std::memory_order_relaxed);
      }
    });
  while (ready.load() < n) std::this_thread::yield();
  auto sum = [&] {
    uint64_t s = 0;
    for (auto& c : count) s += c.ops.load(std::memory_order_relaxed);
    return s;
  };
  Result r;
  std::this_thread::sleep_for(to_duration(warmup));
  const auto t0 = Clock::now();
  const double cpu0 = process_cpu_seconds();
  const uint64_t ops0 = sum();
  for (auto end = t0 + to_duration(seconds); Clock::now() < end && !g_interrupted.load();)
    std::this_thread::sleep_for(std::min<Clock::duration>(end - Clock::now(), std::chrono::milliseconds(50)));
  const uint64_t ops1 = sum();
  r.cpu = process_cpu_seconds() - cpu0;
  r.seconds = seconds_between(t0, Clock::now());
  r.ops = ops1 - ops0;
  stop.store(true);
  for (auto& t : ts) t.join();
  for (auto& c : count) r.errors += c.errors.load();
  return r;
}

// Runs make(t)(i) for every i in [0, total) on `n` threads sharing the
// indices; the window is from the start signal to the last thread's end.
template <typename Make>
Result counted_threads(unsigned n, uint64_t total, Make make) {
  std::atomic<uint64_t> next{0}, errors{0};
  std::atomic<unsigned> ready{0};
  std::atomic<bool> go{false};
  std::vector<std::thread> ts;
  for (unsigned t = 0; t < n; ++t)
    ts.emplace_back([&, t] {
      auto op = make(t);
      ready.fetch_add(1);
      while (!go.load()) std::this_thread::yield();
      for (uint64_t i; (i = next.fetch_add(1)) < total && !g_interrupted.load(std::memory_order_relaxed);)
        if (!op(i)) errors.fetch_add(1);
    });
  while (ready.load() < n) std::this_thread::yield();
  Result r;
  const auto t0 = Clock::now();
  const double cpu0 = process_cpu_seconds();
  go.store(true);
  for (auto& t : ts) t.join();
  r.cpu = process_cpu_seconds() - cpu0;
  r.seconds = seconds_between(t0, Clock::now());
  r.ops = std::min<uint64_t>(next.load(), total);
  r.errors = errors.load();
  return r;
}

// ---------------------------------------------------------------------------
// Host baseline: plain system calls from `threads` threads

// Each thread reads into its share of as many buffers as the device has
// requests in flight, in turn: 32 MiB of destinations do not stay in the
// CPU's caches the way one 1 MiB buffer per thread would, and the device's
// reads land in that many guest pages.
unsigned buffers_per_thread(const Options& o) { return (o.depth * o.queues + o.threads - 1) / o.threads; }

using Buffer = std::unique_ptr<uint8_t, decltype(&std::free)>;
Buffer page_aligned(uint64_t bytes) {
  auto* p = static_cast<uint8_t*>(std::aligned_alloc(kPage, std::max(bytes, kPage)));
  if (!p) die("out of memory");
  // Touched now, so no page fault lands in a measurement.
  std::memset(p, 0x5a, bytes);
  return Buffer(p, &std::free);
}

Result host_reads(const Scratch& s, bool seq, uint64_t block, const Options& o, double seconds) {
  const uint64_t blocks = s.bytes() / block;
  const unsigned nbuf = buffers_per_thread(o);
  std::atomic<uint64_t> next_block{0};
  return timed_threads(o.threads, o.warmup, seconds, [&](unsigned t) {
    auto buf = std::make_shared<Buffer>(page_aligned(nbuf * block));
    return [&, buf, rng = Rng(7 + t), i = 0u]() mutable {
      const uint64_t b = seq ? next_block.fetch_add(1, std::memory_order_relaxed) % blocks : rng.below(blocks);
      const uint64_t off = b * block;
      uint8_t* dst = buf->get() + (i++ % nbuf) * block;
      const ssize_t n = ::pread(s.data_fd(), dst, block, static_cast<off_t>(off));
      uint64_t w;
      std::memcpy(&w, dst, 8);
      return n == static_cast<ssize_t>(block) && w == pattern_word(off);
    };
  });
}

Result host_create(const std::string& dir, const Options& o) {
  UniqueFd d(::open(dir.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!d) die_errno("open " + dir);
  return counted_threads(o.threads, o.files, [&](unsigned) {
    return [&](uint64_t i) {
      const int fd = ::openat(d.get(), file_name(i).c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
      if (fd < 0) return false;
      ::close(fd);
      return true;
    };
  });
}

// ---------------------------------------------------------------------------
// FUSE requests, as Linux 6.1 (fs/fuse/) sends them

// The caller's credentials, as the guest kernel puts them in every request
// (read once: a guest does not make a system call for them).
const uint32_t g_uid = ::getuid(), g_gid = ::getgid();

fuse_in_header in_header(uint32_t opcode, uint64_t unique, uint64_t nodeid, size_t args_len) {
  fuse_in_header h{};
  h.len = static_cast<uint32_t>(sizeof h + args_len);
  h.opcode = opcode;
  h.unique = unique;
  h.nodeid = nodeid;
  h.uid = g_uid;
  h.gid = g_gid;
  h.pid = kGuestPid;
  return h;
}

// fuse_send_init() of Linux 6.1 (fs/fuse/inode.c), a mount without DAX.
fuse_init_in linux_init_in() {
  fuse_init_in ii{};
  ii.major = FUSE_KERNEL_VERSION;
  ii.minor = 36;  // Linux 6.1
  ii.max_readahead = 128 * 1024;  // VM_READAHEAD_PAGES
  const uint64_t flags =
      FUSE_ASYNC_READ | FUSE_POSIX_LOCKS | FUSE_ATOMIC_O_TRUNC | FUSE_EXPORT_SUPPORT | FUSE_BIG_WRITES |
      FUSE_DONT_MASK | FUSE_SPLICE_WRITE | FUSE_SPLICE_MOVE | FUSE_SPLICE_READ | FUSE_FLOCK_LOCKS |
      FUSE_HAS_IOCTL_DIR | FUSE_AUTO_INVAL_DATA | FUSE_DO_READDIRPLUS | FUSE_READDIRPLUS_AUTO | FUSE_ASYNC_DIO |
      FUSE_WRITEBACK_CACHE | FUSE_NO_OPEN_SUPPORT | FUSE_PARALLEL_DIROPS | FUSE_HANDLE_KILLPRIV | FUSE_POSIX_ACL |
      FUSE_ABORT_ERROR | FUSE_MAX_PAGES | FUSE_CACHE_SYMLINKS | FUSE_NO_OPENDIR_SUPPORT | FUSE_EXPLICIT_INVAL_DATA |
      FUSE_HANDLE_KILLPRIV_V2 | FUSE_SETXATTR_EXT | FUSE_INIT_EXT | FUSE_SECURITY_CTX;
  ii.flags = static_cast<uint32_t>(flags);
  ii.flags2 = static_cast<uint32_t>(flags >> 32);
  return ii;
}

fuse_read_in read_in(uint64_t fh, uint64_t offset, uint32_t size) {
  fuse_read_in ri{};
  ri.fh = fh;
  ri.offset = offset;
  ri.size = size;
  ri.flags = O_RDONLY | O_LARGEFILE;
  return ri;
}

// fuse_create_in + the name and its NUL, as one argument buffer (Linux
// concatenates the non-page arguments into req->argbuf: one descriptor).
struct CreateArgs {
  fuse_create_in ci;
  char name[kFileNameBytes];
};
CreateArgs create_args(uint64_t i) {
  CreateArgs a{};
  a.ci.flags = O_WRONLY | O_CREAT | O_EXCL | O_LARGEFILE;
  a.ci.mode = S_IFREG | 0644;
  a.ci.umask = 022;
  std::memcpy(a.name, file_name(i).c_str(), kFileNameBytes);
  return a;
}
struct CreateReply {
  fuse_entry_out e;
  fuse_open_out o;
};

fuse_release_in release_in(uint64_t fh, uint32_t flags) {
  fuse_release_in ri{};
  ri.fh = fh;
  ri.flags = flags;
  return ri;
}

// ---------------------------------------------------------------------------
// Server alone: PassthroughFs::handle() on host buffers

// One thread's request and reply buffers, split as the device would hand
// them over: the header and the argument buffer as two readable spans, the
// reply header, its argument buffer and each 4 KiB data page as writable ones.
class HostFuse {
 public:
  HostFuse(PassthroughFs& fs, uint64_t data_bytes) : fs_(fs), data_(page_aligned(data_bytes)) {}

  // Sends `opcode` with `args`, a reply argument buffer of `out_len` bytes and
  // data_len / 4 KiB data pages from `data_off` in the data area; returns the
  // reply's length and leaves the reply in out_header()/out_args()/the data area.
  uint32_t call(uint32_t opcode, uint64_t nodeid, const void* args, size_t args_len, size_t out_len,
                uint64_t data_len = 0, uint64_t data_off = 0) {
    in_hdr_ = in_header(opcode, ++unique_, nodeid, args_len);
    std::memcpy(args_, args, args_len);
    std::vector<std::span<const uint8_t>> in{{reinterpret_cast<const uint8_t*>(&in_hdr_), sizeof in_hdr_},
                                             {args_, args_len}};
    std::vector<std::span<uint8_t>> out{{reinterpret_cast<uint8_t*>(&out_hdr_), sizeof out_hdr_}};
    if (out_len) out.emplace_back(out_args_, out_len);
    for (uint64_t off = 0; off < data_len; off += kPage) out.emplace_back(data_.get() + data_off + off, kPage);
    ChainReader r(std::move(in));
    ChainWriter w(std::move(out));
    return fs_.handle(r, w);
  }
  const fuse_out_header& out_header() const { return out_hdr_; }
  const uint8_t* out_args() const { return out_args_; }
  const uint8_t* data(uint64_t off) const { return data_.get() + off; }
  uint64_t unique() const { return unique_; }

  // INIT, LOOKUP, OPEN for the set-up: false, 0 or nullopt on failure.
  bool init() {
    const fuse_init_in ii = linux_init_in();
    return call(FUSE_INIT, 0, &ii, sizeof ii, sizeof(fuse_init_out)) && out_hdr_.error == 0;
  }
  uint64_t lookup(uint64_t parent, const std::string& name) {
    if (!call(FUSE_LOOKUP, parent, name.c_str(), name.size() + 1, sizeof(fuse_entry_out)) || out_hdr_.error)
      return 0;
    fuse_entry_out e;
    std::memcpy(&e, out_args_, sizeof e);
    return e.nodeid;
  }
  std::optional<uint64_t> open(uint64_t nodeid, uint32_t flags) {
    const fuse_open_in oi{flags, 0};
    if (!call(FUSE_OPEN, nodeid, &oi, sizeof oi, sizeof(fuse_open_out)) || out_hdr_.error) return std::nullopt;
    fuse_open_out oo;
    std::memcpy(&oo, out_args_, sizeof oo);
    return oo.fh;
  }

 private:
  PassthroughFs& fs_;
  fuse_in_header in_hdr_{};
  uint8_t args_[512];
  fuse_out_header out_hdr_{};
  uint8_t out_args_[256];
  Buffer data_;
  uint64_t unique_ = 0;
};

std::shared_ptr<PassthroughFs> make_server(const Scratch& s) {
  PassthroughOptions po;
  po.root = s.path();
  return std::make_shared<PassthroughFs>(po);
}

Result server_reads(const Scratch& s, bool seq, uint64_t block, const Options& o, double seconds) {
  auto fs = make_server(s);
  HostFuse setup(*fs, 0);
  uint64_t node = 0;
  std::optional<uint64_t> fh;
  if (!setup.init() || !(node = setup.lookup(FUSE_ROOT_ID, kDataName)) || !(fh = setup.open(node, O_RDONLY))) {
    Result r;
    r.error = "INIT/LOOKUP/OPEN failed";
    return r;
  }
  const uint64_t blocks = s.bytes() / block;
  const unsigned nbuf = buffers_per_thread(o);
  std::atomic<uint64_t> next_block{0};
  return timed_threads(o.threads, o.warmup, seconds, [&](unsigned t) {
    auto c = std::make_shared<HostFuse>(*fs, nbuf * block);
    return [&, c, rng = Rng(7 + t), i = 0u]() mutable {
      const uint64_t b = seq ? next_block.fetch_add(1, std::memory_order_relaxed) % blocks : rng.below(blocks);
      const fuse_read_in ri = read_in(*fh, b * block, static_cast<uint32_t>(block));
      const uint64_t data_off = (i++ % nbuf) * block;
      const uint32_t len = c->call(FUSE_READ, node, &ri, sizeof ri, 0, block, data_off);
      uint64_t w;
      std::memcpy(&w, c->data(data_off), 8);
      return len == sizeof(fuse_out_header) + block && c->out_header().error == 0 &&
             c->out_header().unique == c->unique() && w == pattern_word(b * block);
    };
  });
}

Result server_create(const Scratch& s, const std::string& dir_name, const Options& o) {
  auto fs = make_server(s);
  HostFuse setup(*fs, 0);
  uint64_t dir = 0;
  if (!setup.init() || !(dir = setup.lookup(FUSE_ROOT_ID, dir_name))) {
    Result r;
    r.error = "INIT/LOOKUP failed";
    return r;
  }
  return counted_threads(o.threads, o.files, [&](unsigned) {
    auto c = std::make_shared<HostFuse>(*fs, 0);
    return [&, c](uint64_t i) {
      const CreateArgs a = create_args(i);
      if (c->call(FUSE_CREATE, dir, &a, sizeof a, sizeof(CreateReply)) != sizeof(fuse_out_header) + sizeof(CreateReply) ||
          c->out_header().error)
        return false;
      CreateReply cr;
      std::memcpy(&cr, c->out_args(), sizeof cr);
      const fuse_release_in ri = release_in(cr.o.fh, a.ci.flags & ~(O_CREAT | O_EXCL));
      return c->call(FUSE_RELEASE, cr.e.nodeid, &ri, sizeof ri, 0) == sizeof(fuse_out_header) &&
             c->out_header().error == 0;
    };
  });
}

// ---------------------------------------------------------------------------
// Device: FsDevice + PassthroughFs, driven by a simulated guest driver

// Guest-physical layout: queue q's rings at q * 64 KiB (descriptors, avail
// at +16 KiB, used at +20 KiB: room for 1024 entries), the set-up request's
// buffers at 1 MiB, the request slots from 2 MiB. A slot: one page for the
// headers and argument buffers, an indirect table, then its data pages.
constexpr uint64_t kRingStride = 0x10000;
constexpr uint64_t kSetupBase = 0x100000;
constexpr uint64_t kSlotBase = 0x200000;
constexpr uint64_t kInHdr = 0, kInArgs = 64, kOutHdr = 2048, kOutArgs = 2048 + 64;  // within the header page
constexpr uint64_t kTableOffset = kPage;
constexpr uint64_t kTableBytes = 2 * kPage;  // 512 descriptors: 256 data pages and the headers

QueueConfig ring_at(unsigned q, uint16_t size) {
  const uint64_t base = q * kRingStride;
  return QueueConfig{size, GuestAddress(base), GuestAddress(base + 0x4000), GuestAddress(base + 0x5000), true};
}

// One request slot of the driver: the request it holds and where its
// buffers live. A slot's ring head is its index in its queue.
struct Slot {
  unsigned queue = 0;
  uint16_t head = 0;
  uint64_t hdr = 0, table = 0, data = 0;
  int shape = -1;  // which request layout the indirect table holds now
  // the request in flight
  uint32_t opcode = 0;
  uint64_t unique = 0, offset = 0, file = 0, fh = 0, nodeid = 0;
};

struct Buf {
  uint64_t addr;
  uint32_t len;
};

// Watches that a device run makes progress: a lost interrupt or a stuck
// request would otherwise hang the bench in the blocking wait.
class Watchdog {
 public:
  explicit Watchdog(EventInterrupt& irq) : irq_(irq), thread_([this] { run(); }) {}
  ~Watchdog() {
    {
      std::lock_guard lk(mu_);
      done_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }
  void progress() { progress_.fetch_add(1, std::memory_order_relaxed); }
  bool stalled() const { return stalled_.load(); }

 private:
  void run() {
    std::unique_lock lk(mu_);
    uint64_t last = 0;
    int quiet = 0;
    while (!cv_.wait_for(lk, std::chrono::seconds(1), [this] { return done_; })) {
      const uint64_t p = progress_.load(std::memory_order_relaxed);
      quiet = p == last ? quiet + 1 : 0;
      last = p;
      if (quiet >= 10) {
        stalled_.store(true);
        irq_.poke();
      }
    }
  }
  EventInterrupt& irq_;
  std::atomic<uint64_t> progress_{0};
  std::atomic<bool> stalled_{false};
  std::mutex mu_;
  std::condition_variable cv_;
  bool done_ = false;
  std::thread thread_;
};

class FsGuest {
 public:
  // `data_bytes`: the data pages of each slot.
  FsGuest(const Options& o, const Scratch& s, uint64_t data_bytes)
      : depth_(o.depth),
        queues_(o.queues),
        stride_(kTableOffset + kTableBytes + ((data_bytes + kPage - 1) & ~(kPage - 1))),
        mem_(GuestMemory::create({{GuestAddress(0), round_2m(kSlotBase + uint64_t{o.queues} * o.depth * stride_)}})),
        fs_(make_server(s)),
        irq_(std::make_shared<EventInterrupt>()),
        dev_(std::make_unique<FsDevice>(mem_, fs_config(o), fs_)) {
    std::vector<std::unique_ptr<Virtqueue>> vqs;
    for (unsigned q = 0; q <= o.queues; ++q) {
      const QueueConfig qc = ring_at(q, static_cast<uint16_t>(o.queue_size));
      rings_.push_back(std::make_unique<DriverRing>(mem_, qc));
      vqs.push_back(std::make_unique<Virtqueue>(mem_, qc));
    }
    const uint64_t features = bit(kFeatureVersion1) | bit(kFeatureEventIdx) | bit(kFeatureIndirectDesc);
    if ((dev_->device_features() & features) != features) die("virtio-fs: the device lacks EVENT_IDX or INDIRECT_DESC");
    if (!dev_->activate(features, std::move(vqs), irq_)) die("virtio-fs: activate refused");
    for (unsigned q = 0; q < o.queues; ++q)
      for (unsigned i = 0; i < o.depth; ++i) {
        Slot sl;
        sl.queue = 1 + q;
        sl.head = static_cast<uint16_t>(i);
        sl.hdr = kSlotBase + (uint64_t{q} * o.depth + i) * stride_;
        sl.table = sl.hdr + kTableOffset;
        sl.data = sl.table + kTableBytes;
        slots_.push_back(sl);
      }
    setup_.queue = 1;
    setup_.head = static_cast<uint16_t>(o.queue_size - 1);
    setup_.hdr = kSetupBase;
    setup_.table = kSetupBase + kTableOffset;
    for (auto& r : rings_) r->enable_interrupt_and_check();
  }
  ~FsGuest() { dev_->reset(); }
  FsGuest(const FsGuest&) = delete;
  FsGuest& operator=(const FsGuest&) = delete;

  const GuestMemory& mem() const { return mem_; }

  // Writes the request's descriptors into the slot's indirect table (unless
  // it holds this shape already: Linux rebuilds it for every request, but
  // the cost belongs to the guest) and makes the slot's head point at it.
  void post(Slot& s, int shape, std::span<const Buf> rd, std::span<const Buf> wr) {
    if (s.shape != shape || shape < 0) {
      const size_t n = rd.size() + wr.size();
      for (size_t i = 0; i < n; ++i) {
        const Buf& b = i < rd.size() ? rd[i] : wr[i - rd.size()];
        uint16_t flags = i < rd.size() ? 0 : kDescFWrite;
        if (i + 1 < n) flags |= kDescFNext;
        mem_.write_obj(GuestAddress(s.table + kDescSize * i),
                       RawDescriptor{b.addr, b.len, flags, static_cast<uint16_t>(i + 1 < n ? i + 1 : 0)});
      }
      rings_[s.queue]->desc(s.head, s.table, static_cast<uint32_t>(kDescSize * n), kDescFIndirect);
      s.shape = shape;
    }
    rings_[s.queue]->push(s.head);
  }

  // Writes fuse_in_header and the argument buffer of a request into slot s.
  void put_request(Slot& s, uint32_t opcode, uint64_t nodeid, const void* args, size_t args_len) {
    s.opcode = opcode;
    s.unique = ++unique_;
    s.nodeid = nodeid;
    mem_.write_obj(GuestAddress(s.hdr + kInHdr), in_header(opcode, s.unique, nodeid, args_len));
    mem_.write(GuestAddress(s.hdr + kInArgs), std::span(static_cast<const uint8_t*>(args), args_len));
    // What the server does not overwrite must not look like a good reply.
    mem_.write_obj(GuestAddress(s.hdr + kOutHdr), fuse_out_header{0, -EBADMSG, 0});
  }
  fuse_out_header out_header(const Slot& s) const { return mem_.read_obj<fuse_out_header>(GuestAddress(s.hdr + kOutHdr)); }
  template <typename T>
  T out_args(const Slot& s) const {
    return mem_.read_obj<T>(GuestAddress(s.hdr + kOutArgs));
  }
  // The reply was complete and successful: `want` bytes, the right unique.
  bool reply_ok(const Slot& s, const UsedElem& u, uint32_t want) const {
    const fuse_out_header oh = out_header(s);
    return u.len == want && oh.len == want && oh.error == 0 && oh.unique == s.unique;
  }

  // A synchronous request in the set-up slot (nothing else in flight):
  // request `args`, reply `out_len` bytes of arguments; false on failure.
  bool call(uint32_t opcode, uint64_t nodeid, const void* args, size_t args_len, size_t out_len) {
    Slot& s = setup_;
    put_request(s, opcode, nodeid, args, args_len);
    const Buf rd[] = {{s.hdr + kInHdr, sizeof(fuse_in_header)}, {s.hdr + kInArgs, static_cast<uint32_t>(args_len)}};
    const Buf wr[] = {{s.hdr + kOutHdr, sizeof(fuse_out_header)}, {s.hdr + kOutArgs, static_cast<uint32_t>(out_len)}};
    post(s, -1, rd, std::span(wr, out_len ? 2 : 1));
    dev_->queue_notify(s.queue);
    DriverRing& ring = *rings_[s.queue];
    for (auto deadline = Clock::now() + std::chrono::seconds(10); Clock::now() < deadline;) {
      if (auto u = ring.next_used()) {
        ring.enable_interrupt_and_check();
        return u->id == s.head && reply_ok(s, *u, static_cast<uint32_t>(sizeof(fuse_out_header) + out_len));
      }
      if (!ring.enable_interrupt_and_check()) std::this_thread::sleep_for(std::chrono::microseconds(100));
    }
    die("virtio-fs: no reply to a set-up request within 10 s");
  }
  bool init() {
    const fuse_init_in ii = linux_init_in();
    if (!call(FUSE_INIT, 0, &ii, sizeof ii, sizeof(fuse_init_out))) return false;
    const auto io = out_args<fuse_init_out>(setup_);
    max_pages_ = io.max_pages;
    return io.major == FUSE_KERNEL_VERSION && io.minor >= 31;
  }
  uint64_t lookup(uint64_t parent, const std::string& name) {
    if (!call(FUSE_LOOKUP, parent, name.c_str(), name.size() + 1, sizeof(fuse_entry_out))) return 0;
    return out_args<fuse_entry_out>(setup_).nodeid;
  }
  std::optional<uint64_t> open(uint64_t nodeid, uint32_t flags) {
    const fuse_open_in oi{flags, 0};
    if (!call(FUSE_OPEN, nodeid, &oi, sizeof oi, sizeof(fuse_open_out))) return std::nullopt;
    return out_args<fuse_open_out>(setup_).fh;
  }
  unsigned max_pages() const { return max_pages_; }

  // Keeps every slot busy: start(slot) posts the slot's next request (false:
  // nothing more for it), done(slot, used) checks a completion and returns
  // +1 when it ends an operation, 0 when the operation goes on (the slot's
  // next request), -1 for a failed operation. Timed (seconds > 0): counts
  // what ends in [warmup, warmup + seconds], then drains. Counted (seconds
  // == 0): runs until no slot has more to do, all of it measured.
  template <typename Start, typename Done>
  Result drive(double warmup, double seconds, Start start, Done done) {
    Result r;
    Watchdog dog(*irq_);
    const bool timed = seconds > 0;
    uint64_t kicks = 0, inflight = 0;
    // The driver thread's CPU time, less what it spends inside
    // queue_notify() (the device's work, which the VMM does on its I/O
    // thread), is the simulated guest's share of the CPU figure.
    double notify_cpu = 0, driver_cpu0 = 0;
    bool counting = !timed, stopping = false;
    auto kick = [&](unsigned q) {
      if (rings_[q]->kick_needed()) {
        const double c0 = counting ? thread_cpu_seconds() : 0;
        dev_->queue_notify(q);
        if (counting) notify_cpu += thread_cpu_seconds() - c0;
        ++kicks;
      }
    };
    const auto begin = Clock::now();
    const auto t0 = begin + to_duration(timed ? warmup : 0);
    const auto t1 = t0 + to_duration(seconds);
    Clock::time_point from = begin;
    double cpu0 = process_cpu_seconds();
    driver_cpu0 = thread_cpu_seconds();
    uint64_t irq0 = irq_->count(), kicks0 = 0;
    for (Slot& s : slots_)
      if (start(s)) ++inflight;
    for (unsigned q = 1; q <= queues_; ++q) {
      rings_[q]->enable_interrupt_and_check();
      kick(q);
    }
    while (inflight > 0) {
      irq_->wait();
      if (dog.stalled()) {
        if (!g_interrupted.load()) r.error = "stalled: no completion for 10 s (" + std::to_string(inflight) + " in flight)";
        break;
      }
      if (timed) {
        const auto now = Clock::now();
        if (!counting && !stopping && now >= t0) {
          counting = true;
          from = now;
          cpu0 = process_cpu_seconds();
          driver_cpu0 = thread_cpu_seconds();
          irq0 = irq_->count();
          kicks0 = kicks;
        }
        if (!stopping && (now >= t1 || g_interrupted.load())) {
          stopping = true;
          counting = false;
          r.seconds = seconds_between(from, now);
          r.cpu = process_cpu_seconds() - cpu0;
          r.guest_cpu = thread_cpu_seconds() - driver_cpu0 - notify_cpu;
          r.irqs = irq_->count() - irq0;
          r.kicks = kicks - kicks0;
        }
      }
      for (unsigned q = 1; q <= queues_; ++q) {
        DriverRing& ring = *rings_[q];
        do {
          while (auto u = ring.next_used()) {
            --inflight;
            dog.progress();
            if (u->id >= depth_) {
              ++r.errors;  // not one of ours: nothing to restart
              continue;
            }
            Slot& s = slots_[(q - 1) * depth_ + u->id];
            const int d = done(s, *u);
            if (d < 0) ++r.errors;
            if (d > 0 && counting) ++r.ops;
            if (!stopping && start(s)) ++inflight;
          }
        } while (ring.enable_interrupt_and_check());
        kick(q);
      }
    }
    if (!timed) {
      r.seconds = seconds_between(from, Clock::now());
      r.cpu = process_cpu_seconds() - cpu0;
      r.guest_cpu = thread_cpu_seconds() - driver_cpu0 - notify_cpu;
      r.irqs = irq_->count() - irq0;
      r.kicks = kicks - kicks0;
    }
    if (!r.error.empty()) {
      // Requests may still be running: wait for them before the slots go.
      dev_->reset();
    }
    return r;
  }

 private:
  static uint64_t round_2m(uint64_t v) { return (v + 0x1fffff) & ~uint64_t{0x1fffff}; }
  static FsConfig fs_config(const Options& o) {
    FsConfig c;
    c.tag = "bench";
    c.request_queues = o.queues;
    c.queue_size = static_cast<uint16_t>(o.queue_size);
    c.workers = o.workers;
    return c;
  }

  const unsigned depth_, queues_;
  const uint64_t stride_;
  GuestMemory mem_;
  std::shared_ptr<PassthroughFs> fs_;
  std::shared_ptr<EventInterrupt> irq_;
  std::unique_ptr<FsDevice> dev_;
  std::vector<std::unique_ptr<DriverRing>> rings_;  // [0] is the hiprio queue
  std::vector<Slot> slots_;
  Slot setup_;
  uint64_t unique_ = 0;
  unsigned max_pages_ = 0;
};

enum Shape { kShapeRead = 0, kShapeCreate = 1, kShapeRelease = 2 };

Result device_reads(const Scratch& s, bool seq, uint64_t block, const Options& o, double seconds) {
  FsGuest g(o, s, block);
  Result r;
  uint64_t node = 0;
  std::optional<uint64_t> fh;
  if (!g.init() || !(node = g.lookup(FUSE_ROOT_ID, kDataName)) || !(fh = g.open(node, O_RDONLY))) {
    r.error = "INIT/LOOKUP/OPEN failed";
    return r;
  }
  if (block > uint64_t{g.max_pages()} * kPage) {
    r.error = "the server's max_pages is below the read size";
    return r;
  }
  const uint64_t blocks = s.bytes() / block;
  const uint32_t pages = static_cast<uint32_t>(block / kPage);
  const uint32_t want = static_cast<uint32_t>(sizeof(fuse_out_header) + block);
  Rng rng(7);
  uint64_t next_block = 0;
  std::vector<Buf> rd, wr;
  auto start = [&](Slot& sl) {
    const uint64_t b = seq ? next_block++ % blocks : rng.below(blocks);
    sl.offset = b * block;
    const fuse_read_in ri = read_in(*fh, sl.offset, static_cast<uint32_t>(block));
    g.put_request(sl, FUSE_READ, node, &ri, sizeof ri);
    if (sl.shape != kShapeRead) {
      rd = {{sl.hdr + kInHdr, sizeof(fuse_in_header)}, {sl.hdr + kInArgs, sizeof(fuse_read_in)}};
      wr = {{sl.hdr + kOutHdr, sizeof(fuse_out_header)}};
      for (uint32_t p = 0; p < pages; ++p) wr.push_back({sl.data + p * kPage, static_cast<uint32_t>(kPage)});
    }
    g.post(sl, kShapeRead, rd, wr);
    return true;
  };
  auto done = [&](Slot& sl, const UsedElem& u) {
    const bool ok = g.reply_ok(sl, u, want) &&
                    g.mem().read_obj<uint64_t>(GuestAddress(sl.data)) == pattern_word(sl.offset) &&
                    g.mem().read_obj<uint64_t>(GuestAddress(sl.data + block - 8)) == pattern_word(sl.offset + block - 8);
    return ok ? 1 : -1;
  };
  return g.drive(o.warmup, seconds, start, done);
}

Result device_create(const Scratch& s, const std::string& dir_name, const Options& o) {
  FsGuest g(o, s, 0);
  Result r;
  uint64_t dir = 0;
  if (!g.init() || !(dir = g.lookup(FUSE_ROOT_ID, dir_name))) {
    r.error = "INIT/LOOKUP failed";
    return r;
  }
  uint64_t next_file = 0;
  auto start = [&](Slot& sl) {
    if (sl.opcode == FUSE_CREATE) {
      // Its CREATE went through: close the file (Linux's fuse_release).
      const fuse_release_in ri = release_in(sl.fh, O_WRONLY | O_LARGEFILE);
      g.put_request(sl, FUSE_RELEASE, sl.nodeid, &ri, sizeof ri);
      const Buf rd[] = {{sl.hdr + kInHdr, sizeof(fuse_in_header)}, {sl.hdr + kInArgs, sizeof ri}};
      const Buf wr[] = {{sl.hdr + kOutHdr, sizeof(fuse_out_header)}};
      g.post(sl, kShapeRelease, rd, wr);
      return true;
    }
    if (next_file >= o.files || g_interrupted.load(std::memory_order_relaxed)) return false;
    sl.file = next_file++;
    const CreateArgs a = create_args(sl.file);
    g.put_request(sl, FUSE_CREATE, dir, &a, sizeof a);
    const Buf rd[] = {{sl.hdr + kInHdr, sizeof(fuse_in_header)}, {sl.hdr + kInArgs, sizeof a}};
    const Buf wr[] = {{sl.hdr + kOutHdr, sizeof(fuse_out_header)}, {sl.hdr + kOutArgs, sizeof(CreateReply)}};
    g.post(sl, kShapeCreate, rd, wr);
    return true;
  };
  auto done = [&](Slot& sl, const UsedElem& u) {
    if (sl.opcode == FUSE_CREATE) {
      if (!g.reply_ok(sl, u, sizeof(fuse_out_header) + sizeof(CreateReply))) {
        sl.opcode = 0;  // the next start() takes a new file
        return -1;
      }
      const auto cr = g.out_args<CreateReply>(sl);
      sl.fh = cr.o.fh;
      sl.nodeid = cr.e.nodeid;
      return 0;
    }
    sl.opcode = 0;
    return g.reply_ok(sl, u, sizeof(fuse_out_header)) ? 1 : -1;
  };
  return g.drive(0, 0, start, done);
}

// ---------------------------------------------------------------------------
// The table

struct Series {
  std::vector<double> ops_s, ratio, cpu_us_op, guest_us_op;
  uint64_t ops = 0, errors = 0, irqs = 0, kicks = 0;
  std::string error;
  void add(const Result& r, double host_ops_s) {
    if (!r.error.empty()) {
      error = r.error;
      return;
    }
    ops_s.push_back(r.ops_s());
    if (host_ops_s > 0) ratio.push_back(r.ops_s() / host_ops_s);
    ops += r.ops;
    errors += r.errors;
    irqs += r.irqs;
    kicks += r.kicks;
    if (r.ops) cpu_us_op.push_back(r.cpu_us());
    if (r.ops) guest_us_op.push_back(r.guest_us());
  }
  // The median of the rounds: one round under a disturbance (a burst of
  // other work, a slow file system moment) must not set the figure.
  double cpu_us() const { return median(cpu_us_op); }
  double guest_us() const { return median(guest_us_op); }
};

enum Level { kDevice = 0, kServer = 1, kHost = 2 };
const char* const kLevelName[] = {"device", "server alone", "host"};

void print_header() {
  std::printf("\n| workload            | level        |      ops/s |    MiB/s | host ops/s | host MiB/s | ratio / host [min-max] "
              "| CPU us/op | of which guest driver | host CPU us/op | irq/op | kick/op |\n");
  std::printf("|---------------------|--------------|-----------:|---------:|-----------:|-----------:|------------------------"
              "|----------:|----------------------:|---------------:|-------:|--------:|\n");
}

void print_rows(const char* work, uint64_t bytes_per_op, const Series (&s)[3], const Options& o) {
  // With -v every workload's runs come between its rows and the last ones.
  static bool header_printed = false;
  if (o.verbose || !header_printed) print_header();
  header_printed = true;
  const bool run[3] = {o.device, o.server, o.host};
  auto mib = [&](double ops_s, char* buf, size_t n) {
    if (bytes_per_op) std::snprintf(buf, n, "%.0f", ops_s * static_cast<double>(bytes_per_op) / kMiB);
    else std::snprintf(buf, n, "-");
  };
  char host_ops[32] = "-", host_mib[32] = "-", host_cpu[32] = "-";
  const Series& h = s[kHost];
  if (o.host && h.error.empty() && !h.ops_s.empty()) {
    std::snprintf(host_ops, sizeof host_ops, "%.0f", median(h.ops_s));
    mib(median(h.ops_s), host_mib, sizeof host_mib);
    std::snprintf(host_cpu, sizeof host_cpu, "%.2f", h.cpu_us());
  }
  for (int l : {kDevice, kServer, kHost}) {
    if (!run[l] || (l == kHost && (o.device || o.server))) continue;
    const Series& x = s[l];
    if (!x.error.empty() || x.ops_s.empty()) {
      std::printf("| %-19s | %-12s | failed: %s |\n", work, kLevelName[l], x.error.empty() ? "no result" : x.error.c_str());
      continue;
    }
    char ops[32], mibs[32], ratio[64] = "-", irq[16] = "-", kick[16] = "-", guest[16] = "-";
    std::snprintf(ops, sizeof ops, "%.0f", median(x.ops_s));
    mib(median(x.ops_s), mibs, sizeof mibs);
    if (!x.ratio.empty())
      std::snprintf(ratio, sizeof ratio, "%.2f [%.2f-%.2f]", median(x.ratio),
                    *std::min_element(x.ratio.begin(), x.ratio.end()), *std::max_element(x.ratio.begin(), x.ratio.end()));
    if (l == kDevice && x.ops) {
      std::snprintf(guest, sizeof guest, "%.2f", x.guest_us());
      std::snprintf(irq, sizeof irq, "%.3f", static_cast<double>(x.irqs) / static_cast<double>(x.ops));
      std::snprintf(kick, sizeof kick, "%.3f", static_cast<double>(x.kicks) / static_cast<double>(x.ops));
    }
    std::printf("| %-19s | %-12s | %10s | %8s | %10s | %10s | %-22s | %9.2f | %21s | %14s | %6s | %7s |\n", work,
                kLevelName[l], ops, mibs, host_ops, host_mib, ratio, x.cpu_us(), guest, host_cpu, irq, kick);
  }
  for (int l : {kDevice, kServer, kHost})
    if (s[l].errors)
      std::printf("  (%s, %s: %llu failed or wrong replies)\n", work, kLevelName[l],
                  static_cast<unsigned long long>(s[l].errors));
}

// Runs one workload: in each round every level once, in an order that
// rotates so no level always follows the same one.
template <typename RunLevel>
void run_rounds(const Options& o, Series (&s)[3], RunLevel run_level) {
  const bool run[3] = {o.device, o.server, o.host};
  for (unsigned round = 0; round < o.rounds && !g_interrupted.load(); ++round) {
    Result res[3];
    bool have[3] = {};
    // In three rounds each level runs first, second and last once: a change
    // in what else the host runs does not favour one of them.
    const int order[3][3] = {{kHost, kServer, kDevice}, {kDevice, kHost, kServer}, {kServer, kDevice, kHost}};
    for (int l : order[round % 3]) {
      if (!run[l] || g_interrupted.load()) continue;
      res[l] = run_level(static_cast<Level>(l), round);
      have[l] = true;
      if (o.verbose) {
        const Result& x = res[l];
        if (!x.error.empty())
          std::printf("  round %u %-12s: %s\n", round, kLevelName[l], x.error.c_str());
        else
          std::printf("  round %u %-12s: %10.0f ops/s, %8.2f CPU us/op, %llu ops in %.3f s, %llu errors\n", round,
                      kLevelName[l], x.ops_s(), x.cpu_us(), static_cast<unsigned long long>(x.ops), x.seconds,
                      static_cast<unsigned long long>(x.errors));
      }
    }
    const double h = have[kHost] && res[kHost].error.empty() ? res[kHost].ops_s() : 0;
    for (int l : {kDevice, kServer, kHost})
      if (have[l]) s[l].add(res[l], l == kHost ? 0 : h);
  }
}

void bench_reads(const Options& o, const Scratch& s, bool seq) {
  const uint64_t block = seq ? uint64_t{o.seq_kib} * 1024 : kPage;
  const double round_s = o.seconds / o.rounds;
  s.warm();
  Series series[3];
  run_rounds(o, series, [&](Level l, unsigned) {
    switch (l) {
      case kDevice: return device_reads(s, seq, block, o, round_s);
      case kServer: return server_reads(s, seq, block, o, round_s);
      default: return host_reads(s, seq, block, o, round_s);
    }
  });
  char name[32];
  if (seq) std::snprintf(name, sizeof name, "seq read %u KiB", o.seq_kib);
  else std::snprintf(name, sizeof name, "rand read 4 KiB");
  print_rows(name, block, series, o);
}

void bench_create(const Options& o, const Scratch& s) {
  Series series[3];
  std::vector<std::string> dirs;
  run_rounds(o, series, [&](Level l, unsigned round) {
    const char* tag[] = {"device", "server", "host"};
    const std::string name = s.make_dir(std::string("create-") + tag[l] + "-" + std::to_string(round));
    dirs.push_back(s.path() + "/" + name);
    Result r;
    switch (l) {
      case kDevice: r = device_create(s, name, o); break;
      case kServer: r = server_create(s, name, o); break;
      default: r = host_create(dirs.back(), o); break;
    }
    // Outside the measurement: nothing of this run is left to write back
    // under the next one. The files stay until every run is over: on ext4
    // without a journal, creating files next to just-deleted ones is slow
    // (see ext4_journal_note()), and that must not depend on the order.
    ::syncfs(s.data_fd());
    return r;
  });
  for (const auto& d : dirs) remove_tree(d);
  if (o.host && series[kHost].cpu_us() > 100 && !ext4_journal_note(s.path()).empty())
    std::printf("  (creation at %.0f us of CPU per file on the host: ext4's recently_deleted() scan, not the server,\n"
                "   dominates; run again some minutes after the last mass deletion, or with --dir on a tmpfs)\n",
                series[kHost].cpu_us());
  char name[32];
  std::snprintf(name, sizeof name, "create %u files", o.files);
  print_rows(name, 0, series, o);
}

// ---------------------------------------------------------------------------

void print_host(const std::string& dir) {
  std::printf("host: %s, this process may run on %d of them; scratch in %s (%s)\n", host_summary().c_str(),
              usable_cpus(), dir.c_str(), fs_type(dir).c_str());
  if (const std::string note = ext4_journal_note(dir); !note.empty()) std::printf("      %s\n", note.c_str());
  print_load_average("figures");
  if (pvm_host())
    std::printf("      kvm_pvm loaded: this host is itself a PVM guest; its system calls, context switches and\n"
                "      wake-ups of an idle CPU cost more than on bare metal, on both sides of each comparison\n");
}

// The server keeps one fd per created file until the run ends, one per
// handle and the device a few more: raise the soft limit as far as allowed.
unsigned fit_files(unsigned files, unsigned depth) {
  rlimit rl{};
  if (::getrlimit(RLIMIT_NOFILE, &rl) != 0) return files;
  if (rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &rl);
    ::getrlimit(RLIMIT_NOFILE, &rl);
  }
  const rlim_t reserve = 2 * rlim_t{depth} + 256;
  if (rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur >= files + reserve) return files;
  return rl.rlim_cur > reserve ? static_cast<unsigned>(rl.rlim_cur - reserve) : 1;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  if (!parse_options(argc, argv, o)) return 2;
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  // SIGINT/SIGTERM end the runs early, so the scratch directory is removed.
  struct sigaction sa {};
  sa.sa_handler = [](int) { g_interrupted.store(true); };
  ::sigaction(SIGINT, &sa, nullptr);
  ::sigaction(SIGTERM, &sa, nullptr);

  const char* tmpdir = std::getenv("TMPDIR");
  const std::string dir = !o.dir.empty() ? o.dir : (tmpdir && *tmpdir ? tmpdir : "/var/tmp");
  if (const unsigned f = fit_files(o.files, o.depth * o.queues); f != o.files) {
    std::printf("RLIMIT_NOFILE: %u files per run instead of %u\n", f, o.files);
    o.files = f;
  }
  std::printf("skiff_bench_fs: the virtio-fs FUSE server beside plain system calls, in process\n");
  print_host(dir);
  Scratch s(dir, o.size_mib * kMiB);
  std::printf("data file: %llu MiB, %.0f %% resident in the page cache after the pre-read\n",
              static_cast<unsigned long long>(o.size_mib), 100 * s.warm());
  std::printf("device: FsDevice, %u request queue(s) of %u entries, %u workers; %u requests in flight per queue,\n"
              "        indirect descriptors, EVENT_IDX, the driver blocks on the interrupt (an eventfd)\n"
              "server alone: PassthroughFs::handle() on host buffers from %u threads\n"
              "host: pread() / openat(O_CREAT|O_EXCL)+close() from %u threads on the same file and file system\n"
              "reads: %u rounds of %.2f s per level (each after %.1f s unmeasured); creation: %u files per level and\n"
              "round into an empty directory (CREATE + RELEASE each; host: openat + close). Rates are medians of\n"
              "the rounds, the ratio the median of each round's level / host [min-max]; CPU us/op is this process's\n"
              "CPU time (all threads, the simulated driver included) over the operations.\n",
              o.queues, o.queue_size, o.workers, o.depth, o.threads, o.threads, o.rounds, o.seconds / o.rounds,
              o.warmup, o.files);
  if (o.randread && !g_interrupted.load()) bench_reads(o, s, false);
  if (o.seqread && !g_interrupted.load()) bench_reads(o, s, true);
  if (o.create && !g_interrupted.load()) bench_create(o, s);
  if (g_interrupted.load()) {
    std::printf("interrupted: the figures above are partial\n");
    return 130;
  }
  return 0;
}
