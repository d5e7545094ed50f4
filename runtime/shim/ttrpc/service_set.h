#pragma once
// The methods a ttrpc server answers, by full service name and method name
// ("containerd.task.v2.Task", "Create"), each a handler from the request's
// serialized protobuf to the response's, on the server's KJ loop.
//
//   ServiceSet s;
//   s.add<task::CreateTaskRequest, task::CreateTaskResponse>(
//       "containerd.task.v2.Task", "Create",
//       [&](const CallContext& ctx, task::CreateTaskRequest req) -> kj::Promise<task::CreateTaskResponse> {...});
//
// A handler fails by throwing (status.h: ttrpc::Error keeps its code, other
// exceptions are mapped). It may be cancelled: its promise is dropped when
// the call's deadline passes or the connection goes away.
#include <google/protobuf/message_lite.h>
#include <kj/async.h>

#include <chrono>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "runtime/shim/ttrpc/payload.h"
#include "runtime/shim/ttrpc/status.h"

namespace skiff::ttrpc {

// A request's metadata, in the order sent (a key may repeat).
using Metadata = std::vector<std::pair<std::string, std::string>>;

// containerd puts the namespace of every call in this metadata key.
inline constexpr std::string_view kNamespaceKey = "containerd-namespace-ttrpc";

struct CallContext {
  std::string service;
  std::string method;
  Metadata metadata;
  // The caller's deadline (timeout_nano), zero when it set none.
  std::chrono::nanoseconds timeout{0};
  uint32_t stream_id = 0;

  // The first value of `key`, if the caller sent one.
  std::optional<std::string_view> get(std::string_view key) const;
};

// The handler's answer: a serialized response, or a failure status.
struct Reply {
  Status status;
  Payload payload;  // only when status is OK
};

class ServiceSet {
 public:
  // `ctx` stays valid until the returned promise completes.
  using Handler = std::function<kj::Promise<Payload>(const CallContext& ctx, Payload request)>;

  // Throws std::invalid_argument for an empty name or a method added twice.
  void add(std::string service, std::string method, Handler handler);

  // A handler of typed messages: the payload is parsed into Req (a payload
  // that does not parse answers Internal, as Go's ttrpc does), and the
  // response serialized. `fn(const CallContext&, Req)` returns Resp or
  // kj::Promise<Resp>.
  template <typename Req, typename Resp, typename F>
  void add(std::string service, std::string method, F fn);

  bool has(std::string_view service, std::string_view method) const;

  // Runs the method `ctx` names: Unimplemented "service X" or "method Y"
  // where there is none (Go's ttrpc's words). Never rejects: every failure
  // is in the Reply's status.
  kj::Promise<Reply> call(const CallContext& ctx, Payload request) const;

 private:
  std::map<std::string, std::map<std::string, Handler, std::less<>>, std::less<>> services_;
};

namespace detail {
[[noreturn]] void throw_unparsable(const CallContext& ctx, std::string_view type);
}  // namespace detail

template <typename Req, typename Resp, typename F>
void ServiceSet::add(std::string service, std::string method, F fn) {
  static_assert(std::is_base_of_v<google::protobuf::MessageLite, Req> &&
                std::is_base_of_v<google::protobuf::MessageLite, Resp>);
  add(std::move(service), std::move(method),
      [fn = std::move(fn)](const CallContext& ctx, Payload payload) -> kj::Promise<Payload> {
        Req req;
        if (!parse(payload, req)) detail::throw_unparsable(ctx, Req().GetTypeName());
        using Result = std::invoke_result_t<F&, const CallContext&, Req>;
        if constexpr (std::is_same_v<Result, kj::Promise<Resp>>) {
          return fn(ctx, std::move(req)).then([](Resp r) { return serialize(r); });
        } else {
          static_assert(std::is_same_v<Result, Resp>, "a handler returns Resp or kj::Promise<Resp>");
          return serialize(fn(ctx, std::move(req)));
        }
      });
}

}  // namespace skiff::ttrpc
