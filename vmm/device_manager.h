#pragma once
// Owns a machine's virtio devices: builds each model from its DeviceConfig
// (or takes a ready-made one), gives it an MMIO window, a GSI with an irqfd,
// an ioeventfd per queue watched on the event loop and, for a DAX share, a
// window of guest-physical space with its memslot. One record per device
// holds all of that and tears it down in the one safe order; add() works at
// boot and later (hotplug), remove() undoes one device.
//
// Not thread-safe: the machine calls it from its control thread, and remove()
// only while no vCPU runs (skiff::Machine pauses them).
#include <cstdint>
#include <map>
#include <optional>
#include <memory>
#include <string>
#include <vector>

#include "vmm/device_config.h"

namespace skiff {
class DaxWindow;
class GuestMemory;
class IoThread;
namespace kvm {
class Vm;
}
namespace devices {
class Bus;
class GsiAllocator;
}
namespace virtio {
class VirtioDevice;
class VsockDevice;
}

class DeviceManager {
 public:
  // The machine's parts a device attaches to; all must outlive the manager.
  // The manager starts the I/O thread (base/io_thread.h) with the first
  // device and stops it after the last record is gone.
  DeviceManager(kvm::Vm& vm, const GuestMemory& memory, devices::Bus& mmio_bus, devices::GsiAllocator& gsis);
  ~DeviceManager();
  DeviceManager(const DeviceManager&) = delete;
  DeviceManager& operator=(const DeviceManager&) = delete;

  struct Device;
  // Builds the model for `config` and attaches it. Throws ConfigError for an
  // invalid config or an id already taken, std::system_error or
  // std::invalid_argument from the model (a disk that won't open); on a
  // throw nothing of the device stays. An empty id gets "<kind><n>".
  const Device& add(DeviceConfig config);
  // Attaches a model built elsewhere (tests, device kinds without a config).
  const Device& add(std::string id, std::shared_ptr<virtio::VirtioDevice> model);
  // Detaches and destroys device `id`; false if there is none.
  bool remove(const std::string& id);

  const Device* find(const std::string& id) const;
  // Devices whose virtio type is `virtio_type` (2 block, 19 vsock, 26 fs), in attach order.
  std::vector<const Device*> find_type(uint32_t virtio_type) const;
  // Every device, in attach order (the guest's enumeration order).
  std::vector<const Device*> all() const;
  size_t size() const { return devices_.size(); }

  // " virtio_mmio.device=4K@0x...:GSI" for each device, in attach order: what
  // the guest kernel's command line needs to find them at boot.
  std::string cmdline_args() const;

 private:
  std::unique_ptr<Device> attach(std::string id, std::shared_ptr<virtio::VirtioDevice> model);
  std::shared_ptr<virtio::VirtioDevice> build(const DeviceConfig& config, Device& record);
  const Device& insert(std::unique_ptr<Device> device);
  std::string next_id(DeviceKind kind);
  uint64_t take_mmio_window();
  std::shared_ptr<DaxWindow> make_dax_window(uint64_t size);

  kvm::Vm& vm_;
  const GuestMemory& memory_;
  devices::Bus& mmio_bus_;
  devices::GsiAllocator& gsis_;
  IoThread& io();
  std::unique_ptr<IoThread> io_;                  // before the devices: they use it until they are gone
  std::vector<std::unique_ptr<Device>> devices_;  // attach order
  std::map<DeviceKind, unsigned> id_counters_;
  std::vector<uint64_t> free_mmio_windows_;
  uint64_t next_mmio_window_;
  // DAX windows: 1 GiB aligned above RAM and 4 GiB; memslots after RAM's.
  uint64_t next_dax_base_;
  uint32_t next_memslot_;
  std::vector<uint32_t> free_memslots_;
};

// One attached device. Members are destroyed bottom-up, which is the only
// safe order: the host front end and the kick watches first (they run on the
// event loop and call into the model), then the ioeventfds, the
// transport (off the bus first, see ~Device), the interrupt, the model, and
// last the DAX window the model maps files into.
struct DeviceManager::Device {
  ~Device();
  std::string id;
  std::optional<DeviceKind> kind;  // none for a ready-made model
  uint32_t virtio_type = 0;
  uint64_t mmio_base = 0;
  uint32_t gsi = 0;
  std::shared_ptr<DaxWindow> dax;
  std::shared_ptr<virtio::VirtioDevice> model;
  struct Wiring;
  std::unique_ptr<Wiring> wiring;  // transport, irqfd, ioeventfds, watches, host front end

  // The model as its own type, or null.
  template <class T>
  T* as() const {
    return dynamic_cast<T*>(model.get());
  }
};

}  // namespace skiff
