#include "runtime/sandbox/vmm_hypervisor.h"

#include <sys/socket.h>

#include <stdexcept>

#include "base/config_error.h"
#include "base/sys_error.h"
#include "virtio/vsock/vsock_device.h"
#include "vmm/machine.h"

namespace skiff::runtime {

VmmHypervisor::VmmHypervisor() = default;
VmmHypervisor::~VmmHypervisor() = default;

HypervisorCapabilities VmmHypervisor::capabilities() const {
  HypervisorCapabilities c;
  c.pause = true;
  c.device_hotplug = true;
  c.shared_fs = true;
  c.dax = true;
  c.block_devices = true;
  c.vcpu_resize = true;
  c.memory_resize = true;
  return c;
}

Machine& VmmHypervisor::machine() const {
  if (!machine_) throw std::logic_error("the VM has not been booted");
  return *machine_;
}

void VmmHypervisor::boot(const VmConfig& config) {
  if (machine_) throw std::logic_error("the VM was booted already");
  machine_ = std::make_unique<Machine>(config);
  max_vcpus_ = config.max_vcpus ? config.max_vcpus : config.vcpus;
  boot_memory_mib_ = config.memory_mib;
  machine_->start();
}

void VmmHypervisor::resize_vcpus(uint32_t vcpus) {
  machine();  // booted
  // Every possible vCPU exists and is present from boot (vmm/machine.cc):
  // what changes is how many the guest runs, so the bound is all there is.
  if (vcpus == 0 || vcpus > max_vcpus_)
    throw ConfigError(std::to_string(vcpus) + " vCPUs: this sandbox was booted for 1 to " + std::to_string(max_vcpus_) +
                      " (hypervisor.default_maxvcpus)");
}

void VmmHypervisor::resize_memory(uint64_t mib) {
  Machine& m = machine();
  // The bounds in the words of the runtime's configuration; the machine
  // checks them again, and the block size.
  if (!m.mem_device())
    throw ConfigError("this sandbox's memory can't be resized: it was booted with no room to grow "
                      "(hypervisor.default_maxmemory_mib)");
  if (mib < boot_memory_mib_ || mib > m.max_memory_mib())
    throw ConfigError(std::to_string(mib) + " MiB of memory: this sandbox was booted for " +
                      std::to_string(boot_memory_mib_) + " to " + std::to_string(m.max_memory_mib()) +
                      " MiB (hypervisor.default_maxmemory_mib)");
  m.resize_memory(mib);
}

uint64_t VmmHypervisor::memory_mib() const { return machine().memory_mib(); }

void VmmHypervisor::pause() { machine().pause(); }
void VmmHypervisor::resume() { machine().resume(); }
void VmmHypervisor::stop() {
  if (machine_) machine_->stop();
}
VmExit VmmHypervisor::wait() { return machine().wait(); }
void VmmHypervisor::add_device(const DeviceConfig& device) { machine().add_device(device); }
bool VmmHypervisor::remove_device(const std::string& id) { return machine().remove_device(id); }

UniqueFd VmmHypervisor::connect_vsock(uint32_t port) {
  auto vsock = machine().vsock();
  if (!vsock) throw std::runtime_error("the VM has no vsock device");
  int pair[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) != 0) throw_errno("socketpair for the guest's vsock port");
  UniqueFd ours(pair[0]), device_end(pair[1]);
  if (!vsock->connect_stream(port, std::move(device_end), true))
    throw std::runtime_error("vsock: too many connections to the guest");
  return ours;
}

}  // namespace skiff::runtime
