#include "virtio/blk/block_backend.h"

#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <system_error>
#include <thread>

namespace skiff::virtio {
namespace {

// Drops `done` bytes from the front of an iovec list.
void advance(std::vector<iovec>& iov, size_t done) {
  size_t i = 0;
  while (i < iov.size() && done >= iov[i].iov_len) done -= iov[i++].iov_len;
  iov.erase(iov.begin(), iov.begin() + static_cast<std::ptrdiff_t>(i));
  if (!iov.empty() && done) {
    iov[0].iov_base = static_cast<uint8_t*>(iov[0].iov_base) + done;  // host iovec, not a guest address
    iov[0].iov_len -= done;
  }
}

uint64_t iov_bytes(std::span<const iovec> iov) {
  uint64_t n = 0;
  for (const auto& v : iov) n += v.iov_len;
  return n;
}

// Reads or writes `iov` at `offset` from byte `done` on, retrying short
// transfers. The copy of the list is only made once a transfer comes up
// short (or exceeds IOV_MAX), which page-cached I/O almost never does.
int rw_full(int fd, bool write, std::span<const iovec> iov, uint64_t offset, uint64_t done) {
  if (done == 0 && iov.size() <= IOV_MAX) {
    ssize_t n;
    do {
      n = write ? ::pwritev(fd, iov.data(), static_cast<int>(iov.size()), static_cast<off_t>(offset))
                : ::preadv(fd, iov.data(), static_cast<int>(iov.size()), static_cast<off_t>(offset));
    } while (n < 0 && errno == EINTR);
    if (n < 0) return -errno;
    done = static_cast<uint64_t>(n);
    if (done == iov_bytes(iov)) return 0;
  }
  std::vector<iovec> rest(iov.begin(), iov.end());
  advance(rest, static_cast<size_t>(done));
  offset += done;
  // Zero-length entries would make a transfer of 0 bytes look like EOF.
  rest.erase(std::remove_if(rest.begin(), rest.end(), [](const iovec& v) { return v.iov_len == 0; }), rest.end());
  while (!rest.empty()) {
    const int cnt = static_cast<int>(std::min<size_t>(rest.size(), IOV_MAX));
    const ssize_t n = write ? ::pwritev(fd, rest.data(), cnt, static_cast<off_t>(offset))
                            : ::preadv(fd, rest.data(), cnt, static_cast<off_t>(offset));
    if (n < 0) {
      if (errno == EINTR) continue;
      return -errno;
    }
    if (n == 0) return -EIO;  // past the end of the file
    offset += static_cast<uint64_t>(n);
    advance(rest, static_cast<size_t>(n));
  }
  return 0;
}

int write_zeros(int fd, uint64_t offset, uint64_t len) {
  static const std::vector<uint8_t> zeros(64 * 1024, 0);
  while (len) {
    const size_t n = static_cast<size_t>(std::min<uint64_t>(len, zeros.size()));
    const ssize_t w = ::pwrite(fd, zeros.data(), n, static_cast<off_t>(offset));
    if (w < 0) {
      if (errno == EINTR) continue;
      return -errno;
    }
    if (w == 0) return -EIO;
    offset += static_cast<uint64_t>(w);
    len -= static_cast<uint64_t>(w);
  }
  return 0;
}

// fallocate(mode), or zeros written by hand where the file system or block
// device does not support it.
int zero_range(int fd, int mode, uint64_t offset, uint64_t len) {
  if (len == 0) return 0;
  if (::fallocate(fd, mode, static_cast<off_t>(offset), static_cast<off_t>(len)) == 0) return 0;
  if (errno == EOPNOTSUPP || errno == ENOSYS || errno == EINVAL || errno == ENODEV)
    return write_zeros(fd, offset, len);
  return -errno;
}

// The request from byte `done` of its transfer on (0 for other ops).
int run_rest(int fd, const BlockRequest& r, uint64_t done) {
  switch (r.op) {
    case BlockRequest::Op::kRead:
    case BlockRequest::Op::kWrite:
      return rw_full(fd, r.op == BlockRequest::Op::kWrite, r.iov, r.offset, done);
    case BlockRequest::Op::kFlush:
      if (::fdatasync(fd) == 0) return 0;
      if (errno == EINVAL && ::fsync(fd) == 0) return 0;
      return -errno;
    case BlockRequest::Op::kDiscard:
    case BlockRequest::Op::kWriteZeroes: {
      const int mode = r.op == BlockRequest::Op::kDiscard ? FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE
                                                          : FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE;
      for (const auto& [off, len] : r.ranges)
        if (int rc = zero_range(fd, mode, off, len); rc != 0) return rc;
      return 0;
    }
  }
  return -EINVAL;
}

// Threads running requests with blocking system calls; with 0 threads,
// run() does the work itself before returning.
class SyncPool {
 public:
  SyncPool(int fd, unsigned threads, BlockCompletionSink& sink) : fd_(fd), sink_(sink) {
    for (unsigned i = 0; i < threads; ++i) workers_.emplace_back([this] { work(); });
  }
  ~SyncPool() {
    {
      std::lock_guard lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    for (auto& t : workers_) t.join();  // workers finish the queue first
  }
  SyncPool(const SyncPool&) = delete;
  SyncPool& operator=(const SyncPool&) = delete;

  // Runs `request` from byte `done` of its transfer on and reports it.
  void run(const BlockRequest& request, uint64_t done = 0) {
    if (workers_.empty()) {
      report(request, run_rest(fd_, request, done));
      return;
    }
    {
      std::lock_guard lock(mu_);
      jobs_.push_back({&request, done});
    }
    cv_.notify_one();
  }
  void run(std::span<BlockRequest* const> batch) {
    if (workers_.empty()) {
      for (const BlockRequest* r : batch) report(*r, run_rest(fd_, *r, 0));
      return;
    }
    {
      std::lock_guard lock(mu_);
      for (const BlockRequest* r : batch) jobs_.push_back({r, 0});
    }
    for (size_t i = 0; i < std::min(batch.size(), workers_.size()); ++i) cv_.notify_one();
  }
  bool is_inline() const { return workers_.empty(); }

 private:
  struct Job {
    const BlockRequest* request;
    uint64_t done;
  };

  void report(const BlockRequest& request, int result) {
    const BlockResult r{request.tag, result};
    sink_.complete(std::span(&r, 1));
  }

  void work() {
    for (;;) {
      Job job;
      {
        std::unique_lock lock(mu_);
        cv_.wait(lock, [this] { return stop_ || !jobs_.empty(); });
        if (jobs_.empty()) return;
        job = jobs_.front();
        jobs_.pop_front();
      }
      report(*job.request, run_rest(fd_, *job.request, job.done));
    }
  }

  int fd_;
  BlockCompletionSink& sink_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Job> jobs_;
  bool stop_ = false;
  std::vector<std::thread> workers_;
};

class ThreadPoolBackend final : public BlockBackend {
 public:
  ThreadPoolBackend(int fd, unsigned threads, BlockCompletionSink& sink) : pool_(fd, threads, sink) {}
  void submit(std::span<BlockRequest* const> batch) override { pool_.run(batch); }
  const char* name() const override { return pool_.is_inline() ? "inline" : "thread-pool"; }

