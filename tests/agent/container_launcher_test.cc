// The agent's container set-up, run on the host as root (as runc's own tests
// run): a busybox-static rootfs in a temp dir, each OCI feature checked from
// inside the container by what the process itself sees.
#include "agent/container_launcher.h"

#include <capnp/message.h>
#include <gtest/gtest.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <string>

#include "tests/agent/agent_test_support.h"

namespace skiff::agent {
namespace {

namespace fs = std::filesystem;

using Rootfs = testing::BusyboxRootfs;

using Edit = std::function<void(api::Spec::Builder)>;

ContainerConfig config_for(const Rootfs& r, const std::string& script, const Edit& edit = {}) {
  capnp::MallocMessageBuilder msg;
  auto s = msg.initRoot<api::Spec>();
  testing::shell_spec(s, r.root(), script, {"mount", "pid", "uts", "ipc"});
  s.setHostname("skiffbox");
  if (edit) edit(s);
  return container_config(s.asReader());
}

struct Result {
  std::string out;
  int status = -1;
};

Result run(const ContainerConfig& c, LaunchOptions o = {}) {
  int pipefd[2];
  EXPECT_EQ(::pipe2(pipefd, O_CLOEXEC), 0);
  o.stdout_fd = pipefd[1];
  o.stderr_fd = pipefd[1];
  Launched l = create_container(c, o);
  ::close(pipefd[1]);
  l.start();
  Result r;
  char buf[4096];
  ssize_t n;
  while ((n = ::read(pipefd[0], buf, sizeof buf)) > 0) r.out.append(buf, static_cast<size_t>(n));
  ::close(pipefd[0]);
  int st = 0;
  EXPECT_EQ(::waitpid(l.pid(), &st, 0), l.pid());
  r.status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
  return r;
}

class LauncherTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "container set-up needs root (as runc's tests do)";
  }
  Rootfs rootfs;
};

