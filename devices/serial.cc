#include "devices/serial.h"

#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>

#include "base/sys_error.h"

namespace skiff::devices {
namespace {

// Register offsets; DLAB (LCR bit 7) turns 0/1 into the divisor latch.
constexpr uint64_t kRbrThr = 0;
constexpr uint64_t kIer = 1;
constexpr uint64_t kIirFcr = 2;
constexpr uint64_t kLcr = 3;
constexpr uint64_t kMcr = 4;
constexpr uint64_t kLsr = 5;
constexpr uint64_t kMsr = 6;
constexpr uint64_t kScr = 7;

constexpr uint8_t kIerRxData = 0x01;
constexpr uint8_t kIerThre = 0x02;
constexpr uint8_t kIerLineStatus = 0x04;
// Bits 4-7 do not exist on a 16550A; Linux's probe relies on them reading 0
// (0x40 would make it an XScale UART).
constexpr uint8_t kIerMask = 0x0f;

constexpr uint8_t kIirNone = 0x01;
constexpr uint8_t kIirThre = 0x02;
constexpr uint8_t kIirRxData = 0x04;
constexpr uint8_t kIirLineStatus = 0x06;
constexpr uint8_t kIirFifoEnabled = 0xc0;

constexpr uint8_t kFcrEnable = 0x01;
constexpr uint8_t kFcrClearRx = 0x02;

constexpr uint8_t kMcrMask = 0x1f;

constexpr uint8_t kLsrDataReady = 0x01;
constexpr uint8_t kLsrOverrun = 0x02;
constexpr uint8_t kLsrThre = 0x20;
constexpr uint8_t kLsrTemt = 0x40;

// DCD | DSR | CTS: a peer is attached and ready.
constexpr uint8_t kMsrIdle = 0xb0;

// Interrupt sources, as bits for edge detection.
constexpr uint8_t kSrcLineStatus = 0x1;
constexpr uint8_t kSrcRxData = 0x2;
constexpr uint8_t kSrcThre = 0x4;

}  // namespace

FdSerialOutput::FdSerialOutput(int fd) : fd_(fd) {
  struct stat st{};
  const int flags = ::fcntl(fd_, F_GETFL);
  if (::fstat(fd_, &st) == 0 && flags >= 0)
    poll_first_ = !S_ISREG(st.st_mode) && !(flags & O_NONBLOCK);
}

FdSerialOutput::FdSerialOutput(UniqueFd fd) : FdSerialOutput(fd.get()) { owned_ = std::move(fd); }

std::shared_ptr<FdSerialOutput> FdSerialOutput::open_file(const std::string& path) {
  UniqueFd fd(retry_eintr([&] { return ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644); }));
  if (!fd) throw_errno("open serial log " + path);
  return std::make_shared<FdSerialOutput>(std::move(fd));
}

size_t FdSerialOutput::write(std::span<const uint8_t> bytes) {
  size_t done = 0;
  while (done < bytes.size()) {
    if (poll_first_) {
      pollfd p{fd_, POLLOUT, 0};
      if (retry_eintr([&] { return ::poll(&p, 1, 0); }) != 1) break;
      if ((p.revents & (POLLERR | POLLHUP | POLLNVAL)) || !(p.revents & POLLOUT)) break;
    }
    // POLLOUT on a pipe promises room for PIPE_BUF bytes, not more.
    const size_t chunk = std::min<size_t>(bytes.size() - done, PIPE_BUF);
    const ssize_t n = retry_eintr([&] { return ::write(fd_, bytes.data() + done, chunk); });
    // EAGAIN, EPIPE, EIO...: the rest is dropped rather than stalling a vCPU.
    if (n <= 0) break;
    done += static_cast<size_t>(n);
  }
  return done;
}

Serial::Serial(std::shared_ptr<SerialOutput> out, std::shared_ptr<InterruptLine> irq)
    : out_(std::move(out)), irq_(std::move(irq)) {}

uint8_t Serial::active_sources_locked() const {
  uint8_t s = 0;
  if ((ier_ & kIerLineStatus) && overrun_) s |= kSrcLineStatus;
  if ((ier_ & kIerRxData) && rx_count_ > 0) s |= kSrcRxData;
  if ((ier_ & kIerThre) && thre_pending_) s |= kSrcThre;
  return s;
}

size_t Serial::push_rx_locked(std::span<const uint8_t> bytes) {
  const size_t n = std::min(bytes.size(), kRxCapacity - rx_count_);
  for (size_t i = 0; i < n; ++i) rx_[(rx_head_ + rx_count_ + i) % kRxCapacity] = bytes[i];
  rx_count_ += n;
  if (n < bytes.size()) overrun_ = true;
  rx_bytes_.fetch_add(n, std::memory_order_relaxed);
  rx_dropped_.fetch_add(bytes.size() - n, std::memory_order_relaxed);
  return n;
}

uint8_t Serial::pop_rx_locked() {
  // An empty RBR reads as 0 (real hardware returns the stale byte).
  if (rx_count_ == 0) return 0;
  const uint8_t b = rx_[rx_head_];
  rx_head_ = (rx_head_ + 1) % kRxCapacity;
  --rx_count_;
  return b;
}

