#include "virtio/vsock/vsock_unix_socket.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstring>
#include <map>
#include <stdexcept>
#include <system_error>

#include "virtio/vsock/vsock_device.h"
#include "base/event_loop.h"
#include "base/log.h"
#include "base/unique_fd.h"

namespace skiff::virtio {
namespace {

sockaddr_un unix_address(const std::string& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof(addr.sun_path))
    throw std::runtime_error("vsock socket path \"" + path + "\" must be 1 to " +
                             std::to_string(sizeof(addr.sun_path) - 1) + " bytes");
  std::memcpy(addr.sun_path, path.data(), path.size());
  return addr;
}

UniqueFd unix_stream_socket() {
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!fd) throw std::system_error(errno, std::generic_category(), "vsock: socket(AF_UNIX)");
  return fd;
}

// A socket file nobody accepts on is left over from a process that died; a
// live one belongs to someone else and is not ours to take.
void remove_stale_socket(const std::string& path, const sockaddr_un& addr) {
  struct stat st;
  if (::lstat(path.c_str(), &st) != 0) return;
  if (!S_ISSOCK(st.st_mode)) throw std::runtime_error("vsock socket path " + path + " exists and is not a socket");
  UniqueFd probe(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (probe && ::connect(probe.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) == 0)
    throw std::runtime_error("vsock socket path " + path + " is in use by another process");
  ::unlink(path.c_str());
}

void send_line(int fd, const std::string& line) {
  [[maybe_unused]] const ssize_t n = ::send(fd, line.data(), line.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
}

}  // namespace

std::optional<uint32_t> parse_vsock_connect_line(std::string_view line) {
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  constexpr std::string_view kVerb = "CONNECT ";
  if (line.substr(0, kVerb.size()) != kVerb) return std::nullopt;
  line.remove_prefix(kVerb.size());
  uint32_t port = 0;
  const auto [end, ec] = std::from_chars(line.data(), line.data() + line.size(), port);
  if (ec != std::errc() || end != line.data() + line.size() || line.empty()) return std::nullopt;
  return port;
}

// Lives on the event loop: created and destroyed through run_sync, touched
// only by handlers there. Handlers hold a weak_ptr, so none outlives it.
struct VsockUnixSocket::State {
  State(EventLoop& loop, UniqueFd listen_fd)
      : loop(loop), listen_fd(std::move(listen_fd)), listener(loop.watch_fd(this->listen_fd.get())), retry(loop.timer()) {}

  // A client that has not sent its CONNECT line yet; the watch goes first.
  struct Handshake {
    UniqueFd fd;
    std::unique_ptr<EventLoop::FdWatch> watch;
  };

  EventLoop& loop;
  std::shared_ptr<VsockDevice> device;
  std::string path;
  UniqueFd listen_fd;
  std::unique_ptr<EventLoop::FdWatch> listener;
  std::unique_ptr<EventLoop::Timer> retry;  // after accept() fails for want of fds
  std::map<int, Handshake> handshakes;      // by fd

  static void accept_next(const std::shared_ptr<State>& s);
  static void accept_ready(const std::shared_ptr<State>& s);
  static void wait_line(const std::shared_ptr<State>& s, int fd);
  static void read_line(const std::shared_ptr<State>& s, int fd);
  void drop(int fd) { handshakes.erase(fd); }
};

void VsockUnixSocket::State::accept_next(const std::shared_ptr<State>& s) {
  s->listener->wait(EventLoop::Ready::Readable, [w = std::weak_ptr<State>(s)] {
    if (auto s = w.lock()) accept_ready(s);
  });
}

void VsockUnixSocket::State::accept_ready(const std::shared_ptr<State>& s) {
  for (;;) {
    UniqueFd client(::accept4(s->listen_fd.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
    if (client) {
      if (s->handshakes.size() >= kMaxHandshakes) {
        log::warn("vsock", "too many clients waiting to send CONNECT; closing a new one",
                  {{"socket", s->path}});
        continue;
      }
      const int fd = client.get();
      auto& h = s->handshakes[fd];
      h.fd = std::move(client);
      h.watch = s->loop.watch_fd(fd);
      wait_line(s, fd);
      continue;
    }
    if (errno == EINTR || errno == ECONNABORTED) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) break;
    // Out of fds (EMFILE, ENFILE, ENOBUFS): the pending client stays queued
    // and the socket stays readable; try again shortly rather than spin.
    log::warn("vsock", "accept failed", {{"socket", s->path}, {"error", std::string(std::strerror(errno))}});
    s->retry->after(std::chrono::milliseconds(100), [w = std::weak_ptr<State>(s)] {
      if (auto s = w.lock()) accept_ready(s);
    });
    return;
  }
  accept_next(s);
}

void VsockUnixSocket::State::wait_line(const std::shared_ptr<State>& s, int fd) {
  s->handshakes.at(fd).watch->wait(EventLoop::Ready::Readable, [w = std::weak_ptr<State>(s), fd] {
    auto s = w.lock();
    if (s && s->handshakes.count(fd)) read_line(s, fd);
  });
}

void VsockUnixSocket::State::read_line(const std::shared_ptr<State>& s, int fd) {
  // Peek first: bytes after the newline are stream data and stay in the socket.
  char buf[kMaxLine];
  const ssize_t n = ::recv(fd, buf, sizeof(buf), MSG_PEEK);
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return wait_line(s, fd);
  if (n <= 0) return s->drop(fd);  // the client went away before its CONNECT line
  const auto* newline = static_cast<const char*>(std::memchr(buf, '\n', static_cast<size_t>(n)));
  if (!newline) {
    if (static_cast<size_t>(n) < sizeof(buf)) return wait_line(s, fd);
    send_line(fd, "ERROR expected \"CONNECT <port>\\n\"\n");
    return s->drop(fd);
  }
  const size_t line_len = static_cast<size_t>(newline - buf);
  [[maybe_unused]] const ssize_t consumed = ::recv(fd, buf, line_len + 1, 0);
  const auto port = parse_vsock_connect_line(std::string_view(buf, line_len));
  if (!port) {
    send_line(fd, "ERROR expected \"CONNECT <port>\\n\"\n");
    return s->drop(fd);
  }
  auto& h = s->handshakes.at(fd);
  h.watch.reset();
  UniqueFd stream = std::move(h.fd);
  s->handshakes.erase(fd);
  if (!s->device->connect_stream(*port, std::move(stream), true))
    log::warn("vsock", "too many connections; a host client was refused", {{"socket", s->path}});
}

VsockUnixSocket::VsockUnixSocket(std::shared_ptr<VsockDevice> device, EventLoop& io, std::string path)
    : io_(io), path_(std::move(path)) {
  const sockaddr_un addr = unix_address(path_);
  remove_stale_socket(path_, addr);
  UniqueFd listener = unix_stream_socket();
  if (::bind(listener.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) != 0)
    throw std::system_error(errno, std::generic_category(), "vsock: bind " + path_);
  if (::listen(listener.get(), 128) != 0) {
    const int err = errno;
    ::unlink(path_.c_str());
    throw std::system_error(err, std::generic_category(), "vsock: listen " + path_);
  }
  // Guest connections to ports the VMM does not serve go to "<path>_<port>".
  device->set_connector([base = path_](uint32_t port) {
    const std::string target = base + "_" + std::to_string(port);
    sockaddr_un to{};
    if (target.size() >= sizeof(to.sun_path)) return UniqueFd();
    to.sun_family = AF_UNIX;
    std::memcpy(to.sun_path, target.data(), target.size());
    UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    // A Unix connect completes at once or fails (EAGAIN: backlog full); no
    // connection is ever left half-open here.
    if (!fd || ::connect(fd.get(), reinterpret_cast<const sockaddr*>(&to), sizeof(to)) != 0) return UniqueFd();
    return fd;
  });
  io_.run_sync([&] {
    state_ = std::make_shared<State>(io_, std::move(listener));
    state_->device = std::move(device);
    state_->path = path_;
    State::accept_next(state_);
  });
}

VsockUnixSocket::~VsockUnixSocket() {
  io_.run_sync([this] {
    state_->device->set_connector(nullptr);
    state_.reset();  // cancels the waits, closes the listener and the clients mid-handshake
  });
  ::unlink(path_.c_str());
}

}  // namespace skiff::virtio
