#include "runtime/control/peer_credentials.h"

#include <sys/socket.h>
#include <unistd.h>

#include <string>

#include "base/log.h"

namespace skiff::runtime {

bool peer_allowed(kj::AsyncIoStream& conn, std::string_view component) {
  ucred cred{};
  kj::uint len = sizeof cred;
  try {
    conn.getsockopt(SOL_SOCKET, SO_PEERCRED, &cred, &len);
  } catch (const kj::Exception& e) {
    log::warn(component, "refused a connection whose peer is unknown",
              {{"error", std::string(e.getDescription().cStr())}});
    return false;
  }
  if (cred.uid == 0 || cred.uid == ::geteuid()) return true;
  log::warn(component, "refused a connection from another user", {{"uid", static_cast<int64_t>(cred.uid)}});
  return false;
}

}  // namespace skiff::runtime
