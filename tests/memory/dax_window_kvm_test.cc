// The DAX window: a KVM memslot over a PROT_NONE reservation into which file
// ranges are mapped and unmapped.
#include "memory/dax_window.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "tests/vmm/test_device.h"
#include "kvm/kvm.h"

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

// The FUSE side of DAX: SETUPMAPPING maps the looked-up inode's range into
// the window, REMOVEMAPPING clears it, bad ranges and ids are refused.
#include <linux/fuse.h>

#include "virtio/fs/passthrough_fs.h"

namespace skiff::test {
namespace {

struct Fuse {
  explicit Fuse(virtio::PassthroughFs& s) : fs(s) {}
  // Sends one request; returns (error, reply body).
  std::pair<int32_t, std::vector<uint8_t>> call(uint32_t opcode, uint64_t nodeid, const void* arg, size_t len,
                                                const std::string& name = "") {
    fuse_in_header h{};
    h.opcode = opcode;
    h.nodeid = nodeid;
    h.unique = ++unique;
    std::vector<uint8_t> in(sizeof h);
    in.insert(in.end(), static_cast<const uint8_t*>(arg), static_cast<const uint8_t*>(arg) + len);
    if (!name.empty()) in.insert(in.end(), name.c_str(), name.c_str() + name.size() + 1);
    h.len = static_cast<uint32_t>(in.size());
    std::memcpy(in.data(), &h, sizeof h);
    std::vector<uint8_t> out(4096);
    virtio::ChainReader r({std::span<const uint8_t>(in)});
    virtio::ChainWriter w({std::span<uint8_t>(out)});
    const uint32_t n = fs.handle(r, w);
    fuse_out_header oh{};
    std::memcpy(&oh, out.data(), sizeof oh);
    EXPECT_EQ(oh.len, n);
    return {oh.error, std::vector<uint8_t>(out.begin() + sizeof oh, out.begin() + n)};
  }
  virtio::PassthroughFs& fs;
  uint64_t unique = 0;
};

TEST(DaxWindow, FuseSetupAndRemoveMapping) {
  SKIFF_REQUIRE_KVM();
  kvm::System kvm;
  kvm::Vm vm = kvm.create_vm();
  char dir[] = "/tmp/skiff-daxfs-XXXXXX";
  ASSERT_TRUE(::mkdtemp(dir));
  const std::string file = std::string(dir) + "/data";
  {
    std::string content(8192, 'x');
    content.replace(4096, 5, "page2");
    const int fd = ::open(file.c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
    ASSERT_EQ(::write(fd, content.data(), content.size()), 8192);
    ::close(fd);
  }
  virtio::PassthroughOptions o;
  o.root = dir;
  o.dax = std::make_shared<DaxWindow>(vm, 0, GuestAddress(4ull << 30), 4 << 20);
  virtio::PassthroughFs fs(o);
  Fuse f(fs);
  fuse_init_in ii{};
  ii.major = 7;
  ii.minor = 38;
  ii.flags = FUSE_MAP_ALIGNMENT;
  auto [err, body] = f.call(FUSE_INIT, 0, &ii, sizeof ii);
  ASSERT_EQ(err, 0);
  fuse_init_out io{};
  std::memcpy(&io, body.data(), std::min(body.size(), sizeof io));
  EXPECT_TRUE(io.flags & FUSE_MAP_ALIGNMENT);
  EXPECT_EQ(io.map_alignment, 12);
  auto [lerr, entry] = f.call(FUSE_LOOKUP, FUSE_ROOT_ID, nullptr, 0, "data");
  ASSERT_EQ(lerr, 0);
  fuse_entry_out e{};
  std::memcpy(&e, entry.data(), sizeof e);

  fuse_setupmapping_in si{};
  si.fh = UINT64_MAX;  // as Linux sends it: the inode is the nodeid
  si.foffset = 4096;
  si.len = 4096;
  si.moffset = 2 << 20;
  si.flags = FUSE_SETUPMAPPING_FLAG_READ;
  EXPECT_EQ(f.call(FUSE_SETUPMAPPING, e.nodeid, &si, sizeof si).first, 0);
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(o.dax->host_view().data()) + (2 << 20), 5), "page2");

  fuse_setupmapping_in bad = si;
  bad.moffset = 4 << 20;  // past the window
  EXPECT_EQ(f.call(FUSE_SETUPMAPPING, e.nodeid, &bad, sizeof bad).first, -EINVAL);
  bad = si;
  bad.len = 8 << 20;
  EXPECT_EQ(f.call(FUSE_SETUPMAPPING, e.nodeid, &bad, sizeof bad).first, -EINVAL);
  EXPECT_EQ(f.call(FUSE_SETUPMAPPING, 12345, &si, sizeof si).first, -EBADF);  // nodeid never issued
  bad = si;
  bad.fh = 77;  // handle never issued
  EXPECT_EQ(f.call(FUSE_SETUPMAPPING, e.nodeid, &bad, sizeof bad).first, -EBADF);
  EXPECT_EQ(f.call(FUSE_SETUPMAPPING, FUSE_ROOT_ID, &si, sizeof si).first, -EINVAL);  // a directory

  // Linux sends the count and the entries back to back, no padding.
  fuse_removemapping_in rin{1};
  const fuse_removemapping_one one{2 << 20, 4096};
  std::vector<uint8_t> rm(sizeof rin + sizeof one);
  std::memcpy(rm.data(), &rin, sizeof rin);
  std::memcpy(rm.data() + sizeof rin, &one, sizeof one);
  EXPECT_EQ(f.call(FUSE_REMOVEMAPPING, e.nodeid, rm.data(), rm.size()).first, 0);
  rin.count = 2;  // claims more entries than it sends
  std::memcpy(rm.data(), &rin, sizeof rin);
  EXPECT_EQ(f.call(FUSE_REMOVEMAPPING, e.nodeid, rm.data(), rm.size()).first, -EINVAL);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace skiff::test
