// agent_server: serving ends as told (powerOff, with the reply delivered
// first) or when the runtime is gone past the grace period, and a runtime
// that comes back within it finds the same agent. The agent runs in a child
// process, as under PID 1 in the guest.
#include "agent/agent_server.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <capnp/rpc-twoparty.h>
#include <gtest/gtest.h>
#include <kj/async-io.h>
#include <kj/async-unix.h>

#include <chrono>
#include <cstdlib>
#include <optional>
#include <string>

namespace skiff::agent {
namespace {

using namespace std::chrono_literals;

class AgentServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/skiff-agent-server-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    path_ = dir_ + "/agent.sock";
  }
  void TearDown() override {
    if (child_ > 0) {
      ::kill(child_, SIGKILL);
      ::waitpid(child_, nullptr, 0);
    }
    std::system(("rm -rf " + dir_).c_str());
  }

  // The agent, serving on path_ in a child; its exit status says how it ended.
  void start(std::chrono::milliseconds grace) {
    Fd listener = listen_unix(path_);
    child_ = ::fork();
    ASSERT_GE(child_, 0);
    if (child_ == 0) {
      kj::UnixEventPort::captureChildExit();
      ServeOptions options;
      options.reconnect_grace = grace;
      ::_exit(10 + static_cast<int>(serve(kj::mv(listener), kj::mv(options))));
    }
  }

  // How the child ended (10 + ServeEnd), or nullopt if still running after `within`.
  std::optional<int> ended_within(std::chrono::milliseconds within) {
    const auto deadline = std::chrono::steady_clock::now() + within;
    while (std::chrono::steady_clock::now() < deadline) {
      int status = 0;
      pid_t r = ::waitpid(child_, &status, WNOHANG);
      if (r == child_) {
        child_ = -1;
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      }
      ::usleep(10000);
    }
    return std::nullopt;
  }

  // One connection's worth of client: connects, asks the version, hangs up.
  std::string version_over_new_connection(kj::AsyncIoContext& io) {
    auto stream = io.provider->getNetwork().parseAddress("unix:" + path_).wait(io.waitScope)->connect().wait(io.waitScope);
    capnp::TwoPartyClient client(*stream);
    auto sandbox = client.bootstrap().castAs<api::Sandbox>();
    auto reply = sandbox.versionRequest().send().wait(io.waitScope);
    return reply.getAgentVersion().cStr();
  }

  static int code(ServeEnd end) { return 10 + static_cast<int>(end); }

  std::string dir_, path_;
  pid_t child_ = -1;
};

TEST_F(AgentServerTest, RuntimeGoneForGoodEndsServingAfterTheGracePeriod) {
  start(300ms);
  auto io = kj::setupAsyncIo();
  EXPECT_EQ(version_over_new_connection(io), "0.1.0");
  // Not before the grace period is up...
  EXPECT_EQ(ended_within(150ms), std::nullopt);
  // ...but soon after.
  EXPECT_EQ(ended_within(3s), code(ServeEnd::RuntimeGone));
}

TEST_F(AgentServerTest, NoConnectionYetIsNotARuntimeGone) {
  start(100ms);
  EXPECT_EQ(ended_within(500ms), std::nullopt);
}

TEST_F(AgentServerTest, ARuntimeBackWithinTheGracePeriodFindsTheSameAgent) {
  start(800ms);
  auto io = kj::setupAsyncIo();
  EXPECT_EQ(version_over_new_connection(io), "0.1.0");
  ::usleep(300000);
  EXPECT_EQ(version_over_new_connection(io), "0.1.0");
  ::usleep(600000);  // 900 ms after the first hang-up, 600 after the second
  EXPECT_EQ(ended_within(0ms), std::nullopt);
  EXPECT_EQ(ended_within(3s), code(ServeEnd::RuntimeGone));
}

TEST_F(AgentServerTest, PowerOffAnswersThenEnds) {
  for (bool reboot : {false, true}) {
    SCOPED_TRACE(reboot ? "reboot" : "power off");
    start(60s);
    auto io = kj::setupAsyncIo();
    auto stream = io.provider->getNetwork().parseAddress("unix:" + path_).wait(io.waitScope)->connect().wait(io.waitScope);
    capnp::TwoPartyClient client(*stream);
    auto sandbox = client.bootstrap().castAs<api::Sandbox>();
    auto req = sandbox.powerOffRequest();
    req.setReboot(reboot);
    EXPECT_NO_THROW(req.send().wait(io.waitScope));  // answered, not cut off
    EXPECT_EQ(ended_within(3s), code(reboot ? ServeEnd::Reboot : ServeEnd::PowerOff));
  }
}

TEST(AgentListen, BadUnixPathIsAClearError) {
  try {
    listen_unix(std::string(200, 'x'));
    FAIL() << "no error";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("longer than 107 bytes"), std::string::npos) << e.what();
  }
  try {
    listen_unix("/nonexistent-dir/agent.sock");
    FAIL() << "no error";
  } catch (const std::runtime_error& e) {
    EXPECT_EQ(std::string(e.what()), "bind /nonexistent-dir/agent.sock: No such file or directory");
  }
}

}  // namespace
}  // namespace skiff::agent