 private:
  SyncPool pool_;
};

class IoUringBackend final : public BlockBackend {
 public:
  IoUringBackend(int fd, unsigned max_inflight, BlockCompletionSink& sink) : file_(fd), sink_(sink), helper_(fd, 1, sink) {
    // The SQ holds every request the caller may have outstanding and the CQ
    // (twice the SQ) all their completions, so neither can overflow.
    if (int rc = io_uring_queue_init(std::max(1u, max_inflight), &ring_, 0); rc < 0)
      throw std::system_error(-rc, std::generic_category(), "io_uring_queue_init");
    // A registered file spares the kernel an fget/fput per op; without one
    // (RLIMIT_NOFILE, an old kernel) the plain fd works the same.
    if (io_uring_register_files(&ring_, &fd, 1) == 0) {
      file_ = 0;
      sqe_flags_ = IOSQE_FIXED_FILE;
    }
    reaper_ = std::thread([this] { reap_loop(); });
  }
  ~IoUringBackend() override {
    {
      std::lock_guard lock(reaper_mu_);
      stop_ = true;
    }
    reaper_cv_.notify_one();
    {
      // Wakes the reaper should it be waiting in the kernel with nothing left.
      std::lock_guard lock(sq_mu_);
      io_uring_sqe* sqe = get_sqe_locked();
      io_uring_prep_nop(sqe);
      io_uring_sqe_set_data(sqe, nullptr);
      submit_queued_locked();
    }
    reaper_.join();  // it leaves once nothing is in the kernel
    io_uring_queue_exit(&ring_);
  }  // helper_ finishes its queue before it goes

