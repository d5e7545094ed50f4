#pragma once
// Where a virtio-blk device's I/O goes: an abstract backend over one open
// image fd, and two implementations.
//
//  * ThreadPoolBackend: N worker threads doing preadv/pwritev/fdatasync/
//    fallocate. With 0 threads it runs every request inline in submit() and
//    reports it before returning (the synchronous mode the fuzzer and some
//    tests use).
//  * IoUringBackend (liburing): reads, writes and flushes are io_uring
//    read(v)/write(v)/fsync(DATASYNC) ops on a registered file. submit()
//    hands a whole batch to the kernel in one io_uring_enter and then reaps
//    whatever has already completed on the calling thread (a page-cached
//    read is done inside that very call), so the common case costs no
//    thread hop at all. A reaper thread waits in the kernel only while
//    submitted ops are still out (io-wq writes, reads that miss the cache)
//    and otherwise sleeps on a condition variable, so completions taken
//    inline never wake it. Discard/write-zeroes and the rest of a short
//    transfer run on one helper thread: fallocate may take long and must
//    block neither the vCPU thread nor the reaper.
//    make_io_uring_backend throws std::system_error when io_uring cannot be
//    set up (old kernel, seccomp/EPERM in a sandbox); callers fall back.
//
// BlockBackendKind::kAuto picks io_uring, measured (skiff_bench_virtio, 4 KiB
// random I/O, 128 in flight, ext4 image; bench/README.md has the runs):
//  * reads that miss the page cache: io_uring matched the host's own
//    io_uring loop (0.97-1.00 of its IOPS) at 5.2 us of CPU per read; the
//    pool, four threads and so four reads in flight, 0.39-0.41 at 17-19 us;
//  * page-cached reads: io_uring costs 0.33-0.8x the pool's CPU per read
//    and does them all on the kicking thread; the pool spreads them over
//    its workers, so with a second CPU idle it gets more IOPS (0.92-1.01
//    of the host against 0.86-0.87), on a busy host fewer;
//  * random buffered writes: ext4 cannot do them without blocking, so
//    io_uring punts them to io-wq, which runs all writes to one regular
//    file on one worker (hashed by inode) and completes them through the
//    reaper, one thread hop more; the pool's four workers wrote 1.0-2.1x
//    as fast for 0.56-1.05x the CPU. Images on block devices are not
//    hashed that way.
// Reads are what a guest waits on, and a guest's own page cache means the
// reads that reach the VMM are mostly misses: io_uring.
//
// Requests are owned by the caller and referred to by the backend until
// their result is reported: no allocation per request on the io_uring path.
// iovecs point into guest RAM (made with GuestMemory::slice by the device);
// the backend never computes a pointer of its own.
#include <sys/uio.h>

#include <cstdint>
#include <memory>
#include <span>
#include <utility>
#include <vector>

namespace skiff::virtio {

struct BlockRequest {
  enum class Op { kRead, kWrite, kFlush, kDiscard, kWriteZeroes };
  Op op = Op::kRead;
  uint64_t offset = 0;                                // bytes, read/write
  std::vector<iovec> iov;                             // read/write
  std::vector<std::pair<uint64_t, uint64_t>> ranges;  // discard/write-zeroes: {byte offset, byte length}
  uint32_t tag = 0;                                   // the caller's; reported with the result
};

struct BlockResult {
  uint32_t tag;
  int result;  // 0 on success, -errno on failure (a short transfer is -EIO)
};

// Receives results. Called on any thread (a backend thread, or the caller's
// own inside submit()), on several at once; the caller must not hold locks
// in submit() that complete() takes. Once complete() is called for a
// request the backend no longer touches it.
class BlockCompletionSink {
 public:
  virtual void complete(std::span<const BlockResult> results) = 0;

 protected:
  ~BlockCompletionSink() = default;
};

class BlockBackend {
 public:
  virtual ~BlockBackend() = default;
  // Starts the requests, which must stay alive and unchanged until their
  // results are reported. Callers pass everything they have at once (one
  // guest kick's worth): io_uring gives a batch to the kernel in one
  // io_uring_enter. An io_uring backend's caller keeps at most
  // `max_inflight` requests outstanding. Never blocks for I/O, except that
  // the pool with 0 threads does the I/O right here.
  virtual void submit(std::span<BlockRequest* const> batch) = 0;
  virtual const char* name() const = 0;
};

// `fd` and `sink` must outlive the backend. Destroying a backend waits for
// the requests it still has.
std::unique_ptr<BlockBackend> make_thread_pool_backend(int fd, unsigned threads, BlockCompletionSink& sink);
std::unique_ptr<BlockBackend> make_io_uring_backend(int fd, unsigned max_inflight, BlockCompletionSink& sink);

}  // namespace skiff::virtio
