// Kernel images are files a user hands us: the bzImage and ELF parsers and
// the loader must reject any malformed one with BootImageError, never crash
// or write outside guest memory.
#include <cstdint>
#include <span>

#include "vmm/boot/kernel_image.h"
#include "vmm/boot/layout.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const skiff::GuestMemory mem = skiff::GuestMemory::create(skiff::layout::ram_regions(16 << 20));
  try {
    skiff::boot::load_kernel(mem, std::span<const uint8_t>(data, size));
  } catch (const skiff::boot::BootImageError&) {
  } catch (const skiff::GuestMemoryError&) {
    __builtin_trap();  // the loader must check ranges before touching memory
  }
  return 0;
}
