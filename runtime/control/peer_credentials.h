#pragma once
// Who may drive this process over one of its Unix sockets: root, or the
// user it runs as. The control API and the shim's ttrpc server both check
// each connection with this on accept (SO_PEERCRED) and close any other
// unanswered; the socket files are 0600 as well, this also covers abstract
// sockets and an fd handed over by another process.
#include <kj/async-io.h>

#include <string_view>

namespace skiff::runtime {

// True when the peer's uid is 0 or our euid. A refusal (or a socket that
// can't say) is logged under `component` as a warning.
bool peer_allowed(kj::AsyncIoStream& conn, std::string_view component);

}  // namespace skiff::runtime
