// virtio from a real vCPU: virtio.elf (tests/guest/virtio_guest.c) drives a
// virtio-blk disk and a virtio-vsock connection through the VM's virtio-mmio
// transports, its kicks arriving as ioeventfds on the VM's I/O thread. The
// host checks the guest's reports, the disk file, and what its vsock peer
// received.
#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <mutex>
#include <ostream>
#include <stop_token>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include "skiff_test_guests.h"
#include "tests/vmm/test_device.h"
#include "virtio/blk/blk_device.h"
#include "virtio/vsock/vsock_device.h"
#include "virtio_guest.h"
#include "base/unique_fd.h"

namespace skiff::virtio {
// Readable parameters in test output and ctest names.
inline void PrintTo(BlockBackendKind k, std::ostream* os) {
  *os << (k == BlockBackendKind::kThreadPool ? "kThreadPool" : k == BlockBackendKind::kAuto ? "kAuto" : "another backend");
}
}  // namespace skiff::virtio

namespace skiff::test {
namespace {

constexpr uint64_t kGuestCid = 3;
constexpr size_t kSector = 512;

std::string hex_list(const std::vector<uint32_t>& values) {
  std::string out;
  char buf[16];
  for (uint32_t v : values) {
    std::snprintf(buf, sizeof buf, "%s%#x", out.empty() ? "" : " ", v);
    out += buf;
  }
  return out;
}

bool is_final(uint32_t report) { return report == VG_DONE || (report & 0xffff0000u) == VG_FAIL; }

// A VG_DISK_SECTORS-sector image, zero except for the host's pattern in the
// last sector (the guest reads it to prove its reads reach this file).
class TempDisk {
 public:
  TempDisk() {
    path_ = ::testing::TempDir() + "skiff-virtio-guest-XXXXXX";
    UniqueFd fd(::mkstemp(path_.data()));
    if (!fd) throw std::system_error(errno, std::generic_category(), "mkstemp " + path_);
    std::vector<uint8_t> image(VG_DISK_SECTORS * kSector, 0);
    for (uint32_t i = 0; i < kSector; ++i) image[(VG_DISK_SECTORS - 1) * kSector + i] = vg_host_byte(i);
    if (::pwrite(fd.get(), image.data(), image.size(), 0) != static_cast<ssize_t>(image.size()))
      throw std::system_error(errno, std::generic_category(), "write " + path_);
  }
  ~TempDisk() { ::unlink(path_.c_str()); }
  TempDisk(const TempDisk&) = delete;
  TempDisk& operator=(const TempDisk&) = delete;

  const std::string& path() const { return path_; }
  // Through a new descriptor: what the device left in the file.
  std::vector<uint8_t> contents() const {
    UniqueFd fd(::open(path_.c_str(), O_RDONLY | O_CLOEXEC));
    std::vector<uint8_t> out(VG_DISK_SECTORS * kSector + 1);  // one extra: the file must not have grown
    const ssize_t n = fd ? ::pread(fd.get(), out.data(), out.size(), 0) : -1;
    out.resize(n < 0 ? 0 : static_cast<size_t>(n));
    return out;
  }

 private:
  std::string path_;
};

// The host program behind the vsock listener, on its own thread: takes the
// first connection, reads the guest's VG_PING, answers VG_PONG, then reads
// until the guest's shutdown arrives as EOF. Every wait is bounded, so a
// silent guest ends it too.
class HostPeer {
 public:
  struct Log {
    size_t accepted = 0;
    std::string received;  // every byte the guest sent
    bool replied = false;
    bool eof = false;
    std::string error;
  };

  // Called on the VM's I/O thread: hand the socket over, never block there.
  void on_accept(UniqueFd fd) {
    std::lock_guard lock(mutex_);
    ++accepted_;
    fds_.push_back(std::move(fd));
    cv_.notify_all();
  }

  void start() {
    thread_ = std::jthread([this](std::stop_token st) { run(st); });
  }

