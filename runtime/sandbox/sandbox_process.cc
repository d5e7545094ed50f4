#include "runtime/sandbox/sandbox_process.h"

#include <fcntl.h>
#include <pty.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <termios.h>
#include <unistd.h>

#include <kj/async-unix.h>

#include <csignal>
#include <cstring>

#include "base/log.h"
#include "base/sys_error.h"
#include "runtime/config/runtime_config.h"
#include "runtime/control/control_server.h"
#include "runtime/oci/hooks.h"
#include "runtime/oci/oci_spec.h"
#include "runtime/sandbox/console.h"
#include "runtime/sandbox/control_errors.h"
#include "runtime/sandbox/sandbox.h"
#include "runtime/sandbox/stdio_streams.h"
#include "runtime/sandbox/vmm_hypervisor.h"
#include "runtime/state/state_store.h"

namespace skiff::runtime {
namespace {

UniqueFd dup_fd(int fd, const char* what) {
  int d = ::fcntl(fd, F_DUPFD_CLOEXEC, 3);
  if (d < 0) throw_errno(std::string("dup ") + what);
  return UniqueFd(d);
}

void report_ready(int fd, const std::string& line) {
  if (fd < 0) return;
  std::string s = line + "\n";
  (void)!::write(fd, s.data(), s.size());
  ::close(fd);
}

// The bind mounts of the share must not reach the host's namespace, and must
// go when this process goes, however it ends. The namespace this process
// started in stays open: the OCI hooks run there, as the spec says
// ("in the runtime namespace"), not among the share's mounts.
UniqueFd private_mounts() {
  UniqueFd runtime_ns(::open("/proc/self/ns/mnt", O_RDONLY | O_CLOEXEC));
  if (!runtime_ns) throw_errno("open the runtime's mount namespace (/proc/self/ns/mnt)");
  if (::unshare(CLONE_NEWNS) != 0) throw_errno("unshare the sandbox's mount namespace");
  if (::mount(nullptr, "/", nullptr, MS_REC | MS_SLAVE, nullptr) != 0) throw_errno("make / a slave mount in the sandbox");
  return runtime_ns;
}

struct IgnoreErrors final : kj::TaskSet::ErrorHandler {
  void taskFailed(kj::Exception&&) override {}
};

std::vector<ContainerLimits> limits_of(const oci::Bundle& b) { return {ContainerLimits{b.cpu_limit, b.memory_limit}}; }

}  // namespace

int run_sandbox_process(const SandboxProcessOptions& o) {
  int ready_fd = o.ready_fd;
  StateStore store(o.root);
  const std::string dir = store.dir_of(o.id);
  try {
    auto& logger = log::Logger::global();
    logger.open_file(o.log_path.empty() ? dir + "/sandbox.log" : o.log_path);
    logger.set_level(log::parse_level(o.log_level));
    logger.set_text(o.log_text);
    logger.set_sandbox(o.id);

    const UniqueFd runtime_mount_ns = private_mounts();
    oci::set_hook_mount_namespace(runtime_mount_ns.get());
    auto config = load_config(o.config_path.empty() ? "/etc/skiff/config.toml" : o.config_path, o.config_explicit,
                              default_config(o.default_kernel, o.default_initrd));
    auto bundle = oci::load_bundle(o.bundle);
    const bool terminal = bundle.terminal;
    if (terminal && o.console_socket.empty())
      throw ConfigError("the container's process has a terminal: --console-socket is needed to hand it over");
    auto sizing = size_sandbox(config, bundle.annotations, limits_of(bundle));
    auto state = store.load(o.id);
    if (!state) throw std::runtime_error("the state of container \"" + o.id + "\" is gone");
    state->sandbox_pid = ::getpid();
    state->sandbox_start_time = process_start_time(::getpid()).value_or(0);
    state->pid = ::getpid();
    state->control_socket = dir + "/control.sock";
    store.save(*state);

    // Signals this process takes on its KJ loop: blocked before any thread starts.
    kj::UnixEventPort::captureSignal(SIGTERM);
    kj::UnixEventPort::captureSignal(SIGINT);
    std::signal(SIGPIPE, SIG_IGN);

    // The container's stdio, then this process's own fds 0-2 to /dev/null:
    // nothing of ours may end up in the container's output.
    ContainerIo io;
    UniqueFd terminal_fd;
    if (terminal) {
      UniqueFd s = hand_over_terminal(o.console_socket);
      io.out = api::ByteStream::Client(kj::heap<FdOutputStream>(dup_fd(s.get(), "the terminal")));
      io.stdin = true;
      io.stdin_fd = dup_fd(s.get(), "the terminal");
      terminal_fd = std::move(s);
    } else {
      io.out = api::ByteStream::Client(kj::heap<FdOutputStream>(dup_fd(1, "stdout")));
      io.err = api::ByteStream::Client(kj::heap<FdOutputStream>(dup_fd(2, "stderr")));
      io.stdin = true;
      io.stdin_fd = dup_fd(0, "stdin");
    }
    UniqueFd null(::open("/dev/null", O_RDWR | O_CLOEXEC));
    for (int fd = 0; fd <= 2; ++fd) ::dup2(null.get(), fd);

    auto kj_io = kj::setupAsyncIo();
    VmmHypervisor hv;
    Sandbox sandbox(kj_io, hv, {o.id, dir, config, sizing, bundle.config.value("hostname", std::string())});
    sandbox.on_change = [&store, &state](const Sandbox::Container& c) {
      state->status = c.status;
      if (c.exit) state->exit_code = c.exit->code;
      try {
        store.save(*state);
      } catch (const std::exception& e) {
        log::error("sandbox", "could not write the state file", {{"error", std::string(e.what())}});
      }
    };

    auto shutdown = kj::newPromiseAndFulfiller<void>();
    auto* shutdown_fulfiller = shutdown.fulfiller.get();
    ControlServer server(kj_io, dir + "/control.sock",
                         make_control_sandbox(sandbox, [shutdown_fulfiller] { shutdown_fulfiller->fulfill(); }));

    std::string id = o.id;
    Sandbox::Container* created = nullptr;
    try {
      sandbox.start().wait(kj_io.waitScope);
      created = sandbox.create_container(id, std::move(bundle), std::move(io)).wait(kj_io.waitScope);
    } catch (const kj::Exception& e) {
      throw std::runtime_error(error_line(e));
    }
    report_ready(ready_fd, "ok " + std::to_string(::getpid()));
    ready_fd = -1;

    IgnoreErrors ignore;
    kj::TaskSet tasks(ignore);  // the resize forwarder: it ends with the terminal
    if (terminal_fd)
      tasks.add(forward_window_size(kj_io.provider->getTimer(), terminal_fd.get(),
                                    created->agent.initRequest().send().getProcess()));

    auto by_signal = kj_io.unixEventPort.onSignal(SIGTERM)
                         .exclusiveJoin(kj_io.unixEventPort.onSignal(SIGINT))
                         .then([&sandbox](siginfo_t) {
                           log::info("sandbox", "stopping on a signal");
                           return sandbox.shutdown();
                         });
    shutdown.promise.exclusiveJoin(kj::mv(by_signal)).wait(kj_io.waitScope);
    // Let the answer to Sandbox.shutdown reach its caller before the socket closes.
    kj_io.provider->getTimer().afterDelay(50 * kj::MILLISECONDS).wait(kj_io.waitScope);
    log::info("sandbox", "sandbox process ends");
    return 0;
  } catch (const std::exception& e) {
    log::error("sandbox", "sandbox failed", {{"error", std::string(e.what())}});
    report_ready(ready_fd, std::string("error: ") + e.what());
    return 1;
  }
}

}  // namespace skiff::runtime
