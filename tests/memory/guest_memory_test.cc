#include "memory/guest_memory.h"

#include <sys/stat.h>

#include <fstream>
#include <system_error>

#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include "vmm/boot/layout.h"

namespace skiff {
namespace {

constexpr uint64_t kMiB = 1 << 20;

GuestMemory two_regions() {
  // [0, 2 MiB) and [4 GiB, 4 GiB + 1 MiB)
  return GuestMemory::create({{GuestAddress(0), 2 * kMiB}, {GuestAddress(1ull << 32), kMiB}});
}

TEST(GuestMemory, ReadWriteObjectsInEachRegion) {
  auto mem = two_regions();
  EXPECT_EQ(mem.total_size(), 3 * kMiB);
  EXPECT_EQ(mem.end_address(), (1ull << 32) + kMiB);
  mem.write_obj(GuestAddress(0x1000), uint64_t{0x1122334455667788});
  EXPECT_EQ(mem.read_obj<uint64_t>(GuestAddress(0x1000)), 0x1122334455667788u);
  mem.write_obj(GuestAddress((1ull << 32) + kMiB - 4), uint32_t{0xdeadbeef});
  EXPECT_EQ(mem.read_obj<uint32_t>(GuestAddress((1ull << 32) + kMiB - 4)), 0xdeadbeefu);
  // Memory starts zeroed.
  EXPECT_EQ(mem.read_obj<uint64_t>(GuestAddress(0x2000)), 0u);
}

TEST(GuestMemory, RejectsRangesOutsideOrAcrossRegions) {
  auto mem = two_regions();
  EXPECT_THROW(mem.read_obj<uint32_t>(GuestAddress(2 * kMiB - 2)), GuestMemoryError);  // runs off region 0
  EXPECT_THROW(mem.read_obj<uint8_t>(GuestAddress(2 * kMiB)), GuestMemoryError);       // in the hole
  EXPECT_THROW(mem.slice(GuestAddress(0), 3 * kMiB), GuestMemoryError);
  EXPECT_THROW(mem.read_obj<uint8_t>(GuestAddress((1ull << 32) + kMiB)), GuestMemoryError);
  EXPECT_THROW(mem.slice(GuestAddress(~0ull - 1), 4), GuestMemoryError);   // wraps
  EXPECT_THROW(mem.slice(GuestAddress(0x1000), ~0ull), GuestMemoryError);  // absurd length
  EXPECT_FALSE(mem.contains(GuestAddress(2 * kMiB - 1), 2));
  EXPECT_TRUE(mem.contains(GuestAddress(2 * kMiB - 1), 1));
  EXPECT_TRUE(mem.contains(GuestAddress(0), 2 * kMiB));
}

TEST(GuestMemory, ErrorSaysWhichRange) {
  auto mem = two_regions();
  try {
    mem.slice(GuestAddress(0x200000), 0x10);
    FAIL();
  } catch (const GuestMemoryError& e) {
    EXPECT_STREQ(e.what(), "guest range [0x200000, +0x10) is not inside guest RAM");
  }
}

TEST(GuestMemory, RejectsBadRegionSpecs) {
  EXPECT_THROW(GuestMemory::create({}), std::invalid_argument);
  EXPECT_THROW(GuestMemory::create({{GuestAddress(0), 0}}), std::invalid_argument);
  EXPECT_THROW(GuestMemory::create({{GuestAddress(0x800), 0x1000}}), std::invalid_argument);
  EXPECT_THROW(GuestMemory::create({{GuestAddress(0), 0x1001}}), std::invalid_argument);
  EXPECT_THROW(GuestMemory::create({{GuestAddress(0), 0x2000}, {GuestAddress(0x1000), 0x1000}}), std::invalid_argument);
  EXPECT_THROW(GuestMemory::create({{GuestAddress(~0ull & ~0xfffull), 0x2000}}), std::invalid_argument);
}

TEST(GuestMemory, RegionsAreMemfdBackedAndShareable) {
  auto mem = two_regions();
  for (const auto& r : mem.regions()) {
    ASSERT_GE(r.memfd(), 0);
    EXPECT_EQ(lseek(r.memfd(), 0, SEEK_END), static_cast<off_t>(r.size()));
  }
  // A write through the mapping is visible through the memfd.
  mem.write_obj(GuestAddress(0x3000), uint32_t{0xabcd1234});
  uint32_t v = 0;
  ASSERT_EQ(pread(mem.regions()[0].memfd(), &v, 4, 0x3000), 4);
  EXPECT_EQ(v, 0xabcd1234u);
}

// virtio-mem's unplug: the pages go back to the host and read as zeroes.
TEST(GuestMemory, DiscardGivesPagesBackAndReadsZero) {
  auto mem = two_regions();
  const int fd = mem.regions()[0].memfd();
  auto allocated = [fd] {
    struct stat st {};
    EXPECT_EQ(fstat(fd, &st), 0);
    return static_cast<uint64_t>(st.st_blocks) * 512;
  };
  mem.fill(GuestAddress(0), kMiB, 0x5a);
  const uint64_t before = allocated();
  EXPECT_GE(before, kMiB);
  mem.discard(GuestAddress(0x10000), 0x20000);
  EXPECT_LE(allocated(), before - 0x20000) << "the hole's pages went back to the host";
  EXPECT_EQ(mem.read_obj<uint64_t>(GuestAddress(0x10000)), 0u);
  EXPECT_EQ(mem.read_obj<uint8_t>(GuestAddress(0x2ffff)), 0u);
  EXPECT_EQ(mem.read_obj<uint8_t>(GuestAddress(0xffff)), 0x5a) << "nothing before the range";
  EXPECT_EQ(mem.read_obj<uint8_t>(GuestAddress(0x30000)), 0x5a) << "nothing after it";
  // The second region's memfd, at its own offset.
  mem.fill(GuestAddress(1ull << 32), kMiB, 0x11);
  mem.discard(GuestAddress((1ull << 32) + 0x1000), 0x1000);
  EXPECT_EQ(mem.read_obj<uint8_t>(GuestAddress((1ull << 32) + 0x1000)), 0u);
  EXPECT_EQ(mem.read_obj<uint8_t>(GuestAddress(1ull << 32)), 0x11);
}

TEST(GuestMemory, DiscardRefusesBadRanges) {
  auto mem = two_regions();
  EXPECT_THROW(mem.discard(GuestAddress(0x1800), 0x1000), GuestMemoryError);  // unaligned start
  EXPECT_THROW(mem.discard(GuestAddress(0x1000), 0x800), GuestMemoryError);   // unaligned length
  EXPECT_THROW(mem.discard(GuestAddress(0x1000), 0), GuestMemoryError);
  EXPECT_THROW(mem.discard(GuestAddress(2 * kMiB - 0x1000), 0x2000), GuestMemoryError);  // off the region
  EXPECT_THROW(mem.discard(GuestAddress(2 * kMiB), 0x1000), GuestMemoryError);           // in the hole
  EXPECT_THROW(mem.discard(GuestAddress(~0ull & ~0xfffull), 0x2000), GuestMemoryError);  // wraps
  EXPECT_EQ(mem.page_size(), 0x1000u);
}

TEST(GuestMemory, LayoutSplitsAroundTheMmioGap) {
  auto small = layout::ram_regions(128 * kMiB);
  ASSERT_EQ(small.size(), 1u);
  EXPECT_EQ(small[0].size, 128 * kMiB);
  auto big = layout::ram_regions(4096 * kMiB);
  ASSERT_EQ(big.size(), 2u);
  EXPECT_EQ(big[0].size, layout::kMmioGapStart);
  EXPECT_EQ(big[1].start.value(), layout::kMmioGapEnd);
  EXPECT_EQ(big[0].size + big[1].size, 4096 * kMiB);
}

// The checked range test agrees with an arbitrary-precision model for any
// address and length, including those near 2^64.
RC_GTEST_PROP(GuestMemoryProperty, ContainsMatchesModel, ()) {
  static const GuestMemory mem = two_regions();
  const auto near = [](uint64_t edge) { return rc::gen::map(rc::gen::inRange<int64_t>(-64, 64), [edge](int64_t d) {
                                          return edge + static_cast<uint64_t>(d);
                                        }); };
  auto addr = *rc::gen::oneOf(rc::gen::arbitrary<uint64_t>(), near(0), near(2 * kMiB), near(1ull << 32),
                              near((1ull << 32) + kMiB), near(~0ull));
  auto len = *rc::gen::oneOf(rc::gen::inRange<uint64_t>(0, 64), rc::gen::arbitrary<uint64_t>(), near(kMiB),
                             near(~0ull));
  bool model = false;
  for (const auto& r : mem.regions()) {
    unsigned __int128 a = addr, l = len, s = r.start().value(), e = r.end();
    model |= a >= s && a < e && a + l <= e;
  }
  RC_ASSERT(mem.contains(GuestAddress(addr), len) == model);
  if (model) {
    RC_ASSERT(mem.slice(GuestAddress(addr), len).size() == len);
  } else {
    RC_ASSERT_THROWS_AS(mem.slice(GuestAddress(addr), len), GuestMemoryError);
  }
}

RC_GTEST_PROP(GuestMemoryProperty, CheckedAddNeverWraps, (uint64_t base, uint64_t off)) {
  auto r = GuestAddress(base).checked_add(off);
  unsigned __int128 sum = static_cast<unsigned __int128>(base) + off;
  RC_ASSERT(r.has_value() == (sum <= ~0ull));
  if (r) RC_ASSERT(r->value() == base + off);
}

}  // namespace
}  // namespace skiff

