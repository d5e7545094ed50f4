#include "devices/bus.h"

#include <algorithm>
#include <cstdio>
#include <mutex>
#include <stdexcept>

#include "base/hex.h"

namespace skiff::devices {

void Bus::insert(std::shared_ptr<BusDevice> device, uint64_t base, uint64_t length) {
  if (!device) throw std::invalid_argument(name_ + " bus: null device at " + hex(base));
  if (length == 0) throw std::invalid_argument(name_ + " bus: empty range at " + hex(base));
  if (base + (length - 1) < base)
    throw std::invalid_argument(name_ + " bus: range at " + hex(base) + " wraps the address space");
  BusRange range{base, length};
  std::unique_lock lock(mutex_);
  auto it = std::lower_bound(entries_.begin(), entries_.end(), base,
                             [](const Entry& e, uint64_t b) { return e.range.base < b; });
  auto clash = [&](const Entry& e) {
    return std::invalid_argument(name_ + " bus: range [" + hex(range.base) + ", " + hex(range.last()) +
                                 "] overlaps [" + hex(e.range.base) + ", " + hex(e.range.last()) + "]");
  };
  if (it != entries_.end() && it->range.base <= range.last()) throw clash(*it);
  if (it != entries_.begin() && std::prev(it)->range.last() >= range.base) throw clash(*std::prev(it));
  entries_.insert(it, Entry{range, std::move(device)});
}

bool Bus::remove(uint64_t base) {
  std::unique_lock lock(mutex_);
  auto it = std::find_if(entries_.begin(), entries_.end(), [&](const Entry& e) { return e.range.base == base; });
  if (it == entries_.end()) return false;
  entries_.erase(it);
  return true;
}

const Bus::Entry* Bus::find(uint64_t addr, uint64_t len) const {
  if (len == 0 || addr + (len - 1) < addr) return nullptr;
  // First entry whose base is greater than addr; the candidate is the one before it.
  auto it = std::upper_bound(entries_.begin(), entries_.end(), addr,
                             [](uint64_t a, const Entry& e) { return a < e.range.base; });
  if (it == entries_.begin()) return nullptr;
  const Entry& e = *std::prev(it);
  if (addr + (len - 1) > e.range.last()) return nullptr;
  return &e;
}

std::shared_ptr<BusDevice> Bus::resolve(uint64_t addr, uint64_t len, uint64_t& offset) const {
  std::shared_lock lock(mutex_);
  const Entry* e = find(addr, len);
  if (!e) return nullptr;
  offset = addr - e->range.base;
  // A reference, so the device outlives a concurrent remove() during the access.
  return e->device;
}

bool Bus::read(uint64_t addr, std::span<uint8_t> data) const {
  uint64_t offset = 0;
  auto dev = resolve(addr, data.size(), offset);
  if (!dev) return false;
  dev->read(offset, data);
  return true;
}

bool Bus::write(uint64_t addr, std::span<const uint8_t> data) const {
  uint64_t offset = 0;
  auto dev = resolve(addr, data.size(), offset);
  if (!dev) return false;
  dev->write(offset, data);
  return true;
}

size_t Bus::size() const {
  std::shared_lock lock(mutex_);
  return entries_.size();
}

}  // namespace skiff::devices
