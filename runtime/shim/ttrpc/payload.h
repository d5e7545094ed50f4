#pragma once
// A call's request or response bytes: a serialized protobuf message.
//
// kj::Array rather than std::string: GCC 12 at -O2 warns (a false
// -Wmaybe-uninitialized, an error under -Werror) wherever a
// kj::Promise<std::string> is made from a value or rejected, which would be
// in every handler; KJ's own array type has no such trouble.
#include <google/protobuf/message_lite.h>
#include <kj/array.h>

#include <string>
#include <string_view>

namespace skiff::ttrpc {

using Payload = kj::Array<kj::byte>;

inline Payload to_payload(std::string_view bytes) {
  return kj::heapArray<kj::byte>(reinterpret_cast<const kj::byte*>(bytes.data()), bytes.size());
}
inline std::string_view as_chars(kj::ArrayPtr<const kj::byte> p) {
  return std::string_view(reinterpret_cast<const char*>(p.begin()), p.size());
}

// Throws ttrpc::Error(Internal) naming `what` when it does not serialize.
Payload serialize(const google::protobuf::MessageLite& m);
// False when `p` is not a valid message of m's type.
inline bool parse(kj::ArrayPtr<const kj::byte> p, google::protobuf::MessageLite& m) {
  return m.ParseFromArray(p.begin(), static_cast<int>(p.size()));
}

}  // namespace skiff::ttrpc
