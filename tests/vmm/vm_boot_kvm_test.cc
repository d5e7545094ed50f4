// Guests entering through the real boot paths: PVH (ELF note) and the 64-bit
// Linux boot protocol (bzImage), console output, reset and triple fault.
#include <gtest/gtest.h>
#include "kvm/kvm_uapi.h"
#include <fcntl.h>
#include <poll.h>
#include <termios.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <iterator>

#include "skiff_test_guests.h"
#include "tests/vmm/test_device.h"

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
    Machine vm(cfg);
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
  Machine vm(guest_config(kGuestTripleFault));
  attach_test_devices(vm, rec);
  auto exit = run_to_exit(vm);
  ASSERT_TRUE(exit.has_value()) << "guest did not finish";
  EXPECT_EQ(exit->kind, VmExitKind::TripleFault) << exit->detail;
  EXPECT_EQ(rec->reports(), std::vector<uint32_t>{0x7f});
  EXPECT_EQ(vm.exit_counters(0).get(KVM_EXIT_SHUTDOWN), 1u);
}

}  // namespace
}  // namespace skiff::test

namespace skiff::test {
namespace {

TEST(Boot, ConsoleOnAPseudoTerminal) {
  SKIFF_REQUIRE_KVM();
  auto cfg = guest_config(kGuestHello);
  cfg.console.mode = ConsoleMode::Pty;
  Machine vm(cfg);
  const std::string path = vm.console().pty_path();
  ASSERT_EQ(path.rfind("/dev/pts/", 0), 0u) << path;
  int slave = ::open(path.c_str(), O_RDWR | O_NOCTTY | O_CLOEXEC);
  ASSERT_GE(slave, 0) << path;
  termios t{};
  ASSERT_EQ(::tcgetattr(slave, &t), 0);
  ::cfmakeraw(&t);  // no newline translation: read exactly what the guest wrote
  ASSERT_EQ(::tcsetattr(slave, TCSANOW, &t), 0);
  auto exit = run_to_exit(vm);
  ASSERT_TRUE(exit.has_value());
  EXPECT_EQ(exit->kind, VmExitKind::Reset);
  std::string out;
  char buf[128];
  pollfd p{slave, POLLIN, 0};
  while (out.size() < 25 && ::poll(&p, 1, 1000) > 0) {
    ssize_t n = ::read(slave, buf, sizeof buf);
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  ::close(slave);
  EXPECT_EQ(out, "Hello from a Skiff guest\n");
}

}  // namespace
}  // namespace skiff::test
