// Network counters from /proc/<pid>/net/dev: every interface but loopback.
#include "agent/net_stats.h"

#include <unistd.h>

#include <gtest/gtest.h>

namespace skiff::agent {
namespace {

TEST(NetStats, SumsEveryInterfaceButLoopback) {
  const char* text =
      "Inter-|   Receive                                                |  Transmit\n"
      " face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n"
      "    lo:   12345     100    0    0    0     0          0         0    12345     100    0    0    0     0       0          0\n"
      "  eth0:    1000      10    0    0    0     0          0         0     2000      20    0    0    0     0       0          0\n"
      "  eth1:     500       5    1    0    0     0          0         0      700       7    0    0    0     0       0          0\n"
      "  bad0: 1 2 3\n";
  const NetCounters n = parse_net_dev(text);
  EXPECT_EQ(n.rx_bytes, 1500u);
  EXPECT_EQ(n.rx_packets, 15u);
  EXPECT_EQ(n.tx_bytes, 2700u);
  EXPECT_EQ(n.tx_packets, 27u);
}

TEST(NetStats, AProcessThatIsGoneHasNoCounters) {
  const NetCounters n = net_counters(0x7ffffff0);
  EXPECT_EQ(n.rx_bytes + n.tx_bytes + n.rx_packets + n.tx_packets, 0u);
}

}  // namespace
}  // namespace skiff::agent
