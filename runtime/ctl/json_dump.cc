#include "runtime/ctl/json_dump.h"

#include <kj/encoding.h>

#include <cmath>

namespace skiff::runtime::ctl {
namespace {

nlohmann::ordered_json float_to_json(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "Infinity" : "-Infinity";
  return v;
}

}  // namespace

nlohmann::ordered_json capnp_to_json(capnp::DynamicStruct::Reader value) {
  nlohmann::ordered_json out = nlohmann::ordered_json::object();
  const auto active = value.which();
  for (auto field : value.getSchema().getFields()) {
    if (field.getProto().getDiscriminantValue() != capnp::schema::Field::NO_DISCRIMINANT) {
      KJ_IF_MAYBE (a, active) {
        if (*a != field) continue;
      } else {
        continue;  // a discriminant this schema does not know (a newer writer)
      }
    }
    const std::string name = field.getProto().getName().cStr();
    // A null capability is no capability (calls on it fail), unlike a null
    // Text or list, which reads as an empty one.
    if (field.getType().isInterface() && !value.has(field)) out[name] = nullptr;
    else out[name] = capnp_value_to_json(value.get(field));
  }
  return out;
}

nlohmann::ordered_json capnp_value_to_json(const capnp::DynamicValue::Reader& value) {
  switch (value.getType()) {
    case capnp::DynamicValue::VOID:
      return nullptr;
    case capnp::DynamicValue::BOOL:
      return value.as<bool>();
    case capnp::DynamicValue::INT:
      return value.as<int64_t>();
    case capnp::DynamicValue::UINT:
      return value.as<uint64_t>();
    case capnp::DynamicValue::FLOAT:
      return float_to_json(value.as<double>());
    case capnp::DynamicValue::TEXT: {
      auto t = value.as<capnp::Text>();
      return std::string(t.begin(), t.size());
    }
    case capnp::DynamicValue::DATA:
      return std::string(kj::encodeBase64(value.as<capnp::Data>()).cStr());
    case capnp::DynamicValue::LIST: {
      nlohmann::ordered_json out = nlohmann::ordered_json::array();
      for (auto element : value.as<capnp::DynamicList>()) out.push_back(capnp_value_to_json(element));
      return out;
    }
    case capnp::DynamicValue::ENUM: {
      auto e = value.as<capnp::DynamicEnum>();
      KJ_IF_MAYBE (enumerant, e.getEnumerant()) {
        return std::string(enumerant->getProto().getName().cStr());
      }
      return e.getRaw();
    }
    case capnp::DynamicValue::STRUCT:
      return capnp_to_json(value.as<capnp::DynamicStruct>());
    case capnp::DynamicValue::CAPABILITY:
      return "<capability>";
    case capnp::DynamicValue::ANY_POINTER:
      if (value.as<capnp::AnyPointer>().isNull()) return nullptr;
      return "<pointer>";
    case capnp::DynamicValue::UNKNOWN:
      break;
  }
  return nullptr;  // a value of a kind this capnp version does not know
}

std::string dump_json(const nlohmann::ordered_json& value, bool pretty) {
  return value.dump(pretty ? 2 : -1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
}

}  // namespace skiff::runtime::ctl
