// virtio-mem driven by the guest-driver simulator: requests written as a
// Linux driver writes them into a real GuestMemory, every bad request, the
// memory given back on unplug, and the configuration-change interrupt, also
// through the mmio transport. A rapidcheck property runs random requests
// against a model of the bitmap.
#include "virtio/mem/mem_device.h"

#include <sys/stat.h>

#include <algorithm>
#include <cstring>
#include <optional>
#include <stdexcept>

#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include "virtio/mmio_transport.h"
#include "virtio/testing/driver_queue.h"

namespace skiff::virtio {
namespace {

using testing::DriverQueue;

constexpr uint64_t kMiB = 1 << 20;
constexpr uint64_t kRam = 4 * kMiB;               // rings and request buffers
constexpr uint64_t kRegion = 1ull << 32;          // the hotplug region's start, as the VMM puts it
constexpr uint64_t kBlock = kMemDefaultBlockSize;  // 2 MiB
constexpr uint64_t kBlocks = 16;
constexpr uint16_t kQueueSize = 64;

class CountingInterrupt : public DeviceInterrupt {
 public:
  void used_buffers() override { ++used; }
  void config_changed() override { ++config; }
  int used = 0, config = 0;
};

std::vector<uint8_t> request(uint16_t type, uint64_t addr = 0, uint16_t nb_blocks = 0) {
  std::vector<uint8_t> r(kMemRequestBytes, 0);
  std::memcpy(r.data(), &type, 2);
  std::memcpy(r.data() + 8, &addr, 8);
  std::memcpy(r.data() + 16, &nb_blocks, 2);
  return r;
}

struct Reply {
  uint32_t len = 0;
  uint16_t type = 0xffff;
  uint16_t state = 0xffff;
};

QueueConfig qconfig() { return {kQueueSize, GuestAddress(0), GuestAddress(0x1000), GuestAddress(0x2000), false}; }

// A device over [kRegion, +region_size) beside the RAM, its queue, a driver.
struct Rig {
  explicit Rig(const GuestMemory& m, uint64_t block = kBlock, uint64_t blocks = kBlocks) : mem(m) {
    MemConfig c;
    c.addr = GuestAddress(kRegion);
    c.region_size = block * blocks;
    c.block_size = block;
    dev = std::make_unique<MemDevice>(mem, c);
    activate();
  }
  void activate() {
    driver = std::make_unique<DriverQueue>(mem, qconfig(), GuestAddress(kMiB), kMiB);
    std::vector<std::unique_ptr<Virtqueue>> queues;
    queues.push_back(std::make_unique<Virtqueue>(mem, qconfig()));
    EXPECT_TRUE(dev->activate(dev->device_features(), std::move(queues), irq));
  }
  // One request, answered: the used element and the response.
  Reply send(const std::vector<uint8_t>& req, uint32_t response_room = kMemResponseBytes, bool indirect = false) {
    const auto chain = driver->add_chain({req}, {response_room}, indirect);
    dev->queue_notify(0);
    Reply r;
    const auto used = driver->next_used();
    if (!used) {
      ADD_FAILURE() << "the request was not used";
      return r;
    }
    EXPECT_EQ(used->id, chain.head);
    r.len = used->len;
    if (r.len >= kMemResponseBytes) {
      const auto bytes = driver->read_bytes(chain.writable[0], kMemResponseBytes);
      std::memcpy(&r.type, bytes.data(), 2);
      std::memcpy(&r.state, bytes.data() + 8, 2);
    }
    return r;
  }
  uint16_t answer(uint16_t type, uint64_t block, uint16_t nb) {
    return send(request(type, kRegion + block * dev->block_size(), nb)).type;
  }

