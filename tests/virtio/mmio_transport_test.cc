// virtio-mmio transport driven register by register, as Linux's virtio_mmio
// driver does (virtio 1.2, section 4.2.3).
#include "virtio/mmio_transport.h"

#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include "virtio/testing/fake_device.h"

namespace skiff::virtio {
namespace {

using testing::FakeDevice;

class CountingLine : public devices::InterruptLine {
 public:
  void trigger() override { ++count; }
  int count = 0;
};

class MmioTransportTest : public ::testing::Test {
 protected:
  MmioTransportTest()
      : mem(GuestMemory::create({{GuestAddress(0), 1 << 20}})),
        device(std::make_shared<FakeDevice>()),
        line(std::make_shared<CountingLine>()),
        t(mem, device, line) {}

  uint32_t rd(uint64_t off) {
    uint32_t v = 0xdeadbeef;
    t.read(off, std::span(reinterpret_cast<uint8_t*>(&v), 4));
    return v;
  }
  void wr(uint64_t off, uint32_t v) { t.write(off, std::span(reinterpret_cast<const uint8_t*>(&v), 4)); }
  void wr64(uint64_t low, uint64_t v) {
    wr(low, static_cast<uint32_t>(v));
    wr(low + 4, static_cast<uint32_t>(v >> 32));
  }
  void negotiate(uint64_t features) {
    wr(mmio::kStatus, 0);
    wr(mmio::kStatus, kStatusAcknowledge);
    wr(mmio::kStatus, kStatusAcknowledge | kStatusDriver);
    wr(mmio::kDriverFeaturesSel, 0);
    wr(mmio::kDriverFeatures, static_cast<uint32_t>(features));
    wr(mmio::kDriverFeaturesSel, 1);
    wr(mmio::kDriverFeatures, static_cast<uint32_t>(features >> 32));
    wr(mmio::kStatus, kStatusAcknowledge | kStatusDriver | kStatusFeaturesOk);
  }
  void setup_queue(uint32_t index, uint16_t num, uint64_t desc, uint64_t avail, uint64_t used) {
    wr(mmio::kQueueSel, index);
    wr(mmio::kQueueNum, num);
    wr64(mmio::kQueueDescLow, desc);
    wr64(mmio::kQueueDriverLow, avail);
    wr64(mmio::kQueueDeviceLow, used);
    wr(mmio::kQueueReady, 1);
  }
  void driver_ok() { wr(mmio::kStatus, kStatusAcknowledge | kStatusDriver | kStatusFeaturesOk | kStatusDriverOk); }

