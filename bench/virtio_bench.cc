// skiff_bench_virtio: the data paths of the virtio device models, driven in
// this process by a simulated guest driver that writes real descriptors into
// a real GuestMemory (the approach of virtio/testing/driver_queue.h).
//
// Figures (the budget is docs/DESIGN.md section 7; met/missed is information only,
// the benchmark never fails on a figure):
//   1. virtio-blk: 4 KiB random reads and writes against a page-cached file,
//      N queues each kept at queue depth D, for each back end (io_uring,
//      thread pool), beside the host's own io_uring (liburing, one ring at
//      the same total queue depth) on the same file in the same run: IOPS and
//      the ratio Skiff / host (budget: reads >= 90 % of host IOPS).
//   2. virtio-vsock: stream throughput host -> guest (the host program writes
//      64 KiB chunks into its end as fast as it can, the simulated guest
//      consumes rx packets and returns credit as Linux does), and the round
//      trip host -> guest -> host of 64 bytes echoed by the guest.
//
// What is left out, on purpose: the vCPU's exit on a queue kick and the
// ioeventfd/irqfd hops (the driver calls queue_notify() itself, as the unit
// tests do, and the device's interrupt is an eventfd the driver blocks on).
// These figures are the device models and their back ends.
#include <fcntl.h>
#include <liburing.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include "bench/bench_support.h"
#include "virtio/blk/blk_device.h"
#include "virtio/virtqueue.h"
#include "virtio/vsock/vsock_device.h"
#include "memory/guest_memory.h"
#include "base/io_thread.h"
#include "base/unique_fd.h"

namespace {

using skiff::GuestAddress;
using skiff::GuestMemory;
using skiff::UniqueFd;
using namespace skiff::virtio;
using namespace skiff::bench;

constexpr double kBlkTargetRatio = 0.90;  // docs/DESIGN.md 7: >= 90 % of host IOPS
constexpr uint64_t kBlock = 4096;
constexpr uint64_t kMiB = 1 << 20;

// ---------------------------------------------------------------------------
// Options

struct Options {
  uint64_t size_mib = 256;
  unsigned queues = 4;
  unsigned depth = 32;
  double seconds = 3.0;
  unsigned rounds = 3;
  double warmup = 0.2;
  unsigned threads = 4;  // thread-pool back end workers (BlockConfig's default)
  std::string dir;       // empty: $TMPDIR, else /var/tmp
  bool blk = true, vsock = true;
  bool reads = true, writes = true;                // --mode
  bool host = true, io_uring = true, pool = true;  // --backend
  double vsock_seconds = 3.0;
  uint32_t vsock_chunk = 64 * 1024;
  uint32_t vsock_rx_buf = 4096;
  unsigned vsock_rx_bufs = 128;
  unsigned round_trips = 20000;
};

void usage(const char* argv0) {
  std::printf(
      "usage: %s [--size-mib N] [--queues N] [--depth N] [--seconds S] [--rounds N] [--warmup S] [--threads N] [--dir DIR]\n"
      "          [--only blk|vsock] [--mode read|write] [--backend host|io_uring|thread-pool]\n"
      "          [--vsock-seconds S] [--vsock-chunk BYTES] [--vsock-rx-buf BYTES] [--vsock-rx-bufs N] [--round-trips N]\n"
      "  --size-mib N        size of the page-cached file (default 256)\n"
      "  --queues N          virtio-blk queues (default 4)\n"
      "  --depth N           requests kept in flight per queue (default 32)\n"
      "  --seconds S         measured time per blk figure (default 3), split into --rounds\n"
      "  --rounds N          blk: host and Skiff take turns N times (default 3); medians are shown\n"
      "  --warmup S          run before each measurement, not counted (default 0.2)\n"
      "  --threads N         thread-pool back end workers (default 4)\n"
      "  --dir DIR           where the file is made (default $TMPDIR, else /var/tmp); it is unlinked at once\n"
      "  --only blk|vsock    run one part\n"
      "  --mode read|write   blk: only random reads or only random writes\n"
      "  --backend B         blk: only the host's io_uring (host) or one of Skiff's back ends\n"
      "  --vsock-seconds S   measured time of the throughput figure (default 3)\n"
      "  --vsock-chunk BYTES host write size (default 65536)\n"
      "  --vsock-rx-buf BYTES payload room of each guest rx buffer, after the 44-byte header (default 4096, as Linux)\n"
      "  --vsock-rx-bufs N   rx buffers the guest keeps posted (default 128)\n"
      "  --round-trips N     64-byte round trips (default 20000)\n",
      argv0);
}

bool parse_options(int argc, char** argv, Options& o) {
  Args args(argc, argv);
  while (args.next()) {
    const std::string& a = args.flag();
    if (a == "--size-mib") o.size_mib = static_cast<uint64_t>(args.number(1, 1 << 20));
    else if (a == "--queues") o.queues = static_cast<unsigned>(args.number(1, 64));
    // Three descriptors a request in a 256-entry ring.
    else if (a == "--depth") o.depth = static_cast<unsigned>(args.number(1, 85));
    else if (a == "--seconds") o.seconds = args.real(0.01);
    else if (a == "--rounds") o.rounds = static_cast<unsigned>(args.number(1, 1000));
    else if (a == "--warmup") o.warmup = args.real(0);
    else if (a == "--threads") o.threads = static_cast<unsigned>(args.number(1, 256));
    else if (a == "--dir") o.dir = args.value();
    else if (a == "--only") {
      const std::string v = args.value();
      if (v != "blk" && v != "vsock") {
        std::fprintf(stderr, "--only: blk or vsock\n");
        return false;
      }
      o.blk = v == "blk";
      o.vsock = v == "vsock";
    } else if (a == "--mode") {
      const std::string v = args.value();
      if (v != "read" && v != "write") {
        std::fprintf(stderr, "--mode: read or write\n");
        return false;
      }
      o.reads = v == "read";
      o.writes = v == "write";
    } else if (a == "--backend") {
      const std::string v = args.value();
      if (v != "host" && v != "io_uring" && v != "thread-pool") {
        std::fprintf(stderr, "--backend: host, io_uring or thread-pool\n");
        return false;
      }
      o.host = v == "host";
      o.io_uring = v == "io_uring";
      o.pool = v == "thread-pool";
    } else if (a == "--vsock-seconds") o.vsock_seconds = args.real(0.01);
    else if (a == "--vsock-chunk") o.vsock_chunk = static_cast<uint32_t>(args.number(1, 16 * kMiB));
    else if (a == "--vsock-rx-buf")
      o.vsock_rx_buf = static_cast<uint32_t>(args.number(1, kVsockMaxPayload));
    else if (a == "--vsock-rx-bufs") o.vsock_rx_bufs = static_cast<unsigned>(args.number(1, 256));
    else if (a == "--round-trips") o.round_trips = static_cast<unsigned>(args.number(1, 10000000));
    else return args.help_or_unknown(usage);
  }
  return true;
}

// ---------------------------------------------------------------------------
// Driver-side helpers shared by both devices

// One queue of `size` <= 256 entries at `base`: descriptor table, avail ring
// and used ring 4 KiB apart, EVENT_IDX negotiated (as a Linux guest does).
QueueConfig ring_at(uint64_t base, uint16_t size) {
  return QueueConfig{size, GuestAddress(base), GuestAddress(base + 0x1000), GuestAddress(base + 0x2000), true};
}

// ---------------------------------------------------------------------------
// 1. virtio-blk

// The data file: filled, synced (no writeback under the measurement of
// reads) and read back so every page is cached. It is unlinked as soon as it
// exists and the device opens it through /proc/self/fd, so a killed bench
// leaves no file behind.
class BenchFile {
 public:
  BenchFile(const std::string& dir, uint64_t bytes) : bytes_(bytes) {
    std::string tmpl = dir + "/skiff-bench-virtio-XXXXXX";
    fd_.reset(::mkstemp(tmpl.data()));
    if (!fd_) die_errno("mkstemp in " + dir);
    ::unlink(tmpl.c_str());
    made_in_ = tmpl;
    path_ = "/proc/self/fd/" + std::to_string(fd_.get());
    std::vector<uint8_t> chunk(kMiB);
    Rng rng(42);
    for (uint64_t off = 0; off < bytes; off += chunk.size()) {
      for (size_t i = 0; i < chunk.size(); i += 8) {
        const uint64_t v = rng.next();
        std::memcpy(chunk.data() + i, &v, 8);
      }
      const size_t n = static_cast<size_t>(std::min<uint64_t>(chunk.size(), bytes - off));
      if (::pwrite(fd_.get(), chunk.data(), n, static_cast<off_t>(off)) != static_cast<ssize_t>(n))
        die_errno("fill " + made_in_);
    }
    if (::fsync(fd_.get()) != 0) die_errno("fsync " + made_in_);
    warm();
  }