uint8_t Serial::read_register_locked(uint64_t offset) {
  switch (offset) {
    case kRbrThr:
      return dlab_locked() ? dll_ : pop_rx_locked();
    case kIer:
      return dlab_locked() ? dlm_ : ier_;
    case kIirFcr: {
      // The IIR is readable whatever DLAB says; Linux's probe reads it with
      // LCR=0x80/0xbf to rule out EFR-bearing UARTs, which needs it nonzero.
      const uint8_t active = active_sources_locked();
      uint8_t iir = kIirNone;
      if (active & kSrcLineStatus) {
        iir = kIirLineStatus;
      } else if (active & kSrcRxData) {
        iir = kIirRxData;
      } else if (active & kSrcThre) {
        iir = kIirThre;
        // Reading IIR acknowledges THRE only when THRE is what it reports.
        thre_pending_ = false;
      }
      return iir | (fifo_enabled_ ? kIirFifoEnabled : 0);
    }
    case kLcr:
      return lcr_;
    case kMcr:
      return mcr_;
    case kLsr: {
      uint8_t lsr = kLsrThre | kLsrTemt;
      if (rx_count_ > 0) lsr |= kLsrDataReady;
      if (overrun_) lsr |= kLsrOverrun;
      overrun_ = false;
      return lsr;
    }
    case kMsr:
      if (loopback_locked()) {
        // Loopback wires DTR->DSR, RTS->CTS, OUT1->RI, OUT2->DCD; Linux's
        // autoconfig writes MCR=LOOP|OUT2|RTS and expects 0x90 here.
        return static_cast<uint8_t>(((mcr_ & 0x01) << 5) | ((mcr_ & 0x02) << 3) | ((mcr_ & 0x04) << 4) |
                                    ((mcr_ & 0x08) << 4));
      }
      return kMsrIdle;
    case kScr:
      return scr_;
    default:
      return 0xff;
  }
}

bool Serial::write_register_locked(uint64_t offset, uint8_t value) {
  switch (offset) {
    case kRbrThr:
      if (dlab_locked()) {
        dll_ = value;
        return false;
      }
      // Writing THR acknowledges THRE; the transmitter then empties at once
      // and raises it again, which the caller sees as a new edge.
      thre_pending_ = true;
      if (loopback_locked()) {
        push_rx_locked({&value, 1});
        return false;
      }
      return true;
    case kIer: {
      if (dlab_locked()) {
        dlm_ = value;
        return false;
      }
      const uint8_t old = ier_;
      ier_ = value & kIerMask;
      // A 16550 raises THRE when it is enabled while THR is empty (always, here).
      // Linux's startup checks for exactly this to decide on UART_BUG_THRE.
      if (!(old & kIerThre) && (ier_ & kIerThre)) thre_pending_ = true;
      return false;
    }
    case kIirFcr: {
      // FCR is written whatever DLAB says. Changing the enable bit flushes the
      // FIFOs on a 16550A; so does CLEAR_RCVR, which only counts with enable set.
      const bool enable = (value & kFcrEnable) != 0;
      if (enable != fifo_enabled_ || (enable && (value & kFcrClearRx))) clear_rx_locked();
      fifo_enabled_ = enable;
      return false;
    }
    case kLcr:
      lcr_ = value;
      return false;
    case kMcr:
      mcr_ = value & kMcrMask;
      return false;
    case kScr:
      scr_ = value;
      return false;
    default:  // LSR and MSR are read-only here (factory test registers).
      return false;
  }
}

void Serial::read(uint64_t offset, std::span<uint8_t> data) {
  if (data.empty()) return;
  // Wider accesses act on the low byte; the rest read as 0. Offsets past the
  // UART float high like an unclaimed ISA port.
  std::fill(data.begin(), data.end(), offset < kLength ? 0x00 : 0xff);
  if (offset >= kLength) return;
  // A read never makes a new source pending, so it never triggers the line.
  std::lock_guard lock(mutex_);
  data[0] = read_register_locked(offset);
}

void Serial::write(uint64_t offset, std::span<const uint8_t> data) {
  if (data.empty() || offset >= kLength) return;
  const uint8_t value = data[0];
  std::unique_lock lock(mutex_);
  // A THR write acknowledges THRE before re-raising it, so measure the edge
  // from the acknowledged state.
  if (offset == kRbrThr && !dlab_locked()) thre_pending_ = false;
  const uint8_t before = active_sources_locked();
  const bool send = write_register_locked(offset, value);
  const bool fire = (active_sources_locked() & ~before) != 0;
  if (send) {
    // Taking tx_mutex_ before dropping mutex_ keeps sink order equal to THR
    // order when several vCPUs write at once.
    std::unique_lock tx(tx_mutex_);
    lock.unlock();
    transmit(value);
  } else {
    lock.unlock();
  }
  if (fire && irq_) irq_->trigger();
}

void Serial::transmit(uint8_t byte) {
  const size_t taken = out_ ? std::min<size_t>(out_->write({&byte, 1}), 1) : 1;
  tx_bytes_.fetch_add(taken, std::memory_order_relaxed);
  tx_dropped_.fetch_add(1 - taken, std::memory_order_relaxed);
}

size_t Serial::enqueue_input(std::span<const uint8_t> bytes) {
  if (bytes.empty()) return 0;
  std::unique_lock lock(mutex_);
  const uint8_t before = active_sources_locked();
  const size_t n = push_rx_locked(bytes);
  const bool fire = (active_sources_locked() & ~before) != 0;
  lock.unlock();
  if (fire && irq_) irq_->trigger();
  return n;
}

SerialStats Serial::stats() const {
  return SerialStats{
      .tx_bytes = tx_bytes_.load(std::memory_order_relaxed),
      .tx_dropped = tx_dropped_.load(std::memory_order_relaxed),
      .rx_bytes = rx_bytes_.load(std::memory_order_relaxed),
      .rx_dropped = rx_dropped_.load(std::memory_order_relaxed),
  };
}

}  // namespace skiff::devices
