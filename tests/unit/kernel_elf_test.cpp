// The kernel's application ELF checks, built for the host: real static and dynamic binaries and
// glibc's dynamic linker accepted, damaged ones refused cleanly.
#include "linux/elf.h"

#include <gtest/gtest.h>

#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <vector>

namespace kiln::linux {
namespace {

std::vector<uint8_t> slurp(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), {}};
}

TEST(KernelAppElf, AcceptsStaticAndStaticPie) {
    AppImage image;
    auto hello = slurp(KILN_GUEST_APPS "/hello");
    ASSERT_FALSE(hello.empty());
    ASSERT_EQ(parse_app_elf(hello.data(), hello.size(), image), ElfError::kNone);
    EXPECT_FALSE(image.position_independent);
    EXPECT_GT(image.segment_count, 1u);
    EXPECT_NE(image.phdr_vaddr, 0u);
    auto pie = slurp(KILN_GUEST_APPS "/hello-pie");
    ASSERT_EQ(parse_app_elf(pie.data(), pie.size(), image), ElfError::kNone);
    EXPECT_TRUE(image.position_independent);
    auto musl = slurp(KILN_GUEST_APPS "/hello-musl");
    EXPECT_EQ(parse_app_elf(musl.data(), musl.size(), image), ElfError::kNone);
}

TEST(KernelAppElf, AcceptsDynamicExecutablesAndTheirLinker) {
    auto program = slurp("/bin/true");  // Debian's coreutils: PIE, dynamically linked
    AppImage image;
    ASSERT_EQ(parse_app_elf(program.data(), program.size(), image), ElfError::kNone);
    EXPECT_TRUE(image.dynamic());
    EXPECT_TRUE(image.position_independent);
    EXPECT_EQ(std::string(reinterpret_cast<const char*>(program.data() + image.interp_offset), image.interp_size),
              "/lib64/ld-linux-x86-64.so.2");
    auto linker = slurp("/lib64/ld-linux-x86-64.so.2");
    ASSERT_EQ(parse_app_elf(linker.data(), linker.size(), image), ElfError::kNone);
    EXPECT_FALSE(image.dynamic());
    EXPECT_TRUE(image.position_independent);
    EXPECT_EQ(image.lowest_page(), 0u);
    EXPECT_GT(image.highest_page_end(), 0u);
    EXPECT_EQ(image.highest_page_end() % 4096, 0u);
}

TEST(KernelAppElf, RefusesABrokenInterpreterPath) {
    auto program = slurp("/bin/true");
    AppImage image;
    ASSERT_EQ(parse_app_elf(program.data(), program.size(), image), ElfError::kNone);
    auto unterminated = program;
    unterminated[image.interp_offset + image.interp_size] = 'x';  // its NUL
    EXPECT_EQ(parse_app_elf(unterminated.data(), unterminated.size(), image), ElfError::kBadInterpreter);
    auto empty = program;
    ASSERT_EQ(parse_app_elf(empty.data(), empty.size(), image), ElfError::kNone);
    empty[image.interp_offset] = 0;
    EXPECT_EQ(parse_app_elf(empty.data(), empty.size(), image), ElfError::kBadInterpreter);
    EXPECT_NE(std::string(describe(ElfError::kBadInterpreter)).find("PT_INTERP"), std::string::npos);
}

TEST(KernelAppElf, RefusesTruncationsAndGarbage) {
    auto hello = slurp(KILN_GUEST_APPS "/hello");
    AppImage image;
    for (size_t size : {0ul, 10ul, 63ul, 64ul, 200ul, 1000ul}) {
        EXPECT_NE(parse_app_elf(hello.data(), size, image), ElfError::kNone) << size;
    }
    std::mt19937 random(3);
    for (int round = 0; round < 500; ++round) {
        std::vector<uint8_t> junk(random() % 8192);
        for (auto& b : junk) b = static_cast<uint8_t>(random());
        EXPECT_NE(parse_app_elf(junk.data(), junk.size(), image), ElfError::kNone);
    }
    // Corrupt a valid header in random places: accepted images must stay within the file. (Four
    // bytes changed and put back each round: a copy of the whole program each time took seconds.)
    auto bytes = hello;
    for (int round = 0; round < 3000; ++round) {
        size_t at[4];
        for (auto& a : at) {
            a = random() % 4096;
            bytes[a] = static_cast<uint8_t>(random());
        }
        if (parse_app_elf(bytes.data(), bytes.size(), image) == ElfError::kNone) {
            for (size_t s = 0; s < image.segment_count; ++s)
                EXPECT_LE(image.segments[s].file_offset + image.segments[s].file_size, bytes.size());
        }
        for (size_t i = 4; i-- > 0;) bytes[at[i]] = hello[at[i]];
    }
}

}  // namespace
}  // namespace kiln::linux
