#pragma once
// The guest's serial console on the host: where its output goes (stdout, a
// file, a pseudo-terminal, nowhere) and, for stdio and pty, a thread that
// feeds host input to the UART.
#include <termios.h>

#include <memory>
#include <string>
#include <thread>

#include "devices/interrupts.h"
#include "devices/serial.h"
#include "base/unique_fd.h"
#include "vmm/vm_config.h"

namespace skiff {

class Console {
 public:
  // Throws std::system_error when the file or pty cannot be opened.
  explicit Console(const ConsoleConfig& config);
  ~Console();
  Console(const Console&) = delete;
  Console& operator=(const Console&) = delete;

  std::shared_ptr<devices::SerialOutput> output() const { return output_; }
  // Starts feeding host input to `serial` (stdio and pty modes).
  void attach_input(devices::Serial& serial);
  // The pty's path in pty mode, e.g. /dev/pts/3.
  const std::string& pty_path() const { return pty_path_; }

 private:
  void pump(devices::Serial& serial);

  std::shared_ptr<devices::SerialOutput> output_;
  int input_fd_ = -1;
  UniqueFd pty_master_;
  std::string pty_path_;
  devices::EventFd stop_;
  std::thread input_thread_;
  termios saved_termios_{};  // the user's terminal, restored on exit
  bool restore_termios_ = false;
};

}  // namespace skiff
