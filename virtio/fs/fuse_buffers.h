#pragma once
// A FUSE request as the virtio-fs device hands it to the server: the
// device-readable part of a descriptor chain (fuse_in_header, the opcode's
// arguments, WRITE data) and the device-writable part (fuse_out_header and the
// reply), both as host spans of guest RAM that GuestMemory::slice produced.
// The server never computes a guest address; it reads and writes through
// these cursors, and READ/WRITE move file data straight between the file and
// guest memory with preadv/pwritev on iovecs() (no copy in between).
//
// Everything in `in` is written by the guest and may change under us while
// we read it (another vCPU): copy a header out once, then use the copy.
#include <sys/uio.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <vector>

namespace skiff::virtio {

// Consumes bytes front to back across a list of spans.
template <typename Byte>
class SpanCursor {
 public:
  explicit SpanCursor(std::vector<std::span<Byte>> spans) : spans_(std::move(spans)) {
    for (const auto& s : spans_) remaining_ += s.size();
  }
  size_t remaining() const { return remaining_; }
  size_t consumed() const { return consumed_; }

  // The next `len` bytes (or fewer, at the end) as iovecs, consumed.
  std::vector<iovec> iovecs(size_t len) {
    std::vector<iovec> out;
    while (len > 0 && idx_ < spans_.size()) {
      auto& s = spans_[idx_];
      const size_t n = std::min(len, s.size() - off_);
      if (n > 0) out.push_back(iovec{const_cast<uint8_t*>(reinterpret_cast<const uint8_t*>(s.data() + off_)), n});
      advance(n);
      len -= n;
    }
    return out;
  }
  // Skips `len` bytes; false (nothing skipped) when fewer remain.
  bool skip(size_t len) {
    if (len > remaining_) return false;
    iovecs(len);
    return true;
  }

 protected:
  void advance(size_t n) {
    off_ += n;
    remaining_ -= n;
    consumed_ += n;
    while (idx_ < spans_.size() && off_ == spans_[idx_].size()) {
      ++idx_;
      off_ = 0;
    }
  }
  std::vector<std::span<Byte>> spans_;
  size_t idx_ = 0, off_ = 0, remaining_ = 0, consumed_ = 0;
};

class FuseReader : public SpanCursor<const uint8_t> {
 public:
  using SpanCursor::SpanCursor;
  // Copies exactly `len` bytes out; false (nothing consumed) when fewer remain.
  bool read(void* dst, size_t len) {
    if (len > remaining_) return false;
    auto* d = static_cast<uint8_t*>(dst);
    while (len > 0) {
      const auto& s = spans_[idx_];
      const size_t n = std::min(len, s.size() - off_);
      std::memcpy(d, s.data() + off_, n);
      d += n;
      len -= n;
      advance(n);
    }
    return true;
  }
  template <typename T>
  bool read_obj(T& obj) {
    return read(&obj, sizeof(T));
  }
};

class FuseWriter : public SpanCursor<uint8_t> {
 public:
  using SpanCursor::SpanCursor;
  // Copies exactly `len` bytes in; false (nothing written) when they don't fit.
  bool write(const void* src, size_t len) {
    if (len > remaining_) return false;
    const auto* p = static_cast<const uint8_t*>(src);
    while (len > 0) {
      auto& s = spans_[idx_];
      const size_t n = std::min(len, s.size() - off_);
      std::memcpy(s.data() + off_, p, n);
      p += n;
      len -= n;
      advance(n);
    }
    return true;
  }
  template <typename T>
  bool write_obj(const T& obj) {
    return write(&obj, sizeof(T));
  }
};

// What a FUSE server offers the virtio-fs device. handle() may be called
// from several worker threads at once.
class FuseHandler {
 public:
  virtual ~FuseHandler() = default;
  // Serves one request. Returns the bytes written to `out` (fuse_out_header
  // included), or 0 for requests that take no reply (FORGET, BATCH_FORGET)
  // and for input too short to carry a fuse_in_header. Never throws for
  // anything the guest sent.
  virtual uint32_t handle(FuseReader& in, FuseWriter& out) = 0;
  // The device was reset: forget every inode and handle the guest had.
  virtual void reset() {}
};

}  // namespace skiff::virtio
