#include "runtime/shim/ttrpc/unix_address.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstring>
#include <filesystem>
#include <stdexcept>

#include "base/printable.h"
#include "base/sys_error.h"

namespace skiff::ttrpc {
namespace {

constexpr std::string_view kScheme = "unix://";
// sun_path less the NUL a path needs; less the NULs around an abstract name.
constexpr size_t kMaxPath = sizeof(sockaddr_un::sun_path) - 1;
constexpr size_t kMaxAbstract = sizeof(sockaddr_un::sun_path) - 2;

}  // namespace

UnixAddress UnixAddress::parse(std::string_view address) {
  if (address.empty()) throw std::invalid_argument("empty socket address");
  if (!address.starts_with(kScheme)) {
    if (address.size() > kMaxAbstract)
      throw std::invalid_argument("abstract socket name of " + std::to_string(address.size()) + " bytes is over " +
                                  std::to_string(kMaxAbstract) + ": " + quoted(address, 120));
    return abstract(std::string(address));
  }
  const std::string_view p = address.substr(kScheme.size());
  if (p.empty()) throw std::invalid_argument("socket address " + quoted(address) + " names no path");
  if (p.front() != '/') throw std::invalid_argument("socket address " + quoted(address) + " is not an absolute path");
  if (p.find('\0') != std::string_view::npos)
    throw std::invalid_argument("socket address " + quoted(address) + " has a NUL byte in its path");
  if (p.size() > kMaxPath)
    throw std::invalid_argument("socket path of " + std::to_string(p.size()) + " bytes is over " +
                                std::to_string(kMaxPath) + ": " + quoted(p, 120));
  return path(std::string(p));
}

std::string UnixAddress::to_string() const {
  return kind == Kind::Path ? std::string(kScheme) + name : name;
}

std::string UnixAddress::describe() const {
  return kind == Kind::Path ? printable(to_string()) : "@" + printable(name);
}

socklen_t UnixAddress::to_sockaddr(sockaddr_un& out) const {
  if (name.empty() || name.size() > (kind == Kind::Path ? kMaxPath : kMaxAbstract))
    throw std::invalid_argument("socket address " + quoted(describe(), 120) + " does not fit a sockaddr_un");
  if (kind == Kind::Path && name.find('\0') != std::string::npos)
    throw std::invalid_argument("socket path " + quoted(name, 120) + " has a NUL byte");
  std::memset(&out, 0, sizeof out);
  out.sun_family = AF_UNIX;
  const size_t at = kind == Kind::Abstract ? 1 : 0;  // sun_path[0] = '\0' marks abstract
  std::memcpy(out.sun_path + at, name.data(), name.size());
  // Both forms count a NUL after the name: a path's terminator, and for an
  // abstract name the byte Go (before 1.20) counts after "\0"+address, so
  // the kernel's name for containerd's "\0"+address is "\0"+address+"\0".
  const size_t used = at + name.size() + 1;
  return static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + used);
}

UniqueFd listen_unix(const UnixAddress& address, int backlog) {
  sockaddr_un sa{};
  const socklen_t len = address.to_sockaddr(sa);
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!fd) throw_errno("socket for " + address.describe());
  if (address.kind == UnixAddress::Kind::Path) {
    const auto parent = std::filesystem::path(address.name).parent_path();
    std::error_code ec;
    // A folder made here is ours alone; one that exists (containerd's
    // /run/containerd/s) keeps its mode.
    if (std::filesystem::create_directories(parent, ec)) ::chmod(parent.c_str(), 0700);
    if (ec) throw std::system_error(ec, "create " + parent.string() + " for " + address.describe());
    // 0600 from the first moment: no window in which another user could connect.
    const mode_t old = ::umask(0177);
    const int rc = ::bind(fd.get(), reinterpret_cast<sockaddr*>(&sa), len);
    const int err = errno;
    ::umask(old);
    if (rc != 0) throw_errno("bind " + address.describe(), err);
  } else if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&sa), len) != 0) {
    throw_errno("bind " + address.describe());
  }
  if (::listen(fd.get(), backlog) != 0) throw_errno("listen on " + address.describe());
  return fd;
}

void remove_socket(const UnixAddress& address) {
  if (address.kind != UnixAddress::Kind::Path) return;
  if (::unlink(address.name.c_str()) != 0 && errno != ENOENT) throw_errno("remove " + address.describe());
}

}  // namespace skiff::ttrpc
