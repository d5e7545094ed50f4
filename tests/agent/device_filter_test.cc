// The device cgroup program: the generated BPF, run by a small interpreter
// of the instructions it uses, decides every request as the reference
// (last matching rule wins) does, for any rules (rapidcheck); and the kernel
// loads it and enforces it on a real cgroup (root, cgroup2).
#include "agent/device_filter.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "agent/cgroup.h"
#include "tests/agent/agent_test_support.h"

namespace skiff::agent {
namespace {

// Runs the program on one bpf_cgroup_dev_ctx; -1 on an instruction it does
// not know or a jump out of the program (the kernel's verifier refuses both).
int run_program(const std::vector<bpf_insn>& p, uint32_t access_type, uint32_t major, uint32_t minor) {
  uint64_t r[11] = {};
  const uint32_t ctx[3] = {access_type, major, minor};
  for (size_t pc = 0; pc < p.size(); ++pc) {
    const bpf_insn& i = p[pc];
    uint64_t& dst = r[i.dst_reg];
    const uint64_t imm = static_cast<uint64_t>(static_cast<int64_t>(i.imm));
    switch (i.code) {
      case BPF_LDX | BPF_MEM | BPF_W:
        if (i.src_reg != 1 || i.off < 0 || i.off > 8 || i.off % 4) return -1;
        dst = ctx[i.off / 4];
        break;
      case BPF_ALU64 | BPF_MOV | BPF_X: dst = r[i.src_reg]; break;
      case BPF_ALU64 | BPF_MOV | BPF_K: dst = imm; break;
      case BPF_ALU64 | BPF_AND | BPF_K: dst &= imm; break;
      case BPF_ALU64 | BPF_RSH | BPF_K: dst >>= i.imm; break;
      case BPF_JMP | BPF_JNE | BPF_K:
        if (dst != imm) pc += i.off;
        break;
      case BPF_JMP | BPF_JEQ | BPF_K:
        if (dst == imm) pc += i.off;
        break;
      case BPF_JMP | BPF_EXIT: return static_cast<int>(r[0]);
      default: return -1;
    }
    if (pc >= p.size()) return -1;
  }
  return -1;
}

uint32_t access_type(char type, const std::string& access) {
  uint32_t a = 0;
  for (char c : access) a |= c == 'm' ? BPF_DEVCG_ACC_MKNOD : c == 'r' ? BPF_DEVCG_ACC_READ : BPF_DEVCG_ACC_WRITE;
  return (a << 16) | (type == 'b' ? BPF_DEVCG_DEV_BLOCK : BPF_DEVCG_DEV_CHAR);
}

rc::Gen<std::string> gen_access() {
  return rc::gen::element<std::string>("r", "w", "m", "rw", "rm", "wm", "rwm");
}

rc::Gen<DeviceRuleSpec> gen_rule() {
  return rc::gen::build<DeviceRuleSpec>(rc::gen::set(&DeviceRuleSpec::allow),
                                        rc::gen::set(&DeviceRuleSpec::type, rc::gen::element('a', 'c', 'b')),
                                        rc::gen::set(&DeviceRuleSpec::major, rc::gen::inRange<int64_t>(-1, 4)),
                                        rc::gen::set(&DeviceRuleSpec::minor, rc::gen::inRange<int64_t>(-1, 4)),
                                        rc::gen::set(&DeviceRuleSpec::access, gen_access()));
}

// Every instruction lies on some path from the first (the verifier's rule).
bool all_reachable(const std::vector<bpf_insn>& p) {
  std::vector<bool> seen(p.size(), false);
  std::vector<size_t> pending = {0};  // instructions a path reaches, not yet visited
  while (!pending.empty()) {
    const size_t pc = pending.back();
    pending.pop_back();
    if (pc >= p.size() || seen[pc]) continue;
    seen[pc] = true;
    const uint8_t code = p[pc].code;
    if (code == (BPF_JMP | BPF_EXIT)) continue;
    pending.push_back(pc + 1);
    if ((code & 0x07) == BPF_JMP) pending.push_back(pc + 1 + p[pc].off);
  }
  return std::find(seen.begin(), seen.end(), false) == seen.end();
}

RC_GTEST_PROP(DeviceFilter, ProgramDecidesAsTheRulesDo, ()) {
  const auto rules = *rc::gen::container<std::vector<DeviceRuleSpec>>(gen_rule());
  const auto program = device_filter_program(rules);
  RC_ASSERT(all_reachable(program));
  for (char type : {'c', 'b'})
    for (uint32_t major = 0; major < 4; ++major)
      for (uint32_t minor : {0u, 3u})
        for (const char* access : {"r", "w", "m", "rw", "rwm"}) {
          const int got = run_program(program, access_type(type, access), major, minor);
          RC_ASSERT(got == (device_rules_allow(rules, type, major, minor, access) ? 1 : 0));
        }
}

TEST(DeviceFilter, LaterRulesWinAndNoMatchDenies) {
  const std::vector<DeviceRuleSpec> rules = {{false, 'a', -1, -1, "rwm"}, {true, 'c', 1, 3, "rw"}, {false, 'c', 1, 3, "w"}};
  EXPECT_TRUE(device_rules_allow(rules, 'c', 1, 3, "r"));
  EXPECT_FALSE(device_rules_allow(rules, 'c', 1, 3, "rw")) << "the later deny of w";
  EXPECT_FALSE(device_rules_allow(rules, 'c', 1, 3, "m")) << "m was never allowed";
  EXPECT_FALSE(device_rules_allow(rules, 'c', 1, 5, "r"));
  EXPECT_FALSE(device_rules_allow({}, 'c', 1, 3, "r"));
  EXPECT_TRUE(device_rules_allow({{true, 'a', -1, -1, "rwm"}}, 'b', 8, 0, "rwm"));
}

// In the cgroup, opens /dev/null and /dev/zero and makes a /dev/null node:
// bit 0, 1, 2 of the exit status set for each that the kernel allowed.
int probe_in(const std::string& cgroup_dir, const std::string& scratch) {
  const pid_t pid = ::fork();
  if (pid == 0) {
    std::ofstream(cgroup_dir + "/cgroup.procs") << "0";
    int allowed = 0;
    int fd = ::open("/dev/null", O_RDWR | O_CLOEXEC);
    if (fd >= 0) allowed |= 1, ::close(fd);
    fd = ::open("/dev/zero", O_RDONLY | O_CLOEXEC);
    if (fd >= 0) allowed |= 2, ::close(fd);
    const std::string node = scratch + "/null";
    if (::mknod(node.c_str(), S_IFCHR | 0600, makedev(1, 3)) == 0) allowed |= 4, ::unlink(node.c_str());
    ::_exit(allowed);
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

TEST(DeviceFilter, TheKernelEnforcesItAndAnUpdateReplacesIt) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root";
  const std::string mount = testing::cgroup2_mount();
  if (mount.empty()) GTEST_SKIP() << "no cgroup2 mount on this host";
  if (::access((mount + "/cgroup.procs").c_str(), W_OK) != 0) GTEST_SKIP() << "cgroup2 at " << mount << " is not writable";
  char tmpl[] = "/tmp/skiff-devices-XXXXXX";
  const std::string scratch = ::mkdtemp(tmpl);

  CgroupResources r;
  r.devices = {{false, 'a', -1, -1, "rwm"}, {true, 'c', 1, 3, "rw"}};
  const Cgroup g = Cgroup::create(mount, "skiff-devices-" + std::to_string(::getpid()), r);
  EXPECT_EQ(probe_in(g.dir(), scratch), 1) << "only reading and writing /dev/null is allowed";

  CgroupResources update;
  update.devices = {{false, 'a', -1, -1, "rwm"}, {true, 'c', 1, -1, "rwm"}};
  g.apply(update);
  EXPECT_EQ(probe_in(g.dir(), scratch), 7) << "every 1:* device, mknod too, and no trace of the first program";

  // An allow-all rule after others: they can't matter, and the kernel takes the program.
  update.devices = {{false, 'c', 1, 5, "r"}, {true, 'a', -1, -1, "rwm"}};
  g.apply(update);
  EXPECT_EQ(probe_in(g.dir(), scratch), 7);
  update.devices = {{true, 'a', -1, -1, "rwm"}, {false, 'c', 1, 5, "r"}};
  g.apply(update);
  EXPECT_EQ(probe_in(g.dir(), scratch), 5) << "/dev/zero denied for reading, the rest allowed";

  g.remove();
  std::filesystem::remove_all(scratch);
}

}  // namespace
}  // namespace skiff::agent