  void submit(std::span<BlockRequest* const> batch) override {
    {
      std::lock_guard lock(sq_mu_);
      for (BlockRequest* r : batch) {
        if (r->op == BlockRequest::Op::kDiscard || r->op == BlockRequest::Op::kWriteZeroes)
          helper_.run(*r);
        else
          prep(get_sqe_locked(), *r);
      }
      submit_queued_locked();
    }
    // Whatever the kernel finished inside that call is reported here, so
    // the reaper is not woken for it.
    while (reap() == kReapBatch) {
    }
    wake_reaper_if_needed();
  }

  const char* name() const override { return "io_uring"; }

 private:
  static constexpr unsigned kReapBatch = 64;

  void prep(io_uring_sqe* sqe, BlockRequest& r) {
    // One buffer (most requests) goes as READ/WRITE: no iovec array for the
    // kernel to copy in.
    const bool one = r.iov.size() == 1;
    switch (r.op) {
      case BlockRequest::Op::kRead:
        if (one)
          io_uring_prep_read(sqe, file_, r.iov[0].iov_base, static_cast<unsigned>(r.iov[0].iov_len), r.offset);
        else
          io_uring_prep_readv(sqe, file_, r.iov.data(), static_cast<unsigned>(r.iov.size()), r.offset);
        break;
      case BlockRequest::Op::kWrite:
        if (one)
          io_uring_prep_write(sqe, file_, r.iov[0].iov_base, static_cast<unsigned>(r.iov[0].iov_len), r.offset);
        else
          io_uring_prep_writev(sqe, file_, r.iov.data(), static_cast<unsigned>(r.iov.size()), r.offset);
        break;
      default:
        io_uring_prep_fsync(sqe, file_, IORING_FSYNC_DATASYNC);
        break;
    }
    sqe->flags |= sqe_flags_;
    io_uring_sqe_set_data(sqe, &r);
  }

  // Only a caller over its max_inflight finds the SQ full: then the queued
  // entries go to the kernel at once.
  io_uring_sqe* get_sqe_locked() {
    io_uring_sqe* sqe;
    while ((sqe = io_uring_get_sqe(&ring_)) == nullptr) {
      submit_queued_locked();
      wake_reaper_if_needed();
    }
    return sqe;
  }

  // Retries transient failures until the kernel has taken every queued
  // entry: the CQ has room for all of them, so it has no reason to refuse
  // for long.
  void submit_queued_locked() {
    while (io_uring_sq_ready(&ring_) > 0) {
      const int rc = io_uring_submit(&ring_);
      if (rc > 0) {
        in_kernel_.fetch_add(rc);
      } else if (rc == 0 || rc == -EINTR || rc == -EAGAIN || rc == -EBUSY) {
        std::this_thread::yield();
      } else {
        return;  // the ring itself is unusable; nothing here can fix that
      }
    }
  }

