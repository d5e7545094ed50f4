// The agent's spec check: a good OCI-shaped spec becomes kernel numbers, and
// each bad field is refused with one line that names it.
#include "agent/container_spec.h"

#include <capnp/message.h>
#include <capnp/serialize.h>
#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>
#include <sched.h>
#include <seccomp.h>
#include <sys/capability.h>
#include <sys/mount.h>
#include <sys/resource.h>

#include <cstring>
#include <fstream>
#include <functional>
#include <iterator>

namespace skiff::agent {
namespace {

// A spec like `runc spec` writes, with a few more fields set.
void fill_good(api::Spec::Builder s) {
  auto p = s.initProcess();
  p.setTerminal(true);
  p.getConsoleSize().setRows(24);
  p.getConsoleSize().setCols(80);
  p.getUser().setUid(1000);
  p.getUser().setGid(1000);
  auto groups = p.getUser().initAdditionalGids(2);
  groups.set(0, 10);
  groups.set(1, 20);
  p.getUser().setUmask(022);
  p.getUser().setHasUmask(true);
  auto args = p.initArgs(2);
  args.set(0, "sh");
  args.set(1, "-c");
  auto env = p.initEnv(1);
  env.set(0, "PATH=/usr/bin:/bin");
  p.setCwd("/work");
  auto caps = p.initCapabilities();
  auto bounding = caps.initBounding(2);
  bounding.set(0, "CAP_KILL");
  bounding.set(1, "CAP_NET_BIND_SERVICE");
  caps.initEffective(1).set(0, "CAP_KILL");
  auto rl = p.initRlimits(1);
  rl[0].setType("RLIMIT_NOFILE");
  rl[0].setSoft(1024);
  rl[0].setHard(4096);
  p.setNoNewPrivileges(true);
  p.setOomScoreAdj(-500);
  p.setHasOomScoreAdj(true);
  s.getRoot().setPath("/run/skiff/shared/c1/rootfs");
  s.getRoot().setReadonly(true);
  s.setHostname("box");
  auto m = s.initMounts(2);
  m[0].setDestination("/proc");
  m[0].setType("proc");
  m[0].setSource("proc");
  m[1].setDestination("/dev/pts");
  m[1].setType("devpts");
  m[1].setSource("devpts");
  auto o = m[1].initOptions(4);
  o.set(0, "nosuid");
  o.set(1, "noexec");
  o.set(2, "newinstance");
  o.set(3, "ptmxmode=0666");
  auto lx = s.initLinux();
  auto ns = lx.initNamespaces(3);
  ns[0].setType("pid");
  ns[1].setType("mount");
  ns[2].setType("uts");
  lx.setCgroupsPath("pod/c1");
  lx.initMaskedPaths(1).set(0, "/proc/kcore");
  lx.initReadonlyPaths(1).set(0, "/proc/sys");
}

using Edit = std::function<void(api::Spec::Builder)>;

ContainerConfig convert(const Edit& edit = {}) {
  capnp::MallocMessageBuilder msg;
  auto s = msg.initRoot<api::Spec>();
  fill_good(s);
  if (edit) edit(s);
  return container_config(s.asReader());
}

std::string refusal(const Edit& edit) {
  try {
    convert(edit);
  } catch (const SpecError& e) {
    return e.what();
  }
  return "(accepted)";
}

TEST(ContainerSpec, AGoodSpecBecomesKernelNumbers) {
  const ContainerConfig c = convert();
  EXPECT_EQ(c.process.args, (std::vector<std::string>{"sh", "-c"}));
  EXPECT_EQ(c.process.cwd, "/work");
  EXPECT_EQ(c.process.uid, 1000u);
  EXPECT_EQ(c.process.additional_gids, (std::vector<gid_t>{10, 20}));
  EXPECT_EQ(c.process.umask, mode_t{022});
  EXPECT_EQ(c.process.caps.bounding, (uint64_t{1} << CAP_KILL) | (uint64_t{1} << CAP_NET_BIND_SERVICE));
  EXPECT_EQ(c.process.caps.effective, uint64_t{1} << CAP_KILL);
  EXPECT_EQ(c.process.caps.ambient, 0u);
  ASSERT_EQ(c.process.rlimits.size(), 1u);
  EXPECT_EQ(c.process.rlimits[0].resource, RLIMIT_NOFILE);
  EXPECT_EQ(c.process.rlimits[0].soft, 1024u);
  EXPECT_EQ(c.process.oom_score_adj, -500);
  EXPECT_TRUE(c.process.no_new_privileges);
  EXPECT_TRUE(c.root_readonly);
  EXPECT_TRUE(c.has_namespace(CLONE_NEWPID));
  EXPECT_TRUE(c.has_namespace(CLONE_NEWUTS));
  EXPECT_FALSE(c.has_namespace(CLONE_NEWNET));  // shared with the sandbox
  ASSERT_EQ(c.mounts.size(), 2u);
  EXPECT_EQ(c.mounts[1].flags, static_cast<unsigned long>(MS_NOSUID | MS_NOEXEC));
  EXPECT_EQ(c.mounts[1].data, "newinstance,ptmxmode=0666");
  EXPECT_EQ(c.cgroups_path, "pod/c1");
  EXPECT_FALSE(c.seccomp);
  EXPECT_TRUE(c.ignored.empty());
}

TEST(ContainerSpec, EachBadFieldIsRefusedByName) {
  const std::vector<std::pair<Edit, std::string>> cases = {
      {[](auto s) { s.getRoot().setPath(""); }, "root.path: is missing"},
      {[](auto s) { s.getProcess().initArgs(0); }, "process.args: must name the program to run"},
      {[](auto s) { s.getProcess().setCwd("tmp"); }, "process.cwd: must be absolute, not \"tmp\""},
      {[](auto s) { s.getProcess().getEnv().set(0, "NOEQUALS"); }, "process.env[0]: must be KEY=value, not \"NOEQUALS\""},
      {[](auto s) { s.getLinux().getNamespaces()[0].setType("pdi"); }, "linux.namespaces[0].type: unknown namespace type \"pdi\""},
      {[](auto s) { s.getLinux().getNamespaces()[0].setType("mount"); }, "linux.namespaces[1].type: \"mount\" is given twice"},
      {[](auto s) { s.getLinux().getNamespaces()[0].setType("user"); },
       "linux.namespaces[0].type: \"user\" namespaces are not supported: the sandbox VM is the isolation boundary"},
      {[](auto s) { s.getLinux().getNamespaces()[0].setPath("proc/1/ns/pid"); },
       "linux.namespaces[0].path: must be absolute, not \"proc/1/ns/pid\""},
      {[](auto s) { s.getLinux().getNamespaces()[2].setType("ipc"); }, "hostname: needs a new \"uts\" namespace in linux.namespaces"},
      {[](auto s) { s.getLinux().getNamespaces()[1].setType("ipc"); },
       "linux.namespaces: needs a \"mount\" namespace: the container gets its own root"},
      {[](auto s) { s.getProcess().getCapabilities().getBounding().set(1, "CAP_NET_BIND"); },
       "process.capabilities.bounding[1]: unknown capability \"CAP_NET_BIND\""},
      {[](auto s) { s.getProcess().getCapabilities().getEffective().set(0, "cap_kill"); },
       "process.capabilities.effective[0]: unknown capability \"cap_kill\""},
      {[](auto s) { s.getProcess().getCapabilities().getEffective().set(0, "5"); },
       "process.capabilities.effective[0]: unknown capability \"5\""},
      {[](auto s) { s.getProcess().getRlimits()[0].setType("RLIMIT_FILES"); },
       "process.rlimits[0].type: unknown rlimit \"RLIMIT_FILES\""},
      {[](auto s) { s.getProcess().getRlimits()[0].setSoft(5000); },
       "process.rlimits[0]: soft limit 5000 is above the hard limit 4096"},
      {[](auto s) { s.getProcess().setOomScoreAdj(1001); }, "process.oomScoreAdj: must be -1000 to 1000, not 1001"},
      {[](auto s) { s.getProcess().getUser().setUsername("a:b"); }, "process.user.username: is not a user name: \"a:b\""},
      {[](auto s) { s.getMounts()[0].setDestination("proc"); }, "mounts[0].destination: must be an absolute path, not \"proc\""},
      {[](auto s) { s.getMounts()[0].setDestination("/a/../../etc"); },
       "mounts[0].destination: must not contain \"..\": \"/a/../../etc\""},
      {[](auto s) { s.getMounts()[0].setType(""); }, "mounts[0].type: is missing (and the mount is no bind mount)"},
      {[](auto s) {
         auto o = s.getMounts()[0].initOptions(2);
         o.set(0, "rprivate");
         o.set(1, "shared");
       },
       "mounts[0].options: two propagation options, the second \"shared\""},
      {[](auto s) {
         auto d = s.getLinux().initDevices(1);
         d[0].setType("x");
         d[0].setPath("/dev/null");
       },
       "linux.devices[0].type: must be one of c, b, u, p, not \"x\""},
      {[](auto s) {
         auto d = s.getLinux().initDevices(1);
         d[0].setType("c");
         d[0].setPath("/etc/passwd");
       },
       "linux.devices[0].path: must be under /dev, not \"/etc/passwd\""},
      {[](auto s) { s.getLinux().getResources().initDevices(1)[0].setAccess("rwx"); },
       "linux.resources.devices[0].access: must be some of rwm, not \"rwx\""},
      {[](auto s) { s.getLinux().getResources().getMemory().setLimit(-2); },
       "linux.resources.memory.limit: must be -1 (unlimited), 0 (unset) or bytes, not -2"},
      {[](auto s) { s.getLinux().getResources().getCpu().setShares(1); }, "linux.resources.cpu.shares: must be 2 to 262144, not 1"},
      {[](auto s) { s.getLinux().getResources().getCpu().setCpus("0-3;"); },
       "linux.resources.cpu.cpus: is not a CPU list: \"0-3;\""},
      {[](auto s) { s.getLinux().getResources().setBlockIoWeight(5); }, "linux.resources.blockIO.weight: must be 10 to 1000, not 5"},
      {[](auto s) { s.getLinux().getResources().initUnified(1)[0].setKey("../memory.max"); },
       "linux.resources.unified[0]: is not a cgroup file name: \"../memory.max\""},
      {[](auto s) { s.getLinux().setCgroupsPath("../escape"); }, "linux.cgroupsPath: must not contain \"..\": \"/../escape\""},
      {[](auto s) { s.getLinux().initSysctl(1)[0].setKey("vm.swappiness"); },
       "linux.sysctl[0]: \"vm.swappiness\" is not namespaced (only kernel.*, net.* and fs.mqueue.* are)"},
      {[](auto s) { s.getLinux().setRootfsPropagation("rshard"); }, "linux.rootfsPropagation: unknown propagation \"rshard\""},
      {[](auto s) { s.getLinux().getMaskedPaths().set(0, "proc/kcore"); },
       "linux.maskedPaths[0]: must be an absolute path, not \"proc/kcore\""},
      {[](auto s) {
         s.getLinux().setHasSeccomp(true);
         s.getLinux().getSeccomp().setDefaultAction("SCMP_ACT_DENY");
       },
       "linux.seccomp.defaultAction: unknown action \"SCMP_ACT_DENY\""},
      {[](auto s) {
         s.getLinux().setHasSeccomp(true);
         auto sc = s.getLinux().getSeccomp();
         sc.setDefaultAction("SCMP_ACT_ALLOW");
         sc.initArchitectures(1).set(0, "SCMP_ARCH_Z80");
       },
       "linux.seccomp.architectures[0]: unknown architecture \"SCMP_ARCH_Z80\""},
      {[](auto s) {
         s.getLinux().setHasSeccomp(true);
         auto sc = s.getLinux().getSeccomp();
         sc.setDefaultAction("SCMP_ACT_ALLOW");
         auto call = sc.initSyscalls(1)[0];
         call.initNames(1).set(0, "read");
         call.setAction("SCMP_ACT_ERRNO");
         call.initArgs(1)[0].setOp("SCMP_CMP_ABOUT");
       },
       "linux.seccomp.syscalls[0].args[0].op: unknown operator \"SCMP_CMP_ABOUT\""},
      {[](auto s) { s.getProcess().setCwd(std::string("/a\nb")); }, "(accepted)"},
      {[](auto s) { s.getProcess().getEnv().set(0, std::string("X\x01=1")); }, "(accepted)"},
      {[](auto s) { s.getMounts()[0].setDestination("/a\"b\n"); }, "(accepted)"},
  };
  for (size_t i = 0; i < cases.size(); ++i) EXPECT_EQ(refusal(cases[i].first), cases[i].second) << "case " << i;
}

TEST(ContainerSpec, ARefusalQuotesWhatTheGuestCannotPrint) {
  const std::string e = refusal([](auto s) { s.getProcess().setCwd(std::string("rel\n\"x")); });
  EXPECT_EQ(e, "process.cwd: must be absolute, not \"rel\\x0a\\x22x\"");
  EXPECT_EQ(e.find('\n'), std::string::npos);
}

TEST(ContainerSpec, SeccompActionsArchitecturesAndUnknownSyscalls) {
  const ContainerConfig c = convert([](auto s) {
    s.getLinux().setHasSeccomp(true);
    auto sc = s.getLinux().getSeccomp();
    sc.setDefaultAction("SCMP_ACT_ERRNO");
    sc.setDefaultErrnoRet(38);
    sc.setHasDefaultErrnoRet(true);
    sc.initArchitectures(1).set(0, "SCMP_ARCH_X86_64");
    auto calls = sc.initSyscalls(2);
    auto names = calls[0].initNames(3);
    names.set(0, "read");
    names.set(1, "no_such_syscall_here");
    names.set(2, "write");
    calls[0].setAction("SCMP_ACT_ALLOW");
    calls[1].initNames(1).set(0, "personality");
    calls[1].setAction("SCMP_ACT_ALLOW");
    auto arg = calls[1].initArgs(1)[0];
    arg.setIndex(0);
    arg.setValue(0xffffffff);
    arg.setOp("SCMP_CMP_EQ");
  });
  ASSERT_TRUE(c.seccomp);
  EXPECT_EQ(c.seccomp->default_action, static_cast<uint32_t>(SCMP_ACT_ERRNO(38)));
  EXPECT_EQ(c.seccomp->architectures, (std::vector<uint32_t>{SCMP_ARCH_X86_64}));
  ASSERT_EQ(c.seccomp->rules.size(), 2u);
  EXPECT_EQ(c.seccomp->rules[0].syscalls, (std::vector<int>{seccomp_syscall_resolve_name("read"), seccomp_syscall_resolve_name("write")}));
  ASSERT_EQ(c.seccomp->rules[1].args.size(), 1u);
  EXPECT_EQ(c.seccomp->rules[1].args[0].op, SCMP_CMP_EQ);
  ASSERT_EQ(c.ignored.size(), 1u);
  EXPECT_EQ(c.ignored[0], "linux.seccomp.syscalls[0].names: unknown syscall \"no_such_syscall_here\"");
}

TEST(ContainerSpec, LsmFieldsAndAnnotationsAreIgnoredAndSaidSo) {
  const ContainerConfig c = convert([](auto s) {
    s.getProcess().setApparmorProfile("docker-default");
    s.getProcess().setSelinuxLabel("system_u:system_r:container_t:s0");
    s.getLinux().setMountLabel("system_u:object_r:container_file_t:s0");
    s.initAnnotations(1)[0].setKey("io.kubernetes.cri.container-type");
  });
  EXPECT_EQ(c.ignored, (std::vector<std::string>{"process.apparmorProfile", "process.selinuxLabel", "linux.mountLabel", "annotations"}));
}

// Mount options apply left to right, like mount(8): a model of flags as a
// set that each option adds to or takes from.
RC_GTEST_PROP(ContainerSpec, MountOptionsApplyInOrder, ()) {
  const std::vector<std::pair<std::string, unsigned long>> sets = {
      {"ro", MS_RDONLY}, {"nosuid", MS_NOSUID}, {"nodev", MS_NODEV}, {"noexec", MS_NOEXEC}, {"noatime", MS_NOATIME}};
  const std::vector<std::pair<std::string, unsigned long>> clears = {
      {"rw", MS_RDONLY}, {"suid", MS_NOSUID}, {"dev", MS_NODEV}, {"exec", MS_NOEXEC}, {"atime", MS_NOATIME}};
  const auto picks = *rc::gen::container<std::vector<std::pair<bool, size_t>>>(
      rc::gen::pair(rc::gen::arbitrary<bool>(), rc::gen::inRange<size_t>(0, 5)));
  std::vector<std::string> options;
  unsigned long model = 0;
  std::string data;
  for (auto [set, i] : picks) {
    if (set) {
      options.push_back(sets[i].first);
      model |= sets[i].second;
    } else {
      options.push_back(clears[i].first);
      model &= ~clears[i].second;
    }
    if (i == 2) {  // now and then an option for the file system itself
      options.push_back("size=" + std::to_string(options.size()));
      data += (data.empty() ? "" : ",") + options.back();
    }
  }
  const MountSpec m = parse_mount_options(options, "mounts[0].options");
  RC_ASSERT(m.flags == model);
  RC_ASSERT(m.data == data);
  RC_ASSERT(m.propagation == 0ul);
  RC_ASSERT(!m.bind);
}

TEST(ContainerSpec, BindAndPropagationOptions) {
  const MountSpec m = parse_mount_options({"rbind", "ro", "rslave"}, "mounts[0].options");
  EXPECT_TRUE(m.bind);
  EXPECT_TRUE(m.recursive_bind);
  EXPECT_EQ(m.flags, static_cast<unsigned long>(MS_RDONLY));
  EXPECT_EQ(m.propagation, static_cast<unsigned long>(MS_SLAVE | MS_REC));
  EXPECT_EQ(refusal([](auto s) {
              auto m0 = s.getMounts()[0];
              m0.setType("");
              m0.setSource("");
              m0.initOptions(1).set(0, "bind");
            }),
            "mounts[0].source: a bind mount needs a source");
}

// The fuzz seeds are what their names say, so the fuzzer starts from both sides.
TEST(ContainerSpec, TheFuzzSeedsAreAcceptedAndRefusedAsNamed) {
  auto load = [](const std::string& name) {
    std::ifstream f(std::string(SKIFF_FUZZ_CORPUS) + "/container_spec/" + name, std::ios::binary);
    std::vector<char> bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    std::vector<capnp::word> words(bytes.size() / sizeof(capnp::word));
    std::memcpy(words.data(), bytes.data(), words.size() * sizeof(capnp::word));
    return words;
  };
  auto check = [](const std::vector<capnp::word>& w) {
    capnp::FlatArrayMessageReader r(kj::ArrayPtr<const capnp::word>(w.data(), w.size()));
    return container_config(r.getRoot<api::Spec>());
  };
  const auto good = load("good"), seccomp = load("seccomp"), bad = load("bad_capability");
  ASSERT_FALSE(good.empty());
  const ContainerConfig g = check(good);
  EXPECT_EQ(g.mounts.size(), 3u);
  EXPECT_TRUE(g.has_namespace(CLONE_NEWNET));
  EXPECT_EQ(g.resources.memory_limit, 268435456);
  EXPECT_TRUE(g.ignored.empty());
  // The seed's two rules, then runc's eleven always-allowed ones (mknod, /dev/null, ...).
  ASSERT_EQ(g.resources.devices.size(), 13u);
  EXPECT_TRUE(g.resources.devices[2].allow && g.resources.devices[2].access == "m");
  EXPECT_TRUE(g.resources.devices[4].allow && g.resources.devices[4].major == 1 && g.resources.devices[4].minor == 3);
  const ContainerConfig s = check(seccomp);
  ASSERT_TRUE(s.seccomp);
  EXPECT_EQ(s.seccomp->rules.size(), 3u);
  try {
    check(bad);
    ADD_FAILURE() << "bad_capability was accepted";
  } catch (const SpecError& e) {
    EXPECT_STREQ(e.what(), "process.capabilities.bounding[1]: unknown capability \"CAP_NOPE\"");
  }
}

}  // namespace
}  // namespace skiff::agent
