# The agent API: what the runtime on the host asks of skiff-agent, PID 1 of
# the guest, over one virtio-vsock stream (docs/DESIGN.md section 1). The
# agent's bootstrap capability is a Sandbox; containers and processes are
# capabilities it hands out, so a runtime pipelines
#   sandbox.createContainer(...).container.start()  and  .wait()
# in one round trip, and dropping a capability never kills what it names
# (Container.remove and Process.signal do that).
#
# The container spec is OCI-shaped (opencontainers/runtime-spec config.json,
# Linux part): the same field names, string-typed where OCI uses strings
# (namespace types, capability and rlimit names, seccomp actions), so the
# agent validates what the host sends and a bad name comes back as one error
# that names the field. Numeric fields use 0 for "not set" where OCI leaves
# them out; a `has...` flag marks the few where 0 is a real value.
@0xd5a1c3e7f9b20461;

using Cxx = import "/capnp/c++.capnp";
$Cxx.namespace("skiff::api");

const apiVersion :UInt32 = 1;

# ---- streams ----

# Bytes with flow control: `write` is a streaming call, so the sender has
# only a window of writes in flight and a slow reader slows the writer.
interface ByteStream {
  write @0 (bytes :Data) -> stream;
  # No more bytes (EOF for the reader).
  end @1 ();
}

struct KeyValue {
  key @0 :Text;
  value @1 :Text;
}

# ---- the OCI-shaped spec ----

struct Spec {
  process @0 :ProcessSpec;
  root @1 :Root;
  hostname @2 :Text;
  mounts @3 :List(Mount);
  linux @4 :Linux;
  annotations @5 :List(KeyValue);
}

struct Root {
  # Absolute in the guest (the shared virtio-fs tag's mount or a block
  # device's mount made by Sandbox.setup), or relative to the bundle.
  path @0 :Text;
  readonly @1 :Bool;
}

struct WindowSize {
  rows @0 :UInt16;
  cols @1 :UInt16;
}

struct User {
  uid @0 :UInt32;
  gid @1 :UInt32;
  additionalGids @2 :List(UInt32);
  # When set, resolved in the container's /etc/passwd (and /etc/group for
  # its groups) instead of uid/gid, as containerd does for an image's
  # "user": "name".
  username @3 :Text;
  umask @4 :UInt32;
  hasUmask @5 :Bool;
}

struct Capabilities {
  # "CAP_SYS_ADMIN" and the like (capabilities(7)).
  bounding @0 :List(Text);
  effective @1 :List(Text);
  inheritable @2 :List(Text);
  permitted @3 :List(Text);
  ambient @4 :List(Text);
}

struct Rlimit {
  type @0 :Text;  # "RLIMIT_NOFILE" and the like (getrlimit(2))
  hard @1 :UInt64;
  soft @2 :UInt64;
}

struct ProcessSpec {
  terminal @0 :Bool;
  consoleSize @1 :WindowSize;
  user @2 :User;
  args @3 :List(Text);
  env @4 :List(Text);  # "KEY=value"
  cwd @5 :Text;        # absolute
  capabilities @6 :Capabilities;
  rlimits @7 :List(Rlimit);
  noNewPrivileges @8 :Bool;
  oomScoreAdj @9 :Int32;
  hasOomScoreAdj @10 :Bool;
  apparmorProfile @11 :Text;  # ignored in the guest, logged
  selinuxLabel @12 :Text;     # ignored in the guest, logged
}

struct Mount {
  destination @0 :Text;
  type @1 :Text;
  source @2 :Text;
  options @3 :List(Text);  # mount(8) options: ro, nosuid, bind, rbind, rprivate, mode=755, ...
}

struct Namespace {
  type @0 :Text;  # "mount", "pid", "ipc", "uts", "cgroup", "network", "user"
  path @1 :Text;  # join this namespace (another container's: a pod); empty: a new one
}

struct Device {
  type @0 :Text;  # "c", "b", "u" or "p"
  path @1 :Text;
  major @2 :Int64;
  minor @3 :Int64;
  fileMode @4 :UInt32;
  hasFileMode @5 :Bool;
  uid @6 :UInt32;
  gid @7 :UInt32;
}

struct DeviceRule {
  allow @0 :Bool;
  type @1 :Text;      # "a", "c" or "b"
  major @2 :Int64 = -1;  # -1: any
  minor @3 :Int64 = -1;
  access @4 :Text;    # some of "rwm"
}

struct Resources {
  devices @0 :List(DeviceRule);
  memory :group {
    limit @1 :Int64;        # bytes; 0 unset, -1 unlimited
    reservation @2 :Int64;  # memory.low
    swap @3 :Int64;         # memory + swap, as OCI has it
    high @4 :Int64;         # memory.high (cgroup v2)
  }
  cpu :group {
    shares @5 :UInt64;  # cgroup v1 shares, mapped to cpu.weight
    quota @6 :Int64;    # microseconds per period; 0 unset, -1 unlimited
    period @7 :UInt64;
    cpus @8 :Text;      # cpuset
    mems @9 :Text;
  }
  pidsLimit @10 :Int64;     # 0 unset, -1 unlimited
  blockIoWeight @11 :UInt16;
  unified @12 :List(KeyValue);  # cgroup v2 files written as they are
}

struct SeccompArg {
  index @0 :UInt32;
  value @1 :UInt64;
  valueTwo @2 :UInt64;
  op @3 :Text;  # "SCMP_CMP_EQ" and the like
}

struct SeccompSyscall {
  names @0 :List(Text);
  action @1 :Text;  # "SCMP_ACT_ERRNO" and the like
  errnoRet @2 :UInt32;
  hasErrnoRet @3 :Bool;
  args @4 :List(SeccompArg);
}

