#pragma once
// "0x1f" for addresses and sizes in error messages.
#include <cstdint>
#include <cstdio>
#include <string>

namespace skiff {

inline std::string hex(uint64_t v) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "%#llx", static_cast<unsigned long long>(v));
  return buf;
}

}  // namespace skiff
