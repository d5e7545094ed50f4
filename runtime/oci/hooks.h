#pragma once
// OCI lifecycle hooks (config.json "hooks"), run on the host as runc runs
// them.
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "runtime/oci/oci_spec.h"

namespace skiff::runtime::oci {

// Runs each hook in turn as runc does: fork+exec of path with args (args[0]
// is argv[0]; no args: argv is just the path) and exactly the hook's env, the
// container state JSON on its stdin, its stdout and stderr on the caller's
// stderr, no other fd of the caller, killed with SIGKILL after timeout_s.
// Throws std::runtime_error with one line at the first hook that fails
// ("prestart hook /usr/bin/x: exited with status 3", "...: killed by signal 11
// (Segmentation fault)", "...: timed out after 5 s", "...: exec failed: No such
// file or directory"); the caller decides whether that is fatal (prestart,
// createRuntime: yes; poststart, poststop: logged only). std::system_error
// when fork or a pipe fails. Each hook is reaped by its pid, so nothing else
// in the process may reap children it did not start (waitpid(-1)).
void run_hooks(const std::vector<Hook>& hooks, std::string_view phase, const std::string& state_json);

// The spec runs hooks "in the runtime namespace": the sandbox process
// unshares its mounts, so it keeps an fd of the mount namespace it started
// in and each hook joins it (setns) before exec. -1 (the default): hooks
// stay in the caller's. The fd must stay open while hooks may run.
void set_hook_mount_namespace(int fd);

// The runtime-spec "state" a hook reads on stdin: ociVersion, id, status
// ("creating", "created", "running", "stopped"), pid (left out when 0: no
// process yet or any more), bundle, annotations.
std::string state_json(const std::string& oci_version, const std::string& id, std::string_view status, int pid,
                       const std::string& bundle, const std::map<std::string, std::string>& annotations);

}  // namespace skiff::runtime::oci
