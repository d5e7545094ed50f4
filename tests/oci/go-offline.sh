# Sourced by the tests/oci scripts (bash): what they need of Debian's Go,
# GOPATH mode, offline, and one way to build with it. The caller defines
# skip() (print the reason, exit 77). CMake builds the same way
# (skiff_go_build in tests/CMakeLists.txt).
go_gopath="/usr/share/gocode:$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/conformance/gopath"
runtime_tools_src=/usr/share/gocode/src/github.com/opencontainers/runtime-tools

# Skips unless Go, runtime-tools' sources and a static busybox (a rootfs
# without libc) are installed.
go_offline_require() {
  command -v go >/dev/null 2>&1 || skip "go not found (apt package golang-go)"
  if [ ! -f "$runtime_tools_src/generate/generate.go" ] || [ ! -f "$runtime_tools_src/specerror/runtime.go" ]; then
    skip "no runtime-tools sources in $runtime_tools_src (apt package golang-github-opencontainers-runtime-tools-dev)"
  fi
  [ -x /bin/busybox ] || skip "no /bin/busybox for the rootfs (apt package busybox-static)"
  # ldd succeeds on a dynamic executable: the rootfs has no libc for it.
  if ldd /bin/busybox >/dev/null 2>&1; then
    skip "/bin/busybox is not static (apt package busybox-static)"
  fi
}

# go_offline_build DIR OUTPUT FILE.go: a static program, no network.
go_offline_build() {
  (cd "$1" && GO111MODULE=off GOPATH=$go_gopath CGO_ENABLED=0 GOFLAGS="" GOPROXY=off \
     GOCACHE=${GOCACHE:-$(dirname "$2")/go-cache} go build -o "$2" "$3")
}
