#include <pthread.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <cstring>
#include <thread>

#include "runtime/cli/commands.h"
#include "runtime/cli/device_specs.h"
#include "kvm/kvm.h"
#include "base/log.h"
#include "vmm/machine.h"

namespace skiff::cli {
namespace {

struct BootOptions {
  VmConfig vm;
  std::string console = "stdio";
  std::string initrd;
  std::vector<std::string> disks;
  std::string vsock;
  std::vector<std::string> shares;
  std::string log_path;
  std::string log_level = "info";
  bool quiet = false;
};

ConsoleConfig parse_console(const std::string& s) {
  if (s == "stdio") return {ConsoleMode::Stdio, {}};
  if (s == "pty") return {ConsoleMode::Pty, {}};
  if (s == "none") return {ConsoleMode::None, {}};
  if (s.empty()) throw ConfigError("--console needs stdio, pty, none or a file path");
  return {ConsoleMode::File, s};
}

int run_boot(BootOptions& o) {
  o.vm.console = parse_console(o.console);
  for (const auto& d : o.disks) o.vm.devices.push_back(parse_disk(d));
  for (const auto& s : o.shares) o.vm.devices.push_back(parse_share(s));
  if (!o.vsock.empty()) o.vm.devices.push_back(parse_vsock(o.vsock));
  if (!o.log_path.empty()) {
    auto& logger = log::Logger::global();
    logger.set_level(log::parse_level(o.log_level));
    if (o.log_path == "-") logger.use_fd(STDERR_FILENO);
    else logger.open_file(o.log_path);
  }
  // With no --kernel, boot the guest kernel and initramfs this build made.
  if (o.vm.kernel_path.empty()) {
    o.vm.kernel_path = SKIFF_DEFAULT_KERNEL;
    if (o.initrd.empty()) o.initrd = SKIFF_DEFAULT_INITRD;
    if (kvm::detect_flavour() == kvm::Flavour::Pvm && !o.quiet)
      std::fprintf(stderr,
                   "skiff: warning: /dev/kvm is PVM, where Linux takes minutes to boot "
                   "(scripts/run.sh boots it in a nested VM instead)\n");
  }
  if (!o.initrd.empty()) o.vm.initrd_path = o.initrd;

  // SIGINT and SIGTERM stop the VM cleanly: block them before any thread
  // starts, and take them on one thread of our own.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  Machine vm(o.vm);
  if (o.vm.console.mode == ConsoleMode::Pty) std::fprintf(stderr, "skiff: serial console on %s\n", vm.console().pty_path().c_str());
  std::thread signal_thread([&] {
    int sig = 0;
    sigwait(&stop_signals, &sig);
    if (sig != 0) vm.stop({VmExitKind::Stopped, std::string("stopped by signal ") + strsignal(sig)});
  });
  vm.start();
  VmExit exit = vm.wait();
  // Wake the signal thread if no signal came; stopping an ended VM is a no-op.
  pthread_kill(signal_thread.native_handle(), SIGTERM);
  signal_thread.join();
  // Nobody waits for these any more: let a later one end the process, so a
  // teardown that hangs can still be stopped by SIGTERM, not only SIGKILL.
  pthread_sigmask(SIG_UNBLOCK, &stop_signals, nullptr);

  if (!o.quiet) std::fprintf(stderr, "skiff: VM ended: %s: %s\n", to_string(exit.kind).c_str(), exit.detail.c_str());
  return exit_status(exit.kind);
}

}  // namespace

void add_boot_command(CLI::App& app, int& status) {
  auto opts = std::make_shared<BootOptions>();
  auto* cmd = app.add_subcommand("boot", "Boot a VM from a kernel image, without an API; exits with the guest's exit reason");
  cmd->add_option("--kernel", opts->vm.kernel_path,
                  "bzImage or ELF vmlinux (PVH note) to boot [default: " SKIFF_DEFAULT_KERNEL "]");
  cmd->add_option("--initrd", opts->initrd,
                  "initramfs to load [default with the default kernel: " SKIFF_DEFAULT_INITRD "]");
  cmd->add_option("--cmdline", opts->vm.cmdline, "kernel command line")->capture_default_str();
  cmd->add_option("--disk", opts->disks, "PATH[,ro][,serial=ID][,id=ID]: a virtio-blk disk (repeatable; the first is /dev/vda)");
  cmd->add_option("--share", opts->shares,
                  "PATH,tag=TAG[,ro][,cache=none|auto|always][,writeback][,no-xattr][,queues=N][,workers=N][,dax[=MiB]][,id=ID]: share "
                  "a host directory over virtio-fs, served in process (repeatable; the guest mounts it with "
                  "mount -t virtiofs TAG DIR)");
  cmd->add_option("--vsock", opts->vsock,
                  "CID[,socket=PATH][,id=ID]: virtio-vsock with guest CID (3 and up); host programs reach guest port P by "
                  "writing \"CONNECT P\\n\" to the socket, guest connections to host port P reach PATH_P");
  cmd->add_option("--vcpus", opts->vm.vcpus, "number of vCPUs")->capture_default_str();
  cmd->add_option("--max-vcpus", opts->vm.max_vcpus, "vCPUs the guest may see hot-added (default: --vcpus)");
  cmd->add_option("--memory", opts->vm.memory_mib, "guest memory in MiB")->capture_default_str();
  cmd->add_flag("--hugepages", opts->vm.hugepages, "back guest memory with 2 MiB huge pages");
  cmd->add_option("--console", opts->console, "stdio, pty, none, or a file to write the serial console to")
      ->capture_default_str();
  cmd->add_option("--log", opts->log_path, "write JSON-lines logs to FILE (- for stderr)");
  cmd->add_option("--log-level", opts->log_level, "debug, info, warn or error")->capture_default_str();
  cmd->add_flag("--quiet,-q", opts->quiet, "do not print the exit reason");
  cmd->footer(
      "Exit status: 0 power-off, 1 error, 2 bad usage, 3 reset/reboot, 4 triple fault, 5 guest crash, 6 stopped by a signal.");
  cmd->callback([opts, &status] { status = run_boot(*opts); });
}

}  // namespace skiff::cli
