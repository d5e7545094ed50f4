#pragma once
// The one way a device model moves bytes through a descriptor chain:
// ChainReader walks its device-readable part front to back, ChainWriter its
// device-writable part. Both see host spans of guest RAM that
// GuestMemory::slice produced for ranges the Virtqueue already checked, so a
// device never computes a guest address; iovecs() hands the same ranges to
// preadv/pwritev (virtio-blk, virtio-fs READ/WRITE) with no copy in between.
//
// Everything a reader sees was written by the guest and may change under us
// while we read it (another vCPU): copy a header out once, then use the copy.
//
// assign() refills a cursor and keeps its capacity: a device that keeps one
// per thread allocates nothing per request.
#include <sys/uio.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <type_traits>
#include <vector>

#include "memory/guest_memory.h"
#include "virtio/virtqueue.h"

namespace skiff::virtio {

template <typename Byte>
class ChainCursor {
 public:
  ChainCursor() = default;
  explicit ChainCursor(std::vector<std::span<Byte>> spans) : spans_(std::move(spans)) { count(); }
  ChainCursor(const GuestMemory& mem, const DescriptorChain& chain) { assign(mem, chain); }

  // The chain's readable (ChainReader) or writable (ChainWriter) descriptors,
  // from their start. A malformed chain (no descriptors) gives an empty cursor.
  void assign(const GuestMemory& mem, const DescriptorChain& chain) {
    spans_.clear();
    for (const auto& d : chain.descriptors) {
      if (d.write != kWritable || d.len == 0) continue;
      const auto s = mem.slice(d.addr, d.len);
      spans_.emplace_back(s.data(), s.size());
    }
    count();
  }

  size_t remaining() const { return remaining_; }
  size_t consumed() const { return consumed_; }

  // The next `len` bytes (or fewer, at the end) as iovecs appended to `out`,
  // consumed.
  void append_iovecs(std::vector<iovec>& out, size_t len) {
    while (len > 0 && idx_ < spans_.size()) {
      const size_t n = std::min(len, spans_[idx_].size() - off_);
      out.push_back(iovec{const_cast<uint8_t*>(reinterpret_cast<const uint8_t*>(spans_[idx_].data() + off_)), n});
      advance(n);
      len -= n;
    }
  }
  std::vector<iovec> iovecs(size_t len) {
    std::vector<iovec> out;
    append_iovecs(out, len);
    return out;
  }
  // Skips `len` bytes, or what remains; returns the bytes skipped.
  size_t skip_some(size_t len) {
    const size_t n = std::min(len, remaining_);
    for (size_t left = n; left > 0;) {
      const size_t step = std::min(left, spans_[idx_].size() - off_);
      advance(step);
      left -= step;
    }
    return n;
  }
  // Skips exactly `len` bytes; false (nothing skipped) when fewer remain.
  bool skip(size_t len) { return len <= remaining_ && skip_some(len) == len; }

 protected:
  static constexpr bool kWritable = !std::is_const_v<Byte>;

  // Copies min(len, remaining()) bytes between `p` and the cursor, consumed;
  // returns how many.
  template <typename Ptr>
  size_t copy(Ptr p, size_t len) {
    const size_t n = std::min(len, remaining_);
    for (size_t done = 0; done < n;) {
      const size_t step = std::min(n - done, spans_[idx_].size() - off_);
      if constexpr (kWritable)
        std::memcpy(spans_[idx_].data() + off_, p + done, step);
      else
        std::memcpy(p + done, spans_[idx_].data() + off_, step);
      advance(step);
      done += step;
    }
    return n;
  }

 private:
  void count() {
    remaining_ = consumed_ = idx_ = off_ = 0;
    for (const auto& s : spans_) remaining_ += s.size();
    skip_empty();
  }
  void advance(size_t n) {
    off_ += n;
    remaining_ -= n;
    consumed_ += n;
    skip_empty();
  }
  void skip_empty() {
    while (idx_ < spans_.size() && off_ == spans_[idx_].size()) {
      ++idx_;
      off_ = 0;
    }
  }

  std::vector<std::span<Byte>> spans_;
  size_t idx_ = 0, off_ = 0, remaining_ = 0, consumed_ = 0;
};

class ChainReader : public ChainCursor<const uint8_t> {
 public:
  using ChainCursor::ChainCursor;
  // Copies up to out.size() bytes out; returns how many (short at the end).
  size_t read_some(std::span<uint8_t> out) { return copy(out.data(), out.size()); }
  // Copies exactly `len` bytes out; false (nothing consumed) when fewer remain.
  bool read(void* dst, size_t len) { return len <= remaining() && copy(static_cast<uint8_t*>(dst), len) == len; }
  template <typename T>
  bool read_obj(T& obj) {
    return read(&obj, sizeof(T));
  }
};

class ChainWriter : public ChainCursor<uint8_t> {
 public:
  using ChainCursor::ChainCursor;
  // Copies up to in.size() bytes in; returns how many (short at the end).
  size_t write_some(std::span<const uint8_t> in) { return copy(in.data(), in.size()); }
  // Copies exactly `len` bytes in; false (nothing written) when they don't fit.
  bool write(const void* src, size_t len) {
    return len <= remaining() && copy(static_cast<const uint8_t*>(src), len) == len;
  }
  template <typename T>
  bool write_obj(const T& obj) {
    return write(&obj, sizeof(T));
  }
};

}  // namespace skiff::virtio
