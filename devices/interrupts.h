#pragma once
// Interrupt plumbing between devices and KVM: eventfds, irqfds (device ->
// guest interrupt without a trip through a vCPU), ioeventfds (guest write ->
// host notification without a vCPU exit to userspace), and GSI allocation.
#include <cstdint>
#include <mutex>
#include <optional>
#include <vector>

#include "devices/interrupt_line.h"
#include "kvm/kvm.h"
#include "base/unique_fd.h"

namespace skiff::devices {

class EventFd {
 public:
  explicit EventFd(bool nonblocking = true);
  int fd() const { return fd_.get(); }
  void signal(uint64_t n = 1) const;
  // Returns the counter and resets it; nullopt when it was zero (non-blocking).
  std::optional<uint64_t> consume() const;
  // Waits up to `timeout_ms` for a signal; true when one arrived.
  bool wait(int timeout_ms) const;

 private:
  UniqueFd fd_;
};

// An eventfd bound to a GSI with KVM_IRQFD; unbinds on destruction. The VM
// must outlive it.
class IrqFd : public InterruptLine {
 public:
  IrqFd(kvm::Vm& vm, uint32_t gsi);
  ~IrqFd() override;
  IrqFd(const IrqFd&) = delete;
  IrqFd& operator=(const IrqFd&) = delete;
  void trigger() override { event_.signal(); }
  uint32_t gsi() const { return gsi_; }

 private:
  kvm::Vm& vm_;
  uint32_t gsi_;
  EventFd event_;
};

// An eventfd KVM signals when the guest writes `len` bytes at `addr` (a port
// when `pio`), optionally only for one value. Unregisters on destruction.
class IoEventFd {
 public:
  IoEventFd(kvm::Vm& vm, uint64_t addr, uint32_t len, bool pio, std::optional<uint64_t> datamatch = std::nullopt);
  ~IoEventFd();
  IoEventFd(const IoEventFd&) = delete;
  IoEventFd& operator=(const IoEventFd&) = delete;
  const EventFd& event() const { return event_; }

 private:
  kvm::Vm& vm_;
  uint64_t addr_;
  uint32_t len_;
  bool pio_;
  std::optional<uint64_t> datamatch_;
  EventFd event_;
};

// Hands out IOAPIC pins for devices. The ISA IRQs a PC wires (timer, keyboard,
// COM ports, RTC...) are reserved; the rest are free.
class GsiAllocator {
 public:
  GsiAllocator(uint32_t first_free, uint32_t count);
  // Throws std::runtime_error when every GSI is taken.
  uint32_t allocate();
  void release(uint32_t gsi);
  uint32_t available() const;

 private:
  mutable std::mutex mutex_;
  uint32_t first_;
  std::vector<bool> used_;
};

// ISA IRQs Skiff's legacy devices use.
inline constexpr uint32_t kCom1Irq = 4;
inline constexpr uint32_t kI8042KeyboardIrq = 1;
// Virtio and other devices take GSIs from here up to the last IOAPIC pin.
inline constexpr uint32_t kFirstDeviceGsi = 5;

}  // namespace skiff::devices
