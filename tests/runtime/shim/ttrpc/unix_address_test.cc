// containerd's shim socket addresses: both forms parsed and written back,
// refusals with reasons, and the sockets they name (a 0600 file, an abstract name).
#include "runtime/shim/ttrpc/unix_address.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <system_error>

namespace skiff::ttrpc {
namespace {

std::string refusal(std::string_view address) {
  try {
    UnixAddress::parse(address);
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return "accepted";
}

TEST(TtrpcUnixAddress, ASocketFileAddress) {
  const std::string a = "unix:///run/containerd/s/0123456789abcdef";
  const auto u = UnixAddress::parse(a);
  EXPECT_EQ(u.kind, UnixAddress::Kind::Path);
  EXPECT_EQ(u.name, "/run/containerd/s/0123456789abcdef");
  EXPECT_EQ(u.to_string(), a);
  EXPECT_EQ(u.describe(), a);
}

TEST(TtrpcUnixAddress, AnythingElseIsAnAbstractName) {
  // containerd <= 1.4's shims printed addresses like this one.
  const auto u = UnixAddress::parse("/containerd-shim/default/c1/shim.sock");
  EXPECT_EQ(u.kind, UnixAddress::Kind::Abstract);
  EXPECT_EQ(u.name, "/containerd-shim/default/c1/shim.sock");
  EXPECT_EQ(u.to_string(), "/containerd-shim/default/c1/shim.sock");
  EXPECT_EQ(u.describe(), "@/containerd-shim/default/c1/shim.sock");
  // A leading NUL stays part of the name, as containerd prefixes its own.
  const auto n = UnixAddress::parse(std::string_view("\0x", 2));
  EXPECT_EQ(n.name, std::string("\0x", 2));
  EXPECT_EQ(n.describe(), "@\\x00x");
  EXPECT_EQ(UnixAddress::parse(n.to_string()), n);
}

TEST(TtrpcUnixAddress, RefusalsSayWhy) {
  EXPECT_EQ(refusal(""), "empty socket address");
  EXPECT_EQ(refusal("unix://"), "socket address \"unix://\" names no path");
  EXPECT_EQ(refusal("unix://run/x"), "socket address \"unix://run/x\" is not an absolute path");
  EXPECT_EQ(refusal(std::string_view("unix:///a\0b", 11)), "socket address \"unix:///a\\x00b\" has a NUL byte in its path");
  EXPECT_NE(refusal("unix:///" + std::string(107, 'a')).find("socket path of 108 bytes is over 107"), std::string::npos);
  EXPECT_EQ(refusal("unix:///" + std::string(106, 'a')), "accepted");
  EXPECT_NE(refusal(std::string(107, 'a')).find("abstract socket name of 107 bytes is over 106"), std::string::npos);
  EXPECT_EQ(refusal(std::string(106, 'a')), "accepted");
}

TEST(TtrpcUnixAddress, SockaddrLengths) {
  sockaddr_un sa{};
  // A path: its bytes and the terminating NUL.
  EXPECT_EQ(UnixAddress::path("/a/b").to_sockaddr(sa), offsetof(sockaddr_un, sun_path) + 5);
  EXPECT_STREQ(sa.sun_path, "/a/b");
  // An abstract name: a NUL, the name, and the NUL Go (< 1.20) counts after
  // containerd's "\0"+address.
  EXPECT_EQ(UnixAddress::abstract("xy").to_sockaddr(sa), offsetof(sockaddr_un, sun_path) + 4);
  EXPECT_EQ(std::string(sa.sun_path, 4), std::string("\0xy\0", 4));
}

class TtrpcUnixSocket : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/skiff-ttrpc-addr-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string dir_;
};

TEST_F(TtrpcUnixSocket, AFileSocketIs0600InAFolderMadeForIt) {
  const auto a = UnixAddress::path(dir_ + "/s/shim.sock");
  UniqueFd fd = listen_unix(a);
  ASSERT_TRUE(fd);
  struct stat st {};
  ASSERT_EQ(::stat(a.name.c_str(), &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  ASSERT_EQ(::stat((dir_ + "/s").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
  remove_socket(a);
  EXPECT_FALSE(std::filesystem::exists(a.name));
  EXPECT_NO_THROW(remove_socket(a)) << "absent is fine";
}

TEST_F(TtrpcUnixSocket, AnAddressInUseIsEaddrinuse) {
  const auto a = UnixAddress::path(dir_ + "/shim.sock");
  UniqueFd first = listen_unix(a);
  try {
    listen_unix(a);
    FAIL() << "bound twice";
  } catch (const std::system_error& e) {
    EXPECT_EQ(e.code().value(), EADDRINUSE);
    EXPECT_NE(std::string(e.what()).find("bind unix://" + a.name), std::string::npos) << e.what();
  }
}

TEST_F(TtrpcUnixSocket, AnAbstractSocketListensAndConnects) {
  const auto a = UnixAddress::abstract("skiff-ttrpc-test-" + std::to_string(::getpid()));
  UniqueFd l = listen_unix(a);
  UniqueFd c(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_un sa{};
  const socklen_t len = a.to_sockaddr(sa);
  EXPECT_EQ(::connect(c.get(), reinterpret_cast<sockaddr*>(&sa), len), 0) << std::strerror(errno);
  remove_socket(a);  // nothing to remove: no file
}

}  // namespace
}  // namespace skiff::ttrpc
