#pragma once
// Address-space bus for port I/O and MMIO exits. Ranges are kept sorted so a
// lookup is a binary search; registration rejects empty, wrapping and
// overlapping ranges.
#include <cstdint>
#include <memory>
#include <shared_mutex>
#include <span>
#include <string>
#include <vector>

namespace skiff::devices {

// A device on the bus. `offset` is relative to the base of the range the device
// was registered at; `data.size()` is the access width (1, 2, 4 or 8 for CPU
// accesses, anything for tests and fuzzers). Called from vCPU threads: a device
// shared by several vCPUs does its own locking.
class BusDevice {
 public:
  virtual ~BusDevice() = default;
  virtual void read(uint64_t offset, std::span<uint8_t> data) = 0;
  virtual void write(uint64_t offset, std::span<const uint8_t> data) = 0;
};

struct BusRange {
  uint64_t base = 0;
  uint64_t length = 0;
  uint64_t last() const { return base + (length - 1); }
};

class Bus {
 public:
  explicit Bus(std::string name) : name_(std::move(name)) {}

  // Throws std::invalid_argument naming the clash on an empty, wrapping or
  // overlapping range.
  void insert(std::shared_ptr<BusDevice> device, uint64_t base, uint64_t length);
  // Removes the device registered exactly at `base`; false when there is none.
  bool remove(uint64_t base);

  // Dispatch an access; false when no device claims the whole access. An
  // access that straddles the end of a range is not delivered.
  bool read(uint64_t addr, std::span<uint8_t> data) const;
  bool write(uint64_t addr, std::span<const uint8_t> data) const;

  size_t size() const;
  const std::string& name() const { return name_; }

 private:
  struct Entry {
    BusRange range;
    std::shared_ptr<BusDevice> device;
  };
  // Returns the entry covering [addr, addr+len) or nullptr.
  const Entry* find(uint64_t addr, uint64_t len) const;
  // The device covering the access and the offset into it; null when none.
  std::shared_ptr<BusDevice> resolve(uint64_t addr, uint64_t len, uint64_t& offset) const;

  std::string name_;
  mutable std::shared_mutex mutex_;
  std::vector<Entry> entries_;  // sorted by base, non-overlapping
};

}  // namespace skiff::devices
