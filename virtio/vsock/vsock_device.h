#pragma once
// virtio-vsock device model (virtio 1.2, section 5.10), stream sockets only,
// with the host end living in this process.
//
// Host side: connect(guest_port) opens a connection to a guest port and hands
// back a VsockConnection whose fd() is one end of a socketpair; listen(port,
// cb) makes guest connections to CID 2 port `port` reach `cb` with a connected
// socketpair end. Bytes written to that end go to the guest as RW packets,
// bytes from the guest appear on it; closing it sends SHUTDOWN to the guest,
// and a guest RST (or a connection the device resets) closes the device's end
// (the host sees EOF / EPIPE).
//
// Everything the guest writes is hostile (docs/DESIGN.md section 4): a bad header,
// a packet for an unknown connection, a guest ignoring our credit or sending
// data after SHUTDOWN costs that connection (RST), never the device.
//
// Host ends need not be socketpairs: connect_stream() and set_connector()
// take any connected stream socket (the Unix socket front end hands over its
// clients' sockets this way), so bytes are copied once, guest <-> socket.
//
// Threading: one mutex guards all state. With VsockOptions::io (the VMM's
// event loop, docs/DESIGN.md section 2) the host ends are watched
// there: readable only while the guest has credit and rx buffers
// (back-pressure), writable while guest data waits for the host. Without it
// nothing runs on its own: queue_notify() and pump() do one non-blocking
// pass over the host ends (deterministic tests, fuzzing). The interrupt is
// raised and on_accept callbacks run outside the lock, on the thread that did
// the work (the I/O thread for ioeventfd kicks and socket readiness).
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "base/event_loop.h"
#include "base/unique_fd.h"
#include "virtio/virtqueue.h"
#include "virtio/device.h"
#include "virtio/vsock/vsock_packet.h"

namespace skiff::virtio {

// The host program's end of a host-initiated connection.
class VsockConnection {
 public:
  VsockConnection(UniqueFd fd, uint32_t local_port, uint32_t peer_port)
      : fd_(std::move(fd)), local_port_(local_port), peer_port_(peer_port) {}
  int fd() const { return fd_.get(); }
  uint32_t local_port() const { return local_port_; }  // host-side port (CID 2)
  uint32_t peer_port() const { return peer_port_; }    // guest port
  void close() { fd_.reset(); }                        // as the host program closing its socket

 private:
  UniqueFd fd_;
  uint32_t local_port_;
  uint32_t peer_port_;
};

struct VsockOptions {
  uint32_t buf_alloc = 256 * 1024;  // our receive buffer per connection, advertised to the guest
  EventLoop* io = nullptr;          // see the header comment; must outlive the device
  size_t max_connections = 1024;    // beyond: guest REQUESTs get RST, connect() returns null
  size_t max_queued_rsts = 1024;    // RSTs for unknown connections waiting for rx buffers
  uint16_t queue_size = 256;
};

class VsockDevice : public VirtioDevice {
 public:
  static constexpr size_t kRxQueue = 0, kTxQueue = 1, kEventQueue = 2;
  static constexpr uint32_t kFirstLocalPort = 1024;

  explicit VsockDevice(uint64_t guest_cid, VsockOptions options = {});
  ~VsockDevice() override;
  VsockDevice(const VsockDevice&) = delete;
  VsockDevice& operator=(const VsockDevice&) = delete;

  uint32_t device_type() const override { return kVsockDeviceType; }
  uint64_t device_features() const override;
  size_t queue_count() const override { return 3; }
  uint16_t queue_max_size(size_t) const override { return options_.queue_size; }
  void read_config(uint64_t offset, std::span<uint8_t> data) override;
  bool activate(uint64_t features, std::vector<std::unique_ptr<Virtqueue>> queues,
                std::shared_ptr<DeviceInterrupt> interrupt) override;
  void queue_notify(size_t queue) override;
  // Drops the queues and every connection (host ends see EOF). Listeners stay.
  void reset() override;

  // Opens a connection to `guest_port` (REQUEST goes out when the guest has an
  // rx buffer). Null when max_connections is reached; throws std::system_error
  // if socketpair() fails.
  std::shared_ptr<VsockConnection> connect(uint32_t guest_port);
  // Like connect(), with `stream` (a connected stream socket, made
  // non-blocking here) as the host end. With `ok_line`, "OK <local port>\n"
  // is written to it once the guest accepts, before any guest byte
  // (Firecracker's handshake); a refused connection just closes it. Returns
  // the local port, or nothing when max_connections is reached.
  std::optional<uint32_t> connect_stream(uint32_t guest_port, UniqueFd stream, bool ok_line);
  void listen(uint32_t host_port, std::function<void(UniqueFd)> on_accept);
  void unlisten(uint32_t host_port);
  // For a guest REQUEST to a port nobody listen()s on: returns a connected
  // stream socket for that port, or an invalid fd to refuse (the guest gets
  // RST). Runs under the device lock: it must not call into the device.
  void set_connector(std::function<UniqueFd(uint32_t host_port)> connector);
  // VIRTIO_VSOCK_EVENT_TRANSPORT_RESET (e.g. after a snapshot restore): drops
  // every connection and tells the guest through the event queue. Returns
  // whether an event buffer was available. reset() does not send it: after a
  // device reset the rings no longer belong to the device.
  bool transport_reset();
  // One non-blocking pass over the host ends and the rx queue.
  void pump();