  // The share of the file resident in the page cache after reading it all.
  double warm() const { return warm_page_cache(fd_.get(), bytes_); }

  int fd() const { return fd_.get(); }
  const std::string& path() const { return path_; }
  const std::string& made_in() const { return made_in_; }
  uint64_t blocks() const { return bytes_ / kBlock; }

 private:
  UniqueFd fd_;
  uint64_t bytes_;
  std::string path_, made_in_;
};

struct IoResult {
  uint64_t ios = 0;       // completed inside the measured window
  double seconds = 0;     // the measured window
  uint64_t errors = 0;    // completions that were not a full 4 KiB success
  uint64_t interrupts = 0, kicks = 0;  // Skiff only: per measured window
  double cpu_seconds = 0;              // the whole process's CPU time in the window, all threads
  std::string error;      // could not run at all
  double iops() const { return seconds > 0 ? static_cast<double>(ios) / seconds : 0; }
  double cpu_us_per_io() const { return ios ? cpu_seconds * 1e6 / static_cast<double>(ios) : 0; }
};

// The host's own io_uring: one ring at the same total depth, every free slot
// refilled and submitted with the wait for the next completion in one
// io_uring_enter, completions reaped in batches: what an application using
// liburing well does (fio's io_uring engine works the same way).
IoResult host_io_uring(const BenchFile& file, bool write, unsigned depth, double warmup, double seconds) {
  IoResult r;
  io_uring ring{};
  if (int rc = io_uring_queue_init(depth, &ring, 0); rc < 0) {
    r.error = std::string("io_uring_queue_init: ") + std::strerror(-rc);
    return r;
  }
  void* raw = nullptr;
  if (::posix_memalign(&raw, 4096, size_t{depth} * kBlock) != 0) die("posix_memalign");
  std::unique_ptr<uint8_t, decltype(&std::free)> bufs(static_cast<uint8_t*>(raw), &std::free);
  std::memset(bufs.get(), 0x5a, size_t{depth} * kBlock);
  Rng rng(7);
  auto prep = [&](unsigned slot) {
    io_uring_sqe* sqe = io_uring_get_sqe(&ring);
    const uint64_t off = rng.below(file.blocks()) * kBlock;
    uint8_t* buf = bufs.get() + size_t{slot} * kBlock;
    if (write) io_uring_prep_write(sqe, file.fd(), buf, kBlock, off);
    else io_uring_prep_read(sqe, file.fd(), buf, kBlock, off);
    io_uring_sqe_set_data64(sqe, slot);
  };
  for (unsigned s = 0; s < depth; ++s) prep(s);

  const auto start = Clock::now();
  const auto t0 = start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(warmup));
  const auto t1 = t0 + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
  unsigned inflight = depth;
  bool stopping = false, counting = false;
  Clock::time_point from{};
  double cpu0 = 0;
  while (inflight > 0) {
    const int rc = io_uring_submit_and_wait(&ring, 1);
    if (rc < 0 && rc != -EINTR && rc != -EAGAIN && rc != -EBUSY) {
      r.error = std::string("io_uring_submit_and_wait: ") + std::strerror(-rc);
      break;
    }
    const auto now = Clock::now();
    if (!counting && !stopping && now >= t0) {
      counting = true;
      from = now;
      cpu0 = process_cpu_seconds();
    }
    if (!stopping && now >= t1) {
      stopping = true;
      counting = false;
      r.seconds = seconds_between(from, now);
      r.cpu_seconds = process_cpu_seconds() - cpu0;
    }
    unsigned head, seen = 0;
    io_uring_cqe* cqe;
    io_uring_for_each_cqe(&ring, head, cqe) {
      ++seen;
      --inflight;
      if (cqe->res != static_cast<int>(kBlock)) ++r.errors;
      if (counting) ++r.ios;
      if (!stopping) {
        prep(static_cast<unsigned>(io_uring_cqe_get_data64(cqe)));
        ++inflight;
      }
    }
    io_uring_cq_advance(&ring, seen);
  }
  io_uring_queue_exit(&ring);
  return r;
}

