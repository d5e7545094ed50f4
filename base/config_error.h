#pragma once
// A configuration no machine can have (a size out of range, a malformed
// device spec, a duplicate device id): one clear line for the operator.
#include <stdexcept>

namespace skiff {

class ConfigError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

}  // namespace skiff
