#!/usr/bin/env bash
# Installs every build and test dependency of Skiff on Debian 12. Idempotent:
# packages already present are skipped by apt, and apt's lists are refreshed
# only when something is missing.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive

packages=(
  build-essential cmake ninja-build pkg-config
  libcli11-dev                         # command-line parsing of skiff and its tools
  linux-libc-dev                       # KVM uapi headers
  libboost-dev libboost-system-dev     # Boost.Asio
  capnproto libcapnp-dev               # control/agent API schemas and RPC
  liburing-dev                         # io_uring backend of virtio-blk
  libcap-dev libseccomp-dev            # the guest agent: capability names, the OCI seccomp profile
  libjemalloc-dev                      # allocator linked into the binaries
  nlohmann-json3-dev                   # OCI config.json, the state files (runtime/)
  libtomlplusplus-dev                  # the runtime's TOML config (runtime/config)
  libgtest-dev libgmock-dev            # unit tests
  librapidcheck-dev                    # property tests
  clang libclang-rt-14-dev             # libFuzzer and sanitizers
  qemu-system-x86                      # benchmark peer (microvm) and the nested e2e tier
  cpio xz-utils binutils               # unpacking kernel .debs for boot-image fixtures
  acpica-tools                         # iasl: the ACPI table tests disassemble what we generate
  linux-source-6.1 bc bison flex libelf-dev   # the guest kernel (guest-kernel/build-kernel.sh)
  busybox-static python3               # initramfs and the outer VM of the e2e tier
  golang-go golang-github-opencontainers-runtime-tools-dev   # OCI bundle validation and the conformance suite (tests/oci)
  protobuf-compiler libprotobuf-dev     # containerd's shim messages, generated at build time (runtime/shim)
  golang-github-containerd-containerd-dev golang-github-containerd-cgroups-dev   # their .proto files: task v2, types, events, cgroup metrics
  golang-github-gogo-protobuf-dev       # gogo.proto, which they import
  golang-github-containerd-ttrpc-dev    # Go's ttrpc, the interop peer of ours (tests/runtime/shim/interop); no C++ ttrpc is packaged
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup-deps: installing ${missing[*]}"
  if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
echo "setup-deps: all ${#packages[@]} packages present"
