// The hybrid-vsock Unix socket front end: host programs reach guest ports
// with "CONNECT <port>\n", guest connections reach "<path>_<port>". The
// device runs on a real I/O thread; the guest is the simulated driver.
#include "virtio/vsock/vsock_unix_socket.h"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <thread>

#include "virtio/testing/vsock_guest.h"
#include "base/io_thread.h"

namespace skiff::virtio {
namespace {

using testing::bytes;
using testing::Pkt;
using testing::VsockGuest;

class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/skiff-vsock-XXXXXX";
    path_ = ::mkdtemp(tmpl);
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  std::string file(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

UniqueFd connect_unix(const std::string& path) {
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path.c_str(), sizeof(addr.sun_path) - 1);
  if (::connect(fd.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) != 0) return UniqueFd();
  const timeval limit{5, 0};
  ::setsockopt(fd.get(), SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof(limit));
  return fd;
}

UniqueFd listen_unix(const std::string& path) {
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path.c_str(), sizeof(addr.sun_path) - 1);
  EXPECT_EQ(::bind(fd.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)), 0);
  EXPECT_EQ(::listen(fd.get(), 8), 0);
  return fd;
}

// Reads until `n` bytes or EOF/timeout.
std::string read_n(int fd, size_t n) {
  std::string out;
  char buf[4096];
  while (out.size() < n) {
    const ssize_t r = ::recv(fd, buf, std::min(sizeof(buf), n - out.size()), 0);
    if (r <= 0) break;
    out.append(buf, static_cast<size_t>(r));
  }
  return out;
}

