// Port and MMIO accesses reaching devices with the right data, ioeventfd and
// irqfd round trips, and several vCPUs each reporting their APIC id.
#include <gtest/gtest.h>
#include "kvm/kvm_uapi.h"

#include <set>

#include "devices/interrupts.h"
#include "skiff_test_guests.h"
#include "tests/vmm/test_device.h"

namespace skiff::test {
namespace {

TEST(Devices, PortAndMmioAccessesCarryTheRightData) {
  SKIFF_REQUIRE_KVM();
  auto rec = std::make_shared<Recorder>();
  Machine vm(guest_config(kGuestPioMmio));
  attach_test_devices(vm, rec);
  auto exit = run_to_exit(vm);
  ASSERT_TRUE(exit.has_value()) << "guest did not finish";
  EXPECT_EQ(exit->kind, VmExitKind::Reset) << exit->detail;

  const std::vector<Access> expected_writes = {
      {0x518, 1, 0x11},
      {0x51a, 2, 0x2233},
      {0x51c, 4, 0x44556677},
      {0xd0000010, 1, 0x88},
      {0xd0000020, 2, 0x99aa},
      {0xd0000030, 4, 0xbbccddee},
      {0xd0000040, 8, 0x0102030405060708},
  };
  EXPECT_EQ(rec->writes(), expected_writes);

  const uint64_t mmio8 = expected_mmio_read(0xd0000080, 8);
  const std::vector<uint32_t> expected_reports = {
      static_cast<uint32_t>(expected_pio_read(0x518, 1)),
      static_cast<uint32_t>(expected_pio_read(0x51a, 2)),
      static_cast<uint32_t>(expected_pio_read(0x51c, 4)),
      static_cast<uint32_t>(expected_mmio_read(0xd0000050, 1)),
      static_cast<uint32_t>(expected_mmio_read(0xd0000060, 2)),
      static_cast<uint32_t>(expected_mmio_read(0xd0000070, 4)),
      static_cast<uint32_t>(mmio8),
      static_cast<uint32_t>(mmio8 >> 32),
  };
  EXPECT_EQ(rec->reports(), expected_reports);
  EXPECT_GE(vm.exit_counters(0).get(KVM_EXIT_MMIO), 8u);
  EXPECT_EQ(vm.exit_counters(0).unclaimed_mmio(), 0u);
}

TEST(Devices, IoeventfdAndIrqfdRoundTrip) {
  SKIFF_REQUIRE_KVM();
  auto rec = std::make_shared<Recorder>();
  Machine vm(guest_config(kGuestIrq));
  attach_test_devices(vm, rec);
  devices::IoEventFd pio_kick(vm.kvm_vm(), kIoeventPort, 4, true);
  devices::IoEventFd mmio_kick(vm.kvm_vm(), kIoeventMmio, 4, false, 0x5678);
  const uint32_t gsi = vm.gsi_allocator().allocate();
  ASSERT_EQ(gsi, 5u) << "the guest programs IOAPIC pin 5";
  devices::IrqFd irq(vm.kvm_vm(), gsi);
  vm.start();

  // The guest kicks both, then says it waits for the interrupt.
  ASSERT_TRUE(pio_kick.event().wait(static_cast<int>(std::chrono::milliseconds(kGuestTimeout).count())));
  ASSERT_TRUE(mmio_kick.event().wait(static_cast<int>(std::chrono::milliseconds(kGuestTimeout).count())));
  EXPECT_EQ(pio_kick.event().consume(), 1u);
  EXPECT_EQ(mmio_kick.event().consume(), 1u);
  ASSERT_TRUE(rec->wait_reports([](const auto& r) { return !r.empty(); }, kGuestTimeout));
  EXPECT_EQ(rec->reports(), std::vector<uint32_t>{0x1});

  irq.trigger();
  auto exit = vm.wait_for(kGuestTimeout);
  ASSERT_TRUE(exit.has_value()) << "guest did not take the interrupt";
  EXPECT_EQ(exit->kind, VmExitKind::Reset) << exit->detail;
  EXPECT_EQ(rec->reports(), (std::vector<uint32_t>{0x1, 0x30}));
  // ioeventfd writes complete in the kernel: no device on the bus saw them.
  EXPECT_TRUE(rec->writes().empty());
  EXPECT_EQ(vm.exit_counters(0).unclaimed_pio(), 0u);
}

class Smp : public ::testing::TestWithParam<uint32_t> {};

TEST_P(Smp, EveryVcpuReportsItsApicId) {
  SKIFF_REQUIRE_KVM();
  const uint32_t n = GetParam();
  auto rec = std::make_shared<Recorder>();
  auto cfg = guest_config(kGuestSmp, n);
  // Room for two more: every possible vCPU is present and enabled in the MP
  // table (Linux's maxcpus= keeps the extra ones offline until the agent sets
  // them online), so this guest, which starts what the table lists, runs all.
  cfg.max_vcpus = n + 2;
  const uint32_t present = n + 2;
  Machine vm(cfg);
  attach_test_devices(vm, rec);
  auto exit = run_to_exit(vm);
  ASSERT_TRUE(exit.has_value()) << "guest did not finish; reports so far: " << rec->reports().size();
  EXPECT_EQ(exit->kind, VmExitKind::Reset) << exit->detail;
  auto reports = rec->reports();
  ASSERT_FALSE(reports.empty());
  EXPECT_EQ(reports.back(), 0x200 | present) << "the BSP counts the enabled processors of the MP table";
  std::multiset<uint32_t> ids(reports.begin(), reports.end() - 1);
  std::multiset<uint32_t> expected;
  for (uint32_t i = 0; i < present; ++i) expected.insert(0x100 | i);
  EXPECT_EQ(ids, expected);
}

INSTANTIATE_TEST_SUITE_P(Vcpus, Smp, ::testing::Values(1u, 2u, 4u));

}  // namespace
}  // namespace skiff::test

