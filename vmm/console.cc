#include "vmm/console.h"

#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <termios.h>
#include <unistd.h>

#include "base/sys_error.h"

namespace skiff {

Console::Console(const ConsoleConfig& config) {
  switch (config.mode) {
    case ConsoleMode::Stdio:
      output_ = std::make_shared<devices::FdSerialOutput>(STDOUT_FILENO);
      input_fd_ = STDIN_FILENO;
      // A terminal goes to the guest key by key, echoed by the guest's own
      // tty, as with a serial line; Ctrl-C still stops the VM (ISIG stays).
      if (::isatty(STDIN_FILENO) && ::tcgetattr(STDIN_FILENO, &saved_termios_) == 0) {
        termios raw = saved_termios_;
        raw.c_lflag &= ~static_cast<tcflag_t>(ICANON | ECHO | ECHONL | IEXTEN);
        raw.c_iflag &= ~static_cast<tcflag_t>(ICRNL | IXON);
        raw.c_cc[VMIN] = 1;
        raw.c_cc[VTIME] = 0;
        if (::tcsetattr(STDIN_FILENO, TCSANOW, &raw) == 0) restore_termios_ = true;
      }
      break;
    case ConsoleMode::File:
      output_ = devices::FdSerialOutput::open_file(config.path);
      break;
    case ConsoleMode::Pty: {
      pty_master_ = UniqueFd(::posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC));
      if (!pty_master_) throw_errno("posix_openpt");
      if (::grantpt(pty_master_.get()) < 0 || ::unlockpt(pty_master_.get()) < 0) throw_errno("unlock pty");
      const char* name = ::ptsname(pty_master_.get());
      if (!name) throw_errno("ptsname");
      pty_path_ = name;
      // Raw mode on our side: the guest's own line discipline does the editing.
      termios t{};
      if (::tcgetattr(pty_master_.get(), &t) == 0) {
        ::cfmakeraw(&t);
        ::tcsetattr(pty_master_.get(), TCSANOW, &t);
      }
      output_ = std::make_shared<devices::FdSerialOutput>(pty_master_.get());
      input_fd_ = pty_master_.get();
      break;
    }
    case ConsoleMode::None:
      output_ = std::make_shared<devices::NullSerialOutput>();
      break;
  }
}

Console::~Console() {
  stop_.signal();
  if (input_thread_.joinable()) input_thread_.join();
  if (restore_termios_) ::tcsetattr(STDIN_FILENO, TCSANOW, &saved_termios_);
}

void Console::attach_input(devices::Serial& serial) {
  if (input_fd_ < 0 || input_thread_.joinable()) return;
  input_thread_ = std::thread([this, &serial] { pump(serial); });
}

void Console::pump(devices::Serial& serial) {
  uint8_t buf[256];
  for (;;) {
    pollfd fds[2] = {{input_fd_, POLLIN, 0}, {stop_.fd(), POLLIN, 0}};
    if (::poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      return;
    }
    if (fds[1].revents) return;
    if (!(fds[0].revents & (POLLIN | POLLHUP))) {
      if (fds[0].revents) return;  // error on the input: nothing more will come
      continue;
    }
    ssize_t n = ::read(input_fd_, buf, sizeof buf);
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (n <= 0) {
      // A pty with no slave open reads EIO; wait for one rather than spin.
      if (input_fd_ == pty_master_.get() && n < 0 && errno == EIO) {
        pollfd s{stop_.fd(), POLLIN, 0};
        if (::poll(&s, 1, 100) > 0) return;
        continue;
      }
      return;  // EOF on stdin
    }
    serial.enqueue_input(std::span<const uint8_t>(buf, static_cast<size_t>(n)));
  }
}

}  // namespace skiff
