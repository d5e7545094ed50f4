#pragma once
// A guest virtio driver simulator for tests and fuzz targets: lays out the
// three rings of a split virtqueue in a GuestMemory, writes real descriptor
// chains (optionally through an indirect table), publishes them, and reads
// used elements back. It can also misbehave on request through the raw_*
// and set_* functions. Header-only; test code, so it throws freely.
#include <atomic>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <vector>

#include "virtio/virtqueue.h"
#include "memory/guest_memory.h"

namespace skiff::virtio::testing {

class DriverQueue {
 public:
  // Rings at the addresses in `config`; buffers and indirect tables are
  // bump-allocated from [buffers, buffers + buffers_size), wrapping around.
  DriverQueue(const GuestMemory& mem, QueueConfig config, GuestAddress buffers, uint64_t buffers_size)
      : mem_(mem), config_(config), buf_start_(buffers), buf_size_(buffers_size) {
    mem_.fill(config.desc, desc_table_bytes(config.size), 0);
    mem_.fill(config.avail, avail_ring_bytes(config.size), 0);
    mem_.fill(config.used, used_ring_bytes(config.size), 0);
  }

  const QueueConfig& config() const { return config_; }

  struct Chain {
    uint16_t head = 0;
    std::vector<GuestAddress> readable;  // buffer addresses, in order
    std::vector<GuestAddress> writable;
  };

  // Writes a chain (readable buffers holding `readable`, then writable buffers
  // of `writable_lens` bytes, filled with 0xEE) and publishes it.
  Chain add_chain(const std::vector<std::vector<uint8_t>>& readable, const std::vector<uint32_t>& writable_lens,
                  bool indirect = false) {
    Chain c;
    std::vector<RawDescriptor> descs;
    for (const auto& bytes : readable) {
      const GuestAddress a = alloc(bytes.size(), 8);
      if (!bytes.empty()) mem_.write(a, bytes);
      c.readable.push_back(a);
      descs.push_back(RawDescriptor{a.value(), static_cast<uint32_t>(bytes.size()), 0, 0});
    }
    for (uint32_t len : writable_lens) {
      const GuestAddress a = alloc(len, 8);
      mem_.fill(a, len, 0xEE);
      c.writable.push_back(a);
      descs.push_back(RawDescriptor{a.value(), len, kDescFWrite, 0});
    }
    if (descs.empty()) throw std::invalid_argument("empty chain");
    if (indirect) {
      const GuestAddress table = alloc(kDescSize * descs.size(), 16);
      for (size_t i = 0; i < descs.size(); ++i) {
        if (i + 1 < descs.size()) {
          descs[i].flags |= kDescFNext;
          descs[i].next = static_cast<uint16_t>(i + 1);
        }
        mem_.write_obj(table.unchecked_add(kDescSize * i), descs[i]);
      }
      c.head = next_free();
      raw_desc(c.head, RawDescriptor{table.value(), static_cast<uint32_t>(kDescSize * descs.size()), kDescFIndirect, 0});
    } else {
      if (descs.size() > config_.size) throw std::invalid_argument("chain longer than the queue");
      std::vector<uint16_t> idx;
      for (size_t i = 0; i < descs.size(); ++i) idx.push_back(next_free());
      for (size_t i = 0; i < descs.size(); ++i) {
        if (i + 1 < descs.size()) {
          descs[i].flags |= kDescFNext;
          descs[i].next = idx[i + 1];
        }
        raw_desc(idx[i], descs[i]);
      }
      c.head = idx[0];
    }
    push_avail(c.head);
    return c;
  }

  // The next used element the device published, if any.
  std::optional<UsedElem> next_used() {
    const uint16_t idx = mem_.read_obj<uint16_t>(config_.used.unchecked_add(2));
    std::atomic_thread_fence(std::memory_order_acquire);
    if (idx == last_used_) return std::nullopt;
    const uint64_t slot = last_used_ & (config_.size - 1u);
    ++last_used_;
    return mem_.read_obj<UsedElem>(config_.used.unchecked_add(4 + 8 * slot));
  }

  std::vector<uint8_t> read_bytes(GuestAddress a, size_t len) const {
    std::vector<uint8_t> v(len);
    mem_.read(a, v);
    return v;
  }

  // --- raw access, for misbehaving drivers ---
  void raw_desc(uint16_t index, const RawDescriptor& d) {
    mem_.write_obj(config_.desc.unchecked_add(kDescSize * (index % config_.size)), d);
  }
  void raw_desc_at(GuestAddress a, const RawDescriptor& d) { mem_.write_obj(a, d); }
  // Puts `head` in the next avail slot and publishes it (release fence, idx++).
  void push_avail(uint16_t head) {
    mem_.write_obj(config_.avail.unchecked_add(4 + 2ull * (avail_idx_ & (config_.size - 1u))), head);
    set_avail_idx(static_cast<uint16_t>(avail_idx_ + 1));
  }
  void set_avail_idx(uint16_t idx) {
    std::atomic_thread_fence(std::memory_order_release);
    avail_idx_ = idx;
    mem_.write_obj(config_.avail.unchecked_add(2), idx);
  }
  uint16_t avail_idx() const { return avail_idx_; }
  void set_avail_flags(uint16_t flags) { mem_.write_obj(config_.avail, flags); }
  void set_used_event(uint16_t v) { mem_.write_obj(config_.avail.unchecked_add(4 + 2ull * config_.size), v); }
  uint16_t avail_event() const { return mem_.read_obj<uint16_t>(config_.used.unchecked_add(4 + 8ull * config_.size)); }
  GuestAddress alloc(uint64_t len, uint64_t align) {
    uint64_t off = (buf_off_ + align - 1) / align * align;
    if (off + len > buf_size_) off = 0;
    if (len > buf_size_) throw std::invalid_argument("buffer larger than the buffer area");
    buf_off_ = off + len;
    return buf_start_.unchecked_add(off);
  }

 private:
  uint16_t next_free() { return static_cast<uint16_t>(next_desc_++ % config_.size); }

  const GuestMemory& mem_;
  QueueConfig config_;
  GuestAddress buf_start_;
  uint64_t buf_size_;
  uint64_t buf_off_ = 0;
  uint32_t next_desc_ = 0;
  uint16_t avail_idx_ = 0;
  uint16_t last_used_ = 0;
};

}  // namespace skiff::virtio::testing
