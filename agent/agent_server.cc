#include "agent/agent_server.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <linux/vm_sockets.h>

#include <capnp/rpc-twoparty.h>
#include <kj/async-io.h>
#include <kj/async-unix.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

#include "agent/agent_log.h"

namespace skiff::agent {
namespace {

[[noreturn]] void fail(const std::string& what) { throw std::runtime_error(what + ": " + std::strerror(errno)); }

Fd listening(int domain, const sockaddr* addr, socklen_t len, const std::string& where) {
  Fd fd(::socket(domain, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!fd) fail("socket for " + where);
  if (::bind(fd.get(), addr, len) != 0) fail("bind " + where);
  if (::listen(fd.get(), 16) != 0) fail("listen on " + where);
  return fd;
}

class LogErrors final : public kj::TaskSet::ErrorHandler {
 public:
  void taskFailed(kj::Exception&& e) override { log_error("agent task failed", {{"error", e.getDescription().cStr()}}); }
};

// One serving: the listener, the connections, the grace timer, the end.
class Serving {
 public:
  Serving(kj::AsyncIoContext& io, ServeOptions options) : io_(io), grace_(options.reconnect_grace) {
    auto end = kj::newPromiseAndFulfiller<ServeEnd>();
    end_ = kj::mv(end.promise);
    end_fulfiller_ = kj::mv(end.fulfiller);
    options.agent.power_off = [this](bool reboot) {
      // Let the reply to powerOff reach the runtime before the agent goes.
      tasks_.add(io_.provider->getTimer().afterDelay(200 * kj::MILLISECONDS).then([this, reboot] {
        finish(reboot ? ServeEnd::Reboot : ServeEnd::PowerOff);
      }));
    };
    server_ = kj::heap<capnp::TwoPartyServer>(make_sandbox(io.unixEventPort, *io.lowLevelProvider, kj::mv(options.agent)));
  }

  ServeEnd run(Fd listener) {
    receiver_ = io_.lowLevelProvider->wrapListenSocketFd(
        listener.release(), kj::LowLevelAsyncIoProvider::TAKE_OWNERSHIP | kj::LowLevelAsyncIoProvider::ALREADY_CLOEXEC |
                                kj::LowLevelAsyncIoProvider::ALREADY_NONBLOCK);
    tasks_.add(accept_loop());
    return end_.wait(io_.waitScope);
  }

 private:
  kj::Promise<void> accept_loop() {
    return receiver_->accept().then([this](kj::Own<kj::AsyncIoStream> stream) {
      ++open_;
      log_info("runtime connected", {{"connections", std::to_string(open_)}});
      auto& s = *stream;
      tasks_.add(server_->accept(s)
                     .attach(kj::mv(stream))
                     .catch_([](kj::Exception&& e) {
                       log_error("runtime connection failed", {{"error", e.getDescription().cStr()}});
                     })
                     .then([this] { closed(); }));
      return accept_loop();
    });
  }

  void closed() {
    --open_;
    ++closes_;
    log_info("runtime disconnected", {{"connections", std::to_string(open_)}});
    if (open_ > 0) return;
    const uint64_t seen = closes_;
    tasks_.add(io_.provider->getTimer().afterDelay(grace_.count() * kj::MILLISECONDS).then([this, seen] {
      if (open_ == 0 && closes_ == seen) {
        log_info("no runtime connection within the grace period", {{"grace_ms", std::to_string(grace_.count())}});
        finish(ServeEnd::RuntimeGone);
      }
    }));
  }

  void finish(ServeEnd end) {
    if (end_fulfiller_->isWaiting()) end_fulfiller_->fulfill(kj::mv(end));
  }

  kj::AsyncIoContext& io_;
  std::chrono::milliseconds grace_;
  int open_ = 0;
  uint64_t closes_ = 0;
  kj::Promise<ServeEnd> end_ = nullptr;
  kj::Own<kj::PromiseFulfiller<ServeEnd>> end_fulfiller_;
  kj::Own<capnp::TwoPartyServer> server_;
  kj::Own<kj::ConnectionReceiver> receiver_;
  LogErrors errors_;
  kj::TaskSet tasks_{errors_};  // last: its tasks use everything above
};

}  // namespace

Fd listen_vsock(uint32_t port) {
  sockaddr_vm addr{};
  addr.svm_family = AF_VSOCK;
  addr.svm_cid = VMADDR_CID_ANY;
  addr.svm_port = port;
  return listening(AF_VSOCK, reinterpret_cast<const sockaddr*>(&addr), sizeof addr, "vsock port " + std::to_string(port));
}

Fd listen_unix(const std::string& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof addr.sun_path)
    throw std::runtime_error("unix socket path '" + path + "' is empty or longer than " +
                             std::to_string(sizeof addr.sun_path - 1) + " bytes");
  std::memcpy(addr.sun_path, path.data(), path.size());
  ::unlink(path.c_str());
  return listening(AF_UNIX, reinterpret_cast<const sockaddr*>(&addr), sizeof addr, path);
}

ServeEnd serve(Fd listener, ServeOptions options) {
  auto io = kj::setupAsyncIo();
  Serving serving(io, kj::mv(options));
  return serving.run(kj::mv(listener));
}

}  // namespace skiff::agent
