#include "vmm/machine.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>

#include "devices/acpi_pm.h"
#include "devices/boot_marker.h"
#include "devices/i8042.h"
#include "virtio/mem/mem_device.h"
#include "virtio/vsock/vsock_device.h"
#include "vmm/boot/acpi.h"
#include "vmm/boot/boot_params.h"
#include "vmm/boot/cpu_setup.h"
#include "vmm/boot/layout.h"
#include "vmm/boot/mptable.h"
#include "base/log.h"
#include "base/hex.h"
#include "base/sys_error.h"

namespace skiff {
namespace {

constexpr uint64_t kMinMemoryMib = 4;
constexpr uint64_t kMemBlockMib = virtio::kMemDefaultBlockSize >> 20;

// Room above the boot memory: a virtio-mem device and its region.
bool has_hotplug(const VmConfig& c) { return c.max_memory_mib > c.memory_mib; }

// Boot RAM, then the hotplug region when there is one.
std::vector<RegionSpec> memory_regions(const VmConfig& c) {
  auto regions = layout::ram_regions(c.memory_mib << 20);
  if (has_hotplug(c)) regions.push_back(layout::hotplug_region(c.memory_mib << 20, (c.max_memory_mib - c.memory_mib) << 20));
  return regions;
}

uint64_t host_memory_mib() {
  std::ifstream meminfo("/proc/meminfo");
  std::string key;
  uint64_t kib = 0;
  while (meminfo >> key >> kib) {
    if (key == "MemTotal:") return kib / 1024;
    meminfo.ignore(256, '\n');
  }
  return 0;
}

std::vector<uint8_t> read_file(const std::string& path, const char* what) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) throw_errno(std::string("open ") + what + " " + path);
  struct stat st {};
  if (::fstat(fd.get(), &st) < 0) throw_errno(std::string("stat ") + what + " " + path);
  if (!S_ISREG(st.st_mode)) throw ConfigError(std::string(what) + " " + path + " is not a regular file");
  std::vector<uint8_t> data(static_cast<size_t>(st.st_size));
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = retry_eintr([&] { return ::read(fd.get(), data.data() + done, data.size() - done); });
    if (n < 0) throw_errno(std::string("read ") + what + " " + path);
    if (n == 0) break;
    done += static_cast<size_t>(n);
  }
  data.resize(done);
  return data;
}

// Reads the initramfs straight into guest memory at its final place.
boot::InitrdPlacement load_initrd(const GuestMemory& mem, const std::string& path, uint64_t kernel_end,
                                  uint64_t addr_max) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) throw_errno("open initramfs " + path);
  struct stat st {};
  if (::fstat(fd.get(), &st) < 0) throw_errno("stat initramfs " + path);
  if (!S_ISREG(st.st_mode)) throw ConfigError("initramfs " + path + " is not a regular file");
  auto place = boot::place_initrd(mem, kernel_end, static_cast<uint64_t>(st.st_size), addr_max);
  auto dst = mem.slice(GuestAddress(place.addr), place.size);
  size_t done = 0;
  while (done < dst.size()) {
    ssize_t n = retry_eintr([&] { return ::pread(fd.get(), dst.data() + done, dst.size() - done, done); });
    if (n < 0) throw_errno("read initramfs " + path);
    if (n == 0) throw ConfigError("initramfs " + path + " shrank while being read");
    done += static_cast<size_t>(n);
  }
  return place;
}

}  // namespace

