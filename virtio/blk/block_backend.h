#pragma once
// Where a virtio-blk device's I/O goes: an abstract backend over one open
// image fd, and two implementations.
//
//  * ThreadPoolBackend: N worker threads doing preadv/pwritev/fdatasync/
//    fallocate. With 0 threads it runs every request inline in submit() and
//    calls the completion before returning (the synchronous mode the fuzzer
//    and some tests use).
//  * IoUringBackend (liburing): reads, writes and flushes are io_uring
//    readv/writev/fsync(DATASYNC) ops; one dedicated reaper thread blocks in
//    io_uring_wait_cqe and runs the completions. Discard/write-zeroes are
//    queued as NOPs and carried out synchronously on the reaper thread when
//    their NOP completes (rare ops; keeps the vCPU thread from blocking).
//    make_io_uring_backend throws std::system_error when io_uring cannot be
//    set up (old kernel, seccomp/EPERM in a sandbox); callers fall back.
//
// iovecs point into guest RAM (made with GuestMemory::slice by the device);
// the backend never computes a pointer of its own. Completions may run on any
// thread, including the submitting one (inline mode), so the caller must not
// hold locks in submit() that its completion takes.
#include <sys/uio.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <utility>
#include <vector>

namespace skiff::virtio {

struct BlockRequest {
  enum class Op { kRead, kWrite, kFlush, kDiscard, kWriteZeroes };
  Op op = Op::kRead;
  uint64_t offset = 0;                                  // bytes, read/write
  std::vector<iovec> iov;                               // read/write
  std::vector<std::pair<uint64_t, uint64_t>> ranges;    // discard/write-zeroes: {byte offset, byte length}
};

// Result: 0 on success, -errno on failure (a short transfer is -EIO).
using BlockCompletion = std::function<void(int result)>;

class BlockBackend {
 public:
  virtual ~BlockBackend() = default;
  // Never blocks for I/O, except that io_uring waits while its ring is full.
  virtual void submit(BlockRequest request, BlockCompletion done) = 0;
  virtual const char* name() const = 0;
};

// `fd` must outlive the backend.
std::unique_ptr<BlockBackend> make_thread_pool_backend(int fd, unsigned threads);
std::unique_ptr<BlockBackend> make_io_uring_backend(int fd, unsigned entries);

// Runs one request synchronously on `fd`; returns 0 or -errno. Shared by the
// backends (and the fallback for short io_uring transfers).
int run_block_request_sync(int fd, const BlockRequest& request);

}  // namespace skiff::virtio
