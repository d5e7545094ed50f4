#pragma once
// Firecracker's "hybrid vsock": the guest's vsock ports reached through Unix
// sockets on the host, for programs that are not linked into this process.
//
//  - Host to guest: a program connects to `path`, writes "CONNECT <port>\n"
//    and, once the guest accepts, reads "OK <host port>\n"; from then on the
//    socket is the stream. A refused connection (nobody listens on the guest
//    port) is closed; a malformed line gets "ERROR <why>\n", then closed.
//  - Guest to host: a guest connection to CID 2 port P reaches the Unix
//    socket "<path>_P" if something listens there, otherwise the guest gets
//    RST. Ports the VMM itself listen()s on are not forwarded.
//
// The client's socket becomes the connection's host end (no copy in between).
// Everything runs on the I/O thread; at most kMaxHandshakes clients may be
// between accept and their CONNECT line (more are closed), so a client that
// connects and says nothing costs one fd, not a thread.
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace skiff {
class EventLoop;
}

namespace skiff::virtio {

class VsockDevice;

class VsockUnixSocket {
 public:
  static constexpr size_t kMaxHandshakes = 64;
  static constexpr size_t kMaxLine = 32;  // "CONNECT 4294967295\n" and some slack

  // Binds `path` (a stale socket file there is replaced; anything else there,
  // or a live socket, is an error) and installs the device's connector.
  // Throws std::system_error / std::runtime_error with the path.
  VsockUnixSocket(std::shared_ptr<VsockDevice> device, EventLoop& io, std::string path);
  // Stops accepting and removes the socket file; connections already handed
  // to the device stay up.
  ~VsockUnixSocket();
  VsockUnixSocket(const VsockUnixSocket&) = delete;
  VsockUnixSocket& operator=(const VsockUnixSocket&) = delete;

  const std::string& path() const { return path_; }

 private:
  struct State;
  EventLoop& io_;
  std::string path_;
  std::shared_ptr<State> state_;
};

// Parses "CONNECT <port>" (the line without its newline); nothing when malformed.
std::optional<uint32_t> parse_vsock_connect_line(std::string_view line);

}  // namespace skiff::virtio