  GuestMemory mem;
  std::shared_ptr<FakeDevice> device;
  std::shared_ptr<CountingLine> line;
  MmioTransport t;
};

TEST_F(MmioTransportTest, IdentifiesAsVersion2) {
  EXPECT_EQ(rd(mmio::kMagicValue), 0x74726976u);
  EXPECT_EQ(rd(mmio::kVersion), 2u);
  EXPECT_EQ(rd(mmio::kDeviceId), FakeDevice::kType);
  EXPECT_EQ(rd(mmio::kVendorId), mmio::kVendor);
  wr(mmio::kDeviceFeaturesSel, 0);
  EXPECT_EQ(rd(mmio::kDeviceFeatures), static_cast<uint32_t>(bit(kFeatureEventIdx)));
  wr(mmio::kDeviceFeaturesSel, 1);
  EXPECT_EQ(rd(mmio::kDeviceFeatures), 1u);  // VERSION_1 is bit 32
  wr(mmio::kDeviceFeaturesSel, 7);
  EXPECT_EQ(rd(mmio::kDeviceFeatures), 0u);
  wr(mmio::kQueueSel, 0);
  EXPECT_EQ(rd(mmio::kQueueNumMax), 256u);
  wr(mmio::kQueueSel, 9);  // no such queue
  EXPECT_EQ(rd(mmio::kQueueNumMax), 0u);
  wr(mmio::kShmSel, 0);
  EXPECT_EQ(rd(mmio::kShmLenLow), 0xffffffffu);  // no shared memory regions
}

TEST_F(MmioTransportTest, SharedMemoryRegionsBySelector) {
  device->shm_id = 2;
  device->shm = SharedMemoryRegion{0x1'4000'0000ull, 0x2'0000'0000ull};
  wr(mmio::kShmSel, 2);
  EXPECT_EQ(rd(mmio::kShmBaseLow), 0x40000000u);
  EXPECT_EQ(rd(mmio::kShmBaseHigh), 1u);
  EXPECT_EQ(rd(mmio::kShmLenLow), 0u);
  EXPECT_EQ(rd(mmio::kShmLenHigh), 2u);
  for (uint32_t sel : {0u, 3u, 256u, 0xffffffffu}) {  // absent: all ones
    wr(mmio::kShmSel, sel);
    EXPECT_EQ(rd(mmio::kShmLenLow), 0xffffffffu) << sel;
    EXPECT_EQ(rd(mmio::kShmLenHigh), 0xffffffffu) << sel;
    EXPECT_EQ(rd(mmio::kShmBaseLow), 0xffffffffu) << sel;
    EXPECT_EQ(rd(mmio::kShmBaseHigh), 0xffffffffu) << sel;
  }
}

TEST_F(MmioTransportTest, NegotiatesOfferedFeaturesOnly) {
  negotiate(bit(kFeatureVersion1) | bit(kFeatureEventIdx));
  EXPECT_TRUE(rd(mmio::kStatus) & kStatusFeaturesOk);
  EXPECT_EQ(t.driver_features(), bit(kFeatureVersion1) | bit(kFeatureEventIdx));

  negotiate(bit(kFeatureVersion1) | bit(3));  // bit 3 is not offered
  EXPECT_FALSE(rd(mmio::kStatus) & kStatusFeaturesOk);

  negotiate(bit(kFeatureEventIdx));  // a legacy driver: no VERSION_1
  EXPECT_FALSE(rd(mmio::kStatus) & kStatusFeaturesOk);
}

TEST_F(MmioTransportTest, ActivatesWithTheQueuesTheDriverSetUp) {
  negotiate(bit(kFeatureVersion1) | bit(kFeatureEventIdx));
  setup_queue(0, 128, 0x10000, 0x11000, 0x12000);
  driver_ok();
  ASSERT_TRUE(t.activated());
  EXPECT_EQ(device->activations, 1);
  EXPECT_EQ(device->negotiated, bit(kFeatureVersion1) | bit(kFeatureEventIdx));
  ASSERT_EQ(device->queues.size(), 2u);
  ASSERT_NE(device->queues[0], nullptr);
  EXPECT_EQ(device->queues[1], nullptr);  // left disabled by the driver
  const auto& cfg = device->queues[0]->config();
  EXPECT_EQ(cfg.size, 128);
  EXPECT_EQ(cfg.desc.value(), 0x10000u);
  EXPECT_EQ(cfg.avail.value(), 0x11000u);
  EXPECT_EQ(cfg.used.value(), 0x12000u);
  EXPECT_TRUE(cfg.event_idx);
  EXPECT_EQ(rd(mmio::kQueueReady), 1u);
  wr(mmio::kQueueSel, 1);
  EXPECT_EQ(rd(mmio::kQueueReady), 0u);
  wr(mmio::kQueueSel, 0);
  // Queue registers are frozen once the driver is running.
  wr(mmio::kQueueNum, 16);
  driver_ok();
  EXPECT_EQ(device->activations, 1);
}

TEST_F(MmioTransportTest, QueueSetupBeforeFeaturesOkIsIgnored) {
  wr(mmio::kStatus, kStatusAcknowledge | kStatusDriver);
  setup_queue(0, 64, 0x10000, 0x11000, 0x12000);
  wr(mmio::kQueueSel, 0);
  EXPECT_EQ(rd(mmio::kQueueReady), 0u);
}

TEST_F(MmioTransportTest, BadQueuesOrRefusalsSetNeedsReset) {
  negotiate(bit(kFeatureVersion1));
  setup_queue(0, 64, 0x200000, 0x11000, 0x12000);  // descriptor table outside guest RAM
  driver_ok();
  EXPECT_FALSE(t.activated());
  EXPECT_TRUE(rd(mmio::kStatus) & kStatusNeedsReset);

  negotiate(bit(kFeatureVersion1));
  setup_queue(0, 1000, 0x10000, 0x11000, 0x12000);  // larger than QueueNumMax
  driver_ok();
  EXPECT_TRUE(rd(mmio::kStatus) & kStatusNeedsReset);

  negotiate(bit(kFeatureVersion1));
  setup_queue(0, 64, 0x10000, 0x11000, 0x12000);
  device->accept_activation = false;
  driver_ok();
  EXPECT_FALSE(t.activated());
  EXPECT_TRUE(rd(mmio::kStatus) & kStatusNeedsReset);
}

TEST_F(MmioTransportTest, StatusGoingBackwardsIsADriverBug) {
  wr(mmio::kStatus, kStatusAcknowledge | kStatusDriver);
  wr(mmio::kStatus, kStatusAcknowledge);
  EXPECT_TRUE(rd(mmio::kStatus) & kStatusNeedsReset);
}

TEST_F(MmioTransportTest, NotifyReachesTheDeviceOnlyWhenActive) {
  wr(mmio::kQueueNotify, 0);
  EXPECT_TRUE(device->notified.empty());
  negotiate(bit(kFeatureVersion1));
  setup_queue(0, 64, 0x10000, 0x11000, 0x12000);
  driver_ok();
  wr(mmio::kQueueNotify, 0);
  wr(mmio::kQueueNotify, 5);  // no such queue
  EXPECT_EQ(device->notified, std::vector<size_t>{0});
}

TEST_F(MmioTransportTest, InterruptsSetStatusBitsUntilAcknowledged) {
  negotiate(bit(kFeatureVersion1));
  setup_queue(0, 64, 0x10000, 0x11000, 0x12000);
  driver_ok();
  device->interrupt->used_buffers();
  EXPECT_EQ(line->count, 1);
  EXPECT_EQ(rd(mmio::kInterruptStatus), kInterruptUsedBuffer);
  const uint32_t generation = rd(mmio::kConfigGeneration);
  t.config_changed();
  EXPECT_EQ(line->count, 2);
  EXPECT_EQ(rd(mmio::kInterruptStatus), kInterruptUsedBuffer | kInterruptConfigChange);
  EXPECT_EQ(rd(mmio::kConfigGeneration), generation + 1);
  wr(mmio::kInterruptAck, kInterruptUsedBuffer);
  EXPECT_EQ(rd(mmio::kInterruptStatus), kInterruptConfigChange);
}

TEST_F(MmioTransportTest, ConfigSpacePassesThroughAtAnyWidth) {
  const uint8_t bytes[3] = {1, 2, 3};
  t.write(mmio::kConfig + 4, bytes);
  uint8_t back[4] = {};
  t.read(mmio::kConfig + 3, back);
  EXPECT_EQ(back[0], 0);
  EXPECT_EQ(back[1], 1);
  EXPECT_EQ(back[3], 3);
}

TEST_F(MmioTransportTest, ResetClearsEverything) {
  negotiate(bit(kFeatureVersion1));
  setup_queue(0, 64, 0x10000, 0x11000, 0x12000);
  driver_ok();
  device->interrupt->used_buffers();
  wr(mmio::kStatus, 0);
  EXPECT_EQ(device->resets, 1);
  EXPECT_FALSE(t.activated());
  EXPECT_EQ(rd(mmio::kStatus), 0u);
  EXPECT_EQ(rd(mmio::kInterruptStatus), 0u);
  EXPECT_EQ(t.driver_features(), 0u);
  wr(mmio::kQueueSel, 0);
  EXPECT_EQ(rd(mmio::kQueueReady), 0u);
}

TEST_F(MmioTransportTest, NarrowOrMisalignedRegisterAccessesAreIgnored) {
  uint8_t b[2] = {0xff, 0xff};
  t.read(mmio::kMagicValue, b);
  EXPECT_EQ(b[0], 0);
  const uint8_t status = kStatusAcknowledge;
  t.write(mmio::kStatus, {&status, 1});
  EXPECT_EQ(rd(mmio::kStatus), 0u);
  EXPECT_EQ(rd(mmio::kMagicValue + 2), 0u);
}

TEST(MmioCmdline, DeclaresTheDeviceForTheKernel) {
  EXPECT_EQ(mmio_cmdline_arg(0xd0000000, 0x1000, 5), "virtio_mmio.device=4K@0xd0000000:5");
}

// Whatever a driver writes, in whatever order, the transport stays
// consistent: activated only with FEATURES_OK and acceptable features, the
// device reset each time an active transport is reset.
RC_GTEST_PROP(MmioTransportProperty, AnyRegisterSequenceKeepsTheStateMachineSound, ()) {
  auto mem = GuestMemory::create({{GuestAddress(0), 1 << 20}});
  auto device = std::make_shared<FakeDevice>();
  MmioTransport t(mem, device, nullptr);
  const auto n = *rc::gen::inRange(1, 200);
  int expected_resets = 0;
  for (int i = 0; i < n; ++i) {
    const uint64_t off = *rc::gen::elementOf(std::vector<uint64_t>{mmio::kStatus, mmio::kDriverFeatures, mmio::kDriverFeaturesSel,
                                                     mmio::kQueueSel, mmio::kQueueNum, mmio::kQueueReady,
                                                     mmio::kQueueDescLow, mmio::kQueueNotify, mmio::kInterruptAck,
                                                     mmio::kConfig, 0x0fd, 0x200});
    uint32_t v = *rc::gen::oneOf(rc::gen::inRange<uint32_t>(0, 16), rc::gen::arbitrary<uint32_t>(),
                                 rc::gen::element<uint32_t>(0x0f, 0x0b, 0x10000, 1));
    const bool was_active = t.activated();
    t.write(off, std::span(reinterpret_cast<const uint8_t*>(&v), 4));
    if (off == mmio::kStatus && v == 0 && was_active) ++expected_resets;
    if (t.activated()) {
      RC_ASSERT(t.status() & kStatusFeaturesOk);
      RC_ASSERT((t.driver_features() & ~device->device_features()) == 0u);
    }
    uint32_t r;
    t.read(off, std::span(reinterpret_cast<uint8_t*>(&r), 4));
  }
  RC_ASSERT(device->resets == expected_resets);
}

}  // namespace
}  // namespace skiff::virtio
