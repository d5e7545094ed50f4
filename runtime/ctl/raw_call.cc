#include "runtime/ctl/raw_call.h"

#include <capnp/dynamic.h>

#include "base/config_error.h"
#include "runtime/ctl/json_dump.h"

namespace skiff::runtime::ctl {

std::vector<std::string> parameterless_methods(capnp::InterfaceSchema iface) {
  std::vector<std::string> names;
  for (auto m : iface.getMethods())
    if (m.getParamType().getFields().size() == 0) names.emplace_back(m.getProto().getName().cStr());
  return names;
}

capnp::InterfaceSchema::Method parameterless_method(capnp::InterfaceSchema iface, const std::string& name) {
  KJ_IF_MAYBE (m, iface.findMethodByName(name)) {
    if (m->getParamType().getFields().size() == 0) return *m;
  }
  std::string known;
  for (const auto& n : parameterless_methods(iface)) known += (known.empty() ? "" : ", ") + n;
  throw ConfigError("METHOD \"" + name + "\": not a parameterless method of " +
                    std::string(iface.getShortDisplayName().cStr()) + " (one of " + known + ")");
}

nlohmann::ordered_json call_parameterless(ControlClient& client, capnp::Capability::Client target,
                                  capnp::InterfaceSchema::Method method) {
  auto dynamic = target.castAs<capnp::DynamicCapability>(method.getContainingInterface());
  auto response = client.wait(kj::Promise<capnp::Response<capnp::DynamicStruct>>(dynamic.newRequest(method).send()));
  return capnp_to_json(capnp::DynamicStruct::Reader(response));
}

}  // namespace skiff::runtime::ctl
