#pragma once
// What `skiffctl ping` reports of its round trips.
#include <vector>

namespace skiff::runtime::ctl {

struct LatencySummary {
  double median_us = 0;  // the middle sample; the mean of the two middle ones for an even count
  double p99_us = 0;     // nearest rank: the smallest sample with at least 99% of them at or below it
};

// std::invalid_argument for no samples.
LatencySummary summarize_latency(std::vector<double> samples_us);

}  // namespace skiff::runtime::ctl
