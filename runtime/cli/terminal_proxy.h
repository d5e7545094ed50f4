#pragma once
// `skiff run` and `skiff exec -t` in the foreground with no --console-socket:
// the CLI is its own console socket receiver (runc's recvtty, in process),
// and copies between the person's terminal (raw while it runs) and the
// container's pty master; a resize of ours (SIGWINCH) is set on the master,
// where the sandbox process picks it up.
#include <termios.h>

#include <optional>
#include <string>
#include <thread>

#include "base/unique_fd.h"

namespace skiff::cli {

class ConsoleReceiver {
 public:
  // A listening socket in a fresh private directory under /tmp.
  ConsoleReceiver();
  ~ConsoleReceiver();
  ConsoleReceiver(const ConsoleReceiver&) = delete;
  ConsoleReceiver& operator=(const ConsoleReceiver&) = delete;
  const std::string& path() const { return path_; }
  // The master the sandbox process sent; throws std::runtime_error if none
  // came within `timeout_ms`.
  UniqueFd receive(int timeout_ms);

 private:
  std::string dir_, path_;
  UniqueFd listener_;
};

class TerminalProxy {
 public:
  explicit TerminalProxy(UniqueFd master);
  // Copies what is still in the master, puts the terminal back as it was.
  ~TerminalProxy();
  TerminalProxy(const TerminalProxy&) = delete;
  TerminalProxy& operator=(const TerminalProxy&) = delete;

 private:
  UniqueFd master_;
  UniqueFd stop_read_, stop_write_;  // ends the output copier
  std::optional<termios> saved_;
  std::thread output_, winch_;
};

}  // namespace skiff::cli
