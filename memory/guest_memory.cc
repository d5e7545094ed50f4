#include "memory/guest_memory.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>

#include "base/hex.h"
#include "base/sys_error.h"

namespace skiff {
namespace {

constexpr uint64_t kPageSize = 4096;
constexpr uint64_t kHugePageSize = 2ull << 20;


std::string describe(GuestAddress addr, uint64_t len) {
  return "guest range [" + hex(addr.value()) + ", +" + hex(len) + ")";
}

}  // namespace

Mapping::Mapping(Mapping&& o) noexcept
    : addr_(std::exchange(o.addr_, nullptr)), size_(std::exchange(o.size_, 0)) {}

Mapping& Mapping::operator=(Mapping&& o) noexcept {
  if (this != &o) {
    if (addr_) ::munmap(addr_, size_);
    addr_ = std::exchange(o.addr_, nullptr);
    size_ = std::exchange(o.size_, 0);
  }
  return *this;
}

Mapping::~Mapping() {
  if (addr_) ::munmap(addr_, size_);
}

GuestMemory GuestMemory::create(std::vector<RegionSpec> specs, const GuestMemoryOptions& options) {
  if (specs.empty()) throw std::invalid_argument("guest memory: no regions");
  std::sort(specs.begin(), specs.end(), [](const RegionSpec& a, const RegionSpec& b) { return a.start < b.start; });
  const uint64_t align = options.hugepages ? kHugePageSize : kPageSize;
  for (size_t i = 0; i < specs.size(); ++i) {
    const auto& s = specs[i];
    if (s.size == 0) throw std::invalid_argument("guest memory: empty region at " + hex(s.start.value()));
    if (s.start.value() % align || s.size % align)
      throw std::invalid_argument("guest memory: " + describe(s.start, s.size) + " is not aligned to " + hex(align));
    auto end = s.start.checked_add(s.size);
    if (!end) throw std::invalid_argument("guest memory: " + describe(s.start, s.size) + " wraps the address space");
    if (i + 1 < specs.size() && end->value() > specs[i + 1].start.value())
      throw std::invalid_argument("guest memory: " + describe(s.start, s.size) + " overlaps the next region");
  }

  std::vector<GuestRegion> regions;
  regions.reserve(specs.size());
  for (const auto& s : specs) {
    unsigned flags = MFD_CLOEXEC | (options.hugepages ? MFD_HUGETLB : 0u);
    UniqueFd fd(::memfd_create(options.name.c_str(), flags));
    if (!fd) throw_errno("memfd_create for " + describe(s.start, s.size));
    if (::ftruncate(fd.get(), static_cast<off_t>(s.size)) < 0) throw_errno("ftruncate guest memory memfd");
    // Normal pages: MAP_NORESERVE, committed as the guest touches them. Huge
    // pages are reserved up front instead: without a reservation a guest
    // touching a page the pool can't supply would kill the VMM with SIGBUS.
    const int map_flags = MAP_SHARED | (options.hugepages ? 0 : MAP_NORESERVE);
    void* p = ::mmap(nullptr, s.size, PROT_READ | PROT_WRITE, map_flags, fd.get(), 0);
    if (p == MAP_FAILED) {
      if (options.hugepages)
        throw_errno("mmap " + describe(s.start, s.size) + " on 2 MiB huge pages (reserve enough in "
                    "/proc/sys/vm/nr_hugepages)");
      throw_errno("mmap " + describe(s.start, s.size));
    }
    Mapping mapping(p, s.size);
    // Guest RAM must not be copied into a forked child (skiff create forks).
    ::madvise(p, s.size, MADV_DONTFORK);
    regions.emplace_back(s.start, s.size, std::move(fd), std::move(mapping));
  }
  return GuestMemory(std::move(regions), align);
}

uint64_t GuestMemory::total_size() const {
  uint64_t total = 0;
  for (const auto& r : regions_) total += r.size();
  return total;
}

uint64_t GuestMemory::end_address() const { return regions_.empty() ? 0 : regions_.back().end(); }

const GuestRegion* GuestMemory::find(GuestAddress addr, uint64_t len) const noexcept {
  // Last region starting at or below addr.
  auto it = std::upper_bound(regions_.begin(), regions_.end(), addr,
                             [](GuestAddress a, const GuestRegion& r) { return a < r.start(); });
  if (it == regions_.begin()) return nullptr;
  const GuestRegion& r = *std::prev(it);
  uint64_t offset = addr.value() - r.start().value();
  if (offset >= r.size()) return nullptr;
  if (len > r.size() - offset) return nullptr;  // overflow-free form of offset + len > size
  return &r;
}

bool GuestMemory::contains(GuestAddress addr, uint64_t len) const noexcept { return find(addr, len) != nullptr; }

std::span<uint8_t> GuestMemory::slice(GuestAddress addr, uint64_t len) const {
  const GuestRegion* r = find(addr, len);
  if (!r) throw GuestMemoryError(describe(addr, len) + " is not inside guest RAM");
  uint64_t offset = addr.value() - r->start().value();
  return std::span<uint8_t>(static_cast<uint8_t*>(r->host_base()) + offset, len);
}

void GuestMemory::read(GuestAddress addr, std::span<uint8_t> out) const {
  auto src = slice(addr, out.size());
  if (!out.empty()) std::memcpy(out.data(), src.data(), out.size());
}

void GuestMemory::write(GuestAddress addr, std::span<const uint8_t> in) const {
  auto dst = slice(addr, in.size());
  if (!in.empty()) std::memcpy(dst.data(), in.data(), in.size());
}

void GuestMemory::fill(GuestAddress addr, uint64_t len, uint8_t value) const {
  auto dst = slice(addr, len);
  if (len) std::memset(dst.data(), value, len);
}

void GuestMemory::discard(GuestAddress addr, uint64_t len) const {
  const GuestRegion* r = find(addr, len);
  if (!r || len == 0) throw GuestMemoryError(describe(addr, len) + " is not inside guest RAM");
  const uint64_t offset = addr.value() - r->start().value();
  // hugetlbfs rounds a hole inwards to whole huge pages: an unaligned range
  // would silently keep part of itself, so it is refused instead.
  if (offset % page_size_ || len % page_size_)
    throw GuestMemoryError(describe(addr, len) + " is not aligned to the " + hex(page_size_) + " pages of guest RAM");
  if (::fallocate(r->memfd(), FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, static_cast<off_t>(offset),
                  static_cast<off_t>(len)) != 0)
    throw_errno("discard " + describe(addr, len));
}

}  // namespace skiff
