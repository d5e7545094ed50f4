#include "vmm/boot/layout.h"

#include <algorithm>

namespace skiff::layout {

std::vector<RegionSpec> ram_regions(uint64_t mem_size) {
  if (mem_size <= kMmioGapStart) return {{GuestAddress(0), mem_size}};
  return {{GuestAddress(0), kMmioGapStart}, {GuestAddress(kMmioGapEnd), mem_size - kMmioGapStart}};
}

RegionSpec hotplug_region(uint64_t mem_size, uint64_t hotplug_size) {
  const auto regions = ram_regions(mem_size);
  const uint64_t ram_end = regions.back().start.value() + regions.back().size;
  const auto align_up = [](uint64_t v) { return (v + kHotplugAlign - 1) / kHotplugAlign * kHotplugAlign; };
  return {GuestAddress(align_up(std::max(ram_end, kMmioGapEnd))), align_up(hotplug_size)};
}

}  // namespace skiff::layout
