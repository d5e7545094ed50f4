#include "vmm/device_manager.h"

#include <sys/resource.h>

#include <algorithm>

#include "base/config_error.h"
#include "base/hex.h"
#include "base/io_thread.h"
#include "base/log.h"
#include "devices/bus.h"
#include "devices/interrupts.h"
#include "kvm/kvm.h"
#include "memory/dax_window.h"
#include "memory/guest_memory.h"
#include "virtio/blk/blk_device.h"
#include "virtio/fs/fs_device.h"
#include "virtio/fs/passthrough_fs.h"
#include "virtio/mmio_transport.h"
#include "virtio/vsock/vsock_device.h"
#include "virtio/vsock/vsock_unix_socket.h"
#include "vmm/boot/layout.h"

namespace skiff {
namespace {

constexpr uint64_t kGiB = 1ull << 30;
constexpr uint32_t kMmioWindows = 256;  // 1 MiB of MMIO space from layout::kVirtioMmioStart

virtio::BlockBackendKind backend_kind(DiskBackend b) {
  switch (b) {
    case DiskBackend::IoUring: return virtio::BlockBackendKind::kIoUring;
    case DiskBackend::ThreadPool: return virtio::BlockBackendKind::kThreadPool;
    case DiskBackend::Auto: break;
  }
  return virtio::BlockBackendKind::kAuto;
}

virtio::FsCacheMode cache_mode(ShareCache c) {
  switch (c) {
    case ShareCache::None: return virtio::FsCacheMode::kNone;
    case ShareCache::Always: return virtio::FsCacheMode::kAlways;
    case ShareCache::Auto: break;
  }
  return virtio::FsCacheMode::kAuto;
}

// Every inode and open file a virtio-fs guest holds is a host fd: a soft
// limit of 1024 runs out near a thousand files. A share raises the process's
// soft limit to the hard one, as virtiofsd does.
void raise_fd_limit() {
  rlimit lim{};
  if (::getrlimit(RLIMIT_NOFILE, &lim) != 0 || lim.rlim_cur >= lim.rlim_max) return;
  const rlim_t old = lim.rlim_cur;
  lim.rlim_cur = lim.rlim_max;
  if (::setrlimit(RLIMIT_NOFILE, &lim) == 0)
    log::debug("vmm", "raised the open-file limit for a share", {{"from", uint64_t{old}}, {"to", uint64_t{lim.rlim_cur}}});
}

}  // namespace

// What ties a model to the machine; ~Wiring undoes it in order.
struct DeviceManager::Device::Wiring {
  Wiring(devices::Bus& bus, devices::GsiAllocator& gsis) : bus(bus), gsis(gsis) {}
  ~Wiring() {
    front_end.reset();
    kick_watches.clear();
    kicks.clear();
    if (on_bus) bus.remove(base);
    transport.reset();
    irq.reset();
    if (gsi) gsis.release(*gsi);
  }
  devices::Bus& bus;
  devices::GsiAllocator& gsis;
  uint64_t base = 0;
  bool on_bus = false;
  std::optional<uint32_t> gsi;
  std::shared_ptr<devices::IrqFd> irq;
  std::shared_ptr<virtio::MmioTransport> transport;
  std::vector<std::unique_ptr<devices::IoEventFd>> kicks;
  std::vector<std::unique_ptr<EventLoop::Watch>> kick_watches;
  std::unique_ptr<virtio::VsockUnixSocket> front_end;
};

DeviceManager::Device::~Device() { wiring.reset(); }

DeviceManager::DeviceManager(kvm::Vm& vm, const GuestMemory& memory, devices::Bus& mmio_bus,
                             devices::GsiAllocator& gsis)
    : vm_(vm), memory_(memory), mmio_bus_(mmio_bus), gsis_(gsis), next_mmio_window_(layout::kVirtioMmioStart) {
  uint64_t ram_end = 0;
  for (const auto& r : memory_.regions()) ram_end = std::max(ram_end, r.start().value() + r.size());
  next_dax_base_ = (std::max(ram_end, 4 * kGiB) + kGiB - 1) / kGiB * kGiB;
  next_memslot_ = static_cast<uint32_t>(memory_.regions().size());
}

DeviceManager::~DeviceManager() {
  // Last attached first: the reverse of what the guest enumerated.
  while (!devices_.empty()) devices_.pop_back();
}

IoThread& DeviceManager::io() {
  // Started with the first device: a machine without devices has no thread to spare.
  if (!io_) io_ = std::make_unique<IoThread>();
  return *io_;
}

std::string DeviceManager::next_id(DeviceKind kind) {
  for (;;) {
    std::string id = to_string(kind) + std::to_string(id_counters_[kind]++);
    if (!find(id)) return id;
  }
}

const DeviceManager::Device& DeviceManager::add(DeviceConfig config) {
  validate(config);
  const DeviceKind kind = kind_of(config);
  std::string id = id_of(config).empty() ? next_id(kind) : id_of(config);
  if (find(id)) throw ConfigError(to_string(kind) + " \"" + id + "\": a device with this id exists");
  auto record = std::make_unique<Device>();
  auto model = build(config, *record);
  auto attached = attach(std::move(id), std::move(model));
  attached->kind = kind;
  attached->dax = std::move(record->dax);
  if (const auto* v = std::get_if<VsockConfig>(&config); v && !v->socket_path.empty())
    attached->wiring->front_end = std::make_unique<virtio::VsockUnixSocket>(
        std::static_pointer_cast<virtio::VsockDevice>(attached->model), io(), v->socket_path);
  return insert(std::move(attached));
}

const DeviceManager::Device& DeviceManager::add(std::string id, std::shared_ptr<virtio::VirtioDevice> model) {
  if (id.empty()) throw ConfigError("a device needs an id");
  if (find(id)) throw ConfigError("device \"" + id + "\": a device with this id exists");
  return insert(attach(std::move(id), std::move(model)));
}

std::shared_ptr<virtio::VirtioDevice> DeviceManager::build(const DeviceConfig& config, Device& record) {
  if (const auto* d = std::get_if<DiskConfig>(&config)) {
    virtio::BlockConfig c;
    c.path = d->path;
    c.read_only = d->read_only;
    c.serial = d->serial;
    c.queues = d->queues;
    c.backend = backend_kind(d->backend);
    c.loop = &io();
    return std::make_shared<virtio::BlockDevice>(memory_, c);
  }
  if (const auto* s = std::get_if<ShareConfig>(&config)) {
    raise_fd_limit();
    virtio::PassthroughOptions fs;
    fs.root = s->path;
    fs.read_only = s->read_only;
    fs.cache = cache_mode(s->cache);
    fs.writeback = s->writeback;
    fs.xattr = s->xattr;
    virtio::FsConfig dev;
    dev.tag = s->tag;
    dev.request_queues = s->queues;
    dev.workers = s->workers;
    if (s->dax_mib) fs.dax = dev.dax = record.dax = make_dax_window(s->dax_mib << 20);
    return std::make_shared<virtio::FsDevice>(memory_, dev, std::make_shared<virtio::PassthroughFs>(fs));
  }
  const auto& v = std::get<VsockConfig>(config);
  virtio::VsockOptions options;
  options.io = &io();
  return std::make_shared<virtio::VsockDevice>(v.guest_cid, options);
}

std::unique_ptr<DeviceManager::Device> DeviceManager::attach(std::string id,
                                                             std::shared_ptr<virtio::VirtioDevice> model) {
  auto d = std::make_unique<Device>();
  d->id = std::move(id);
  d->virtio_type = model->device_type();
  d->model = std::move(model);
  d->wiring = std::make_unique<Device::Wiring>(mmio_bus_, gsis_);
  auto& w = *d->wiring;
  // A failed step below leaves `d` to undo the ones before it.
  w.base = d->mmio_base = take_mmio_window();
  w.gsi = d->gsi = gsis_.allocate();
  w.irq = std::make_shared<devices::IrqFd>(vm_, d->gsi);
  w.transport = std::make_shared<virtio::MmioTransport>(memory_, d->model, w.irq);
  mmio_bus_.insert(w.transport, w.base, layout::kVirtioMmioWindow);
  w.on_bus = true;
  // A kick writes the queue index to QueueNotify: one ioeventfd per queue
  // (matching that index), so KVM completes the write without a vCPU exit
  // to userspace and the event loop runs the device's queue_notify straight
  // away (a device ignores kicks while its queue set is inactive, so the
  // transport need not be asked first).
  for (size_t q = 0; q < w.transport->queue_count(); ++q) {
    auto kick = std::make_unique<devices::IoEventFd>(vm_, w.base + virtio::mmio::kQueueNotify, 4, false, uint64_t{q});
    w.kick_watches.push_back(io().watch(kick->event().fd(), [m = d->model.get(), q] { m->queue_notify(q); }));
    w.kicks.push_back(std::move(kick));
  }
  return d;
}

const DeviceManager::Device& DeviceManager::insert(std::unique_ptr<Device> d) {
  log::info("vmm", "virtio device attached",
            {{"id", d->id},
             {"type", uint64_t{d->virtio_type}},
             {"mmio", hex(d->mmio_base)},
             {"gsi", uint64_t{d->gsi}}});
  devices_.push_back(std::move(d));
  return *devices_.back();
}

bool DeviceManager::remove(const std::string& id) {
  auto it = std::find_if(devices_.begin(), devices_.end(), [&](const auto& d) { return d->id == id; });
  if (it == devices_.end()) return false;
  const uint64_t base = (*it)->mmio_base;
  std::shared_ptr<DaxWindow> dax = (*it)->dax;
  devices_.erase(it);
  free_mmio_windows_.push_back(base);
  // The window's memslot is free once nothing holds the window any more.
  if (dax && dax.use_count() == 1) {
    free_memslots_.push_back(dax->slot());
    dax.reset();
  }
  log::info("vmm", "virtio device removed", {{"id", id}, {"mmio", hex(base)}});
  return true;
}

const DeviceManager::Device* DeviceManager::find(const std::string& id) const {
  for (const auto& d : devices_)
    if (d->id == id) return d.get();
  return nullptr;
}

std::vector<const DeviceManager::Device*> DeviceManager::find_type(uint32_t virtio_type) const {
  std::vector<const Device*> out;
  for (const auto& d : devices_)
    if (d->virtio_type == virtio_type) out.push_back(d.get());
  return out;
}

std::vector<const DeviceManager::Device*> DeviceManager::all() const {
  std::vector<const Device*> out;
  for (const auto& d : devices_) out.push_back(d.get());
  return out;
}

std::string DeviceManager::cmdline_args() const {
  std::string args;
  for (const auto& d : devices_) args += " " + virtio::mmio_cmdline_arg(d->mmio_base, layout::kVirtioMmioWindow, d->gsi);
  return args;
}

uint64_t DeviceManager::take_mmio_window() {
  // Lowest free window first, so the guest's enumeration order follows attach order.
  if (!free_mmio_windows_.empty()) {
    auto lowest = std::min_element(free_mmio_windows_.begin(), free_mmio_windows_.end());
    const uint64_t base = *lowest;
    free_mmio_windows_.erase(lowest);
    return base;
  }
  if (next_mmio_window_ >= layout::kVirtioMmioStart + uint64_t{kMmioWindows} * layout::kVirtioMmioWindow)
    throw ConfigError("no MMIO window left for another virtio device (at most " + std::to_string(kMmioWindows) + ")");
  const uint64_t base = next_mmio_window_;
  next_mmio_window_ += layout::kVirtioMmioWindow;
  return base;
}

std::shared_ptr<DaxWindow> DeviceManager::make_dax_window(uint64_t size) {
  uint32_t slot = next_memslot_;
  if (!free_memslots_.empty()) {
    slot = free_memslots_.back();
    free_memslots_.pop_back();
  } else {
    ++next_memslot_;
  }
  try {
    auto w = std::make_shared<DaxWindow>(vm_, slot, GuestAddress(next_dax_base_), size);
    next_dax_base_ += (size + kGiB - 1) / kGiB * kGiB;
    log::info("vmm", "DAX window", {{"base", hex(w->base().value())}, {"size", w->size()}, {"slot", uint64_t{slot}}});
    return w;
  } catch (...) {
    free_memslots_.push_back(slot);
    throw;
  }
}

}  // namespace skiff