// Guest-physical layout of the blk run: rings at q * 64 KiB, then one 8 KiB
// slot per request: the 4 KiB data page, then the 16-byte header and the
// status byte (a guest's data pages are page-aligned, its headers are not).
constexpr uint64_t kBlkRingStride = 0x10000;
constexpr uint64_t kBlkSlotBase = 64 * kBlkRingStride;
constexpr uint64_t kBlkSlotSize = 8192;
constexpr uint16_t kBlkQueueSize = 256;

const char* backend_label(BlockBackendKind k) {
  switch (k) {
    case BlockBackendKind::kIoUring: return "io_uring";
    case BlockBackendKind::kThreadPool: return "thread-pool";
    case BlockBackendKind::kInline: return "inline";
    case BlockBackendKind::kAuto: return "auto";
  }
  return "?";
}

// N queues, each kept at `depth` requests: the driver blocks on the
// interrupt, reaps every queue, refills each freed slot with a new random
// offset and kicks each queue it refilled (when EVENT_IDX says the device
// wants a kick), as a guest's virtio-blk driver does under fio.
IoResult skiff_blk(const BenchFile& file, BlockBackendKind backend, bool write, const Options& o, double seconds) {
  IoResult r;
  const unsigned queues = o.queues, depth = o.depth;
  const uint64_t ram = kBlkSlotBase + uint64_t{queues} * depth * kBlkSlotSize;
  GuestMemory mem = GuestMemory::create({{GuestAddress(0), (ram + 0x1fffff) & ~uint64_t{0x1fffff}}});

  BlockConfig cfg;
  cfg.path = file.path();
  cfg.serial = "skiff-bench";
  cfg.queues = queues;
  cfg.queue_size = kBlkQueueSize;
  cfg.backend = backend;
  cfg.threads = o.threads;
  std::unique_ptr<BlockDevice> dev;
  try {
    dev = std::make_unique<BlockDevice>(mem, cfg);
  } catch (const std::exception& e) {
    r.error = e.what();
    return r;
  }
  auto irq = std::make_shared<EventInterrupt>();
  std::vector<std::unique_ptr<DriverRing>> rings;
  std::vector<std::unique_ptr<Virtqueue>> vqs;
  for (unsigned q = 0; q < queues; ++q) {
    const QueueConfig qc = ring_at(q * kBlkRingStride, kBlkQueueSize);
    rings.push_back(std::make_unique<DriverRing>(mem, qc));
    vqs.push_back(std::make_unique<Virtqueue>(mem, qc));
  }
  if (!dev->activate(dev->device_features(), std::move(vqs), irq)) {
    r.error = "activate refused";
    return r;
  }

  auto slot_addr = [&](unsigned q, unsigned s) { return kBlkSlotBase + (uint64_t{q} * depth + s) * kBlkSlotSize; };
  const uint32_t type = write ? kBlkTOut : kBlkTIn;
  for (unsigned q = 0; q < queues; ++q) {
    for (unsigned s = 0; s < depth; ++s) {
      const uint64_t data = slot_addr(q, s), hdr = data + kBlock, status = hdr + 16;
      const auto d = static_cast<uint16_t>(3 * s);
      rings[q]->desc(d, hdr, 16, kDescFNext, static_cast<uint16_t>(d + 1));
      rings[q]->desc(static_cast<uint16_t>(d + 1), data, kBlock,
                     static_cast<uint16_t>(kDescFNext | (write ? 0 : kDescFWrite)), static_cast<uint16_t>(d + 2));
      rings[q]->desc(static_cast<uint16_t>(d + 2), status, 1, kDescFWrite);
      mem.write_obj(GuestAddress(hdr), type);
      mem.write_obj(GuestAddress(hdr + 4), uint32_t{0});
      mem.fill(GuestAddress(data), kBlock, 0x5a);
    }
  }
  Rng rng(7);
  const uint64_t sectors_per_block = kBlock / kSectorSize;
  auto submit = [&](unsigned q, unsigned s) {
    const uint64_t hdr = slot_addr(q, s) + kBlock;
    mem.write_obj(GuestAddress(hdr + 8), rng.below(file.blocks()) * sectors_per_block);
    mem.write_obj(GuestAddress(hdr + 16), uint8_t{0xff});  // the device must overwrite it
    rings[q]->push(static_cast<uint16_t>(3 * s));
  };

  uint64_t kicks = 0;
  auto kick = [&](unsigned q) {
    if (rings[q]->kick_needed()) {
      dev->queue_notify(q);
      ++kicks;
    }
  };

  const auto start = Clock::now();
  const auto t0 = start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(o.warmup));
  const auto t1 = t0 + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
  for (unsigned q = 0; q < queues; ++q) {
    for (unsigned s = 0; s < depth; ++s) submit(q, s);
    rings[q]->enable_interrupt_and_check();
    kick(q);
  }
  uint64_t inflight = uint64_t{queues} * depth;
  bool stopping = false, counting = false;
  uint64_t irq0 = 0, kicks0 = 0;
  Clock::time_point from{};
  double cpu0 = 0;
  while (inflight > 0) {
    irq->wait();
    const auto now = Clock::now();
    if (!counting && !stopping && now >= t0) {
      counting = true;
      from = now;
      cpu0 = process_cpu_seconds();
      irq0 = irq->count();
      kicks0 = kicks;
    }
    if (now >= t1 && !stopping) {
      stopping = true;
      counting = false;
      r.seconds = seconds_between(from, now);
      r.cpu_seconds = process_cpu_seconds() - cpu0;
      r.interrupts = irq->count() - irq0;
      r.kicks = kicks - kicks0;
    }
    for (unsigned q = 0; q < queues; ++q) {
      DriverRing& ring = *rings[q];
      do {
        while (auto u = ring.next_used()) {
          --inflight;
          const unsigned s = u->id / 3;
          const uint64_t status = slot_addr(q, s) + kBlock + 16;
          if (u->id % 3 != 0 || s >= depth || mem.read_obj<uint8_t>(GuestAddress(status)) != kBlkSOk ||
              u->len != (write ? 1u : kBlock + 1))
            ++r.errors;
          if (counting) ++r.ios;
          if (!stopping) {
            submit(q, s);
            ++inflight;
          }
        }
      } while (ring.enable_interrupt_and_check());
      kick(q);
    }
  }
  dev->reset();
  return r;
}

