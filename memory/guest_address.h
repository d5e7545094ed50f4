#pragma once
// A guest-physical address. A distinct type so it is never mixed up with a
// host pointer or a plain length.
#include <compare>
#include <cstdint>
#include <optional>

namespace skiff {

class GuestAddress {
 public:
  constexpr GuestAddress() = default;
  constexpr explicit GuestAddress(uint64_t value) : value_(value) {}
  constexpr uint64_t value() const { return value_; }

  // nullopt when the sum passes the top of the 64-bit address space.
  constexpr std::optional<GuestAddress> checked_add(uint64_t offset) const {
    if (offset > UINT64_MAX - value_) return std::nullopt;
    return GuestAddress(value_ + offset);
  }
  // Only for offsets the caller has bounded; wraps otherwise.
  constexpr GuestAddress unchecked_add(uint64_t offset) const { return GuestAddress(value_ + offset); }

  constexpr auto operator<=>(const GuestAddress&) const = default;

 private:
  uint64_t value_ = 0;
};

}  // namespace skiff
