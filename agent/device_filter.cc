#include "agent/device_filter.h"

#include <fcntl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstring>

#include "agent/cgroup.h"
#include "agent/fd.h"

namespace skiff::agent {
namespace {

uint32_t access_bits(const std::string& access) {
  uint32_t bits = 0;
  for (char c : access) {
    if (c == 'm') bits |= BPF_DEVCG_ACC_MKNOD;
    if (c == 'r') bits |= BPF_DEVCG_ACC_READ;
    if (c == 'w') bits |= BPF_DEVCG_ACC_WRITE;
  }
  return bits;
}

constexpr uint32_t kAllAccess = BPF_DEVCG_ACC_MKNOD | BPF_DEVCG_ACC_READ | BPF_DEVCG_ACC_WRITE;

// Registers: r2 device type, r3 requested access, r4 major, r5 minor; r6 scratch.
constexpr uint8_t kType = 2, kAccess = 3, kMajor = 4, kMinor = 5, kScratch = 6;

bpf_insn insn(uint8_t code, uint8_t dst, uint8_t src, int16_t off, int32_t imm) {
  bpf_insn i{};
  i.code = code;
  i.dst_reg = dst & 0xf;
  i.src_reg = src & 0xf;
  i.off = off;
  i.imm = imm;
  return i;
}
bpf_insn load_ctx_word(uint8_t dst, int16_t offset) { return insn(BPF_LDX | BPF_MEM | BPF_W, dst, 1, offset, 0); }
bpf_insn mov_reg(uint8_t dst, uint8_t src) { return insn(BPF_ALU64 | BPF_MOV | BPF_X, dst, src, 0, 0); }
bpf_insn mov_imm(uint8_t dst, int32_t imm) { return insn(BPF_ALU64 | BPF_MOV | BPF_K, dst, 0, 0, imm); }
bpf_insn alu_imm(uint8_t op, uint8_t dst, int32_t imm) { return insn(BPF_ALU64 | op | BPF_K, dst, 0, 0, imm); }
bpf_insn jump_imm(uint8_t op, uint8_t dst, int32_t imm, int16_t off) { return insn(BPF_JMP | op | BPF_K, dst, 0, off, imm); }
bpf_insn exit_insn() { return insn(BPF_JMP | BPF_EXIT, 0, 0, 0, 0); }

// One rule's block: compares that jump past the block on a mismatch, then
// "return allow". The jump offsets are set once the block's length is known.
constexpr size_t kMaxBlock = 8;

std::vector<bpf_insn> rule_block(const DeviceRuleSpec& rule) {
  std::vector<bpf_insn> b;
  b.reserve(kMaxBlock);
  std::vector<size_t> to_next;  // jumps to the end of the block
  if (rule.type != 'a') {
    to_next.push_back(b.size());
    b.push_back(jump_imm(BPF_JNE, kType, rule.type == 'b' ? BPF_DEVCG_DEV_BLOCK : BPF_DEVCG_DEV_CHAR, 0));
  }
  const uint32_t bits = access_bits(rule.access);
  if (rule.allow) {
    if (bits != kAllAccess) {  // the request must ask for nothing outside the rule
      b.push_back(mov_reg(kScratch, kAccess));
      b.push_back(alu_imm(BPF_AND, kScratch, static_cast<int32_t>(~bits & kAllAccess)));
      to_next.push_back(b.size());
      b.push_back(jump_imm(BPF_JNE, kScratch, 0, 0));
    }
  } else {  // the request shares some access with the rule
    b.push_back(mov_reg(kScratch, kAccess));
    b.push_back(alu_imm(BPF_AND, kScratch, static_cast<int32_t>(bits)));
    to_next.push_back(b.size());
    b.push_back(jump_imm(BPF_JEQ, kScratch, 0, 0));
  }
  if (rule.major >= 0) {
    to_next.push_back(b.size());
    b.push_back(jump_imm(BPF_JNE, kMajor, static_cast<int32_t>(rule.major), 0));
  }
  if (rule.minor >= 0) {
    to_next.push_back(b.size());
    b.push_back(jump_imm(BPF_JNE, kMinor, static_cast<int32_t>(rule.minor), 0));
  }
  b.push_back(mov_imm(0, rule.allow ? 1 : 0));
  b.push_back(exit_insn());
  for (size_t at : to_next) b[at].off = static_cast<int16_t>(b.size() - at - 1);
  return b;
}

long bpf(int cmd, bpf_attr& attr) { return ::syscall(__NR_bpf, cmd, &attr, sizeof attr); }

[[noreturn]] void fail(const std::string& what) {
  throw CgroupError("linux.resources.devices: " + what + ": " + std::strerror(errno));
}

// The ids of the device programs attached to the cgroup now.
std::vector<uint32_t> attached_programs(int cgroup_fd) {
  std::vector<uint32_t> ids(64);
  bpf_attr attr{};
  attr.query.target_fd = static_cast<uint32_t>(cgroup_fd);
  attr.query.attach_type = BPF_CGROUP_DEVICE;
  attr.query.prog_ids = reinterpret_cast<uint64_t>(ids.data());
  attr.query.prog_cnt = static_cast<uint32_t>(ids.size());
  if (bpf(BPF_PROG_QUERY, attr) != 0) fail("query the cgroup's device programs");
  ids.resize(attr.query.prog_cnt);
  return ids;
}

}  // namespace

std::vector<bpf_insn> device_filter_program(const std::vector<DeviceRuleSpec>& rules) {
  std::vector<bpf_insn> p = {
      load_ctx_word(kType, offsetof(bpf_cgroup_dev_ctx, access_type)),
      mov_reg(kAccess, kType),
      alu_imm(BPF_AND, kType, 0xffff),
      alu_imm(BPF_RSH, kAccess, 16),
      load_ctx_word(kMajor, offsetof(bpf_cgroup_dev_ctx, major)),
      load_ctx_word(kMinor, offsetof(bpf_cgroup_dev_ctx, minor)),
  };
  // Last rule first: the first block that matches returns.
  // A rule that matches everything ends the program: the kernel's verifier
  // refuses instructions no path reaches.
  for (auto it = rules.rbegin(); it != rules.rend(); ++it) {
    auto block = rule_block(*it);
    p.insert(p.end(), block.begin(), block.end());
    if (block.size() == 2) return p;  // no compare: "return allow" alone
  }
  p.push_back(mov_imm(0, 0));
  p.push_back(exit_insn());
  return p;
}

bool device_rules_allow(const std::vector<DeviceRuleSpec>& rules, char type, uint32_t major, uint32_t minor,
                        const std::string& access) {
  const uint32_t want = access_bits(access);
  for (auto it = rules.rbegin(); it != rules.rend(); ++it) {
    const DeviceRuleSpec& r = *it;
    if (r.type != 'a' && r.type != type) continue;
    const uint32_t bits = access_bits(r.access);
    if (r.allow ? (want & ~bits) != 0 : (want & bits) == 0) continue;
    if (r.major >= 0 && static_cast<uint32_t>(r.major) != major) continue;
    if (r.minor >= 0 && static_cast<uint32_t>(r.minor) != minor) continue;
    return r.allow;
  }
  return false;
}

void attach_device_filter(const std::string& cgroup_dir, const std::vector<DeviceRuleSpec>& rules) {
  Fd cgroup(::open(cgroup_dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!cgroup) fail("open " + cgroup_dir);
  const std::vector<uint32_t> old = attached_programs(cgroup.get());

  const std::vector<bpf_insn> program = device_filter_program(rules);
  static const char license[] = "Apache-2.0";
  std::vector<char> verifier_log(64 * 1024);
  bpf_attr load{};
  load.prog_type = BPF_PROG_TYPE_CGROUP_DEVICE;
  load.insns = reinterpret_cast<uint64_t>(program.data());
  load.insn_cnt = static_cast<uint32_t>(program.size());
  load.license = reinterpret_cast<uint64_t>(license);
  load.log_buf = reinterpret_cast<uint64_t>(verifier_log.data());
  load.log_size = static_cast<uint32_t>(verifier_log.size());
  load.log_level = 1;
  Fd prog(static_cast<int>(bpf(BPF_PROG_LOAD, load)));
  if (!prog) {
    const int err = errno;
    std::string log(verifier_log.data());
    errno = err;
    fail("load the device program (" + std::to_string(program.size()) + " instructions" +
         (log.empty() ? std::string(")") : "; verifier: " + log.substr(0, 200) + ")"));
  }

  bpf_attr attach{};
  attach.target_fd = static_cast<uint32_t>(cgroup.get());
  attach.attach_bpf_fd = static_cast<uint32_t>(prog.get());
  attach.attach_type = BPF_CGROUP_DEVICE;
  attach.attach_flags = BPF_F_ALLOW_MULTI;
  if (bpf(BPF_PROG_ATTACH, attach) != 0) fail("attach the device program to " + cgroup_dir);

  // The new program is in place before the old ones go: no moment without a filter.
  for (uint32_t id : old) {
    bpf_attr get{};
    get.prog_id = id;
    Fd old_prog(static_cast<int>(bpf(BPF_PROG_GET_FD_BY_ID, get)));
    if (!old_prog) continue;  // detached meanwhile
    bpf_attr detach{};
    detach.target_fd = static_cast<uint32_t>(cgroup.get());
    detach.attach_bpf_fd = static_cast<uint32_t>(old_prog.get());
    detach.attach_type = BPF_CGROUP_DEVICE;
    if (bpf(BPF_PROG_DETACH, detach) != 0) fail("detach the previous device program from " + cgroup_dir);
  }
}

}  // namespace skiff::agent