  const GuestMemory& mem;
  std::shared_ptr<CountingInterrupt> irq = std::make_shared<CountingInterrupt>();
  std::unique_ptr<MemDevice> dev;
  std::unique_ptr<DriverQueue> driver;
};

GuestMemory make_memory(uint64_t region = kBlock * kBlocks) {
  return GuestMemory::create({{GuestAddress(0), kRam}, {GuestAddress(kRegion), region}});
}

uint64_t config_u64(MemDevice& dev, uint64_t offset) {
  uint64_t v = 0;
  dev.read_config(offset, std::span(reinterpret_cast<uint8_t*>(&v), 8));
  return v;
}

class MemDeviceTest : public ::testing::Test {
 protected:
  GuestMemory mem = make_memory();
  Rig rig{mem};
  MemDevice& dev = *rig.dev;
};

TEST_F(MemDeviceTest, ConfigSpaceDescribesTheRegion) {
  EXPECT_EQ(dev.device_type(), 24u);
  EXPECT_EQ(config_u64(dev, 0), kBlock);                    // block_size
  EXPECT_EQ(config_u64(dev, 8) & 0xffff, 0u);               // node_id
  EXPECT_EQ(config_u64(dev, 16), kRegion);                  // addr
  EXPECT_EQ(config_u64(dev, 24), kBlock * kBlocks);         // region_size
  EXPECT_EQ(config_u64(dev, 32), kBlock * kBlocks);         // usable_region_size
  EXPECT_EQ(config_u64(dev, 40), 0u);                       // plugged_size
  EXPECT_EQ(config_u64(dev, 48), 0u);                       // requested_size
  EXPECT_EQ(config_u64(dev, 56), 0u) << "past the end reads 0";
  dev.set_requested_size(4 * kBlock);
  EXPECT_EQ(config_u64(dev, 48), 4 * kBlock);
  uint32_t high = 0xffffffff;
  dev.read_config(52, std::span(reinterpret_cast<uint8_t*>(&high), 4));  // a 32-bit half, as virtio_mmio reads it
  EXPECT_EQ(high, 0u);
}

TEST_F(MemDeviceTest, PlugUnplugAndStateFollowTheBlocks) {
  dev.set_requested_size(4 * kBlock);
  EXPECT_EQ(rig.answer(kMemReqPlug, 1, 2), kMemRespAck);
  EXPECT_EQ(dev.plugged_size(), 2 * kBlock);
  EXPECT_EQ(config_u64(dev, 40), 2 * kBlock);
  EXPECT_TRUE(dev.block_plugged(1) && dev.block_plugged(2));
  EXPECT_FALSE(dev.block_plugged(0) || dev.block_plugged(3));

  Reply r = rig.send(request(kMemReqState, kRegion + kBlock, 2));
  EXPECT_EQ(r.len, kMemResponseBytes);
  EXPECT_EQ(r.type, kMemRespAck);
  EXPECT_EQ(r.state, kMemStatePlugged);
  EXPECT_EQ(rig.send(request(kMemReqState, kRegion, 4)).state, kMemStateMixed);
  EXPECT_EQ(rig.send(request(kMemReqState, kRegion + 3 * kBlock, 13)).state, kMemStateUnplugged);

  EXPECT_EQ(rig.answer(kMemReqUnplug, 2, 1), kMemRespAck);
  EXPECT_EQ(dev.plugged_size(), kBlock);
  EXPECT_EQ(dev.count_plugged_blocks(), 1u);
  EXPECT_GE(rig.irq->used, 1) << "the driver is told its requests were used";
  // The last block of the region, through an indirect table.
  dev.set_requested_size(kBlocks * kBlock);
  EXPECT_EQ(rig.send(request(kMemReqPlug, kRegion + (kBlocks - 1) * kBlock, 1), kMemResponseBytes, true).type,
            kMemRespAck);
  EXPECT_TRUE(dev.block_plugged(kBlocks - 1));
}

TEST_F(MemDeviceTest, PlugPastTheRequestedSizeIsRefused) {
  dev.set_requested_size(2 * kBlock);
  EXPECT_EQ(rig.answer(kMemReqPlug, 0, 3), kMemRespNack);
  EXPECT_EQ(dev.plugged_size(), 0u);
  EXPECT_EQ(rig.answer(kMemReqPlug, 0, 2), kMemRespAck);
  EXPECT_EQ(rig.answer(kMemReqPlug, 5, 1), kMemRespNack);
  // Asked for less: the guest unplugs, below the request too if it likes.
  dev.set_requested_size(0);
  EXPECT_EQ(rig.answer(kMemReqPlug, 5, 1), kMemRespNack);
  EXPECT_EQ(rig.answer(kMemReqUnplug, 0, 2), kMemRespAck);
  EXPECT_EQ(dev.plugged_size(), 0u);
}

TEST_F(MemDeviceTest, EveryBadRequestIsAnErrorAndChangesNothing) {
  dev.set_requested_size(kBlocks * kBlock);
  ASSERT_EQ(rig.answer(kMemReqPlug, 4, 2), kMemRespAck);  // blocks 4 and 5
  struct Bad {
    const char* what;
    std::vector<uint8_t> req;
  };
  const uint64_t end = kRegion + kBlocks * kBlock;
  std::vector<Bad> bad = {
      {"misaligned", request(kMemReqPlug, kRegion + 4096, 1)},
      {"below the region", request(kMemReqPlug, kRegion - kBlock, 1)},
      {"at the region's end", request(kMemReqPlug, end, 1)},
      {"running past the end", request(kMemReqPlug, end - kBlock, 2)},
      {"no blocks", request(kMemReqPlug, kRegion, 0)},
      {"0xffff blocks", request(kMemReqPlug, kRegion, 0xffff)},
      {"near 2^64", request(kMemReqPlug, ~0ull & ~(kBlock - 1), 1)},
      {"0xffff blocks near 2^64", request(kMemReqUnplug, ~0ull - kBlock + 1, 0xffff)},
      {"plugged already", request(kMemReqPlug, kRegion + 5 * kBlock, 1)},
      {"partly plugged already", request(kMemReqPlug, kRegion + 3 * kBlock, 2)},
      {"unplug of unplugged", request(kMemReqUnplug, kRegion, 1)},
      {"unplug of mixed", request(kMemReqUnplug, kRegion + 5 * kBlock, 2)},
      {"unplug misaligned", request(kMemReqUnplug, kRegion + 4 * kBlock + 512, 1)},
      {"state misaligned", request(kMemReqState, kRegion + 1, 1)},
      {"state without blocks", request(kMemReqState, kRegion, 0)},
      {"state past the end", request(kMemReqState, kRegion, kBlocks + 1)},
      {"unknown type", request(4, kRegion, 1)},
      {"type 0xffff", request(0xffff, kRegion, 1)},
  };
  const auto whole = request(kMemReqPlug, kRegion, 1);
  bad.push_back({"short request", std::vector<uint8_t>(whole.begin(), whole.begin() + 16)});
  for (const auto& b : bad) {
    const Reply r = rig.send(b.req);
    EXPECT_EQ(r.len, kMemResponseBytes) << b.what;
    EXPECT_EQ(r.type, kMemRespError) << b.what;
    EXPECT_EQ(dev.plugged_size(), 2 * kBlock) << b.what;
    EXPECT_EQ(dev.count_plugged_blocks(), 2u) << b.what;
    EXPECT_TRUE(dev.block_plugged(4) && dev.block_plugged(5)) << b.what;
  }
}

TEST_F(MemDeviceTest, AChainWithoutRoomForTheAnswerChangesNothing) {
  dev.set_requested_size(kBlocks * kBlock);
  EXPECT_EQ(rig.send(request(kMemReqPlug, kRegion, 1), kMemResponseBytes - 1).len, 0u);
  EXPECT_EQ(dev.plugged_size(), 0u);
  // Only readable buffers.
  const auto c = rig.driver->add_chain({request(kMemReqPlug, kRegion, 1)}, {});
  dev.queue_notify(0);
  auto used = rig.driver->next_used();
  ASSERT_TRUE(used);
  EXPECT_EQ(used->id, c.head);
  EXPECT_EQ(used->len, 0u);
  // A descriptor outside guest memory: the chain is malformed, used with 0.
  rig.driver->raw_desc(40, RawDescriptor{kRegion + kBlocks * kBlock + kMiB, 24, 0, 0});
  rig.driver->push_avail(40);
  dev.queue_notify(0);
  used = rig.driver->next_used();
  ASSERT_TRUE(used);
  EXPECT_EQ(used->id, 40u);
  EXPECT_EQ(used->len, 0u);
  EXPECT_EQ(dev.plugged_size(), 0u);
}

TEST_F(MemDeviceTest, UnplugGivesTheMemoryBackToTheHost) {
  const int fd = mem.regions()[1].memfd();
  auto allocated = [fd] {
    struct stat st {};
    EXPECT_EQ(fstat(fd, &st), 0);
    return static_cast<uint64_t>(st.st_blocks) * 512;
  };
  dev.set_requested_size(2 * kBlock);
  ASSERT_EQ(rig.answer(kMemReqPlug, 3, 2), kMemRespAck);
  // The guest uses what it plugged.
  mem.fill(GuestAddress(kRegion + 3 * kBlock), 2 * kBlock, 0x77);
  EXPECT_GE(allocated(), 2 * kBlock);
  ASSERT_EQ(rig.answer(kMemReqUnplug, 3, 1), kMemRespAck);
  EXPECT_LE(allocated(), kBlock) << "the unplugged block's pages went back";
  EXPECT_EQ(mem.read_obj<uint64_t>(GuestAddress(kRegion + 3 * kBlock)), 0u);
  EXPECT_EQ(mem.read_obj<uint8_t>(GuestAddress(kRegion + 4 * kBlock)), 0x77) << "the plugged one keeps its data";
  ASSERT_EQ(rig.send(request(kMemReqUnplugAll)).type, kMemRespAck);
  EXPECT_EQ(allocated(), 0u);
  EXPECT_EQ(dev.plugged_size(), 0u);
  EXPECT_EQ(dev.count_plugged_blocks(), 0u);
  EXPECT_EQ(mem.read_obj<uint8_t>(GuestAddress(kRegion + 4 * kBlock)), 0u);
  EXPECT_EQ(rig.send(request(kMemReqUnplugAll)).type, kMemRespAck) << "with nothing plugged too";
}

TEST_F(MemDeviceTest, AResetKeepsTheBlocksForTheNextDriver) {
  dev.set_requested_size(2 * kBlock);
  ASSERT_EQ(rig.answer(kMemReqPlug, 0, 2), kMemRespAck);
  dev.reset();
  dev.queue_notify(0);  // a kick after reset does nothing
  EXPECT_EQ(dev.plugged_size(), 2 * kBlock);
  rig.activate();
  EXPECT_EQ(config_u64(dev, 40), 2 * kBlock) << "the new driver sees what is plugged";
  EXPECT_EQ(rig.send(request(kMemReqUnplugAll)).type, kMemRespAck);
  EXPECT_EQ(dev.plugged_size(), 0u);
}

TEST_F(MemDeviceTest, ARequestedSizeChangeRaisesTheConfigInterrupt) {
  dev.set_requested_size(4 * kBlock);
  EXPECT_EQ(rig.irq->config, 1);
  dev.set_requested_size(4 * kBlock);
  EXPECT_EQ(rig.irq->config, 1) << "no change, no interrupt";
  dev.set_requested_size(0);
  EXPECT_EQ(rig.irq->config, 2);
  EXPECT_THROW(dev.set_requested_size(kBlock + 4096), std::invalid_argument);
  EXPECT_THROW(dev.set_requested_size((kBlocks + 1) * kBlock), std::invalid_argument);
  EXPECT_EQ(dev.requested_size(), 0u);
  dev.reset();
  dev.set_requested_size(kBlock);  // no driver: it reads the value when it probes
  EXPECT_EQ(rig.irq->config, 2);
  EXPECT_EQ(config_u64(dev, 48), kBlock);
}

class CountingLine : public devices::InterruptLine {
 public:
  void trigger() override { ++count; }
  int count = 0;
};

// The same through the mmio transport, as the guest sees it: the
// InterruptStatus bit, the generation and the field at its offset.
TEST(MemDeviceMmio, ARequestedSizeChangeReachesTheDriver) {
  GuestMemory mem = make_memory();
  MemConfig c;
  c.addr = GuestAddress(kRegion);
  c.region_size = kBlocks * kBlock;
  auto dev = std::make_shared<MemDevice>(mem, c);
  auto line = std::make_shared<CountingLine>();
  MmioTransport t(mem, dev, line);
  auto rd = [&](uint64_t off) {
    uint32_t v = 0;
    t.read(off, std::span(reinterpret_cast<uint8_t*>(&v), 4));
    return v;
  };
  auto wr = [&](uint64_t off, uint32_t v) { t.write(off, std::span(reinterpret_cast<const uint8_t*>(&v), 4)); };
  EXPECT_EQ(rd(mmio::kDeviceId), 24u);
  wr(mmio::kStatus, kStatusAcknowledge | kStatusDriver);
  wr(mmio::kDriverFeaturesSel, 1);
  wr(mmio::kDriverFeatures, 1);  // VIRTIO_F_VERSION_1
  wr(mmio::kStatus, kStatusAcknowledge | kStatusDriver | kStatusFeaturesOk);
  const auto q = qconfig();
  wr(mmio::kQueueSel, 0);
  wr(mmio::kQueueNum, q.size);
  wr(mmio::kQueueDescLow, static_cast<uint32_t>(q.desc.value()));
  wr(mmio::kQueueDriverLow, static_cast<uint32_t>(q.avail.value()));
  wr(mmio::kQueueDeviceLow, static_cast<uint32_t>(q.used.value()));
  wr(mmio::kQueueReady, 1);
  wr(mmio::kStatus, kStatusAcknowledge | kStatusDriver | kStatusFeaturesOk | kStatusDriverOk);
  ASSERT_TRUE(t.activated());

  const uint32_t generation = rd(mmio::kConfigGeneration);
  dev->set_requested_size(6 * kBlock);
  EXPECT_EQ(line->count, 1);
  EXPECT_EQ(rd(mmio::kInterruptStatus), kInterruptConfigChange);
  EXPECT_EQ(rd(mmio::kConfigGeneration), generation + 1);
  EXPECT_EQ(rd(mmio::kConfig + 48), 6 * kBlock);
  EXPECT_EQ(rd(mmio::kConfig + 52), 0u);
  EXPECT_EQ(rd(mmio::kConfig + 16), static_cast<uint32_t>(kRegion));
  EXPECT_EQ(rd(mmio::kConfig + 20), static_cast<uint32_t>(kRegion >> 32));

  // A plug through the ring and a kick through QueueNotify.
  DriverQueue driver(mem, q, GuestAddress(kMiB), kMiB);
  const auto chain = driver.add_chain({request(kMemReqPlug, kRegion, 6)}, {kMemResponseBytes});
  wr(mmio::kQueueNotify, 0);
  const auto used = driver.next_used();
  ASSERT_TRUE(used);
  EXPECT_EQ(driver.read_bytes(chain.writable[0], 1)[0], kMemRespAck);
  EXPECT_EQ(rd(mmio::kInterruptStatus), kInterruptConfigChange | kInterruptUsedBuffer);
  EXPECT_EQ(rd(mmio::kConfig + 40), 6 * kBlock);  // plugged_size
  EXPECT_EQ(dev->plugged_size(), 6 * kBlock);
}

TEST(MemDeviceConfig, RefusesWhatNoDeviceCanBe) {
  GuestMemory mem = make_memory();
  auto make = [&](uint64_t addr, uint64_t size, uint64_t block, uint16_t qs = 128) {
    MemConfig c;
    c.addr = GuestAddress(addr);
    c.region_size = size;
    c.block_size = block;
    c.queue_size = qs;
    return MemDevice(mem, c).block_count();
  };
  EXPECT_EQ(make(kRegion, 4 * kBlock, kBlock), 4u);
  EXPECT_THROW(make(kRegion, 4 * kBlock, 3 * kMiB), std::invalid_argument);        // not a power of two
  EXPECT_THROW(make(kRegion, 4 * kBlock, 2048), std::invalid_argument);            // below the page size
  EXPECT_THROW(make(kRegion, 0, kBlock), std::invalid_argument);                   // empty
  EXPECT_THROW(make(kRegion, kBlock + 4096, kBlock), std::invalid_argument);       // not whole blocks
  EXPECT_THROW(make(kRegion + 4096, kBlock, kBlock), std::invalid_argument);       // misaligned start
  EXPECT_THROW(make(kRegion, (kBlocks + 1) * kBlock, kBlock), std::invalid_argument);  // past guest memory
  EXPECT_THROW(make(2 * kMiB, 2 * kBlock, kBlock), std::invalid_argument);             // across RAM and the hole
  EXPECT_THROW(make(kRegion, kBlock, kBlock, 100), std::invalid_argument);             // queue size
  try {
    make(kRegion, (kBlocks + 1) * kBlock, kBlock);
  } catch (const std::invalid_argument& e) {
    EXPECT_STREQ(e.what(), "virtio-mem: region [0x100000000, +0x2200000) is not guest memory");
  }
}

// --- property: random guest requests against a model of the bitmap --------

constexpr uint64_t kPropBlock = 64 * 1024;
constexpr uint64_t kPropBlocks = 48;

const GuestMemory& prop_memory() {
  static const GuestMemory mem = make_memory(kPropBlock * kPropBlocks);
  return mem;
}

// What the device must answer, from the spec's rules over a plain bitmap.
struct Model {
  std::vector<bool> plugged = std::vector<bool>(kPropBlocks, false);
  uint64_t requested_blocks = 0;
  uint64_t count() const { return static_cast<uint64_t>(std::count(plugged.begin(), plugged.end(), true)); }
  std::optional<uint64_t> first(uint64_t addr, uint16_t nb) const {
    if (nb == 0 || addr < kRegion || (addr - kRegion) % kPropBlock) return std::nullopt;
    const uint64_t f = (addr - kRegion) / kPropBlock;
    if (f >= kPropBlocks || nb > kPropBlocks - f) return std::nullopt;
    return f;
  }
  uint64_t in(uint64_t f, uint16_t nb) const {
    return static_cast<uint64_t>(std::count(plugged.begin() + static_cast<long>(f), plugged.begin() + static_cast<long>(f + nb), true));
  }
  Reply apply(uint16_t type, uint64_t addr, uint16_t nb) {
    Reply r{kMemResponseBytes, kMemRespError, 0};
    const auto f = first(addr, nb);
    switch (type) {
      case kMemReqPlug:
        if (!f) break;
        if (count() + nb > requested_blocks) r.type = kMemRespNack;
        else if (in(*f, nb) == 0) r.type = kMemRespAck, std::fill_n(plugged.begin() + static_cast<long>(*f), nb, true);
        break;
      case kMemReqUnplug:
        if (f && in(*f, nb) == nb) r.type = kMemRespAck, std::fill_n(plugged.begin() + static_cast<long>(*f), nb, false);
        break;
      case kMemReqUnplugAll:
        r.type = kMemRespAck;
        std::fill(plugged.begin(), plugged.end(), false);
        break;
      case kMemReqState:
        if (!f) break;
        r.type = kMemRespAck;
        r.state = in(*f, nb) == nb ? kMemStatePlugged : in(*f, nb) == 0 ? kMemStateUnplugged : kMemStateMixed;
        break;
      default: break;
    }
    return r;
  }
};

RC_GTEST_PROP(MemDeviceProperty, RandomRequestsFollowTheModelAndKeepTheInvariants, ()) {
  const GuestMemory& mem = prop_memory();
  Rig rig(mem, kPropBlock, kPropBlocks);
  MemDevice& dev = *rig.dev;
  Model model;
  const auto addr_gen = rc::gen::oneOf(
      rc::gen::map(rc::gen::inRange<uint64_t>(0, kPropBlocks + 2), [](uint64_t b) { return kRegion + b * kPropBlock; }),
      rc::gen::map(rc::gen::inRange<uint64_t>(0, (kPropBlocks + 2) * kPropBlock), [](uint64_t o) { return kRegion + o; }),
      rc::gen::arbitrary<uint64_t>(), rc::gen::element<uint64_t>(uint64_t{0}, kRegion - kPropBlock, ~uint64_t{0}, ~uint64_t{0} - kPropBlock + 1));
  const auto nb_gen = rc::gen::oneOf(rc::gen::inRange<uint16_t>(0, 8), rc::gen::element<uint16_t>(uint16_t{kPropBlocks}, uint16_t{0xffff}),
                                     rc::gen::arbitrary<uint16_t>());
  const int steps = *rc::gen::inRange(1, 60);
  int acks = 0;
  for (int i = 0; i < steps; ++i) {
    if (*rc::gen::inRange(0, 5) == 0) {
      model.requested_blocks = *rc::gen::inRange<uint64_t>(0, kPropBlocks + 1);
      dev.set_requested_size(model.requested_blocks * kPropBlock);
      continue;
    }
    const auto type = *rc::gen::oneOf(rc::gen::inRange<uint16_t>(0, 5), rc::gen::arbitrary<uint16_t>());
    const uint64_t addr = *addr_gen;
    const uint16_t nb = *nb_gen;
    const uint64_t before = dev.plugged_size();
    const Reply got = rig.send(request(type, addr, nb));
    const Reply want = model.apply(type, addr, nb);
    RC_ASSERT(got.len == want.len);
    RC_ASSERT(got.type == want.type);
    if (type == kMemReqState && want.type == kMemRespAck) RC_ASSERT(got.state == want.state);
    // The invariants, whatever the model says.
    RC_ASSERT(dev.plugged_size() == dev.count_plugged_blocks() * kPropBlock);
    RC_ASSERT(dev.plugged_size() <= dev.region_size());
    RC_ASSERT(dev.count_plugged_blocks() == model.count());
    if (dev.plugged_size() > before) RC_ASSERT(type == kMemReqPlug && got.type == kMemRespAck);
    if (type == kMemReqPlug && got.type == kMemRespAck) RC_ASSERT(dev.plugged_size() <= dev.requested_size());
    acks += got.type == kMemRespAck && type != kMemReqState;
  }
  RC_CLASSIFY(acks > 0, "some plug or unplug acknowledged");
  for (uint64_t b = 0; b < kPropBlocks; ++b) RC_ASSERT(dev.block_plugged(b) == model.plugged[b]);
}

}  // namespace
}  // namespace skiff::virtio
