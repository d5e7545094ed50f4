#pragma once
// What the runtime needs of a VMM (Kata's Hypervisor interface, cut to what
// a sandbox uses): boot a machine from plain data, pause, resume, stop, wait
// for its end, add and remove devices, and open a stream to a guest vsock
// port. The one implementation today is the VMM linked into this process
// (vmm_hypervisor.h); another VMM would plug in here, and the runtime's tests
// drive the sandbox through a fake one.
#include <cstdint>
#include <string>

#include "base/unique_fd.h"
#include "vmm/device_config.h"
#include "vmm/vm_config.h"
#include "vmm/vm_exit.h"

namespace skiff::runtime {

struct HypervisorCapabilities {
  bool pause = false;           // every vCPU stopped and started again
  bool device_hotplug = false;  // add_device/remove_device while the guest runs
  bool shared_fs = false;       // virtio-fs shares
  bool dax = false;             // a DAX window for a share
  bool block_devices = false;   // virtio-blk
  bool vcpu_resize = false;     // resize_vcpus: present vCPUs the guest takes online and offline
  bool memory_resize = false;   // resize_memory: memory the guest plugs and unplugs (virtio-mem)
};

class Hypervisor {
 public:
  virtual ~Hypervisor() = default;
  virtual std::string name() const = 0;
  virtual HypervisorCapabilities capabilities() const = 0;

  // Builds the machine and starts its vCPUs. Throws ConfigError or
  // std::system_error with one line saying what failed.
  virtual void boot(const VmConfig& config) = 0;
  virtual void pause() = 0;
  virtual void resume() = 0;
  // Ends the VM (a no-op once it has ended).
  virtual void stop() = 0;
  // Blocks until the VM has ended; call it from a thread of its own.
  virtual VmExit wait() = 0;

  // Makes `vcpus` vCPUs available to the guest, which then takes them
  // online or offline itself (its agent's setOnlineCpus). Throws
  // ConfigError when `vcpus` is 0 or above what the machine was booted
  // for (VmConfig::max_vcpus), or the hypervisor can't (capabilities).
  virtual void resize_vcpus(uint32_t vcpus) = 0;

  // Asks the guest to run on `mib` MiB of memory in all, and returns at
  // once: the guest plugs or unplugs towards it when it can (memory_mib()).
  // Throws ConfigError with one line below the boot memory, above the
  // maximum (VmConfig::max_memory_mib), off the device's block size, or
  // when the machine has no room to grow (capabilities, or no maximum).
  virtual void resize_memory(uint64_t mib) = 0;
  // The guest's memory now, in MiB: the boot memory and what it has
  // plugged. Only once booted.
  virtual uint64_t memory_mib() const = 0;

  virtual void add_device(const DeviceConfig& device) = 0;
  virtual bool remove_device(const std::string& id) = 0;

  // One end of a stream to guest vsock port `port`: it reads "OK <port>\n"
  // once the guest has accepted, then the guest's bytes; EOF if the guest
  // refuses (nothing listens there yet).
  virtual UniqueFd connect_vsock(uint32_t port) = 0;
};

}  // namespace skiff::runtime
