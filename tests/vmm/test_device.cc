#include "tests/vmm/test_device.h"

#include <fcntl.h>
#include <unistd.h>

#include <cstring>

namespace skiff::test {
namespace {

uint64_t load_le(std::span<const uint8_t> data) {
  uint64_t v = 0;
  std::memcpy(&v, data.data(), std::min<size_t>(data.size(), 8));
  return v;
}

class ReportPort : public devices::BusDevice {
 public:
  explicit ReportPort(std::shared_ptr<Recorder> r) : r_(std::move(r)) {}
  void read(uint64_t, std::span<uint8_t> data) override { std::memset(data.data(), 0, data.size()); }
  void write(uint64_t, std::span<const uint8_t> data) override { r_->report(static_cast<uint32_t>(load_le(data))); }

 private:
  std::shared_ptr<Recorder> r_;
};

class Window : public devices::BusDevice {
 public:
  Window(std::shared_ptr<Recorder> r, uint64_t base, bool mmio) : r_(std::move(r)), base_(base), mmio_(mmio) {}
  void read(uint64_t offset, std::span<uint8_t> data) override {
    uint64_t v = mmio_ ? expected_mmio_read(base_ + offset, data.size()) : expected_pio_read(base_ + offset, data.size());
    std::memcpy(data.data(), &v, std::min<size_t>(data.size(), 8));
  }
  void write(uint64_t offset, std::span<const uint8_t> data) override {
    r_->write({base_ + offset, data.size(), load_le(data)});
  }

 private:
  std::shared_ptr<Recorder> r_;
  uint64_t base_;
  bool mmio_;
};

}  // namespace

uint64_t expected_pio_read(uint64_t port, size_t width) {
  uint64_t v = 0;
  for (size_t i = 0; i < width; ++i) v |= uint64_t(static_cast<uint8_t>((port + i) ^ 0x5a)) << (8 * i);
  return v;
}

uint64_t expected_mmio_read(uint64_t addr, size_t width) {
  uint64_t v = 0;
  for (size_t i = 0; i < width; ++i) v |= uint64_t(static_cast<uint8_t>(((addr & 0xfff) + i) ^ 0xa5)) << (8 * i);
  return v;
}

void Recorder::report(uint32_t value) {
  std::lock_guard lock(mutex_);
  reports_.push_back(value);
  cv_.notify_all();
}

void Recorder::write(const Access& a) {
  std::lock_guard lock(mutex_);
  writes_.push_back(a);
}

std::vector<uint32_t> Recorder::reports() const {
  std::lock_guard lock(mutex_);
  return reports_;
}

std::vector<Access> Recorder::writes() const {
  std::lock_guard lock(mutex_);
  return writes_;
}

bool Recorder::wait_reports(const std::function<bool(const std::vector<uint32_t>&)>& pred,
                            std::chrono::milliseconds timeout) {
  std::unique_lock lock(mutex_);
  return cv_.wait_for(lock, timeout, [&] { return pred(reports_); });
}

void attach_test_devices(Machine& vm, std::shared_ptr<Recorder> recorder) {
  vm.pio_bus().insert(std::make_shared<ReportPort>(recorder), kReportPort, 4);
  vm.pio_bus().insert(std::make_shared<Window>(recorder, kPioWindow, false), kPioWindow, kPioWindowLen);
  vm.mmio_bus().insert(std::make_shared<Window>(recorder, kMmioWindow, true), kMmioWindow, kMmioWindowLen);
}

VmConfig guest_config(const std::string& kernel, uint32_t vcpus) {
  VmConfig c;
  c.kernel_path = kernel;
  c.memory_mib = 64;
  c.vcpus = vcpus;
  c.console.mode = ConsoleMode::None;
  return c;
}

std::optional<VmExit> run_to_exit(Machine& vm) {
  vm.start();
  auto exit = vm.wait_for(kGuestTimeout);
  if (!exit) vm.stop();
  return exit;
}

std::string kvm_unavailable_reason() {
  int fd = ::open("/dev/kvm", O_RDWR | O_CLOEXEC);
  if (fd < 0) return std::string("kvm test skipped: open /dev/kvm: ") + std::strerror(errno);
  ::close(fd);
  return "";
}

}  // namespace skiff::test
