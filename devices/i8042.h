#pragma once
// Just enough of an i8042 keyboard controller for a guest to reboot through it
// (`reboot=k`: command 0xFE on port 0x64) and for Linux's i8042/atkbd probing
// to finish quickly, after Firecracker's model. Registered as one device at
// port 0x60, length 5: offset 0 is the data port 0x60, offset 4 the
// status/command port 0x64; offsets 1-3 read 0 and ignore writes.
//
// There is no AUX (mouse) port: the AUX self-test answers "clock line stuck"
// so Linux gives up on it at once. Boot with i8042.noaux anyway to skip the
// probe. Bytes for the keyboard are acknowledged (0xFA) as a dumb keyboard
// would, with IRQ 1 raised when the guest enabled the keyboard interrupt.
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <span>

#include "devices/bus.h"
#include "devices/interrupt_line.h"

namespace skiff::devices {

class I8042 final : public BusDevice {
 public:
  static constexpr uint64_t kBase = 0x60;
  static constexpr uint64_t kLength = 5;
  static constexpr uint64_t kDataOffset = 0;
  static constexpr uint64_t kCommandOffset = 4;

  // `on_reset` runs on the vCPU thread that wrote 0xFE, without the device's
  // lock held; it should only ask the VMM to stop or restart the VM. `kbd_irq`
  // (IRQ 1) may be null.
  explicit I8042(std::function<void()> on_reset, std::shared_ptr<InterruptLine> kbd_irq = nullptr);

  void read(uint64_t offset, std::span<uint8_t> data) override;
  void write(uint64_t offset, std::span<const uint8_t> data) override;

  // Types Ctrl+Alt+Del (scancode set 2 make codes, as Firecracker sends) so a
  // guest can shut down cleanly. False when the output buffer lacks room.
  bool send_ctrl_alt_del();

  uint64_t reset_count() const;

 private:
  static constexpr size_t kBufferSize = 16;

  uint8_t status_locked() const;
  // Returns false, pushing nothing, when `bytes` does not fit.
  bool push_locked(std::span<const uint8_t> bytes);
  void flush_locked() { head_ = count_ = 0; }
  // Whether data just queued for the keyboard should raise IRQ 1.
  bool kbd_irq_enabled_locked() const;
  // Returns whether the guest asked for a CPU reset.
  bool write_command_locked(uint8_t cmd);
  // Returns whether the keyboard interrupt should fire.
  bool write_data_locked(uint8_t value);

  const std::function<void()> on_reset_;
  const std::shared_ptr<InterruptLine> kbd_irq_;

  mutable std::mutex mutex_;
  uint8_t ctr_;                    // controller configuration byte
  uint8_t outp_ = 0x01;            // output port; bit 0 is the (inactive) reset line
  uint8_t pending_command_ = 0;    // command waiting for its parameter on port 0x60
  bool last_write_command_ = false;
  uint64_t resets_ = 0;

  uint8_t buffer_[kBufferSize] = {};  // bytes for the guest to read at port 0x60
  size_t head_ = 0;
  size_t count_ = 0;
};

}  // namespace skiff::devices
