#pragma once
// A ttrpc server on the calling thread's KJ event loop (the control thread's
// in the sandbox process: one loop per thread, and the shim's handlers call
// the Sandbox, which lives on that loop, directly).
//
// It answers as Go's ttrpc server (github.com/containerd/ttrpc, server.go):
// each connection reads requests while earlier ones are still running and
// answers each as it completes, in any order; an unknown service or method
// answers Unimplemented; a request that does not parse, or whose stream id
// is even, InvalidArgument; a frame over 4 MiB is skipped and answered
// ResourceExhausted; a request's timeout_nano bounds its handler
// (DeadlineExceeded, the handler's promise dropped). Frames of other types
// are ignored, as Go's are. Bytes that are not ttrpc frames at all, or a
// stream that ends inside one, close that connection (logged).
//
// Every accepted connection's peer must be root or our own user
// (runtime/control/peer_credentials.h), as containerd's is.
#include <kj/async-io.h>

#include <cstddef>

#include "base/unique_fd.h"
#include "runtime/shim/ttrpc/frame.h"
#include "runtime/shim/ttrpc/service_set.h"
#include "runtime/shim/ttrpc/unix_address.h"

namespace skiff::ttrpc {

struct ServerOptions {
  // Requests running at once on one connection; at this many the server
  // stops reading that connection until one answers (Go's has no bound).
  size_t max_in_flight = 1024;
  uint32_t max_message = kMaxMessageSize;
};

class Server {
 public:
  Server(kj::LowLevelAsyncIoProvider& io, kj::Timer& timer, ServiceSet services, ServerOptions options = {});
  // Cancels every running handler and closes every connection; removes the
  // socket files listen() created.
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Listens at `address` (listen_unix: 0600; EADDRINUSE when taken).
  void listen(const UnixAddress& address);
  // Accepts on a listening socket made elsewhere (e.g. the one `shim start`
  // hands its child).
  void listen(UniqueFd listening_socket);
  // Serves one connected stream (its peer is the caller's business).
  void serve(kj::Own<kj::AsyncIoStream> connection);

  // Stops accepting, lets every connection finish the calls it has
  // started (and any more it is sent meanwhile) and closes each once it is
  // idle, every answer written; resolves when none is left. As Go's
  // Server.Shutdown. A Shutdown handler answers first and then calls this.
  kj::Promise<void> shutdown();

  size_t connections() const;
  const ServiceSet& services() const;

 private:
  class Impl;
  kj::Own<Impl> impl_;
};

}  // namespace skiff::ttrpc
