#pragma once
// Why a VM ended, and the process exit status `skiff boot` gives for it.
#include <string>

namespace skiff {

enum class VmExitKind {
  PowerOff,     // the guest powered off (KVM system event SHUTDOWN)
  Reset,        // the guest asked for a reset: i8042 0xFE, or a KVM system event RESET
  TripleFault,  // KVM_EXIT_SHUTDOWN: the CPU shut down, almost always a triple fault
  Crash,        // the guest reported a crash (KVM system event CRASH, pvpanic)
  Stopped,      // the host stopped it (API call, signal)
  Error,        // the VMM could not go on: KVM_RUN failed, entry failure, internal error
};

struct VmExit {
  VmExitKind kind = VmExitKind::Stopped;
  std::string detail;
};

std::string to_string(VmExitKind);
// 0 for a power-off; a distinct non-zero status for every other reason.
int exit_status(VmExitKind);

}  // namespace skiff
