// A sandbox whose VM goes wrong before its agent answers: fake hypervisors
// that fail to boot, whose guest never listens, or whose guest dies first.
// Each must end Sandbox::start with one line that says what happened, and
// leave the sandbox stopped, not hanging.
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>
#include <kj/async-io.h>

#include <condition_variable>
#include <cstdlib>
#include <filesystem>
#include <mutex>
#include <stdexcept>
#include <string>

#include "base/config_error.h"
#include "runtime/sandbox/sandbox.h"

namespace skiff::runtime {
namespace {

// A VM that "runs" until stopped, or ends by itself as `end_at_once` says,
// and whose guest refuses every vsock connection (EOF, as the VMM answers
// while nothing listens on the port).
class FakeHypervisor final : public Hypervisor {
 public:
  std::string boot_error;                 // boot throws this, when set
  std::optional<VmExit> end_at_once;      // the VM ends by itself right after boot
  int connects = 0;

  std::string name() const override { return "fake"; }
  HypervisorCapabilities capabilities() const override { return {}; }
  void boot(const VmConfig& config) override {
    if (!boot_error.empty()) throw ConfigError(boot_error);
    booted_vcpus = config.vcpus;
  }
  void pause() override {}
  void resume() override {}
  void stop() override {
    std::lock_guard lock(mu_);
    stopped_ = true;
    cv_.notify_all();
  }
  VmExit wait() override {
    if (end_at_once) return *end_at_once;
    std::unique_lock lock(mu_);
    cv_.wait(lock, [this] { return stopped_; });
    return {VmExitKind::Stopped, "stopped by the host"};
  }
  void resize_vcpus(uint32_t) override {}
  void resize_memory(uint64_t) override {}
  uint64_t memory_mib() const override { return 0; }
  void add_device(const DeviceConfig&) override {}
  bool remove_device(const std::string&) override { return false; }
  UniqueFd connect_vsock(uint32_t) override {
    ++connects;
    int pair[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) != 0) throw std::runtime_error("socketpair");
    ::close(pair[1]);  // refused: the reader sees EOF
    return UniqueFd(pair[0]);
  }
  uint32_t booted_vcpus = 0;

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopped_ = false;
};

class SandboxBootTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/skiff-boot-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  Sandbox::Settings settings(uint32_t boot_timeout_ms) {
    Sandbox::Settings s;
    s.id = "boot1";
    s.state_dir = dir_;
    s.config = default_config("/nonexistent/kernel", "");
    s.config.hypervisor.boot_timeout_ms = boot_timeout_ms;
    s.sizing = {2, 2, 128, ""};
    return s;
  }

  // start()'s error, thrown at once or by its promise.
  std::string start_error(FakeHypervisor& hv, uint32_t boot_timeout_ms, std::string* vm_state = nullptr) {
    auto io = kj::setupAsyncIo();
    Sandbox sandbox(io, hv, settings(boot_timeout_ms));
    std::string error = "(no error)";
    try {
      sandbox.start().wait(io.waitScope);
    } catch (const kj::Exception& e) {
      error = e.getDescription().cStr();
    } catch (const std::exception& e) {
      error = e.what();
    }
    if (vm_state) *vm_state = sandbox.vm_state();
    return error;
  }

  std::string dir_;
};

TEST_F(SandboxBootTest, ABootThatFailsSaysWhyAndLeavesItStopped) {
  FakeHypervisor hv;
  hv.boot_error = "kernel /nonexistent/kernel: No such file or directory";
  std::string state;
  EXPECT_EQ(start_error(hv, 1000, &state), hv.boot_error);
  EXPECT_EQ(state, "stopped");
  EXPECT_EQ(hv.connects, 0) << "no agent is dialled on a VM that never booted";
}

TEST_F(SandboxBootTest, AnAgentThatNeverAnswersTimesOutNamingThePortAndTheConsole) {
  FakeHypervisor hv;
  const auto t0 = std::chrono::steady_clock::now();
  const std::string error = start_error(hv, 300);
  const auto took = std::chrono::steady_clock::now() - t0;
  EXPECT_NE(error.find("did not answer on vsock port 1024 within 300 ms"), std::string::npos) << error;
  EXPECT_NE(error.find(dir_ + "/console.log"), std::string::npos) << error;
  EXPECT_EQ(error.find('\n'), std::string::npos) << "one line: " << error;
  EXPECT_GT(hv.connects, 3) << "refused connections are retried while the guest boots";
  EXPECT_LT(took, std::chrono::seconds(5)) << "the deadline is kept";
  EXPECT_EQ(hv.booted_vcpus, 2u);
}

TEST_F(SandboxBootTest, AVmThatEndsBeforeItsAgentSaysHowItEnded) {
  FakeHypervisor hv;
  hv.end_at_once = VmExit{VmExitKind::Crash, "the guest panicked (pvpanic)"};
  const auto t0 = std::chrono::steady_clock::now();
  std::string state;
  const std::string error = start_error(hv, 20000, &state);
  EXPECT_NE(error.find("the VM ended before its agent answered: the guest panicked (pvpanic)"), std::string::npos) << error;
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(5)) << "no wait for the boot timeout";
  EXPECT_EQ(state, "stopped");
}

}  // namespace
}  // namespace skiff::runtime
