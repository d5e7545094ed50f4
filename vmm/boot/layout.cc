#include "vmm/boot/layout.h"

namespace skiff::layout {

std::vector<RegionSpec> ram_regions(uint64_t mem_size) {
  if (mem_size <= kMmioGapStart) return {{GuestAddress(0), mem_size}};
  return {{GuestAddress(0), kMmioGapStart}, {GuestAddress(kMmioGapEnd), mem_size - kMmioGapStart}};
}

}  // namespace skiff::layout
