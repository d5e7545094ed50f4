#include "devices/interrupts.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <stdexcept>
#include <string>

#include "base/sys_error.h"

namespace skiff::devices {

EventFd::EventFd(bool nonblocking) {
  fd_ = UniqueFd(::eventfd(0, EFD_CLOEXEC | (nonblocking ? EFD_NONBLOCK : 0)));
  if (!fd_) throw_errno("eventfd");
}

void EventFd::signal(uint64_t n) const {
  // A full counter (EAGAIN) already means "signalled": nothing is lost.
  if (retry_eintr([&] { return ::write(fd_.get(), &n, sizeof n); }) < 0 && errno != EAGAIN) throw_errno("write eventfd");
}

std::optional<uint64_t> EventFd::consume() const {
  uint64_t v = 0;
  if (retry_eintr([&] { return ::read(fd_.get(), &v, sizeof v); }) < 0) {
    if (errno == EAGAIN) return std::nullopt;
    throw_errno("read eventfd");
  }
  return v;
}

bool EventFd::wait(int timeout_ms) const {
  pollfd p{fd_.get(), POLLIN, 0};
  int r = retry_eintr([&] { return ::poll(&p, 1, timeout_ms); });
  if (r < 0) throw_errno("poll eventfd");
  return r > 0;
}

IrqFd::IrqFd(kvm::Vm& vm, uint32_t gsi) : vm_(vm), gsi_(gsi) { vm_.register_irqfd(event_.fd(), gsi_); }

IrqFd::~IrqFd() {
  try {
    vm_.unregister_irqfd(event_.fd(), gsi_);
  } catch (...) {
    // The VM is going away; KVM drops the binding with it.
  }
}

IoEventFd::IoEventFd(kvm::Vm& vm, uint64_t addr, uint32_t len, bool pio, std::optional<uint64_t> datamatch)
    : vm_(vm), addr_(addr), len_(len), pio_(pio), datamatch_(datamatch) {
  vm_.register_ioeventfd(event_.fd(), addr_, len_, pio_, datamatch_ ? &*datamatch_ : nullptr);
}

IoEventFd::~IoEventFd() {
  try {
    vm_.unregister_ioeventfd(event_.fd(), addr_, len_, pio_, datamatch_ ? &*datamatch_ : nullptr);
  } catch (...) {
  }
}

GsiAllocator::GsiAllocator(uint32_t first_free, uint32_t count) : first_(first_free), used_(count, false) {}

uint32_t GsiAllocator::allocate() {
  std::lock_guard lock(mutex_);
  for (size_t i = 0; i < used_.size(); ++i) {
    if (!used_[i]) {
      used_[i] = true;
      return first_ + static_cast<uint32_t>(i);
    }
  }
  throw std::runtime_error("no free interrupt line (GSI) left: all " + std::to_string(used_.size()) + " are taken");
}

void GsiAllocator::release(uint32_t gsi) {
  std::lock_guard lock(mutex_);
  if (gsi >= first_ && gsi - first_ < used_.size()) used_[gsi - first_] = false;
}

uint32_t GsiAllocator::available() const {
  std::lock_guard lock(mutex_);
  uint32_t n = 0;
  for (bool u : used_) n += u ? 0 : 1;
  return n;
}

}  // namespace skiff::devices