void bench_blk(const Options& o) {
  const char* tmpdir = std::getenv("TMPDIR");
  const std::string dir = !o.dir.empty() ? o.dir : (tmpdir && *tmpdir ? tmpdir : "/var/tmp");
  const double round_s = o.seconds / o.rounds;
  std::printf("\n1. virtio-blk: 4 KiB random I/O on a page-cached file, %u queues x depth %u (%u in flight),\n"
              "   %.1f s per figure: %u rounds of %.2f s (each after %.1f s unmeasured) in which host and Skiff take turns\n",
              o.queues, o.depth, o.queues * o.depth, o.seconds, o.rounds, round_s, o.warmup);
  BenchFile file(dir, o.size_mib * kMiB);
  std::printf("   file: %llu MiB in %s (%s), unlinked; %.0f %% resident in the page cache after the pre-read\n",
              static_cast<unsigned long long>(o.size_mib), dir.c_str(), fs_type(dir).c_str(), 100 * file.warm());
  std::printf("   Skiff: BlockDevice, queue size %u, EVENT_IDX; the driver kicks with queue_notify() and blocks on\n"
              "   the interrupt (an eventfd). Host: liburing, one ring of depth %u, batched submit and reap.\n"
              "   IOPS are medians of the rounds; the ratio is the median of each round's Skiff / host [min-max];\n"
              "   CPU us/IO is this process's CPU time (all threads) over the I/Os, the cost whatever the load.\n",
              kBlkQueueSize, o.queues * o.depth);
  std::printf("\n   | mode      | backend     | Skiff IOPS | host io_uring IOPS | ratio [min-max]  | target >= %.2f "
              "| CPU us/IO Skiff | host | irq/IO | kick/IO |\n",
              kBlkTargetRatio);
  std::printf("   |-----------|-------------|-----------:|-------------------:|------------------|----------------"
              "|----------------:|-----:|-------:|--------:|\n");
  const BlockBackendKind kinds[] = {BlockBackendKind::kIoUring, BlockBackendKind::kThreadPool};
  for (bool write : {false, true}) {
    if (write ? !o.writes : !o.reads) continue;
    const char* mode = write ? "randwrite" : "randread";
    file.warm();
    std::vector<double> host_iops;
    double host_cpu = 0;
    uint64_t host_ios = 0;
    struct PerBackend {
      std::vector<double> iops, ratio;
      uint64_t ios = 0, interrupts = 0, kicks = 0, errors = 0;
      double cpu = 0;
      std::string error;
    } per[2];
    uint64_t host_errors = 0;
    std::string host_error;
    for (unsigned round = 0; round < o.rounds; ++round) {
      double h = 0;
      if (o.host) {
        const IoResult r = host_io_uring(file, write, o.queues * o.depth, o.warmup, round_s);
        if (!r.error.empty()) host_error = r.error;
        host_errors += r.errors;
        h = r.iops();
        if (r.error.empty()) host_iops.push_back(h);
        host_cpu += r.cpu_seconds;
        host_ios += r.ios;
      }
      for (size_t i = 0; i < 2; ++i) {
        if (kinds[i] == BlockBackendKind::kIoUring ? !o.io_uring : !o.pool) continue;
        PerBackend& p = per[i];
        if (!p.error.empty()) continue;
        const IoResult r = skiff_blk(file, kinds[i], write, o, round_s);
        if (!r.error.empty()) {
          p.error = r.error;
          continue;
        }
        p.iops.push_back(r.iops());
        if (h > 0) p.ratio.push_back(r.iops() / h);
        p.ios += r.ios;
        p.interrupts += r.interrupts;
        p.kicks += r.kicks;
        p.errors += r.errors;
        p.cpu += r.cpu_seconds;
      }
    }
    if (!host_error.empty()) std::printf("   host io_uring (%s): %s\n", mode, host_error.c_str());
    char host_s[32] = "-", host_cpu_s[32] = "-";
    if (!host_iops.empty()) std::snprintf(host_s, sizeof host_s, "%.0f", median(host_iops));
    if (host_ios) std::snprintf(host_cpu_s, sizeof host_cpu_s, "%.2f", host_cpu * 1e6 / static_cast<double>(host_ios));
    if (!o.io_uring && !o.pool)
      std::printf("   | %-9s | %-11s | %10s | %18s | %-16s | %-14s | %15s | %4s | %6s | %7s |\n", mode, "-", "-", host_s,
                  "-", "-", "-", host_cpu_s, "-", "-");
    for (size_t i = 0; i < 2; ++i) {
      if (kinds[i] == BlockBackendKind::kIoUring ? !o.io_uring : !o.pool) continue;
      const PerBackend& p = per[i];
      if (!p.error.empty()) {
        std::printf("   | %-9s | %-11s | %s |\n", mode, backend_label(kinds[i]), p.error.c_str());
        continue;
      }
      char ratio_s[48] = "-", verdict[32] = "-";
      if (!p.ratio.empty()) {
        const double r = median(p.ratio);
        std::snprintf(ratio_s, sizeof ratio_s, "%.2f [%.2f-%.2f]", r, *std::min_element(p.ratio.begin(), p.ratio.end()),
                      *std::max_element(p.ratio.begin(), p.ratio.end()));
        std::snprintf(verdict, sizeof verdict, "%s", r >= kBlkTargetRatio ? "met" : "missed");
      }
      const double ios = static_cast<double>(std::max<uint64_t>(p.ios, 1));
      std::printf("   | %-9s | %-11s | %10.0f | %18s | %-16s | %-14s | %15.2f | %4s | %6.3f | %7.3f |\n", mode,
                  backend_label(kinds[i]), median(p.iops), host_s, ratio_s, verdict, p.cpu * 1e6 / ios, host_cpu_s,
                  static_cast<double>(p.interrupts) / ios, static_cast<double>(p.kicks) / ios);
      if (p.errors)
        std::printf("   (%s %s: %llu failed requests)\n", mode, backend_label(kinds[i]),
                    static_cast<unsigned long long>(p.errors));
    }
    if (host_errors)
      std::printf("   (%s host: %llu failed requests)\n", mode, static_cast<unsigned long long>(host_errors));
  }
  std::printf("   The budget (docs/DESIGN.md 7) is for reads; writes are shown against the same target for information.\n");
}

