#pragma once
// A container process's terminal on the host: a pty whose master goes to the
// caller's console socket exactly as runc sends it (the terminal's name as
// the message, the fd as SCM_RIGHTS), whose slave the sandbox process copies
// to and from the guest's pty.
#include <kj/async.h>
#include <kj/timer.h>

#include <string>

#include "api/agent.capnp.h"
#include "base/unique_fd.h"

namespace skiff::runtime {

// Makes the pty, sends its master to `console_socket`, returns the slave in
// raw mode (the guest's pty does the line discipline). Throws
// std::system_error naming the socket.
UniqueFd hand_over_terminal(const std::string& console_socket);

// Copies the slave's window size to `process` each time the master's holder
// changes it (polled every 100 ms: no SIGWINCH reaches us for a pty that is
// not our controlling terminal). Ends when the process is gone.
kj::Promise<void> forward_window_size(kj::Timer& timer, int slave_fd, api::Process::Client process);

}  // namespace skiff::runtime
