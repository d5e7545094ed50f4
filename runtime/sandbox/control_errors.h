#pragma once
// Errors the control API answers with: a Cap'n Proto exception whose
// description is one line a person reads as it is (the CLI prints it after
// "skiff: error: "), not a C++ type name or a source location.
#include <kj/exception.h>

#include <string>

namespace skiff::runtime {

inline kj::Exception control_error(const std::string& message) {
  return kj::Exception(kj::Exception::Type::FAILED, "skiff", 0, kj::str(message.c_str()));
}
[[noreturn]] inline void throw_control_error(const std::string& message) { throw control_error(message); }

// The one line of a kj exception as a client shows it: without the
// "remote exception: " prefix the RPC system adds, or KJ's std::exception wrapper.
inline std::string error_line(const kj::Exception& e) {
  std::string d = e.getDescription().cStr();
  for (const std::string prefix : {"remote exception: ", "std::exception: "})
    while (d.starts_with(prefix)) d = d.substr(prefix.size());
  return d;
}

}  // namespace skiff::runtime