// The simulated guest is polled from the test thread while the device works
// on the I/O thread: wait until `pred` holds on what arrived.
std::vector<Pkt> wait_packets(VsockGuest& g, const std::function<bool(const std::vector<Pkt>&)>& pred) {
  std::vector<Pkt> all;
  for (int i = 0; i < 2500 && !pred(all); ++i) {
    auto more = g.take();
    all.insert(all.end(), more.begin(), more.end());
    if (!pred(all)) std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return all;
}

struct Fixture {
  Fixture() {
    VsockOptions o;
    o.io = &io;
    guest = std::make_unique<VsockGuest>(o);
    guest->give_rx(32);
    front = std::make_unique<VsockUnixSocket>(guest->dev, io, dir.file("v.sock"));
  }
  ~Fixture() {
    front.reset();
    guest.reset();
  }
  TempDir dir;
  IoThread io;
  std::unique_ptr<VsockGuest> guest;
  std::unique_ptr<VsockUnixSocket> front;
};

TEST(VsockUnixSocket, ParsesConnectLines) {
  EXPECT_EQ(parse_vsock_connect_line("CONNECT 1024"), 1024u);
  EXPECT_EQ(parse_vsock_connect_line("CONNECT 4294967295\r"), 4294967295u);
  EXPECT_FALSE(parse_vsock_connect_line("CONNECT 4294967296"));
  EXPECT_FALSE(parse_vsock_connect_line("CONNECT "));
  EXPECT_FALSE(parse_vsock_connect_line("CONNECT -1"));
  EXPECT_FALSE(parse_vsock_connect_line("CONNECT 12x"));
  EXPECT_FALSE(parse_vsock_connect_line("connect 12"));
  EXPECT_FALSE(parse_vsock_connect_line(""));
}

TEST(VsockUnixSocket, HostClientReachesAGuestPort) {
  Fixture f;
  auto client = connect_unix(f.front->path());
  ASSERT_TRUE(client);
  // The line and the first data in one write: data after the newline is stream.
  const std::string hello = "CONNECT 5000\nfirst bytes";
  ASSERT_EQ(::send(client.get(), hello.data(), hello.size(), 0), static_cast<ssize_t>(hello.size()));
  auto pkts = wait_packets(*f.guest, [](const auto& p) { return !p.empty(); });
  ASSERT_EQ(pkts.size(), 1u);
  EXPECT_EQ(pkts[0].h.op, kVsockOpRequest);
  EXPECT_EQ(pkts[0].h.dst_port, 5000u);
  const uint32_t host_port = pkts[0].h.src_port;
  f.guest->send(f.guest->hdr(5000, host_port, kVsockOpResponse));
  const std::string ok = "OK " + std::to_string(host_port) + "\n";
  EXPECT_EQ(read_n(client.get(), ok.size()), ok);
  auto data = wait_packets(*f.guest, [](const auto& p) { return testing::payload_of(p).size() >= 11; });
  EXPECT_EQ(testing::payload_of(data), "first bytes");
  f.guest->send(f.guest->hdr(5000, host_port, kVsockOpRw), bytes("from the guest"));
  EXPECT_EQ(read_n(client.get(), 14), "from the guest");
  client.reset();  // the host program hangs up: the guest is told
  auto bye = wait_packets(*f.guest, [](const auto& p) { return !p.empty(); });
  ASSERT_FALSE(bye.empty());
  EXPECT_EQ(bye.back().h.op, kVsockOpShutdown);
}

TEST(VsockUnixSocket, RefusedGuestPortClosesTheClient) {
  Fixture f;
  auto client = connect_unix(f.front->path());
  ASSERT_TRUE(client);
  ASSERT_EQ(::send(client.get(), "CONNECT 6000\n", 13, 0), 13);
  auto pkts = wait_packets(*f.guest, [](const auto& p) { return !p.empty(); });
  ASSERT_EQ(pkts.size(), 1u);
  f.guest->send(f.guest->hdr(6000, pkts[0].h.src_port, kVsockOpRst));
  EXPECT_EQ(read_n(client.get(), 1), "");  // EOF, no "OK"
}

TEST(VsockUnixSocket, MalformedLinesGetAnErrorAndTheDeviceIsUntouched) {
  Fixture f;
  for (const std::string& line : std::vector<std::string>{"HELLO\n", "CONNECT\n", "CONNECT 99999999999\n", std::string(40, 'x')}) {
    auto client = connect_unix(f.front->path());
    ASSERT_TRUE(client);
    ASSERT_EQ(::send(client.get(), line.data(), line.size(), 0), static_cast<ssize_t>(line.size()));
    const std::string reply = read_n(client.get(), 200);
    EXPECT_EQ(reply.rfind("ERROR ", 0), 0u) << line;
  }
  EXPECT_EQ(f.guest->dev->connection_count(), 0u);
  EXPECT_TRUE(f.guest->take().empty());
}

TEST(VsockUnixSocket, ClientsThatSayNothingDoNotBlockOthers) {
  Fixture f;
  std::vector<UniqueFd> silent;
  for (int i = 0; i < 10; ++i) silent.push_back(connect_unix(f.front->path()));
  auto partial = connect_unix(f.front->path());
  ASSERT_EQ(::send(partial.get(), "CONN", 4, 0), 4);
  auto client = connect_unix(f.front->path());
  ASSERT_EQ(::send(client.get(), "CONNECT 5000\n", 13, 0), 13);
  auto pkts = wait_packets(*f.guest, [](const auto& p) { return !p.empty(); });
  ASSERT_EQ(pkts.size(), 1u);
  EXPECT_EQ(pkts[0].h.dst_port, 5000u);
  // The partial line completes later.
  ASSERT_EQ(::send(partial.get(), "ECT 5001\n", 9, 0), 9);
  pkts = wait_packets(*f.guest, [](const auto& p) { return !p.empty(); });
  ASSERT_EQ(pkts.size(), 1u);
  EXPECT_EQ(pkts[0].h.dst_port, 5001u);
}

TEST(VsockUnixSocket, GuestConnectionsReachPathUnderscorePort) {
  Fixture f;
  auto listener = listen_unix(f.front->path() + "_7000");
  f.guest->send(f.guest->hdr(1500, 7000, kVsockOpRequest));
  f.guest->send(f.guest->hdr(1501, 7001, kVsockOpRequest));  // nobody at v.sock_7001
  auto pkts = wait_packets(*f.guest, [](const auto& p) { return p.size() >= 2; });
  std::map<uint32_t, uint16_t> answer;
  for (const auto& p : pkts) answer[p.h.dst_port] = p.h.op;
  EXPECT_EQ(answer[1500], kVsockOpResponse);
  EXPECT_EQ(answer[1501], kVsockOpRst);
  UniqueFd conn(::accept(listener.get(), nullptr, nullptr));
  ASSERT_TRUE(conn);
  const timeval limit{5, 0};
  ::setsockopt(conn.get(), SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof(limit));
  f.guest->send(f.guest->hdr(1500, 7000, kVsockOpRw), bytes("guest says hi"));
  EXPECT_EQ(read_n(conn.get(), 13), "guest says hi");
  ASSERT_EQ(::send(conn.get(), "host answers", 12, 0), 12);
  auto back = wait_packets(*f.guest, [](const auto& p) { return testing::payload_of(p).size() >= 12; });
  EXPECT_EQ(testing::payload_of(back), "host answers");
}

TEST(VsockUnixSocket, StaleSocketIsReplacedLiveOneIsNot) {
  TempDir dir;
  IoThread io;
  VsockOptions o;
  o.io = &io;
  VsockGuest g(o);
  const std::string path = dir.file("v.sock");
  { UniqueFd stale = listen_unix(path); }  // bound, then closed: a leftover file
  {
    VsockUnixSocket front(g.dev, io, path);
    EXPECT_THROW(VsockUnixSocket(g.dev, io, path), std::runtime_error);  // live
  }
  struct stat st;
  EXPECT_NE(::lstat(path.c_str(), &st), 0);  // removed on the way out
  { std::ofstream(path) << "not a socket"; }
  EXPECT_THROW(VsockUnixSocket(g.dev, io, path), std::runtime_error);
  EXPECT_THROW(VsockUnixSocket(g.dev, io, std::string(200, 'a')), std::runtime_error);
}

}  // namespace
}  // namespace skiff::virtio
