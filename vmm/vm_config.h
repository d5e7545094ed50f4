#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "vmm/device_config.h"

namespace skiff {

enum class ConsoleMode { Stdio, File, Pty, None };

struct ConsoleConfig {
  ConsoleMode mode = ConsoleMode::Stdio;
  std::string path;  // ConsoleMode::File
};

struct VmConfig {
  std::string kernel_path;
  std::optional<std::string> initrd_path;
  // Firecracker's defaults: serial console, reboot through the keyboard
  // controller, no PCI probing, panic ends the VM.
  std::string cmdline = "console=ttyS0 reboot=k panic=1 pci=off";
  uint32_t vcpus = 1;
  uint32_t max_vcpus = 0;  // 0: same as vcpus; more leaves room for hot-add
  uint64_t memory_mib = 128;
  // Above memory_mib: a virtio-mem device whose hotplug region holds the
  // difference (a multiple of 2 MiB, its block size), none of it plugged at
  // boot; Machine::resize_memory asks the guest to plug some. 0 (or
  // memory_mib): no virtio-mem device at all.
  uint64_t max_memory_mib = 0;
  bool hugepages = false;
  ConsoleConfig console;
  // virtio-mmio devices, in the order the guest enumerates them (the first
  // disk is /dev/vda). The machine builds them once its memory exists
  // (vmm/device_manager.h); a device that fails (a disk that won't open)
  // fails the machine.
  std::vector<DeviceConfig> devices;
};

}  // namespace skiff
