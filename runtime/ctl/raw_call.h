#pragma once
// `skiffctl raw`: any method of the control API that takes no parameters,
// found by name in the schema and called through the dynamic API, so a
// method added to api/control.capnp is callable without a change here.
#include <capnp/schema.h>

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "runtime/control/control_client.h"

namespace skiff::runtime::ctl {

// The methods of `iface` whose parameter struct has no fields, in ordinal
// order (Sandbox: info, listContainers, pause, resume, shutdown, ping).
std::vector<std::string> parameterless_methods(capnp::InterfaceSchema iface);

// `name` among them. ConfigError otherwise, e.g.
// `METHOD "foo": not a parameterless method of Sandbox (one of info, listContainers, ...)`.
capnp::InterfaceSchema::Method parameterless_method(capnp::InterfaceSchema iface, const std::string& name);

// Calls `method` on `target` (a capability of the method's interface) and
// returns its results struct as capnp_to_json has it. ControlCallError if
// the call fails.
nlohmann::ordered_json call_parameterless(ControlClient& client, capnp::Capability::Client target,
                                  capnp::InterfaceSchema::Method method);

}  // namespace skiff::runtime::ctl
