#include "memory/dax_window.h"

#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <system_error>

#include "kvm/kvm.h"

namespace skiff {
namespace {

constexpr uint64_t kAlign = 2ull << 20;
constexpr uint64_t kPage = 4096;

}  // namespace

DaxWindow::DaxWindow(kvm::Vm& vm, uint32_t slot, GuestAddress base, uint64_t size)
    : vm_(vm), slot_(slot), base_(base), size_(size) {
  if (size == 0 || size % kAlign || base.value() % kAlign)
    throw std::system_error(EINVAL, std::generic_category(), "DAX window must be 2 MiB aligned");
  void* p = ::mmap(nullptr, size, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED) throw std::system_error(errno, std::generic_category(), "reserve DAX window");
  host_ = static_cast<uint8_t*>(p);
  try {
    vm.set_user_memory_region(slot, base.value(), size, host_);
  } catch (...) {
    ::munmap(host_, size_);
    throw;
  }
}

DaxWindow::~DaxWindow() {
  // Delete the memslot first, so its number can serve another window (device
  // hot-remove); were that to fail, KVM faults on the missing host pages
  // instead of reaching anything else.
  try {
    vm_.set_user_memory_region(slot_, base_.value(), 0, nullptr);
  } catch (const std::system_error&) {
  }
  ::munmap(host_, size_);
}

bool DaxWindow::in_window(uint64_t offset, uint64_t len) const {
  return len > 0 && offset % kPage == 0 && len % kPage == 0 && offset <= size_ && len <= size_ - offset;
}

int DaxWindow::map(uint64_t offset, uint64_t len, int fd, uint64_t file_offset, bool writable) {
  if (!in_window(offset, len) || file_offset % kPage) return -EINVAL;
  const int prot = PROT_READ | (writable ? PROT_WRITE : 0);
  void* p = ::mmap(host_ + offset, len, prot, MAP_SHARED | MAP_FIXED, fd, static_cast<off_t>(file_offset));
  if (p == MAP_FAILED) {
    const int err = errno;
    // A failed MAP_FIXED may have dropped what was there: put the reservation back.
    ::mmap(host_ + offset, len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED, -1, 0);
    return -err;
  }
  return 0;
}

int DaxWindow::unmap(uint64_t offset, uint64_t len) {
  if (!in_window(offset, len)) return -EINVAL;
  void* p = ::mmap(host_ + offset, len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED, -1, 0);
  return p == MAP_FAILED ? -errno : 0;
}

}  // namespace skiff
