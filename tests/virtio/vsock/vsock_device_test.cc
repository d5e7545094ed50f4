// virtio-vsock device model driven by a simulated guest driver (DriverQueue):
// the "guest" writes packets into the tx queue, provides rx buffers and parses
// what the device wrote; the host end is the socketpair fd.
#include "virtio/vsock/vsock_device.h"
#include "base/io_thread.h"

#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>
#include <sys/socket.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <map>
#include <string>
#include <thread>

#include "virtio/testing/driver_queue.h"
#include "virtio/testing/vsock_guest.h"

namespace skiff::virtio {
namespace {

using testing::DriverQueue;

constexpr uint32_t kOurBufAlloc = 256 * 1024;

using testing::CountingIrq;
using testing::Pkt;
using testing::bytes;
using testing::payload_of;
using testing::peek_eof;
using testing::read_now;
using testing::write_all;
using Guest = testing::VsockGuest;
constexpr uint64_t kCid = testing::kGuestCid;

// No I/O thread: queue_notify() and pump() do the work, deterministically.
VsockOptions manual() { return {}; }

TEST(VsockDevice, IdentityConfigAndFeatures) {
  VsockDevice dev(0x1122334455667788ull, manual());
  EXPECT_EQ(dev.device_type(), 19u);
  EXPECT_EQ(dev.queue_count(), 3u);
  EXPECT_TRUE(dev.device_features() & bit(kFeatureVersion1));
  EXPECT_TRUE(dev.device_features() & bit(kFeatureEventIdx));
  uint8_t cfg[12];
  dev.read_config(0, cfg);
  uint64_t cid;
  std::memcpy(&cid, cfg, 8);
  EXPECT_EQ(cid, 0x1122334455667788ull);
  EXPECT_EQ(cfg[8], 0);
  uint8_t hi[2];
  dev.read_config(6, hi);
  EXPECT_EQ(hi[0], 0x22);
  EXPECT_EQ(hi[1], 0x11);
  dev.read_config(UINT64_MAX, std::span(hi, 2));
  EXPECT_EQ(hi[0], 0);
  EXPECT_FALSE(dev.activate(0, {}, std::make_shared<CountingIrq>()));
}

// Kicks come straight from the queue's ioeventfd, active or not.
TEST(VsockDevice, KicksBeforeActivationDoNothing) {
  VsockDevice dev(3, manual());
  for (size_t q = 0; q < 4; ++q) dev.queue_notify(q);
  EXPECT_EQ(dev.connection_count(), 0u);
}

TEST(VsockDevice, HostConnectDataBothWaysAndShutdown) {
  Guest g;
  ASSERT_TRUE(g.activated);
  g.give_rx(8);
  auto conn = g.dev->connect(5000);
  ASSERT_TRUE(conn);
  EXPECT_EQ(conn->local_port(), VsockDevice::kFirstLocalPort);
  auto pkts = g.take();
  ASSERT_EQ(pkts.size(), 1u);
  EXPECT_EQ(pkts[0].h.op, kVsockOpRequest);
  EXPECT_EQ(pkts[0].h.type, kVsockTypeStream);
  EXPECT_EQ(pkts[0].h.dst_port, 5000u);
  EXPECT_EQ(pkts[0].h.buf_alloc, kOurBufAlloc);
  EXPECT_GT(g.irq->count.load(), 0);
  // No data before the guest answers.
  write_all(conn->fd(), bytes("early"));
  g.dev->pump();
  EXPECT_TRUE(g.take().empty());
  g.send(g.hdr(5000, conn->local_port(), kVsockOpResponse));
  write_all(conn->fd(), bytes(" hello"));
  g.dev->pump();
  EXPECT_EQ(payload_of(g.take()), "early hello");

  g.send(g.hdr(5000, conn->local_port(), kVsockOpRw), bytes("from guest"));
  EXPECT_EQ(read_now(conn->fd()), "from guest");
  // Our fwd_cnt shows up in the next header.
  g.send(g.hdr(5000, conn->local_port(), kVsockOpCreditRequest));
  pkts = g.take();
  ASSERT_EQ(pkts.size(), 1u);
  EXPECT_EQ(pkts[0].h.op, kVsockOpCreditUpdate);
  EXPECT_EQ(pkts[0].h.fwd_cnt, 10u);

  conn->close();
  g.dev->pump();
  pkts = g.take();
  ASSERT_EQ(pkts.size(), 1u);
  EXPECT_EQ(pkts[0].h.op, kVsockOpShutdown);
  EXPECT_EQ(pkts[0].h.flags, kVsockShutdownRcv | kVsockShutdownSend);
  EXPECT_EQ(g.dev->connection_count(), 1u);
  g.send(g.hdr(5000, conn->local_port(), kVsockOpRst));
  EXPECT_EQ(g.dev->connection_count(), 0u);
  EXPECT_TRUE(g.take().empty());  // no answer to an RST
}

TEST(VsockDevice, ConnectBeforeRxBuffersWaits) {
  Guest g;
  auto conn = g.dev->connect(42);
  EXPECT_TRUE(g.take().empty());
  g.give_rx(1);
  auto pkts = g.take();
  ASSERT_EQ(pkts.size(), 1u);
  EXPECT_EQ(pkts[0].h.op, kVsockOpRequest);
}

TEST(VsockDevice, GuestConnectToHostListener) {
  Guest g;
  std::vector<UniqueFd> accepted;
  g.dev->listen(80, [&](UniqueFd fd) { accepted.push_back(std::move(fd)); });
  g.give_rx(8);
  g.send(g.hdr(7000, 80, kVsockOpRequest));
  ASSERT_EQ(accepted.size(), 1u);
  auto pkts = g.take();
  ASSERT_EQ(pkts.size(), 1u);
  EXPECT_EQ(pkts[0].h.op, kVsockOpResponse);
  EXPECT_EQ(pkts[0].h.src_port, 80u);
  EXPECT_EQ(pkts[0].h.dst_port, 7000u);

  g.send(g.hdr(7000, 80, kVsockOpRw), bytes("GET /"));
  EXPECT_EQ(read_now(accepted[0].get()), "GET /");
  write_all(accepted[0].get(), bytes("200 OK"));
  g.dev->pump();
  EXPECT_EQ(payload_of(g.take()), "200 OK");

  // Guest shuts down both directions: host sees EOF, device answers RST.
  g.send(g.hdr(7000, 80, kVsockOpShutdown, kVsockShutdownRcv | kVsockShutdownSend));
  EXPECT_EQ(peek_eof(accepted[0].get()), 0);
  pkts = g.take();
  ASSERT_EQ(pkts.size(), 1u);
  EXPECT_EQ(pkts[0].h.op, kVsockOpRst);
  EXPECT_EQ(g.dev->connection_count(), 0u);
}

TEST(VsockDevice, GuestConnectWithoutListenerGetsRst) {
  Guest g;
  g.give_rx(2);
  g.send(g.hdr(7000, 81, kVsockOpRequest));
  auto pkts = g.take();
  ASSERT_EQ(pkts.size(), 1u);
  EXPECT_EQ(pkts[0].h.op, kVsockOpRst);
  EXPECT_EQ(pkts[0].h.src_port, 81u);
  EXPECT_EQ(pkts[0].h.dst_port, 7000u);
  EXPECT_EQ(g.dev->connection_count(), 0u);
}

TEST(VsockDevice, CreditStopsAndResumesSending) {
  Guest g;
  g.buf_alloc = 1000;
  g.give_rx(16);
  auto conn = g.establish(5000);
  std::vector<uint8_t> data(3000);
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<uint8_t>(i * 7);
  write_all(conn->fd(), data);
  g.dev->pump();
  std::string got = payload_of(g.take());
  EXPECT_EQ(got.size(), 1000u);
  g.dev->pump();
  EXPECT_TRUE(g.take().empty());  // out of credit
  g.fwd_cnt = 1000;
  g.send(g.hdr(5000, conn->local_port(), kVsockOpCreditUpdate));
  got += payload_of(g.take());
  EXPECT_EQ(got.size(), 2000u);
  g.fwd_cnt = 2000;
  g.send(g.hdr(5000, conn->local_port(), kVsockOpCreditUpdate));
  got += payload_of(g.take());
  EXPECT_EQ(got, std::string(data.begin(), data.end()));
}

TEST(VsockDevice, GuestIgnoringCreditGetsRst) {
  Guest g;
  g.give_rx(32);
  auto a = g.establish(5000);
  auto b = g.establish(5001);
  // The host never reads: within our advertised 256 KiB, nothing happens.
  const std::vector<uint8_t> chunk(64 * 1024, 0x5a);
  for (int i = 0; i < 4; ++i) g.send(g.hdr(5000, a->local_port(), kVsockOpRw), chunk);
  for (const auto& p : g.take()) EXPECT_NE(p.h.op, kVsockOpRst);
  EXPECT_EQ(g.dev->connection_count(), 2u);
  // Beyond it (once the socket buffer is full too): RST, for that connection only.
  bool reset = false;
  for (int i = 0; i < 32 && !reset; ++i) {
    g.send(g.hdr(5000, a->local_port(), kVsockOpRw), chunk);
    for (const auto& p : g.take()) reset = reset || (p.h.op == kVsockOpRst && p.h.dst_port == 5000);
  }
  EXPECT_TRUE(reset);
  EXPECT_EQ(g.dev->connection_count(), 1u);
  read_now(a->fd());
  EXPECT_EQ(peek_eof(a->fd()), 0);
  g.send(g.hdr(5001, b->local_port(), kVsockOpRw), bytes("still here"));
  EXPECT_EQ(read_now(b->fd()), "still here");
}

TEST(VsockDevice, RstMidStreamClosesHostFd) {
  Guest g;
  g.give_rx(8);
  auto conn = g.establish(5000);
  g.send(g.hdr(5000, conn->local_port(), kVsockOpRw), bytes("partial"));
  write_all(conn->fd(), bytes("pending for the guest"));
  g.send(g.hdr(5000, conn->local_port(), kVsockOpRst));
  EXPECT_EQ(g.dev->connection_count(), 0u);
  EXPECT_EQ(read_now(conn->fd()), "partial");
  EXPECT_EQ(peek_eof(conn->fd()), 0);
  EXPECT_LT(::send(conn->fd(), "x", 1, MSG_NOSIGNAL), 0);
}

TEST(VsockDevice, BadHeadersCostOnlyTheirConnection) {
  Guest g;
  g.give_rx(64);
  auto a = g.establish(5000);
  auto b = g.establish(5001);
  // Wrong CIDs: dropped silently.
  auto h = g.hdr(5001, b->local_port(), kVsockOpRw);
  h.dst_cid = 99;
  g.send(h, bytes("nope"));
  h = g.hdr(5001, b->local_port(), kVsockOpRw);
  h.src_cid = 4;
  g.send(h, bytes("nope"));
  EXPECT_TRUE(g.take().empty());
  // Unknown op on a's ports: a is reset.
  g.send(g.hdr(5000, a->local_port(), 99));
  auto pkts = g.take();
  ASSERT_EQ(pkts.size(), 1u);
  EXPECT_EQ(pkts[0].h.op, kVsockOpRst);
  EXPECT_EQ(pkts[0].h.dst_port, 5000u);
  EXPECT_EQ(peek_eof(a->fd()), 0);
  // Huge len (beyond 64 KiB and beyond the descriptor) on an unknown pair, a
  // len longer than the data, a bad type, a stray RW: RST replies.
  h = g.hdr(6000, 7000, kVsockOpRw);
  h.len = 100000;
  g.send(h, bytes("short"), false);
  h = g.hdr(6001, 7000, kVsockOpRw);
  h.len = 50;
  g.send(h, bytes("short"), false);
  h = g.hdr(6002, 7000, kVsockOpRequest);
  h.type = 2;
  g.send(h);
  g.send(g.hdr(6003, 7000, kVsockOpRw), bytes("who?"));
  g.send(g.hdr(6004, 7000, kVsockOpRst));  // never answered
  // A too-short buffer (no full header): dropped.
  {
    std::lock_guard lock(g.m);
    g.txq.add_chain({{1, 2, 3}}, {});
  }
  g.dev->queue_notify(VsockDevice::kTxQueue);
  pkts = g.take();
  ASSERT_EQ(pkts.size(), 4u);
  for (const auto& p : pkts) EXPECT_EQ(p.h.op, kVsockOpRst);
  // b never noticed.
  EXPECT_EQ(g.dev->connection_count(), 1u);
  g.send(g.hdr(5001, b->local_port(), kVsockOpRw), bytes("b ok"));
  EXPECT_EQ(read_now(b->fd()), "b ok");
  write_all(b->fd(), bytes("b back"));
  g.dev->pump();
  EXPECT_EQ(payload_of(g.take()), "b back");
}

TEST(VsockDevice, ManyConcurrentConnections) {
  Guest g;
  g.give_rx(200);
  std::vector<std::shared_ptr<VsockConnection>> conns;
  for (uint32_t i = 0; i < 60; ++i) conns.push_back(g.establish(10000 + i));
  for (uint32_t i = 0; i < 60; ++i) EXPECT_EQ(conns[i]->local_port(), VsockDevice::kFirstLocalPort + i);
  for (uint32_t i = 0; i < 60; ++i) write_all(conns[i]->fd(), bytes("conn " + std::to_string(i)));
  for (uint32_t i = 0; i < 60; ++i)
    g.send(g.hdr(10000 + i, conns[i]->local_port(), kVsockOpRw), bytes("guest " + std::to_string(i)));
  g.give_rx(100);
  std::map<uint32_t, std::string> got;
  for (const auto& p : g.take())
    if (p.h.op == kVsockOpRw) got[p.h.dst_port].append(p.data.begin(), p.data.end());
  for (uint32_t i = 0; i < 60; ++i) {
    EXPECT_EQ(got[10000 + i], "conn " + std::to_string(i));
    EXPECT_EQ(read_now(conns[i]->fd()), "guest " + std::to_string(i));
  }
  EXPECT_EQ(g.dev->connection_count(), 60u);
}

TEST(VsockDevice, LocalPortsSkipThoseInUse) {
  Guest g;
  g.dev->listen(VsockDevice::kFirstLocalPort, [](UniqueFd) {});
  auto a = g.dev->connect(1);
  auto b = g.dev->connect(1);
  EXPECT_EQ(a->local_port(), VsockDevice::kFirstLocalPort + 1);
  EXPECT_EQ(b->local_port(), VsockDevice::kFirstLocalPort + 2);
}

TEST(VsockDevice, TransportResetEventDropsConnections) {
  Guest g;
  g.give_rx(4);
  auto conn = g.establish(5000);
  EXPECT_FALSE(g.dev->transport_reset());  // no event buffer
  auto again = g.establish(5001);
  auto ev = g.evq.add_chain({}, {4});
  EXPECT_TRUE(g.dev->transport_reset());
  auto used = g.evq.next_used();
  ASSERT_TRUE(used);
  EXPECT_EQ(used->len, 4u);
  EXPECT_EQ(g.mem.read_obj<uint32_t>(ev.writable[0]), kVsockEventTransportReset);
  EXPECT_EQ(g.dev->connection_count(), 0u);
  EXPECT_EQ(peek_eof(again->fd()), 0);
}

TEST(VsockDevice, ResetClosesHostEnds) {
  Guest g;
  g.give_rx(4);
  auto conn = g.establish(5000);
  g.dev->reset();
  EXPECT_EQ(peek_eof(conn->fd()), 0);
  EXPECT_EQ(g.dev->connection_count(), 0u);
}

TEST(VsockDevice, IoThreadMovesDataWithoutPumping) {
  IoThread io;
  VsockOptions opt;
  opt.io = &io;
  Guest g(opt);
  g.give_rx(16);
  auto conn = g.establish(5000);
  write_all(conn->fd(), bytes("threaded"));
  std::string got;
  for (int i = 0; i < 500 && got.size() < 8; ++i) {
    got += payload_of(g.take());
    if (got.size() < 8) std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  EXPECT_EQ(got, "threaded");
  // Guest data the host is slow to read is flushed by the thread (POLLOUT);
  // 240 KB stays within our 256 KiB credit whatever the socket buffer holds.
  const std::vector<uint8_t> chunk(60000, 0x33);
  size_t sent = 0;
  for (int i = 0; i < 4; ++i, sent += chunk.size()) g.send(g.hdr(5000, conn->local_port(), kVsockOpRw), chunk);
  size_t received = 0;
  char buf[65536];
  while (received < sent) {
    const ssize_t n = ::recv(conn->fd(), buf, sizeof(buf), 0);
    ASSERT_GT(n, 0);
    received += static_cast<size_t>(n);
  }
  EXPECT_EQ(received, sent);
  conn->close();
  bool shutdown = false;
  for (int i = 0; i < 500 && !shutdown; ++i) {
    for (const auto& p : g.take()) shutdown = shutdown || p.h.op == kVsockOpShutdown;
    if (!shutdown) std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  EXPECT_TRUE(shutdown);
}

// Random streams, rx buffer sizes and guest credits: every byte arrives once
// and in order, in both directions, and the device never exceeds the guest's
// credit.
// A host stream handed over whole (the Unix socket front end's clients):
// "OK <port>\n" reaches it only once the guest accepts, before any guest
// byte, and host bytes written early wait for the connection.
TEST(VsockDevice, ConnectStreamAnnouncesThePortOnceTheGuestAccepts) {
  Guest g;
  g.give_rx(8);
  int sv[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
  UniqueFd host(sv[0]);
  const auto port = g.dev->connect_stream(5000, UniqueFd(sv[1]), true);
  ASSERT_TRUE(port);
  auto pkts = g.take();
  ASSERT_EQ(pkts.size(), 1u);
  EXPECT_EQ(pkts[0].h.op, kVsockOpRequest);
  EXPECT_EQ(pkts[0].h.src_port, *port);
  write_all(host.get(), bytes("early"));
  g.dev->pump();
  EXPECT_EQ(read_now(host.get()), "");
  EXPECT_EQ(payload_of(g.take()), "");
  g.send(g.hdr(5000, *port, kVsockOpResponse));
  g.send(g.hdr(5000, *port, kVsockOpRw), bytes("hi"));
  EXPECT_EQ(read_now(host.get()), "OK " + std::to_string(*port) + "\nhi");
  g.dev->pump();
  EXPECT_EQ(payload_of(g.take()), "early");
}

TEST(VsockDevice, ConnectStreamRefusedByTheGuestClosesTheStream) {
  Guest g;
  g.give_rx(4);
  int sv[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
  UniqueFd host(sv[0]);
  const auto port = g.dev->connect_stream(5000, UniqueFd(sv[1]), true);
  ASSERT_TRUE(port);
  g.take();
  g.send(g.hdr(5000, *port, kVsockOpRst));
  EXPECT_EQ(peek_eof(host.get()), 0);  // closed, and no "OK"
  EXPECT_EQ(g.dev->connection_count(), 0u);
}

// Guest connections to ports nobody listen()s on go to the connector; an
// invalid fd from it refuses the connection.
TEST(VsockDevice, ConnectorServesPortsWithoutListener) {
  Guest g;
  g.give_rx(8);
  UniqueFd far;
  std::vector<uint32_t> asked;
  g.dev->set_connector([&](uint32_t port) {
    asked.push_back(port);
    if (port != 6000) return UniqueFd();
    int sv[2];
    EXPECT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    far.reset(sv[0]);
    return UniqueFd(sv[1]);
  });
  g.dev->listen(7000, [](UniqueFd) {});
  g.send(g.hdr(1500, 6000, kVsockOpRequest));
  g.send(g.hdr(1501, 6001, kVsockOpRequest));
  g.send(g.hdr(1502, 7000, kVsockOpRequest));
  EXPECT_EQ(asked, (std::vector<uint32_t>{6000, 6001}));  // 7000 has its listener
  std::map<uint32_t, uint16_t> answer;
  for (const auto& p : g.take()) answer[p.h.dst_port] = p.h.op;
  EXPECT_EQ(answer[1500], kVsockOpResponse);
  EXPECT_EQ(answer[1501], kVsockOpRst);
  EXPECT_EQ(answer[1502], kVsockOpResponse);
  ASSERT_TRUE(far);
  g.send(g.hdr(1500, 6000, kVsockOpRw), bytes("to connector"));
  EXPECT_EQ(read_now(far.get()), "to connector");
  write_all(far.get(), bytes("back"));
  g.dev->pump();
  EXPECT_EQ(payload_of(g.take()), "back");
}

// The device may go away while its I/O thread has wake-ups queued for it.
TEST(VsockDevice, DestroyedWhileTheIoThreadIsBusy) {
  IoThread io;
  for (int round = 0; round < 20; ++round) {
    VsockOptions opt;
    opt.io = &io;
    auto g = std::make_unique<Guest>(opt);
    g->give_rx(32);
    auto conn = g->establish(5000);
    const std::vector<uint8_t> chunk(4096, 0x5a);
    for (int i = 0; i < 8; ++i) write_all(conn->fd(), chunk);
    g->send(g->hdr(5000, conn->local_port(), kVsockOpRw), chunk);
    g.reset();
    // The host end gets at most the guest's bytes, then EOF (not a hang).
    const timeval limit{2, 0};
    ::setsockopt(conn->fd(), SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof(limit));
    size_t got = 0;
    ssize_t n;
    char buf[8192];
    while ((n = ::recv(conn->fd(), buf, sizeof(buf), 0)) > 0) got += static_cast<size_t>(n);
    EXPECT_EQ(n, 0);
    EXPECT_LE(got, chunk.size());
  }
  bool ran = false;
  io.run_sync([&] { ran = true; });
  EXPECT_TRUE(ran);
}

RC_GTEST_PROP(VsockDeviceProperty, StreamsArriveInOrderWithinCredit, ()) {
  const auto host_data = *rc::gen::container<std::vector<uint8_t>>(*rc::gen::inRange<size_t>(0, 20000),
                                                                      rc::gen::arbitrary<uint8_t>());
  const auto guest_data = *rc::gen::container<std::vector<uint8_t>>(*rc::gen::inRange<size_t>(0, 20000),
                                                                       rc::gen::arbitrary<uint8_t>());
  Guest g;
  g.buf_alloc = *rc::gen::inRange<uint32_t>(1, 9000);
  g.give_rx(2);
  auto conn = g.establish(5000);
  RC_ASSERT(conn);
  write_all(conn->fd(), host_data);

  std::vector<uint8_t> got;
  uint32_t received = 0;  // = the device's tx_cnt
  size_t guest_off = 0;
  std::string host_got;
  // A round moves at least one byte each way (a stalled guest grants credit,
  // a guest without rx buffers posts one), whatever buf_alloc is.
  const size_t rounds = 2000 + 2 * (host_data.size() + guest_data.size());
  for (size_t round = 0; round < rounds && (got.size() < host_data.size() || host_got.size() < guest_data.size());
       ++round) {
    // Random, but the guest makes progress: never without rx buffers or credit for long.
    const auto nbufs = *rc::gen::inRange<size_t>(g.rx_bufs.empty() ? 1 : 0, 4);
    // (A real driver never has more buffers out than the queue holds.)
    for (size_t i = 0; i < nbufs && g.rx_bufs.size() < 64; ++i)
      g.give_rx(1, *rc::gen::inRange<uint32_t>(kVsockHeaderSize + 1, 5000));
    g.dev->pump();
    for (const auto& p : g.take()) {
      RC_ASSERT(p.h.op != kVsockOpRst);
      RC_ASSERT(p.h.op != kVsockOpShutdown);
      if (p.h.op != kVsockOpRw) continue;
      received += p.h.len;
      RC_ASSERT(received - g.fwd_cnt <= g.buf_alloc);
      got.insert(got.end(), p.data.begin(), p.data.end());
    }
    // The guest application consumes some and tells the device.
    const bool stalled = received - g.fwd_cnt == g.buf_alloc;
    if (*rc::gen::inRange(0, 3) == 0 || stalled) {
      g.fwd_cnt += *rc::gen::inRange<uint32_t>(stalled ? 1 : 0, received - g.fwd_cnt + 1);
      g.send(g.hdr(5000, conn->local_port(), kVsockOpCreditUpdate));
    }
    // The guest sends within the credit we advertise (fwd_cnt = what the host took).
    if (guest_off < guest_data.size()) {
      const size_t n = std::min<size_t>(guest_data.size() - guest_off, *rc::gen::inRange<size_t>(1, 4097));
      g.send(g.hdr(5000, conn->local_port(), kVsockOpRw),
             std::vector<uint8_t>(guest_data.begin() + guest_off, guest_data.begin() + guest_off + n));
      guest_off += n;
    }
    host_got += read_now(conn->fd());
  }
  RC_ASSERT(got == host_data);
  RC_ASSERT(host_got == std::string(guest_data.begin(), guest_data.end()));
}

}  // namespace
}  // namespace skiff::virtio
