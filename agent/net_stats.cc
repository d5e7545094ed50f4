#include "agent/net_stats.h"

#include <fstream>
#include <sstream>
#include <string>

namespace skiff::agent {

NetCounters parse_net_dev(std::string_view text) {
  NetCounters total;
  std::istringstream lines{std::string(text)};
  std::string line;
  while (std::getline(lines, line)) {
    // "  eth0: rx_bytes rx_packets errs drop fifo frame compressed multicast tx_bytes tx_packets ..."
    const size_t colon = line.find(':');
    if (colon == std::string::npos) continue;  // the two header lines
    std::istringstream name_part(line.substr(0, colon));
    std::string name;
    name_part >> name;
    if (name.empty() || name == "lo") continue;
    std::istringstream fields(line.substr(colon + 1));
    uint64_t v[10];
    bool complete = true;
    for (uint64_t& x : v)
      if (!(fields >> x)) complete = false;
    if (!complete) continue;
    total.rx_bytes += v[0];
    total.rx_packets += v[1];
    total.tx_bytes += v[8];
    total.tx_packets += v[9];
  }
  return total;
}

NetCounters net_counters(pid_t pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/net/dev");
  std::stringstream ss;
  ss << f.rdbuf();
  return parse_net_dev(ss.str());
}

}  // namespace skiff::agent
