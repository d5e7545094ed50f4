#pragma once
// A simulated guest vsock driver for tests and benchmarks: real rx/tx/event
// rings in a real GuestMemory (DriverQueue), packets written and parsed as
// the Linux driver does, the device's host ends as plain fds. Test code: a
// broken invariant throws std::runtime_error.
#include <sys/socket.h>

#include <atomic>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

#include "virtio/testing/driver_queue.h"
#include "virtio/vsock/vsock_device.h"

namespace skiff::virtio::testing {

inline constexpr uint64_t kGuestCid = 3;

inline void check(bool ok, const char* what) {
  if (!ok) throw std::runtime_error(what);
}

class CountingIrq : public DeviceInterrupt {
 public:
  void used_buffers() override { ++count; }
  void config_changed() override {}
  std::atomic<int> count{0};
};

struct Pkt {
  VsockHeader h;
  std::vector<uint8_t> data;
};

inline std::vector<uint8_t> bytes(const std::string& s) { return {s.begin(), s.end()}; }

// Everything the host end can read right now.
inline std::string read_now(int fd) {
  std::string out;
  char buf[65536];
  for (;;) {
    const ssize_t n = ::recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

// 0 when the peer closed, -1 with EAGAIN when still open with nothing to read.
inline ssize_t peek_eof(int fd) {
  char c;
  return ::recv(fd, &c, 1, MSG_DONTWAIT | MSG_PEEK);
}

inline void write_all(int fd, const std::vector<uint8_t>& data) {
  size_t off = 0;
  while (off < data.size()) {
    const ssize_t n = ::send(fd, data.data() + off, data.size() - off, MSG_NOSIGNAL);
    if (n <= 0) throw std::runtime_error("write_all: send failed");
    off += static_cast<size_t>(n);
  }
}

class VsockGuest {
 public:
  explicit VsockGuest(VsockOptions opt = {})
      : mem(GuestMemory::create({{GuestAddress(0), 8 << 20}})),
        rxq(mem, cfg(0x0), GuestAddress(0x100000), 0x200000),
        txq(mem, cfg(0x10000), GuestAddress(0x300000), 0x200000),
        evq(mem, cfg(0x20000), GuestAddress(0x500000), 0x10000),
        irq(std::make_shared<CountingIrq>()),
        dev(std::make_shared<VsockDevice>(kGuestCid, opt)) {
    std::vector<std::unique_ptr<Virtqueue>> q;
    for (uint64_t base : {0x0, 0x10000, 0x20000}) q.push_back(std::make_unique<Virtqueue>(mem, cfg(base)));
    activated = dev->activate(bit(kFeatureVersion1) | bit(kFeatureEventIdx), std::move(q), irq);
  }
  ~VsockGuest() { dev->reset(); }

  static QueueConfig cfg(uint64_t base) {
    return QueueConfig{256, GuestAddress(base), GuestAddress(base + 0x1000), GuestAddress(base + 0x2000), true};
  }

  void give_rx(size_t n, uint32_t len = 4096) {
    for (size_t i = 0; i < n; ++i) {
      std::lock_guard lock(m);
      auto c = rxq.add_chain({}, {len});
      rx_bufs[c.head] = c.writable[0];
    }
    dev->queue_notify(VsockDevice::kRxQueue);
  }

  std::vector<Pkt> take() {
    std::vector<Pkt> out;
    std::lock_guard lock(m);
    while (auto u = rxq.next_used()) {
      auto it = rx_bufs.find(static_cast<uint16_t>(u->id));
      check(it != rx_bufs.end(), "used rx entry for a buffer the guest never gave");
      check(u->len >= kVsockHeaderSize, "rx packet shorter than a header");
      auto raw = rxq.read_bytes(it->second, u->len);
      rx_bufs.erase(it);
      Pkt p;
      std::memcpy(&p.h, raw.data(), sizeof(p.h));
      p.data.assign(raw.begin() + kVsockHeaderSize, raw.end());
      check(p.h.len == p.data.size(), "rx header len differs from the used length");
      check(p.h.src_cid == kVsockHostCid && p.h.dst_cid == kGuestCid, "rx packet with wrong CIDs");
      out.push_back(std::move(p));
    }
    return out;
  }

  VsockHeader hdr(uint32_t src_port, uint32_t dst_port, uint16_t op, uint32_t flags = 0) const {
    VsockHeader h{};
    h.src_cid = kGuestCid;
    h.dst_cid = kVsockHostCid;
    h.src_port = src_port;
    h.dst_port = dst_port;
    h.type = kVsockTypeStream;
    h.op = op;
    h.flags = flags;
    h.buf_alloc = buf_alloc;
    h.fwd_cnt = fwd_cnt;
    return h;
  }

  void send(VsockHeader h, const std::vector<uint8_t>& payload = {}, bool set_len = true) {
    if (set_len) h.len = static_cast<uint32_t>(payload.size());
    std::vector<uint8_t> raw(sizeof(h));
    std::memcpy(raw.data(), &h, sizeof(h));
    raw.insert(raw.end(), payload.begin(), payload.end());
    {
      std::lock_guard lock(m);
      txq.add_chain({raw}, {});
    }
    dev->queue_notify(VsockDevice::kTxQueue);
    std::lock_guard lock(m);
    while (txq.next_used()) {
    }
  }

  // Host connects to guest port `gport`; the guest accepts.
  std::shared_ptr<VsockConnection> establish(uint32_t gport) {
    auto conn = dev->connect(gport);
    check(conn != nullptr, "connect() refused");
    auto pkts = take();
    check(pkts.size() == 1 && pkts[0].h.op == kVsockOpRequest && pkts[0].h.dst_port == gport &&
              pkts[0].h.src_port == conn->local_port(),
          "expected exactly the REQUEST for the new connection");
    send(hdr(gport, conn->local_port(), kVsockOpResponse));
    return conn;
  }

  GuestMemory mem;
  std::mutex m;  // the DriverQueues, when the device has its I/O thread
  DriverQueue rxq, txq, evq;
  std::map<uint16_t, GuestAddress> rx_bufs;
  std::shared_ptr<CountingIrq> irq;
  std::shared_ptr<VsockDevice> dev;
  bool activated = false;
  uint32_t buf_alloc = 64 * 1024;  // the guest's
  uint32_t fwd_cnt = 0;
};

inline std::string payload_of(const std::vector<Pkt>& pkts, uint16_t op = kVsockOpRw) {
  std::string s;
  for (const auto& p : pkts)
    if (p.h.op == op) s.append(p.data.begin(), p.data.end());
  return s;
}

}  // namespace skiff::virtio::testing
