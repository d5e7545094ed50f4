// bzImage and ELF parsing and loading, on Debian's real kernel (fetched by
// the debian_kernel ctest fixture) and on broken and synthetic images.
#include "vmm/boot/kernel_image.h"

#include <elf.h>
#include <gtest/gtest.h>

#include <cstring>
#include <fstream>
#include <iterator>

#include "vmm/boot/layout.h"

namespace skiff::boot {
namespace {

constexpr uint64_t kMiB = 1 << 20;

std::vector<uint8_t> debian_kernel() {
  std::ifstream f(SKIFF_DEBIAN_KERNEL, std::ios::binary);
  return std::vector<uint8_t>((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
}

#define REQUIRE_DEBIAN_KERNEL(image)                                                                 \
  auto image = debian_kernel();                                                                      \
  if (image.empty()) GTEST_SKIP() << "Debian kernel image not fetched (" SKIFF_DEBIAN_KERNEL "): see " \
                                     "the fixture.debian_kernel test output"

template <typename T>
void poke(std::vector<uint8_t>& v, size_t off, T value) {
  std::memcpy(v.data() + off, &value, sizeof value);
}

void expect_error(std::span<const uint8_t> image, const std::string& fragment, uint64_t mem_mib = 256) {
  auto mem = GuestMemory::create(layout::ram_regions(mem_mib * kMiB));
  try {
    load_kernel(mem, image);
    ADD_FAILURE() << "accepted an image that should fail with: " << fragment;
  } catch (const BootImageError& e) {
    EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
  }
}

TEST(BzImage, ParsesDebiansKernel) {
  REQUIRE_DEBIAN_KERNEL(image);
  auto bz = parse_bzimage(image);
  EXPECT_GE(bz.header.version, 0x020f);
  EXPECT_TRUE(bz.header.loadflags & LOADED_HIGH);
  EXPECT_TRUE(bz.header.xloadflags & XLF_KERNEL_64);
  EXPECT_TRUE(bz.header.relocatable_kernel);
  EXPECT_EQ(bz.header.kernel_alignment, 0x200000u);
  EXPECT_GT(bz.header.init_size, bz.protected_mode.size());
  EXPECT_EQ(bz.setup_size, (uint64_t(bz.header.setup_sects) + 1) * 512);
  EXPECT_EQ(bz.setup_size + bz.protected_mode.size(), image.size());
  EXPECT_EQ(bz.header.cmdline_size, 2047u);
}

TEST(BzImage, LoadsDebiansKernelAtOneMiB) {
  REQUIRE_DEBIAN_KERNEL(image);
  auto mem = GuestMemory::create(layout::ram_regions(256 * kMiB));
  auto k = load_kernel(mem, image);
  auto bz = parse_bzimage(image);
  EXPECT_EQ(k.mode, EntryMode::Linux64);
  EXPECT_EQ(k.entry, 0x100200u);
  EXPECT_EQ(k.end, 0x100000u + bz.header.init_size);
  ASSERT_TRUE(k.header.has_value());
  std::vector<uint8_t> loaded(bz.protected_mode.size());
  mem.read(GuestAddress(0x100000), loaded);
  EXPECT_TRUE(std::equal(loaded.begin(), loaded.end(), bz.protected_mode.begin()));
}

TEST(BzImage, KernelLargerThanGuestMemoryIsRejected) {
  REQUIRE_DEBIAN_KERNEL(image);
  expect_error(image, "does not fit in guest memory", 8);
  // The file fits but its decompressor's init_size does not.
  expect_error(image, "guest RAM is too small", 16);
}

TEST(BzImage, TruncatedImagesAreRejected) {
  REQUIRE_DEBIAN_KERNEL(image);
  expect_error(std::span(image).first(512), "truncated");
  expect_error(std::span(image).first(0x1000), "truncated");
  expect_error(std::span(image).first(image.size() / 2), "truncated");
}

TEST(BzImage, BrokenHeadersAreRejected) {
  REQUIRE_DEBIAN_KERNEL(image);
  auto bad = image;
  poke<uint32_t>(bad, 0x202, 0x12345678);
  expect_error(bad, "HdrS");
  bad = image;
  poke<uint16_t>(bad, 0x1fe, 0);
  expect_error(bad, "boot flag");
  bad = image;
  poke<uint16_t>(bad, 0x206, 0x0204);
  expect_error(bad, "too old");
  bad = image;
  poke<uint16_t>(bad, 0x236, 0);  // xloadflags
  expect_error(bad, "XLF_KERNEL_64");
  bad = image;
  poke<uint8_t>(bad, 0x211, 0);  // loadflags
  expect_error(bad, "LOADED_HIGH");
  bad = image;
  poke<uint32_t>(bad, 0x230, 0x3000);  // kernel_alignment not a power of two
  expect_error(bad, "kernel_alignment");
}

TEST(KernelImage, EmptyAndGarbageAreRejected) {
  expect_error({}, "empty");
  std::vector<uint8_t> junk(4096, 0x5a);
  expect_error(junk, "not a Linux kernel image");
}

// A minimal ELF64 with one PT_LOAD and a PT_NOTE holding the PVH entry.
std::vector<uint8_t> make_elf(uint64_t paddr, uint32_t descsz = 4, uint64_t load_size = 0x100) {
  std::vector<uint8_t> f(0x1000, 0);
  Elf64_Ehdr eh{};
  std::memcpy(eh.e_ident, ELFMAG, SELFMAG);
  eh.e_ident[EI_CLASS] = ELFCLASS64;
  eh.e_ident[EI_DATA] = ELFDATA2LSB;
  eh.e_ident[EI_VERSION] = EV_CURRENT;
  eh.e_type = ET_EXEC;
  eh.e_machine = EM_X86_64;
  eh.e_entry = paddr + 0x10;
  eh.e_phoff = sizeof eh;
  eh.e_phentsize = sizeof(Elf64_Phdr);
  eh.e_phnum = 2;
  std::memcpy(f.data(), &eh, sizeof eh);
  Elf64_Phdr load{};
  load.p_type = PT_LOAD;
  load.p_offset = 0x800;
  load.p_paddr = paddr;
  load.p_filesz = load_size;
  load.p_memsz = 0x200;
  std::memcpy(f.data() + eh.e_phoff, &load, sizeof load);
  Elf64_Phdr note{};
  note.p_type = PT_NOTE;
  note.p_offset = 0x400;
  note.p_filesz = sizeof(Elf64_Nhdr) + 4 + ((descsz + 3) & ~3u);
  std::memcpy(f.data() + eh.e_phoff + sizeof load, &note, sizeof note);
  Elf64_Nhdr nh{4, descsz, 18};
  std::memcpy(f.data() + 0x400, &nh, sizeof nh);
  std::memcpy(f.data() + 0x400 + sizeof nh, "Xen", 4);
  uint64_t entry = paddr + 0x20;
  std::memcpy(f.data() + 0x400 + sizeof nh + 4, &entry, descsz == 8 ? 8 : 4);
  for (int i = 0; i < 0x100; ++i) f[0x800 + i] = static_cast<uint8_t>(i);
  return f;
}

TEST(Elf, PvhNoteGivesThe32BitEntry) {
  auto mem = GuestMemory::create(layout::ram_regions(16 * kMiB));
  for (uint32_t descsz : {4u, 8u}) {
    auto k = load_kernel(mem, make_elf(0x100000, descsz));
    EXPECT_EQ(k.mode, EntryMode::Pvh32);
    EXPECT_EQ(k.entry, 0x100020u);
    EXPECT_EQ(k.end, 0x100200u);
    EXPECT_EQ(mem.read_obj<uint8_t>(GuestAddress(0x1000ff)), 0xff);
    EXPECT_EQ(mem.read_obj<uint8_t>(GuestAddress(0x100100)), 0);  // bss zeroed
  }
}

TEST(Elf, BrokenElfsAreRejected) {
  expect_error(make_elf(0x100000, 5), "PVH entry note has a bad size");
  expect_error(make_elf(0x1000), "below 1 MiB");
  expect_error(make_elf(0x100000, 4, 0x900), "past the end");
  expect_error(make_elf(300 * kMiB), "does not fit");
  auto truncated = make_elf(0x100000);
  truncated.resize(40);
  expect_error(truncated, "truncated");
  auto wrong_machine = make_elf(0x100000);
  poke<uint16_t>(wrong_machine, offsetof(Elf64_Ehdr, e_machine), EM_AARCH64);
  expect_error(wrong_machine, "not for x86");
}

}  // namespace
}  // namespace skiff::boot
