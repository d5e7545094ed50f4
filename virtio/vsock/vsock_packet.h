#pragma once
// virtio-vsock wire format (virtio 1.2, section 5.10; Linux
// include/uapi/linux/virtio_vsock.h). Little-endian guest, x86-64 host: the
// packed struct is the wire layout.
#include <cstdint>

namespace skiff::virtio {

inline constexpr uint32_t kVsockDeviceType = 19;
inline constexpr uint64_t kVsockHostCid = 2;
inline constexpr uint16_t kVsockTypeStream = 1;

inline constexpr uint16_t kVsockOpInvalid = 0;
inline constexpr uint16_t kVsockOpRequest = 1;
inline constexpr uint16_t kVsockOpResponse = 2;
inline constexpr uint16_t kVsockOpRst = 3;
inline constexpr uint16_t kVsockOpShutdown = 4;
inline constexpr uint16_t kVsockOpRw = 5;
inline constexpr uint16_t kVsockOpCreditUpdate = 6;
inline constexpr uint16_t kVsockOpCreditRequest = 7;

inline constexpr uint32_t kVsockShutdownRcv = 1;
inline constexpr uint32_t kVsockShutdownSend = 2;

inline constexpr uint32_t kVsockEventTransportReset = 0;

// Largest payload the device accepts in (or puts into) one packet.
inline constexpr uint32_t kVsockMaxPayload = 64 * 1024;

struct [[gnu::packed]] VsockHeader {
  uint64_t src_cid;
  uint64_t dst_cid;
  uint32_t src_port;
  uint32_t dst_port;
  uint32_t len;
  uint16_t type;
  uint16_t op;
  uint32_t flags;
  uint32_t buf_alloc;
  uint32_t fwd_cnt;
};
static_assert(sizeof(VsockHeader) == 44);
inline constexpr uint32_t kVsockHeaderSize = sizeof(VsockHeader);

struct [[gnu::packed]] VsockEvent {
  uint32_t id;
};
static_assert(sizeof(VsockEvent) == 4);

}  // namespace skiff::virtio
