#pragma once
// A container's network counters for Container.stats: the interfaces of its
// network namespace (the sandbox's, shared), as /proc/<pid>/net/dev shows
// them, loopback left out (traffic that never leaves the guest).
#include <sys/types.h>

#include <cstdint>
#include <string_view>

namespace skiff::agent {

struct NetCounters {
  uint64_t rx_bytes = 0, rx_packets = 0, tx_bytes = 0, tx_packets = 0;
};

// Sums the interfaces of a /proc/net/dev text but "lo"; lines it can't read are skipped.
NetCounters parse_net_dev(std::string_view text);
// For the network namespace of `pid`; zeros when it is gone.
NetCounters net_counters(pid_t pid);

}  // namespace skiff::agent
