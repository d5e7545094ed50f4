#include "devices/i8042.h"

#include <algorithm>
#include <array>
#include <utility>

namespace skiff::devices {
namespace {

// Controller commands (port 0x64).
constexpr uint8_t kCmdReadCtr = 0x20;
constexpr uint8_t kCmdWriteCtr = 0x60;
constexpr uint8_t kCmdAuxDisable = 0xa7;
constexpr uint8_t kCmdAuxEnable = 0xa8;
constexpr uint8_t kCmdAuxTest = 0xa9;
constexpr uint8_t kCmdSelfTest = 0xaa;
constexpr uint8_t kCmdKbdTest = 0xab;
constexpr uint8_t kCmdKbdDisable = 0xad;
constexpr uint8_t kCmdKbdEnable = 0xae;
constexpr uint8_t kCmdReadOutp = 0xd0;
constexpr uint8_t kCmdWriteOutp = 0xd1;
constexpr uint8_t kCmdWriteKbdBuffer = 0xd2;
constexpr uint8_t kCmdResetCpu = 0xfe;

constexpr uint8_t kSelfTestOk = 0x55;
constexpr uint8_t kInterfaceOk = 0x00;
// "Clock line stuck low": Linux's i8042_check_aux() takes any answer other than
// 0x00/0xfa/0xff as "no AUX port" without waiting for a timeout.
constexpr uint8_t kAuxAbsent = 0x01;

// Status register (read at port 0x64).
constexpr uint8_t kStrOutputFull = 0x01;
constexpr uint8_t kStrSystem = 0x04;
constexpr uint8_t kStrLastWasCommand = 0x08;
constexpr uint8_t kStrUnlocked = 0x10;

// Configuration byte.
constexpr uint8_t kCtrKbdInt = 0x01;
constexpr uint8_t kCtrSystem = 0x04;
constexpr uint8_t kCtrKbdDisable = 0x10;
constexpr uint8_t kCtrAuxDisable = 0x20;

// Keyboard commands (port 0x60) and replies.
constexpr uint8_t kKbdEcho = 0xee;
constexpr uint8_t kKbdGetId = 0xf2;
constexpr uint8_t kKbdReset = 0xff;
constexpr uint8_t kKbdAck = 0xfa;
constexpr uint8_t kKbdSelfTestPassed = 0xaa;

}  // namespace

I8042::I8042(std::function<void()> on_reset, std::shared_ptr<InterruptLine> kbd_irq)
    : on_reset_(std::move(on_reset)), kbd_irq_(std::move(kbd_irq)), ctr_(kCtrKbdInt | kCtrSystem) {}

uint8_t I8042::status_locked() const {
  uint8_t s = kStrUnlocked;
  if (count_ > 0) s |= kStrOutputFull;
  if (ctr_ & kCtrSystem) s |= kStrSystem;
  if (last_write_command_) s |= kStrLastWasCommand;
  return s;
}

bool I8042::push_locked(std::span<const uint8_t> bytes) {
  if (bytes.size() > kBufferSize - count_) return false;
  for (uint8_t b : bytes) buffer_[(head_ + count_++) % kBufferSize] = b;
  return true;
}

bool I8042::kbd_irq_enabled_locked() const { return (ctr_ & kCtrKbdInt) != 0; }

void I8042::read(uint64_t offset, std::span<uint8_t> data) {
  if (data.empty()) return;
  std::fill(data.begin(), data.end(), 0);
  bool fire = false;
  {
    std::lock_guard lock(mutex_);
    if (offset == kCommandOffset) {
      data[0] = status_locked();
    } else if (offset == kDataOffset && count_ > 0) {
      data[0] = buffer_[head_];
      head_ = (head_ + 1) % kBufferSize;
      --count_;
      // The guest takes one byte per interrupt; tell it there is another.
      fire = count_ > 0 && kbd_irq_enabled_locked();
    }
  }
  if (fire && kbd_irq_) kbd_irq_->trigger();
}

void I8042::write(uint64_t offset, std::span<const uint8_t> data) {
  if (data.empty()) return;
  bool fire = false;
  bool reset = false;
  {
    std::lock_guard lock(mutex_);
    if (offset == kCommandOffset) {
      reset = write_command_locked(data[0]);
    } else if (offset == kDataOffset) {
      fire = write_data_locked(data[0]);
    }
  }
  if (fire && kbd_irq_) kbd_irq_->trigger();
  if (reset && on_reset_) on_reset_();
}

bool I8042::write_command_locked(uint8_t cmd) {
  last_write_command_ = true;
  // A new command abandons one still waiting for its parameter.
  pending_command_ = 0;
  // Commands that answer replace whatever was unread, so the guest's next read
  // of port 0x60 is the answer.
  auto answer = [&](uint8_t byte) {
    flush_locked();
    push_locked({&byte, 1});
  };
  switch (cmd) {
    case kCmdReadCtr:
      answer(ctr_);
      break;
    case kCmdWriteCtr:
    case kCmdWriteOutp:
    case kCmdWriteKbdBuffer:
      pending_command_ = cmd;
      break;
    case kCmdAuxDisable:
      ctr_ |= kCtrAuxDisable;
      break;
    case kCmdAuxEnable:
      ctr_ &= ~kCtrAuxDisable;
      break;
    case kCmdAuxTest:
      answer(kAuxAbsent);
      break;
    case kCmdSelfTest:
      answer(kSelfTestOk);
      break;
    case kCmdKbdTest:
      answer(kInterfaceOk);
      break;
    case kCmdKbdDisable:
      ctr_ |= kCtrKbdDisable;
      break;
    case kCmdKbdEnable:
      ctr_ &= ~kCtrKbdDisable;
      break;
    case kCmdReadOutp:
      answer(outp_);
      break;
    case kCmdResetCpu:
      ++resets_;
      return true;
    default:
      break;
  }
  return false;
}

bool I8042::write_data_locked(uint8_t value) {
  last_write_command_ = false;
  const uint8_t command = std::exchange(pending_command_, 0);
  switch (command) {
    case kCmdWriteCtr:
      ctr_ = value;
      return false;
    case kCmdWriteOutp:
      outp_ = value;
      return false;
    case kCmdWriteKbdBuffer:
      flush_locked();
      push_locked({&value, 1});
      return kbd_irq_enabled_locked();
    default:
      break;
  }
  // A byte for the keyboard. Answer as an MF2 keyboard would, so atkbd's
  // probe gets its replies instead of waiting for timeouts.
  flush_locked();
  if (value == kKbdEcho) {
    push_locked(std::array<uint8_t, 1>{kKbdEcho});
  } else if (value == kKbdGetId) {
    push_locked(std::array<uint8_t, 3>{kKbdAck, 0xab, 0x83});
  } else if (value == kKbdReset) {
    push_locked(std::array<uint8_t, 2>{kKbdAck, kKbdSelfTestPassed});
  } else {
    push_locked(std::array<uint8_t, 1>{kKbdAck});
  }
  return kbd_irq_enabled_locked();
}

bool I8042::send_ctrl_alt_del() {
  // Ctrl (0x14), Alt (0x11), Del (0xe0 0x71): make codes only, as Firecracker.
  static constexpr std::array<uint8_t, 4> kSequence{0x14, 0x11, 0xe0, 0x71};
  bool fire = false;
  {
    std::lock_guard lock(mutex_);
    if (!push_locked(kSequence)) return false;
    fire = kbd_irq_enabled_locked();
  }
  if (fire && kbd_irq_) kbd_irq_->trigger();
  return true;
}

uint64_t I8042::reset_count() const {
  std::lock_guard lock(mutex_);
  return resets_;
}

}  // namespace skiff::devices
