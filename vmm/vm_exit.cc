#include "vmm/vm_exit.h"

namespace skiff {

std::string to_string(VmExitKind k) {
  switch (k) {
    case VmExitKind::PowerOff: return "power-off";
    case VmExitKind::Reset: return "reset";
    case VmExitKind::TripleFault: return "triple-fault";
    case VmExitKind::Crash: return "crash";
    case VmExitKind::Stopped: return "stopped";
    case VmExitKind::Error: return "error";
  }
  return "unknown";
}

int exit_status(VmExitKind k) {
  switch (k) {
    case VmExitKind::PowerOff: return 0;
    case VmExitKind::Error: return 1;
    case VmExitKind::Reset: return 3;
    case VmExitKind::TripleFault: return 4;
    case VmExitKind::Crash: return 5;
    case VmExitKind::Stopped: return 6;
  }
  return 1;
}

}  // namespace skiff
