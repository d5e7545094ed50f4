// skiffctl: the control API (api/control.capnp) for people and scripts.
#include <csignal>

#include "runtime/ctl/ctl_commands.h"

int main(int argc, char** argv) {
  // `skiffctl events | head` must end quietly, with the write failing instead.
  std::signal(SIGPIPE, SIG_IGN);
  return skiff::runtime::ctl::run_skiffctl(argc, argv);
}
