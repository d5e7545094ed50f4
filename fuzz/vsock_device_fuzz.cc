// libFuzzer target for the virtio-vsock device model: a hostile guest driver.
//
// Guest RAM is 1 MiB at 0 (created once, zeroed per input). The rx, tx and
// event queues (16 entries each) sit at 0x0, 0x1000 and 0x2000, laid out by the
// DriverQueue simulator; buffers come from 0x10000 upwards. The device runs
// without its I/O thread (everything is driven from here) with two host
// connections: one host-initiated (to guest port 5000) and a listener on
// host port 80 that keeps the accepted ends.
// Input: a sequence of records, each starting with a kind byte:
//   0: tx packet: 44 header bytes, 1 byte payload length, payload. Unless bit 7
//      of the kind byte is set, src_cid/dst_cid are made valid (3 / 2), so the
//      fuzzer reaches the connection logic.
//   1: rx buffer: 1 byte size (size*4 bytes, 0 included), then notify rx.
//   2: host write: 1 byte selects the host end, 1 byte length (filled with it).
//   3: host close of one end (1 byte selector).
//   4: transport_reset(); 5: event buffer; 6: pump();
//   7: raw guest memory write: 2 bytes offset (into the first 12 KiB: the
//      rings), 1 byte length, bytes.
// No crash, no hang, no leak; checks: every used rx element is no longer than
// its buffer (until the rings are scribbled on).
// Seeds in fuzz/corpus/vsock_device/ are made by fuzz/vsock_device_seeds.py.
#include <sys/socket.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <vector>

#include "virtio/testing/driver_queue.h"
#include "virtio/vsock/vsock_device.h"
#include "virtio/vsock/vsock_unix_socket.h"
#include "memory/guest_memory.h"

