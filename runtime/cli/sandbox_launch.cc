#include "runtime/cli/sandbox_launch.h"

#include <fcntl.h>
#include <pwd.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <stdexcept>
#include <vector>

#include "base/config_error.h"
#include "base/sys_error.h"
#include "runtime/oci/oci_spec.h"
#include "runtime/state/state_store.h"

namespace skiff::cli {
namespace {

std::string user_name() {
  if (const passwd* pw = ::getpwuid(::geteuid())) return pw->pw_name;
  return std::to_string(::geteuid());
}

std::string read_all(int fd) {
  std::string out;
  char buf[4096];
  for (;;) {
    ssize_t n = retry_eintr([&] { return ::read(fd, buf, sizeof buf); });
    if (n <= 0) return out;
    out.append(buf, static_cast<size_t>(n));
  }
}

}  // namespace

int launch_sandbox(GlobalOptions& g, const LaunchOptions& o) {
  runtime::StateStore::check_id(o.id);
  const std::string root = g.state_root();
  runtime::StateStore store(root);
  auto lock = store.lock(o.id);
  // Everything the sandbox process would refuse is refused here first, with
  // no process started: the bundle and the configuration.
  auto bundle = runtime::oci::load_bundle(o.bundle);
  g.runtime_config();
  if (bundle.terminal && o.console_socket.empty())
    throw ConfigError("the process has a terminal (process.terminal): --console-socket is needed to hand it over");
  if (!o.console_socket.empty() && !bundle.terminal)
    throw ConfigError("--console-socket given, but the process has no terminal (process.terminal is false)");

  runtime::ContainerState st;
  st.id = o.id;
  st.bundle = bundle.dir;
  st.rootfs = bundle.rootfs;
  st.status = "creating";
  st.created = runtime::rfc3339_now();
  st.owner = user_name();
  st.annotations = bundle.annotations;
  store.create(st);

  int ready[2];
  if (::pipe2(ready, O_CLOEXEC) != 0) {
    store.remove(o.id);
    throw_errno("pipe");
  }
  std::vector<std::string> args = {"skiff", "--root", root};
  if (!g.config.empty()) args.insert(args.end(), {"--config", g.config});
  if (!g.log.empty()) args.insert(args.end(), {"--log", g.log});
  args.insert(args.end(), {"--log-format", g.resolved_log_format()});
  if (g.debug) args.push_back("--debug");
  args.insert(args.end(), {"sandbox-run", "--bundle", bundle.dir, "--ready-fd", std::to_string(ready[1])});
  if (!o.console_socket.empty()) args.insert(args.end(), {"--console-socket", o.console_socket});
  args.push_back(o.id);
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);

  const pid_t child = ::fork();
  if (child < 0) {
    store.remove(o.id);
    throw_errno("fork the sandbox process");
  }
  if (child == 0) {
    ::close(ready[0]);
    ::setsid();
    if (::fork() != 0) ::_exit(0);  // the grandchild is the sandbox process, a child of init
    ::fcntl(ready[1], F_SETFD, 0);
    ::execv("/proc/self/exe", argv.data());
    std::string msg = std::string("error: exec /proc/self/exe: ") + std::strerror(errno) + "\n";
    (void)!::write(ready[1], msg.data(), msg.size());
    ::_exit(127);
  }
  ::close(ready[1]);
  retry_eintr([&] { return ::waitpid(child, nullptr, 0); });
  std::string answer = read_all(ready[0]);
  ::close(ready[0]);
  while (!answer.empty() && answer.back() == '\n') answer.pop_back();
  if (!answer.starts_with("ok ")) {
    store.remove(o.id);
    if (answer.starts_with("error: ")) throw std::runtime_error(answer.substr(7));
    throw std::runtime_error("the sandbox process of \"" + o.id + "\" ended before the container was created");
  }
  const int pid = std::stoi(answer.substr(3));
  if (!o.pid_file.empty()) runtime::write_file_atomic(o.pid_file, std::to_string(pid), 0644);
  return pid;
}

}  // namespace skiff::cli
