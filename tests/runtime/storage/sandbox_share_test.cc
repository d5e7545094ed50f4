// A sandbox's virtio-fs share on the host: bind mounts per container, read-only
// volumes enforced by the host kernel, all-or-nothing, clean removal.
#include "runtime/storage/sandbox_share.h"

#include <gtest/gtest.h>
#include <fcntl.h>
#include <sys/mount.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

namespace skiff::runtime {
namespace {

namespace fs = std::filesystem;

std::string slurp(const fs::path& p) {
  std::ifstream f(p);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

bool mounted(const std::string& path) {
  // Field 5 of /proc/self/mountinfo is the mount point.
  std::ifstream f("/proc/self/mountinfo");
  std::string line;
  while (std::getline(f, line)) {
    std::istringstream in(line);
    std::string field;
    for (int i = 0; i < 5 && in >> field; ++i) {
    }
    if (field == path) return true;
  }
  return false;
}

class SandboxShareTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/skiff-share-XXXXXX";
    root_ = ::mkdtemp(tmpl);
    fs::create_directories(root_ / "bundle/rootfs/etc");
    std::ofstream(root_ / "bundle/rootfs/etc/hostname") << "container\n";
    fs::create_directories(root_ / "vol-rw");
    fs::create_directories(root_ / "vol-ro");
    std::ofstream(root_ / "vol-ro/data") << "read only\n";
    std::ofstream(root_ / "single-file") << "a file volume\n";
    // Mounting needs CAP_SYS_ADMIN here; find out once, plainly.
    fs::create_directories(root_ / "probe");
    if (::mount((root_ / "vol-rw").c_str(), (root_ / "probe").c_str(), nullptr, MS_BIND, nullptr) != 0)
      can_mount_ = false;
    else
      ::umount2((root_ / "probe").c_str(), MNT_DETACH);
  }
  void TearDown() override { fs::remove_all(root_); }
  fs::path root_;
  bool can_mount_ = true;
};

#define REQUIRE_MOUNT() \
  if (!can_mount_) GTEST_SKIP() << "bind mounts need CAP_SYS_ADMIN, which this test process lacks"

TEST_F(SandboxShareTest, ContainerRootfsAndVolumesAppearUnderTheShare) {
  REQUIRE_MOUNT();
  const std::string dir = root_ / "shared";
  {
    SandboxShare share(dir);
    auto c = share.add_container("c1", root_ / "bundle/rootfs", false,
                                 {{root_ / "vol-rw", false}, {root_ / "vol-ro", true}, {root_ / "single-file", true}});
    EXPECT_EQ(c.rootfs, "c1/rootfs");
    ASSERT_EQ(c.volumes.size(), 3u);
    EXPECT_EQ(c.volumes[1], "c1/volumes/1");
    EXPECT_EQ(slurp(dir + "/c1/rootfs/etc/hostname"), "container\n");
    EXPECT_EQ(slurp(dir + "/c1/volumes/1/data"), "read only\n");
    EXPECT_EQ(slurp(dir + "/c1/volumes/2"), "a file volume\n");
    // Writable volume: a write lands in the source.
    std::ofstream(dir + "/c1/volumes/0/new") << "x";
    EXPECT_TRUE(fs::exists(root_ / "vol-rw/new"));
    // Read-only volume: the host kernel refuses, whoever asks.
    errno = 0;
    EXPECT_EQ(::open((dir + "/c1/volumes/1/data").c_str(), O_WRONLY), -1);
    EXPECT_EQ(errno, EROFS);
    EXPECT_EQ(::mkdir((dir + "/c1/volumes/1/sub").c_str(), 0755), -1);
    EXPECT_EQ(errno, EROFS);
    EXPECT_TRUE(mounted(dir + "/c1/rootfs"));
    EXPECT_EQ(share.containers(), std::vector<std::string>{"c1"});

    share.remove_container("c1");
    EXPECT_FALSE(mounted(dir + "/c1/rootfs"));
    EXPECT_FALSE(fs::exists(dir + "/c1"));
    // The sources are untouched by the removal.
    EXPECT_EQ(slurp(root_ / "bundle/rootfs/etc/hostname"), "container\n");
    EXPECT_EQ(slurp(root_ / "vol-ro/data"), "read only\n");
    share.remove_container("c1");  // again: a no-op
  }
  EXPECT_FALSE(fs::exists(dir));
}

TEST_F(SandboxShareTest, ReadOnlyRootfs) {
  REQUIRE_MOUNT();
  SandboxShare share(root_ / "shared");
  share.add_container("c1", root_ / "bundle/rootfs", true, {});
  errno = 0;
  EXPECT_EQ(::open((root_ / "shared/c1/rootfs/etc/hostname").c_str(), O_WRONLY), -1);
  EXPECT_EQ(errno, EROFS);
}

TEST_F(SandboxShareTest, AFailedVolumeUndoesTheWholeContainer) {
  REQUIRE_MOUNT();
  SandboxShare share(root_ / "shared");
  EXPECT_THROW(share.add_container("c1", root_ / "bundle/rootfs", false,
                                   {{root_ / "vol-rw", false}, {root_ / "missing", false}}),
               std::system_error);
  EXPECT_FALSE(mounted(root_ / "shared/c1/rootfs"));
  EXPECT_FALSE(mounted(root_ / "shared/c1/volumes/0"));
  EXPECT_FALSE(fs::exists(root_ / "shared/c1"));
  EXPECT_TRUE(share.containers().empty());
  // The id is free again.
  EXPECT_NO_THROW(share.add_container("c1", root_ / "bundle/rootfs", false, {}));
}

TEST_F(SandboxShareTest, DestructorUnmountsEverything) {
  REQUIRE_MOUNT();
  {
    SandboxShare share(root_ / "shared");
    share.add_container("a", root_ / "bundle/rootfs", false, {{root_ / "vol-rw", false}});
    share.add_container("b", root_ / "bundle/rootfs", true, {});
    EXPECT_THROW(share.add_container("a", root_ / "bundle/rootfs", false, {}), std::invalid_argument);
  }
  EXPECT_FALSE(mounted(root_ / "shared/a/rootfs"));
  EXPECT_FALSE(mounted(root_ / "shared/b/rootfs"));
  EXPECT_FALSE(fs::exists(root_ / "shared"));
  EXPECT_TRUE(fs::exists(root_ / "vol-rw"));
}

TEST(SandboxShare, ContainerIdsArePlainNames) {
  EXPECT_TRUE(SandboxShare::valid_container_id("c1"));
  EXPECT_TRUE(SandboxShare::valid_container_id(std::string(64, 'f')));
  EXPECT_TRUE(SandboxShare::valid_container_id("web-1.v2_x"));
  for (const std::string bad : {"", ".", "..", "../x", "a/b", "-a", ".hidden", "a b"})
    EXPECT_FALSE(SandboxShare::valid_container_id(bad)) << bad;
  EXPECT_FALSE(SandboxShare::valid_container_id(std::string(129, 'a')));
}

TEST(SandboxShare, DirectoryMustBeCreatable) {
  EXPECT_THROW(SandboxShare("/nonexistent-parent/skiff/shared"), std::system_error);
}

}  // namespace
}  // namespace skiff::runtime