void validate_config(const VmConfig& c, const kvm::System& kvm) {
  if (c.kernel_path.empty()) throw ConfigError("no kernel given (--kernel FILE)");
  if (c.vcpus == 0) throw ConfigError("vCPU count must be at least 1");
  const uint32_t limit = std::min<uint32_t>(kvm.max_vcpus(), boot::kMpMaxCpus);
  if (c.vcpus > limit)
    throw ConfigError(std::to_string(c.vcpus) + " vCPUs requested; this host's KVM allows at most " + std::to_string(limit));
  if (c.max_vcpus && c.max_vcpus < c.vcpus)
    throw ConfigError("maximum vCPUs (" + std::to_string(c.max_vcpus) + ") is below the vCPU count (" +
                      std::to_string(c.vcpus) + ")");
  if (c.max_vcpus > limit)
    throw ConfigError("maximum of " + std::to_string(c.max_vcpus) + " vCPUs; this host's KVM allows at most " +
                      std::to_string(limit));
  if (c.memory_mib < kMinMemoryMib)
    throw ConfigError("memory size " + std::to_string(c.memory_mib) + " MiB is too small: at least " +
                      std::to_string(kMinMemoryMib) + " MiB");
  const uint64_t host = host_memory_mib();
  if (host && c.memory_mib > host)
    throw ConfigError("memory size " + std::to_string(c.memory_mib) + " MiB exceeds this host's " +
                      std::to_string(host) + " MiB");
  if (c.hugepages && c.memory_mib % 2)
    throw ConfigError("with huge pages the memory size must be a multiple of 2 MiB");
  if (c.max_memory_mib && c.max_memory_mib < c.memory_mib)
    throw ConfigError("maximum memory " + std::to_string(c.max_memory_mib) + " MiB is below the memory size (" +
                      std::to_string(c.memory_mib) + " MiB)");
  if (has_hotplug(c) && (c.max_memory_mib - c.memory_mib) % kMemBlockMib)
    throw ConfigError("maximum memory " + std::to_string(c.max_memory_mib) + " MiB: the memory above the " +
                      std::to_string(c.memory_mib) + " MiB booted must be a multiple of " +
                      std::to_string(kMemBlockMib) + " MiB (virtio-mem's block size)");
  if (host && c.max_memory_mib > host)
    throw ConfigError("maximum memory " + std::to_string(c.max_memory_mib) + " MiB exceeds this host's " +
                      std::to_string(host) + " MiB");
  for (const auto& d : c.devices) validate(d);
}

std::string to_string(VmState s) {
  switch (s) {
    case VmState::Created: return "created";
    case VmState::Running: return "running";
    case VmState::Paused: return "paused";
    case VmState::Exited: return "exited";
  }
  return "unknown";
}

Machine::Machine(const VmConfig& config)
    : config_(config),
      kvm_(),
      memory_([&] {
        kvm_.require_capabilities();
        validate_config(config_, kvm_);
        GuestMemoryOptions opts;
        opts.hugepages = config_.hugepages;
        return GuestMemory::create(memory_regions(config_), opts);
      }()),
      vm_(kvm_.create_vm()),
      gsis_(devices::kFirstDeviceGsi, layout::kIoapicPins - devices::kFirstDeviceGsi) {
  control_.set_kicker([this] { kick_all(); });
  setup_machine();
  const uint32_t max_vcpus = config_.max_vcpus ? config_.max_vcpus : config_.vcpus;
  attach_legacy_devices();
  devices_ = std::make_unique<DeviceManager>(vm_, memory_, mmio_bus_, gsis_);
  for (const auto& d : config_.devices) devices_->add(d);
  if (has_hotplug(config_)) {
    // After the configured devices, so their order and windows are what
    // they are without it; announced on the command line like them.
    const GuestRegion& region = memory_.regions().back();
    virtio::MemConfig mem;
    mem.addr = region.start();
    mem.region_size = region.size();
    mem_device_ = std::make_shared<virtio::MemDevice>(memory_, mem);
    devices_->add(kMemDeviceId, mem_device_);
  }
  load_boot_image(max_vcpus, devices_->cmdline_args());
  create_vcpus(max_vcpus);
  log::info("vmm", "vm created",
            {{"kernel", config_.kernel_path},
             {"entry", std::string(kernel_.mode == boot::EntryMode::Pvh32 ? "pvh" : "linux64")},
             {"vcpus", uint64_t{config_.vcpus}},
             {"max_vcpus", uint64_t{max_vcpus}},
             {"memory_mib", config_.memory_mib},
             {"max_memory_mib", max_memory_mib()},
             {"kvm", kvm::to_string(kvm::detect_flavour())}});
}

