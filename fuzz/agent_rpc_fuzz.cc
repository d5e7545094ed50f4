// libFuzzer target for the agent's message handling (agent/agent_service
// behind Cap'n Proto RPC): the bytes a runtime would send on the agent's
// connection, fed to the real Sandbox server over an in-memory pipe.
//
// Input: a stream of Cap'n Proto RPC messages (unpacked, framed as on the
// wire). Seeds in fuzz/corpus/agent_rpc/ are recorded client sessions
// (fuzz/agent_rpc_seeds.cc): bootstrap, setup, version, guestDetails,
// createContainer with a spec, pipelined start/wait/exec/stats, watch.
//
// The agent acts on the machine, so the process first goes into namespaces
// of its own (mount, UTS, IPC, network, and a user namespace when not root),
// with tmpfs over /etc and /proc/sys, and a seccomp filter that refuses
// (EPERM) mount, exec, mknod, setns, clock and reboot calls: every
// container launch and storage mount fails on its error path, nothing on the
// host changes. Checked beyond "no crash / no sanitizer report": the server
// is done with any input within 5 s of the input's end.
#include <fcntl.h>
#include <sched.h>
#include <seccomp.h>
#include <sys/mount.h>
#include <unistd.h>

#include <capnp/rpc-twoparty.h>
#include <kj/async-io.h>
#include <kj/async-unix.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>

#include "agent/agent_service.h"

namespace {

[[noreturn]] void fail(const std::string& why) {
  std::fprintf(stderr, "agent_rpc_fuzz: %s\n", why.c_str());
  std::abort();
}

void write_file(const std::string& path, const std::string& text) { std::ofstream(path) << text; }

void isolate() {
  const uid_t uid = ::geteuid();
  const gid_t gid = ::getegid();
  int flags = CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWNET;
  if (uid != 0) flags |= CLONE_NEWUSER;
  if (::unshare(flags) != 0) fail(std::string("unshare: ") + std::strerror(errno));
  if (uid != 0) {
    write_file("/proc/self/setgroups", "deny");
    write_file("/proc/self/uid_map", "0 " + std::to_string(uid) + " 1");
    write_file("/proc/self/gid_map", "0 " + std::to_string(gid) + " 1");
  }
  if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) fail(std::string("make / private: ") + std::strerror(errno));
  for (const char* dir : {"/etc", "/proc/sys"})
    if (::mount("tmpfs", dir, "tmpfs", MS_NOSUID | MS_NODEV, "size=1m") != 0)
      fail(std::string("tmpfs on ") + dir + ": " + std::strerror(errno));

  scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
  if (!ctx) fail("seccomp_init");
  for (const char* name : {"mount", "umount2", "pivot_root", "chroot", "execve", "execveat", "mknod", "mknodat", "setns",
                           "clock_settime", "clock_adjtime", "settimeofday", "adjtimex", "reboot", "kexec_load",
                           "init_module", "finit_module", "delete_module", "swapon", "swapoff", "bpf", "open_tree",
                           "move_mount", "fsmount", "fsopen"}) {
    const int nr = seccomp_syscall_resolve_name(name);
    if (nr == __NR_SCMP_ERROR) continue;
    if (seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), nr, 0) != 0) fail(std::string("seccomp rule for ") + name);
  }
  if (seccomp_load(ctx) != 0) fail("seccomp_load");
  seccomp_release(ctx);
}

struct Loop {
  Loop() {
    kj::UnixEventPort::captureChildExit();
    io = kj::heap<kj::AsyncIoContext>(kj::setupAsyncIo());
  }
  kj::Own<kj::AsyncIoContext> io;
};

Loop& loop() {
  static Loop* l = [] {
    isolate();
    return new Loop();
  }();
  return *l;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto& io = *loop().io;
  // A socket pair, as the agent's vsock connection is a socket.
  auto pipe = io.provider->newCapabilityPipe();
  skiff::agent::AgentOptions options;  // no cgroup parent, no power-off: refused
  capnp::TwoPartyServer server(skiff::agent::make_sandbox(io.unixEventPort, *io.lowLevelProvider, options));
  auto& host = *pipe.ends[1];
  // Each side runs on its own (eagerly): a join only waits for them.
  auto serving = server.accept(*pipe.ends[0]).catch_([](kj::Exception&&) {}).eagerlyEvaluate(nullptr);
  // The host's side: send the input, then end it; read what the agent answers.
  auto answers = host.readAllBytes().ignoreResult().catch_([](kj::Exception&&) {}).eagerlyEvaluate(nullptr);
  auto sent =
      host.write(data, size).then([&host] { host.shutdownWrite(); }).catch_([](kj::Exception&&) {}).eagerlyEvaluate(nullptr);
  auto done = kj::joinPromises(kj::arr(kj::mv(serving), kj::mv(sent)))
                  .then([]() { return true; })
                  .exclusiveJoin(io.provider->getTimer().afterDelay(5 * kj::SECONDS).then([] { return false; }));
  if (!done.wait(io.waitScope)) fail("the agent was not done with an input 5 s after its end");
  return 0;
}