// ---------------------------------------------------------------------------
// 2. virtio-vsock

// Guest-physical layout of the vsock run: the three rings 64 KiB apart, then
// the rx buffers, then the tx slots.
constexpr uint64_t kVsockRxRing = 0x0, kVsockTxRing = 0x10000, kVsockEvRing = 0x20000;
constexpr uint64_t kVsockRxBase = 0x100000;
constexpr uint16_t kVsockQueueSize = 256;
constexpr unsigned kVsockTxSlots = 64;
constexpr uint64_t kVsockTxSlotSize = 4096;
constexpr uint32_t kVsockTxMaxPayload = kVsockTxSlotSize - kVsockHeaderSize;
constexpr uint64_t kGuestCid = 3;
constexpr uint32_t kGuestPort = 5000;
// As a Linux guest (net/vmw_vsock/virtio_transport_common.c): a 256 KiB
// receive buffer, and a credit update once less than one maximal packet
// (64 KiB) of the credit it last announced is left.
constexpr uint32_t kGuestBufAlloc = 256 * 1024;
constexpr uint32_t kGuestCreditSlack = 64 * 1024;
constexpr size_t kRoundTripBytes = 64;
// The host writes byte (k % 251) at stream offset k: a lost, repeated or
// reordered packet shows in its first byte (251 divides no buffer size).
constexpr uint64_t kPatternPeriod = 251;

uint64_t round_up(uint64_t v, uint64_t to) { return (v + to - 1) / to * to; }

// A guest's virtio-vsock driver with one stream socket, on the calling
// thread; the device runs its host side on `io`. Tx interrupts are
// suppressed: the device consumes tx packets inside queue_notify(), so the
// driver takes its tx slots back right after each kick.
class VsockGuest {
 public:
  VsockGuest(const Options& o, skiff::IoThread& io)
      : rx_buf_(kVsockHeaderSize + o.vsock_rx_buf),
        rx_bufs_(o.vsock_rx_bufs),
        tx_base_(kVsockRxBase + round_up(uint64_t{rx_buf_} * rx_bufs_, 4096)),
        mem_(GuestMemory::create(
            {{GuestAddress(0), round_up(tx_base_ + uint64_t{kVsockTxSlots} * kVsockTxSlotSize, 2 * kMiB)}})),
        rx_(mem_, ring_at(kVsockRxRing, kVsockQueueSize)),
        tx_(mem_, ring_at(kVsockTxRing, kVsockQueueSize)),
        irq_(std::make_shared<EventInterrupt>()) {
    VsockOptions vo;
    vo.io = &io;
    dev_ = std::make_unique<VsockDevice>(kGuestCid, vo);
    std::vector<std::unique_ptr<Virtqueue>> queues;
    for (uint64_t base : {kVsockRxRing, kVsockTxRing, kVsockEvRing})
      queues.push_back(std::make_unique<Virtqueue>(mem_, ring_at(base, kVsockQueueSize)));
    if (!dev_->activate(dev_->device_features(), std::move(queues), irq_)) die("vsock: activate refused");
    for (unsigned i = 0; i < rx_bufs_; ++i) {
      rx_.desc(static_cast<uint16_t>(i), rx_addr(i), rx_buf_, kDescFWrite);
      rx_.push(static_cast<uint16_t>(i));
    }
    rx_.enable_interrupt_and_check();
    tx_.suppress_interrupt();
    kick_rx();
  }
  ~VsockGuest() { dev_->reset(); }
  // Drops every connection: host ends see EOF/EPIPE, so a host thread
  // blocked on its socket returns.
  void reset_device() { dev_->reset(); }
  VsockGuest(const VsockGuest&) = delete;
  VsockGuest& operator=(const VsockGuest&) = delete;

  EventInterrupt& irq() { return *irq_; }
  const GuestMemory& mem() const { return mem_; }
  uint64_t kicks() const { return kicks_; }

