#include "runtime/cli/terminal_proxy.h"

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <termios.h>
#include <unistd.h>

#include <csignal>
#include <cstring>
#include <filesystem>
#include <stdexcept>

#include "base/sys_error.h"

namespace skiff::cli {

ConsoleReceiver::ConsoleReceiver() {
  char tmpl[] = "/tmp/skiff-console-XXXXXX";
  if (!::mkdtemp(tmpl)) throw_errno("mkdtemp for the console socket");
  dir_ = tmpl;
  path_ = dir_ + "/console.sock";
  listener_.reset(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!listener_) throw_errno("socket for the console socket");
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path_.c_str(), path_.size());
  if (::bind(listener_.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) throw_errno("bind " + path_);
  if (::listen(listener_.get(), 1) != 0) throw_errno("listen on " + path_);
}

ConsoleReceiver::~ConsoleReceiver() {
  std::error_code ec;
  std::filesystem::remove_all(dir_, ec);
}

UniqueFd ConsoleReceiver::receive(int timeout_ms) {
  pollfd p{listener_.get(), POLLIN, 0};
  if (retry_eintr([&] { return ::poll(&p, 1, timeout_ms); }) <= 0) throw std::runtime_error("no terminal came from the sandbox process");
  UniqueFd conn(::accept4(listener_.get(), nullptr, nullptr, SOCK_CLOEXEC));
  if (!conn) throw_errno("accept on the console socket");
  char name[256];
  iovec iov{name, sizeof name};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof control;
  if (retry_eintr([&] { return ::recvmsg(conn.get(), &msg, MSG_CMSG_CLOEXEC); }) < 0) throw_errno("receive the terminal");
  cmsghdr* cm = CMSG_FIRSTHDR(&msg);
  if (!cm || cm->cmsg_type != SCM_RIGHTS) throw std::runtime_error("the console socket got no terminal fd");
  int fd;
  std::memcpy(&fd, CMSG_DATA(cm), sizeof fd);
  return UniqueFd(fd);
}

namespace {

void copy_size(int from, int to) {
  winsize ws{};
  if (::ioctl(from, TIOCGWINSZ, &ws) == 0) ::ioctl(to, TIOCSWINSZ, &ws);
}

bool write_all(int fd, const char* p, size_t n) {
  while (n > 0) {
    ssize_t w = retry_eintr([&] { return ::write(fd, p, n); });
    if (w <= 0) return false;
    p += w;
    n -= static_cast<size_t>(w);
  }
  return true;
}

}  // namespace

TerminalProxy::TerminalProxy(UniqueFd master) : master_(std::move(master)) {
  int stop[2];
  if (::pipe2(stop, O_CLOEXEC) != 0) throw_errno("pipe");
  stop_read_.reset(stop[0]);
  stop_write_.reset(stop[1]);
  termios t{};
  if (::isatty(STDIN_FILENO) && ::tcgetattr(STDIN_FILENO, &t) == 0) {
    saved_ = t;
    ::cfmakeraw(&t);
    ::tcsetattr(STDIN_FILENO, TCSANOW, &t);
    copy_size(STDIN_FILENO, master_.get());
  }
  const int m = master_.get();
  output_ = std::thread([m, stop = stop_read_.get()] {
    char buf[16384];
    for (;;) {
      pollfd p[2] = {{m, POLLIN, 0}, {stop, POLLIN, 0}};
      if (retry_eintr([&] { return ::poll(p, 2, -1); }) < 0 || (p[1].revents & POLLIN)) return;
      ssize_t n = retry_eintr([&] { return ::read(m, buf, sizeof buf); });
      if (n <= 0 || !write_all(STDOUT_FILENO, buf, static_cast<size_t>(n))) return;
    }
  });
  // Input: a detached thread (a read on a terminal can't be woken); it only
  // ever writes to the master, which outlives the process.
  std::thread([m] {
    char buf[4096];
    for (;;) {
      ssize_t n = retry_eintr([&] { return ::read(STDIN_FILENO, buf, sizeof buf); });
      if (n <= 0 || !write_all(m, buf, static_cast<size_t>(n))) return;
    }
  }).detach();
  // SIGWINCH is blocked by the caller before any thread starts (run/exec).
  winch_ = std::thread([m] {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGWINCH);
    sigaddset(&set, SIGUSR2);
    for (;;) {
      int sig = 0;
      if (sigwait(&set, &sig) != 0 || sig == SIGUSR2) return;
      copy_size(STDIN_FILENO, m);
    }
  });
}

TerminalProxy::~TerminalProxy() {
  pthread_kill(winch_.native_handle(), SIGUSR2);
  winch_.join();
  // The last output may still be on its way through the sandbox: copy until
  // the master has been quiet for a moment, then stop the copier.
  pollfd p{master_.get(), POLLIN, 0};
  while (retry_eintr([&] { return ::poll(&p, 1, 200); }) > 0 && (p.revents & POLLIN)) ::usleep(20000);
  (void)!::write(stop_write_.get(), "x", 1);
  output_.join();
  if (saved_) ::tcsetattr(STDIN_FILENO, TCSANOW, &*saved_);
}

}  // namespace skiff::cli