namespace {

using skiff::GuestAddress;
using skiff::GuestMemory;
using skiff::UniqueFd;
using namespace skiff::virtio;
using skiff::virtio::testing::DriverQueue;

constexpr uint64_t kRam = 1 << 20;
constexpr uint64_t kGuestCid = 3;
constexpr uint16_t kQsize = 16;

void check(bool ok) {
  if (!ok) std::abort();
}

const GuestMemory& memory() {
  static const GuestMemory mem = GuestMemory::create({{GuestAddress(0), kRam}});
  return mem;
}

class NullIrq : public DeviceInterrupt {
 public:
  void used_buffers() override {}
  void config_changed() override {}
};

QueueConfig qcfg(uint64_t base) {
  return QueueConfig{kQsize, GuestAddress(base), GuestAddress(base + 0x100), GuestAddress(base + 0x200), true};
}

void drain(int fd) {
  uint8_t buf[4096];
  while (fd >= 0 && ::recv(fd, buf, sizeof(buf), MSG_DONTWAIT) > 0) {
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // The Unix socket front end's "CONNECT <port>" line parser sees host
  // bytes; the same input exercises it (the front end reads at most kMaxLine).
  {
    std::string_view line(reinterpret_cast<const char*>(data), std::min(size, VsockUnixSocket::kMaxLine));
    if (parse_vsock_connect_line(line)) {
      // Accepted only as "CONNECT " + digits (+ "\r").
      if (line.back() == '\r') line.remove_suffix(1);
      check(line.substr(0, 8) == "CONNECT " && line.size() > 8 &&
            line.find_first_not_of("0123456789", 8) == std::string_view::npos);
    }
  }
  const GuestMemory& mem = memory();
  mem.fill(GuestAddress(0), kRam, 0);
  DriverQueue rxq(mem, qcfg(0x0), GuestAddress(0x10000), 0x40000);
  DriverQueue txq(mem, qcfg(0x1000), GuestAddress(0x50000), 0x40000);
  DriverQueue evq(mem, qcfg(0x2000), GuestAddress(0x90000), 0x1000);

  std::vector<UniqueFd> accepted;  // destroyed after the device (declared first)
  VsockOptions opt;
  opt.max_connections = 8;
  opt.max_queued_rsts = 8;
  auto dev = std::make_shared<VsockDevice>(kGuestCid, opt);
  std::vector<std::unique_ptr<Virtqueue>> queues;
  for (uint64_t base : {0x0, 0x1000, 0x2000}) queues.push_back(std::make_unique<Virtqueue>(mem, qcfg(base)));
  check(dev->activate(bit(kFeatureVersion1) | bit(kFeatureEventIdx), std::move(queues), std::make_shared<NullIrq>()));
  dev->listen(80, [&accepted](UniqueFd fd) { accepted.push_back(std::move(fd)); });
  auto conn = dev->connect(5000);
  check(conn != nullptr);
  std::map<uint16_t, uint32_t> rx_lens;  // head -> buffer size
  bool scribbled = false;
  uint16_t rx_used = 0;

  size_t i = 0;
  auto take = [&](size_t n) -> const uint8_t* {
    if (size - i < n) return nullptr;
    const uint8_t* p = data + i;
    i += n;
    return p;
  };
  auto host_fd = [&](uint8_t sel) -> int {
    if (sel % 4 == 0 || accepted.empty()) return conn->fd();
    return accepted[sel % accepted.size()].get();
  };
  for (int records = 0; i < size && records < 256; ++records) {
    const uint8_t kind = data[i++];
    switch (kind & 0x7f) {
      case 0: {
        const uint8_t* h = take(kVsockHeaderSize + 1);
        if (!h) break;
        VsockHeader hdr;
        std::memcpy(&hdr, h, sizeof(hdr));
        if (!(kind & 0x80)) {
          hdr.src_cid = kGuestCid;
          hdr.dst_cid = kVsockHostCid;
        }
        const size_t len = std::min<size_t>(h[kVsockHeaderSize], size - i);
        std::vector<uint8_t> bytes(sizeof(hdr) + len);
        std::memcpy(bytes.data(), &hdr, sizeof(hdr));
        std::memcpy(bytes.data() + sizeof(hdr), data + i, len);
        i += len;
        txq.add_chain({bytes}, {});
        dev->queue_notify(VsockDevice::kTxQueue);
        break;
      }
      case 1: {
        const uint8_t* p = take(1);
        if (!p) break;
        const uint32_t len = *p * 4u;
        // Not more buffers in flight than the ring holds: DriverQueue would
        // reuse descriptors the device still owns (a guest bug the device
        // survives, but then the used lengths checked below mean nothing).
        if (static_cast<uint16_t>(rxq.avail_idx() - rx_used) >= kQsize) break;
        if (len == 0) {
          rxq.add_chain({{1}}, {});  // read-only: unusable for rx
        } else {
          auto c = rxq.add_chain({}, {len});
          rx_lens[c.head] = len;
        }
        dev->queue_notify(VsockDevice::kRxQueue);
        break;
      }
      case 2: {
        const uint8_t* p = take(2);
        if (!p) break;
        const int fd = host_fd(p[0]);
        std::vector<uint8_t> bytes(p[1], p[1]);
        if (fd >= 0) [[maybe_unused]] ssize_t n = ::send(fd, bytes.data(), bytes.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
        dev->pump();
        break;
      }
      case 3: {
        const uint8_t* p = take(1);
        if (!p) break;
        if (p[0] % 4 == 0 || accepted.empty()) conn->close();
        else accepted[p[0] % accepted.size()].reset();
        dev->pump();
        break;
      }
      case 4:
        dev->transport_reset();
        break;
      case 5:
        evq.add_chain({}, {4});
        break;
      case 6:
        dev->pump();
        break;
      case 7: {
        const uint8_t* p = take(3);
        if (!p) break;
        const uint16_t off = static_cast<uint16_t>((p[0] | p[1] << 8) % 0x3000);
        const size_t len = std::min<size_t>({p[2], size - i, 0x3000u - off});
        scribbled = true;
        mem.write(GuestAddress(off), std::span<const uint8_t>(data + i, len));
        i += len;
        dev->queue_notify(kind % 3);
        break;
      }
      default:
        break;
    }
    // The guest reads what the device wrote.
    while (auto used = rxq.next_used()) {
      ++rx_used;
      auto it = rx_lens.find(static_cast<uint16_t>(used->id));
      if (it == rx_lens.end()) continue;  // rings were scribbled on
      check(scribbled || used->len <= it->second);
      rx_lens.erase(it);
    }
    drain(conn->fd());
    for (const auto& fd : accepted) drain(fd.get());
  }
  dev->reset();
  return 0;
}
