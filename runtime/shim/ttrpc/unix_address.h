#pragma once
// The socket addresses containerd gives and takes for a shim, and the
// sockets they name, as containerd 1.6's runtime/v2/shim/util_unix.go reads
// them:
//   "unix:///run/containerd/s/<sha256>"   a socket file (containerd >= 1.5)
//   anything else                         an abstract socket of that name
//                                         (the shims of containerd <= 1.4
//                                         printed "/containerd-shim/<ns>/<id>/shim.sock")
// The abstract name is the whole string, as containerd prefixes a NUL to it.
// containerd's Go (Debian's 1.19, and every Go before 1.20) then counts a
// trailing NUL in the address length too, so the kernel's name of that
// socket is NUL, the string, NUL: to_sockaddr() gives exactly that, or no
// shim of that era and no such containerd could meet ours.
#include <sys/socket.h>
#include <sys/un.h>

#include <string>
#include <string_view>

#include "base/unique_fd.h"

namespace skiff::ttrpc {

struct UnixAddress {
  enum class Kind { Path, Abstract };
  Kind kind = Kind::Path;
  std::string name;  // the file's absolute path, or the abstract name (without the NUL)

  // Throws std::invalid_argument with the reason: empty, a relative or empty
  // path after unix://, a NUL inside a path, too long for sockaddr_un.
  static UnixAddress parse(std::string_view address);
  static UnixAddress path(std::string p) { return UnixAddress{Kind::Path, std::move(p)}; }
  static UnixAddress abstract(std::string n) { return UnixAddress{Kind::Abstract, std::move(n)}; }

  // containerd's form: parse(a.to_string()) == a.
  std::string to_string() const;
  // For a log line or an error: to_string() with control bytes escaped,
  // an abstract name shown as "@name".
  std::string describe() const;
  // Fills `out`; the length to pass to bind/connect (for an abstract name,
  // its NUL, the name and the trailing NUL Go counts, above).
  socklen_t to_sockaddr(sockaddr_un& out) const;

  bool operator==(const UnixAddress&) const = default;
};

// A listening stream socket at `address` (non-blocking, close-on-exec): a
// socket file is created mode 0600 from the start (as containerd's shims
// make theirs), in a parent created 0700 when missing. An address in use
// (a live shim, or a stale file left by a dead one) is a std::system_error
// with EADDRINUSE: the caller decides whether to remove_socket and retry.
UniqueFd listen_unix(const UnixAddress& address, int backlog = 128);
// Unlinks a socket file (absent is fine); nothing for an abstract socket.
void remove_socket(const UnixAddress& address);

}  // namespace skiff::ttrpc
