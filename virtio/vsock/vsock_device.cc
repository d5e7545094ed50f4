#include "virtio/vsock/vsock_device.h"

#include <fcntl.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <system_error>

#include "base/io_thread.h"

namespace skiff::virtio {
namespace {

constexpr uint32_t kPendRequest = 1, kPendResponse = 2, kPendShutdown = 4, kPendCreditUpdate = 8;

}  // namespace

VsockDevice::VsockDevice(uint64_t guest_cid, VsockOptions options)
    : guest_cid_(guest_cid), options_(options), scratch_(kVsockMaxPayload) {}

VsockDevice::~VsockDevice() {
  if (!options_.io) return;
  // On the I/O thread no handler is running; those still queued see alive_ expired.
  options_.io->run_sync([this] {
    std::lock_guard lock(mutex_);
    conns_.clear();
    alive_.reset();
  });
}

uint64_t VsockDevice::device_features() const {
  return bit(kFeatureVersion1) | bit(kFeatureEventIdx) | bit(kFeatureIndirectDesc);
}

// struct virtio_vsock_config: le64 guest_cid.
void VsockDevice::read_config(uint64_t offset, std::span<uint8_t> data) {
  uint8_t cid[8];
  for (size_t i = 0; i < 8; ++i) cid[i] = static_cast<uint8_t>(guest_cid_ >> (8 * i));
  read_config_window(cid, offset, data);
}

bool VsockDevice::activate(uint64_t features, std::vector<std::unique_ptr<Virtqueue>> queues,
                           std::shared_ptr<DeviceInterrupt> interrupt) {
  if (!(features & bit(kFeatureVersion1))) return false;
  Deferred d;
  {
    std::lock_guard lock(mutex_);
    // rx and tx must be there; the event queue may be left disabled.
    if (!queues_.activate(3, bit(kRxQueue) | bit(kTxQueue), std::move(queues), std::move(interrupt))) return false;
    held_rx_.reset();
    rx_starved_ = false;
    // Host-initiated connections made before activation go out now.
    service_locked();
    finish_locked(d);
    arm_locked();
  }
  d.run();
  return true;
}

void VsockDevice::queue_notify(size_t queue) {
  Deferred d;
  {
    std::lock_guard lock(mutex_);
    if (!queues_.active()) return;
    if (queue == kRxQueue) rx_starved_ = false;
    if (queue == kTxQueue) process_tx_locked(d);
    service_locked();
    finish_locked(d);
    arm_locked();
  }
  d.run();
}

void VsockDevice::reset() {
  {
    std::lock_guard lock(mutex_);
    held_rx_.reset();
    queues_.reset();
    conns_.clear();  // closes the device ends: host ends see EOF
    rsts_.clear();
    rx_starved_ = false;
    std::fill(std::begin(used_), std::end(used_), false);
  }
}

std::shared_ptr<VsockConnection> VsockDevice::connect(uint32_t guest_port) {
  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
    throw std::system_error(errno, std::generic_category(), "vsock: socketpair");
  UniqueFd host(sv[0]), dev(sv[1]);
  const auto port = connect_stream(guest_port, std::move(dev), false);
  if (!port) return nullptr;
  return std::make_shared<VsockConnection>(std::move(host), *port, guest_port);
}

std::optional<uint32_t> VsockDevice::connect_stream(uint32_t guest_port, UniqueFd stream, bool ok_line) {
  Deferred d;
  uint32_t port;
  {
    std::lock_guard lock(mutex_);
    if (conns_.size() >= options_.max_connections) return std::nullopt;
    port = alloc_port_locked();
    Conn& c = add_conn_locked(port, guest_port, std::move(stream));
    c.pending = kPendRequest;
    c.ok_line = ok_line;
    if (queues_.active()) {
      service_locked();
      finish_locked(d);
      arm_locked();
    }
  }
  d.run();
  return port;
}

VsockDevice::Conn& VsockDevice::add_conn_locked(uint32_t local_port, uint32_t peer_port, UniqueFd fd) {
  const int fl = ::fcntl(fd.get(), F_GETFL);
  if (fl >= 0) ::fcntl(fd.get(), F_SETFL, fl | O_NONBLOCK);
  Conn c;
  c.id = next_conn_id_++;
  c.local_port = local_port;
  c.peer_port = peer_port;
  c.fd = std::move(fd);
  return conns_.insert_or_assign(Key{local_port, peer_port}, std::move(c)).first->second;
}

void VsockDevice::set_connector(std::function<UniqueFd(uint32_t)> connector) {
  std::lock_guard lock(mutex_);
  connector_ = std::move(connector);
}

void VsockDevice::listen(uint32_t host_port, std::function<void(UniqueFd)> on_accept) {
  std::lock_guard lock(mutex_);
  listeners_[host_port] = std::move(on_accept);
}

void VsockDevice::unlisten(uint32_t host_port) {
  std::lock_guard lock(mutex_);
  listeners_.erase(host_port);
}

bool VsockDevice::transport_reset() {
  Deferred d;
  bool sent = false;
  {
    std::lock_guard lock(mutex_);
    conns_.clear();
    rsts_.clear();
    if (!queues_.active()) return false;
    while (auto chain = queues_.pop(kEventQueue)) {
      used_[kEventQueue] = true;
      if (chain->ok() && chain->writable_bytes() >= sizeof(VsockEvent)) {
        writer_.assign(queues_.memory(), *chain);
        writer_.write_obj(VsockEvent{kVsockEventTransportReset});
        queues_.add_used(kEventQueue, chain->head, sizeof(VsockEvent));
        sent = true;
        break;
      }
      queues_.add_used(kEventQueue, chain->head, 0);
    }
    finish_locked(d);
  }
  d.run();
  return sent;
}

void VsockDevice::pump() {
  Deferred d;
  {
    std::lock_guard lock(mutex_);
    if (!queues_.active()) return;
    service_locked();
    finish_locked(d);
  }
  d.run();
}

size_t VsockDevice::connection_count() const {
  std::lock_guard lock(mutex_);
  return conns_.size();
}

void VsockDevice::Deferred::run() {
  for (auto& [cb, fd] : accepts)
    if (cb) cb(std::move(fd));
  if (irq) irq->used_buffers();
}

void VsockDevice::finish_locked(Deferred& d) {
  bool notify = false;
  for (size_t q = 0; q < 3; ++q) {
    if (!used_[q]) continue;
    used_[q] = false;
    notify |= queues_.needs_notification(q);
  }
  if (notify) d.irq = queues_.interrupt();
}

void VsockDevice::arm_locked() {
  if (!options_.io || !queues_.active()) return;
  // Not a structured binding: clang 14 can't capture those in the lambda below.
  for (auto& entry : conns_) {
    const Key key = entry.first;
    Conn& c = entry.second;
    const bool want_read = !c.read_armed && wants_read(c) && !rx_starved_;
    const bool want_write = !c.write_armed && c.host_out_pending();
    if (!want_read && !want_write) continue;
    if (!c.watch) c.watch = options_.io->watch_fd(c.fd.get());
    auto arm = [&](bool readable) {
      (readable ? c.read_armed : c.write_armed) = true;
      c.watch->wait(readable ? EventLoop::Ready::Readable : EventLoop::Ready::Writable,
                    [this, alive = std::weak_ptr<int>(alive_), key, id = c.id, readable] {
                      if (alive.expired()) return;
                      on_stream_ready(key, id, readable);
                    });
    };
    if (want_read) arm(true);
    if (want_write) arm(false);
  }
}

void VsockDevice::on_stream_ready(const Key& key, uint64_t id, bool readable) {
  Deferred d;
  {
    std::lock_guard lock(mutex_);
    auto it = conns_.find(key);
    if (it == conns_.end() || it->second.id != id) return;
    (readable ? it->second.read_armed : it->second.write_armed) = false;
    if (!queues_.active()) return;
    service_locked();
    finish_locked(d);
    arm_locked();
  }
  d.run();
}

uint32_t VsockDevice::credit(const Conn& c) {
  const uint32_t in_flight = c.tx_cnt - c.peer_fwd_cnt;
  return in_flight >= c.peer_buf_alloc ? 0 : c.peer_buf_alloc - in_flight;
}

bool VsockDevice::wants_read(const Conn& c) const {
  return c.state == State::kEstablished && !c.host_eof && !(c.peer_shutdown & kVsockShutdownRcv) && credit(c) > 0;
}

uint32_t VsockDevice::alloc_port_locked() {
  // Bounded: at most max_connections ports are in use.
  for (;;) {
    const uint32_t p = next_port_;
    next_port_ = next_port_ == UINT32_MAX ? kFirstLocalPort : next_port_ + 1;
    auto it = conns_.lower_bound(Key{p, 0});
    const bool used = (it != conns_.end() && it->first.first == p) || listeners_.count(p);
    if (!used) return p;
  }
}

void VsockDevice::queue_rst_locked(uint32_t local_port, uint32_t peer_port) {
  if (rsts_.size() < options_.max_queued_rsts) rsts_.emplace_back(local_port, peer_port);
}

void VsockDevice::reset_conn_locked(const Key& key, bool send_rst) {
  if (conns_.erase(key) && send_rst) queue_rst_locked(key.first, key.second);
}

void VsockDevice::process_tx_locked(Deferred& d) {
  while (auto chain = queues_.pop(kTxQueue)) {
    if (chain->ok() && chain->readable_bytes() >= kVsockHeaderSize) {
      reader_.assign(queues_.memory(), *chain);
      VsockHeader h;
      reader_.read_obj(h);
      handle_packet_locked(h, *chain, d);
    }
    queues_.add_used(kTxQueue, chain->head, 0);
    used_[kTxQueue] = true;
  }
}

void VsockDevice::handle_packet_locked(const VsockHeader& h, const DescriptorChain& chain, Deferred& d) {
  // Not from our guest or not for the host: nobody to answer.
  if (h.src_cid != guest_cid_ || h.dst_cid != kVsockHostCid) return;
  const uint32_t local = h.dst_port, peer = h.src_port;
  const uint16_t op = h.op;
  const uint32_t len = h.len;
  const Key key{local, peer};
  auto it = conns_.find(key);
  const bool bad = h.type != kVsockTypeStream || op == kVsockOpInvalid || op > kVsockOpCreditRequest ||
                   len > kVsockMaxPayload || len > chain.readable_bytes() - kVsockHeaderSize ||
                   (len != 0 && op != kVsockOpRw);
  if (bad) {
    if (it != conns_.end()) reset_conn_locked(key, true);
    else if (op != kVsockOpRst) queue_rst_locked(local, peer);
    return;
  }
  if (it == conns_.end()) {
    if (op == kVsockOpRequest) {
      auto l = listeners_.find(local);
      if ((l == listeners_.end() && !connector_) || conns_.size() >= options_.max_connections) {
        queue_rst_locked(local, peer);
        return;
      }
      UniqueFd host, dev;
      if (l != listeners_.end()) {
        int sv[2];
        if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
          queue_rst_locked(local, peer);
          return;
        }
        host.reset(sv[0]);
        dev.reset(sv[1]);
      } else {
        dev = connector_(local);
        if (!dev) {
          queue_rst_locked(local, peer);
          return;
        }
      }
      Conn& c = add_conn_locked(local, peer, std::move(dev));
      c.state = State::kEstablished;
      c.peer_buf_alloc = h.buf_alloc;
      c.peer_fwd_cnt = h.fwd_cnt;
      c.pending = kPendResponse;
      if (host) d.accepts.emplace_back(l->second, std::move(host));
    } else if (op != kVsockOpRst) {
      queue_rst_locked(local, peer);
    }
    return;
  }
  Conn& c = it->second;
  c.peer_buf_alloc = h.buf_alloc;
  c.peer_fwd_cnt = h.fwd_cnt;
  switch (op) {
    case kVsockOpRequest:  // for a connection that already exists
      reset_conn_locked(key, true);
      return;
    case kVsockOpResponse:
      if (c.state != State::kConnecting) {
        reset_conn_locked(key, true);
        return;
      }
      c.state = State::kEstablished;
      if (c.ok_line) {
        c.host_prefix = "OK " + std::to_string(c.local_port) + "\n";
        flush_host_out_locked(c);
      }
      return;
    case kVsockOpRst:
      reset_conn_locked(key, false);
      return;
    case kVsockOpShutdown:
      if (c.state == State::kConnecting) {
        reset_conn_locked(key, true);
        return;
      }
      c.peer_shutdown |= h.flags & (kVsockShutdownRcv | kVsockShutdownSend);
      maybe_finish_locked(c);
      return;
    case kVsockOpRw: {
      if (c.state == State::kConnecting || (c.peer_shutdown & kVsockShutdownSend) || c.host_shut_wr ||
          c.host_out_size() + len > options_.buf_alloc) {
        reset_conn_locked(key, true);  // no connection yet, data after SHUTDOWN, or credit ignored
        return;
      }
      const size_t old = c.host_out.size();
      c.host_out.resize(old + len);
      reader_.read_some(std::span(c.host_out.data() + old, len));  // right after the header
      c.rx_cnt += len;
      if (flush_host_out_locked(c)) maybe_finish_locked(c);
      return;
    }
    case kVsockOpCreditUpdate:
      return;
    case kVsockOpCreditRequest:
      c.pending |= kPendCreditUpdate;
      return;
  }
}