void Machine::setup_machine() {
  // RAM slots first: once the in-kernel irqchip exists, every
  // memslot change waits for an SRCU grace period (measured: 6-7 ms per VM,
  // twice the whole set-up budget). Then the TSS and identity map for VMX
  // real mode, the in-kernel LAPICs/IOAPIC/PIC and the PIT.
  uint32_t slot = 0;
  for (const auto& r : memory_.regions()) vm_.set_user_memory_region(slot++, r.start().value(), r.size(), r.host_base());
  vm_.set_tss_address(layout::kTssAddr);
  vm_.set_identity_map_address(layout::kIdentityMapAddr);
  vm_.create_irqchip();
  vm_.create_pit();
}

void Machine::load_boot_image(uint32_t max_vcpus, const std::string& extra_cmdline) {
  // Kernel, command line, initramfs, memory map and boot tables.
  auto image = read_file(config_.kernel_path, "kernel");
  kernel_ = boot::load_kernel(memory_, image);
  boot::BootInfo info;
  info.cmdline = config_.cmdline + extra_cmdline;
  // Room for more vCPUs: every possible one is present (enabled in the MADT
  // and the MP table) and Linux brings up only `vcpus` of them (maxcpus=);
  // the others wait for INIT/SIPI, costing nothing, until the guest sets
  // them online (agent/cpu_online.h). ACPI hot-add of absent CPUs would need
  // a processor device and a notify path in the DSDT; this needs neither.
  const uint32_t present_vcpus = max_vcpus > config_.vcpus ? max_vcpus : config_.vcpus;
  if (present_vcpus > config_.vcpus) info.cmdline += " maxcpus=" + std::to_string(config_.vcpus);
  const uint64_t cmdline_max = kernel_.header && kernel_.header->cmdline_size ? kernel_.header->cmdline_size : 4095;
  boot::write_cmdline(memory_, info.cmdline, cmdline_max);
  if (config_.initrd_path) {
    const uint64_t addr_max = kernel_.header && kernel_.header->initrd_addr_max ? kernel_.header->initrd_addr_max
                                                                                 : 0x7fffffffull;
    info.initrd = load_initrd(memory_, *config_.initrd_path, kernel_.end, addr_max);
  }
  // The hotplug region is the device's to announce, not RAM.
  info.e820 = boot::e820_map(memory_, mem_device_ ? mem_device_->addr().value() : UINT64_MAX);
  // Both MP and ACPI tables: a kernel built without ACPI still finds its CPUs.
  boot::write_mptable(memory_, present_vcpus, max_vcpus);
  boot::AcpiPlatform acpi{present_vcpus, max_vcpus, static_cast<uint16_t>(devices::AcpiPm::kBase),
                          static_cast<uint16_t>(devices::PvPanic::kPort)};
  boot::write_acpi_tables(memory_, acpi, layout::kRsdpAddr, layout::kAcpiTablesEnd);
  info.rsdp = layout::kRsdpAddr;
  if (kernel_.mode == boot::EntryMode::Linux64) {
    boot::write_long_mode_tables(memory_);
    boot::write_zero_page(memory_, boot::make_zero_page(kernel_.header, info));
  } else {
    boot::write_pvh_gdt(memory_);
    boot::write_pvh_start_info(memory_, info);
  }
}

