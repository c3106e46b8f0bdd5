#include "boot/loader.h"

#include <gtest/gtest.h>

#include <cstring>

#include "boot/layout.h"
#include "elf_builder.h"
#include "kiln/pvh.h"
#include "util/error.h"

namespace kiln::vmm {
namespace {

template <typename T>
T read(const GuestMemory& m, uint64_t gpa) {
    T v;
    std::memcpy(&v, m.span(gpa, sizeof(T)).data(), sizeof(T));
    return v;
}

TEST(Loader, PlacesKernelInitrdCmdlineAndStartInfo) {
    test::ElfSpec spec;
    spec.segments[0].extra_bss = 4096;
    const auto bytes = test::build_elf(spec);
    const ElfImage kernel = ElfImage::parse(bytes, "k");
    GuestMemory memory(16 << 20);
    const std::vector<uint8_t> initrd(10000, 0xab);

    const uint64_t at = load_kernel(memory, kernel, {"kiln.selftest=1 -- /bin/app", initrd});
    EXPECT_EQ(at, layout::kStartInfo);
    EXPECT_EQ(std::memcmp(memory.span(0x100000, 64).data(), spec.segments[0].data.data(), 64), 0);

    const auto info = read<abi::StartInfo>(memory, at);
    EXPECT_EQ(info.magic, abi::kStartInfoMagic);
    EXPECT_EQ(info.version, 1u);
    ASSERT_EQ(info.nr_modules, 1u);
    const auto module = read<abi::ModlistEntry>(memory, info.modlist_paddr);
    EXPECT_EQ(module.size, initrd.size());
    EXPECT_EQ(module.paddr % 4096, 0u);
    EXPECT_LE(module.paddr + module.size, memory.size());
    EXPECT_EQ(memory.span(module.paddr, 1)[0], 0xab);

    ASSERT_EQ(info.memmap_entries, 2u);
    const auto ram = read<abi::MemmapEntry>(memory, info.memmap_paddr + sizeof(abi::MemmapEntry));
    EXPECT_EQ(ram.type, static_cast<uint32_t>(abi::MemmapType::kRam));
    EXPECT_EQ(ram.addr + ram.size, memory.size());
    EXPECT_STREQ(reinterpret_cast<const char*>(memory.span(info.cmdline_paddr, 1).data()),
                 "kiln.selftest=1 -- /bin/app");
}

TEST(Loader, RefusesWhatDoesNotFit) {
    const auto bytes = test::build_elf({});
    const ElfImage kernel = ElfImage::parse(bytes, "k");
    GuestMemory small(4 << 20);
    const std::vector<uint8_t> big_initrd(3 << 20, 0);
    try {
        load_kernel(small, kernel, {"", big_initrd});
        FAIL() << "loaded an initrd larger than memory";
    } catch (const VmmError& e) {
        EXPECT_NE(std::string(e.what()).find("too little memory"), std::string::npos);
    }
    GuestMemory memory(16 << 20);
    EXPECT_THROW(load_kernel(memory, kernel, {std::string(5000, 'x'), {}}), VmmError);

    test::ElfSpec high;
    high.segments[0].paddr = 32 << 20;
    high.pvh_entry = 32 << 20;
    high.kiln_entry = 32 << 20;
    const auto high_bytes = test::build_elf(high);
    EXPECT_THROW(load_kernel(memory, ElfImage::parse(high_bytes, "high"), {"", {}}), VmmError);
}

TEST(GuestMemoryTest, ChecksEveryRange) {
    GuestMemory memory(1 << 20);
    EXPECT_FALSE(memory.span(0, 4096).empty());
    EXPECT_TRUE(memory.span((1 << 20) - 1, 2).empty());
    EXPECT_TRUE(memory.span(~0ull, 2).empty());
    EXPECT_TRUE(memory.span(8, ~0ull - 4).empty());
    EXPECT_TRUE(memory.contains(1 << 20, 0));
    const uint8_t byte = 1;
    EXPECT_THROW(memory.write(1 << 20, std::span(&byte, 1)), VmmError);
}

}  // namespace
}  // namespace kiln::vmm
