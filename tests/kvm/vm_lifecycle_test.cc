// Pause and resume in the middle of a counting loop, stop, and the command
// line's answers to bad input.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <fstream>
#include <thread>

#include "skiff_test_guests.h"
#include "test_device.h"

namespace skiff::test {
namespace {

using namespace std::chrono_literals;

bool consecutive_from_one(const std::vector<uint32_t>& r) {
  for (size_t i = 0; i < r.size(); ++i)
    if (r[i] != i + 1) return false;
  return true;
}

TEST(Lifecycle, PauseStopsTheGuestAndResumeContinuesItExactly) {
  SKIFF_REQUIRE_KVM();
  auto rec = std::make_shared<Recorder>();
  Vm vm(guest_config(kGuestCount));
  attach_test_devices(vm, rec);
  EXPECT_EQ(vm.state(), VmState::Created);
  vm.start();
  ASSERT_TRUE(rec->wait_reports([](const auto& r) { return r.size() >= 50; }, kGuestTimeout));

  vm.pause();
  EXPECT_EQ(vm.state(), VmState::Paused);
  const size_t at_pause = rec->reports().size();
  std::this_thread::sleep_for(200ms);
  EXPECT_EQ(rec->reports().size(), at_pause) << "a paused guest ran";

  vm.resume();
  EXPECT_EQ(vm.state(), VmState::Running);
  ASSERT_TRUE(rec->wait_reports([&](const auto& r) { return r.size() >= at_pause + 50; }, kGuestTimeout));

  vm.stop();
  auto exit = vm.wait_for(kGuestTimeout);
  ASSERT_TRUE(exit.has_value());
  EXPECT_EQ(exit->kind, VmExitKind::Stopped);
  EXPECT_EQ(vm.state(), VmState::Exited);
  // Nothing lost or repeated across the pause.
  EXPECT_TRUE(consecutive_from_one(rec->reports()));
}

TEST(Lifecycle, StopWhilePausedAndDestroyWithoutStart) {
  SKIFF_REQUIRE_KVM();
  {
    auto rec = std::make_shared<Recorder>();
    Vm vm(guest_config(kGuestCount, 2));
    attach_test_devices(vm, rec);
    vm.start();
    ASSERT_TRUE(rec->wait_reports([](const auto& r) { return !r.empty(); }, kGuestTimeout));
    vm.pause();
    vm.stop();
    auto exit = vm.wait_for(kGuestTimeout);
    ASSERT_TRUE(exit.has_value());
    EXPECT_EQ(exit->kind, VmExitKind::Stopped);
  }
  {
    Vm never_started(guest_config(kGuestCount));
    EXPECT_EQ(never_started.state(), VmState::Created);
  }
}

// Runs `skiff ARGS`, returning the exit status and what it printed on stderr.
std::pair<int, std::string> run_skiff(const std::string& args) {
  std::string cmd = std::string(SKIFF_BINARY) + " " + args + " 2>&1 >/dev/null";
  FILE* p = ::popen(cmd.c_str(), "r");
  std::string out;
  std::array<char, 512> buf;
  while (p && std::fgets(buf.data(), buf.size(), p)) out += buf.data();
  int status = p ? ::pclose(p) : -1;
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

std::string write_file(const char* tag, const std::string& bytes) {
  std::string path = std::string(::testing::TempDir()) + "skiff-bad-" + tag;
  std::ofstream(path, std::ios::binary) << bytes;
  return path;
}

void expect_one_line_error(const std::string& args, const std::string& fragment) {
  auto [status, err] = run_skiff(args);
  EXPECT_NE(status, 0) << args;
  EXPECT_NE(status, -1) << args << ": did not exit normally";
  EXPECT_EQ(std::count(err.begin(), err.end(), '\n'), 1) << args << " printed:\n" << err;
  EXPECT_NE(err.find(fragment), std::string::npos) << args << " printed:\n" << err;
}

TEST(Cli, BootReportsTheGuestExitReasonAsStatus) {
  SKIFF_REQUIRE_KVM();
  auto [status, err] = run_skiff(std::string("boot --console none --kernel ") + kGuestHello);
  EXPECT_EQ(status, 3) << err;  // reset
  EXPECT_NE(err.find("VM ended: reset"), std::string::npos) << err;
  auto [tf_status, tf_err] = run_skiff(std::string("boot --console none --kernel ") + kGuestTripleFault);
  EXPECT_EQ(tf_status, 4) << tf_err;
}

TEST(Cli, BadInputGetsOneClearLine) {
  SKIFF_REQUIRE_KVM();
  const std::string hello = kGuestHello;
  expect_one_line_error("boot --kernel /nonexistent/vmlinux", "open kernel /nonexistent/vmlinux: No such file");
  expect_one_line_error("boot --kernel " + write_file("empty", ""), "kernel image is empty");
  expect_one_line_error("boot --kernel " + write_file("junk", std::string(8192, 'x')), "not a Linux kernel image");
  std::string bz(2048, '\0');
  bz[0x1fe] = 0x55;
  bz[0x1ff] = static_cast<char>(0xaa);
  expect_one_line_error("boot --kernel " + write_file("nomagic", bz), "HdrS");
  std::ifstream f(hello, std::ios::binary);
  std::string elf((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  expect_one_line_error("boot --kernel " + write_file("truncated", elf.substr(0, 100)), "");
  expect_one_line_error("boot --memory 0 --kernel " + hello, "memory size 0 MiB is too small");
  expect_one_line_error("boot --memory 100000000 --kernel " + hello, "exceeds this host's");
  expect_one_line_error("boot --vcpus 0 --kernel " + hello, "vCPU count must be at least 1");
  expect_one_line_error("boot --vcpus 5000 --kernel " + hello, "KVM allows at most");
  expect_one_line_error("boot --vcpus 2 --max-vcpus 1 --kernel " + hello, "below the vCPU count");
  expect_one_line_error("boot --memory 2 --kernel " + hello, "too small");
  expect_one_line_error("boot --kernel " + hello + " --initrd /nonexistent", "open initramfs /nonexistent");
  expect_one_line_error("boot --kernel " + hello + " --cmdline \"$(head -c 70000 /dev/zero | tr '\\0' a)\"",
                        "kernel command line is 70000 bytes");
  expect_one_line_error("boot --kernel " + hello + " --console /nonexistent/dir/log", "/nonexistent/dir/log");
  expect_one_line_error("boot --vcpus abc --kernel " + hello, "vcpus");
}

}  // namespace
}  // namespace skiff::test
