#pragma once
// What the agent's host-run tests share: a busybox-static rootfs in a temp
// dir, and the host's cgroup2 mount.
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <string>

#include "api/agent.capnp.h"

namespace skiff::agent::testing {

class BusyboxRootfs {
 public:
  BusyboxRootfs() {
    namespace fs = std::filesystem;
    char tmpl[] = "/tmp/skiff-rootfs-XXXXXX";
    dir_ = ::mkdtemp(tmpl);
    root_ = dir_ + "/rootfs";
    for (const char* d : {"bin", "etc", "proc", "dev", "tmp", "home/app", "data", "sys"}) fs::create_directories(root_ + "/" + d);
    fs::copy_file("/bin/busybox", root_ + "/bin/busybox");
    for (const char* tool : {"sh", "cat", "echo", "id", "hostname", "grep", "ls", "mkdir", "touch", "stty", "sleep", "mount", "head",
                             "tr", "true"})
      fs::create_symlink("busybox", root_ + "/bin/" + tool);
    std::ofstream(root_ + "/etc/passwd") << "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n";
    std::ofstream(root_ + "/etc/group") << "root:x:0:\nstaff:x:50:app,other\napp:x:1000:\n";
    fs::create_directories(dir_ + "/host-data");
    std::ofstream(dir_ + "/host-data/file") << "from the host\n";
  }
  ~BusyboxRootfs() {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  BusyboxRootfs(const BusyboxRootfs&) = delete;
  BusyboxRootfs& operator=(const BusyboxRootfs&) = delete;

  const std::string& root() const { return root_; }
  // A path beside the rootfs, outside the container.
  std::string host(const std::string& rel) const { return dir_ + "/" + rel; }

 private:
  std::string dir_, root_;
};

// The smallest spec the tests run: `sh -c script` at /, on `root`, with /proc
// mounted and new namespaces of the given types.
// `sh -c script` in `cwd`: a container's process or an exec's.
inline void shell_process(api::ProcessSpec::Builder p, const std::string& script, const char* cwd = "/") {
  auto args = p.initArgs(3);
  args.set(0, "sh");
  args.set(1, "-c");
  args.set(2, script);
  p.setCwd(cwd);
}

inline void shell_spec(api::Spec::Builder s, const std::string& root, const std::string& script,
                       std::initializer_list<const char*> namespaces) {
  shell_process(s.initProcess(), script);
  s.getRoot().setPath(root);
  auto m = s.initMounts(1)[0];
  m.setDestination("/proc");
  m.setType("proc");
  m.setSource("proc");
  auto ns = s.initLinux().initNamespaces(static_cast<unsigned>(namespaces.size()));
  unsigned i = 0;
  for (const char* type : namespaces) ns[i++].setType(type);
}

// What a process wrote, as the host receives it.
class Collector final : public api::ByteStream::Server {
 public:
  explicit Collector(std::string& into) : into_(into) {}
  kj::Promise<void> write(WriteContext ctx) override {
    auto b = ctx.getParams().getBytes();
    into_.append(reinterpret_cast<const char*>(b.begin()), b.size());
    return kj::READY_NOW;
  }
  kj::Promise<void> end(EndContext) override { return kj::READY_NOW; }

 private:
  std::string& into_;
};

// The host's cgroup2 mount (unified, or the hybrid's "unified"), or "".
inline std::string cgroup2_mount() {
  std::ifstream f("/proc/self/mounts");
  std::string dev, dir, type, rest;
  while (f >> dev >> dir >> type && std::getline(f, rest))
    if (type == "cgroup2") return dir;
  return "";
}

}  // namespace skiff::agent::testing
