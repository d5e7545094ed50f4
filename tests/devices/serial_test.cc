// Drives the 16550A model the way Linux's 8250 driver does (probe, startup,
// interrupt-driven TX/RX), plus the fd sinks and a random-access property.
#include "devices/serial.h"

#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <future>
#include <mutex>
#include <string>
#include <system_error>
#include <thread>
#include <tuple>
#include <vector>

#include <gtest/gtest.h>
// After gtest: it uses ::testing without including it.
#include <rapidcheck/gtest.h>

namespace skiff::devices {
namespace {

// Register offsets and bits, named as in Linux's include/uapi/linux/serial_reg.h.
constexpr uint64_t UART_RX = 0, UART_TX = 0, UART_DLL = 0, UART_IER = 1, UART_DLM = 1, UART_IIR = 2,
                   UART_FCR = 2, UART_LCR = 3, UART_MCR = 4, UART_LSR = 5, UART_MSR = 6, UART_SCR = 7;
constexpr uint8_t UART_IER_RDI = 0x01, UART_IER_THRI = 0x02, UART_IER_RLSI = 0x04;
constexpr uint8_t UART_IIR_NO_INT = 0x01, UART_IIR_THRI = 0x02, UART_IIR_RDI = 0x04, UART_IIR_RLSI = 0x06;
constexpr uint8_t UART_FCR_ENABLE_FIFO = 0x01, UART_FCR_CLEAR_RCVR = 0x02, UART_FCR_CLEAR_XMIT = 0x04;
constexpr uint8_t UART_FCR_TRIGGER_14 = 0xc0, UART_FCR7_64BYTE = 0x20;
constexpr uint8_t UART_LCR_DLAB = 0x80, UART_LCR_WLEN8 = 0x03;
constexpr uint8_t UART_MCR_DTR = 0x01, UART_MCR_RTS = 0x02, UART_MCR_OUT2 = 0x08, UART_MCR_LOOP = 0x10;
constexpr uint8_t UART_LSR_DR = 0x01, UART_LSR_OE = 0x02, UART_LSR_THRE = 0x20, UART_LSR_TEMT = 0x40;

class CountingLine final : public InterruptLine {
 public:
  void trigger() override { ++count; }
  std::atomic<int> count{0};
};

class RecordingSink final : public SerialOutput {
 public:
  size_t write(std::span<const uint8_t> bytes) override {
    std::lock_guard lock(mutex);
    if (refuse) return 0;
    received.insert(received.end(), bytes.begin(), bytes.end());
    return bytes.size();
  }
  std::vector<uint8_t> bytes() {
    std::lock_guard lock(mutex);
    return received;
  }
  std::string text() {
    auto b = bytes();
    return std::string(b.begin(), b.end());
  }
  std::mutex mutex;
  std::vector<uint8_t> received;
  bool refuse = false;
};

class SerialTest : public ::testing::Test {
 protected:
  void out(uint64_t offset, uint8_t value) { serial.write(offset, std::span<const uint8_t>(&value, 1)); }
  uint8_t in(uint64_t offset) {
    uint8_t v = 0x5a;
    serial.read(offset, std::span<uint8_t>(&v, 1));
    return v;
  }
  void enqueue(const std::string& s) {
    serial.enqueue_input(std::span(reinterpret_cast<const uint8_t*>(s.data()), s.size()));
  }
  // serial8250_do_set_termios + startup for 115200 8N1 with the FIFO on.
  void linux_init(uint8_t ier) {
    out(UART_LCR, UART_LCR_DLAB | UART_LCR_WLEN8);
    out(UART_DLL, 1);
    out(UART_DLM, 0);
    out(UART_LCR, UART_LCR_WLEN8);
    out(UART_FCR, UART_FCR_ENABLE_FIFO | UART_FCR_CLEAR_RCVR | UART_FCR_CLEAR_XMIT | UART_FCR_TRIGGER_14);
    out(UART_MCR, UART_MCR_DTR | UART_MCR_RTS | UART_MCR_OUT2);
    out(UART_IER, ier);
  }