void Machine::attach_legacy_devices() {
  // COM1 console and the keyboard controller for reset.
  console_ = std::make_unique<Console>(config_.console);
  serial_irq_ = std::make_shared<devices::IrqFd>(vm_, devices::kCom1Irq);
  serial_ = std::make_shared<devices::Serial>(console_->output(), serial_irq_);
  pio_bus_.insert(serial_, devices::Serial::kCom1Base, devices::Serial::kLength);
  auto i8042 = std::make_shared<devices::I8042>(
      [this] { control_.finish({VmExitKind::Reset, "guest requested a reset (i8042)"}); });
  pio_bus_.insert(i8042, devices::I8042::kBase, devices::I8042::kLength);
  // ACPI power-off and reset registers, and pvpanic for kernel panics.
  auto pm = std::make_shared<devices::AcpiPm>(
      [this] { control_.finish({VmExitKind::PowerOff, "guest powered off (ACPI S5)"}); },
      [this] { control_.finish({VmExitKind::Reset, "guest requested a reset (ACPI reset register)"}); });
  pio_bus_.insert(pm, devices::AcpiPm::kBase, devices::AcpiPm::kLength);
  auto pvpanic = std::make_shared<devices::PvPanic>(
      [this] { control_.finish({VmExitKind::Crash, "guest kernel panicked (pvpanic)"}); },
      [] { log::warn("vmm", "guest crash kernel loaded (pvpanic)"); });
  pio_bus_.insert(pvpanic, devices::PvPanic::kPort, devices::PvPanic::kLength);
  auto marker = std::make_shared<devices::BootMarker>([this](uint8_t milestone) {
    if (milestone != devices::BootMarker::kUserspace) return;
    const auto since_start = std::chrono::steady_clock::now() - started_at_;
    const int64_t us = std::chrono::duration_cast<std::chrono::microseconds>(since_start).count();
    int64_t unset = -1;
    if (userspace_us_.compare_exchange_strong(unset, us))
      log::info("vmm", "guest userspace reached", {{"ms", static_cast<double>(us) / 1000.0}});
  });
  pio_bus_.insert(marker, devices::BootMarker::kPort, devices::BootMarker::kLength);
}

const DeviceManager::Device& Machine::add_device(DeviceConfig config) {
  std::lock_guard lock(state_mutex_);
  return devices_->add(std::move(config));
}

bool Machine::remove_device(const std::string& id) {
  if (mem_device_ && id == kMemDeviceId)
    throw ConfigError(std::string("device ") + kMemDeviceId + " is the VM's virtio-mem device: it can't be removed");
  std::lock_guard lock(state_mutex_);
  // No vCPU may be inside the device's transport while it goes.
  const bool running = state_ == VmState::Running && !control_.finished();
  if (running) {
    control_.request_pause();
    kick_all();
    control_.wait_all_parked();
  }
  const bool removed = devices_->remove(id);
  if (running) control_.resume();
  return removed;
}

std::shared_ptr<virtio::VsockDevice> Machine::vsock() const {
  for (const auto* d : devices_->find_type(virtio::kVsockDeviceType))
    return std::static_pointer_cast<virtio::VsockDevice>(d->model);
  return nullptr;
}

void Machine::resize_memory(uint64_t mib) {
  const uint64_t boot = config_.memory_mib;
  if (!mem_device_)
    throw ConfigError("this VM has no virtio-mem device: its memory stays at " + std::to_string(boot) +
                      " MiB (boot it with a maximum memory above that)");
  if (mib < boot || mib > config_.max_memory_mib)
    throw ConfigError(std::to_string(mib) + " MiB of memory: this VM can have " + std::to_string(boot) + " to " +
                      std::to_string(config_.max_memory_mib) + " MiB");
  if ((mib - boot) % kMemBlockMib)
    throw ConfigError(std::to_string(mib) + " MiB of memory: the memory above the " + std::to_string(boot) +
                      " MiB booted must be a multiple of " + std::to_string(kMemBlockMib) + " MiB");
  const uint64_t before = memory_mib();
  mem_device_->set_requested_size((mib - boot) << 20);
  log::info("vmm", "memory resize requested", {{"asked_mib", mib}, {"memory_mib", before}});
}

uint64_t Machine::memory_mib() const {
  return config_.memory_mib + (mem_device_ ? mem_device_->plugged_size() >> 20 : 0);
}

uint64_t Machine::max_memory_mib() const { return has_hotplug(config_) ? config_.max_memory_mib : config_.memory_mib; }

std::optional<std::chrono::microseconds> Machine::userspace_reached() const {
  int64_t us = userspace_us_.load();
  if (us < 0) return std::nullopt;
  return std::chrono::microseconds(us);
}

