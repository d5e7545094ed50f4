#include "runtime/control/control_client.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <capnp/rpc-twoparty.h>

#include <cstring>

#include "runtime/sandbox/control_errors.h"

namespace skiff::runtime {
namespace {

int connect_unix(const std::string& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof addr.sun_path) throw ControlCallError("control socket path too long: " + path);
  std::memcpy(addr.sun_path, path.c_str(), path.size());
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw ControlCallError(std::string("socket: ") + std::strerror(errno));
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    const int err = errno;
    ::close(fd);
    throw ControlCallError("the sandbox process is not reachable at " + path + ": " + std::strerror(err));
  }
  return fd;
}

}  // namespace

ControlClient::ControlClient(const std::string& socket_path)
    : io_(kj::setupAsyncIo()),
      stream_(io_.lowLevelProvider->wrapSocketFd(connect_unix(socket_path), kj::LowLevelAsyncIoProvider::TAKE_OWNERSHIP)),
      rpc_(kj::heap<capnp::TwoPartyClient>(*stream_)),
      sandbox_(rpc_->bootstrap().castAs<api::control::Sandbox>()) {}

ControlClient::~ControlClient() = default;

api::control::Container::Client ControlClient::container(const std::string& id) {
  auto req = sandbox_.containerRequest();
  req.setId(id);
  return req.send().getContainer();
}

void ControlClient::shutdown_sandbox() {
  try {
    sandbox_.shutdownRequest().send().wait(ws());
  } catch (const kj::Exception& e) {
    if (e.getType() != kj::Exception::Type::DISCONNECTED) throw ControlCallError(describe(e));
  }
}

std::string ControlClient::describe(const kj::Exception& e) {
  if (e.getType() == kj::Exception::Type::DISCONNECTED) return "the sandbox process went away: " + error_line(e);
  return error_line(e);
}

}  // namespace skiff::runtime