TEST_F(LauncherTest, EchoRunsInItsOwnNamespacesAndRoot) {
  const Result r = run(config_for(rootfs, "echo hello; echo pid=$$; hostname; ls /; cat /proc/1/cmdline | tr '\\0' ' '"));
  EXPECT_EQ(r.status, 0) << r.out;
  EXPECT_NE(r.out.find("hello\npid=1\nskiffbox\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("bin"), std::string::npos);
  EXPECT_EQ(r.out.find("host-data"), std::string::npos) << "the host's tree shows through: " << r.out;
  EXPECT_NE(r.out.find("sh -c"), std::string::npos) << r.out;
}

// The guest's root is an initramfs, which pivot_root refuses: the same
// container with the root moved onto / and chroot.
TEST_F(LauncherTest, NoPivotMovesTheRootAndChroots) {
  LaunchOptions o;
  o.no_pivot = true;
  const Result r = run(config_for(rootfs, "echo hello; ls /"), o);
  EXPECT_EQ(r.status, 0) << r.out;
  EXPECT_NE(r.out.find("hello\n"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("host-data"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("etc"), std::string::npos) << r.out;
}

// Container.exec: a second process in a running container's namespaces and root.
TEST_F(LauncherTest, ExecJoinsARunningContainer) {
  int pipefd[2];
  ASSERT_EQ(::pipe2(pipefd, O_CLOEXEC), 0);
  LaunchOptions o;
  o.stdout_fd = pipefd[1];
  const ContainerConfig c = config_for(rootfs, "echo up; exec sleep 30");
  Launched init = create_container(c, o);
  ::close(pipefd[1]);
  init.start();
  char buf[8];
  ASSERT_EQ(::read(pipefd[0], buf, 3), 3);
  ContainerConfig exec = c;
  exec.process.args = {"sh", "-c", "echo pid=$$; hostname; cat /proc/1/cmdline | tr '\\0' ' '; ls /"};
  LaunchOptions eo;
  eo.exec_in = init.pid();
  const Result r = run(exec, eo);
  ::kill(init.pid(), SIGKILL);
  ::waitpid(init.pid(), nullptr, 0);
  ::close(pipefd[0]);
  EXPECT_EQ(r.status, 0) << r.out;
  EXPECT_EQ(r.out.find("pid=1\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("skiffbox\nsleep 30"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("host-data"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("etc"), std::string::npos) << r.out;
}

TEST_F(LauncherTest, ANonZeroExitStatusComesBack) {
  EXPECT_EQ(run(config_for(rootfs, "exit 7")).status, 7);
}

TEST_F(LauncherTest, UserGroupsCapabilitiesRlimitsAndNoNewPrivileges) {
  const Result r = run(config_for(rootfs, "id; grep -E '^(Cap(Bnd|Eff|Prm|Amb)|NoNewPrivs)' /proc/self/status; ulimit -n; ulimit -Hn",
                                  [](auto s) {
                                    auto p = s.getProcess();
                                    p.getUser().setUsername("app");
                                    auto caps = p.initCapabilities();
                                    caps.initBounding(2).set(0, "CAP_KILL");
                                    caps.getBounding().set(1, "CAP_NET_BIND_SERVICE");
                                    caps.initPermitted(1).set(0, "CAP_NET_BIND_SERVICE");
                                    caps.initEffective(1).set(0, "CAP_NET_BIND_SERVICE");
                                    caps.initInheritable(1).set(0, "CAP_NET_BIND_SERVICE");
                                    caps.initAmbient(1).set(0, "CAP_NET_BIND_SERVICE");
                                    auto rl = p.initRlimits(1);
                                    rl[0].setType("RLIMIT_NOFILE");
                                    rl[0].setSoft(321);
                                    rl[0].setHard(654);
                                    p.setNoNewPrivileges(true);
                                  }));
  EXPECT_EQ(r.status, 0) << r.out;
  EXPECT_NE(r.out.find("uid=1000(app) gid=1000(app) groups=50(staff)"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("CapPrm:\t0000000000000400"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("CapEff:\t0000000000000400"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("CapBnd:\t0000000000000420"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("CapAmb:\t0000000000000400"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("NoNewPrivs:\t1"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("321\n654\n"), std::string::npos) << r.out;
}

TEST_F(LauncherTest, MountsMaskedAndReadonlyPathsAndAReadonlyRoot) {
  const std::string host = rootfs.host("host-data");
  const Result r = run(config_for(rootfs,
                                  "cat /data/file; echo x > /data/new && echo wrote-data; mount | grep ' /tmp '; "
                                  "cat /proc/kcore | head -c 1 | grep -q . && echo kcore-readable; "
                                  "echo 1 > /proc/sys/kernel/domainname && echo wrote-sys; touch /x && echo wrote-root; "
                                  "touch /tmp/y && echo wrote-tmp",
                                  [host](auto s) {
                                    auto m = s.initMounts(3);
                                    m[0].setDestination("/proc");
                                    m[0].setType("proc");
                                    m[0].setSource("proc");
                                    m[1].setDestination("/data");
                                    m[1].setSource(host);
                                    auto o = m[1].initOptions(2);
                                    o.set(0, "rbind");
                                    o.set(1, "ro");
                                    m[2].setDestination("/tmp");
                                    m[2].setType("tmpfs");
                                    m[2].setSource("tmpfs");
                                    auto t = m[2].initOptions(2);
                                    t.set(0, "nosuid");
                                    t.set(1, "size=1m");
                                    s.getLinux().initMaskedPaths(1).set(0, "/proc/kcore");
                                    s.getLinux().initReadonlyPaths(1).set(0, "/proc/sys");
                                    s.getRoot().setReadonly(true);
                                  }));
  EXPECT_NE(r.out.find("from the host\n"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("wrote-data"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("tmpfs on /tmp type tmpfs (rw,nosuid,relatime,size=1024k"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("kcore-readable"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("wrote-sys"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("wrote-root"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("wrote-tmp"), std::string::npos) << r.out;
  EXPECT_FALSE(fs::exists(rootfs.host("host-data/new")));
}

TEST_F(LauncherTest, DefaultDevicesAndSpecDevices) {
  const Result r = run(config_for(rootfs, "ls -l /dev/null /dev/zero /dev/urandom /dev/mydev; echo ok > /dev/null && echo null-ok; "
                                  "echo ptmx=$(readlink /dev/ptmx)",
                                  [](auto s) {
                                    auto d = s.getLinux().initDevices(1);
                                    d[0].setType("c");
                                    d[0].setPath("/dev/mydev");
                                    d[0].setMajor(1);
                                    d[0].setMinor(5);
                                    d[0].setFileMode(0600);
                                    d[0].setHasFileMode(true);
                                  }));
  EXPECT_EQ(r.status, 0) << r.out;
  EXPECT_NE(r.out.find("crw-------    1 root     root        1,   5"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("null-ok"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("ptmx=pts/ptmx"), std::string::npos) << "runc's /dev/ptmx link: " << r.out;
}

TEST_F(LauncherTest, SeccompErrnoFromTheProfile) {
  const Result r = run(config_for(rootfs, "mkdir /tmp/blocked || echo mkdir-refused; echo after", [](auto s) {
    auto lx = s.getLinux();
    lx.setHasSeccomp(true);
    auto sc = lx.getSeccomp();
    sc.setDefaultAction("SCMP_ACT_ALLOW");
    auto call = sc.initSyscalls(1)[0];
    auto names = call.initNames(2);
    names.set(0, "mkdir");
    names.set(1, "mkdirat");
    call.setAction("SCMP_ACT_ERRNO");
  }));
  EXPECT_EQ(r.status, 0) << r.out;
  EXPECT_NE(r.out.find("Operation not permitted"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("mkdir-refused\nafter"), std::string::npos) << r.out;
}

TEST_F(LauncherTest, ATerminalWithItsWindowSize) {
  ContainerConfig c = config_for(rootfs, "stty size; test -t 0 && echo tty", [](auto s) {
    s.getProcess().setTerminal(true);
    s.getProcess().getConsoleSize().setRows(33);
    s.getProcess().getConsoleSize().setCols(101);
  });
  Launched l = create_container(c, {});
  ASSERT_GE(l.pty(), 0);
  l.start();
  std::string out;
  char buf[512];
  ssize_t n;
  while ((n = ::read(l.pty(), buf, sizeof buf)) > 0) out.append(buf, static_cast<size_t>(n));  // EIO once the child is gone
  int st = 0;
  ASSERT_EQ(::waitpid(l.pid(), &st, 0), l.pid());
  EXPECT_NE(out.find("33 101"), std::string::npos) << out;
  EXPECT_NE(out.find("tty"), std::string::npos) << out;
}

TEST_F(LauncherTest, ABadProgramFailsAtStartWithItsName) {
  ContainerConfig c = config_for(rootfs, "");
  c.process.args = {"/bin/nosuch"};
  Launched l = create_container(c, {});
  const pid_t pid = l.pid();
  try {
    l.start();
    ADD_FAILURE() << "started a missing program";
  } catch (const LaunchError& e) {
    EXPECT_STREQ(e.what(), "exec /bin/nosuch: No such file or directory");
  }
  int st = 0;
  EXPECT_EQ(::waitpid(pid, &st, 0), pid);
}

TEST_F(LauncherTest, AFailedSetUpLeavesNoProcessAndNoMount) {
  std::ifstream before_f("/proc/self/mountinfo");
  const std::string before((std::istreambuf_iterator<char>(before_f)), std::istreambuf_iterator<char>());
  const ContainerConfig c = config_for(rootfs, "true", [](auto s) {
    auto m = s.initMounts(2);
    m[0].setDestination("/proc");
    m[0].setType("proc");
    m[0].setSource("proc");
    m[1].setDestination("/data");
    m[1].setType("nosuchfs");
    m[1].setSource("none");
  });
  try {
    create_container(c, {});
    ADD_FAILURE() << "a mount of an unknown file system was accepted";
  } catch (const LaunchError& e) {
    EXPECT_STREQ(e.what(), "mount /data: No such device");
  }
  EXPECT_EQ(::waitpid(-1, nullptr, WNOHANG), -1) << "a child is left";
  std::ifstream after_f("/proc/self/mountinfo");
  const std::string after((std::istreambuf_iterator<char>(after_f)), std::istreambuf_iterator<char>());
  EXPECT_EQ(before, after);
}

TEST_F(LauncherTest, AnUnknownUserIsRefusedAtCreate) {
  const ContainerConfig c = config_for(rootfs, "true", [](auto s) { s.getProcess().getUser().setUsername("nobody-here"); });
  try {
    create_container(c, {});
    ADD_FAILURE() << "an unknown user was accepted";
  } catch (const LaunchError& e) {
    EXPECT_STREQ(e.what(), "user nobody-here: not in the container's /etc/passwd");
  }
}

TEST_F(LauncherTest, JoiningAnotherContainersNamespaces) {
  // The first container holds its namespaces open while the second joins its uts and ipc.
  int pipefd[2];
  ASSERT_EQ(::pipe2(pipefd, O_CLOEXEC), 0);
  LaunchOptions o;
  o.stdout_fd = pipefd[1];
  Launched first = create_container(config_for(rootfs, "echo up; sleep 30"), o);
  ::close(pipefd[1]);
  first.start();
  char buf[8];
  ASSERT_EQ(::read(pipefd[0], buf, 3), 3);
  const std::string ns = "/proc/" + std::to_string(first.pid()) + "/ns/";
  const Result r = run(config_for(rootfs, "hostname; readlink /proc/self/ns/uts", [ns](auto s) {
    s.setHostname("");
    auto n = s.getLinux().initNamespaces(3);
    n[0].setType("mount");
    n[1].setType("uts");
    n[1].setPath(ns + "uts");
    n[2].setType("ipc");
    n[2].setPath(ns + "ipc");
  }));
  char link[64] = {};
  ASSERT_GT(::readlink((ns + "uts").c_str(), link, sizeof link - 1), 0);
  ::kill(first.pid(), SIGKILL);
  ::waitpid(first.pid(), nullptr, 0);
  ::close(pipefd[0]);
  EXPECT_EQ(r.status, 0) << r.out;
  EXPECT_NE(r.out.find("skiffbox\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find(link), std::string::npos) << r.out << " vs " << link;
}

}  // namespace
}  // namespace skiff::agent
