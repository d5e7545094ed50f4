#pragma once
// A ttrpc client on the calling thread's KJ event loop: for the tests, and
// for the shim's side of containerd (events forwarded to its ttrpc Events
// service). As Go's ttrpc client (client.go): stream ids odd and rising from
// 1, any number of calls in flight, answers matched by stream id in
// whatever order they come.
//
// A call rejects with a ttrpc::Error (status.h): the server's status when it
// is not OK; DeadlineExceeded when CallOptions::timeout passes first;
// Unavailable once the connection is gone; Canceled when the Client is
// destroyed with the call still waiting. Promises must not outlive the
// Client that made them (the KJ rule for every object a promise refers to).
#include <google/protobuf/message_lite.h>
#include <kj/async-io.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <type_traits>

#include "runtime/shim/ttrpc/frame.h"
#include "runtime/shim/ttrpc/payload.h"
#include "runtime/shim/ttrpc/service_set.h"
#include "runtime/shim/ttrpc/unix_address.h"

namespace skiff::ttrpc {

struct CallOptions {
  // Sent as timeout_nano (the server bounds the handler by it) and waited
  // for here; zero for none.
  std::chrono::nanoseconds timeout{0};
  Metadata metadata;
};

class Client {
 public:
  Client(kj::Own<kj::AsyncIoStream> stream, kj::Timer& timer, uint32_t max_message = kMaxMessageSize);
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // Rejects with Unavailable "connect to ADDRESS: ..." when nothing listens.
  static kj::Promise<kj::Own<Client>> connect(kj::LowLevelAsyncIoProvider& io, kj::Timer& timer,
                                              const UnixAddress& address);

  // The response's payload.
  kj::Promise<Payload> call(std::string_view service, std::string_view method, kj::ArrayPtr<const kj::byte> request,
                            CallOptions options = {});
  kj::Promise<Payload> call(std::string_view service, std::string_view method, std::string_view request,
                            CallOptions options = {}) {
    return call(service, method, kj::arrayPtr(reinterpret_cast<const kj::byte*>(request.data()), request.size()),
                std::move(options));
  }

  // Typed: serializes `request`, parses the response into Resp (a response
  // that does not parse rejects with Internal).
  template <typename Resp, typename Req>
  kj::Promise<Resp> call(std::string_view service, std::string_view method, const Req& request,
                         CallOptions options = {});

  // False once the connection has failed or closed; why in disconnect_reason().
  bool connected() const;
  std::string disconnect_reason() const;
  size_t pending() const;

 private:
  class Impl;
  kj::Own<Impl> impl_;
};

namespace detail {
[[noreturn]] void throw_bad_response(std::string_view service, std::string_view method, std::string_view type);
}  // namespace detail

template <typename Resp, typename Req>
kj::Promise<Resp> Client::call(std::string_view service, std::string_view method, const Req& request,
                               CallOptions options) {
  static_assert(std::is_base_of_v<google::protobuf::MessageLite, Req> &&
                std::is_base_of_v<google::protobuf::MessageLite, Resp>);
  return call(service, method, serialize(request).asPtr(), std::move(options))
      .then([service = std::string(service), method = std::string(method)](Payload payload) {
        Resp r;
        if (!parse(payload, r)) detail::throw_bad_response(service, method, r.GetTypeName());
        return r;
      });
}

}  // namespace skiff::ttrpc