#include <unistd.h>

#include "base/unique_fd.h"
#include "virtio/testing/fake_device.h"
#include "virtio/vsock/vsock_device.h"
#include "vmm/boot/layout.h"

namespace skiff::test {
namespace {

// A 1 MiB image file, removed with the object.
class ScratchDisk {
 public:
  ScratchDisk() {
    path_ = ::testing::TempDir() + "skiff-devices-XXXXXX";
    UniqueFd fd(::mkstemp(path_.data()));
    if (!fd || ::ftruncate(fd.get(), 1 << 20) != 0) throw std::system_error(errno, std::generic_category(), path_);
  }
  ~ScratchDisk() { ::unlink(path_.c_str()); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

TEST(Devices, VirtioDevicesGetAWindowAnIrqAndACommandLineEntry) {
  SKIFF_REQUIRE_KVM();
  ScratchDisk disk;
  auto cfg = guest_config(kGuestHello);
  DiskConfig d;
  d.path = disk.path();
  VsockConfig v;
  v.guest_cid = 7;
  cfg.devices = {d, v};
  Machine vm(cfg);
  // The transports answer on the MMIO bus with the virtio magic.
  for (uint64_t base : {layout::kVirtioMmioStart, layout::kVirtioMmioStart + layout::kVirtioMmioWindow}) {
    uint32_t magic = 0;
    ASSERT_TRUE(vm.mmio_bus().read(base, std::span(reinterpret_cast<uint8_t*>(&magic), 4)));
    EXPECT_EQ(magic, 0x74726976u);
  }
  char cmdline[512] = {};
  vm.memory().read(GuestAddress(layout::kCmdlineAddr), std::span(reinterpret_cast<uint8_t*>(cmdline), 511));
  EXPECT_NE(std::string(cmdline).find(" virtio_mmio.device=4K@0xd1000000:5 virtio_mmio.device=4K@0xd1001000:6"),
            std::string::npos)
      << cmdline;
  // Named by kind in attach order, found by id and by type.
  ASSERT_NE(vm.devices().find("disk0"), nullptr);
  ASSERT_NE(vm.devices().find("vsock0"), nullptr);
  EXPECT_EQ(vm.devices().find("disk0")->mmio_base, layout::kVirtioMmioStart);
  EXPECT_EQ(vm.devices().find("vsock0")->gsi, 6u);
  EXPECT_EQ(vm.devices().find_type(2).size(), 1u);
  EXPECT_EQ(vm.devices().find("vsock0")->model.get(), static_cast<virtio::VirtioDevice*>(vm.vsock().get()));
  // The guest still boots and ends as before.
  auto exit = run_to_exit(vm);
  ASSERT_TRUE(exit.has_value());
  EXPECT_EQ(exit->kind, VmExitKind::Reset);
}

// Add and remove, before start and while the guest runs: windows and GSIs
// are given back and reused, ids stay unique, a failed add leaves nothing.
TEST(Devices, AddAndRemoveReuseWindowsAndGsis) {
  SKIFF_REQUIRE_KVM();
  ScratchDisk disk;
  Machine vm(guest_config(kGuestCount));
  auto& devices = vm.devices();
  const uint32_t gsis_before = vm.gsi_allocator().available();
  const auto& a = devices.add(std::string("fake-a"), std::make_shared<virtio::testing::FakeDevice>());
  EXPECT_EQ(a.mmio_base, layout::kVirtioMmioStart);
  DiskConfig d;
  d.path = disk.path();
  const auto& b = vm.add_device(d);
  EXPECT_EQ(b.id, "disk0");
  EXPECT_EQ(b.mmio_base, layout::kVirtioMmioStart + layout::kVirtioMmioWindow);
  EXPECT_EQ(vm.gsi_allocator().available(), gsis_before - 2);

  // Same id twice, and a disk that won't open: refused, nothing attached.
  d.id = "disk0";
  EXPECT_THROW(vm.add_device(d), ConfigError);
  DiskConfig missing;
  missing.path = "/nonexistent/skiff-disk.img";
  EXPECT_ANY_THROW(vm.add_device(missing));
  EXPECT_EQ(devices.size(), 2u);
  EXPECT_EQ(vm.gsi_allocator().available(), gsis_before - 2);

  // Removing gives the window back: the next device takes the lowest one.
  EXPECT_TRUE(vm.remove_device("fake-a"));
  EXPECT_FALSE(vm.remove_device("fake-a"));
  EXPECT_EQ(vm.gsi_allocator().available(), gsis_before - 1);
  uint32_t magic = 0;
  EXPECT_FALSE(vm.mmio_bus().read(layout::kVirtioMmioStart, std::span(reinterpret_cast<uint8_t*>(&magic), 4)));
  vm.start();
  const auto& c = vm.add_device(VsockConfig{});
  EXPECT_EQ(c.id, "vsock0");
  EXPECT_EQ(c.mmio_base, layout::kVirtioMmioStart);
  EXPECT_TRUE(vm.mmio_bus().read(layout::kVirtioMmioStart, std::span(reinterpret_cast<uint8_t*>(&magic), 4)));
  EXPECT_EQ(magic, 0x74726976u);
  // While the guest runs: its vCPUs are parked around the removal.
  EXPECT_TRUE(vm.remove_device("disk0"));
  EXPECT_EQ(vm.state(), VmState::Running);
  EXPECT_EQ(devices.size(), 1u);
  vm.stop();
  vm.wait();
}

}  // namespace
}  // namespace skiff::test
