#pragma once
// A window of guest-physical address space whose pages are host file pages
// mapped on demand: virtio-fs DAX (virtio 1.2 section 5.11.6.2, a virtio
// shared memory region). The guest maps file ranges into it with FUSE
// SETUPMAPPING and drops them with REMOVEMAPPING; its page cache for those
// files is then the host's.
//
// Host side: one PROT_NONE reservation of the whole window (no memory is
// committed), registered as a KVM memslot; map() puts a MAP_SHARED|MAP_FIXED
// file mapping over part of it, unmap() puts the PROT_NONE reservation back.
// KVM follows the host page tables through its MMU notifiers. A guest access
// to a part not mapped faults in KVM_RUN (EFAULT): it ends that guest, as in
// QEMU, and touches nothing of the host's.
#include <cstdint>
#include <span>

#include "memory/guest_address.h"

namespace skiff {
namespace kvm {
class Vm;
}

class DaxWindow {
 public:
  // Throws std::system_error; `size` and `base` must be 2 MiB aligned.
  DaxWindow(kvm::Vm& vm, uint32_t slot, GuestAddress base, uint64_t size);
  ~DaxWindow();
  DaxWindow(const DaxWindow&) = delete;
  DaxWindow& operator=(const DaxWindow&) = delete;

  GuestAddress base() const { return base_; }
  uint32_t slot() const { return slot_; }
  uint64_t size() const { return size_; }

  // Maps [file_offset, file_offset + len) of `fd` at `offset` into the
  // window. Returns 0 or -errno: -EINVAL for a range outside the window or
  // not page aligned; the mmap() error otherwise. A mapping already there is
  // replaced.
  int map(uint64_t offset, uint64_t len, int fd, uint64_t file_offset, bool writable);
  // Puts the reservation back over [offset, offset + len); 0 or -errno.
  int unmap(uint64_t offset, uint64_t len);
  // The window as the guest sees it, for tests: touching a part that is not
  // mapped faults (SIGSEGV), as the guest's access faults in KVM.
  std::span<const uint8_t> host_view() const { return {host_, size_}; }

 private:
  bool in_window(uint64_t offset, uint64_t len) const;

  kvm::Vm& vm_;  // must outlive the window
  uint32_t slot_;
  GuestAddress base_;
  uint64_t size_;
  uint8_t* host_ = nullptr;
};

}  // namespace skiff
