#pragma once
// An edge-triggered interrupt towards the guest. In the VMM it is an irqfd on
// a GSI of the in-kernel IOAPIC (devices/interrupts.h); tests use a counter.
namespace skiff::devices {

class InterruptLine {
 public:
  virtual ~InterruptLine() = default;
  virtual void trigger() = 0;
};

}  // namespace skiff::devices
