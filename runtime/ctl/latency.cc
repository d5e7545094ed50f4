#include "runtime/ctl/latency.h"

#include <algorithm>
#include <stdexcept>

namespace skiff::runtime::ctl {

LatencySummary summarize_latency(std::vector<double> s) {
  if (s.empty()) throw std::invalid_argument("no round trips to summarize");
  std::sort(s.begin(), s.end());
  const size_t n = s.size();
  LatencySummary out;
  out.median_us = n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
  // ceil(0.99 n) in integers, so no rounding error moves the rank.
  const size_t rank = (99 * n + 99) / 100;
  out.p99_us = s[std::max<size_t>(rank, 1) - 1];
  return out;
}

}  // namespace skiff::runtime::ctl