namespace skiff {
namespace {

uint64_t free_huge_pages() {
  std::ifstream meminfo("/proc/meminfo");
  std::string key;
  uint64_t value = 0;
  while (meminfo >> key >> value) {
    if (key == "HugePages_Free:") return value;
    meminfo.ignore(256, '\n');
  }
  return 0;
}

// With huge pages the memory is reserved at creation: either the pool has
// room and every page is usable, or creation fails with a clear error.
TEST(GuestMemory, HugePagesAreReservedUpFront) {
  GuestMemoryOptions opts;
  opts.hugepages = true;
  if (free_huge_pages() >= 2) {
    auto mem = GuestMemory::create({{GuestAddress(0), 4 * kMiB}}, opts);
    mem.write_obj(GuestAddress(4 * kMiB - 8), uint64_t{42});
    EXPECT_EQ(mem.read_obj<uint64_t>(GuestAddress(4 * kMiB - 8)), 42u);
  } else {
    try {
      GuestMemory::create({{GuestAddress(0), 4 * kMiB}}, opts);
      FAIL() << "no huge pages free, yet creation succeeded";
    } catch (const std::system_error& e) {
      EXPECT_NE(std::string(e.what()).find("nr_hugepages"), std::string::npos) << e.what();
    }
  }
  EXPECT_THROW(GuestMemory::create({{GuestAddress(0), 3 * kMiB}}, opts), std::invalid_argument);  // not 2 MiB aligned
}

}  // namespace
}  // namespace skiff
