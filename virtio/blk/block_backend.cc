#include "virtio/blk/block_backend.h"

#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <unistd.h>

#include <algorithm>
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

uint64_t iov_bytes(const std::vector<iovec>& iov) {
  uint64_t n = 0;
  for (const auto& v : iov) n += v.iov_len;
  return n;
}

// Reads or writes all of `iov` at `offset`, retrying short transfers.
int rw_full(int fd, bool write, std::vector<iovec> iov, uint64_t offset) {
  iov.erase(std::remove_if(iov.begin(), iov.end(), [](const iovec& v) { return v.iov_len == 0; }), iov.end());
  while (!iov.empty()) {
    const int cnt = static_cast<int>(std::min<size_t>(iov.size(), IOV_MAX));
    const ssize_t n = write ? ::pwritev(fd, iov.data(), cnt, static_cast<off_t>(offset))
                            : ::preadv(fd, iov.data(), cnt, static_cast<off_t>(offset));
    if (n < 0) {
      if (errno == EINTR) continue;
      return -errno;
    }
    if (n == 0) return -EIO;  // past the end of the file
    offset += static_cast<uint64_t>(n);
    advance(iov, static_cast<size_t>(n));
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

}  // namespace

int run_block_request_sync(int fd, const BlockRequest& r) {
  switch (r.op) {
    case BlockRequest::Op::kRead:
      return rw_full(fd, false, r.iov, r.offset);
    case BlockRequest::Op::kWrite:
      return rw_full(fd, true, r.iov, r.offset);
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

namespace {

class ThreadPoolBackend : public BlockBackend {
 public:
  ThreadPoolBackend(int fd, unsigned threads) : fd_(fd) {
    for (unsigned i = 0; i < threads; ++i) workers_.emplace_back([this] { run(); });
  }
  ~ThreadPoolBackend() override {
    {
      std::lock_guard lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    for (auto& t : workers_) t.join();  // workers finish the queue first
  }
  void submit(BlockRequest request, BlockCompletion done) override {
    if (workers_.empty()) {
      done(run_block_request_sync(fd_, request));
      return;
    }
    {
      std::lock_guard lock(mu_);
      jobs_.emplace_back(std::move(request), std::move(done));
    }
    cv_.notify_one();
  }
  const char* name() const override { return workers_.empty() ? "inline" : "thread-pool"; }

 private:
  void run() {
    for (;;) {
      std::pair<BlockRequest, BlockCompletion> job;
      {
        std::unique_lock lock(mu_);
        cv_.wait(lock, [this] { return stop_ || !jobs_.empty(); });
        if (jobs_.empty()) return;
        job = std::move(jobs_.front());
        jobs_.pop_front();
      }
      job.second(run_block_request_sync(fd_, job.first));
    }
  }

  int fd_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::pair<BlockRequest, BlockCompletion>> jobs_;
  bool stop_ = false;
  std::vector<std::thread> workers_;
};

class IoUringBackend : public BlockBackend {
 public:
  IoUringBackend(int fd, unsigned entries) : fd_(fd), capacity_(entries) {
    if (int rc = io_uring_queue_init(entries, &ring_, 0); rc < 0)
      throw std::system_error(-rc, std::generic_category(), "io_uring_queue_init");
    reaper_ = std::thread([this] { reap(); });
  }
  ~IoUringBackend() override {
    {
      std::unique_lock lock(mu_);
      io_uring_sqe* sqe = acquire_sqe_locked(lock);
      io_uring_prep_nop(sqe);
      io_uring_sqe_set_data(sqe, nullptr);  // the stop sentinel: ops before it complete first
      ++inflight_;
      submit_locked();
    }
    reaper_.join();
    io_uring_queue_exit(&ring_);
  }

  // Waits until fewer than `capacity_` requests are in flight (completions
  // can't overflow), then takes a submission entry, flushing the ring if full.
  io_uring_sqe* acquire_sqe_locked(std::unique_lock<std::mutex>& lock) {
    space_.wait(lock, [this] { return inflight_ < capacity_; });
    io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
    if (!sqe) {
      io_uring_submit(&ring_);
      sqe = io_uring_get_sqe(&ring_);
    }
    return sqe;
  }

  void submit(BlockRequest request, BlockCompletion done) override {
    auto* op = new Op{std::move(request), std::move(done)};
    std::unique_lock lock(mu_);
    io_uring_sqe* sqe = acquire_sqe_locked(lock);
    const auto& r = op->request;
    switch (r.op) {
      case BlockRequest::Op::kRead:
        io_uring_prep_readv(sqe, fd_, r.iov.data(), static_cast<unsigned>(r.iov.size()), r.offset);
        break;
      case BlockRequest::Op::kWrite:
        io_uring_prep_writev(sqe, fd_, r.iov.data(), static_cast<unsigned>(r.iov.size()), r.offset);
        break;
      case BlockRequest::Op::kFlush:
        io_uring_prep_fsync(sqe, fd_, IORING_FSYNC_DATASYNC);
        break;
      default:  // discard / write-zeroes: done on the reaper thread
        io_uring_prep_nop(sqe);
        break;
    }
    io_uring_sqe_set_data(sqe, op);
    ++inflight_;
    submit_locked();
  }
  const char* name() const override { return "io_uring"; }

 private:
  struct Op {
    BlockRequest request;
    BlockCompletion done;
  };

  // In-flight ops never exceed the SQ size (and the CQ is twice that), so the
  // kernel has no reason to refuse for long; retry transient failures.
  void submit_locked() {
    int rc;
    while ((rc = io_uring_submit(&ring_)) == -EINTR || rc == -EAGAIN || rc == -EBUSY) std::this_thread::yield();
  }

  void reap() {
    for (;;) {
      io_uring_cqe* cqe = nullptr;
      const int rc = io_uring_wait_cqe(&ring_, &cqe);
      if (rc == -EINTR) continue;
      if (rc < 0) continue;  // nothing sane to do; keep waiting
      auto* op = static_cast<Op*>(io_uring_cqe_get_data(cqe));
      const int res = cqe->res;
      io_uring_cqe_seen(&ring_, cqe);
      {
        std::lock_guard lock(mu_);
        --inflight_;
      }
      space_.notify_one();
      if (!op) return;
      op->done(finish(*op, res));
      delete op;
    }
  }

  int finish(const Op& op, int res) {
    const auto& r = op.request;
    switch (r.op) {
      case BlockRequest::Op::kRead:
      case BlockRequest::Op::kWrite: {
        if (res < 0) return res;
        const uint64_t want = iov_bytes(r.iov);
        if (static_cast<uint64_t>(res) == want) return 0;
        // Short transfer: finish the rest synchronously (or fail at EOF).
        std::vector<iovec> rest = r.iov;
        advance(rest, static_cast<size_t>(res));
        return rw_full(fd_, r.op == BlockRequest::Op::kWrite, std::move(rest), r.offset + static_cast<uint64_t>(res));
      }
      case BlockRequest::Op::kFlush:
        return res < 0 ? res : 0;
      default:
        return run_block_request_sync(fd_, r);
    }
  }

  int fd_;
  unsigned capacity_;
  io_uring ring_{};
  std::mutex mu_;  // guards the submission queue and inflight_
  std::condition_variable space_;
  unsigned inflight_ = 0;
  std::thread reaper_;
};

}  // namespace

std::unique_ptr<BlockBackend> make_thread_pool_backend(int fd, unsigned threads) {
  return std::make_unique<ThreadPoolBackend>(fd, threads);
}
std::unique_ptr<BlockBackend> make_io_uring_backend(int fd, unsigned entries) {
  return std::make_unique<IoUringBackend>(fd, entries);
}

}  // namespace skiff::virtio