  uint64_t guest_cid() const { return guest_cid_; }
  size_t connection_count() const;

 private:
  enum class State { kConnecting, kEstablished, kClosing };
  using Key = std::pair<uint32_t, uint32_t>;  // (local port, peer port)
  struct Conn {
    uint64_t id = 0;  // tells a reused (local, peer) key from the connection a stale wake-up was for
    uint32_t local_port = 0, peer_port = 0;
    State state = State::kConnecting;
    UniqueFd fd;  // host end the device reads and writes (non-blocking)
    // Declared after fd: destroyed (and stops watching fd) before fd closes.
    std::unique_ptr<EventLoop::FdWatch> watch;
    bool read_armed = false, write_armed = false;
    bool ok_line = false;
    std::string host_prefix;  // handshake bytes for the host, not guest data: no credit accounting
    // Guest's receive side, from its headers.
    uint32_t peer_buf_alloc = 0, peer_fwd_cnt = 0;
    uint32_t tx_cnt = 0;  // bytes sent to the guest
    // Our receive side.
    uint32_t rx_cnt = 0, fwd_cnt = 0, last_sent_fwd_cnt = 0;
    std::vector<uint8_t> host_out;  // guest bytes not yet written to fd, from host_out_head
    size_t host_out_head = 0;
    uint32_t pending = 0;  // kPend* control packets to send
    uint32_t peer_shutdown = 0;
    bool host_eof = false, host_shut_wr = false;
    size_t host_out_size() const { return host_out.size() - host_out_head; }
    bool host_out_pending() const { return host_out_size() > 0 || !host_prefix.empty(); }
  };
  struct Deferred {
    std::shared_ptr<DeviceInterrupt> irq;
    std::vector<std::pair<std::function<void(UniqueFd)>, UniqueFd>> accepts;
    void run();
  };

  Conn& add_conn_locked(uint32_t local_port, uint32_t peer_port, UniqueFd fd);
  // Watches the host ends that need it on the I/O thread (no-op in manual mode).
  void arm_locked();
  void on_stream_ready(const Key& key, uint64_t id, bool readable);
  void finish_locked(Deferred& d);
  void process_tx_locked(Deferred& d);
  void handle_packet_locked(const VsockHeader& h, const DescriptorChain& chain, Deferred& d);
  void service_locked();
  void flush_rx_locked();
  bool flush_host_out_locked(Conn& c);  // false: connection was reset
  bool maybe_finish_locked(Conn& c);    // false: connection closed
  void reset_conn_locked(const Key& key, bool send_rst);
  void queue_rst_locked(uint32_t local_port, uint32_t peer_port);
  std::optional<DescriptorChain> take_rx_locked();
  void write_packet_locked(const DescriptorChain& chain, Conn* c, uint32_t local_port, uint32_t peer_port,
                           uint16_t op, uint32_t flags, std::span<const uint8_t> payload);
  static uint32_t credit(const Conn& c);
  bool wants_read(const Conn& c) const;
  uint32_t alloc_port_locked();

  const uint64_t guest_cid_;
  const VsockOptions options_;

  mutable std::mutex mutex_;
  QueueSet queues_;  // inactive while not activated
  ChainReader reader_;  // over the tx chain being handled
  ChainWriter writer_;  // over the rx (or event) chain being filled
  std::optional<DescriptorChain> held_rx_;  // popped rx buffer not used yet
  bool rx_starved_ = false;
  bool used_[3] = {false, false, false};
  std::map<Key, Conn> conns_;
  std::map<uint32_t, std::function<void(UniqueFd)>> listeners_;
  std::function<UniqueFd(uint32_t)> connector_;
  uint64_t next_conn_id_ = 1;
  std::deque<Key> rsts_;
  uint32_t next_port_ = kFirstLocalPort;
  std::vector<uint8_t> scratch_;
  // I/O-thread handlers hold a weak_ptr: a wake-up that completes after the
  // device is gone finds it expired and touches nothing.
  std::shared_ptr<int> alive_ = std::make_shared<int>(0);
};

}  // namespace skiff::virtio
