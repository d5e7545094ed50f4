#pragma once
// skiff::Machine: a KVM virtual machine booted from a kernel image (the
// VMM's whole machine, not the raw kvm::Vm handle it holds): guest memory,
// the in-kernel irqchip and PIT, legacy devices, the virtio devices through
// its DeviceManager, vCPU threads and their lifecycle (start, pause, resume,
// stop). Construction does the whole set-up and validation; start() enters
// the guest.
#include <atomic>
#include <chrono>
#include <memory>
#include <optional>
#include <vector>

#include "base/config_error.h"
#include "devices/bus.h"
#include "devices/interrupts.h"
#include "devices/serial.h"
#include "kvm/kvm.h"
#include "memory/guest_memory.h"
#include "vmm/boot/kernel_image.h"
#include "vmm/console.h"
#include "vmm/device_manager.h"
#include "vmm/run_control.h"
#include "vmm/vcpu_thread.h"
#include "vmm/vm_config.h"

namespace skiff::virtio {
class MemDevice;
class VsockDevice;
}

namespace skiff {

// Throws ConfigError with one clear line for sizes no VM can have.
void validate_config(const VmConfig& config, const kvm::System& kvm);

enum class VmState { Created, Running, Paused, Exited };

// The id of the virtio-mem device a VM with VmConfig::max_memory_mib gets.
inline constexpr const char* kMemDeviceId = "mem0";
std::string to_string(VmState);

class Machine {
 public:
  // Everything up to the first guest instruction: throws ConfigError,
  // boot::BootImageError or std::system_error with context.
  explicit Machine(const VmConfig& config);
  ~Machine();
  Machine(const Machine&) = delete;
  Machine& operator=(const Machine&) = delete;

  // Devices may be added to the buses before start(); tests add theirs here.
  devices::Bus& pio_bus() { return pio_bus_; }
  devices::Bus& mmio_bus() { return mmio_bus_; }
  kvm::Vm& kvm_vm() { return vm_; }
  const GuestMemory& memory() const { return memory_; }
  devices::GsiAllocator& gsi_allocator() { return gsis_; }
  devices::Serial& serial() { return *serial_; }
  const Console& console() const { return *console_; }
  const boot::LoadedKernel& kernel() const { return kernel_; }
  // The virtio devices. Tests attach ready-made models here before start();
  // the guest finds those only if it knows their windows (the command line
  // was written at construction).
  DeviceManager& devices() { return *devices_; }
  const DeviceManager& devices() const { return *devices_; }
  // Adds a device at run time (for hotplug) or before start().
  const DeviceManager::Device& add_device(DeviceConfig config);
  // Removes device `id`, with every vCPU paused meanwhile if the guest runs;
  // false if there is none. The virtio-mem device (kMemDeviceId) can't go:
  // the guest may be running on its memory (ConfigError).
  bool remove_device(const std::string& id);
  // The first vsock device, null without one: the runtime's way to the
  // guest agent. It must not outlive the machine.
  std::shared_ptr<virtio::VsockDevice> vsock() const;

  // Memory resize through the virtio-mem device (VmConfig::max_memory_mib):
  // asks the guest to plug or unplug until it has `mib` MiB in all, boot
  // memory included, and returns at once; the guest follows when it can
  // (memory_mib()). Throws ConfigError with one line for a VM without the
  // device, `mib` below the boot memory or above the maximum, or a
  // difference from the boot memory that is not whole 2 MiB blocks.
  void resize_memory(uint64_t mib);
  // Boot memory plus what the guest has plugged, in MiB.
  uint64_t memory_mib() const;
  // The most resize_memory allows (the boot memory without the device).
  uint64_t max_memory_mib() const;
  // The virtio-mem device, null without one.
  const std::shared_ptr<virtio::MemDevice>& mem_device() const { return mem_device_; }

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
  void create_vcpus(uint32_t max_vcpus);
  void kick_all();
  void mark_exited(const VmExit& e);

  VmConfig config_;
  kvm::System kvm_;
  GuestMemory memory_;
  kvm::Vm vm_;
  devices::Bus pio_bus_{"pio"};
  devices::Bus mmio_bus_{"mmio"};
  devices::GsiAllocator gsis_;
  std::unique_ptr<Console> console_;
  std::shared_ptr<devices::IrqFd> serial_irq_;
  std::shared_ptr<devices::Serial> serial_;
  boot::LoadedKernel kernel_;
  // After the buses and the GSI allocator it attaches to, before the vCPUs
  // that reach its devices through the bus.
  std::unique_ptr<DeviceManager> devices_;
  std::shared_ptr<virtio::MemDevice> mem_device_;  // also in devices_ (kMemDeviceId)
  RunControl control_;
  std::vector<std::unique_ptr<VcpuThread>> vcpus_;
  mutable std::mutex state_mutex_;
  VmState state_ = VmState::Created;
  bool exit_logged_ = false;
  std::chrono::steady_clock::time_point started_at_;
  std::atomic<int64_t> userspace_us_{-1};
};

}  // namespace skiff
