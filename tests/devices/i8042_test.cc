// The i8042 as Linux's i8042/atkbd drivers and `reboot=k` use it.
#include "devices/i8042.h"

#include <array>
#include <atomic>
#include <vector>

#include <gtest/gtest.h>

namespace skiff::devices {
namespace {

constexpr uint64_t kData = I8042::kDataOffset;
constexpr uint64_t kCmd = I8042::kCommandOffset;
constexpr uint8_t kStrObf = 0x01, kStrIbf = 0x02, kStrAuxData = 0x20;

class CountingLine final : public InterruptLine {
 public:
  void trigger() override { ++count; }
  std::atomic<int> count{0};
};

class I8042Test : public ::testing::Test {
 protected:
  void out(uint64_t offset, uint8_t value) { dev.write(offset, std::span<const uint8_t>(&value, 1)); }
  uint8_t in(uint64_t offset) {
    uint8_t v = 0x5a;
    dev.read(offset, std::span<uint8_t>(&v, 1));
    return v;
  }
  // i8042_command(): write the command, the parameter if any, poll OBF for the reply.
  int command(uint8_t cmd) {
    out(kCmd, cmd);
    if (!(in(kCmd) & kStrObf)) return -1;
    return in(kData);
  }

  int resets = 0;
  std::shared_ptr<CountingLine> irq = std::make_shared<CountingLine>();
  I8042 dev{[this] { ++resets; }, irq};
};

TEST_F(I8042Test, ResetFiresOncePerFeCommand) {
  out(kCmd, 0xfe);
  EXPECT_EQ(resets, 1);
  out(kCmd, 0xfe);
  EXPECT_EQ(resets, 2);
  EXPECT_EQ(dev.reset_count(), 2u);
}

TEST_F(I8042Test, OtherCommandsAndPortsDoNotReset) {
  for (int c = 0; c < 256; ++c) {
    if (c != 0xfe) out(kCmd, static_cast<uint8_t>(c));
  }
  for (uint64_t off : {uint64_t{0}, uint64_t{1}, uint64_t{2}, uint64_t{3}, uint64_t{5}, uint64_t{100}})
    out(off, 0xfe);
  EXPECT_EQ(resets, 0);
  EXPECT_EQ(dev.reset_count(), 0u);
}

TEST_F(I8042Test, WideWriteOfFeResetsOnce) {
  const std::array<uint8_t, 2> w{0xfe, 0x00};
  dev.write(kCmd, w);
  EXPECT_EQ(resets, 1);
}

TEST_F(I8042Test, ResetCallbackRunsWithoutTheLock) {
  uint8_t status = 0;
  I8042* self = nullptr;
  I8042 dev2([&] {
    uint8_t s = 0;
    self->read(kCmd, std::span(&s, 1));  // would deadlock if the lock were held
    status = s;
  });
  self = &dev2;
  const uint8_t fe = 0xfe;
  dev2.write(kCmd, std::span(&fe, 1));
  EXPECT_NE(status, 0);
}

TEST_F(I8042Test, StatusIsPlausibleAndIdle) {
  const uint8_t s = in(kCmd);
  EXPECT_EQ(s & kStrObf, 0);
  EXPECT_EQ(s & kStrIbf, 0) << "Linux's i8042_wait_write polls IBF";
  EXPECT_NE(s, 0xff) << "0xff means no controller to Linux";
  EXPECT_EQ(in(kData), 0) << "empty output buffer";
}

TEST_F(I8042Test, SelfTestAnswers55) {
  EXPECT_EQ(command(0xaa), 0x55);
  EXPECT_EQ(in(kCmd) & kStrObf, 0);
  EXPECT_EQ(irq->count, 0) << "controller replies are polled";
}

TEST_F(I8042Test, ControlByteRoundTrips) {
  EXPECT_EQ(command(0x20), 0x05) << "KBDINT | SYS after POST";
  out(kCmd, 0x60);
  out(kData, 0x44);
  EXPECT_EQ(command(0x20), 0x44);
  out(kCmd, 0xad);
  EXPECT_EQ(command(0x20), 0x54);
  out(kCmd, 0xae);
  EXPECT_EQ(command(0x20), 0x44);
}

// i8042_controller_check/selftest/init and i8042_check_aux, in order.
TEST_F(I8042Test, LinuxProbeSequenceCompletesWithoutTimeouts) {
  for (int i = 0; i < 16 && (in(kCmd) & kStrObf); ++i) in(kData);
  EXPECT_EQ(command(0xaa), 0x55);
  const int ctr0 = command(0x20), ctr1 = command(0x20);
  ASSERT_GE(ctr0, 0);
  EXPECT_EQ(ctr0, ctr1);
  out(kCmd, 0x60);
  out(kData, static_cast<uint8_t>((ctr0 | 0x10) & ~0x01));
  EXPECT_EQ(command(0xab), 0x00) << "keyboard interface test";

  // AUX loop: no AUX port, so the reply (if any) is not AUX data.
  out(kCmd, 0xd3);
  out(kData, 0x5a);
  EXPECT_FALSE((in(kCmd) & kStrObf) && (in(kCmd) & kStrAuxData));
  const int aux = command(0xa9);
  EXPECT_TRUE(aux != 0x00 && aux != 0xfa && aux != 0xff) << "AUX test must fail fast, got " << aux;
  EXPECT_EQ(irq->count, 0) << "keyboard interrupt was disabled by the guest";
  EXPECT_EQ(resets, 0);
}

TEST_F(I8042Test, OutputPortRoundTrips) {
  out(kCmd, 0xd1);
  out(kData, 0xdf);
  EXPECT_EQ(command(0xd0), 0xdf);
  EXPECT_EQ(resets, 0) << "output port writes do not reset";
}

TEST_F(I8042Test, KeyboardBytesAreAckedWithAnInterrupt) {
  out(kData, 0xf4);  // enable scanning
  EXPECT_EQ(irq->count, 1);
  EXPECT_EQ(in(kData), 0xfa);

  out(kData, 0xf2);  // GETID: ACK, then two ID bytes, one interrupt each
  EXPECT_EQ(irq->count, 2);
  EXPECT_EQ(in(kData), 0xfa);
  EXPECT_EQ(irq->count, 3);
  EXPECT_EQ(in(kData), 0xab);
  EXPECT_EQ(irq->count, 4);
  EXPECT_EQ(in(kData), 0x83);
  EXPECT_EQ(irq->count, 4);
  EXPECT_EQ(in(kCmd) & kStrObf, 0);

  out(kData, 0xff);  // reset: ACK then BAT passed
  EXPECT_EQ(in(kData), 0xfa);
  EXPECT_EQ(in(kData), 0xaa);
  out(kData, 0xee);  // echo
  EXPECT_EQ(in(kData), 0xee);
}

TEST_F(I8042Test, NoKeyboardInterruptWhenMasked) {
  out(kCmd, 0x60);
  out(kData, 0x04);
  out(kData, 0xf4);
  EXPECT_EQ(irq->count, 0);
  EXPECT_EQ(in(kCmd) & kStrObf, kStrObf);
  EXPECT_EQ(in(kData), 0xfa);
}

TEST_F(I8042Test, CtrlAltDelIsQueuedAsScancodes) {
  ASSERT_TRUE(dev.send_ctrl_alt_del());
  EXPECT_EQ(irq->count, 1);
  std::vector<int> got;
  while (in(kCmd) & kStrObf) got.push_back(in(kData));
  EXPECT_EQ(got, (std::vector<int>{0x14, 0x11, 0xe0, 0x71}));
  for (int i = 0; i < 4; ++i) EXPECT_TRUE(dev.send_ctrl_alt_del());
  EXPECT_FALSE(dev.send_ctrl_alt_del()) << "16-byte buffer is full";
}

TEST_F(I8042Test, OtherOffsetsReadZeroAndWidthsAreSafe) {
  for (uint64_t off : {uint64_t{1}, uint64_t{2}, uint64_t{3}, uint64_t{5}, uint64_t{0x1000}, ~uint64_t{0}}) {
    std::array<uint8_t, 4> v;
    v.fill(0xee);
    dev.read(off, v);
    EXPECT_EQ(v, (std::array<uint8_t, 4>{0, 0, 0, 0}));
  }
  dev.read(kCmd, std::span<uint8_t>());
  dev.write(kCmd, std::span<const uint8_t>());
  std::array<uint8_t, 8> wide;
  wide.fill(0xee);
  dev.read(kCmd, wide);
  EXPECT_EQ(wide[0], in(kCmd));
  for (size_t i = 1; i < wide.size(); ++i) EXPECT_EQ(wide[i], 0);
  EXPECT_EQ(resets, 0);
}

}  // namespace
}  // namespace skiff::devices