bool VsockDevice::flush_host_out_locked(Conn& c) {
  while (!c.host_prefix.empty()) {
    const ssize_t n = ::send(c.fd.get(), c.host_prefix.data(), c.host_prefix.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n > 0) {
      c.host_prefix.erase(0, static_cast<size_t>(n));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return true;
    reset_conn_locked(Key{c.local_port, c.peer_port}, true);
    return false;
  }
  while (c.host_out_size() > 0) {
    const ssize_t n = ::send(c.fd.get(), c.host_out.data() + c.host_out_head, c.host_out_size(),
                             MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n > 0) {
      c.host_out_head += static_cast<size_t>(n);
      c.fwd_cnt += static_cast<uint32_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
    reset_conn_locked(Key{c.local_port, c.peer_port}, true);  // the host end is gone
    return false;
  }
  if (c.host_out_size() == 0) {
    c.host_out.clear();
    c.host_out_head = 0;
  } else if (c.host_out_head > c.host_out.size() / 2) {
    c.host_out.erase(c.host_out.begin(), c.host_out.begin() + static_cast<ptrdiff_t>(c.host_out_head));
    c.host_out_head = 0;
  }
  if (c.fwd_cnt - c.last_sent_fwd_cnt >= options_.buf_alloc / 4) c.pending |= kPendCreditUpdate;
  return true;
}

bool VsockDevice::maybe_finish_locked(Conn& c) {
  if (c.host_out_pending()) return true;
  if ((c.peer_shutdown & kVsockShutdownSend) && !c.host_shut_wr) {
    ::shutdown(c.fd.get(), SHUT_WR);
    c.host_shut_wr = true;
  }
  if (c.peer_shutdown == (kVsockShutdownRcv | kVsockShutdownSend)) {
    reset_conn_locked(Key{c.local_port, c.peer_port}, true);  // both directions done: RST closes it
    return false;
  }
  return true;
}

std::optional<DescriptorChain> VsockDevice::take_rx_locked() {
  if (held_rx_) {
    auto c = std::move(held_rx_);
    held_rx_.reset();
    return c;
  }
  while (auto chain = queues_.pop(kRxQueue)) {
    if (chain->ok() && chain->writable_bytes() >= kVsockHeaderSize + 1) return chain;
    queues_.add_used(kRxQueue, chain->head, 0);  // unusable buffer
    used_[kRxQueue] = true;
  }
  rx_starved_ = true;
  return std::nullopt;
}

void VsockDevice::write_packet_locked(const DescriptorChain& chain, Conn* c, uint32_t local_port, uint32_t peer_port,
                                      uint16_t op, uint32_t flags, std::span<const uint8_t> payload) {
  VsockHeader h{};
  h.src_cid = kVsockHostCid;
  h.dst_cid = guest_cid_;
  h.src_port = local_port;
  h.dst_port = peer_port;
  h.len = static_cast<uint32_t>(payload.size());
  h.type = kVsockTypeStream;
  h.op = op;
  h.flags = flags;
  if (c) {
    h.buf_alloc = options_.buf_alloc;
    h.fwd_cnt = c->fwd_cnt;
    c->last_sent_fwd_cnt = c->fwd_cnt;
    c->pending &= ~kPendCreditUpdate;  // every header carries our credit
  }
  writer_.assign(queues_.memory(), chain);
  writer_.write_obj(h);
  writer_.write_some(payload);
  queues_.add_used(kRxQueue, chain.head, static_cast<uint32_t>(kVsockHeaderSize + payload.size()));
  used_[kRxQueue] = true;
}

void VsockDevice::service_locked() {
  for (auto it = conns_.begin(); it != conns_.end();) {
    auto next = std::next(it);
    if (it->second.host_out_pending() && flush_host_out_locked(it->second)) maybe_finish_locked(it->second);
    it = next;
  }
  flush_rx_locked();
}

void VsockDevice::flush_rx_locked() {
  if (!queues_.usable(kRxQueue)) return;
  while (!rsts_.empty()) {
    auto chain = take_rx_locked();
    if (!chain) return;
    const Key k = rsts_.front();
    rsts_.pop_front();
    write_packet_locked(*chain, nullptr, k.first, k.second, kVsockOpRst, 0, {});
  }
  // Round robin: at most one packet per connection per round.
  for (bool progress = true; progress;) {
    progress = false;
    for (auto it = conns_.begin(); it != conns_.end();) {
      auto next = std::next(it);
      Conn& c = it->second;
      const bool has_ctrl = c.pending != 0;
      const bool can_data = wants_read(c);
      if (!has_ctrl && !can_data) {
        it = next;
        continue;
      }
      auto chain = take_rx_locked();
      if (!chain) return;
      if (has_ctrl) {
        uint16_t op;
        uint32_t flags = 0;
        if (c.pending & kPendRequest) {
          op = kVsockOpRequest;
          c.pending &= ~kPendRequest;
        } else if (c.pending & kPendResponse) {
          op = kVsockOpResponse;
          c.pending &= ~kPendResponse;
        } else if (c.pending & kPendShutdown) {
          op = kVsockOpShutdown;
          flags = kVsockShutdownRcv | kVsockShutdownSend;
          c.pending &= ~kPendShutdown;
        } else {
          op = kVsockOpCreditUpdate;
        }
        write_packet_locked(*chain, &c, c.local_port, c.peer_port, op, flags, {});
        progress = true;
        it = next;
        continue;
      }
      const size_t room = std::min<uint64_t>(
          {chain->writable_bytes() - kVsockHeaderSize, credit(c), static_cast<uint64_t>(kVsockMaxPayload)});
      const ssize_t n = ::recv(c.fd.get(), scratch_.data(), room, MSG_DONTWAIT);
      if (n > 0) {
        write_packet_locked(*chain, &c, c.local_port, c.peer_port, kVsockOpRw, 0,
                            std::span<const uint8_t>(scratch_.data(), static_cast<size_t>(n)));
        c.tx_cnt += static_cast<uint32_t>(n);
        progress = true;
      } else if (n == 0) {
        // The host closed (or shut down writing): tell the guest; it answers RST.
        c.host_eof = true;
        c.state = State::kClosing;
        write_packet_locked(*chain, &c, c.local_port, c.peer_port, kVsockOpShutdown,
                            kVsockShutdownRcv | kVsockShutdownSend, {});
        progress = true;
      } else {
        held_rx_ = std::move(chain);
        if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
          reset_conn_locked(it->first, true);
          progress = true;
        }
      }
      it = next;
    }
  }
}

}  // namespace skiff::virtio
