#pragma once
// A KVM virtual machine booted from a kernel image: guest memory, the
// in-kernel irqchip and PIT, legacy devices, vCPU threads and their
// lifecycle (start, pause, resume, stop). Construction does the whole set-up
// and validation; start() enters the guest.
#include <atomic>
#include <chrono>
#include <memory>
#include <optional>
#include <vector>

#include "devices/bus.h"
#include "devices/interrupts.h"
#include "devices/serial.h"
#include "vmm/boot/kernel_image.h"
#include "virtio/mmio_transport.h"
#include "virtio/vsock/vsock_device.h"
#include "virtio/vsock/vsock_unix_socket.h"
#include "vmm/console.h"
#include "base/io_thread.h"
#include "memory/guest_memory.h"
#include "kvm/kvm.h"
#include "vmm/run_control.h"
#include "vmm/vcpu_thread.h"
#include "vmm/vm_config.h"

namespace skiff {

class ConfigError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Throws ConfigError with one clear line for sizes no VM can have.
void validate_config(const VmConfig& config, const kvm::System& kvm);

enum class VmState { Created, Running, Paused, Exited };
std::string to_string(VmState);

class Vm {
 public:
  // Everything up to the first guest instruction: throws ConfigError,
  // boot::BootImageError or std::system_error with context.
  explicit Vm(const VmConfig& config);
  ~Vm();
  Vm(const Vm&) = delete;
  Vm& operator=(const Vm&) = delete;

  // Devices may be added to the buses before start(); tests add theirs here.
  devices::Bus& pio_bus() { return pio_bus_; }
  devices::Bus& mmio_bus() { return mmio_bus_; }
  kvm::Vm& kvm_vm() { return vm_; }
  const GuestMemory& memory() const { return memory_; }
  devices::GsiAllocator& gsi_allocator() { return gsis_; }
  devices::Serial& serial() { return *serial_; }
  const Console& console() const { return *console_; }
  const boot::LoadedKernel& kernel() const { return kernel_; }
  // The vsock device (VmConfig::vsock), null without one. The runtime's way
  // to the guest agent; it must not outlive the Vm.
  const std::shared_ptr<virtio::VsockDevice>& vsock() const { return vsock_; }

  void start();
  // Returns once no vCPU runs guest code.
  void pause();
  void resume();
  // Ends the VM with `kind` (Stopped by default) unless it already ended.
  void stop(VmExit exit = {VmExitKind::Stopped, "stopped by the host"});
  VmExit wait();
  std::optional<VmExit> wait_for(std::chrono::milliseconds timeout);
  VmState state() const;

  size_t vcpu_count() const { return vcpus_.size(); }
  // Time from start() to the guest's boot-marker write (devices/boot_marker.h).
  std::optional<std::chrono::microseconds> userspace_reached() const;
  const ExitCounters& exit_counters(size_t vcpu) const { return vcpus_.at(vcpu)->counters(); }

 private:
  // Set-up steps of the constructor, in order.
  void setup_machine();
  void load_boot_image(uint32_t max_vcpus, const std::string& extra_cmdline);
  void attach_legacy_devices();
  // Each virtio device: an MMIO window, a GSI with an irqfd, an ioeventfd per
  // queue watched on the I/O thread; returns their kernel command-line args.
  std::string attach_virtio_devices();
  void create_vcpus(uint32_t max_vcpus);
  void kick_all();
  void mark_exited(const VmExit& e);

  VmConfig config_;
  kvm::System kvm_;
  GuestMemory memory_;
  kvm::Vm vm_;
  // Outlives everything that may hold a device: the buses hold the transports
  // and the transports their devices, whose destructors use the I/O thread.
  std::unique_ptr<IoThread> io_thread_;
  devices::Bus pio_bus_{"pio"};
  devices::Bus mmio_bus_{"mmio"};
  devices::GsiAllocator gsis_;
  std::unique_ptr<Console> console_;
  std::shared_ptr<devices::IrqFd> serial_irq_;
  std::shared_ptr<devices::Serial> serial_;
  boot::LoadedKernel kernel_;
  // Destroyed in reverse: kick watches first (they use the I/O thread and the
  // transports), then the ioeventfds, the transports.
  std::vector<std::shared_ptr<virtio::MmioTransport>> transports_;
  std::vector<std::shared_ptr<devices::IrqFd>> virtio_irqs_;
  std::vector<std::unique_ptr<devices::IoEventFd>> kicks_;
  std::vector<std::unique_ptr<IoThread::Watch>> kick_watches_;
  // Before the I/O thread goes: both use it.
  std::shared_ptr<virtio::VsockDevice> vsock_;
  std::unique_ptr<virtio::VsockUnixSocket> vsock_socket_;
  RunControl control_;
  std::vector<std::unique_ptr<VcpuThread>> vcpus_;
  mutable std::mutex state_mutex_;
  VmState state_ = VmState::Created;
  bool exit_logged_ = false;
  std::chrono::steady_clock::time_point started_at_;
  std::atomic<int64_t> userspace_us_{-1};
};

}  // namespace skiff