struct Seccomp {
  defaultAction @0 :Text;
  defaultErrnoRet @1 :UInt32;
  hasDefaultErrnoRet @2 :Bool;
  architectures @3 :List(Text);  # "SCMP_ARCH_X86_64" and the like
  flags @4 :List(Text);
  syscalls @5 :List(SeccompSyscall);
}

struct Linux {
  namespaces @0 :List(Namespace);
  devices @1 :List(Device);
  resources @2 :Resources;
  cgroupsPath @3 :Text;  # under the sandbox's cgroup
  sysctl @4 :List(KeyValue);
  seccomp @5 :Seccomp;
  hasSeccomp @6 :Bool;
  rootfsPropagation @7 :Text;
  maskedPaths @8 :List(Text);
  readonlyPaths @9 :List(Text);
  mountLabel @10 :Text;  # ignored in the guest, logged
}

# ---- what the agent hands out ----

struct ExitStatus {
  code @0 :Int32;    # the shell's convention: 128 + signal for a signalled process
  signal @1 :Int32;  # the signal that ended it, or 0
}

# Where a process's output goes (capabilities the host implements), and
# whether it gets a stdin (Process.stdin).
struct Stdio {
  stdout @0 :ByteStream;
  stderr @1 :ByteStream;  # ignored with a terminal: the pty merges both
  stdin @2 :Bool;
}

interface Process {
  pid @0 () -> (pid :UInt32);
  # The stream to write stdin into (Stdio.stdin was set); end() closes it.
  stdin @1 () -> (stream :ByteStream);
  resizeTerminal @2 (size :WindowSize);
  signal @3 (signal :Int32);
  # Resolves when the process has exited and its output streams have ended.
  wait @4 () -> (status :ExitStatus);
}

struct Stats {
  cpuUsageUsec @0 :UInt64;
  cpuUserUsec @1 :UInt64;
  cpuSystemUsec @2 :UInt64;
  memoryCurrent @3 :UInt64;
  memoryMax @4 :UInt64;  # 0: no limit
  memoryOomKills @5 :UInt64;
  pidsCurrent @6 :UInt64;
  ioReadBytes @7 :UInt64;
  ioWriteBytes @8 :UInt64;
  netRxBytes @9 :UInt64;
  netTxBytes @10 :UInt64;
  netRxPackets @11 :UInt64;
  netTxPackets @12 :UInt64;
}

enum ContainerStatus {
  created @0;
  running @1;
  paused @2;
  stopped @3;
}

interface Container {
  # Runs the spec's process (created stopped before its exec, as runc does).
  start @0 () -> (pid :UInt32);
  # The spec's process (the container's init).
  init @1 () -> (process :Process);
  exec @2 (execId :Text, process :ProcessSpec, stdio :Stdio) -> (process :Process);
  # To the init process, or with `all` to every process of the container.
  signal @3 (signal :Int32, all :Bool);
  wait @4 () -> (status :ExitStatus);
  ps @5 () -> (pids :List(UInt32));
  stats @6 () -> (stats :Stats);
  pause @7 ();   # cgroup.freeze
  resume @8 ();
  update @9 (resources :Resources);
  state @10 () -> (status :ContainerStatus, pid :UInt32, exit :ExitStatus);
  # Kills what is left, unmounts, removes the cgroup; the id is free again.
  remove @11 ();
}

# A filesystem the sandbox mounts for its containers.
struct Storage {
  driver @0 :Text;      # "virtiofs" (source: the tag) or "blk" (source: /dev/vdX)
  source @1 :Text;
  fsType @2 :Text;      # for "blk": ext4, xfs, ...
  options @3 :List(Text);
  mountPoint @4 :Text;  # absolute in the guest
}

struct SandboxConfig {
  hostname @0 :Text;
  dnsServers @1 :List(Text);
  dnsSearches @2 :List(Text);
  dnsOptions @3 :List(Text);
  sysctls @4 :List(KeyValue);
  storages @5 :List(Storage);
  sandboxId @6 :Text;  # named in every log line of the agent from then on
}

struct GuestDetails {
  kernelRelease @0 :Text;
  cpus @1 :UInt32;
  memoryBytes @2 :UInt64;
  memoryBlockSizeBytes @3 :UInt64;  # the unit of memory hotplug
  agentVersion @4 :Text;
}

# What the agent reports unasked (Sandbox.watch).
interface EventSink {
  containerExited @0 (containerId :Text, execId :Text, pid :UInt32, status :ExitStatus);
  oom @1 (containerId :Text);
}

# Held by the watcher of Sandbox.watch; nothing to call.
interface Subscription {}

interface Sandbox {
  setup @0 (config :SandboxConfig);
  createContainer @1 (id :Text, spec :Spec, stdio :Stdio) -> (container :Container);
  container @2 (id :Text) -> (container :Container);
  listContainers @3 () -> (ids :List(Text));
  health @4 () -> (serving :Bool);
  version @5 () -> (agentVersion :Text, apiVersion :UInt32);
  guestDetails @6 () -> (details :GuestDetails);
  # The host's wall clock (after a resume or a long pause).
  setTime @7 (unixNanos :Int64);
  # Events go to `sink` while the caller holds `subscription`: dropping it,
  # or losing the connection, ends them (a sink that refers back to the
  # agent can't keep it alive for ever). A sink whose call fails is dropped.
  watch @8 (sink :EventSink) -> (subscription :Subscription);
  # Ends every container and powers the VM off (or reboots it).
  powerOff @9 (reboot :Bool);
  # Takes vCPUs online or offline until `count` are online (the
  # lowest-numbered present ones); answers how many are online after.
  setOnlineCpus @10 (count :UInt32) -> (online :UInt32);
}
