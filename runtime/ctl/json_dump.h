#pragma once
// Any Cap'n Proto value as JSON, through the dynamic API, so skiffctl can
// print whatever a sandbox answers without code per type (`skiffctl raw`).
//
// capnp's own JsonCodec (libcapnp-json, which Debian ships) is not used: it
// writes 64-bit integers as strings, leaves out null pointer fields and needs
// handlers for Data and capabilities; scripts reading skiffctl's output want
// every field, with numbers as numbers.
#include <capnp/dynamic.h>

#include <nlohmann/json.hpp>
#include <string>

namespace skiff::runtime::ctl {

// Structs (and groups): objects with every field by name, in ordinal order;
// of a union only its active member. A null pointer field reads as its
// default (Text "", a list [], a struct with its defaults), as the generated
// getters read it. Lists: arrays. Enums: the enumerant's name (a number the
// schema does not know: that number). Data: base64 (RFC 4648, padded). Void:
// null. 64-bit integers exact. NaN and the infinities: "NaN", "Infinity",
// "-Infinity" (JSON has no such numbers). Capabilities: "<capability>"
// (a null capability field: null).
// AnyPointer: null, or "<pointer>" if set.
nlohmann::ordered_json capnp_to_json(capnp::DynamicStruct::Reader value);
nlohmann::ordered_json capnp_value_to_json(const capnp::DynamicValue::Reader& value);

// JSON text for a person (`pretty`: indented by 2) or one line for scripts.
// Bytes that are not UTF-8 (Text is meant to be, but comes from the sandbox
// and the guest) become U+FFFD instead of failing the whole dump.
std::string dump_json(const nlohmann::ordered_json& value, bool pretty);

}  // namespace skiff::runtime::ctl