  // The reaper sleeps on reaper_cv_ while nothing is in the kernel. The
  // seq_cst order of in_kernel_ (stored, then reaper_idle_ loaded here)
  // against reaper_idle_ (stored, then in_kernel_ loaded by the reaper)
  // means one of the two sees the other: no wake-up is lost.
  void wake_reaper_if_needed() {
    if (in_kernel_.load() <= 0 || !reaper_idle_.load()) return;
    { std::lock_guard lock(reaper_mu_); }
    reaper_cv_.notify_one();
  }

  // Takes up to kReapBatch completions off the CQ and reports them; returns
  // how many were taken.
  unsigned reap() {
    io_uring_cqe* cqes[kReapBatch];
    struct Done {
      BlockRequest* request;
      int res;
    } done[kReapBatch];
    unsigned n;
    {
      std::lock_guard lock(cq_mu_);
      n = io_uring_peek_batch_cqe(&ring_, cqes, kReapBatch);
      for (unsigned i = 0; i < n; ++i) done[i] = {static_cast<BlockRequest*>(io_uring_cqe_get_data(cqes[i])), cqes[i]->res};
      io_uring_cq_advance(&ring_, n);
    }
    if (n == 0) return 0;
    in_kernel_.fetch_sub(n);
    BlockResult results[kReapBatch];
    unsigned m = 0;
    for (unsigned i = 0; i < n; ++i) {
      BlockRequest* r = done[i].request;
      if (!r) continue;  // a wake-up
      const int res = done[i].res;
      if (r->op == BlockRequest::Op::kFlush || res < 0) {
        results[m++] = {r->tag, res < 0 ? res : 0};
      } else if (static_cast<uint64_t>(res) == iov_bytes(r->iov)) {
        results[m++] = {r->tag, 0};
      } else {
        helper_.run(*r, static_cast<uint64_t>(res));  // short: the rest, or -EIO at the end of the file
      }
    }
    if (m) sink_.complete(std::span(results, m));
    return n;
  }

  void reap_loop() {
    for (;;) {
      {
        std::unique_lock lock(reaper_mu_);
        reaper_idle_.store(true);
        reaper_cv_.wait(lock, [this] { return stop_ || in_kernel_.load() > 0; });
        reaper_idle_.store(false);
        if (stop_ && in_kernel_.load() <= 0) return;
      }
      // One wait in the kernel: it returns at the next completion even when
      // another thread takes that one, so in_kernel_ is checked again.
      if (reap() == 0 && in_kernel_.load() > 0) io_uring_enter(ring_.ring_fd, 0, 1, IORING_ENTER_GETEVENTS, nullptr);
    }
  }

  int file_;  // the fd, or 0: the index of the registered file
  uint8_t sqe_flags_ = 0;
  BlockCompletionSink& sink_;
  io_uring ring_{};
  std::mutex sq_mu_;  // the submission queue
  std::mutex cq_mu_;  // taking entries off the completion queue
  // Submitted ops whose completion nobody has taken yet. It can dip below
  // zero for a moment: a fast completion may be reaped before its
  // submitter has counted it.
  std::atomic<int64_t> in_kernel_{0};
  std::mutex reaper_mu_;
  std::condition_variable reaper_cv_;
  std::atomic<bool> reaper_idle_{false};
  bool stop_ = false;  // guarded by reaper_mu_
  SyncPool helper_;    // discard, write-zeroes, the rest of short transfers
  std::thread reaper_;
};

}  // namespace

std::unique_ptr<BlockBackend> make_thread_pool_backend(int fd, unsigned threads, BlockCompletionSink& sink) {
  return std::make_unique<ThreadPoolBackend>(fd, threads, sink);
}
std::unique_ptr<BlockBackend> make_io_uring_backend(int fd, unsigned max_inflight, BlockCompletionSink& sink) {
  return std::make_unique<IoUringBackend>(fd, max_inflight, sink);
}

}  // namespace skiff::virtio
