// A container's cgroup v2 directory: the spec's resources in the kernel's
// terms (checked on a plain directory standing in for cgroupfs, since this
// host's cgroup2 has no cpu/memory/pids controllers to delegate), and
// pause/resume, procs, kill and stats on the real cgroup2 mount.
#include "agent/cgroup.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "tests/agent/agent_test_support.h"


namespace skiff::agent {
namespace {

namespace fs = std::filesystem;

std::string slurp(const fs::path& p) {
  std::ifstream f(p);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

class FakeCgroupfs : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/skiff-cgroupfs-XXXXXX";
    dir = ::mkdtemp(tmpl);
  }
  void TearDown() override { fs::remove_all(dir); }
  void touch(const std::string& rel, const std::string& content = "") { std::ofstream(dir + "/" + rel) << content; }
  std::string dir;
};

TEST(CgroupWeight, SharesMapOntoWeightAsRuncDoes) {
  EXPECT_EQ(cpu_weight_from_shares(2), 1u);
  EXPECT_EQ(cpu_weight_from_shares(1024), 39u);
  EXPECT_EQ(cpu_weight_from_shares(262144), 10000u);
  EXPECT_EQ(cpu_weight_from_shares(0), 0u);
}

TEST_F(FakeCgroupfs, ResourcesAreWrittenInTheKernelsTerms) {
  for (const char* f : {"memory.max", "memory.low", "memory.high", "memory.swap.max", "cpu.weight", "cpu.max", "cpuset.cpus",
                        "pids.max", "io.weight", "memory.oom.group"})
    touch(f);
  CgroupResources r;
  r.memory_limit = 256 << 20;
  r.memory_reservation = 64 << 20;
  r.memory_high = -1;
  r.memory_swap = 512 << 20;
  r.cpu_shares = 1024;
  r.cpu_quota = 50000;
  r.cpu_period = 100000;
  r.cpus = "0-1";
  r.pids_limit = -1;
  r.io_weight = 500;
  r.unified = {{"memory.oom.group", "1"}};
  Cgroup(dir).apply(r);
  EXPECT_EQ(slurp(dir + "/memory.max"), "268435456");
  EXPECT_EQ(slurp(dir + "/memory.low"), "67108864");
  EXPECT_EQ(slurp(dir + "/memory.high"), "max");
  EXPECT_EQ(slurp(dir + "/memory.swap.max"), "268435456");  // 512 MiB memory+swap less the 256 MiB limit
  EXPECT_EQ(slurp(dir + "/cpu.weight"), "39");
  EXPECT_EQ(slurp(dir + "/cpu.max"), "50000 100000");
  EXPECT_EQ(slurp(dir + "/cpuset.cpus"), "0-1");
  EXPECT_EQ(slurp(dir + "/pids.max"), "max");
  EXPECT_EQ(slurp(dir + "/io.weight"), "default 500");
  EXPECT_EQ(slurp(dir + "/memory.oom.group"), "1");
}

TEST_F(FakeCgroupfs, AMissingControllerFileIsAnErrorNamingTheResource) {
  CgroupResources r;
  r.pids_limit = 10;
  try {
    Cgroup(dir).apply(r);
    ADD_FAILURE() << "wrote a missing pids.max";
  } catch (const CgroupError& e) {
    EXPECT_EQ(std::string(e.what()), "linux.resources.pids.limit: " + dir + "/pids.max: No such file or directory");
  }
}

TEST_F(FakeCgroupfs, CreateEnablesControllersOrSaysWhichIsMissing) {
  touch("cgroup.controllers", "cpu pids\n");
  touch("cgroup.subtree_control");
  CgroupResources none;
  const Cgroup g = Cgroup::create(dir, "pod/c1", none);
  EXPECT_EQ(g.dir(), dir + "/pod/c1");
  EXPECT_TRUE(fs::is_directory(dir + "/pod/c1"));
  CgroupResources mem;
  mem.memory_limit = 1 << 20;
  try {
    Cgroup::create(dir, "c2", mem);
    ADD_FAILURE() << "created without the memory controller";
  } catch (const CgroupError& e) {
    EXPECT_EQ(std::string(e.what()), "cgroup " + dir + ": the memory controller is not available (cgroup.controllers: cpu pids)");
  }
  EXPECT_THROW(Cgroup::create(dir, "a/../b", none), CgroupError);
}

using testing::cgroup2_mount;

TEST(RealCgroup, PauseResumeProcsStatsKillAndRemove) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root";
  const std::string mount = cgroup2_mount();
  if (mount.empty()) GTEST_SKIP() << "no cgroup2 mount on this host";
  if (::access((mount + "/cgroup.procs").c_str(), W_OK) != 0) GTEST_SKIP() << "cgroup2 at " << mount << " is not writable";
  const Cgroup g = Cgroup::create(mount, "skiff-test-" + std::to_string(::getpid()), {});
  ASSERT_TRUE(fs::exists(g.dir() + "/cgroup.freeze")) << "no freezer in this kernel's cgroup2";

  // A process that counts, in the cgroup from its first instruction on.
  int out[2];
  ASSERT_EQ(::pipe(out), 0);
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    std::ofstream(g.dir() + "/cgroup.procs") << "0";
    for (unsigned long i = 0;; ++i)
      if (i % 1000000 == 0 && ::write(out[1], "x", 1) < 0) ::_exit(1);
  }
  ::close(out[1]);
  char c;
  ASSERT_EQ(::read(out[0], &c, 1), 1);
  EXPECT_EQ(g.procs(), std::vector<pid_t>{pid});

  g.freeze(true);
  EXPECT_TRUE(g.frozen());
  // Frozen: nothing more arrives (drain what was written before).
  ::fcntl(out[0], F_SETFL, O_NONBLOCK);
  while (::read(out[0], &c, 1) == 1) {
  }
  ::usleep(100000);
  EXPECT_EQ(::read(out[0], &c, 1), -1) << "the frozen process still ran";
  g.freeze(false);
  EXPECT_FALSE(g.frozen());
  ::fcntl(out[0], F_SETFL, 0);
  EXPECT_EQ(::read(out[0], &c, 1), 1) << "the thawed process does not run";

  EXPECT_GT(g.stats().cpu_usage_usec, 0u);
  g.kill_all();
  int st = 0;
  ASSERT_EQ(::waitpid(pid, &st, 0), pid);
  EXPECT_TRUE(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
  ::close(out[0]);
  g.remove();
  EXPECT_FALSE(fs::exists(g.dir()));
}

}  // namespace
}  // namespace skiff::agent
