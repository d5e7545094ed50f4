#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace skiff {
class DaxWindow;
class GuestMemory;
class IoThread;
}
namespace skiff::virtio {
class VirtioDevice;
}

namespace skiff {

enum class ConsoleMode { Stdio, File, Pty, None };

struct ConsoleConfig {
  ConsoleMode mode = ConsoleMode::Stdio;
  std::string path;  // ConsoleMode::File
};

// virtio-vsock, attached after the virtio_devices: the agent's channel.
struct VsockConfig {
  uint64_t guest_cid = 3;   // 0-2 are reserved, 0xffffffff is VMADDR_CID_ANY
  std::string socket_path;  // Unix socket front end (Firecracker's hybrid vsock); empty: none
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
  bool hugepages = false;
  ConsoleConfig console;
  // virtio-mmio devices, in the order the guest enumerates them (the first
  // block device is /dev/vda). Made by the VM once its memory exists; a
  // factory may throw (a disk that won't open) and the VM is not created.
  // The device's I/O (back-end completions, host sockets) runs on `io`.
  // `dax_window(size)` makes a DAX window (vmm/dax_window.h) of `size`
  // bytes (2 MiB aligned) in guest-physical space above RAM.
  struct VirtioDeviceContext {
    const GuestMemory& memory;
    IoThread& io;
    std::function<std::shared_ptr<DaxWindow>(uint64_t size)> dax_window;
  };
  using VirtioDeviceFactory = std::function<std::shared_ptr<virtio::VirtioDevice>(const VirtioDeviceContext&)>;
  std::vector<VirtioDeviceFactory> virtio_devices;
  std::optional<VsockConfig> vsock;
};

}  // namespace skiff