  // The host connects to `port` and the guest accepts.
  std::shared_ptr<VsockConnection> accept(uint32_t port) {
    auto conn = dev_->connect(port);
    if (!conn) die("vsock: connect refused");
    bool requested = false;
    while (!requested) {
      if (!irq_->wait_for(2000)) die("vsock: no REQUEST reached the guest within 2 s");
      poll_rx([&](const VsockHeader& h, GuestAddress) {
        if (h.op != kVsockOpRequest || h.dst_port != port) return;
        guest_port_ = h.dst_port;
        host_port_ = h.src_port;
        peer_buf_alloc_ = h.buf_alloc;
        peer_fwd_cnt_ = h.fwd_cnt;
        requested = true;
      });
    }
    send(kVsockOpResponse, {});
    kick_tx();
    return conn;
  }

  // Hands every rx packet the device has used to `fn(header, payload)`, in
  // order, and gives the buffers back to the device.
  template <typename F>
  void poll_rx(F&& fn) {
    do {
      while (auto u = rx_.next_used()) {
        const auto slot = static_cast<uint16_t>(u->id);
        const GuestAddress a(rx_addr(slot));
        const auto h = mem_.read_obj<VsockHeader>(a);
        if (h.src_port == host_port_ && h.dst_port == guest_port_) {
          peer_buf_alloc_ = h.buf_alloc;
          peer_fwd_cnt_ = h.fwd_cnt;
        }
        fn(h, a.unchecked_add(kVsockHeaderSize));
        rx_.push(slot);
      }
    } while (rx_.enable_interrupt_and_check());
    kick_rx();
  }

  // Queues one packet on the tx ring (kick_tx() sends it).
  void send(uint16_t op, std::span<const uint8_t> payload) {
    if (tx_free_ == 0) die("vsock: the guest ran out of tx slots");
    if (payload.size() > kVsockTxMaxPayload) die("vsock: tx payload too large");
    const unsigned slot = tx_next_++ % kVsockTxSlots;
    const uint64_t a = tx_base_ + uint64_t{slot} * kVsockTxSlotSize;
    VsockHeader h{};
    h.src_cid = kGuestCid;
    h.dst_cid = kVsockHostCid;
    h.src_port = guest_port_;
    h.dst_port = host_port_;
    h.len = static_cast<uint32_t>(payload.size());
    h.type = kVsockTypeStream;
    h.op = op;
    h.buf_alloc = kGuestBufAlloc;
    h.fwd_cnt = fwd_cnt_;
    mem_.write_obj(GuestAddress(a), h);
    if (!payload.empty()) mem_.write(GuestAddress(a + kVsockHeaderSize), payload);
    tx_.desc(static_cast<uint16_t>(slot), a, static_cast<uint32_t>(kVsockHeaderSize + payload.size()), 0);
    tx_.push(static_cast<uint16_t>(slot));
    --tx_free_;
    last_credit_sent_ = fwd_cnt_;
    tx_cnt_ += static_cast<uint32_t>(payload.size());
  }
  void kick_tx() {
    if (tx_.kick_needed()) {
      dev_->queue_notify(VsockDevice::kTxQueue);
      ++kicks_;
    }
    while (tx_.next_used()) ++tx_free_;
    tx_.suppress_interrupt();
  }

  // The guest application read `n` bytes: they count as forwarded, and a
  // credit update goes out when Linux would send one.
  void consumed(uint32_t n) {
    fwd_cnt_ += n;
    if (kGuestBufAlloc - (fwd_cnt_ - last_credit_sent_) < kGuestCreditSlack) {
      send(kVsockOpCreditUpdate, {});
      ++credit_updates_;
    }
  }
  uint64_t credit_updates() const { return credit_updates_; }
  // What the guest may still send to the host (the device's credit).
  uint32_t peer_credit() const {
    const uint32_t in_flight = tx_cnt_ - peer_fwd_cnt_;
    return in_flight >= peer_buf_alloc_ ? 0 : peer_buf_alloc_ - in_flight;
  }

 private:
  uint64_t rx_addr(unsigned slot) const { return kVsockRxBase + uint64_t{slot} * rx_buf_; }
  void kick_rx() {
    if (rx_.kick_needed()) {
      dev_->queue_notify(VsockDevice::kRxQueue);
      ++kicks_;
    }
  }

  const uint32_t rx_buf_;
  const unsigned rx_bufs_;
  const uint64_t tx_base_;
  GuestMemory mem_;
  DriverRing rx_, tx_;
  std::shared_ptr<EventInterrupt> irq_;
  std::unique_ptr<VsockDevice> dev_;
  uint32_t guest_port_ = 0, host_port_ = 0;
  uint32_t fwd_cnt_ = 0, last_credit_sent_ = 0, tx_cnt_ = 0;
  uint32_t peer_buf_alloc_ = 0, peer_fwd_cnt_ = 0;
  unsigned tx_next_ = 0, tx_free_ = kVsockTxSlots;
  uint64_t kicks_ = 0, credit_updates_ = 0;
};

struct Throughput {
  uint64_t bytes = 0;
  double seconds = 0;
  uint64_t interrupts = 0, kicks = 0, packets = 0, credit_updates = 0, bad = 0;
  std::string error;
  double mib_s() const { return seconds > 0 ? static_cast<double>(bytes) / seconds / kMiB : 0; }
};