  std::shared_ptr<RecordingSink> sink = std::make_shared<RecordingSink>();
  std::shared_ptr<CountingLine> irq = std::make_shared<CountingLine>();
  Serial serial{sink, irq};
};

TEST_F(SerialTest, ResetState) {
  EXPECT_EQ(in(UART_IER), 0);
  EXPECT_EQ(in(UART_IIR), UART_IIR_NO_INT);
  EXPECT_EQ(in(UART_LCR), 0x03);
  EXPECT_EQ(in(UART_MCR), UART_MCR_OUT2);
  EXPECT_EQ(in(UART_LSR), UART_LSR_THRE | UART_LSR_TEMT);
  EXPECT_EQ(in(UART_MSR), 0xb0);
  out(UART_LCR, UART_LCR_DLAB);
  EXPECT_EQ(in(UART_DLL) | (in(UART_DLM) << 8), Serial::kDefaultDivisor);
  EXPECT_EQ(irq->count, 0);
}

TEST_F(SerialTest, LinuxInitSequenceStoresDivisorAndEnablesFifo) {
  linux_init(UART_IER_RDI | UART_IER_RLSI);
  EXPECT_EQ(in(UART_LCR), UART_LCR_WLEN8);
  EXPECT_EQ(in(UART_MCR), UART_MCR_DTR | UART_MCR_RTS | UART_MCR_OUT2);
  EXPECT_EQ(in(UART_IER), UART_IER_RDI | UART_IER_RLSI);
  EXPECT_EQ(in(UART_IIR), 0xc0 | UART_IIR_NO_INT);
  out(UART_LCR, UART_LCR_DLAB | UART_LCR_WLEN8);
  EXPECT_EQ(in(UART_DLL), 1);
  EXPECT_EQ(in(UART_DLM), 0);
  EXPECT_EQ(irq->count, 0);
}

// serial8250's autoconfig(): IER scratch test, loopback test, FIFO detection
// and the 16650/16750/XScale exclusions, which must leave us a plain 16550A.
TEST_F(SerialTest, LinuxAutoconfigDetects16550A) {
  out(UART_IER, 0);
  EXPECT_EQ(in(UART_IER) & 0x0f, 0);
  out(UART_IER, 0x0f);
  EXPECT_EQ(in(UART_IER) & 0x0f, 0x0f);
  out(UART_IER, 0);

  const uint8_t save_mcr = in(UART_MCR);
  out(UART_MCR, UART_MCR_LOOP | 0x0a);
  EXPECT_EQ(in(UART_MSR) & 0xf0, 0x90);
  out(UART_MCR, save_mcr);

  out(UART_LCR, 0xbf);
  out(UART_FCR, 0);  // EFR on 16650s
  out(UART_LCR, 0);
  out(UART_FCR, UART_FCR_ENABLE_FIFO);
  EXPECT_EQ(in(UART_IIR) >> 6, 3) << "16550A FIFO bits";

  out(UART_LCR, UART_LCR_DLAB);
  EXPECT_NE(in(UART_IIR), 0) << "would look like an ST16C650V1 EFR";
  out(UART_LCR, 0xbf);
  EXPECT_NE(in(UART_IIR), 0) << "would look like an ST16C650V2 EFR";

  out(UART_LCR, 0);
  out(UART_FCR, UART_FCR_ENABLE_FIFO | UART_FCR7_64BYTE);
  const int status1 = in(UART_IIR) >> 5;
  out(UART_FCR, UART_FCR_ENABLE_FIFO);
  out(UART_LCR, UART_LCR_DLAB);
  out(UART_FCR, UART_FCR_ENABLE_FIFO | UART_FCR7_64BYTE);
  const int status2 = in(UART_IIR) >> 5;
  out(UART_FCR, UART_FCR_ENABLE_FIFO);
  out(UART_LCR, 0);
  EXPECT_FALSE(status1 == 6 && status2 == 7) << "would look like a 16750";

  out(UART_IER, 0x40);
  EXPECT_EQ(in(UART_IER) & 0x40, 0) << "UUE must not stick (XScale)";
  // Only the IER=0x0f scratch test raised anything (THRE, as on hardware).
  EXPECT_EQ(irq->count, 1);
}

TEST_F(SerialTest, ThrBytesReachSinkInOrder) {
  linux_init(0);
  for (char c : std::string("hello\n")) out(UART_TX, static_cast<uint8_t>(c));
  EXPECT_EQ(sink->text(), "hello\n");
  EXPECT_EQ(serial.stats().tx_bytes, 6u);
  EXPECT_EQ(serial.stats().tx_dropped, 0u);
  EXPECT_EQ(in(UART_LSR) & (UART_LSR_THRE | UART_LSR_TEMT), UART_LSR_THRE | UART_LSR_TEMT);
  EXPECT_EQ(irq->count, 0) << "THRE interrupt is disabled";
}

TEST_F(SerialTest, RefusedBytesAreCountedAsDropped) {
  sink->refuse = true;
  out(UART_TX, 'x');
  out(UART_TX, 'y');
  EXPECT_EQ(serial.stats().tx_bytes, 0u);
  EXPECT_EQ(serial.stats().tx_dropped, 2u);
}

TEST_F(SerialTest, NullSinkDiscardsAndCounts) {
  Serial s(nullptr, nullptr);
  const uint8_t b = 'z';
  s.write(UART_TX, std::span<const uint8_t>(&b, 1));
  EXPECT_EQ(s.stats().tx_bytes, 1u);
}

// serial8250_do_startup()'s UART_BUG_THRE and UART_BUG_TXEN checks: enabling
// THRI while THR is empty must raise THRE, again after a 0 -> THRI toggle.
TEST_F(SerialTest, EnablingThriRaisesThreEachTime) {
  linux_init(0);
  out(UART_IER, UART_IER_THRI);
  EXPECT_EQ(irq->count, 1);
  EXPECT_EQ(in(UART_LSR) & UART_LSR_TEMT, UART_LSR_TEMT);
  EXPECT_EQ(in(UART_IIR), 0xc0 | UART_IIR_THRI);
  EXPECT_EQ(in(UART_IIR), 0xc0 | UART_IIR_NO_INT) << "reading IIR acknowledged THRE";
  out(UART_IER, UART_IER_THRI);
  EXPECT_EQ(irq->count, 1) << "rewriting the same IER is not an enable";
  EXPECT_EQ(in(UART_IIR), 0xc0 | UART_IIR_NO_INT);
  out(UART_IER, 0);
  out(UART_IER, UART_IER_THRI);
  EXPECT_EQ(irq->count, 2);
  EXPECT_EQ(in(UART_IIR), 0xc0 | UART_IIR_THRI);
}

// serial8250_tx_chars(): on each THRE interrupt, read IIR, write a burst.
TEST_F(SerialTest, EveryThrWriteRaisesThreWhenEnabled) {
  linux_init(UART_IER_RDI | UART_IER_RLSI | UART_IER_THRI);
  EXPECT_EQ(irq->count, 1);
  EXPECT_EQ(in(UART_IIR) & 0x0f, UART_IIR_THRI);
  out(UART_TX, 'a');
  EXPECT_EQ(irq->count, 2);
  out(UART_TX, 'b');
  EXPECT_EQ(irq->count, 3);
  EXPECT_EQ(in(UART_IIR) & 0x0f, UART_IIR_THRI);
  EXPECT_EQ(in(UART_IIR) & 0x0f, UART_IIR_NO_INT);
  // __stop_tx(): with THRI masked a THR write neither reports nor triggers.
  out(UART_IER, UART_IER_RDI | UART_IER_RLSI);
  out(UART_TX, 'c');
  EXPECT_EQ(irq->count, 3);
  EXPECT_EQ(in(UART_IIR) & 0x0f, UART_IIR_NO_INT);
  EXPECT_EQ(sink->text(), "abc");
}

TEST_F(SerialTest, ReceivedBytesSetDataReadyAndInterrupt) {
  linux_init(UART_IER_RDI | UART_IER_RLSI);
  enqueue("ls\n");
  EXPECT_EQ(irq->count, 1);
  enqueue("-l");
  EXPECT_EQ(irq->count, 1) << "data was already pending: no new edge";
  EXPECT_EQ(in(UART_IIR), 0xc0 | UART_IIR_RDI);
  std::string got;
  while (in(UART_LSR) & UART_LSR_DR) got.push_back(static_cast<char>(in(UART_RX)));
  EXPECT_EQ(got, "ls\n-l");
  EXPECT_EQ(in(UART_IIR), 0xc0 | UART_IIR_NO_INT);
  EXPECT_EQ(in(UART_RX), 0) << "empty RBR";
  EXPECT_EQ(serial.stats().rx_bytes, 5u);
  enqueue("x");
  EXPECT_EQ(irq->count, 2) << "buffer had drained: new edge";
}

TEST_F(SerialTest, InputQueuedWhileMaskedTriggersOnEnable) {
  linux_init(0);
  enqueue("abc");
  EXPECT_EQ(irq->count, 0);
  EXPECT_EQ(in(UART_IIR), 0xc0 | UART_IIR_NO_INT) << "IIR only reports enabled sources";
  EXPECT_TRUE(in(UART_LSR) & UART_LSR_DR);
  out(UART_IER, UART_IER_RDI);
  EXPECT_EQ(irq->count, 1);
}

TEST_F(SerialTest, ReceiveOutranksTransmitInIir) {
  linux_init(UART_IER_RDI | UART_IER_THRI);
  enqueue("k");
  EXPECT_EQ(in(UART_IIR) & 0x0f, UART_IIR_RDI);
  EXPECT_EQ(in(UART_IIR) & 0x0f, UART_IIR_RDI) << "THRE is not acknowledged while RX is reported";
  EXPECT_EQ(in(UART_RX), 'k');
  EXPECT_EQ(in(UART_IIR) & 0x0f, UART_IIR_THRI);
  EXPECT_EQ(in(UART_IIR) & 0x0f, UART_IIR_NO_INT);
}

TEST_F(SerialTest, OverflowDropsCountsAndReportsOverrun) {
  linux_init(UART_IER_RDI | UART_IER_RLSI);
  std::vector<uint8_t> big(Serial::kRxCapacity + 100);
  for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<uint8_t>(i);
  EXPECT_EQ(serial.enqueue_input(big), Serial::kRxCapacity);
  EXPECT_EQ(serial.stats().rx_bytes, Serial::kRxCapacity);
  EXPECT_EQ(serial.stats().rx_dropped, 100u);
  EXPECT_EQ(in(UART_IIR) & 0x0f, UART_IIR_RLSI) << "line status outranks data";
  EXPECT_EQ(in(UART_LSR), UART_LSR_THRE | UART_LSR_TEMT | UART_LSR_DR | UART_LSR_OE);
  EXPECT_EQ(in(UART_LSR) & UART_LSR_OE, 0) << "reading LSR clears OE";
  EXPECT_EQ(in(UART_IIR) & 0x0f, UART_IIR_RDI);
  for (size_t i = 0; i < Serial::kRxCapacity; ++i) ASSERT_EQ(in(UART_RX), static_cast<uint8_t>(i));
  EXPECT_EQ(in(UART_LSR) & UART_LSR_DR, 0);
}

TEST_F(SerialTest, FcrClearsReceiver) {
  linux_init(0);
  enqueue("stale");
  out(UART_FCR, UART_FCR_ENABLE_FIFO | UART_FCR_CLEAR_RCVR);
  EXPECT_EQ(in(UART_LSR) & UART_LSR_DR, 0);
  enqueue("a");
  out(UART_FCR, UART_FCR_ENABLE_FIFO);  // no change, no clear
  EXPECT_EQ(in(UART_RX), 'a');
  enqueue("b");
  out(UART_FCR, 0);  // disabling the FIFO flushes it
  EXPECT_EQ(in(UART_LSR) & UART_LSR_DR, 0);
  EXPECT_EQ(in(UART_IIR), UART_IIR_NO_INT) << "no FIFO bits once disabled";
}

TEST_F(SerialTest, LoopbackEchoesAndMirrorsModemLines) {
  linux_init(UART_IER_RDI);
  out(UART_MCR, UART_MCR_LOOP | UART_MCR_OUT2 | UART_MCR_RTS);
  EXPECT_EQ(in(UART_MSR) & 0xf0, 0x90);
  out(UART_MCR, UART_MCR_LOOP | UART_MCR_DTR | 0x04);
  EXPECT_EQ(in(UART_MSR) & 0xf0, 0x60) << "DTR->DSR, OUT1->RI";
  out(UART_TX, 'q');
  EXPECT_TRUE(sink->bytes().empty()) << "loopback bytes stay inside the UART";
  EXPECT_EQ(irq->count, 1);
  EXPECT_TRUE(in(UART_LSR) & UART_LSR_DR);
  EXPECT_EQ(in(UART_RX), 'q');
  out(UART_MCR, UART_MCR_DTR | UART_MCR_RTS | UART_MCR_OUT2);
  EXPECT_EQ(in(UART_MSR), 0xb0);
  out(UART_TX, 'r');
  EXPECT_EQ(sink->text(), "r");
}

TEST_F(SerialTest, ScratchRegisterStoresAByte) {
  for (int v : {0x00, 0x5a, 0xa5, 0xff}) {
    out(UART_SCR, static_cast<uint8_t>(v));
    EXPECT_EQ(in(UART_SCR), v);
  }
}

TEST_F(SerialTest, DlabRedirectsOffsetsZeroAndOne) {
  out(UART_IER, UART_IER_RDI);
  out(UART_LCR, UART_LCR_DLAB);
  out(UART_DLL, 0x34);
  out(UART_DLM, 0x12);
  EXPECT_TRUE(sink->bytes().empty()) << "DLL write is not a THR write";
  enqueue("z");
  EXPECT_EQ(in(UART_DLL), 0x34) << "DLL read does not pop RBR";
  EXPECT_EQ(in(UART_DLM), 0x12);
  out(UART_LCR, 0x03);
  EXPECT_EQ(in(UART_IER), UART_IER_RDI);
  EXPECT_EQ(in(UART_RX), 'z');
}

TEST_F(SerialTest, WideAccessesUseTheLowByte) {
  const std::array<uint8_t, 4> word{'A', 'B', 'C', 'D'};
  serial.write(UART_TX, word);
  serial.write(UART_TX, std::span(word).first(2));
  EXPECT_EQ(sink->text(), "AA");
  std::array<uint8_t, 8> wide;
  wide.fill(0xee);
  serial.read(UART_LSR, wide);
  EXPECT_EQ(wide[0], UART_LSR_THRE | UART_LSR_TEMT);
  for (size_t i = 1; i < wide.size(); ++i) EXPECT_EQ(wide[i], 0);
  serial.write(UART_TX, std::span<const uint8_t>());
  serial.read(UART_LSR, std::span<uint8_t>());
  EXPECT_EQ(sink->text(), "AA");
}

TEST_F(SerialTest, OffsetsPastTheUartAreInert) {
  for (uint64_t off : {uint64_t{8}, uint64_t{9}, uint64_t{0x100}, ~uint64_t{0}}) {
    out(off, 'x');
    std::array<uint8_t, 2> v{0, 0};
    serial.read(off, v);
    EXPECT_EQ(v[0], 0xff);
    EXPECT_EQ(v[1], 0xff);
  }
  EXPECT_TRUE(sink->bytes().empty());
  EXPECT_EQ(in(UART_LSR), UART_LSR_THRE | UART_LSR_TEMT);
  EXPECT_EQ(irq->count, 0);
}

TEST_F(SerialTest, WritesToStatusRegistersAreIgnored) {
  out(UART_LSR, 0xff);
  out(UART_MSR, 0x00);
  EXPECT_EQ(in(UART_LSR), UART_LSR_THRE | UART_LSR_TEMT);
  EXPECT_EQ(in(UART_MSR), 0xb0);
}

// A stdin thread feeding input and two vCPUs transmitting, as in the VMM.
TEST(SerialConcurrency, InputAndOutputThreadsInterleave) {
  auto sink = std::make_shared<RecordingSink>();
  Serial serial(sink, std::make_shared<CountingLine>());
  constexpr int kBytes = 20000;
  std::thread feeder([&] {
    for (int i = 0; i < kBytes;) {
      const uint8_t b = static_cast<uint8_t>(i);
      if (serial.enqueue_input(std::span(&b, 1)) == 1) ++i;
      else std::this_thread::yield();
    }
  });
  auto writer = [&](uint8_t tag) {
    for (int i = 0; i < 5000; ++i) serial.write(UART_TX, std::span(&tag, 1));
  };
  std::thread w1(writer, 'a'), w2(writer, 'b');
  std::vector<uint8_t> got;
  while (got.size() < kBytes) {
    uint8_t lsr = 0;
    serial.read(UART_LSR, std::span(&lsr, 1));
    if (lsr & UART_LSR_DR) {
      uint8_t b = 0;
      serial.read(UART_RX, std::span(&b, 1));
      got.push_back(b);
    }
  }
  feeder.join();
  w1.join();
  w2.join();
  for (int i = 0; i < kBytes; ++i) ASSERT_EQ(got[i], static_cast<uint8_t>(i)) << "at " << i;
  EXPECT_EQ(sink->bytes().size(), 10000u);
  EXPECT_EQ(serial.stats().tx_bytes, 10000u);
  EXPECT_EQ(serial.stats().rx_bytes, static_cast<uint64_t>(kBytes));
}

// --- fd sinks ---

struct Pipe {
  Pipe() {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) throw std::system_error(errno, std::generic_category(), "pipe2");
    r.reset(fds[0]);
    w.reset(fds[1]);
  }
  void fill() {
    const int flags = ::fcntl(w.get(), F_GETFL);
    ::fcntl(w.get(), F_SETFL, flags | O_NONBLOCK);
    std::array<uint8_t, 4096> junk{};
    while (::write(w.get(), junk.data(), junk.size()) > 0) {
    }
    std::array<uint8_t, 1> one{};
    while (::write(w.get(), one.data(), 1) > 0) {
    }
    ::fcntl(w.get(), F_SETFL, flags);
  }
  void drain() {
    ::fcntl(r.get(), F_SETFL, O_NONBLOCK);
    std::array<uint8_t, 4096> buf;
    while (::read(r.get(), buf.data(), buf.size()) > 0) {
    }
  }
  UniqueFd r, w;
};

void put(Serial& s, const std::string& text) {
  for (char c : text) {
    const uint8_t b = static_cast<uint8_t>(c);
    s.write(UART_TX, std::span(&b, 1));
  }
}

TEST(FdSerialOutput, WritesToAPipe) {
  Pipe p;
  Serial s(std::make_shared<FdSerialOutput>(p.w.get()), nullptr);
  put(s, "boot ok\n");
  std::array<char, 16> buf{};
  ASSERT_EQ(::read(p.r.get(), buf.data(), buf.size()), 8);
  EXPECT_EQ(std::string(buf.data(), 8), "boot ok\n");
  EXPECT_EQ(s.stats().tx_bytes, 8u);
}

TEST(FdSerialOutput, FullBlockingPipeDropsInsteadOfStallingTheVcpu) {
  Pipe p;
  p.fill();
  ASSERT_FALSE(::fcntl(p.w.get(), F_GETFL) & O_NONBLOCK);
  Serial s(std::make_shared<FdSerialOutput>(p.w.get()), nullptr);
  auto done = std::async(std::launch::async, [&] { put(s, "xyz"); });
  const bool returned = done.wait_for(std::chrono::seconds(5)) == std::future_status::ready;
  if (!returned) p.drain();  // unstick the writer before failing
  ASSERT_TRUE(returned) << "a full pipe blocked the vCPU";
  EXPECT_EQ(s.stats().tx_dropped, 3u);
  EXPECT_EQ(s.stats().tx_bytes, 0u);
  p.drain();
  put(s, "ok");
  EXPECT_EQ(s.stats().tx_bytes, 2u);
}

TEST(FdSerialOutput, FullNonblockingPipeDropsOnEagain) {
  Pipe p;
  p.fill();
  ::fcntl(p.w.get(), F_SETFL, O_NONBLOCK);
  Serial s(std::make_shared<FdSerialOutput>(p.w.get()), nullptr);
  put(s, "ab");
  EXPECT_EQ(s.stats().tx_dropped, 2u);
}

TEST(FdSerialOutput, PipeWithoutReaderDropsWithoutSigpipe) {
  Pipe p;
  p.r.reset();
  Serial s(std::make_shared<FdSerialOutput>(p.w.get()), nullptr);
  put(s, "gone");  // SIGPIPE would kill the test binary
  EXPECT_EQ(s.stats().tx_dropped, 4u);
}

TEST(FdSerialOutput, OwnedLogFileAppends) {
  char path[] = "/tmp/skiff-serial-test-XXXXXX";
  UniqueFd tmp(::mkstemp(path));
  ASSERT_TRUE(tmp.valid());
  ASSERT_EQ(::write(tmp.get(), "old\n", 4), 4);
  {
    Serial s(FdSerialOutput::open_file(path), nullptr);
    put(s, "new\n");
  }
  std::array<char, 16> buf{};
  ASSERT_EQ(::pread(tmp.get(), buf.data(), buf.size(), 0), 8);
  EXPECT_EQ(std::string(buf.data(), 8), "old\nnew\n");
  ::unlink(path);
}

TEST(FdSerialOutput, OpenFileReportsErrors) {
  EXPECT_THROW(FdSerialOutput::open_file("/nonexistent-dir/serial.log"), std::system_error);
}

TEST(FdSerialOutput, ClosedFdDrops) {
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  ::close(fds[0]);
  ::close(fds[1]);
  Serial s(std::make_shared<FdSerialOutput>(fds[1]), nullptr);
  put(s, "x");
  EXPECT_EQ(s.stats().tx_dropped, 1u);
}

// --- property ---

// (kind: 0 read / 1 write / 2 enqueue, offset, width, value)
using Access = std::tuple<int, int, int, uint8_t>;

RC_GTEST_PROP(SerialProperty, RandomAccessesKeepInvariantsAndTransmitInOrder, ()) {
  // Half the accesses hit offset 0 so enough THR writes happen between the
  // LCR/MCR writes that switch DLAB and loopback on and off.
  const auto offset = rc::gen::weightedOneOf<int>({{1, rc::gen::just(0)}, {1, rc::gen::inRange(1, 12)}});
  const auto kind = rc::gen::weightedElement<int>({{4, 0}, {5, 1}, {1, 2}});
  const auto accesses = *rc::gen::container<std::vector<Access>>(
      rc::gen::tuple(kind, offset, rc::gen::inRange(0, 9), rc::gen::arbitrary<uint8_t>()));
  auto sink = std::make_shared<RecordingSink>();
  Serial serial(sink, std::make_shared<CountingLine>());
  uint8_t lcr = 0x03, mcr = UART_MCR_OUT2;  // shadows of the reset values
  std::vector<uint8_t> expected;
  std::vector<uint8_t> buf(8);

  for (const auto& [kind, offset, width, value] : accesses) {
    const auto data = std::span(buf).first(static_cast<size_t>(width));
    if (kind == 0) {
      serial.read(static_cast<uint64_t>(offset), data);
      if (width > 0 && offset == UART_IIR) {
        const uint8_t id = data[0] & 0x0f;
        RC_ASSERT(id == 1 || id == 2 || id == 4 || id == 6);
        RC_ASSERT((data[0] & 0x30) == 0);
      }
      if (width > 0 && offset >= 8) RC_ASSERT(data[0] == 0xff);
    } else if (kind == 1) {
      std::fill(data.begin(), data.end(), value);
      serial.write(static_cast<uint64_t>(offset), data);
      if (width == 0) continue;
      if (offset == UART_LCR) lcr = value;
      if (offset == UART_MCR) mcr = value;
      if (offset == UART_TX && !(lcr & UART_LCR_DLAB) && !(mcr & UART_MCR_LOOP)) expected.push_back(value);
    } else {
      // Up to ~5 KiB so some enqueues overflow the 4 KiB buffer.
      std::vector<uint8_t> input(static_cast<size_t>(width) * 600, value);
      serial.enqueue_input(input);
    }
    uint8_t lsr = 0;
    serial.read(UART_LSR, std::span(&lsr, 1));
    RC_ASSERT((lsr & (UART_LSR_THRE | UART_LSR_TEMT)) == (UART_LSR_THRE | UART_LSR_TEMT));
  }
  RC_ASSERT(sink->bytes() == expected);
  RC_ASSERT(serial.stats().tx_bytes == expected.size());
}

}  // namespace
}  // namespace skiff::devices
