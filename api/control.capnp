# The control API: what the `skiff` CLI, skiffctl and any Cap'n Proto client
# ask of a sandbox process (docs/DESIGN.md section 1). Each sandbox process
# serves it on a Unix socket in its state directory (`<root>/<id>/control.sock`,
# mode 0600, the peer's uid checked); the bootstrap capability is the Sandbox.
#
# Containers and processes are capabilities, so a client pipelines
#   sandbox.createContainer(...).container.start()  and  .wait()
# in one round trip. A process is the agent's own Process capability,
# passed through (the sandbox process proxies its calls to the guest).
# Errors are Cap'n Proto exceptions whose description is one clear line.
@0xe4b7a2c91d3f5608;

using Cxx = import "/capnp/c++.capnp";
$Cxx.namespace("skiff::api::control");

using Agent = import "agent.capnp";

const controlApiVersion :UInt32 = 1;

struct ContainerInfo {
  id @0 :Text;
  bundle @1 :Text;
  rootfs @2 :Text;
  # "created", "running", "paused" or "stopped" (runc's words).
  status @3 :Text;
  # The container's process as the host sees it: the sandbox process (as Kata
  # reports it), since the guest's pids mean nothing on the host.
  pid @4 :UInt32;
  guestPid @5 :UInt32;
  created @6 :Text;  # RFC 3339
  annotations @7 :List(Agent.KeyValue);
  exit @8 :Agent.ExitStatus;
  hasExit @9 :Bool;
}

struct SandboxInfo {
  id @0 :Text;
  pid @1 :UInt32;  # the sandbox process
  state @2 :Text;  # "running", "paused" or "stopped" (the VM)
  vcpus @3 :UInt32;
  memoryMib @4 :UInt64;
  version @5 :Text;  # Skiff's version and commit
  commit @6 :Text;
  agentVersion @7 :Text;
  guestKernel @8 :Text;
  containers @9 :List(ContainerInfo);
  bootMillis @10 :UInt32;  # sandbox process start to the agent's first answer
  # The most resizeMemory allows (memoryMib, the guest's memory now, when
  # the sandbox was booted without room to grow).
  maxMemoryMib @11 :UInt64;
}

# What the sandbox reports unasked: container exits, OOM kills, pause and
# resume, each once, in the order they happened.
struct Event {
  type @0 :Text;  # "exit", "oom", "paused", "resumed"
  containerId @1 :Text;
  execId @2 :Text;  # for "exit" of an exec'd process; empty for the container's init
  pid @3 :UInt32;   # the guest pid
  exit @4 :Agent.ExitStatus;
  time @5 :Text;    # RFC 3339
}

interface EventSink {
  event @0 (event :Event);
}

interface Container {
  info @0 () -> (info :ContainerInfo);
  # Runs the container's process (runc start); fails unless it is created.
  start @1 () -> (guestPid :UInt32);
  # The container's process: pid, stdin, resize, signal, wait.
  init @2 () -> (process :Agent.Process);
  # With `consoleSocket` (and process.terminal), the process's terminal is a
  # pty whose master goes to that socket as runc sends it; stdio is unused.
  exec @3 (execId :Text, process :Agent.ProcessSpec, stdio :Agent.Stdio, consoleSocket :Text)
      -> (process :Agent.Process);
  # To the container's process, or with `all` to every process in it.
  kill @4 (signal :Int32, all :Bool);
  ps @5 () -> (pids :List(UInt32));
  stats @6 () -> (stats :Agent.Stats);
  update @7 (resources :Agent.Resources);
  pause @8 ();
  resume @9 ();
  # Resolves once the container's process has exited.
  wait @10 () -> (status :Agent.ExitStatus);
  # Removes it from the guest and the sandbox; a running one only with `force`
  # (killed first).
  delete @11 (force :Bool);
}

interface Sandbox {
  info @0 () -> (info :SandboxInfo);
  # Creates a container from the OCI bundle at `bundle` (a host path). Its
  # process's output goes to `stdio` (null streams: discarded).
  createContainer @1 (id :Text, bundle :Text, stdio :Agent.Stdio) -> (container :Container);
  container @2 (id :Text) -> (container :Container);
  listContainers @3 () -> (containers :List(ContainerInfo));
  # The whole VM: every vCPU stops (resume starts them again).
  pause @4 ();
  resume @5 ();
  # Events go to `sink` while the caller holds `subscription`.
  events @6 (sink :EventSink) -> (subscription :Agent.Subscription);
  # Ends every container, powers the VM off, cleans up and ends the sandbox
  # process (answered first).
  shutdown @7 ();
  # Does nothing: the control API's round trip.
  ping @8 () -> (apiVersion :UInt32);
  # Runs the guest on `vcpus` vCPUs (1 to the maximum it was booted for):
  # the hypervisor's part, then the agent's (it takes them online or
  # offline); answers how many the guest has online after.
  resizeVcpus @9 (vcpus :UInt32) -> (vcpus :UInt32);
  # Gives the guest `memoryMib` MiB of memory in all (from the memory it
  # booted with to hypervisor.default_maxmemory_mib, in 2 MiB steps) through
  # its virtio-mem device: answers once the guest has plugged or unplugged
  # it and taken it online or offline, or has stopped getting closer (memory
  # it can't give back), with the memory it has then.
  resizeMemory @10 (memoryMib :UInt64) -> (memoryMib :UInt64);
}
