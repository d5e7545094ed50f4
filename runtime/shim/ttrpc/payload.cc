#include "runtime/shim/ttrpc/payload.h"

#include "runtime/shim/ttrpc/status.h"

namespace skiff::ttrpc {

Payload serialize(const google::protobuf::MessageLite& m) {
  const size_t size = m.ByteSizeLong();
  auto out = kj::heapArray<kj::byte>(size);
  if (size > static_cast<size_t>(INT32_MAX) || !m.SerializeToArray(out.begin(), static_cast<int>(size)))
    throw Error(Code::Internal, "ttrpc: error marshaling payload: " + m.GetTypeName() + " did not serialize");
  return out;
}

}  // namespace skiff::ttrpc
