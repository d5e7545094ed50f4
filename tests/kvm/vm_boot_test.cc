// Guests entering through the real boot paths: PVH (ELF note) and the 64-bit
// Linux boot protocol (bzImage), console output, reset and triple fault.
#include <gtest/gtest.h>
#include "vmm/kvm_uapi.h"
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <iterator>

#include "skiff_test_guests.h"
#include "test_device.h"

namespace skiff::test {
namespace {

std::string temp_path(const char* tag) {
  return std::string(::testing::TempDir()) + "skiff-" + tag + "-" + std::to_string(::getpid());
}

std::string slurp(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
}

std::string boot_to_console(const std::string& kernel, VmExit& exit) {
  auto console = temp_path("console");
  std::remove(console.c_str());
  auto cfg = guest_config(kernel);
  cfg.console = {ConsoleMode::File, console};
  {
    Vm vm(cfg);
    auto e = run_to_exit(vm);
    if (!e) {
      ADD_FAILURE() << "guest did not finish within " << kGuestTimeout.count() << " s";
      return slurp(console);
    }
    exit = *e;
    EXPECT_GT(vm.exit_counters(0).get(KVM_EXIT_IO), 0u);
  }
  auto out = slurp(console);
  std::remove(console.c_str());
  return out;
}

TEST(Boot, PvhElfGuestPrintsOnSerialAndResets) {
  SKIFF_REQUIRE_KVM();
  VmExit exit;
  EXPECT_EQ(boot_to_console(kGuestHello, exit), "Hello from a Skiff guest\n");
  EXPECT_EQ(exit.kind, VmExitKind::Reset) << exit.detail;
  EXPECT_NE(exit.detail.find("i8042"), std::string::npos) << exit.detail;
}

TEST(Boot, BzImageGuestEntersIn64BitModeWithZeroPage) {
  SKIFF_REQUIRE_KVM();
  VmExit exit;
  EXPECT_EQ(boot_to_console(kGuestHelloBzImage, exit), "Hello from a Skiff bzImage\n");
  EXPECT_EQ(exit.kind, VmExitKind::Reset) << exit.detail;
}

TEST(Boot, TripleFaultEndsTheVmWithItsReason) {
  SKIFF_REQUIRE_KVM();
  auto rec = std::make_shared<Recorder>();
  Vm vm(guest_config(kGuestTripleFault));
  attach_test_devices(vm, rec);
  auto exit = run_to_exit(vm);
  ASSERT_TRUE(exit.has_value()) << "guest did not finish";
  EXPECT_EQ(exit->kind, VmExitKind::TripleFault) << exit->detail;
  EXPECT_EQ(rec->reports(), std::vector<uint32_t>{0x7f});
  EXPECT_EQ(vm.exit_counters(0).get(KVM_EXIT_SHUTDOWN), 1u);
}

}  // namespace
}  // namespace skiff::test
