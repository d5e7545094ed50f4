#pragma once
// Errors from system calls carry what was being done:
//   throw_errno("open /dev/kvm")  ->  "open /dev/kvm: Permission denied"
#include <cerrno>
#include <string>
#include <system_error>

namespace skiff {

[[noreturn]] inline void throw_errno(const std::string& what, int err = errno) {
  throw std::system_error(err, std::generic_category(), what);
}

// Retries a system call interrupted by a signal.
template <typename F>
auto retry_eintr(F&& f) {
  for (;;) {
    auto r = f();
    if (r != -1 || errno != EINTR) return r;
  }
}

}  // namespace skiff