void Machine::create_vcpus(uint32_t max_vcpus) {
  // All configured now; only the boot processor has entry registers,
  // the others wait for the guest's INIT/SIPI.
  const auto cpuid = kvm_.supported_cpuid();
  const auto msrs = kvm_.msr_index_list();
  const bool tsc_deadline = kvm_.check_extension(KVM_CAP_TSC_DEADLINE_TIMER) > 0;
  // Create every vCPU before configuring any: KVM re-evaluates the APIC map
  // when a LAPIC is set, and an AP created after the last LAPIC write can miss
  // its INIT/SIPI (seen on PVM with exactly two vCPUs).
  // Every possible vCPU is present (load_boot_image): the ones past
  // `vcpus` get threads too, blocked in KVM_RUN until the guest starts them.
  std::vector<kvm::Vcpu> created;
  created.reserve(max_vcpus);
  for (uint32_t i = 0; i < max_vcpus; ++i) created.push_back(vm_.create_vcpu(i));
  for (uint32_t i = 0; i < max_vcpus; ++i) {
    boot::configure_vcpu(created[i], cpuid, msrs, {i, max_vcpus, tsc_deadline}, kernel_);
    vcpus_.push_back(std::make_unique<VcpuThread>(std::move(created[i]), pio_bus_, mmio_bus_, control_));
  }
}

Machine::~Machine() {
  stop();
  for (auto& v : vcpus_) v->join();
}

void Machine::start() {
  std::lock_guard lock(state_mutex_);
  if (state_ != VmState::Created) throw std::logic_error("VM already started");
  control_.set_running_vcpus(vcpus_.size());
  started_at_ = std::chrono::steady_clock::now();
  console_->attach_input(*serial_);
  state_ = VmState::Running;
  for (auto& v : vcpus_) v->start();
  log::info("vmm", "vm started");
}

void Machine::kick_all() {
  for (auto& v : vcpus_) v->kick();
}

void Machine::pause() {
  std::lock_guard lock(state_mutex_);
  if (state_ != VmState::Running) return;
  control_.request_pause();
  kick_all();
  control_.wait_all_parked();
  state_ = control_.finished() ? VmState::Exited : VmState::Paused;
  log::info("vmm", "vm paused");
}

void Machine::resume() {
  std::lock_guard lock(state_mutex_);
  if (state_ != VmState::Paused) return;
  control_.resume();
  state_ = VmState::Running;
  log::info("vmm", "vm resumed");
}

void Machine::stop(VmExit exit) {
  std::lock_guard lock(state_mutex_);
  control_.finish(std::move(exit));
  if (state_ == VmState::Created) {
    // No thread will ever report in; nothing to wait for.
    control_.set_running_vcpus(0);
  }
  state_ = VmState::Exited;
}

VmExit Machine::wait() {
  auto e = control_.wait();
  mark_exited(e);
  return e;
}

std::optional<VmExit> Machine::wait_for(std::chrono::milliseconds timeout) {
  auto e = control_.wait_for(timeout);
  if (e) mark_exited(*e);
  return e;
}

void Machine::mark_exited(const VmExit& e) {
  std::lock_guard lock(state_mutex_);
  if (exit_logged_) return;
  exit_logged_ = true;
  state_ = VmState::Exited;
  log::Fields fields = {{"reason", to_string(e.kind)}, {"detail", e.detail}};
  for (const auto& v : vcpus_) fields.emplace_back("exits_vcpu" + std::to_string(v->id()), v->counters().summary());
  const auto serial = serial_->stats();
  fields.emplace_back("serial_tx_bytes", serial.tx_bytes);
  fields.emplace_back("serial_tx_dropped", serial.tx_dropped);
  log::info("vmm", "vm exited", fields);
}

VmState Machine::state() const {
  std::lock_guard lock(state_mutex_);
  if (control_.finished()) return VmState::Exited;
  return state_;
}

}  // namespace skiff
