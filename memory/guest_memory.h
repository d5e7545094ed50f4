#pragma once
// Guest RAM: several regions, each backed by its own memfd so it can later be
// shared with another process (vhost-user) or mapped for virtio-fs DAX. Every
// access from the host side goes through the checked functions here: nothing
// else in the tree turns a guest address into a host pointer.
#include <cstdint>
#include <cstring>
#include <span>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#include "memory/guest_address.h"
#include "base/unique_fd.h"

namespace skiff {

class GuestMemoryError : public std::out_of_range {
 public:
  using std::out_of_range::out_of_range;
};

struct RegionSpec {
  GuestAddress start;
  uint64_t size = 0;
};

struct GuestMemoryOptions {
  bool hugepages = false;  // back regions with 2 MiB huge pages (memfd MFD_HUGETLB)
  std::string name = "skiff-guest-ram";
};

// An mmap'ed range, unmapped on destruction.
class Mapping {
 public:
  Mapping() = default;
  Mapping(void* addr, size_t size) : addr_(static_cast<uint8_t*>(addr)), size_(size) {}
  Mapping(Mapping&& o) noexcept;
  Mapping& operator=(Mapping&& o) noexcept;
  Mapping(const Mapping&) = delete;
  Mapping& operator=(const Mapping&) = delete;
  ~Mapping();
  uint8_t* data() const { return addr_; }
  size_t size() const { return size_; }

 private:
  uint8_t* addr_ = nullptr;
  size_t size_ = 0;
};

class GuestRegion {
 public:
  GuestRegion(GuestAddress start, uint64_t size, UniqueFd memfd, Mapping mapping)
      : start_(start), size_(size), memfd_(std::move(memfd)), mapping_(std::move(mapping)) {}
  GuestAddress start() const { return start_; }
  uint64_t size() const { return size_; }
  // Exclusive end; regions never reach the top of the address space.
  uint64_t end() const { return start_.value() + size_; }
  int memfd() const { return memfd_.get(); }
  // For KVM_SET_USER_MEMORY_REGION and similar registrations only.
  void* host_base() const { return mapping_.data(); }

 private:
  GuestAddress start_;
  uint64_t size_;
  UniqueFd memfd_;
  Mapping mapping_;
};

class GuestMemory {
 public:
  // Regions must be page-aligned, non-empty, non-overlapping and must not
  // reach the top of the address space. Throws std::invalid_argument or
  // std::system_error (memfd/mmap failure) with context.
  static GuestMemory create(std::vector<RegionSpec> specs, const GuestMemoryOptions& options = {});

  const std::vector<GuestRegion>& regions() const { return regions_; }
  uint64_t total_size() const;
  // One past the highest guest-physical address backed by RAM.
  uint64_t end_address() const;

  // True when [addr, addr+len) lies wholly inside one region (len 0: addr inside).
  bool contains(GuestAddress addr, uint64_t len) const noexcept;

  // Host view of [addr, addr+len); throws GuestMemoryError unless the range is
  // wholly inside one region. The guest may change the bytes at any time.
  std::span<uint8_t> slice(GuestAddress addr, uint64_t len) const;

  void read(GuestAddress addr, std::span<uint8_t> out) const;
  void write(GuestAddress addr, std::span<const uint8_t> in) const;
  void fill(GuestAddress addr, uint64_t len, uint8_t value) const;
  // Gives the host memory behind [addr, addr+len) back: a hole is punched
  // in the region's memfd (fallocate PUNCH_HOLE), so the range reads as
  // zeroes afterwards and costs nothing until it is touched again; KVM drops
  // its mappings through its MMU notifier. virtio-mem's unplug. The range
  // must lie wholly inside one region and be aligned to page_size(). Throws
  // GuestMemoryError for a bad range, std::system_error if the kernel refuses.
  void discard(GuestAddress addr, uint64_t len) const;
  // The regions' page size: 4 KiB, or 2 MiB on huge pages.
  uint64_t page_size() const { return page_size_; }

  template <typename T>
  T read_obj(GuestAddress addr) const {
    static_assert(std::is_trivially_copyable_v<T>);
    T value;
    read(addr, std::span<uint8_t>(reinterpret_cast<uint8_t*>(&value), sizeof(T)));
    return value;
  }
  template <typename T>
  void write_obj(GuestAddress addr, const T& value) const {
    static_assert(std::is_trivially_copyable_v<T>);
    write(addr, std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(&value), sizeof(T)));
  }

 private:
  GuestMemory(std::vector<GuestRegion> regions, uint64_t page_size)
      : regions_(std::move(regions)), page_size_(page_size) {}
  // The region holding [addr, addr+len) or nullptr.
  const GuestRegion* find(GuestAddress addr, uint64_t len) const noexcept;

  std::vector<GuestRegion> regions_;  // sorted by start
  uint64_t page_size_;
};

}  // namespace skiff
