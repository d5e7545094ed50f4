// libFuzzer target for the legacy port-I/O devices: a 16550A and an i8042.
//
// Input: a sequence of 4-byte records (op, offset, width, value).
//   op & 3:  0 read serial, 1 write serial, 2 read i8042, 3 write i8042
//   op & 4:  instead, enqueue `width` * 16 + 1 copies of `value` as serial input
//            (up to 241 bytes, so repeated enqueues overflow the buffer)
//   op & 8:  instead (if bit 2 is clear), inject Ctrl+Alt+Del into the i8042
//   offset:  0-255, so accesses past both devices are exercised
//   width:   taken mod 9 (0-8 bytes); writes repeat `value`
// A trailing partial record is ignored. Seeds in fuzz/corpus/serial/ were made
// with printf, e.g. the Linux 8250 init: LCR=0x83, DLL=1, DLM=0, LCR=3, FCR=0xc7,
// MCR=0x0b, IER=0x07, THR='h':
//   printf '\x01\x03\x01\x83\x01\x00\x01\x01...' > fuzz/corpus/serial/linux_init
//
// Checked beyond "no crash / no sanitizer report": LSR always has THRE|TEMT,
// IIR always names a valid source, and the reset callback fires exactly once
// per 0xFE written to the i8042 command port.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <span>
#include <vector>

#include "devices/i8042.h"
#include "devices/serial.h"

namespace {

using skiff::devices::I8042;
using skiff::devices::InterruptLine;
using skiff::devices::NullSerialOutput;
using skiff::devices::Serial;

class NullLine final : public InterruptLine {
 public:
  void trigger() override {}
};

void check(bool ok) {
  if (!ok) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Serial serial(std::make_shared<NullSerialOutput>(), std::make_shared<NullLine>());
  uint64_t resets = 0;
  I8042 i8042([&] { ++resets; }, std::make_shared<NullLine>());
  uint64_t expected_resets = 0;
  uint8_t buf[8];

  for (size_t i = 0; i + 4 <= size; i += 4) {
    const uint8_t op = data[i], offset = data[i + 1], value = data[i + 3];
    const size_t width = data[i + 2] % 9;
    std::span<uint8_t> access(buf, width);
    if (op & 4) {
      std::vector<uint8_t> input(width * 16 + 1, value);
      serial.enqueue_input(input);
      continue;
    }
    if (op & 8) {
      i8042.send_ctrl_alt_del();
      continue;
    }
    switch (op & 3) {
      case 0:
        serial.read(offset, access);
        if (width > 0 && offset == 2) {
          const uint8_t id = buf[0] & 0x0f;
          check((buf[0] & 0x30) == 0 && (id == 1 || id == 2 || id == 4 || id == 6));
        }
        break;
      case 1:
        std::fill(access.begin(), access.end(), value);
        serial.write(offset, access);
        break;
      case 2:
        i8042.read(offset, access);
        break;
      case 3:
        std::fill(access.begin(), access.end(), value);
        i8042.write(offset, access);
        if (width > 0 && offset == I8042::kCommandOffset && value == 0xfe) ++expected_resets;
        break;
    }
    uint8_t lsr = 0;
    serial.read(5, std::span(&lsr, 1));
    check((lsr & 0x60) == 0x60);
  }
  check(resets == expected_resets && i8042.reset_count() == expected_resets);
  return 0;
}
