#include "vmm/boot/aml.h"

#include <algorithm>
#include <stdexcept>
#include <utility>

namespace skiff::boot::aml {
namespace {

constexpr uint8_t kZeroOp = 0x00, kOneOp = 0x01, kOnesOp = 0xff;
constexpr uint8_t kBytePrefix = 0x0a, kWordPrefix = 0x0b, kDWordPrefix = 0x0c, kQWordPrefix = 0x0e;
constexpr uint8_t kStringPrefix = 0x0d, kNameOp = 0x08, kScopeOp = 0x10, kBufferOp = 0x11, kPackageOp = 0x12;
constexpr uint8_t kExtOpPrefix = 0x5b, kDeviceOp = 0x82, kRootChar = 0x5c;

void append(Bytes& out, const Bytes& more) { out.insert(out.end(), more.begin(), more.end()); }

Bytes join(const std::vector<Bytes>& parts) {
  Bytes out;
  for (const auto& p : parts) append(out, p);
  return out;
}

void little_endian(Bytes& out, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) out.push_back(static_cast<uint8_t>(v >> (8 * i)));
}

// Op, PkgLength, then the content.
Bytes with_length(Bytes op, const Bytes& content) {
  append(op, pkg_length(content.size()));
  append(op, content);
  return op;
}

}  // namespace

Bytes pkg_length(size_t content) {
  // The encoded length includes the PkgLength bytes themselves.
  if (content + 1 < 0x40) return {static_cast<uint8_t>(content + 1)};
  for (int extra = 1; extra <= 3; ++extra) {
    size_t total = content + 1 + extra;
    if (total < (size_t{1} << (4 + 8 * extra))) {
      Bytes out{static_cast<uint8_t>((extra << 6) | (total & 0xf))};
      for (int i = 0; i < extra; ++i) out.push_back(static_cast<uint8_t>(total >> (4 + 8 * i)));
      return out;
    }
  }
  throw std::length_error("AML package longer than 256 MiB");
}

Bytes name_string(const std::string& name) {
  Bytes out;
  std::string seg = name;
  if (!seg.empty() && seg[0] == '\\') {
    out.push_back(kRootChar);
    seg = seg.substr(1);
  }
  if (seg.size() != 4) throw std::invalid_argument("AML name segment must be 4 characters: " + name);
  out.insert(out.end(), seg.begin(), seg.end());
  return out;
}

Bytes integer(uint64_t v) {
  if (v == 0) return {kZeroOp};
  if (v == 1) return {kOneOp};
  if (v == UINT64_MAX) return {kOnesOp};
  const auto [prefix, width] = v <= 0xff         ? std::pair{kBytePrefix, 1}
                               : v <= 0xffff       ? std::pair{kWordPrefix, 2}
                               : v <= 0xffffffff   ? std::pair{kDWordPrefix, 4}
                                                   : std::pair{kQWordPrefix, 8};
  Bytes out{prefix};
  little_endian(out, v, width);
  return out;
}

Bytes string(const std::string& s) {
  Bytes out(s.size() + 2, 0);  // prefix, characters, NUL
  out[0] = kStringPrefix;
  std::copy(s.begin(), s.end(), out.begin() + 1);
  return out;
}

Bytes package(const std::vector<Bytes>& elements) {
  if (elements.size() > 255) throw std::length_error("AML package of more than 255 elements");
  Bytes content{static_cast<uint8_t>(elements.size())};
  append(content, join(elements));
  return with_length({kPackageOp}, content);
}

Bytes buffer(const Bytes& data) {
  Bytes content = integer(data.size());
  append(content, data);
  return with_length({kBufferOp}, content);
}

Bytes name(const std::string& n, const Bytes& object) {
  Bytes out{kNameOp};
  append(out, name_string(n));
  append(out, object);
  return out;
}

Bytes device(const std::string& n, const std::vector<Bytes>& body) {
  Bytes content = name_string(n);
  append(content, join(body));
  return with_length({kExtOpPrefix, kDeviceOp}, content);
}

Bytes scope(const std::string& n, const std::vector<Bytes>& body) {
  Bytes content = name_string(n);
  append(content, join(body));
  return with_length({kScopeOp}, content);
}

Bytes io_port(uint16_t base, uint8_t length) {
  // Small resource "I/O Port Descriptor": 16-bit decode, min = max = base.
  Bytes out{0x47, 0x01};
  little_endian(out, base, 2);
  little_endian(out, base, 2);
  out.push_back(1);  // alignment
  out.push_back(length);
  return out;
}

Bytes resource_template(const std::vector<Bytes>& items) {
  Bytes data = join(items);
  data.push_back(0x79);  // End Tag
  data.push_back(0x00);  // checksum 0: "treat as correct"
  return buffer(data);
}

}  // namespace skiff::boot::aml
