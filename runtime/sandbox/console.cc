#include "runtime/sandbox/console.h"

#include <fcntl.h>
#include <pty.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <termios.h>

#include <cstring>

#include "base/config_error.h"
#include "base/sys_error.h"

namespace skiff::runtime {
namespace {

void send_fd(const std::string& socket_path, int fd, const std::string& name) {
  UniqueFd sock(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!sock) throw_errno("socket for the console socket");
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (socket_path.size() >= sizeof addr.sun_path) throw ConfigError("--console-socket: path too long: " + socket_path);
  std::memcpy(addr.sun_path, socket_path.c_str(), socket_path.size());
  if (::connect(sock.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0)
    throw_errno("connect to the console socket " + socket_path);
  std::string payload = name;
  iovec iov{payload.data(), payload.size()};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof control;
  cmsghdr* cm = CMSG_FIRSTHDR(&msg);
  cm->cmsg_level = SOL_SOCKET;
  cm->cmsg_type = SCM_RIGHTS;
  cm->cmsg_len = CMSG_LEN(sizeof(int));
  std::memcpy(CMSG_DATA(cm), &fd, sizeof(int));
  if (retry_eintr([&] { return ::sendmsg(sock.get(), &msg, MSG_NOSIGNAL); }) < 0)
    throw_errno("send the terminal to the console socket " + socket_path);
}

}  // namespace

UniqueFd hand_over_terminal(const std::string& console_socket) {
  int master = -1, slave = -1;
  if (::openpty(&master, &slave, nullptr, nullptr, nullptr) != 0) throw_errno("openpty for the container's terminal");
  UniqueFd m(master), s(slave);
  ::fcntl(m.get(), F_SETFD, FD_CLOEXEC);
  ::fcntl(s.get(), F_SETFD, FD_CLOEXEC);
  termios t{};
  if (::tcgetattr(s.get(), &t) == 0) {
    ::cfmakeraw(&t);
    ::tcsetattr(s.get(), TCSANOW, &t);
  }
  char name[128] = "/dev/ptmx";
  ::ptsname_r(m.get(), name, sizeof name);
  send_fd(console_socket, m.get(), name);
  return s;
}

kj::Promise<void> forward_window_size(kj::Timer& timer, int slave_fd, api::Process::Client process) {
  struct Loop {
    kj::Timer& timer;
    int fd;
    api::Process::Client process;
    winsize last{};  // 0x0: the first size seen, the receiver's, is sent at once
    kj::Promise<void> tick() {
      winsize ws{};
      if (::ioctl(fd, TIOCGWINSZ, &ws) != 0) return kj::READY_NOW;  // the pty is gone
      kj::Promise<void> sent = kj::READY_NOW;
      if (ws.ws_row != last.ws_row || ws.ws_col != last.ws_col) {
        last = ws;
        auto req = process.resizeTerminalRequest();
        req.getSize().setRows(ws.ws_row);
        req.getSize().setCols(ws.ws_col);
        sent = req.send().ignoreResult();
      }
      return sent.then([this] { return timer.afterDelay(100 * kj::MILLISECONDS); }).then([this] { return tick(); });
    }
  };
  auto loop = kj::heap<Loop>(Loop{timer, slave_fd, kj::mv(process), {}});
  auto p = loop->tick();
  return p.attach(kj::mv(loop));
}

}  // namespace skiff::runtime
