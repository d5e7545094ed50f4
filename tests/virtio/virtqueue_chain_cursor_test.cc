// ChainReader/ChainWriter: the one cursor over a descriptor chain. Properties
// over chains split every way the guest can split them.
#include "virtio/virtqueue.h"

#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include <numeric>

namespace skiff::virtio {
namespace {

constexpr uint64_t kRam = 1 << 20;

// A chain over consecutive guest memory: readable descriptors of
// `readable` lengths from 0x1000, then writable ones of `writable` lengths.
DescriptorChain chain_of(const std::vector<uint32_t>& readable, const std::vector<uint32_t>& writable) {
  DescriptorChain c;
  uint64_t at = 0x1000;
  for (uint32_t len : readable) c.descriptors.push_back({GuestAddress(at), len, false}), at += len;
  for (uint32_t len : writable) c.descriptors.push_back({GuestAddress(at), len, true}), at += len;
  return c;
}

std::vector<uint32_t> lengths() { return *rc::gen::container<std::vector<uint32_t>>(rc::gen::inRange<uint32_t>(0, 40)); }

RC_GTEST_PROP(ChainCursor, ReadsInAnyPiecesGiveTheReadableBytesInOrder, ()) {
  static const GuestMemory mem = GuestMemory::create({{GuestAddress(0), kRam}});
  const auto rlens = lengths(), wlens = lengths();
  const auto chain = chain_of(rlens, wlens);
  const uint64_t readable = chain.readable_bytes();
  std::vector<uint8_t> expect(readable);
  for (size_t i = 0; i < readable; ++i) expect[i] = static_cast<uint8_t>(i * 31 + 7);
  if (readable) mem.write(GuestAddress(0x1000), expect);

  ChainReader r(mem, chain);
  RC_ASSERT(r.remaining() == readable);
  std::vector<uint8_t> none;
  RC_ASSERT(r.read_some(none) == 0u);
  RC_ASSERT(r.remaining() == readable);
  std::vector<uint8_t> got;
  // Each step asks for at least a byte so that a shrunk case still ends.
  while (r.remaining() > 0) {
    const size_t want = *rc::gen::inRange<size_t>(1, 50);
    const size_t before = r.remaining();
    switch (*rc::gen::inRange(0, 3)) {
      case 0: {  // a partial copy
        std::vector<uint8_t> buf(want);
        const size_t n = r.read_some(buf);
        RC_ASSERT(n == std::min(want, before));
        got.insert(got.end(), buf.begin(), buf.begin() + static_cast<ptrdiff_t>(n));
        break;
      }
      case 1: {  // an exact copy: all or nothing
        std::vector<uint8_t> buf(want);
        const bool ok = r.read(buf.data(), want);
        RC_ASSERT(ok == (want <= before));
        if (ok) got.insert(got.end(), buf.begin(), buf.end());
        RC_ASSERT(r.remaining() == (ok ? before - want : before));
        break;
      }
      case 2: {  // iovecs: the same bytes, in place
        for (const iovec& v : r.iovecs(want)) {
          RC_ASSERT(v.iov_len > 0u);
          const auto* p = static_cast<const uint8_t*>(v.iov_base);
          got.insert(got.end(), p, p + v.iov_len);
        }
        RC_ASSERT(r.remaining() == before - std::min(want, before));
        break;
      }
    }
    RC_ASSERT(r.consumed() + r.remaining() == readable);
  }
  RC_ASSERT(got == expect);
  uint8_t byte;
  RC_ASSERT(!r.read(&byte, 1));
}

RC_GTEST_PROP(ChainCursor, WritesLandInTheWritableDescriptorsOnly, ()) {
  static const GuestMemory mem = GuestMemory::create({{GuestAddress(0), kRam}});
  const auto rlens = lengths(), wlens = lengths();
  const auto chain = chain_of(rlens, wlens);
  const uint64_t readable = chain.readable_bytes(), writable = chain.writable_bytes();
  mem.fill(GuestAddress(0x1000), readable + writable + 16, 0xAA);

  ChainWriter w(mem, chain);
  const size_t skip = *rc::gen::inRange<size_t>(0, 60);
  RC_ASSERT(w.skip_some(skip) == std::min<size_t>(skip, writable));
  std::vector<uint8_t> data(*rc::gen::inRange<size_t>(0, 300));
  std::iota(data.begin(), data.end(), uint8_t{1});
  const size_t n = w.write_some(data);
  const size_t start = std::min<size_t>(skip, writable);
  RC_ASSERT(n == std::min<size_t>(data.size(), writable - start));

  std::vector<uint8_t> after(readable + writable + 16);
  mem.read(GuestAddress(0x1000), after);
  for (size_t i = 0; i < after.size(); ++i) {
    const bool written = i >= readable + start && i < readable + start + n;
    RC_ASSERT(after[i] == (written ? data[i - readable - start] : uint8_t{0xAA}));
  }
}

TEST(ChainCursor, AssignStartsOverAndAMalformedChainIsEmpty) {
  const GuestMemory mem = GuestMemory::create({{GuestAddress(0), kRam}});
  mem.write_obj(GuestAddress(0x1000), uint32_t{0x11223344});
  ChainReader r;
  r.assign(mem, chain_of({4}, {}));
  uint32_t v = 0;
  ASSERT_TRUE(r.read_obj(v));
  EXPECT_EQ(v, 0x11223344u);
  r.assign(mem, chain_of({4}, {}));
  EXPECT_EQ(r.consumed(), 0u);
  EXPECT_EQ(r.remaining(), 4u);
  DescriptorChain bad;
  bad.error = "descriptor chain loops";
  r.assign(mem, bad);
  EXPECT_EQ(r.remaining(), 0u);
  EXPECT_FALSE(r.read_obj(v));
}

}  // namespace
}  // namespace skiff::virtio