  Log finish() {
    if (thread_.joinable()) {
      thread_.request_stop();
      thread_.join();
    }
    std::lock_guard lock(mutex_);
    log_.accepted = accepted_;
    return log_;
  }

 private:
  using Clock = std::chrono::steady_clock;

  // Waits for `events` on fd: true when ready, false on timeout or stop.
  static bool wait_fd(int fd, short events, Clock::time_point deadline, const std::stop_token& st) {
    while (!st.stop_requested() && Clock::now() < deadline) {
      pollfd p{fd, events, 0};
      if (::poll(&p, 1, 100) > 0) return true;
    }
    return false;
  }

  void run(std::stop_token st) {
    const auto deadline = Clock::now() + kGuestTimeout;
    UniqueFd fd;
    {
      std::unique_lock lock(mutex_);
      if (!cv_.wait_until(lock, st, deadline, [&] { return !fds_.empty(); })) return fail("no connection");
      fd = std::move(fds_.front());
      fds_.pop_front();
    }
    const std::string ping = VG_PING, pong = VG_PONG;
    char buf[256];
    // Until EOF: the ping, then whatever the guest might wrongly send after it.
    while (!log_.eof) {
      if (!wait_fd(fd.get(), POLLIN, deadline, st)) return fail("timed out reading from the guest");
      const ssize_t n = ::read(fd.get(), buf, sizeof buf);
      if (n < 0 && (errno == EAGAIN || errno == EINTR)) continue;
      if (n < 0) return fail(std::string("read: ") + std::strerror(errno));
      std::lock_guard lock(mutex_);
      log_.received.append(buf, static_cast<size_t>(n));
      log_.eof = n == 0;
      if (log_.received == ping && !log_.replied) {
        // A 15-byte send on a stream socket with an empty buffer is whole.
        // MSG_NOSIGNAL: a device that already closed its end must fail the
        // test, not kill it with SIGPIPE.
        if (::send(fd.get(), pong.data(), pong.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(pong.size()))
          return fail_locked(std::string("send: ") + std::strerror(errno));
        log_.replied = true;
      }
    }
  }

  void fail(const std::string& why) {
    std::lock_guard lock(mutex_);
    fail_locked(why);
  }
  void fail_locked(const std::string& why) { log_.error = why; }

  std::mutex mutex_;
  std::condition_variable_any cv_;
  std::deque<UniqueFd> fds_;
  size_t accepted_ = 0;
  Log log_;
  std::jthread thread_;
};

class VirtioGuest : public ::testing::TestWithParam<virtio::BlockBackendKind> {};

TEST_P(VirtioGuest, DrivesBlockAndVsockThroughTheMmioTransport) {
  SKIFF_REQUIRE_KVM();
  TempDisk disk;
  auto rec = std::make_shared<Recorder>();
  HostPeer peer;  // outlives the VM: the listener calls it until the VM is gone

  // The machine's device manager owns the devices. The test only borrows
  // them while the machine lives: the vsock device must not outlive its I/O
  // thread.
  auto cfg = guest_config(kGuestVirtio);
  DiskConfig disk_cfg;
  disk_cfg.path = disk.path();
  disk_cfg.backend = GetParam() == virtio::BlockBackendKind::kThreadPool ? DiskBackend::ThreadPool : DiskBackend::Auto;
  VsockConfig vsock_cfg;
  vsock_cfg.guest_cid = kGuestCid;
  cfg.devices = {disk_cfg, vsock_cfg};

  const std::vector<uint32_t> expected = {
      VG_STARTED,
      VG_BLK_LEGACY_REFUSED,
      VG_BLK_READY,
      VG_BLK_WRITE_OK,
      VG_BLK_FLUSH_OK,
      VG_BLK_READBACK_OK,
      VG_BLK_HOST_SECTOR_OK,
      VG_BLK_PAST_END_IOERR,
      VG_VSOCK_READY,
      VG_VSOCK_CID | static_cast<uint32_t>(kGuestCid),
      VG_VSOCK_CONNECTED,
      VG_VSOCK_SENT,
      VG_VSOCK_REPLY_OK,
      VG_VSOCK_CLOSED,
      VG_DONE,
  };
  std::optional<VmExit> exit;
  std::string backend;
  {
    Machine vm(cfg);
    attach_test_devices(vm, rec);
    ASSERT_EQ(vm.devices().size(), 2u);
    const auto* disk_dev = vm.devices().find("disk0");
    ASSERT_NE(disk_dev, nullptr);
    auto* blk = disk_dev->as<virtio::BlockDevice>();
    ASSERT_NE(blk, nullptr);
    auto vsock = vm.vsock();
    ASSERT_NE(vsock, nullptr);
    EXPECT_EQ(vm.devices().find("vsock0")->model.get(), static_cast<virtio::VirtioDevice*>(vsock.get()));
    backend = blk->backend_name();
    vsock->listen(VG_HOST_PORT, [&peer](UniqueFd fd) { peer.on_accept(std::move(fd)); });
    peer.start();
    vm.start();
    // A failing guest halts instead of resetting: its final report ends the wait early.
    const bool final = rec->wait_reports([](const auto& r) { return !r.empty() && is_final(r.back()); }, kGuestTimeout);
    const auto reports = rec->reports();
    EXPECT_EQ(hex_list(reports), hex_list(expected))
        << "a 0xdeadSSSR report is a guest failure at step 0xSSS, reason R (tests/guest/virtio_guest.h)";
    if (final && reports.back() == VG_DONE) exit = vm.wait_for(kGuestTimeout);
    if (!exit) vm.stop();
    EXPECT_EQ(vm.exit_counters(0).unclaimed_mmio(), 0u);
    EXPECT_EQ(vm.exit_counters(0).unclaimed_pio(), 0u);
  }
  const HostPeer::Log log = peer.finish();

  ASSERT_TRUE(exit.has_value()) << "the guest did not end the VM";
  EXPECT_EQ(exit->kind, VmExitKind::Reset) << exit->detail;

  RecordProperty("backend", backend);  // which one kAuto picked, in the test's XML
  if (GetParam() == virtio::BlockBackendKind::kThreadPool) {
    EXPECT_EQ(backend, "thread-pool");
  }

  // The written sector reached the file; nothing else changed.
  const auto image = disk.contents();
  ASSERT_EQ(image.size(), VG_DISK_SECTORS * kSector);
  for (size_t sector = 0; sector < VG_DISK_SECTORS; ++sector) {
    for (uint32_t i = 0; i < kSector; ++i) {
      const uint8_t want = sector == VG_BLK_WRITE_SECTOR    ? vg_guest_byte(i)
                           : sector == VG_DISK_SECTORS - 1 ? vg_host_byte(i)
                                                           : 0;
      ASSERT_EQ(image[sector * kSector + i], want) << "sector " << sector << " byte " << i;
    }
  }

  // One connection; the host got the ping, answered, and saw the guest's shutdown.
  EXPECT_EQ(log.error, "");
  EXPECT_EQ(log.accepted, 1u);
  EXPECT_EQ(log.received, VG_PING);
  EXPECT_TRUE(log.replied);
  EXPECT_TRUE(log.eof) << "the guest's SHUTDOWN should reach the host as EOF";
}

INSTANTIATE_TEST_SUITE_P(Backends, VirtioGuest,
                         ::testing::Values(virtio::BlockBackendKind::kAuto, virtio::BlockBackendKind::kThreadPool),
                         [](const ::testing::TestParamInfo<virtio::BlockBackendKind>& info) {
                           return info.param == virtio::BlockBackendKind::kThreadPool ? "ThreadPool" : "Auto";
                         });

}  // namespace
}  // namespace skiff::test
