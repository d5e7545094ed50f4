// The virtio-mmio register block is written by the guest: any sequence of
// accesses, at any offset and width, must leave the transport consistent and
// never crash. Input: records of [offset lo, offset hi, width/op, 4 value
// bytes]; op bit 7 selects a read.
#include <cstdint>
#include <cstring>
#include <memory>
#include <span>

#include "virtio/mmio_transport.h"
#include "virtio/testing/fake_device.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace skiff;
  static const GuestMemory mem = GuestMemory::create({{GuestAddress(0), 1 << 20}});
  auto device = std::make_shared<virtio::testing::FakeDevice>();
  virtio::MmioTransport t(mem, device, nullptr);
  constexpr size_t kRecord = 7;
  for (size_t i = 0; i + kRecord <= size; i += kRecord) {
    const uint64_t offset = (data[i] | (data[i + 1] << 8)) & 0x1ff;
    const size_t width = size_t{1} << (data[i + 2] & 3);
    uint8_t value[8] = {};
    std::memcpy(value, data + i + 3, 4);
    if (data[i + 2] & 0x80) t.read(offset, std::span(value, width));
    else t.write(offset, std::span<const uint8_t>(value, width));
    // What the transport promises whatever the guest did.
    if (t.activated() && !(t.status() & virtio::kStatusFeaturesOk)) __builtin_trap();
    if ((t.driver_features() & ~device->device_features()) && t.activated()) __builtin_trap();
  }
  return 0;
}
