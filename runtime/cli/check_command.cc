// skiff check: can this host run Skiff? One line per item, OK or the reason.
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <linux/vm_sockets.h>

#include "runtime/cli/commands.h"
#include "skiff_version.h"
#include "vmm/boot/kernel_image.h"
#include "kvm/kvm.h"
#include "base/unique_fd.h"

namespace skiff::cli {
namespace {

struct CheckOptions {
  std::string kvm_path = "/dev/kvm";
  std::string kernel = SKIFF_DEFAULT_KERNEL;
  std::string initrd = SKIFF_DEFAULT_INITRD;
};

class Report {
 public:
  void ok(const std::string& item, const std::string& detail = "") {
    std::printf("%-22s OK%s%s\n", item.c_str(), detail.empty() ? "" : "    ", detail.c_str());
  }
  void fail(const std::string& item, const std::string& reason) {
    std::printf("%-22s FAIL  %s\n", item.c_str(), reason.c_str());
    ++failures_;
  }
  void info(const std::string& item, const std::string& detail) {
    std::printf("%-22s --    %s\n", item.c_str(), detail.c_str());
  }
  int failures() const { return failures_; }

 private:
  int failures_ = 0;
};

void check_kvm(Report& r, const std::string& path) {
  std::unique_ptr<kvm::System> kvm;
  try {
    kvm = std::make_unique<kvm::System>(path);
  } catch (const std::exception& e) {
    r.fail("kvm", e.what());
    return;
  }
  r.ok("kvm", path + " is readable and writable");
  auto flavour = kvm::detect_flavour();
  if (flavour == kvm::Flavour::Unknown) r.info("kvm flavour", "unknown vendor module");
  else r.ok("kvm flavour", kvm::to_string(flavour));
  r.ok("kvm api version", std::to_string(kvm->api_version()));
  for (const auto& cap : kvm::required_capabilities()) {
    if (kvm->check_extension(cap.id) > 0) r.ok(cap.name);
    else r.fail(cap.name, "not offered by this KVM");
  }
  r.ok("max vcpus", std::to_string(kvm->max_vcpus()));
}

void check_device(Report& r, const std::string& item, const char* path, const std::string& purpose) {
  skiff::UniqueFd fd(::open(path, O_RDWR | O_CLOEXEC));
  if (fd) r.ok(item, std::string(path) + " (" + purpose + ")");
  else r.fail(item, std::string("open ") + path + ": " + std::strerror(errno) + " (needed for " + purpose + ")");
}

void check_vsock(Report& r) {
  // Skiff's virtio-vsock device lives in the VMM process: the host needs
  // neither vhost-vsock nor AF_VSOCK. Say what the host has all the same.
  skiff::UniqueFd fd(::socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0));
  r.ok("vsock", std::string("in-process device; host AF_VSOCK ") + (fd ? "available" : "absent (not needed)"));
}

void check_cgroup2(Report& r) {
  std::ifstream controllers("/sys/fs/cgroup/cgroup.controllers");
  if (!controllers) {
    bool hybrid = access("/sys/fs/cgroup/unified/cgroup.controllers", F_OK) == 0;
    r.fail("cgroup v2", hybrid ? "hybrid hierarchy: cgroup v1 at /sys/fs/cgroup, v2 only at /sys/fs/cgroup/unified "
                                 "(boot the host with systemd.unified_cgroup_hierarchy=1)"
                               : "/sys/fs/cgroup is not a cgroup v2 (unified) hierarchy");
    return;
  }
  std::string list;
  std::getline(controllers, list);
  r.ok("cgroup v2", "controllers: " + (list.empty() ? std::string("none delegated") : list));
}

void check_image(Report& r, const std::string& item, const std::string& path, bool is_kernel) {
  if (path.empty()) {
    r.fail(item, std::string("not configured (pass --") + (is_kernel ? "kernel" : "initrd") + " FILE)");
    return;
  }
  std::ifstream f(path, std::ios::binary);
  if (!f) {
    r.fail(item, path + ": " + std::strerror(errno));
    return;
  }
  std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  if (!is_kernel) {
    if (bytes.empty()) r.fail(item, path + " is empty");
    else r.ok(item, path + " (" + std::to_string(bytes.size() >> 10) + " KiB)");
    return;
  }
  try {
    if (boot::looks_like_elf(bytes)) {
      auto elf = boot::parse_elf(bytes);
      r.ok(item, path + (elf.pvh_entry ? " (ELF, PVH entry)" : " (ELF, 64-bit entry)"));
    } else {
      auto bz = boot::parse_bzimage(bytes);
      char v[32];
      std::snprintf(v, sizeof v, "%u.%02u", bz.header.version >> 8, bz.header.version & 0xff);
      r.ok(item, path + " (bzImage, boot protocol " + v + ")");
    }
  } catch (const std::exception& e) {
    r.fail(item, path + ": " + e.what());
  }
}

int run_check(const CheckOptions& o) {
  Report r;
  check_kvm(r, o.kvm_path);
  check_device(r, "tun", "/dev/net/tun", "virtio-net tap devices");
  check_vsock(r);
  check_cgroup2(r);
  check_image(r, "kernel", o.kernel, true);
  if (!o.initrd.empty()) check_image(r, "initramfs", o.initrd, false);
  else r.info("initramfs", "none (optional)");
  std::printf("%s\n", r.failures() ? "this host cannot run Skiff yet: fix the FAIL lines above" : "this host can run Skiff");
  return r.failures() ? 1 : 0;
}

}  // namespace

void add_check_command(CLI::App& app, int& status) {
  auto opts = std::make_shared<CheckOptions>();
  auto* cmd = app.add_subcommand("check", "Tell whether this host can run Skiff, one line per item");
  cmd->add_option("--kvm", opts->kvm_path, "KVM device")->capture_default_str();
  cmd->add_option("--kernel", opts->kernel, "guest kernel to validate")->capture_default_str();
  cmd->add_option("--initrd", opts->initrd, "initramfs to validate (\"\" for none)")->capture_default_str();
  cmd->callback([opts, &status] { status = run_check(*opts); });
}

}  // namespace skiff::cli
