// OCI hooks run as runc runs them: the state on stdin, exactly the hook's
// env, output on our stderr, one line for a failure, SIGKILL at the timeout.
#include "runtime/oci/hooks.h"

#include <fcntl.h>
#include <sched.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "base/unique_fd.h"

namespace skiff::runtime::oci {
namespace {

namespace fs = std::filesystem;

std::string slurp(const fs::path& p) {
  std::ifstream f(p);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

// Sends this process's stderr to a file while it lives.
class StderrCapture {
 public:
  explicit StderrCapture(const std::string& path)
      : saved_(::dup(STDERR_FILENO)), file_(::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600)) {
    if (!saved_ || !file_) throw std::runtime_error("StderrCapture: " + path);
    ::dup2(file_.get(), STDERR_FILENO);
  }
  ~StderrCapture() { ::dup2(saved_.get(), STDERR_FILENO); }
  StderrCapture(const StderrCapture&) = delete;
  StderrCapture& operator=(const StderrCapture&) = delete;

 private:
  UniqueFd saved_, file_;
};

class HooksTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/skiff-hooks-XXXXXX";
    dir_ = ::mkdtemp(tmpl);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string path(const std::string& name) const { return (dir_ / name).string(); }
  // The message run_hooks fails with (or "" when it does not).
  static std::string failure(const std::vector<Hook>& hooks, const std::string& state = "{}") {
    try {
      run_hooks(hooks, "prestart", state);
    } catch (const std::runtime_error& e) {
      return e.what();
    }
    return "";
  }
  fs::path dir_;
};

Hook sh(const std::string& script, std::optional<int> timeout = std::nullopt) {
  return {"/bin/sh", {"sh", "-c", script}, {"PATH=/usr/bin:/bin"}, timeout};
}

TEST_F(HooksTest, StateArrivesOnStdin) {
  const std::string state = state_json("1.0.2", "c1", "created", 4242, "/run/bundles/c1", {{"io.example", "yes"}});
  run_hooks({sh("cat > " + path("state"))}, "createRuntime", state);
  EXPECT_EQ(slurp(path("state")), state);
  const auto j = nlohmann::json::parse(state);
  EXPECT_EQ(j["ociVersion"], "1.0.2");
  EXPECT_EQ(j["id"], "c1");
  EXPECT_EQ(j["status"], "created");
  EXPECT_EQ(j["pid"], 4242);
  EXPECT_EQ(j["bundle"], "/run/bundles/c1");
  EXPECT_EQ(j["annotations"]["io.example"], "yes");
}

TEST_F(HooksTest, StateWithoutPidLeavesItOut) {
  const auto j = nlohmann::json::parse(state_json("1.0.2", "c1", "stopped", 0, "/b", {}));
  EXPECT_FALSE(j.contains("pid"));
  EXPECT_FALSE(j.contains("annotations"));
  EXPECT_EQ(j["status"], "stopped");
}

TEST_F(HooksTest, FailingHookSaysItsStatus) {
  EXPECT_EQ(failure({sh("exit 3")}), "prestart hook /bin/sh: exited with status 3");
}

TEST_F(HooksTest, SignalledHookSaysTheSignal) {
  EXPECT_EQ(failure({sh("kill -9 $$")}).rfind("prestart hook /bin/sh: killed by signal 9", 0), 0u);
}

TEST_F(HooksTest, FirstFailureStopsTheRest) {
  EXPECT_NE(failure({sh("true"), sh("exit 1"), sh("touch " + path("ran"))}), "");
  EXPECT_FALSE(fs::exists(path("ran")));
  EXPECT_EQ(failure({sh("touch " + path("a")), sh("touch " + path("b"))}), "");
  EXPECT_TRUE(fs::exists(path("a")));
  EXPECT_TRUE(fs::exists(path("b")));
}

TEST_F(HooksTest, TimeoutKills) {
  const auto start = std::chrono::steady_clock::now();
  // The pid file shows the hook was killed, not left behind.
  EXPECT_EQ(failure({sh("echo $$ > " + path("pid") + "; exec sleep 30", 1)}), "prestart hook /bin/sh: timed out after 1 s");
  const auto took = std::chrono::steady_clock::now() - start;
  EXPECT_GE(took, std::chrono::milliseconds(900));
  EXPECT_LT(took, std::chrono::seconds(10));
  const pid_t pid = std::stoi(slurp(path("pid")));
  EXPECT_FALSE(fs::exists("/proc/" + std::to_string(pid))) << "the hook's process is still there";
}

TEST_F(HooksTest, TimeoutAlsoCoversAHookThatNeverReadsItsStdin) {
  const std::string big(1 << 20, 'x');  // more than a pipe holds
  EXPECT_EQ(failure({sh("exec sleep 30", 1)}, big), "prestart hook /bin/sh: timed out after 1 s");
}

TEST_F(HooksTest, HookThatIgnoresItsStdinIsFine) {
  const std::string big(1 << 20, 'x');
  EXPECT_EQ(failure({sh("exit 0")}, big), "");  // EPIPE on the state: no SIGPIPE for us
}

TEST_F(HooksTest, EnvIsExactlyTheHooks) {
  ::setenv("SKIFF_HOOK_TEST_LEAK", "1", 1);
  {
    StderrCapture capture(path("stderr"));
    run_hooks({{"/usr/bin/env", {"env"}, {"A=1", "B=two words"}, std::nullopt}}, "poststart", "{}");
  }
  ::unsetenv("SKIFF_HOOK_TEST_LEAK");
  EXPECT_EQ(slurp(path("stderr")), "A=1\nB=two words\n");  // stdout went to our stderr
}

TEST_F(HooksTest, EmptyEnvIsEmpty) {
  StderrCapture capture(path("stderr"));
  run_hooks({{"/usr/bin/env", {"env"}, {}, std::nullopt}}, "poststart", "{}");
  EXPECT_EQ(slurp(path("stderr")), "");
}

TEST_F(HooksTest, ArgsZeroIsArgvZero) {
  run_hooks({{"/bin/sh", {"custom-name", "-c", "echo \"$0\" > " + path("argv0")}, {}, std::nullopt}}, "prestart", "{}");
  EXPECT_EQ(slurp(path("argv0")), "custom-name\n");
}

TEST_F(HooksTest, NoArgsRunsThePath) {
  const std::string script = path("hook.sh");
  std::ofstream(script) << "#!/bin/sh\necho \"$0 $#\" > " << path("out") << "\n";
  fs::permissions(script, fs::perms::owner_all);
  run_hooks({{script, {}, {}, std::nullopt}}, "prestart", "{}");
  EXPECT_EQ(slurp(path("out")), script + " 0\n");
}

TEST_F(HooksTest, MissingBinary) {
  EXPECT_EQ(failure({{"/nonexistent/skiff-hook", {}, {}, std::nullopt}}),
            "prestart hook /nonexistent/skiff-hook: exec failed: No such file or directory");
}

TEST_F(HooksTest, OurFdsDoNotLeakIntoTheHook) {
  UniqueFd leak(::open("/dev/null", O_RDONLY));  // no O_CLOEXEC
  ASSERT_TRUE(leak);
  const std::string fd = std::to_string(leak.get());
  EXPECT_EQ(failure({sh("test -e /proc/self/fd/" + fd + " && exit 9; exit 0")}), "");
  EXPECT_EQ(failure({sh("test -e /proc/self/fd/0 || exit 9")}), "");  // stdin is there
}

std::string mount_ns_of(const std::string& proc) { return fs::read_symlink("/proc/" + proc + "/ns/mnt").string(); }

// A sandbox process unshares its mounts; its hooks still see the runtime's.
TEST_F(HooksTest, HooksJoinTheRuntimeMountNamespace) {
  if (::geteuid() != 0) GTEST_SKIP() << "unshare(CLONE_NEWNS) needs root";
  // In a child, so this process keeps its namespace and the setting.
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    UniqueFd runtime_ns(::open("/proc/self/ns/mnt", O_RDONLY | O_CLOEXEC));
    if (!runtime_ns || ::unshare(CLONE_NEWNS) != 0) ::_exit(2);
    std::ofstream(path("private")) << mount_ns_of("self");
    try {
      run_hooks({sh("readlink /proc/self/ns/mnt > " + path("default"))}, "prestart", "{}");
      set_hook_mount_namespace(runtime_ns.get());
      run_hooks({sh("readlink /proc/self/ns/mnt > " + path("joined"))}, "prestart", "{}");
    } catch (const std::exception&) {
      ::_exit(3);
    }
    ::_exit(0);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "child status " << status;
  const std::string ours = mount_ns_of("self");
  ASSERT_NE(slurp(path("private")), ours) << "the child has a namespace of its own";
  EXPECT_EQ(slurp(path("default")), slurp(path("private")) + "\n") << "without the setting, hooks stay in the caller's";
  EXPECT_EQ(slurp(path("joined")), ours + "\n");
}

TEST_F(HooksTest, ANamespaceThatCannotBeJoinedFailsTheHookSayingSo) {
  UniqueFd not_a_namespace(::open("/dev/null", O_RDONLY | O_CLOEXEC));
  set_hook_mount_namespace(not_a_namespace.get());
  const std::string error = failure({sh("exit 0")});
  set_hook_mount_namespace(-1);
  EXPECT_EQ(error, "prestart hook /bin/sh: joining the runtime's mount namespace failed: Invalid argument");
}

TEST_F(HooksTest, NoHooksIsANoOp) { EXPECT_NO_THROW(run_hooks({}, "poststop", "{}")); }

}  // namespace
}  // namespace skiff::runtime::oci
