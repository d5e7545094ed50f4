#pragma once
// The host side of the test guests' ports (tests/guest/guest.h): a report
// port, a PIO window and an MMIO window that record every access and answer
// reads with a known pattern, and a harness that boots a guest with them.
#include <chrono>
#include <ostream>
#include <condition_variable>
#include <functional>
#include <optional>
#include <mutex>
#include <string>
#include <vector>

#include "devices/bus.h"
#include "vmm/machine.h"

namespace skiff::test {

inline constexpr uint64_t kReportPort = 0x510;
inline constexpr uint64_t kPioWindow = 0x518;
inline constexpr uint64_t kPioWindowLen = 8;
inline constexpr uint64_t kMmioWindow = 0xd0000000;
inline constexpr uint64_t kMmioWindowLen = 0x1000;
inline constexpr uint64_t kIoeventPort = 0x520;
inline constexpr uint64_t kIoeventMmio = 0xd0001000;

struct Access {
  uint64_t addr;
  size_t width;
  uint64_t value;
  bool operator==(const Access&) const = default;
};

// Reads of the PIO window return (port + i) ^ 0x5a per byte, of the MMIO
// window ((addr & 0xfff) + i) ^ 0xa5.
uint64_t expected_pio_read(uint64_t port, size_t width);
uint64_t expected_mmio_read(uint64_t addr, size_t width);

class Recorder {
 public:
  void report(uint32_t value);
  void write(const Access& a);
  std::vector<uint32_t> reports() const;
  std::vector<Access> writes() const;
  // Waits until `pred(reports)` holds; false on timeout.
  bool wait_reports(const std::function<bool(const std::vector<uint32_t>&)>& pred, std::chrono::milliseconds timeout);

 private:
  mutable std::mutex mutex_;
  std::condition_variable cv_;
  std::vector<uint32_t> reports_;
  std::vector<Access> writes_;
};

// Adds the report port and both windows to `vm`'s buses.
void attach_test_devices(Machine& vm, std::shared_ptr<Recorder> recorder);

// A VmConfig for a test guest: no console, 64 MiB, `vcpus` vCPUs.
VmConfig guest_config(const std::string& kernel, uint32_t vcpus = 1);

// Guests run slowly under PVM's emulation; give them this long.
inline constexpr std::chrono::seconds kGuestTimeout{60};

// Starts `vm` and waits for the guest to end it; after kGuestTimeout stops
// the VM and returns nullopt.
std::optional<VmExit> run_to_exit(Machine& vm);

// Skips the test when this machine has no usable /dev/kvm.
#define SKIFF_REQUIRE_KVM()                                                    \
  do {                                                                         \
    if (auto why = ::skiff::test::kvm_unavailable_reason(); !why.empty())      \
      GTEST_SKIP() << why;                                                     \
  } while (0)
std::string kvm_unavailable_reason();

}  // namespace skiff::test

namespace skiff {
// Readable VmExitKind in test failure messages.
inline void PrintTo(VmExitKind k, std::ostream* os) { *os << to_string(k); }
}  // namespace skiff
