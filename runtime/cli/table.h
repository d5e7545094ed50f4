#pragma once
// A table for people: columns padded to their widest cell, three spaces
// apart (runc's list layout). Shared by skiff and skiffctl.
#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

namespace skiff::cli {

inline void print_table(const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> width;
  for (const auto& r : rows)
    for (size_t i = 0; i < r.size(); ++i) {
      if (width.size() <= i) width.push_back(0);
      width[i] = std::max(width[i], r[i].size());
    }
  for (const auto& r : rows) {
    std::string line;
    for (size_t i = 0; i < r.size(); ++i) line += i + 1 < r.size() ? r[i] + std::string(width[i] - r[i].size() + 3, ' ') : r[i];
    std::printf("%s\n", line.c_str());
  }
}

}  // namespace skiff::cli
