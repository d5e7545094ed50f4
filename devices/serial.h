#pragma once
// A 16550A UART as a guest console (COM1: port 0x3f8, length 8, ISA IRQ 4),
// modelled closely enough for Linux's 8250 driver to probe it as a 16550A and
// drive it by interrupts. The transmitter drains instantly, so THRE and TEMT
// are always set and every byte written to THR goes straight to the sink.
//
// Deliberate simplifications:
// - OUT2 does not gate the interrupt (as in Firecracker / Cloud Hypervisor):
//   the line is never shared and some guests never set OUT2.
// - The receiver is a bounded buffer of kRxCapacity bytes whether or not the
//   guest enabled the FIFO, so a paste is not lost to a 1- or 16-byte FIFO.
//   Bytes that do not fit are dropped, counted, and reported as LSR.OE.
// - No modem-status deltas: MSR's low nibble reads 0 and the modem-status
//   interrupt never fires; no character-timeout IIR (0x0C), RX is always 0x04.
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <span>
#include <string>

#include "devices/bus.h"
#include "devices/interrupt_line.h"
#include "base/unique_fd.h"

namespace skiff::devices {

// Where the guest's console output goes. write() is called from vCPU threads
// without the device's state lock but under its transmit lock, one call at a
// time and in THR order. It must not block for long and must not call back
// into the Serial it is attached to (that would deadlock).
class SerialOutput {
 public:
  virtual ~SerialOutput() = default;
  // Returns how many leading bytes were taken; the device counts the rest as
  // dropped.
  virtual size_t write(std::span<const uint8_t> bytes) = 0;
};

// Accepts and discards everything (fuzzing, headless guests).
class NullSerialOutput final : public SerialOutput {
 public:
  size_t write(std::span<const uint8_t> bytes) override { return bytes.size(); }
};

// Writes to a file descriptor: stdout, a log file, a pty. A vCPU must never
// block forever behind a reader that stopped reading, so bytes are dropped
// instead when the fd is full (EAGAIN, or poll() says not writable on a
// blocking pipe/tty) or broken (EPIPE, hung-up tty). The fd's status flags are
// left alone: setting O_NONBLOCK on an inherited stdout would leak into the
// shell that shares it. Run the VMM with SIGPIPE ignored: the POLLERR check
// avoids writing to a pipe with no reader, but a reader can go away between
// the poll and the write.
class FdSerialOutput final : public SerialOutput {
 public:
  // Borrows `fd` (e.g. STDOUT_FILENO); the caller keeps it open.
  explicit FdSerialOutput(int fd);
  // Owns `fd`.
  explicit FdSerialOutput(UniqueFd fd);
  // Opens (creating, appending) a log file; throws std::system_error.
  static std::shared_ptr<FdSerialOutput> open_file(const std::string& path);

  size_t write(std::span<const uint8_t> bytes) override;

 private:
  UniqueFd owned_;
  int fd_ = -1;
  // Regular files and O_NONBLOCK fds cannot block indefinitely; anything else
  // gets a zero-timeout poll() before each write.
  bool poll_first_ = true;
};

struct SerialStats {
  uint64_t tx_bytes = 0;    // taken by the sink
  uint64_t tx_dropped = 0;  // written to THR but refused by the sink
  uint64_t rx_bytes = 0;    // accepted into the receive buffer (input or loopback)
  uint64_t rx_dropped = 0;  // did not fit in the receive buffer
};

class Serial final : public BusDevice {
 public:
  static constexpr uint64_t kCom1Base = 0x3f8;
  static constexpr uint64_t kLength = 8;
  // A few KiB so a pasted command line survives a guest that reads slowly.
  static constexpr size_t kRxCapacity = 4096;
  // 115200 / 12 = 9600 bps, the value Firecracker and Cloud Hypervisor reset to.
  static constexpr uint16_t kDefaultDivisor = 12;

  // `out` may be null (output discarded, still counted as tx_bytes); `irq`
  // may be null (a polled console).
  Serial(std::shared_ptr<SerialOutput> out, std::shared_ptr<InterruptLine> irq);

  void read(uint64_t offset, std::span<uint8_t> data) override;
  void write(uint64_t offset, std::span<const uint8_t> data) override;

  // Appends guest input (from a stdin/pty reader thread). Returns how many
  // bytes were accepted; the rest are dropped, counted and flagged as overrun.
  size_t enqueue_input(std::span<const uint8_t> bytes);

  SerialStats stats() const;

 private:
  // Bitmask of interrupt sources that are both pending and enabled.
  uint8_t active_sources_locked() const;
  // Appends to the receive ring; returns bytes accepted.
  size_t push_rx_locked(std::span<const uint8_t> bytes);
  uint8_t pop_rx_locked();
  void clear_rx_locked() { rx_head_ = rx_count_ = 0; }
  bool dlab_locked() const { return (lcr_ & 0x80) != 0; }
  bool loopback_locked() const { return (mcr_ & 0x10) != 0; }
  uint8_t read_register_locked(uint64_t offset);
  // Returns whether the byte must go to the sink.
  bool write_register_locked(uint64_t offset, uint8_t value);
  void transmit(uint8_t byte);

  const std::shared_ptr<SerialOutput> out_;
  const std::shared_ptr<InterruptLine> irq_;

  // Guards the register state below. Lock order: mutex_, then tx_mutex_.
  std::mutex mutex_;
  // Serialises sink calls so concurrent THR writes reach the sink in the order
  // they were made, without holding mutex_ across a possibly slow write.
  std::mutex tx_mutex_;

  uint8_t ier_ = 0;
  uint8_t lcr_ = 0x03;  // 8N1
  uint8_t mcr_ = 0x08;  // OUT2, as Firecracker resets it
  uint8_t scr_ = 0;
  uint8_t dll_ = kDefaultDivisor & 0xff;
  uint8_t dlm_ = kDefaultDivisor >> 8;
  bool fifo_enabled_ = false;
  bool overrun_ = false;       // LSR.OE, cleared by reading LSR
  bool thre_pending_ = false;  // THRE interrupt latched, see write()

  uint8_t rx_[kRxCapacity] = {};
  size_t rx_head_ = 0;
  size_t rx_count_ = 0;

  std::atomic<uint64_t> tx_bytes_{0};
  std::atomic<uint64_t> tx_dropped_{0};
  std::atomic<uint64_t> rx_bytes_{0};
  std::atomic<uint64_t> rx_dropped_{0};
};

}  // namespace skiff::devices
