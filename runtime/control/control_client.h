#pragma once
// A synchronous client of one sandbox process's control API, for the CLI and
// skiffctl: connect to the socket, call, wait. Every failure (a sandbox that
// is gone, a call it refuses) is a ControlCallError with one line.
#include <kj/async-io.h>

#include <stdexcept>
#include <string>

#include "api/control.capnp.h"

namespace capnp {
class TwoPartyClient;
}

namespace skiff::runtime {

class ControlCallError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class ControlClient {
 public:
  // Throws ControlCallError ("sandbox process not reachable at PATH: ...").
  explicit ControlClient(const std::string& socket_path);
  ~ControlClient();
  ControlClient(const ControlClient&) = delete;
  ControlClient& operator=(const ControlClient&) = delete;

  kj::AsyncIoContext& io() { return io_; }
  kj::WaitScope& ws() { return io_.waitScope; }
  api::control::Sandbox::Client& sandbox() { return sandbox_; }
  api::control::Container::Client container(const std::string& id);

  // Waits for `p`; a kj exception becomes a ControlCallError with its line.
  template <typename T>
  T wait(kj::Promise<T>&& p) {
    try {
      return p.wait(ws());
    } catch (const kj::Exception& e) {
      throw ControlCallError(describe(e));
    }
  }
  static std::string describe(const kj::Exception& e);
  // Sandbox.shutdown; the connection closing before the answer arrives
  // counts as done (the process ends right after answering).
  void shutdown_sandbox();

 private:
  kj::AsyncIoContext io_;
  kj::Own<kj::AsyncIoStream> stream_;
  kj::Own<capnp::TwoPartyClient> rpc_;
  api::control::Sandbox::Client sandbox_;
};

}  // namespace skiff::runtime
