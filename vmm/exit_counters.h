#pragma once
// Per-vCPU counts of KVM exits by reason, read while the vCPU runs.
#include <array>
#include <atomic>
#include <cstdint>
#include <string>
#include <vector>

namespace skiff {

class ExitCounters {
 public:
  static constexpr size_t kReasons = 64;
  void count(uint32_t reason) {
    counts_[reason < kReasons ? reason : kReasons - 1].fetch_add(1, std::memory_order_relaxed);
  }
  void count_unclaimed_pio() { unclaimed_pio_.fetch_add(1, std::memory_order_relaxed); }
  void count_unclaimed_mmio() { unclaimed_mmio_.fetch_add(1, std::memory_order_relaxed); }
  uint64_t get(uint32_t reason) const { return counts_[reason < kReasons ? reason : kReasons - 1].load(); }
  uint64_t unclaimed_pio() const { return unclaimed_pio_.load(); }
  uint64_t unclaimed_mmio() const { return unclaimed_mmio_.load(); }
  uint64_t total() const;
  // "io=12 mmio=3 ..." for the reasons seen, for logs.
  std::string summary() const;

 private:
  std::array<std::atomic<uint64_t>, kReasons> counts_{};
  std::atomic<uint64_t> unclaimed_pio_{0};
  std::atomic<uint64_t> unclaimed_mmio_{0};
};

// KVM's name for an exit reason ("io", "mmio", "shutdown"...).
std::string exit_reason_name(uint32_t reason);

}  // namespace skiff
