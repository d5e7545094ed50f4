// The machine's virtio-mem wiring (VmConfig::max_memory_mib) on a real KVM
// VM: the hotplug region above RAM and 4 GiB as its own region, the device
// announced on the command line like every virtio-mmio device, and
// resize_memory's bounds. The guests never run: the set-up is what is
// checked (the full-system tier's ctl_memory_resize runs Linux's driver).
#include <gtest/gtest.h>

#include <string>

#include "skiff_test_guests.h"
#include "tests/vmm/test_device.h"
#include "virtio/mem/mem_device.h"
#include "virtio/mmio_transport.h"
#include "vmm/boot/layout.h"

namespace skiff::test {
namespace {

constexpr uint64_t kMiB = 1ull << 20;

std::string config_error(const std::function<void()>& f) {
  try {
    f();
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(MemoryResize, AMaximumGivesAVirtioMemDeviceAboveRam) {
  SKIFF_REQUIRE_KVM();
  VmConfig c = guest_config(kGuestHello);
  c.max_memory_mib = 64 + 200;  // a region of two 128 MiB memory blocks, 200 MiB of it offered
  Machine vm(c);
  const auto& regions = vm.memory().regions();
  ASSERT_EQ(regions.size(), 2u);
  EXPECT_EQ(regions[1].start().value(), layout::kMmioGapEnd);
  EXPECT_EQ(regions[1].size(), 256 * kMiB);
  const auto* d = vm.devices().find(kMemDeviceId);
  ASSERT_NE(d, nullptr);
  EXPECT_EQ(d->virtio_type, virtio::kMemDeviceType);
  EXPECT_NE(vm.devices().cmdline_args().find(virtio::mmio_cmdline_arg(d->mmio_base, layout::kVirtioMmioWindow, d->gsi)),
            std::string::npos);
  ASSERT_TRUE(vm.mem_device());
  EXPECT_EQ(vm.mem_device()->addr().value(), layout::kMmioGapEnd);

  EXPECT_EQ(vm.memory_mib(), 64u);
  EXPECT_EQ(vm.max_memory_mib(), 264u);
  vm.resize_memory(192);
  EXPECT_EQ(vm.mem_device()->requested_size(), 128 * kMiB);
  EXPECT_EQ(vm.memory_mib(), 64u) << "nothing is plugged until the guest asks";
  vm.resize_memory(264);
  EXPECT_EQ(vm.mem_device()->requested_size(), 200 * kMiB);
  EXPECT_EQ(config_error([&] { vm.resize_memory(266); }), "266 MiB of memory: this VM can have 64 to 264 MiB");
  EXPECT_EQ(config_error([&] { vm.resize_memory(62); }), "62 MiB of memory: this VM can have 64 to 264 MiB");
  EXPECT_EQ(config_error([&] { vm.resize_memory(65); }),
            "65 MiB of memory: the memory above the 64 MiB booted must be a multiple of 2 MiB");
  EXPECT_EQ(vm.mem_device()->requested_size(), 200 * kMiB) << "a refused resize changes nothing";
  EXPECT_EQ(config_error([&] { vm.remove_device(kMemDeviceId); }),
            "device mem0 is the VM's virtio-mem device: it can't be removed");
}

TEST(MemoryResize, WithoutAMaximumThereIsNoDevice) {
  SKIFF_REQUIRE_KVM();
  Machine vm(guest_config(kGuestHello));
  EXPECT_EQ(vm.memory().regions().size(), 1u);
  EXPECT_EQ(vm.devices().find(kMemDeviceId), nullptr);
  EXPECT_FALSE(vm.mem_device());
  EXPECT_EQ(vm.max_memory_mib(), 64u);
  EXPECT_EQ(config_error([&] { vm.resize_memory(64); }),
            "this VM has no virtio-mem device: its memory stays at 64 MiB (boot it with a maximum memory above that)");
}

TEST(MemoryResize, MaximumsNoVmCanHave) {
  SKIFF_REQUIRE_KVM();
  VmConfig below = guest_config(kGuestHello);
  below.max_memory_mib = 32;
  EXPECT_EQ(config_error([&] { Machine vm(below); }), "maximum memory 32 MiB is below the memory size (64 MiB)");
  VmConfig odd = guest_config(kGuestHello);
  odd.max_memory_mib = 65;
  EXPECT_EQ(config_error([&] { Machine vm(odd); }),
            "maximum memory 65 MiB: the memory above the 64 MiB booted must be a multiple of 2 MiB (virtio-mem's block "
            "size)");
}

}  // namespace
}  // namespace skiff::test
