// The DAX window: a KVM memslot over a PROT_NONE reservation into which file
// ranges are mapped and unmapped.
#include "vmm/dax_window.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "tests/kvm/test_device.h"
#include "vmm/kvm.h"

namespace skiff::test {
namespace {

TEST(DaxWindow, MapsFileRangesAndRejectsBadOnes) {
  SKIFF_REQUIRE_KVM();
  kvm::System kvm;
  kvm::Vm vm = kvm.create_vm();
  DaxWindow w(vm, 0, GuestAddress(4ull << 30), 4 << 20);
  EXPECT_EQ(w.base().value(), 4ull << 30);
  EXPECT_EQ(w.size(), 4u << 20);

  char path[] = "/tmp/skiff-dax-XXXXXX";
  const int fd = ::mkstemp(path);
  ASSERT_GE(fd, 0);
  ::unlink(path);
  std::string data(3 * 4096, 'a');
  data.replace(4096, 4096, std::string(4096, 'b'));
  ASSERT_EQ(::pwrite(fd, data.data(), data.size(), 0), static_cast<ssize_t>(data.size()));

  // The second page of the file at window offset 2 MiB.
  ASSERT_EQ(w.map(2 << 20, 4096, fd, 4096, false), 0);
  EXPECT_EQ(w.host_view()[2 << 20], 'b');
  // Changes to the file show through the shared mapping.
  ASSERT_EQ(::pwrite(fd, "Z", 1, 4096), 1);
  EXPECT_EQ(w.host_view()[2 << 20], 'Z');
  // Replacing a mapping in place.
  ASSERT_EQ(w.map(2 << 20, 4096, fd, 0, true), 0);
  EXPECT_EQ(w.host_view()[2 << 20], 'a');

  EXPECT_EQ(w.map(1, 4096, fd, 0, false), -EINVAL);          // offset not page aligned
  EXPECT_EQ(w.map(0, 100, fd, 0, false), -EINVAL);           // length not page aligned
  EXPECT_EQ(w.map(0, 0, fd, 0, false), -EINVAL);             // empty
  EXPECT_EQ(w.map(4 << 20, 4096, fd, 0, false), -EINVAL);    // past the end
  EXPECT_EQ(w.map((4 << 20) - 4096, 8192, fd, 0, false), -EINVAL);
  EXPECT_EQ(w.map(UINT64_MAX - 4095, 4096, fd, 0, false), -EINVAL);  // wraps
  EXPECT_EQ(w.map(0, 4096, fd, 1, false), -EINVAL);          // file offset not page aligned
  EXPECT_EQ(w.map(0, 4096, -1, 0, false), -EBADF);
  EXPECT_EQ(w.unmap(2 << 20, 4096), 0);
  EXPECT_EQ(w.unmap(0, 5 << 20), -EINVAL);
  ::close(fd);
}

TEST(DaxWindow, RefusesMisalignedWindows) {
  SKIFF_REQUIRE_KVM();
  kvm::System kvm;
  kvm::Vm vm = kvm.create_vm();
  EXPECT_THROW(DaxWindow(vm, 0, GuestAddress(4ull << 30), 4096), std::system_error);
  EXPECT_THROW(DaxWindow(vm, 0, GuestAddress((4ull << 30) + 4096), 2 << 20), std::system_error);
}

}  // namespace
}  // namespace skiff::test