// Writes `chunk`-byte pieces of the pattern into `fd` until `stop`, then
// shuts down its sending side.
void pattern_writer(int fd, uint32_t chunk, const std::atomic<bool>& stop, std::atomic<bool>& done) {
  std::vector<uint8_t> buf(chunk + kPatternPeriod);
  for (size_t i = 0; i < buf.size(); ++i) buf[i] = static_cast<uint8_t>(i % kPatternPeriod);
  uint64_t off = 0;
  while (!stop.load(std::memory_order_relaxed)) {
    const ssize_t n = ::send(fd, buf.data() + off % kPatternPeriod, chunk, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    off += static_cast<uint64_t>(n);
  }
  // EOF tells a reader blocked in recv() that nothing more comes.
  ::shutdown(fd, SHUT_WR);
  done.store(true);
}

Throughput vsock_throughput(const Options& o) {
  Throughput r;
  skiff::IoThread io;
  VsockGuest g(o, io);
  auto conn = g.accept(kGuestPort);
  std::atomic<bool> stop{false}, writer_done{false};
  std::thread writer(pattern_writer, conn->fd(), o.vsock_chunk, std::cref(stop), std::ref(writer_done));

  std::vector<uint8_t> app(kVsockMaxPayload);  // the guest application's recv buffer
  uint64_t received = 0;
  bool counting = false;
  uint64_t irq0 = 0, kicks0 = 0, credit0 = 0;
  const auto start = Clock::now();
  const auto t0 = start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(o.warmup));
  const auto t1 = t0 + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(o.vsock_seconds));
  Clock::time_point counted_from{};
  while (!(stop.load() && writer_done.load())) {
    if (!g.irq().wait_for(1000) && !writer_done.load()) {
      r.error = "no rx packet for 1 s";
      stop.store(true);
      g.reset_device();
      break;
    }
    const auto now = Clock::now();
    if (!counting && !stop.load() && now >= t0) {
      counting = true;
      counted_from = now;
      irq0 = g.irq().count();
      kicks0 = g.kicks();
      credit0 = g.credit_updates();
    }
    if (!stop.load() && now >= t1) {
      stop.store(true);
      counting = false;
      r.seconds = seconds_between(counted_from, now);
      r.interrupts = g.irq().count() - irq0;
      r.kicks = g.kicks() - kicks0;
      r.credit_updates = g.credit_updates() - credit0;
    }
    g.poll_rx([&](const VsockHeader& h, GuestAddress payload) {
      if (h.op != kVsockOpRw) return;
      g.mem().read(payload, std::span(app.data(), h.len));
      if (h.len && app[0] != received % kPatternPeriod) ++r.bad;
      received += h.len;
      if (counting) {
        r.bytes += h.len;
        ++r.packets;
      }
      g.consumed(h.len);
    });
    g.kick_tx();
  }
  writer.join();
  return r;
}

// The same stream between two threads over a socketpair: the host's own
// floor for moving bytes between two threads of one process.
Throughput socketpair_throughput(const Options& o) {
  Throughput r;
  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) die_errno("socketpair");
  UniqueFd a(sv[0]), b(sv[1]);
  std::atomic<bool> stop{false}, writer_done{false};
  std::thread writer(pattern_writer, a.get(), o.vsock_chunk, std::cref(stop), std::ref(writer_done));
  std::vector<uint8_t> buf(kVsockMaxPayload);
  const auto start = Clock::now();
  const auto t0 = start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(o.warmup));
  const auto t1 = t0 + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(o.vsock_seconds));
  Clock::time_point counted_from{};
  bool counting = false;
  for (;;) {
    const ssize_t n = ::recv(b.get(), buf.data(), buf.size(), 0);
    if (n <= 0) break;
    const auto now = Clock::now();
    if (!counting && !stop.load() && now >= t0) {
      counting = true;
      counted_from = now;
    }
    if (counting) r.bytes += static_cast<uint64_t>(n);
    if (!stop.load() && now >= t1) {
      stop.store(true);
      counting = false;
      r.seconds = seconds_between(counted_from, now);
    }
    if (stop.load() && writer_done.load()) break;
  }
  writer.join();
  return r;
}

struct Latency {
  std::vector<double> us;  // one per measured round trip
  uint64_t trips = 0;      // measured or not, for the per-trip counts
  uint64_t interrupts = 0, kicks = 0;
  std::string error;
  double pct(double p) const {
    if (us.empty()) return 0;
    std::vector<double> v = us;
    const size_t i = std::min(v.size() - 1, static_cast<size_t>(p / 100 * static_cast<double>(v.size())));
    std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(i), v.end());
    return v[i];
  }
};

// The host side of a round trip: write 64 bytes, read 64 bytes back, `n`
// times after `warm` unmeasured ones.
void ping(int fd, unsigned warm, unsigned n, Latency& out, std::atomic<bool>& done) {
  uint8_t msg[kRoundTripBytes], back[kRoundTripBytes];
  for (size_t i = 0; i < sizeof msg; ++i) msg[i] = static_cast<uint8_t>(i);
  out.us.reserve(n);
  for (unsigned i = 0; i < warm + n; ++i) {
    const auto t = Clock::now();
    if (::send(fd, msg, sizeof msg, MSG_NOSIGNAL) != static_cast<ssize_t>(sizeof msg)) {
      out.error = std::string("send: ") + std::strerror(errno);
      break;
    }
    size_t got = 0;
    while (got < sizeof back) {
      const ssize_t r = ::recv(fd, back + got, sizeof back - got, 0);
      if (r <= 0) break;
      got += static_cast<size_t>(r);
    }
    if (got != sizeof back) {
      out.error = "the echo stopped";
      break;
    }
    if (i >= warm) out.us.push_back(std::chrono::duration<double, std::micro>(Clock::now() - t).count());
    ++out.trips;
  }
  done.store(true);
}

