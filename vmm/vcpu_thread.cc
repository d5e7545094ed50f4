#include "vmm/vcpu_thread.h"

#include <csignal>
#include <cstdio>
#include <cstring>
#include <mutex>

#include "base/hex.h"
#include "base/log.h"

namespace skiff {
namespace {

int kick_signal() { return SIGRTMIN + 1; }

void ignore_kick(int) {}

void store_immediate_exit(kvm_run* run, uint8_t v) {
  std::atomic_ref<uint8_t>(run->immediate_exit).store(v, std::memory_order_seq_cst);
}


}  // namespace

void VcpuThread::install_kick_handler() {
  static std::once_flag once;
  std::call_once(once, [] {
    struct sigaction sa {};
    sa.sa_handler = ignore_kick;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0;  // no SA_RESTART: KVM_RUN must return EINTR
    sigaction(kick_signal(), &sa, nullptr);
  });
}

VcpuThread::VcpuThread(kvm::Vcpu vcpu, const devices::Bus& pio, const devices::Bus& mmio, RunControl& control)
    : vcpu_(std::move(vcpu)), pio_(pio), mmio_(mmio), control_(control) {
  install_kick_handler();
}

VcpuThread::~VcpuThread() { join(); }

void VcpuThread::start() {
  thread_ = std::thread([this] {
    char name[16];
    std::snprintf(name, sizeof name, "vcpu%u", vcpu_.id());
    pthread_setname_np(pthread_self(), name);
    loop();
  });
  handle_ = thread_.native_handle();
  started_.store(true);
}

void VcpuThread::kick() {
  store_immediate_exit(vcpu_.run_state(), 1);
  if (started_.load() && thread_.joinable()) pthread_kill(handle_, kick_signal());
}

void VcpuThread::join() {
  if (thread_.joinable()) thread_.join();
}

void VcpuThread::loop() {
  kvm_run* run = vcpu_.run_state();
  try {
    for (;;) {
      // Clear the kick before reading the requests: a kick sent after this
      // point either is seen below or makes KVM_RUN return at once.
      store_immediate_exit(run, 0);
      if (control_.should_stop()) break;
      if (control_.should_pause()) {
        control_.park();
        continue;
      }
      if (!vcpu_.run()) {
        counters_.count(KVM_EXIT_INTR);
        continue;
      }
      if (!handle_exit()) break;
    }
  } catch (const std::exception& e) {
    control_.finish({VmExitKind::Error, "vCPU " + std::to_string(vcpu_.id()) + ": " + e.what()});
  }
  control_.vcpu_exited();
}

void VcpuThread::unclaimed(const char* space, bool write, uint64_t addr, size_t size) {
  const uint64_t n = counters_.unclaimed_pio() + counters_.unclaimed_mmio();
  // The first few say where a guest pokes at hardware Skiff doesn't have;
  // after that only the counters grow.
  if (n < kUnclaimedLogged && log::Logger::global().enabled(log::Level::Debug))
    log::debug("vmm", "unclaimed access",
               {{"vcpu", uint64_t{vcpu_.id()}}, {"space", std::string(space)}, {"write", write}, {"addr", hex(addr)},
                {"size", uint64_t{size}}});
}

void VcpuThread::handle_io(kvm_run* run) {
  auto* base = reinterpret_cast<uint8_t*>(run) + run->io.data_offset;
  const uint16_t port = run->io.port;
  const size_t size = run->io.size;
  const bool out = run->io.direction == KVM_EXIT_IO_OUT;
  for (uint32_t i = 0; i < run->io.count; ++i) {
    uint8_t* data = base + i * size;
    bool claimed = out ? pio_.write(port, std::span<const uint8_t>(data, size))
                       : pio_.read(port, std::span<uint8_t>(data, size));
    if (claimed) continue;
    if (!out) std::memset(data, 0xff, size);  // an empty ISA bus floats high
    unclaimed("pio", out, port, size);
    counters_.count_unclaimed_pio();
  }
}

void VcpuThread::handle_mmio(kvm_run* run) {
  const uint64_t addr = run->mmio.phys_addr;
  const size_t len = std::min<size_t>(run->mmio.len, sizeof run->mmio.data);
  const bool write = run->mmio.is_write;
  bool claimed = write ? mmio_.write(addr, std::span<const uint8_t>(run->mmio.data, len))
                       : mmio_.read(addr, std::span<uint8_t>(run->mmio.data, len));
  if (claimed) return;
  if (!write) std::memset(run->mmio.data, 0xff, len);
  unclaimed("mmio", write, addr, len);
  counters_.count_unclaimed_mmio();
}

bool VcpuThread::handle_exit() {
  kvm_run* run = vcpu_.run_state();
  counters_.count(run->exit_reason);
  // Only for the messages of the exits that end the VM: not on the hot path.
  auto who = [this] { return "vCPU " + std::to_string(vcpu_.id()); };
  switch (run->exit_reason) {
    case KVM_EXIT_IO:
      handle_io(run);
      return true;
    case KVM_EXIT_MMIO:
      handle_mmio(run);
      return true;
    case KVM_EXIT_INTR:
      return true;
    case KVM_EXIT_HLT:
      // Only without an in-kernel LAPIC; Skiff always has one.
      control_.finish({VmExitKind::Error, who() + " halted with no in-kernel irqchip to wake it"});
      return false;
    case KVM_EXIT_SHUTDOWN:
      control_.finish({VmExitKind::TripleFault, who() + ": CPU shutdown (triple fault)"});
      return false;
    case KVM_EXIT_SYSTEM_EVENT:
      switch (run->system_event.type) {
        case KVM_SYSTEM_EVENT_SHUTDOWN:
          control_.finish({VmExitKind::PowerOff, "guest powered off"});
          return false;
        case KVM_SYSTEM_EVENT_RESET:
          control_.finish({VmExitKind::Reset, "guest requested a reset"});
          return false;
        case KVM_SYSTEM_EVENT_CRASH:
          control_.finish({VmExitKind::Crash, "guest reported a crash"});
          return false;
        default:
          control_.finish({VmExitKind::Error, who() + ": unknown system event " + std::to_string(run->system_event.type)});
          return false;
      }
    case KVM_EXIT_FAIL_ENTRY:
      control_.finish({VmExitKind::Error, who() + ": VM entry failed, hardware reason " +
                                              hex(run->fail_entry.hardware_entry_failure_reason)});
      return false;
    case KVM_EXIT_INTERNAL_ERROR:
      control_.finish({VmExitKind::Error, who() + ": KVM internal error, suberror " +
                                              std::to_string(run->internal.suberror)});
      return false;
    default:
      control_.finish({VmExitKind::Error, who() + ": unhandled KVM exit " + exit_reason_name(run->exit_reason)});
      return false;
  }
}

}  // namespace skiff
