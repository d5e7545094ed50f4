#include "runtime/shim/ttrpc/service_set.h"

#include <stdexcept>

namespace skiff::ttrpc {

std::optional<std::string_view> CallContext::get(std::string_view key) const {
  for (const auto& [k, v] : metadata)
    if (k == key) return v;
  return std::nullopt;
}

void ServiceSet::add(std::string service, std::string method, Handler handler) {
  if (service.empty() || method.empty()) throw std::invalid_argument("a ttrpc method needs a service and a method name");
  if (!handler) throw std::invalid_argument("ttrpc method " + service + "/" + method + " has no handler");
  auto& methods = services_[service];
  if (!methods.emplace(method, std::move(handler)).second)
    throw std::invalid_argument("ttrpc method " + service + "/" + method + " added twice");
}

bool ServiceSet::has(std::string_view service, std::string_view method) const {
  const auto s = services_.find(service);
  return s != services_.end() && s->second.find(method) != s->second.end();
}

kj::Promise<Reply> ServiceSet::call(const CallContext& ctx, Payload payload) const {
  const auto s = services_.find(ctx.service);
  if (s == services_.end()) return Reply{Status{Code::Unimplemented, "service " + ctx.service}, {}};
  const auto m = s->second.find(ctx.method);
  if (m == s->second.end()) return Reply{Status{Code::Unimplemented, "method " + ctx.method}, {}};
  kj::Promise<Payload> answer = nullptr;
  // The synchronous part outside KJ: an exception thrown here keeps its C++
  // type for status_of (KJ would flatten it to a plain kj::Exception).
  try {
    answer = m->second(ctx, kj::mv(payload));
  } catch (...) {
    return Reply{status_of(std::current_exception()), {}};
  }
  return answer.then([](Payload out) { return Reply{Status{}, kj::mv(out)}; },
                     [](kj::Exception&& e) { return Reply{status_of(e), {}}; });
}

namespace detail {

void throw_unparsable(const CallContext& ctx, std::string_view type) {
  throw Error(Code::Internal, "ttrpc: error unmarshalling payload: " + ctx.service + "/" + ctx.method +
                                  " request is not a valid " + std::string(type));
}

}  // namespace detail
}  // namespace skiff::ttrpc