Latency vsock_round_trips(const Options& o) {
  Latency r;
  skiff::IoThread io;
  VsockGuest g(o, io);
  auto conn = g.accept(kGuestPort);
  const unsigned warm = std::max(100u, o.round_trips / 20);
  std::atomic<bool> done{false};
  std::thread host(ping, conn->fd(), warm, o.round_trips, std::ref(r), std::ref(done));
  // The guest echoes what it receives, within the device's credit.
  std::vector<uint8_t> pending;
  std::vector<uint8_t> app(kVsockMaxPayload);
  const uint64_t irq0 = g.irq().count(), kicks0 = g.kicks();
  auto last = Clock::now();
  while (!done.load()) {
    if (!g.irq().wait_for(200)) {
      if (Clock::now() - last > std::chrono::seconds(5)) {
        g.reset_device();  // the host thread sees EOF and reports the stall
        break;
      }
      continue;
    }
    last = Clock::now();
    g.poll_rx([&](const VsockHeader& h, GuestAddress payload) {
      if (h.op != kVsockOpRw) return;
      g.mem().read(payload, std::span(app.data(), h.len));
      pending.insert(pending.end(), app.begin(), app.begin() + h.len);
      g.consumed(h.len);
    });
    size_t off = 0;
    while (off < pending.size() && g.peer_credit() > 0) {
      const size_t n = std::min<size_t>({pending.size() - off, g.peer_credit(), kVsockTxMaxPayload});
      g.send(kVsockOpRw, std::span(pending.data() + off, n));
      off += n;
    }
    pending.erase(pending.begin(), pending.begin() + static_cast<std::ptrdiff_t>(off));
    g.kick_tx();
  }
  host.join();
  r.interrupts = g.irq().count() - irq0;
  r.kicks = g.kicks() - kicks0;
  return r;
}

// The same round trip between two threads over a socketpair.
Latency socketpair_round_trips(const Options& o) {
  Latency r;
  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) die_errno("socketpair");
  UniqueFd a(sv[0]), b(sv[1]);
  std::thread echo([fd = b.get()] {
    uint8_t buf[4096];
    for (;;) {
      const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
      if (n <= 0) return;
      if (::send(fd, buf, static_cast<size_t>(n), MSG_NOSIGNAL) != n) return;
    }
  });
  std::atomic<bool> done{false};
  ping(a.get(), std::max(100u, o.round_trips / 20), o.round_trips, r, done);
  ::shutdown(a.get(), SHUT_RDWR);
  echo.join();
  return r;
}

void bench_vsock(const Options& o) {
  std::printf("\n2. virtio-vsock: a host-initiated stream, the device's host side on an skiff::IoThread (Boost.Asio)\n"
              "   guest: %u rx buffers of 44 + %u bytes, buf_alloc %u KiB, credit update as Linux; queue size %u, "
              "EVENT_IDX\n",
              o.vsock_rx_bufs, o.vsock_rx_buf, kGuestBufAlloc / 1024, kVsockQueueSize);

  const Throughput v = vsock_throughput(o);
  const Throughput sp = socketpair_throughput(o);
  std::printf("\n   (a) host -> guest, %u-byte writes into VsockConnection::fd(), %.1f s after %.1f s warm-up\n",
              o.vsock_chunk, o.vsock_seconds, o.warmup);
  std::printf("   | path                                  |    MiB/s | packets/s | irq/packet | kick/packet | credit updates/s |\n");
  std::printf("   |---------------------------------------|---------:|----------:|-----------:|------------:|-----------------:|\n");
  if (!v.error.empty()) {
    std::printf("   | virtio-vsock host -> guest            | failed: %s |\n", v.error.c_str());
  } else {
    const double pk = static_cast<double>(std::max<uint64_t>(v.packets, 1));
    std::printf("   | virtio-vsock host -> guest            | %8.0f | %9.0f | %10.3f | %11.3f | %16.0f |\n", v.mib_s(),
                static_cast<double>(v.packets) / v.seconds, static_cast<double>(v.interrupts) / pk,
                static_cast<double>(v.kicks) / pk, static_cast<double>(v.credit_updates) / v.seconds);
  }
  std::printf("   | for scale: socketpair, thread->thread | %8.0f |         - |          - |           - |                - |\n",
              sp.mib_s());
  if (v.bad) std::printf("   %llu packets out of sequence\n", static_cast<unsigned long long>(v.bad));

  const Latency vl = vsock_round_trips(o);
  const Latency sl = socketpair_round_trips(o);
  std::printf("\n   (b) round trip: the host writes %zu bytes, the guest echoes them in one RW packet, the host reads them;\n"
              "       %u round trips after %u unmeasured\n",
              kRoundTripBytes, o.round_trips, std::max(100u, o.round_trips / 20));
  std::printf("   | path                                  | median us |  p99 us |  max us |\n");
  std::printf("   |---------------------------------------|----------:|--------:|--------:|\n");
  auto row = [](const char* name, const Latency& l) {
    if (!l.error.empty() || l.us.empty()) {
      std::printf("   | %-37s | failed: %s |\n", name, l.error.empty() ? "no samples" : l.error.c_str());
      return;
    }
    std::printf("   | %-37s | %9.1f | %7.1f | %7.1f |\n", name, l.pct(50), l.pct(99), l.pct(100));
  };
  row("virtio-vsock host -> guest -> host", vl);
  row("for scale: socketpair, thread-thread", sl);
  if (vl.error.empty() && !vl.us.empty() && sl.error.empty() && !sl.us.empty())
    std::printf("   median ratio virtio-vsock / socketpair: %.1fx; interrupts per round trip %.2f, kicks %.2f\n",
                vl.pct(50) / sl.pct(50), static_cast<double>(vl.interrupts) / static_cast<double>(vl.trips),
                static_cast<double>(vl.kicks) / static_cast<double>(vl.trips));
}

// ---------------------------------------------------------------------------

void print_host() {
  std::printf("host: %s, this process may run on %d of them\n", host_summary().c_str(), usable_cpus());
  print_load_average("figures");
  if (pvm_host())
    std::printf("      kvm_pvm loaded: this host is itself a PVM guest; its system calls, context switches and\n"
                "      above all wake-ups of an idle CPU cost more than on bare metal, on both sides of each comparison\n");
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  if (!parse_options(argc, argv, o)) return 2;
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  std::printf("skiff_bench_virtio: virtio device models driven by a simulated guest driver, in process\n");
  print_host();
  if (o.blk) bench_blk(o);
  if (o.vsock) bench_vsock(o);
  std::printf("\nThe budget is from docs/DESIGN.md section 7; met/missed is information, not a test result.\n");
  return 0;
}
