// Pause and resume in the middle of a counting loop, stop, and the command
// line's answers to bad input.
#include <gtest/gtest.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <fstream>
#include <thread>

#include "skiff_test_guests.h"
#include "tests/vmm/test_device.h"

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
  Machine vm(guest_config(kGuestCount));
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
    Machine vm(guest_config(kGuestCount, 2));
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
    Machine never_started(guest_config(kGuestCount));
    EXPECT_EQ(never_started.state(), VmState::Created);
  }
}

// Runs a shell command; returns its exit status and what it printed.
std::pair<int, std::string> run_capture(const std::string& cmd) {
  FILE* p = ::popen(cmd.c_str(), "r");
  std::string out;
  std::array<char, 512> buf;
  while (p && std::fgets(buf.data(), buf.size(), p)) out += buf.data();
  int status = p ? ::pclose(p) : -1;
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

// Runs `skiff ARGS`, returning the exit status and what it printed on stderr.
std::pair<int, std::string> run_skiff(const std::string& args) {
  return run_capture(std::string(SKIFF_BINARY) + " " + args + " 2>&1 >/dev/null");
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
  expect_one_line_error("boot --kernel " + hello + " --disk /nonexistent/disk.img", "open disk /nonexistent/disk.img");
  expect_one_line_error("boot --kernel " + hello + " --disk " + hello + ",bogus", "unknown option \"bogus\"");
  expect_one_line_error("boot --kernel " + hello + " --disk " + hello + ",serial=123456789012345678901",
                        "serial is longer than 20 bytes");
  // Two devices may not share an id; the machine is not created.
  expect_one_line_error("boot --kernel " + hello + " --disk " + hello + ",ro,id=d --disk " + hello + ",ro,id=d",
                        "disk \"d\": a device with this id exists");
  expect_one_line_error("boot --kernel " + hello + " --vsock 2", "CID 2 is reserved");
}

}  // namespace
}  // namespace skiff::test

namespace skiff::test {
namespace {

TEST(Cli, BootWritesStructuredLogs) {
  SKIFF_REQUIRE_KVM();
  std::string log = std::string(::testing::TempDir()) + "skiff-boot-log.jsonl";
  std::remove(log.c_str());
  auto [status, err] = run_skiff(std::string("boot --console none --log ") + log + " --kernel " + kGuestHello);
  EXPECT_EQ(status, 3) << err;
  std::ifstream f(log);
  std::vector<std::string> lines;
  for (std::string line; std::getline(f, line);) lines.push_back(line);
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_NE(lines[0].find("\"msg\":\"vm created\""), std::string::npos) << lines[0];
  EXPECT_NE(lines[0].find("\"entry\":\"pvh\""), std::string::npos) << lines[0];
  EXPECT_NE(lines[1].find("\"msg\":\"vm started\""), std::string::npos) << lines[1];
  EXPECT_NE(lines[2].find("\"msg\":\"vm exited\",\"reason\":\"reset\""), std::string::npos) << lines[2];
  EXPECT_NE(lines[2].find("\"exits_vcpu0\":\"io="), std::string::npos) << lines[2];
  for (const auto& l : lines) EXPECT_NE(l.find("\"component\":\"vmm\""), std::string::npos) << l;
  std::remove(log.c_str());
}

// `skiff check` prints one line per item; the verdict depends on the host,
// the items this machine has must say OK.
TEST(Cli, CheckReportsEachItem) {
  SKIFF_REQUIRE_KVM();
  auto [check_status, out] = run_capture(std::string(SKIFF_BINARY) + " check --kernel " + kGuestHelloBzImage + " 2>&1");
  EXPECT_NE(check_status, -1);
  auto line_of = [&](const std::string& item) {
    auto pos = out.find("\n" + item + " ");
    if (pos == std::string::npos && out.rfind(item + " ", 0) == 0) pos = 0;
    else if (pos != std::string::npos) ++pos;
    if (pos == std::string::npos) return std::string();
    return out.substr(pos, out.find('\n', pos) - pos);
  };
  EXPECT_NE(line_of("kvm").find(" OK"), std::string::npos) << out;
  EXPECT_NE(line_of("kvm flavour").find(" OK"), std::string::npos) << out;
  EXPECT_NE(line_of("KVM_CAP_IRQFD").find(" OK"), std::string::npos) << out;
  EXPECT_NE(line_of("KVM_CAP_IMMEDIATE_EXIT").find(" OK"), std::string::npos) << out;
  EXPECT_NE(line_of("kernel").find("OK    " + std::string(kGuestHelloBzImage) + " (bzImage, boot protocol 2.15)"),
            std::string::npos) << out;
  for (const char* item : {"tun", "vsock", "cgroup v2"}) EXPECT_FALSE(line_of(item).empty()) << item << "\n" << out;

  auto [status, err] = run_skiff("check --kernel /nonexistent/bzImage");
  EXPECT_EQ(status, 1);
  auto [bad_status, out2] = run_capture(std::string(SKIFF_BINARY) + " check --kernel /etc/hostname");
  EXPECT_EQ(bad_status, 1);
  EXPECT_NE(out2.find("kernel                 FAIL  /etc/hostname: "), std::string::npos) << out2;
}

}  // namespace
}  // namespace skiff::test

namespace skiff::test {
namespace {

// On a terminal, skiff boot hands keys to the guest unbuffered and gives the
// terminal back as it found it.
TEST(Cli, StdioConsoleRestoresTheTerminal) {
  SKIFF_REQUIRE_KVM();
  int master = ::posix_openpt(O_RDWR | O_NOCTTY);
  ASSERT_GE(master, 0);
  ASSERT_EQ(::grantpt(master), 0);
  ASSERT_EQ(::unlockpt(master), 0);
  int slave = ::open(::ptsname(master), O_RDWR | O_NOCTTY);
  ASSERT_GE(slave, 0);
  termios before{};
  ASSERT_EQ(::tcgetattr(slave, &before), 0);
  ASSERT_TRUE(before.c_lflag & ICANON);
  pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(slave, 0);
    ::dup2(slave, 1);
    ::execl(SKIFF_BINARY, "skiff", "boot", "-q", "--kernel", kGuestHello, static_cast<char*>(nullptr));
    ::_exit(127);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  EXPECT_EQ(WEXITSTATUS(status), 3);
  termios after{};
  ASSERT_EQ(::tcgetattr(slave, &after), 0);
  EXPECT_EQ(after.c_lflag, before.c_lflag);
  EXPECT_EQ(after.c_iflag, before.c_iflag);
  char buf[256];
  pollfd p{master, POLLIN, 0};
  std::string out;
  while (::poll(&p, 1, 200) > 0) {
    ssize_t n = ::read(master, buf, sizeof buf);
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  EXPECT_NE(out.find("Hello from a Skiff guest"), std::string::npos) << out;
  ::close(slave);
  ::close(master);
}

}  // namespace
}  // namespace skiff::test
