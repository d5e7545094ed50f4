#pragma once
// Text from a user or a guest echoed in a one-line error: control bytes (a
// newline pasted into an argument, an escape sequence) shown as \xNN rather
// than printed, so the line stays one line and the terminal stays sane.
#include <cstddef>
#include <string>
#include <string_view>

namespace skiff {

namespace printable_detail {
inline void append_hex_escape(std::string& out, unsigned char c) {
  static constexpr char kHex[] = "0123456789abcdef";
  out += "\\x";
  out += kHex[c >> 4];
  out += kHex[c & 15];
}
inline bool is_control(unsigned char c) { return c < 0x20 || c == 0x7f; }
}  // namespace printable_detail

// `s` with its control bytes as \xNN.
inline std::string printable(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (unsigned char c : s) {
    if (printable_detail::is_control(c))
      printable_detail::append_hex_escape(out, c);
    else
      out += static_cast<char>(c);
  }
  return out;
}

// `s` in double quotes, its control bytes, quotes and backslashes as \xNN;
// longer than `max` bytes, cut (never inside a UTF-8 sequence) and marked "...".
inline std::string quoted(std::string_view s, size_t max = std::string_view::npos) {
  bool cut = false;
  if (s.size() > max) {
    size_t n = max;
    while (n > 0 && (static_cast<unsigned char>(s[n]) & 0xc0) == 0x80) --n;
    s = s.substr(0, n);
    cut = true;
  }
  std::string out = "\"";
  for (unsigned char c : s) {
    if (printable_detail::is_control(c) || c == '"' || c == '\\')
      printable_detail::append_hex_escape(out, c);
    else
      out += static_cast<char>(c);
  }
  return out + (cut ? "\"..." : "\"");
}

}  // namespace skiff
