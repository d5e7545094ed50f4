#include "kvm/kvm.h"

#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/mman.h>

#include <cstring>
#include <stdexcept>

#include "base/hex.h"
#include "base/sys_error.h"

namespace skiff::kvm {
namespace {

// A KVM struct ending in a flexible array (kvm_cpuid2, kvm_msrs, ...) with
// room for `n` entries, zeroed and 8-byte aligned.
template <typename Header, typename Entry>
class FlexArray {
 public:
  explicit FlexArray(size_t n) : storage_((sizeof(Header) + n * sizeof(Entry) + 7) / 8, 0) {}
  Header* get() { return reinterpret_cast<Header*>(storage_.data()); }

 private:
  std::vector<uint64_t> storage_;
};

template <typename Arg>
int ioctl_or_throw(int fd, unsigned long req, Arg arg, const std::string& what) {
  int r = retry_eintr([&] { return ::ioctl(fd, req, arg); });
  if (r < 0) throw_errno(what);
  return r;
}

}  // namespace

const std::vector<Capability>& required_capabilities() {
  static const std::vector<Capability> caps = {
      {KVM_CAP_USER_MEMORY, "KVM_CAP_USER_MEMORY"},
      {KVM_CAP_IRQCHIP, "KVM_CAP_IRQCHIP"},
      {KVM_CAP_SET_TSS_ADDR, "KVM_CAP_SET_TSS_ADDR"},
      {KVM_CAP_EXT_CPUID, "KVM_CAP_EXT_CPUID"},
      {KVM_CAP_MP_STATE, "KVM_CAP_MP_STATE"},
      {KVM_CAP_IRQFD, "KVM_CAP_IRQFD"},
      {KVM_CAP_PIT2, "KVM_CAP_PIT2"},
      {KVM_CAP_IOEVENTFD, "KVM_CAP_IOEVENTFD"},
      {KVM_CAP_IMMEDIATE_EXIT, "KVM_CAP_IMMEDIATE_EXIT"},
  };
  return caps;
}

std::string to_string(Flavour f) {
  switch (f) {
    case Flavour::HardwareVmx: return "hardware (Intel VT-x)";
    case Flavour::HardwareSvm: return "hardware (AMD-V)";
    case Flavour::Pvm: return "PVM (software KVM: small guests only, Linux boots too slowly)";
    case Flavour::Unknown: return "unknown";
  }
  return "unknown";
}

Flavour detect_flavour() {
  // The vendor module behind /dev/kvm tells hardware KVM from PVM. Loaded and
  // built-in modules both appear under /sys/module.
  auto has = [](const char* m) { return access((std::string("/sys/module/") + m).c_str(), F_OK) == 0; };
  if (has("kvm_pvm")) return Flavour::Pvm;
  if (has("kvm_intel")) return Flavour::HardwareVmx;
  if (has("kvm_amd")) return Flavour::HardwareSvm;
  return Flavour::Unknown;
}

System::System(const std::string& path) : path_(path) {
  fd_ = UniqueFd(::open(path.c_str(), O_RDWR | O_CLOEXEC));
  if (!fd_) throw_errno("open " + path);
  int version = api_version();
  if (version != KVM_API_VERSION)
    throw std::runtime_error(path + ": KVM API version " + std::to_string(version) + ", Skiff needs " +
                             std::to_string(KVM_API_VERSION));
}

int System::api_version() const { return ioctl_or_throw(fd_.get(), KVM_GET_API_VERSION, 0, "KVM_GET_API_VERSION"); }

int System::check_extension(long cap) const {
  int r = ::ioctl(fd_.get(), KVM_CHECK_EXTENSION, cap);
  return r < 0 ? 0 : r;
}

std::vector<std::string> System::missing_capabilities() const {
  std::vector<std::string> missing;
  for (const auto& c : required_capabilities())
    if (check_extension(c.id) <= 0) missing.emplace_back(c.name);
  return missing;
}

void System::require_capabilities() const {
  auto missing = missing_capabilities();
  if (missing.empty()) return;
  std::string list;
  for (const auto& m : missing) list += (list.empty() ? "" : ", ") + m;
  throw std::runtime_error(path_ + " lacks capabilities Skiff needs: " + list);
}

int System::vcpu_mmap_size() const {
  return ioctl_or_throw(fd_.get(), KVM_GET_VCPU_MMAP_SIZE, 0, "KVM_GET_VCPU_MMAP_SIZE");
}

unsigned System::max_vcpus() const {
  int n = check_extension(KVM_CAP_MAX_VCPUS);
  if (n <= 0) n = check_extension(KVM_CAP_NR_VCPUS);
  return n > 0 ? static_cast<unsigned>(n) : 4;  // the KVM API says: assume 4 when unreported
}

std::vector<kvm_cpuid_entry2> System::supported_cpuid() const {
  // Grow the buffer until KVM stops answering E2BIG.
  for (uint32_t n = 128;; n *= 2) {
    FlexArray<kvm_cpuid2, kvm_cpuid_entry2> buf(n);
    auto* cpuid = buf.get();
    cpuid->nent = n;
    if (::ioctl(fd_.get(), KVM_GET_SUPPORTED_CPUID, cpuid) == 0)
      return std::vector<kvm_cpuid_entry2>(cpuid->entries, cpuid->entries + cpuid->nent);
    if (errno != E2BIG || n > 4096) throw_errno("KVM_GET_SUPPORTED_CPUID");
  }
}

std::vector<uint32_t> System::msr_index_list() const {
  kvm_msr_list probe{};
  if (::ioctl(fd_.get(), KVM_GET_MSR_INDEX_LIST, &probe) < 0 && errno != E2BIG)
    throw_errno("KVM_GET_MSR_INDEX_LIST");
  FlexArray<kvm_msr_list, uint32_t> buf(probe.nmsrs);
  auto* list = buf.get();
  list->nmsrs = probe.nmsrs;
  ioctl_or_throw(fd_.get(), KVM_GET_MSR_INDEX_LIST, list, "KVM_GET_MSR_INDEX_LIST");
  return std::vector<uint32_t>(list->indices, list->indices + list->nmsrs);
}

Vm System::create_vm() const {
  int fd = ioctl_or_throw(fd_.get(), KVM_CREATE_VM, 0, "KVM_CREATE_VM");
  return Vm(UniqueFd(fd), vcpu_mmap_size());
}

void Vm::set_user_memory_region(uint32_t slot, uint64_t guest_phys, uint64_t size, void* host, uint32_t flags) {
  kvm_userspace_memory_region r{};
  r.slot = slot;
  r.flags = flags;
  r.guest_phys_addr = guest_phys;
  r.memory_size = size;
  r.userspace_addr = reinterpret_cast<uint64_t>(host);
  ioctl_or_throw(fd_.get(), KVM_SET_USER_MEMORY_REGION, &r, "KVM_SET_USER_MEMORY_REGION slot " + std::to_string(slot));
}

void Vm::set_tss_address(uint64_t addr) {
  ioctl_or_throw(fd_.get(), KVM_SET_TSS_ADDR, static_cast<unsigned long>(addr), "KVM_SET_TSS_ADDR");
}

void Vm::set_identity_map_address(uint64_t addr) {
  ioctl_or_throw(fd_.get(), KVM_SET_IDENTITY_MAP_ADDR, &addr, "KVM_SET_IDENTITY_MAP_ADDR");
}

void Vm::create_irqchip() { ioctl_or_throw(fd_.get(), KVM_CREATE_IRQCHIP, 0, "KVM_CREATE_IRQCHIP"); }

void Vm::create_pit() {
  kvm_pit_config cfg{};
  // Without a speaker port the guest's PC speaker probing costs exits, as in Firecracker.
  cfg.flags = KVM_PIT_SPEAKER_DUMMY;
  ioctl_or_throw(fd_.get(), KVM_CREATE_PIT2, &cfg, "KVM_CREATE_PIT2");
}

void Vm::register_irqfd(int event_fd, uint32_t gsi) {
  kvm_irqfd r{};
  r.fd = static_cast<uint32_t>(event_fd);
  r.gsi = gsi;
  ioctl_or_throw(fd_.get(), KVM_IRQFD, &r, "KVM_IRQFD gsi " + std::to_string(gsi));
}

void Vm::unregister_irqfd(int event_fd, uint32_t gsi) {
  kvm_irqfd r{};
  r.fd = static_cast<uint32_t>(event_fd);
  r.gsi = gsi;
  r.flags = KVM_IRQFD_FLAG_DEASSIGN;
  ioctl_or_throw(fd_.get(), KVM_IRQFD, &r, "KVM_IRQFD deassign gsi " + std::to_string(gsi));
}

namespace {
kvm_ioeventfd make_ioeventfd(int event_fd, uint64_t addr, uint32_t len, bool pio, const uint64_t* datamatch) {
  kvm_ioeventfd r{};
  r.fd = event_fd;
  r.addr = addr;
  r.len = len;
  if (pio) r.flags |= KVM_IOEVENTFD_FLAG_PIO;
  if (datamatch) {
    r.flags |= KVM_IOEVENTFD_FLAG_DATAMATCH;
    r.datamatch = *datamatch;
  }
  return r;
}
}  // namespace

void Vm::register_ioeventfd(int event_fd, uint64_t addr, uint32_t len, bool pio, const uint64_t* datamatch) {
  auto r = make_ioeventfd(event_fd, addr, len, pio, datamatch);
  ioctl_or_throw(fd_.get(), KVM_IOEVENTFD, &r, "KVM_IOEVENTFD");
}

void Vm::unregister_ioeventfd(int event_fd, uint64_t addr, uint32_t len, bool pio, const uint64_t* datamatch) {
  auto r = make_ioeventfd(event_fd, addr, len, pio, datamatch);
  r.flags |= KVM_IOEVENTFD_FLAG_DEASSIGN;
  ioctl_or_throw(fd_.get(), KVM_IOEVENTFD, &r, "KVM_IOEVENTFD deassign");
}

void Vm::set_irq_line(uint32_t irq, bool level) {
  kvm_irq_level l{};
  l.irq = irq;
  l.level = level ? 1 : 0;
  ioctl_or_throw(fd_.get(), KVM_IRQ_LINE, &l, "KVM_IRQ_LINE");
}

int Vm::check_extension(long cap) const {
  int r = ::ioctl(fd_.get(), KVM_CHECK_EXTENSION, cap);
  return r < 0 ? 0 : r;
}

Vcpu Vm::create_vcpu(uint32_t id) const {
  int fd = ioctl_or_throw(fd_.get(), KVM_CREATE_VCPU, static_cast<unsigned long>(id),
                          "KVM_CREATE_VCPU " + std::to_string(id));
  return Vcpu(UniqueFd(fd), id, vcpu_mmap_size_);
}

Vcpu::Vcpu(UniqueFd fd, uint32_t id, int mmap_size) : fd_(std::move(fd)), id_(id), mmap_size_(mmap_size) {
  void* p = ::mmap(nullptr, mmap_size_, PROT_READ | PROT_WRITE, MAP_SHARED, fd_.get(), 0);
  if (p == MAP_FAILED) throw_errno("mmap kvm_run of vCPU " + std::to_string(id));
  run_ = static_cast<kvm_run*>(p);
}

Vcpu::Vcpu(Vcpu&& o) noexcept
    : fd_(std::move(o.fd_)), id_(o.id_), run_(std::exchange(o.run_, nullptr)), mmap_size_(o.mmap_size_) {}

Vcpu::~Vcpu() {
  if (run_) ::munmap(run_, mmap_size_);
}

bool Vcpu::run() {
  if (::ioctl(fd_.get(), KVM_RUN, 0) == 0) return true;
  if (errno == EINTR || errno == EAGAIN) return false;
  throw_errno("KVM_RUN on vCPU " + std::to_string(id_));
}

kvm_regs Vcpu::get_regs() const {
  kvm_regs r{};
  ioctl_or_throw(fd_.get(), KVM_GET_REGS, &r, "KVM_GET_REGS");
  return r;
}
void Vcpu::set_regs(const kvm_regs& r) { ioctl_or_throw(fd_.get(), KVM_SET_REGS, &r, "KVM_SET_REGS"); }
kvm_sregs Vcpu::get_sregs() const {
  kvm_sregs s{};
  ioctl_or_throw(fd_.get(), KVM_GET_SREGS, &s, "KVM_GET_SREGS");
  return s;
}
void Vcpu::set_sregs(const kvm_sregs& s) { ioctl_or_throw(fd_.get(), KVM_SET_SREGS, &s, "KVM_SET_SREGS"); }
void Vcpu::set_fpu(const kvm_fpu& f) { ioctl_or_throw(fd_.get(), KVM_SET_FPU, &f, "KVM_SET_FPU"); }

void Vcpu::set_cpuid(const std::vector<kvm_cpuid_entry2>& entries) {
  FlexArray<kvm_cpuid2, kvm_cpuid_entry2> buf(entries.size());
  auto* cpuid = buf.get();
  cpuid->nent = static_cast<uint32_t>(entries.size());
  std::memcpy(cpuid->entries, entries.data(), entries.size() * sizeof(kvm_cpuid_entry2));
  ioctl_or_throw(fd_.get(), KVM_SET_CPUID2, cpuid, "KVM_SET_CPUID2");
}

void Vcpu::set_msrs(const std::vector<kvm_msr_entry>& msrs) {
  if (msrs.empty()) return;
  FlexArray<kvm_msrs, kvm_msr_entry> buf(msrs.size());
  auto* list = buf.get();
  list->nmsrs = static_cast<uint32_t>(msrs.size());
  std::memcpy(list->entries, msrs.data(), msrs.size() * sizeof(kvm_msr_entry));
  int set = ioctl_or_throw(fd_.get(), KVM_SET_MSRS, list, "KVM_SET_MSRS");
  if (static_cast<size_t>(set) != msrs.size())
    throw std::runtime_error("KVM_SET_MSRS: KVM rejected MSR " + hex(msrs[set].index));
}

kvm_lapic_state Vcpu::get_lapic() const {
  kvm_lapic_state s{};
  ioctl_or_throw(fd_.get(), KVM_GET_LAPIC, &s, "KVM_GET_LAPIC");
  return s;
}
void Vcpu::set_lapic(const kvm_lapic_state& s) { ioctl_or_throw(fd_.get(), KVM_SET_LAPIC, &s, "KVM_SET_LAPIC"); }
kvm_mp_state Vcpu::get_mp_state() const {
  kvm_mp_state s{};
  ioctl_or_throw(fd_.get(), KVM_GET_MP_STATE, &s, "KVM_GET_MP_STATE");
  return s;
}

}  // namespace skiff::kvm
