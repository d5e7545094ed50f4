#pragma once
// One vCPU's thread: the KVM_RUN loop, port and MMIO exits dispatched to the
// buses, and kicks (a signal plus immediate_exit) for pause and stop.
#include <pthread.h>

#include <thread>

#include "devices/bus.h"
#include "vmm/exit_counters.h"
#include "kvm/kvm.h"
#include "vmm/run_control.h"

namespace skiff {

class VcpuThread {
 public:
  VcpuThread(kvm::Vcpu vcpu, const devices::Bus& pio, const devices::Bus& mmio, RunControl& control);
  ~VcpuThread();
  VcpuThread(const VcpuThread&) = delete;
  VcpuThread& operator=(const VcpuThread&) = delete;

  void start();
  // Makes KVM_RUN return promptly (or not enter) so the loop sees new requests.
  void kick();
  void join();

  uint32_t id() const { return vcpu_.id(); }
  const ExitCounters& counters() const { return counters_; }

  // Installs the no-op handler of the kick signal (once per process).
  static void install_kick_handler();

 private:
  void loop();
  // Returns false when the exit ends the VM.
  bool handle_exit();
  void handle_io(kvm_run* run);
  void handle_mmio(kvm_run* run);
  // Logs the first kUnclaimedLogged accesses no device claimed (debug level).
  void unclaimed(const char* space, bool write, uint64_t addr, size_t size);
  static constexpr uint64_t kUnclaimedLogged = 32;

  kvm::Vcpu vcpu_;
  const devices::Bus& pio_;
  const devices::Bus& mmio_;
  RunControl& control_;
  ExitCounters counters_;
  std::thread thread_;
  pthread_t handle_{};
  std::atomic<bool> started_{false};
};

}  // namespace skiff
